"""Constants and primitive operations of the fixed-point spec (``gaitedge/csrc/QUANTIZATION.md``).

Everything here is plain integer arithmetic on numpy ``int64`` arrays and mirrors
``gaitedge/csrc/runtime/src/ge_math.c`` / ``ge_lut.c``.  Shifts are arithmetic
(``>>`` on a negative number rounds toward minus infinity, as in the spec).
"""

from __future__ import annotations

import math

import numpy as np

from gaitedge.c_literals import int_array

#: spec version written into exported models; the C runtime checks it.
SPEC_VERSION = 1

#: fraction bits of activations, hidden state and normalized inputs (Q0.15 in int16).
ACT_FRAC = 15
#: fraction bits of gate pre-activations (Q3.12); the LUT input is ``u = pre + 32768``.
PRE_FRAC = 12
#: offset that turns a Q3.12 pre-activation into the unsigned LUT input ``u``.
U_OFFSET = 1 << 15
#: LUT: 256 segments of 256 ``u`` steps each, i.e. 1/16 in real units, over [-8, 8).
LUT_SEGMENTS = 256
LUT_SEG_SHIFT = 8
#: LUT knots are ``round(32768 * fn(k / 16 - 8))`` for k = 0..256, clamped to int16.
LUT_KNOT_SCALE = 32768.0
#: fraction bits of the preprocessing signal (normalized input / K, before the filter).
SIG_FRAC = 24
#: preprocessing / filter signals are clamped to [-SIG_CLAMP, SIG_CLAMP - 1] (ARM SSAT #30).
SIG_CLAMP = 1 << 29
#: fraction bits of filter coefficients and steady-state factors (int32, |c| < 8).
COEF_FRAC = 28
#: largest supported concatenated input of one recurrent row (accumulator bound).
MAX_ROW_INPUTS = 512
#: rows are processed in groups of this many (weight packing, see ``gaitedge.export.c_export``).
GROUP_ROWS = 4
#: units per block (GE_BLOCK): one matrix pass, then the gates; also the GRU packing order.
BLOCK = 64
#: bound on |mulhr(acc, M)| of gate rows that the exporter guarantees (keeps the
#: DSP path's ``usat24(v << 8)`` exact; see QUANTIZATION.md).
REQUANT_BOUND = 1 << 22
#: hidden sizes are padded to a multiple of this with inert zero units.
HIDDEN_MULTIPLE = 4
#: cell-state fraction bits allowed for LSTM (Q(15-cf).cf).
CELL_FRAC_RANGE = (8, 12)
#: logit fraction bits allowed.
LOGIT_FRAC_RANGE = (2, 12)

INT16_MIN, INT16_MAX = -(1 << 15), (1 << 15) - 1
INT32_MIN, INT32_MAX = -(1 << 31), (1 << 31) - 1

#: event codes (``ge_step`` output), as in ``gaitedge_rt.h``.
EVENT_NONE, EVENT_TOE_OFF, EVENT_HEEL_STRIKE = 0, 1, 2


def _i64(a) -> np.ndarray:
    return np.asarray(a, dtype=np.int64)


def sat16(v) -> np.ndarray:
    """Clamp to [-32768, 32767]."""
    return np.clip(_i64(v), INT16_MIN, INT16_MAX)


def usat16(v) -> np.ndarray:
    """Clamp to [0, 65535]."""
    return np.clip(_i64(v), 0, 65535)


def sat32(v) -> np.ndarray:
    return np.clip(_i64(v), INT32_MIN, INT32_MAX)


def mulhr(a, m) -> np.ndarray:
    """``floor((a * m + 2^31) / 2^32)`` for int32 ``a`` and ``m`` (ARM SMMULR; round half up).

    Computed without int64 overflow: |a|, |m| < 2^31 so |a * m| <= 2^62.
    """
    a = _i64(a)
    m = _i64(m)
    return (a * m + (1 << 31)) >> 32


