"""LSTM family: gates i, f, g, o (torch order); state (h, c), each [layers, B, hidden].

c_t = f ⊙ c_{t-1} + i ⊙ g,  h_t = o ⊙ tanh(c_t); logits_t = W_out h_t + b_out.
"""

from torch import nn

from gaitedge.models.base import register
from gaitedge.models.rnn import RecurrentClassifier


@register("lstm")
class LSTMClassifier(RecurrentClassifier):
    """Stacked LSTM with a per-sample dense head."""

    rnn_cls = nn.LSTM
    n_state = 2
