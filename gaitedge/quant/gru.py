"""Twin of ``ge_gru.c``: one GRU step in the fixed-point spec.

Rows: r, z over ``[h; input]``; ``nh`` over h only (its input columns are zero);
``nx`` over the input only (its h columns are zero); ``Hp`` rows each.
"""

from __future__ import annotations

import numpy as np

from gaitedge.quant import spec
from gaitedge.quant.kernel_base import Kernel, per_unit
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


def _groups(lay) -> list[tuple[list[int], int, int]]:
    hp, ncols = lay.hidden, lay.hidden + lay.in_size
    groups = []
    for j0 in range(0, hp, spec.BLOCK):
        nb = min(spec.BLOCK, hp - j0)
        for j in range(j0, j0 + nb, 2):
            groups.append(([j, hp + j, j + 1, hp + j + 1], 0, ncols))
        for j in range(j0, j0 + nb, 4):
            groups.append(([2 * hp + j + i for i in range(4)], 0, hp))
        for j in range(j0, j0 + nb, 4):
            groups.append(([3 * hp + j + i for i in range(4)], hp, lay.in_size))
    return groups


KERNEL = Kernel("gru", 2, "GE_LAYER_GRU", lambda lay, v, aux: (gru_step(lay, v), aux), _groups, per_unit(4))
