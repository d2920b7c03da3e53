"""Twin of ``ge_reservoir.c``: one step of a leaky tanh reservoir with a sparse recurrent matrix.

Per unit ``j`` (``Hp`` units, state ``h`` and input ``x'`` in Q0.15):

    acc_in_j  = B_j + sum_k Win_jk x'_k            (dense int8 input weights, packed groups)
    acc_rec_j = sum_{(c, w) in row j} w h_c        (sparse int8 recurrent weights, CSR)
    v_j  = mulhr(acc_in_j, Min_j) + mulhr(acc_rec_j, Mrec_j)        (Q3.12 + 32768)
    t_j  = tanh_lut(usat16(v_j))
    h'_j = h_j + ((A (t_j - h_j) + 2^14) >> 15)      (A = round(a 2^15), leak a in (0, 1])

All ``v_j`` are computed from the old state before any ``h_j`` changes.

Storage (``QLayer`` of kind ``reservoir``): ``weight [Hp, Hp + in]`` holds the int8
recurrent weights (columns ``[0, Hp)``) and the input weights (columns
``[Hp, Hp + in)``), each part with its own per-row scale; ``bias`` the int32
``B_j``; ``mult`` ``[Min_0 .. Min_(Hp-1), Mrec_0 .. Mrec_(Hp-1)]`` (stored per
unit, ``Min_j, Mrec_j``, in C).  The C runtime gets the input weights as packed
groups of 4 units (``weights``) and the recurrent matrix in compressed sparse
rows in ``extra`` (int32 words, byte 0 least significant):

    extra[0]                 A, the leak in Q15 (1 .. 32768)
    extra[1]                 G, the number of 4-entry groups of all rows
    extra[2 .. 2 + Hp/4)     groups per row, uint8, row j in byte j % 4 of word j / 4
    next 2G words            column indices, uint16: entry 2i in the low half, 2i + 1 in the high half
    next G words             values, int8: entry 4g + b in byte b of word g

Each row's nonzeros (in increasing column order) are padded with (column 0,
value 0) entries to a multiple of 4.  See QUANTIZATION.md, "Reservoir layers".
"""

from __future__ import annotations

import numpy as np

from gaitedge.errors import ModelError
from gaitedge.quant import spec
from gaitedge.quant.kernel_base import Kernel
from gaitedge.quant.matvec import matvec

#: ``GE_LAYER_RESERVOIR`` in gaitedge_rt.h
CODE = 40
#: leak rate 1 in Q15
LEAK_ONE = 1 << 15


def _i32(words: list[int]) -> list[int]:
    """uint32 bit patterns as int32 values (how ``extra`` stores them)."""
    return [w - (1 << 32) if w >= 1 << 31 else w for w in words]


def encode_csr(w_rec: np.ndarray, leak_q: int) -> np.ndarray:
    """``extra`` of a reservoir layer: the leak and the int8 matrix ``w_rec [Hp, Hp]`` in CSR groups."""
    w_rec = np.asarray(w_rec, np.int64)
    hp = w_rec.shape[0]
    if w_rec.shape != (hp, hp) or hp % 4:
        raise ModelError(f"reservoir matrix must be square with a multiple of 4 units, got {w_rec.shape}")
    if not 1 <= leak_q <= LEAK_ONE:
        raise ModelError(f"reservoir leak {leak_q} / 2^15 is outside (0, 1]")
    if np.abs(w_rec).max(initial=0) > 127:
        raise ModelError("reservoir weights must be int8 in [-127, 127]")
    counts, cols, vals = [], [], []
    for j in range(hp):
        nz = np.flatnonzero(w_rec[j])
        pad = (-len(nz)) % 4
        counts.append((len(nz) + pad) // 4)
        cols += [int(c) for c in nz] + [0] * pad
        vals += [int(v) for v in w_rec[j, nz]] + [0] * pad
    if max(counts, default=0) > 255:
        raise ModelError("a reservoir row has more than 1020 nonzeros")
    g = sum(counts)
    words = [leak_q, g]
    words += [sum(counts[j + b] << (8 * b) for b in range(4)) for j in range(0, hp, 4)]
    words += [cols[i] | (cols[i + 1] << 16) for i in range(0, len(cols), 2)]
    words += [sum((vals[i + b] & 0xFF) << (8 * b) for b in range(4)) for i in range(0, len(vals), 4)]
    return np.asarray(_i32(words), np.int64)


def decode_csr(extra: np.ndarray, hp: int) -> tuple[int, np.ndarray]:
    """(leak A in Q15, dense int8 ``[hp, hp]``) from ``extra``, reading the format as ``ge_reservoir.c`` does."""
    u = [int(v) & 0xFFFFFFFF for v in np.asarray(extra, np.int64)]
    leak_q, g = u[0], u[1]
    base_c = 2 + hp // 4
    base_v = base_c + 2 * g
    if len(u) != base_v + g:
        raise ModelError(f"reservoir extra holds {len(u)} words, expected {base_v + g}")
    w = np.zeros((hp, hp), np.int64)
    e = 0
    for j in range(hp):
        n = 4 * ((u[2 + j // 4] >> (8 * (j % 4))) & 0xFF)
        for i in range(e, e + n):
            c = (u[base_c + i // 2] >> (16 * (i % 2))) & 0xFFFF
            v = (u[base_v + i // 4] >> (8 * (i % 4))) & 0xFF
            w[j, c] += v - 256 if v >= 128 else v
        e += n
    if e != 4 * g:
        raise ModelError(f"reservoir rows hold {e // 4} groups, extra[1] says {g}")
    return leak_q, w


def _decoded(layer) -> tuple[int, np.ndarray]:
    cache = getattr(layer, "_reservoir_csr", None)
    if cache is None or cache[0] is not layer.extra:
        cache = (layer.extra, *decode_csr(layer.extra, layer.hidden))
        object.__setattr__(layer, "_reservoir_csr", cache)
    return cache[1], cache[2]


def reservoir_step(layer, v: np.ndarray, aux: np.ndarray | None) -> tuple[np.ndarray, np.ndarray | None]:
    """``v [B, Hp + in]`` (h then input) -> (new ``h [B, Hp]``, aux unchanged)."""
    hp = layer.hidden
    leak_q, w_rec = _decoded(layer)
    h = np.asarray(v[:, :hp], np.int64)
    acc_in = matvec(layer.weight[:, hp:], layer.bias, v[:, hp:])
    acc_rec = matvec(w_rec, np.zeros(hp, np.int64), h)
    pre = spec.mulhr(acc_in, layer.mult[None, :hp]) + spec.mulhr(acc_rec, layer.mult[None, hp:])
    t = spec.tanh_q(spec.usat16(pre))
    return h + ((leak_q * (t - h) + (1 << 14)) >> 15), aux


def _groups(lay) -> list[tuple[list[int], int, int]]:
    return [(list(range(j, j + 4)), lay.hidden, lay.in_size) for j in range(0, lay.hidden, 4)]


def _mult_order(lay) -> list[int]:
    return [r for j in range(lay.hidden) for r in (j, lay.hidden + j)]


KERNEL = Kernel("reservoir", CODE, "GE_LAYER_RESERVOIR", reservoir_step, _groups, _mult_order,
                scratch=lambda lay: lay.hidden)
