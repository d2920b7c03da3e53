"""Twin of ``ge_gru.c``: one GRU step in the fixed-point spec.

Rows: r, z over ``[h; input]``; ``nh`` over h only (its input columns are zero);
``nx`` over the input only (its h columns are zero); ``Hp`` rows each.
"""

from __future__ import annotations

import numpy as np

from gaitedge.quant.matvec import matvec
from gaitedge.quant.spec import mulhr, sat16, sigmoid_q, tanh_q, usat16


def gru_step(layer, v: np.ndarray) -> np.ndarray:
    """``v [B, Hp + in]`` (h then input) -> new ``h [B, Hp]``."""
    hp = layer.hidden
    acc = matvec(layer.weight, layer.bias, v)
    m = layer.mult[None, :]
    q = mulhr(acc, m)
    r = sigmoid_q(usat16(q[:, 0:hp]))
    z = sigmoid_q(usat16(q[:, hp : 2 * hp]))
    nh = sat16(q[:, 2 * hp : 3 * hp])
    nxu = q[:, 3 * hp : 4 * hp]
    n = tanh_q(usat16(nxu + ((r * nh + (1 << 14)) >> 15)))
    h = np.asarray(v[:, :hp], np.int64)
    return n + ((z * (h - n) + (1 << 14)) >> 15)
