"""Shared body of the three classic recurrent families: stacked RNN + dense head.

``x [B, T, C] -> torch RNN (layers x hidden) -> dropout -> Linear -> logits``.
torch's own cells are used (gate order and equations as in torch's docs), so the
exporters read weights in torch's layout.
"""

from __future__ import annotations

import torch
from torch import nn

from gaitedge.errors import ModelError
from gaitedge.models.base import GaitModel, State


class RecurrentClassifier(GaitModel):
    """Causal recurrent classifier over one torch RNN module type."""

    rnn_cls: type[nn.Module] = nn.RNN
    n_state: int = 1

    def __init__(
        self, input_size: int, num_classes: int, hidden: int = 64, layers: int = 1, dropout: float = 0.0
    ) -> None:
        super().__init__(input_size, num_classes)
        if hidden < 1 or layers < 1 or not 0.0 <= dropout < 1.0:
            raise ModelError(f"{self.family}: need hidden >= 1, layers >= 1, 0 <= dropout < 1")
        self.hidden = hidden
        self.layers = layers
        self.dropout_p = dropout
        self.rnn = self._make_rnn(input_size, hidden, layers, dropout if layers > 1 else 0.0)
        self.drop = nn.Dropout(dropout)
        self.head = nn.Linear(hidden, num_classes)

    def _make_rnn(self, input_size: int, hidden: int, layers: int, dropout: float) -> nn.Module:
        return self.rnn_cls(input_size, hidden, num_layers=layers, batch_first=True, dropout=dropout)

    def hparams(self) -> dict:
        return {"hidden": self.hidden, "layers": self.layers, "dropout": self.dropout_p}

    def init_state(self, batch: int = 1) -> State:
        z = torch.zeros(self.layers, batch, self.hidden)
        return tuple(z.clone() for _ in range(self.n_state))

    def forward(self, x: torch.Tensor, state: State | None = None) -> tuple[torch.Tensor, State]:
        if state is None:
            state = tuple(s.to(x.device) for s in self.init_state(x.shape[0]))
        h0 = state if self.n_state > 1 else state[0]
        y, hn = self.rnn(x, h0)
        logits = self.head(self.drop(y))
        return logits, (tuple(hn) if self.n_state > 1 else (hn,))
