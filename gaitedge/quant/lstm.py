"""Twin of ``ge_lstm.c``: one LSTM step in the fixed-point spec.

Rows are the torch gates i, f, g, o (``Hp`` each) over ``v = [h; input]``.
``c`` is int16 in Q(15-cf).cf with ``cf = layer.cell_frac``.
"""

from __future__ import annotations

import numpy as np

from gaitedge.quant.kernel_base import Kernel, lstm_groups, per_unit
from gaitedge.quant.matvec import matvec
from gaitedge.quant.spec import U_OFFSET, mulhr, sat16, sigmoid_q, tanh_q, usat16


def lstm_step(layer, v: np.ndarray, c: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``v [B, Hp + in]``, ``c [B, Hp]`` -> (new h, new c), both int64 arrays of int16 values."""
    hp = layer.hidden
    acc = matvec(layer.weight, layer.bias, v)
    u = usat16(mulhr(acc, layer.mult[None, :]))
    i = sigmoid_q(u[:, 0 * hp : 1 * hp])
    f = sigmoid_q(u[:, 1 * hp : 2 * hp])
    g = tanh_q(u[:, 2 * hp : 3 * hp])
    o = sigmoid_q(u[:, 3 * hp : 4 * hp])
    cf = layer.cell_frac
    c = np.asarray(c, np.int64)
    c_new = sat16((f * c + ((i * g) >> (15 - cf)) + (1 << 14)) >> 15)
    uc = usat16(c_new * (1 << (12 - cf)) + U_OFFSET)
    h_new = sat16((o * tanh_q(uc) + (1 << 14)) >> 15)
    return h_new, c_new


KERNEL = Kernel("lstm", 1, "GE_LAYER_LSTM", lambda lay, v, aux: lstm_step(lay, v, aux), lstm_groups,
                per_unit(4))
