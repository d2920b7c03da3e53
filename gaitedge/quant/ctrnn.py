"""Twin of ``ge_ctrnn.c``: one CTRNN (leaky integrator) step in the fixed-point spec.

Rows (one per unit, groups of 4 units like Elman) over ``v = [z; input]`` give the
drive in Q3.12 without offset.  The potential ``u`` (layer ``aux``) is int16 with
``uf = layer.cell_frac`` fraction bits; the layer's state-vector words hold
``z = 2 sigmoid(u) - 1`` in Q0.15 (so the zero state is ``u = 0``, ``y = 1/2``).
``extra[j] = A_j = round(alpha_j 2^(12 + uf))`` with ``alpha_j = dt / tau_j``:

    p  = mulhr(acc, M)                                  drive, Q3.12
    d  = p - u * 2^(12 - uf)                            Q.12
    u' = sat16(u + mulhr(d * 2^8, A))                   = u + round(alpha d), Q.uf
    z' = 2 sigmoid_lut(usat16(u' * 2^(12 - uf) + 32768)) - 32768
"""

from __future__ import annotations

import numpy as np

from gaitedge.quant import spec
from gaitedge.quant.kernel_base import Kernel, unit_quads
from gaitedge.quant.matvec import matvec
from gaitedge.quant.spec import U_OFFSET, mulhr, sat16, sigmoid_q, usat16

#: ``GE_LAYER_CTRNN`` in gaitedge_rt.h
CODE = 10
#: fraction bits of ``alpha`` in ``A`` beyond the potential's (``A = alpha 2^(12 + uf)``)
ALPHA_SHIFT = 12
#: left shift of the Q.12 difference before the mulhr with ``A``
DIFF_SHIFT = 8


def z_of_u(u: np.ndarray, uf: int) -> np.ndarray:
    """``2 sigmoid(u) - 1`` in Q0.15 from a potential in Q(15-uf).uf (the LUT, doubled and centered)."""
    return 2 * sigmoid_q(usat16(np.asarray(u, np.int64) * (1 << (spec.PRE_FRAC - uf)) + U_OFFSET)) - 32768


def ctrnn_step(layer, v: np.ndarray, u: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``v [B, Hp + in]`` (z then input), ``u [B, Hp]`` -> (new z, new u), int64 arrays of int16 values."""
    uf = layer.cell_frac
    u = np.asarray(u, np.int64)
    acc = matvec(layer.weight, layer.bias, v)
    d = mulhr(acc, layer.mult[None, :]) - u * (1 << (spec.PRE_FRAC - uf))
    u_new = sat16(u + mulhr(d * (1 << DIFF_SHIFT), np.asarray(layer.extra, np.int64)[None, :]))
    return z_of_u(u_new, uf), u_new


KERNEL = Kernel("ctrnn", CODE, "GE_LAYER_CTRNN", lambda lay, v, aux: ctrnn_step(lay, v, aux),
                unit_quads, lambda lay: list(range(lay.hidden)))
