"""Twin of ``ge_tcn.c``: one TCN residual block streamed one sample at a time, bit for bit.

A block (layer kind ``tcn``, ``GE_LAYER_TCN``) with kernel size ``K`` (``cell_frac``),
dilation ``d`` (``extra[0]``), ``C = in_size`` input and ``H = hidden`` output
channels keeps ring buffers of its last ``L = (K-1) d`` inputs and conv1 outputs.
With ``X_k`` the input ``k d`` samples before the current one (``X_0`` = current)
and ``A_k`` likewise for conv1's outputs, per output channel ``o``:

    a_o   = relu15(mulhr(b1_o + sum_{k,c} w1[o, (K-1-k) C + c] X_k[c], M1_o))     (Q fa)
    y_o   = max(mulhr(b2_o + sum_{k,j} w2[o, (K-1-k) H + j] A_k[j], M2_o), 0)     (Q fo)
    r_o   = mulhr(br_o + sum_c wr[o, c] X_0[c], Mr_o)      (extra[1] = 1: 1x1 conv)
          = shift(X_0[o], extra[2])                          (extra[1] = 0: identity)
    h_o   = relu15(y_o + r_o)                                                      (Q fo)

``relu15(v) = min(max(v, 0), 32767)``; ``shift(x, s) = x 2^s`` for ``s >= 0``, else
``(x + 2^(-s-1)) >> -s``; ``A_0`` is the ``a`` just computed.  Activations are int16
in a per-tensor format Q(15-f).f chosen by calibration (the multipliers fold the
formats in; see QUANTIZATION.md, "TCN blocks").

State (``aux``, int16 words): ``[pos, 0, ring_x (L x C), ring_a (L x H)]``; ring slot
``(pos + k d) mod L`` holds the sample ``(K-1-k) d`` steps back (``k < K-1``); after
the step the current input and conv1 output overwrite slot ``pos`` (the oldest) and
``pos`` advances by one modulo ``L``.  No window is recomputed.

Weights (``QLayer.weight``): rows conv1 ``[0, H)`` over columns ``[0, K C)``
(tap-major, oldest tap first), conv2 ``[H, 2H)`` over ``[K C, K C + K H)``, and with
the 1x1 conv rows ``[2H, 3H)`` over ``[K C + K H, K C + K H + C)``; packed in that
order in groups of 4 rows; multipliers in row order.
"""

from __future__ import annotations

import numpy as np

from gaitedge.errors import ModelError
from gaitedge.quant import spec
from gaitedge.quant.kernel_base import Kernel
from gaitedge.quant.matvec import matvec
from gaitedge.quant.spec import mulhr

#: ``GE_LAYER_TCN`` in gaitedge_rt.h
CODE = 30
#: aux words before the ring buffers: the ring position and one pad word.
HEADER = 2
#: kernel sizes the C kernel accepts.
KERNEL_RANGE = (2, 16)
#: largest |identity-residual shift|.
MAX_SHIFT = 15


def relu15(v: np.ndarray) -> np.ndarray:
    """``min(max(v, 0), 32767)``: ReLU into a non-negative int16 activation."""
    return np.clip(np.asarray(v, np.int64), 0, spec.INT16_MAX)


def shift_round(x: np.ndarray, s: int) -> np.ndarray:
    """``x * 2^s`` for ``s >= 0``; ``(x + 2^(-s-1)) >> -s`` (round half up) for ``s < 0``."""
    x = np.asarray(x, np.int64)
    return x << s if s >= 0 else (x + (1 << (-s - 1))) >> (-s)


def block_params(lay) -> tuple[int, int, int, bool, int]:
    """(K, d, L, has 1x1 residual conv, identity shift) of a ``tcn`` layer."""
    k = int(lay.cell_frac)
    d, down, rs = (int(v) for v in np.asarray(lay.extra).ravel()[:3])
    return k, d, (k - 1) * d, bool(down), rs


def aux_words(k: int, d: int, in_size: int, hidden: int) -> int:
    """int16 state words of a block: header plus both ring buffers."""
    return HEADER + (k - 1) * d * (in_size + hidden)


def scratch_words(lay) -> int:
    """int32 scratch of ``ge_tcn_step``: 2H accumulators, then the int16 window buffer."""
    k = int(lay.cell_frac)
    return 2 * lay.hidden + (k * max(lay.in_size, lay.hidden) + 1) // 2


def tcn_step(lay, v: np.ndarray, aux: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``v [B, H + C]`` (h, then the block input), ``aux [B, aux]`` -> (new h ``[B, H]``, new aux)."""
    k, d, span, down, rs = block_params(lay)
    hp, c = lay.hidden, lay.in_size
    b = v.shape[0]
    aux = np.array(aux, np.int64, copy=True)
    x = np.asarray(v[:, hp : hp + c], np.int64)
    pos = aux[:, 0]
    if np.any((pos < 0) | (pos >= span)):
        raise ModelError(f"tcn block: ring position {pos.tolist()} outside 0..{span - 1} (corrupt state)")
    ring_x = aux[:, HEADER : HEADER + span * c].reshape(b, span, c)
    ring_a = aux[:, HEADER + span * c :].reshape(b, span, hp)
    rows = np.arange(b)
    slots = [(pos + t * d) % span for t in range(k - 1)]
    w, bias, m = lay.weight, lay.bias, lay.mult
    c1, c2 = k * c, k * c + k * hp
    win = np.concatenate([ring_x[rows, s] for s in slots] + [x], 1)
    a = relu15(mulhr(matvec(w[:hp, :c1], bias[:hp], win), m[None, :hp]))
    ring_x[rows, pos] = x
    win = np.concatenate([ring_a[rows, s] for s in slots] + [a], 1)
    ring_a[rows, pos] = a
    y = np.maximum(mulhr(matvec(w[hp : 2 * hp, c1:c2], bias[hp : 2 * hp], win), m[None, hp : 2 * hp]), 0)
    if down:
        r = mulhr(matvec(w[2 * hp : 3 * hp, c2 : c2 + c], bias[2 * hp : 3 * hp], x), m[None, 2 * hp : 3 * hp])
    else:
        r = shift_round(x[:, :hp], rs)
    h = relu15(y + r)
    aux[:, HEADER : HEADER + span * c] = ring_x.reshape(b, -1)
    aux[:, HEADER + span * c :] = ring_a.reshape(b, -1)
    aux[:, 0] = (pos + 1) % span
    return h, aux


def _groups(lay) -> list[tuple[list[int], int, int]]:
    k, _, _, down, _ = block_params(lay)
    hp, c = lay.hidden, lay.in_size
    out = [(list(range(j, j + 4)), 0, k * c) for j in range(0, hp, 4)]
    out += [(list(range(hp + j, hp + j + 4)), k * c, k * hp) for j in range(0, hp, 4)]
    if down:
        out += [(list(range(2 * hp + j, 2 * hp + j + 4)), k * c + k * hp, c) for j in range(0, hp, 4)]
    return out


KERNEL = Kernel("tcn", CODE, "GE_LAYER_TCN", tcn_step, _groups, lambda lay: list(range(lay.rows)),
                scratch_words)
