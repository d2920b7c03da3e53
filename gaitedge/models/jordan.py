"""Jordan network: the previous *output* (not the hidden state) is fed back.

For input ``x_t`` (normalized channels) and class logits ``z_t``::

    h_t = tanh(W_xh x_t + W_yh y_{t-1} + b_h)          hidden layer (``hidden`` units)
    z_t = W_hy h_t + b_y                                 logits (the model's output)
    y_t = sigmoid(z_t)                                   fed back at t + 1,  y_{-1} = 0

The fed-back output ``y_t`` is the per-class sigmoid of the logits: bounded in
(0, 1) like class probabilities, and computed by the same sigmoid table as the
recurrent gates in the fixed-point runtime (a softmax would need an exponential
and a division per step on the microcontroller).  The streaming state is
therefore ``y_{t-1}`` alone, shape ``[1, B, K]`` (``K`` classes); ``h_{t-1}`` is
not needed because the hidden layer has no self-connection.

Dropout (training only) acts on ``h_t`` before the output layer, so the dropped
units also shape the fed-back output.  The network has one hidden layer
(``layers`` must be 1).  The time loop is a TorchScript loop over
``torch.unbind(x, 1)``, which ONNX export turns into a ``Loop`` over a sequence:
the exported sequence graph accepts any length ``T``.
"""

from __future__ import annotations

import warnings
from typing import List, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from gaitedge.errors import ModelError
from gaitedge.models.base import GaitModel, State, register


def _jordan_scan(xp: Tensor, y0: Tensor, w_yh: Tensor, w_hy: Tensor, b_y: Tensor, p: float,
                train: bool) -> Tuple[Tensor, Tensor]:
    """The recurrence over time: ``xp [B, T, H]`` = ``W_xh x + b_h``, ``y0 [B, K]``.

    Returns (logits ``[B, T, K]``, last fed-back output ``y_T [B, K]``).
    """
    y = y0
    outs: List[Tensor] = []
    for xp_t in torch.unbind(xp, 1):
        h = torch.tanh(xp_t + F.linear(y, w_yh))
        h = F.dropout(h, p, train)
        z = F.linear(h, w_hy, b_y)
        y = torch.sigmoid(z)
        outs.append(z)
    return torch.stack(outs, 1), y


with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    jordan_scan = torch.jit.script(_jordan_scan)


@register("jordan")
class JordanClassifier(GaitModel):
    """Jordan RNN: one tanh hidden layer fed by the input and the previous output."""

    def __init__(self, input_size: int, num_classes: int, hidden: int = 64, layers: int = 1,
                 dropout: float = 0.0) -> None:
        super().__init__(input_size, num_classes)
        if hidden < 1 or not 0.0 <= dropout < 1.0:
            raise ModelError(f"jordan: need hidden >= 1 and 0 <= dropout < 1, got hidden={hidden}, "
                             f"dropout={dropout}")
        if layers != 1:
            raise ModelError(f"jordan: the output feeds back into a single hidden layer; layers must be 1, "
                             f"got {layers}")
        self.hidden = hidden
        self.layers = 1
        self.dropout_p = float(dropout)
        #: W_xh, b_h
        self.inp = nn.Linear(input_size, hidden)
        #: W_yh (no bias: b_h is in ``inp``)
        self.fb = nn.Linear(num_classes, hidden, bias=False)
        #: W_hy, b_y: the logits
        self.head = nn.Linear(hidden, num_classes)

    def hparams(self) -> dict:
        return {"hidden": self.hidden, "layers": 1, "dropout": self.dropout_p}

    def init_state(self, batch: int = 1) -> State:
        """``y_{-1} = 0``: ``[1, batch, classes]``."""
        return (torch.zeros(1, batch, self.num_classes),)

    def forward(self, x: torch.Tensor, state: State | None = None) -> tuple[torch.Tensor, State]:
        if state is None:
            state = tuple(s.to(x.device) for s in self.init_state(x.shape[0]))
        xp = self.inp(x)
        logits, y = jordan_scan(xp, state[0][0], self.fb.weight, self.head.weight, self.head.bias,
                                self.dropout_p, self.training)
        return logits, (y.unsqueeze(0),)

    def step(self, x_t: torch.Tensor, state: State) -> tuple[torch.Tensor, State]:
        """One sample, written out (no loop): the streaming graph."""
        h = torch.tanh(self.inp(x_t) + self.fb(state[0][0]))
        h = F.dropout(h, self.dropout_p, self.training)
        z = self.head(h)
        return z, (torch.sigmoid(z).unsqueeze(0),)
