"""Bidirectional LSTM and GRU families (whole-window, non-causal).

Each of ``layers`` levels runs a forward and a backward recurrent pass (torch's
own LSTM / GRU cells, gate order and equations as in torch's docs) over the
whole window and merges them per sample:

    h→_t = cell(x_t, h→_{t-1})            (t = 0 .. T-1)
    h←_t = cell(x_t, h←_{t+1})            (t = T-1 .. 0)
    concat:  y_t = [h→_t ; h←_t]          (2 * hidden features)
    sum:     y_t = h→_t + h←_t            (hidden features)
    mean:    y_t = (h→_t + h←_t) / 2      (hidden features)

``y`` is the input of the next level; the last level's ``y`` goes through
dropout and a dense head: ``logits_t = W_out y_t + b_out``.  The output at ``t``
depends on samples after ``t``, so the model is not causal (``causal = False``):
streaming runtimes refuse it; the window API (ONNX sequence graph, the C
``ge_window_run``) runs it over whole windows.

State: the initial hidden state of every level and direction, ``h`` (and ``c``
for LSTM) of shape ``[2 * layers, B, hidden]`` (level ``l``: forward ``2l``,
backward ``2l + 1``); zeros for a fresh window.  The returned state holds the
final state of each pass (the forward pass's at ``T-1``, the backward pass's at
``0``).
"""

from __future__ import annotations

import torch
from torch import nn

from gaitedge.errors import ModelError
from gaitedge.models.base import GaitModel, State, register

MERGES = ("concat", "sum", "mean")


class BidirectionalClassifier(GaitModel):
    """Stacked bidirectional recurrent layers with a per-sample dense head."""

    causal = False
    rnn_cls: type[nn.Module] = nn.LSTM
    n_state: int = 2

    def __init__(self, input_size: int, num_classes: int, hidden: int = 64, layers: int = 1, dropout: float = 0.0,
                 merge: str = "concat") -> None:
        super().__init__(input_size, num_classes)
        if hidden < 1 or layers < 1 or not 0.0 <= dropout < 1.0:
            raise ModelError(f"{self.family}: need hidden >= 1, layers >= 1, 0 <= dropout < 1")
        if merge not in MERGES:
            raise ModelError(f"{self.family}: option merge={merge!r} is not one of {', '.join(MERGES)}")
        self.hidden = hidden
        self.layers = layers
        self.dropout_p = dropout
        self.merge = merge
        width = 2 * hidden if merge == "concat" else hidden
        self.levels = nn.ModuleList(
            self.rnn_cls(input_size if k == 0 else width, hidden, batch_first=True, bidirectional=True)
            for k in range(layers)
        )
        self.drop = nn.Dropout(dropout)
        self.head = nn.Linear(width, num_classes)

    @property
    def out_width(self) -> int:
        """Features per sample after the merge (input of the next level and of the head)."""
        return 2 * self.hidden if self.merge == "concat" else self.hidden

    def hparams(self) -> dict:
        return {"hidden": self.hidden, "layers": self.layers, "dropout": self.dropout_p, "merge": self.merge}

    def init_state(self, batch: int = 1) -> State:
        z = torch.zeros(2 * self.layers, batch, self.hidden)
        return tuple(z.clone() for _ in range(self.n_state))

    def merge_directions(self, y: torch.Tensor) -> torch.Tensor:
        """``y [B, T, 2H]`` (torch's [forward, backward] output) -> merged features."""
        if self.merge == "concat":
            return y
        h = self.hidden
        s = y[..., :h] + y[..., h:]
        return s if self.merge == "sum" else 0.5 * s

    def forward(self, x: torch.Tensor, state: State | None = None) -> tuple[torch.Tensor, State]:
        if state is None:
            state = tuple(s.to(x.device) for s in self.init_state(x.shape[0]))
        finals: list[list[torch.Tensor]] = [[] for _ in range(self.n_state)]
        y = x
        for k, rnn in enumerate(self.levels):
            s0 = tuple(s[2 * k : 2 * k + 2] for s in state)
            out, sn = rnn(y, s0 if self.n_state > 1 else s0[0])
            sn = tuple(sn) if self.n_state > 1 else (sn,)
            for i, s in enumerate(sn):
                finals[i].append(s)
            y = self.merge_directions(out)
            if k + 1 < self.layers:
                y = self.drop(y)
        logits = self.head(self.drop(y))
        return logits, tuple(torch.cat(f, 0) for f in finals)

    def step(self, x_t: torch.Tensor, state: State) -> tuple[torch.Tensor, State]:
        raise ModelError(f"{self.family} is a whole-window (non-causal) model: it has no streaming step; "
                         f"run it over windows (forward, the ONNX sequence graph, or the C window API)")


@register("bilstm")
class BiLSTMClassifier(BidirectionalClassifier):
    """Bidirectional LSTM (gates i, f, g, o per direction); state (h, c)."""

    rnn_cls = nn.LSTM
    n_state = 2


@register("bigru")
class BiGRUClassifier(BidirectionalClassifier):
    """Bidirectional GRU (gates r, z, n per direction); state h."""

    rnn_cls = nn.GRU
    n_state = 1
