"""Twin of ``ge_preproc.c``: raw int16 counts -> normalized, filtered Q0.15 inputs.

Per channel ``v = clamp(r * nm + nb, -2^29, 2^29 - 1)`` (Q.24 of ``x_norm / K``), then the
causal Butterworth filter as direct-form-II-transposed second-order sections with
Q28 coefficients and int64 state (steady state for the first sample after a
reset), then ``x' = sat16((y + 2^8) >> 9)``.
"""

from __future__ import annotations

import numpy as np

from gaitedge.quant.spec import COEF_FRAC, SIG_CLAMP, SIG_FRAC, sat16


def _clamp_sig(v: np.ndarray) -> np.ndarray:
    return np.clip(v, -SIG_CLAMP, SIG_CLAMP - 1)


class FilterState:
    """Filter state of ``B`` streams: ``z [B, C, S, 2]`` int64 and a primed flag."""

    def __init__(self, batch: int, channels: int, sections: int) -> None:
        self.z = np.zeros((batch, channels, sections, 2), np.int64)
        self.primed = False


def preproc_step(pp, counts: np.ndarray, fs: FilterState | None) -> np.ndarray:
    """``counts [B, C]`` (int16 values) -> ``x' [B, Cp]`` (Cp = C padded to even)."""
    r = np.asarray(counts, np.int64)
    v = _clamp_sig(r * pp.norm_mult[None, :] + pp.norm_bias[None, :])
    if pp.sos is not None and len(pp.sos):
        if not fs.primed:
            # steady state for the first sample: z[s, k] = zi[s, k] * v0
            fs.z[:] = pp.zi[None, None, :, :] * v[:, :, None, None]
            fs.primed = True
        half = 1 << (COEF_FRAC - 1)
        u = v
        for s in range(len(pp.sos)):
            b0, b1, b2, a1, a2 = (int(c) for c in pp.sos[s])
            z0, z1 = fs.z[:, :, s, 0], fs.z[:, :, s, 1]
            y = _clamp_sig((b0 * u + z0 + half) >> COEF_FRAC)
            fs.z[:, :, s, 0] = b1 * u - a1 * y + z1
            fs.z[:, :, s, 1] = b2 * u - a2 * y
            u = y
        v = u
    shift = SIG_FRAC - 15
    x = sat16((v + (1 << (shift - 1))) >> shift)
    out = np.zeros((x.shape[0], pp.in_pad), np.int64)
    out[:, : x.shape[1]] = x
    return out
