"""GRU family: gates r, z, n (torch order); state h [layers, B, hidden].

n = tanh(W_in x + b_in + r ⊙ (W_hn h + b_hn)),  h_t = (1 - z) ⊙ n + z ⊙ h_{t-1}.
"""

from torch import nn

from gaitedge.models.base import register
from gaitedge.models.rnn import RecurrentClassifier


@register("gru")
class GRUClassifier(RecurrentClassifier):
    """Stacked GRU with a per-sample dense head."""

    rnn_cls = nn.GRU
    n_state = 1
