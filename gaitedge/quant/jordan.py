"""Twin of ``ge_jordan.c``: one Jordan-network step in the fixed-point spec.

The float layer (``gaitedge.models.jordan``) is::

    h_t = tanh(W_xh x_t + W_yh y_{t-1} + b_h),   y_t = sigmoid(W_hy h_t + b_y)

Integer form, with ``Hp`` padded hidden units, ``I`` input words, ``Ky`` words of
fed-back output (classes rounded up to even; the layer's ``aux`` state) and
``Ko`` output rows (classes rounded up to 4)::

    acc_j = B_j + sum_c wx_jc x'_c + sum_k wy_jk y_k           j < Hp  (two matrix passes)
    h_j   = tanh(usat16(mulhr(acc_j, M_j)))                     Q0.15, written over the layer's h
    y_k   = sigmoid(usat16(mulhr(B_k + sum_j wo_kj h_j, M_k)))  k < Ky, Q0.15, the new aux state

``QLayer`` rows: ``[0, Hp)`` the hidden rows over the input (with the bias),
``[Hp, 2Hp)`` the same units' rows over ``y`` (zero bias), ``[2Hp, 2Hp + Ko)`` the
output rows over ``h``.  Columns: ``[h (Hp) | input (I) | y (Ky)]``.  Multipliers
are per hidden unit (rows ``[0, Hp)``) and per output row.  The dense head of the
model reads the layer's ``h`` and recomputes ``W_hy h + b_y`` in the logit format.
"""

from __future__ import annotations

import numpy as np

from gaitedge.quant import spec
from gaitedge.quant.kernel_base import Kernel
from gaitedge.quant.matvec import matvec
from gaitedge.quant.spec import mulhr, sigmoid_q, tanh_q, usat16


def jordan_out_rows(aux: int) -> int:
    """Output rows of a layer whose fed-back output has ``aux`` words (a multiple of 4)."""
    return -(-aux // spec.GROUP_ROWS) * spec.GROUP_ROWS


def jordan_step(layer, v: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``v [B, Hp + I]`` (h, unused, then the input), ``y [B, Ky]`` -> (new h, new y)."""
    hp, n_in, ky = layer.hidden, layer.in_size, layer.aux
    ko = jordan_out_rows(ky)
    w, b, m = layer.weight, layer.bias, layer.mult
    x = np.asarray(v, np.int64)[:, hp : hp + n_in]
    acc = matvec(w[:hp, hp : hp + n_in], b[:hp], x) + matvec(w[hp : 2 * hp, hp + n_in :], b[hp : 2 * hp], y)
    h = tanh_q(usat16(mulhr(acc, m[None, :hp])))
    r = slice(2 * hp, 2 * hp + ko)
    acc_o = matvec(w[r, :hp], b[r], h)
    y_new = sigmoid_q(usat16(mulhr(acc_o, m[None, r])))[:, :ky]
    return h, y_new


def _groups(lay) -> list[tuple[list[int], int, int]]:
    hp, n_in, ky = lay.hidden, lay.in_size, lay.aux
    g = [(list(range(j, j + 4)), hp, n_in) for j in range(0, hp, 4)]
    g += [(list(range(hp + j, hp + j + 4)), hp + n_in, ky) for j in range(0, hp, 4)]
    g += [(list(range(2 * hp + k, 2 * hp + k + 4)), 0, hp) for k in range(0, jordan_out_rows(ky), 4)]
    return g


def _mult_order(lay) -> list[int]:
    hp = lay.hidden
    return list(range(hp)) + list(range(2 * hp, 2 * hp + jordan_out_rows(lay.aux)))


def _scratch(lay) -> int:
    return max(2 * lay.hidden, jordan_out_rows(lay.aux))


KERNEL = Kernel("jordan", 20, "GE_LAYER_JORDAN", jordan_step, _groups, _mult_order, _scratch)
