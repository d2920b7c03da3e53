"""Elman (simple) RNN family: h_t = tanh(W_ih x_t + b_ih + W_hh h_{t-1} + b_hh)."""

from torch import nn

from gaitedge.models.base import register
from gaitedge.models.rnn import RecurrentClassifier


@register("elman")
class ElmanClassifier(RecurrentClassifier):
    """Stacked tanh RNN with a per-sample dense head."""

    rnn_cls = nn.RNN
    n_state = 1
