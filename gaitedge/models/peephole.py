"""LSTM with peephole connections: the gates also see the cell state.

Per layer, with ``v_t = [x_t; h_{t-1}]`` (``x_t`` the layer's input) and diagonal
peephole weights ``p_i, p_f, p_o`` (one per unit)::

    i_t = sigmoid(W_i v_t + p_i ⊙ c_{t-1} + b_i)
    f_t = sigmoid(W_f v_t + p_f ⊙ c_{t-1} + b_f)
    g_t = tanh(W_g v_t + b_g)
    c_t = f_t ⊙ c_{t-1} + i_t ⊙ g_t
    o_t = sigmoid(W_o v_t + p_o ⊙ c_t + b_o)          (the output gate sees the new cell)
    h_t = o_t ⊙ tanh(c_t)

Gate rows are in torch's LSTM order i, f, g, o.  Layers are stacked (layer ``k``
reads layer ``k-1``'s ``h``; dropout between layers and before the head in
training), and a dense head maps the last layer's ``h_t`` to the logits.  State:
``(h, c)``, each ``[layers, B, hidden]``.  The time loop is a TorchScript loop
over ``torch.unbind(x, 1)``, exported to ONNX as a ``Loop`` (any length ``T``).
"""

from __future__ import annotations

import math
import warnings
from typing import List, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from gaitedge.errors import ModelError
from gaitedge.models.base import GaitModel, State, register


def _peephole_scan(xp: Tensor, h0: Tensor, c0: Tensor, w_hh: Tensor, peep: Tensor,
                   n: int) -> Tuple[Tensor, Tensor, Tensor]:
    """One layer of ``n`` units over time: ``xp [B, T, 4n]`` = ``W_ih x + b``; ``peep [3, n]``
    = p_i, p_f, p_o.  Returns (h for every step ``[B, T, n]``, last h, last c).
    """
    h, c = h0, c0
    outs: List[Tensor] = []
    for xp_t in torch.unbind(xp, 1):
        a = xp_t + F.linear(h, w_hh)
        gi, gf, gg, go = a[:, :n], a[:, n : 2 * n], a[:, 2 * n : 3 * n], a[:, 3 * n :]
        i = torch.sigmoid(gi + peep[0] * c)
        f = torch.sigmoid(gf + peep[1] * c)
        c = f * c + i * torch.tanh(gg)
        o = torch.sigmoid(go + peep[2] * c)
        h = o * torch.tanh(c)
        outs.append(h)
    return torch.stack(outs, 1), h, c


with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    peephole_scan = torch.jit.script(_peephole_scan)


class PeepholeLayer(nn.Module):
    """Weights of one peephole-LSTM layer: ``ih`` (W_ih, b), ``hh`` (W_hh), ``peep [3, H]``."""

    def __init__(self, input_size: int, hidden: int) -> None:
        super().__init__()
        self.ih = nn.Linear(input_size, 4 * hidden)
        self.hh = nn.Linear(hidden, 4 * hidden, bias=False)
        self.peep = nn.Parameter(torch.empty(3, hidden))
        k = 1.0 / math.sqrt(hidden)
        for p in (self.ih.weight, self.ih.bias, self.hh.weight, self.peep):
            nn.init.uniform_(p, -k, k)

    def cell(self, x: Tensor, h: Tensor, c: Tensor) -> tuple[Tensor, Tensor]:
        """One step, written out (the streaming graph)."""
        n = self.peep.shape[1]
        a = self.ih(x) + self.hh(h)
        gi, gf, gg, go = a[:, :n], a[:, n : 2 * n], a[:, 2 * n : 3 * n], a[:, 3 * n :]
        i = torch.sigmoid(gi + self.peep[0] * c)
        f = torch.sigmoid(gf + self.peep[1] * c)
        c = f * c + i * torch.tanh(gg)
        o = torch.sigmoid(go + self.peep[2] * c)
        return o * torch.tanh(c), c


@register("peephole")
class PeepholeLSTMClassifier(GaitModel):
    """Stacked peephole LSTM with a per-sample dense head."""

    def __init__(self, input_size: int, num_classes: int, hidden: int = 64, layers: int = 1,
                 dropout: float = 0.0) -> None:
        super().__init__(input_size, num_classes)
        if hidden < 1 or layers < 1 or not 0.0 <= dropout < 1.0:
            raise ModelError(f"peephole: need hidden >= 1, layers >= 1, 0 <= dropout < 1, got hidden={hidden}, "
                             f"layers={layers}, dropout={dropout}")
        self.hidden = hidden
        self.layers = layers
        self.dropout_p = float(dropout)
        self.cells = nn.ModuleList(PeepholeLayer(input_size if k == 0 else hidden, hidden) for k in range(layers))
        self.drop = nn.Dropout(dropout)
        self.head = nn.Linear(hidden, num_classes)

    def hparams(self) -> dict:
        return {"hidden": self.hidden, "layers": self.layers, "dropout": self.dropout_p}

    def init_state(self, batch: int = 1) -> State:
        z = torch.zeros(self.layers, batch, self.hidden)
        return z, z.clone()

    def forward(self, x: torch.Tensor, state: State | None = None) -> tuple[torch.Tensor, State]:
        if state is None:
            state = tuple(s.to(x.device) for s in self.init_state(x.shape[0]))
        h0, c0 = state
        hs, cs = [], []
        y = x
        for k, cell in enumerate(self.cells):
            if k > 0:
                y = self.drop(y)
            y, h, c = peephole_scan(cell.ih(y), h0[k], c0[k], cell.hh.weight, cell.peep, self.hidden)
            hs.append(h)
            cs.append(c)
        return self.head(self.drop(y)), (torch.stack(hs), torch.stack(cs))

    def step(self, x_t: torch.Tensor, state: State) -> tuple[torch.Tensor, State]:
        h0, c0 = state
        hs, cs = [], []
        y = x_t
        for k, cell in enumerate(self.cells):
            if k > 0:
                y = self.drop(y)
            y, c = cell.cell(y, h0[k], c0[k])
            hs.append(y)
            cs.append(c)
        return self.head(self.drop(y)), (torch.stack(hs), torch.stack(cs))
