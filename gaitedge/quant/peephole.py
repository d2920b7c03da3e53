"""Twin of ``ge_peephole.c``: one peephole-LSTM step in the fixed-point spec.

Rows are the gates i, f, g, o (``Hp`` each, torch order) over ``v = [h; input]``,
packed and requantized exactly as the LSTM's.  The peephole weights are int32
constants in ``layer.extra`` (``[P_i | P_f | P_o]``, ``Hp`` each), ``P = round(p *
2^12)`` clipped to int16, so that with the cell state ``c`` in Q(15-cf).cf the
term ``(P * c + 2^(cf-1)) >> cf`` is ``p * c`` in the Q3.12 pre-activation scale::

    pk(P, c) = (P * c + 2^(cf-1)) >> cf
    i  = sigmoid(usat16(mulhr(acc_i, M_i) + pk(P_i, c)))
    f  = sigmoid(usat16(mulhr(acc_f, M_f) + pk(P_f, c)))
    g  = tanh(usat16(mulhr(acc_g, M_g)))
    c' = sat16((f*c + ((i*g) >> (15 - cf)) + 2^14) >> 15)
    o  = sigmoid(usat16(mulhr(acc_o, M_o) + pk(P_o, c')))      (the new cell)
    h' = (o * tanh(usat16(c' * 2^(12 - cf) + 32768)) + 2^14) >> 15
"""

from __future__ import annotations

import numpy as np

from gaitedge.quant.kernel_base import Kernel, lstm_groups, per_unit
from gaitedge.quant.matvec import matvec
from gaitedge.quant.spec import U_OFFSET, mulhr, sat16, sigmoid_q, tanh_q, usat16

#: fraction bits of the peephole constants (the Q3.12 pre-activation scale).
PEEP_FRAC = 12


def peep_term(p: np.ndarray, c: np.ndarray, cf: int) -> np.ndarray:
    """``(P * c + 2^(cf-1)) >> cf``: peephole contribution in Q3.12."""
    return (np.asarray(p, np.int64)[None, :] * np.asarray(c, np.int64) + (1 << (cf - 1))) >> cf


def peephole_step(layer, v: np.ndarray, c: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``v [B, Hp + in]``, ``c [B, Hp]`` -> (new h, new c), int64 arrays of int16 values."""
    hp, cf = layer.hidden, layer.cell_frac
    p = np.asarray(layer.extra, np.int64).reshape(3, hp)
    c = np.asarray(c, np.int64)
    q = mulhr(matvec(layer.weight, layer.bias, v), layer.mult[None, :])
    i = sigmoid_q(usat16(q[:, 0:hp] + peep_term(p[0], c, cf)))
    f = sigmoid_q(usat16(q[:, hp : 2 * hp] + peep_term(p[1], c, cf)))
    g = tanh_q(usat16(q[:, 2 * hp : 3 * hp]))
    c_new = sat16((f * c + ((i * g) >> (15 - cf)) + (1 << 14)) >> 15)
    o = sigmoid_q(usat16(q[:, 3 * hp :] + peep_term(p[2], c_new, cf)))
    h_new = sat16((o * tanh_q(usat16(c_new * (1 << (12 - cf)) + U_OFFSET)) + (1 << 14)) >> 15)
    return h_new, c_new


KERNEL = Kernel("peephole", 21, "GE_LAYER_PEEPHOLE", peephole_step, lstm_groups, per_unit(4))
