"""Twin of ``ge_pcrnn.c``: the predictive-coding RNN layer (two levels, K relaxation steps per sample).

Integer formats (QUANTIZATION.md, "PC-RNN layer"): ``f = layer.cell_frac`` is the
fraction bits of both levels and of the level errors, Q(15-f).f in int16;
``x'`` (the layer's input) is Q0.15 of ``x_norm / K``; the sensory error is Q2.13
of the same units; ``a = tanh(p1)`` is Q0.15.  ``extra = [K, A1, A2]`` with
``A = round(32768 dt / tau)`` (at most 32767).  Rows (one matrix each, packed in
this order, one int32 multiplier per row):

========  ======================  =========  =================  =============================
block     rows x columns          input      output             float weights
========  ======================  =========  =================  =============================
``R``     prior: H2 x H2          p2 (Qf)    u (gate row)       ``W_r 2^(15-f)``, ``b_r``
``T``     top-down: H1 x H2       p2 (Qf)    Qf                 ``W21``, ``b_1``
``G``     generative: Cr x H1     a (Q0.15)  Q2.13              ``diag(1/K) W_s``, ``b_s / K``
``B``     sensory grad: H1 x C    e_s (Q13)  Qf                 ``W_s^T diag(K)``
``U``     bottom-up: H2 x H1      e_1 (Qf)   Qf                 ``W21^T``
========  ======================  =========  =================  =============================

``Cr = ceil4(C)``.  The R rows are gate rows (section 4 of QUANTIZATION.md); the
others map inputs in Q(fi) to Q(fo) with ``M = round(s 2^(32 + fo - fi))``.

Per sample (all shifts arithmetic, ``r15(v) = (v + 2^14) >> 15``)::

    phat = round_to_f(tanh_q(usat16(mulhr(R p2 + b_R, M))))      ((t + 2^(14-f)) >> (15-f))
    p2 = phat
    repeat K times:
        a   = tanh_q(usat16(p1 * 2^(12-f) + 32768))
        e_s = sat16(((x' + 2) >> 2) - mulhr(G a + b_G, M))       (c < in_size)
        e_1 = sat16(p1 - mulhr(T p2 + b_T, M))
        p1 += r15(A1 * (r15((32768 - r15(a a)) * sat16(mulhr(B e_s, M))) - e_1)), sat16
        p2 += r15(A2 * (sat16(mulhr(U e_1, M)) - sat16(p2 - phat))), sat16
    h = p2

where both updates use the values from before the step (``e_1`` and ``a`` are
computed first; ``p2`` is read for ``e_1`` and ``e_2`` before it changes).
"""

from __future__ import annotations

import numpy as np

from gaitedge.quant.kernel_base import Kernel
from gaitedge.quant.matvec import matvec
from gaitedge.quant.spec import U_OFFSET, mulhr, sat16, tanh_q, usat16

#: GE_LAYER_PCRNN in gaitedge_rt.h
CODE = 15
#: fraction bits of the sensory error (Q2.13 of the input units x_norm / K).
ES_FRAC = 13
#: allowed state fraction bits (cell_frac) of the two levels.
STATE_FRAC_RANGE = (8, 12)


def _r15(v: np.ndarray) -> np.ndarray:
    return (v + (1 << 14)) >> 15


def blocks(lay) -> list[tuple[str, int, int]]:
    """``[(name, rows, ncols), ...]`` of the five row blocks in weight-row order."""
    h2, h1, c = lay.hidden, lay.aux, lay.in_size
    cr = -(-c // 4) * 4
    return [("R", h2, h2), ("T", h1, h2), ("G", cr, h1), ("B", h1, c), ("U", h2, h1)]


def _slices(lay) -> dict[str, tuple[slice, int]]:
    out, r = {}, 0
    for name, rows, ncols in blocks(lay):
        out[name] = (slice(r, r + rows), ncols)
        r += rows
    return out


def _mv(lay, sl: dict, name: str, v: np.ndarray) -> np.ndarray:
    rows, ncols = sl[name]
    return mulhr(matvec(lay.weight[rows, :ncols], lay.bias[rows], v), lay.mult[rows][None, :])


def pcrnn_step(lay, seg: np.ndarray, aux: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``seg [B, H2 + in]`` (p2 then x'), ``aux [B, H1]`` (p1) -> (new p2, new p1)."""
    f = int(lay.cell_frac)
    k, a1, a2 = (int(v) for v in np.asarray(lay.extra)[:3])
    h2, c = lay.hidden, lay.in_size
    sl = _slices(lay)
    p2 = np.asarray(seg[:, :h2], np.int64)
    x = np.asarray(seg[:, h2 : h2 + c], np.int64)
    p1 = np.asarray(aux, np.int64).copy()
    t = tanh_q(usat16(_mv(lay, sl, "R", p2)))
    phat = (t + (1 << (14 - f))) >> (15 - f)
    p2 = phat.copy()
    xs = (x + 2) >> 2
    for _ in range(k):
        a = tanh_q(usat16(p1 * (1 << (12 - f)) + U_OFFSET))
        e_s = sat16(xs - _mv(lay, sl, "G", a)[:, :c])
        e_1 = sat16(p1 - _mv(lay, sl, "T", p2))
        ds = sat16(_mv(lay, sl, "B", e_s))
        da = 32768 - _r15(a * a)
        p1 = sat16(p1 + _r15(a1 * (_r15(da * ds) - e_1)))
        d1 = sat16(_mv(lay, sl, "U", e_1))
        p2 = sat16(p2 + _r15(a2 * (d1 - sat16(p2 - phat))))
    return p2, p1


def _groups(lay) -> list[tuple[list[int], int, int]]:
    out, r = [], 0
    for _, rows, ncols in blocks(lay):
        out += [(list(range(j, j + 4)), 0, ncols) for j in range(r, r + rows, 4)]
        r += rows
    return out


def scratch_words(lay) -> int:
    """int32 scratch of ``ge_pcrnn_step``: the accumulators of the widest block, then int16
    buffers phat [H2], a [H1], e_s [in_size], e_1 [H1] (mirror of ``ge_layer_scratch``)."""
    h2, h1, c = lay.hidden, lay.aux, lay.in_size
    return max(h2, h1, -(-c // 4) * 4) + (h2 + 2 * h1 + c) // 2


KERNEL = Kernel("pcrnn", CODE, "GE_LAYER_PCRNN", pcrnn_step, _groups,
                lambda lay: list(range(lay.rows)), scratch_words)
