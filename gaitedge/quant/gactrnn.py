"""Twin of ``ge_gactrnn.c``: one gated adaptive CTRNN step in the fixed-point spec.

Three row blocks over ``v = [z; input]`` (``z = 2 sigmoid(u) - 1``, Q0.15): input gate
``i`` and forget gate ``f`` (LUT input form, offset folded into the bias) and the drive
``p`` (Q3.12, no offset).  Per block of up to 64 units the C walks the ``i`` groups,
then the ``f`` groups, then the ``p`` groups (4 units each); multipliers in the same
order.  ``u`` (``aux``) is int16 with ``uf = layer.cell_frac`` fraction bits;
``extra[j] = A_j = round(alpha_j 2^17)``, ``alpha_j = dt / tau_j``:

    ig = sigmoid(usat16(mulhr(acc_i, M_i))),  fg = sigmoid(usat16(mulhr(acc_f, M_f)))    Q0.15
    p  = mulhr(acc_p, M_p)                                                                Q3.12
    pu = sat16((p + 2^(11 - uf)) >> (12 - uf))      (pu = sat16(p) when uf = 12)          Q.uf
    d  = ig * pu - fg * u                                                                 Q.(15 + uf), |d| < 2^31
    u' = sat16(u + mulhr(d, A))                     = u + round(alpha (i p - f u))
    z' = 2 sigmoid_lut(usat16(u' * 2^(12 - uf) + 32768)) - 32768
"""

from __future__ import annotations

import numpy as np

from gaitedge.quant import spec
from gaitedge.quant.ctrnn import z_of_u
from gaitedge.quant.kernel_base import Kernel
from gaitedge.quant.matvec import matvec
from gaitedge.quant.spec import mulhr, sat16, sigmoid_q, usat16

#: ``GE_LAYER_GACTRNN`` in gaitedge_rt.h
CODE = 11
#: fraction bits of ``A = alpha 2^17`` (``d`` carries 15 more fraction bits than ``u``)
ALPHA_FRAC = 17


def gactrnn_step(layer, v: np.ndarray, u: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``v [B, Hp + in]``, ``u [B, Hp]`` -> (new z, new u); rows are blocks i, f, p of ``Hp`` each."""
    hp, uf = layer.hidden, layer.cell_frac
    u = np.asarray(u, np.int64)
    acc = matvec(layer.weight, layer.bias, v)
    m = layer.mult[None, :]
    ig = sigmoid_q(usat16(mulhr(acc[:, :hp], m[:, :hp])))
    fg = sigmoid_q(usat16(mulhr(acc[:, hp : 2 * hp], m[:, hp : 2 * hp])))
    p = mulhr(acc[:, 2 * hp :], m[:, 2 * hp :])
    s = spec.PRE_FRAC - uf
    pu = sat16(p if s == 0 else (p + (1 << (s - 1))) >> s)
    d = ig * pu - fg * u
    u_new = sat16(u + mulhr(d, np.asarray(layer.extra, np.int64)[None, :]))
    return z_of_u(u_new, uf), u_new


def _blocks(hp: int) -> list[tuple[int, int]]:
    return [(j0, min(spec.BLOCK, hp - j0)) for j0 in range(0, hp, spec.BLOCK)]


def _groups(lay) -> list[tuple[list[int], int, int]]:
    hp, ncols = lay.hidden, lay.hidden + lay.in_size
    return [([g * hp + j + r for r in range(4)], 0, ncols)
            for j0, nb in _blocks(hp) for g in range(3) for j in range(j0, j0 + nb, 4)]


def _mult_order(lay) -> list[int]:
    hp = lay.hidden
    return [g * hp + j for j0, nb in _blocks(hp) for g in range(3) for j in range(j0, j0 + nb)]


KERNEL = Kernel("gactrnn", CODE, "GE_LAYER_GACTRNN", lambda lay, v, aux: gactrnn_step(lay, v, aux),
                _groups, _mult_order)