def rshift_round(v, s: int) -> np.ndarray:
    """``floor((v + 2^(s-1)) / 2^s)`` (round half up); ``s >= 1``."""
    return (_i64(v) + (1 << (s - 1))) >> s


def lut_knots(fn: str) -> np.ndarray:
    """The 257 int16 knots of the sigmoid or tanh table."""
    k = np.arange(LUT_SEGMENTS + 1, dtype=np.float64)
    x = k / 16.0 - 8.0
    y = 1.0 / (1.0 + np.exp(-x)) if fn == "sigmoid" else np.tanh(x)
    q = np.floor(y * LUT_KNOT_SCALE + 0.5)
    return np.clip(q, -32767, 32767).astype(np.int64)


SIGMOID_KNOTS = lut_knots("sigmoid")
TANH_KNOTS = lut_knots("tanh")


def lut_tables(knots: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(base int32[256], slope int16[256]) such that ``y = base[i] + ((u * slope[i]) >> 8)``."""
    slope = knots[1:] - knots[:-1]
    i = np.arange(LUT_SEGMENTS, dtype=np.int64)
    base = knots[:-1] - slope * i
    return base, slope


def lut(u, knots: np.ndarray) -> np.ndarray:
    """Interpolated table lookup: ``i = u >> 8``, ``f = u & 255``,
    ``y = knot[i] + floor((knot[i+1] - knot[i]) * f / 256)``; ``u`` in [0, 65535]."""
    u = _i64(u)
    i = u >> LUT_SEG_SHIFT
    f = u & 255
    y0 = knots[i]
    return y0 + (((knots[i + 1] - y0) * f) >> 8)


def sigmoid_q(u) -> np.ndarray:
    """sigmoid of the pre-activation ``(u - 32768) / 4096``, Q0.15."""
    return lut(u, SIGMOID_KNOTS)


def tanh_q(u) -> np.ndarray:
    """tanh of the pre-activation ``(u - 32768) / 4096``, Q0.15."""
    return lut(u, TANH_KNOTS)


def quant_multiplier(real: np.ndarray | float, shift: int) -> np.ndarray:
    """``round(real * 2^shift)`` as int64 (caller checks the int32 range)."""
    return np.floor(np.asarray(real, np.float64) * float(2**shift) + 0.5).astype(np.int64)


def lut_max_error() -> dict[str, float]:
    """Largest deviation of the interpolated tables from the float functions (Q0.15 LSB)."""
    u = np.arange(65536)
    x = (u - U_OFFSET) / 4096.0
    out = {}
    for name, fn, ref in (("sigmoid", sigmoid_q, 1 / (1 + np.exp(-x))), ("tanh", tanh_q, np.tanh(x))):
        out[name] = float(np.max(np.abs(fn(u) / 32768.0 - ref)) * 32768.0)
    return out


def lut_table() -> np.ndarray:
    """The runtime's combined table ``[256, 4]``: sigmoid base, slope, tanh base, slope."""
    sb, ss = lut_tables(SIGMOID_KNOTS)
    tb, ts = lut_tables(TANH_KNOTS)
    return np.stack([sb, ss, tb, ts], 1)


def generate_lut_c() -> str:
    """Source of ``gaitedge/csrc/runtime/src/ge_lut.c`` (committed; a test checks it)."""
    return (
        "/* Generated by gaitedge.quant.spec.generate_lut_c(); do not edit.\n"
        " * Sigmoid / tanh tables of the fixed-point spec (QUANTIZATION.md, section LUT).\n"
        " * Entry i (u >> 8 == i) holds {sigmoid base, sigmoid slope, tanh base, tanh slope}:\n"
        " * y = base + ((u * slope) >> 8) for u in [0, 65535], which equals\n"
        " * knot[i] + floor((knot[i+1] - knot[i]) * (u & 255) / 256). */\n"
        '#include "ge_math.h"\n\n'
        + int_array("const int32_t ge_lut", lut_table(), per_line=8)
    )


def ceil_log2(x: float) -> int:
    return int(math.ceil(math.log2(max(x, 1e-30))))
