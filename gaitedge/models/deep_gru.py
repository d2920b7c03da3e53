"""Deep GRU: stacked GRU layers with standard, residual or dense connections.

Each layer ``k = 1..L`` is a GRU (torch's cell: gates r, z, n) over its input
``u_k`` (``u_1 = x``, the normalized channels)::

    h_k(t) = GRU_k(u_k(t), h_k(t-1))

and the option ``connection`` chooses ``u_k`` for ``k >= 2`` and what the dense
head reads:

=============  ==========================================  ====================================
connection     input of layer k >= 2                       head input
=============  ==========================================  ====================================
``standard``   ``u_k = h_{k-1}``                           ``h_L``
``residual``   ``u_k = o_{k-1}``, ``o_1 = h_1``,           ``o_L``
               ``o_k = h_k + o_{k-1}``
``dense``      ``u_k = [h_{k-1}; ...; h_1; x]``            ``[h_L; ...; h_1]``
=============  ==========================================  ====================================

Residual skips run between recurrent layers (equal widths); the first layer's
output is its ``h`` (the input has other channels), so ``o_k = h_1 + ... + h_k``.
Dense layers see every earlier layer's output and the input, most recent first.
Dropout (training) acts on the input of every layer above the first and on the
head's input.  State: ``h [layers, B, hidden]``.  Each layer is a torch ``nn.GRU``,
exported to ONNX as a GRU operator (any sequence length).
"""

from __future__ import annotations

import torch
from torch import nn

from gaitedge.errors import ModelError
from gaitedge.models.base import GaitModel, State, register

CONNECTIONS = ("standard", "residual", "dense")


@register("deep_gru")
class DeepGRUClassifier(GaitModel):
    """Stacked GRU with standard, residual or dense connections and a dense head."""

    def __init__(self, input_size: int, num_classes: int, hidden: int = 64, layers: int = 2, dropout: float = 0.0,
                 connection: str = "standard") -> None:
        super().__init__(input_size, num_classes)
        if hidden < 1 or layers < 1 or not 0.0 <= dropout < 1.0:
            raise ModelError(f"deep_gru: need hidden >= 1, layers >= 1, 0 <= dropout < 1, got hidden={hidden}, "
                             f"layers={layers}, dropout={dropout}")
        if connection not in CONNECTIONS:
            raise ModelError(f"deep_gru: unknown connection {connection!r}; choose one of {', '.join(CONNECTIONS)}")
        self.hidden = hidden
        self.layers = layers
        self.dropout_p = float(dropout)
        self.connection = connection
        self.grus = nn.ModuleList(nn.GRU(self.layer_input_size(k), hidden, batch_first=True) for k in range(layers))
        self.drop = nn.Dropout(dropout)
        self.head = nn.Linear(hidden * (layers if connection == "dense" else 1), num_classes)

    def layer_input_size(self, k: int) -> int:
        """Input width of layer ``k`` (0-based)."""
        if k == 0:
            return self.input_size
        return k * self.hidden + self.input_size if self.connection == "dense" else self.hidden

    def hparams(self) -> dict:
        return {"hidden": self.hidden, "layers": self.layers, "dropout": self.dropout_p,
                "connection": self.connection}

    def init_state(self, batch: int = 1) -> State:
        return (torch.zeros(self.layers, batch, self.hidden),)

    def forward(self, x: torch.Tensor, state: State | None = None) -> tuple[torch.Tensor, State]:
        if state is None:
            state = tuple(s.to(x.device) for s in self.init_state(x.shape[0]))
        h0 = state[0]
        hs: list[torch.Tensor] = []  # every layer's output sequence, layer 1 first
        finals: list[torch.Tensor] = []
        out = x
        for k, gru in enumerate(self.grus):
            if k == 0:
                inp = x
            elif self.connection == "dense":
                inp = self.drop(torch.cat([*reversed(hs), x], -1))
            else:
                inp = self.drop(out)
            y, hn = gru(inp, h0[k : k + 1])
            hs.append(y)
            finals.append(hn[0])
            out = y + out if (self.connection == "residual" and k > 0) else y
        feat = torch.cat(list(reversed(hs)), -1) if self.connection == "dense" else out
        return self.head(self.drop(feat)), (torch.stack(finals),)
