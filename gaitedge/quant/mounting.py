"""Twin of ``ge_mounting.c``: sensor mounting applied to raw int16 counts.

A mounting rotates each IMU triad (the x, y, z channels of one sensor's
accelerometer or gyroscope) from the sensor's own frame into the canonical foot
frame, ``v_canonical = M @ v_sensor``, before the preprocessing (normalization,
filter).  On the device ``M`` is a Q1.14 int16 matrix ``R = round(M * 2^14)``
(``1.0 = 16384``) and per sample

    out[idx[i]] = sat16((sum_j R[i, j] * counts[idx[j]] + 2^13) >> 14)

with int32 accumulation and an arithmetic shift; channels in no triad pass
unchanged (``gaitedge/csrc/QUANTIZATION.md``, "Sensor mounting").  The mounting
is per user and wear, not part of the model weights: ``Runner(qm, mounting=...)``
and ``window_run(..., mounting=...)`` take it as an argument, and the device
receives it over the wire protocol (``SET_MOUNTING``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from gaitedge.errors import DataError
from gaitedge.quant.spec import sat16

#: fraction bits of the rotation entries (GE_MOUNT_FRAC).
MOUNT_FRAC = 14
#: 1.0 in Q1.14.
MOUNT_ONE = 1 << MOUNT_FRAC
#: most triads one mounting holds (GE_MAX_TRIADS: two feet, acc + gyr each).
MAX_TRIADS = 4
#: largest ``|M Mᵀ - I|`` entry :func:`rotation_q14` accepts.
ORTHO_TOL = 1e-3


@dataclass(frozen=True)
class Triad:
    """One rotated sensor triad: three input-channel indices (the model's input
    order; sensor x, y, z) and the Q1.14 matrix ``rot`` (int16 ``[3, 3]``, row-major)."""

    channels: tuple[int, int, int]
    rot: np.ndarray

    def __post_init__(self) -> None:
        object.__setattr__(self, "channels", tuple(int(c) for c in self.channels))
        object.__setattr__(self, "rot", np.asarray(self.rot, np.int64).reshape(3, 3))

    def __eq__(self, other: object) -> bool:
        return (isinstance(other, Triad) and self.channels == other.channels
                and bool(np.array_equal(self.rot, other.rot)))

    def is_identity(self) -> bool:
        """True when ``rot`` is ``2^14 I`` (the triad changes nothing)."""
        return bool(np.array_equal(self.rot, MOUNT_ONE * np.eye(3, dtype=np.int64)))

    def __hash__(self) -> int:
        return hash((self.channels, tuple(int(v) for v in self.rot.ravel())))


def rotation_q14(m: np.ndarray, tol: float = ORTHO_TOL) -> np.ndarray:
    """Q1.14 int16 ``[3, 3]`` of a rotation (or a rotation with one mirror, det -1).

    ``m``: float ``[3, 3]``, ``v_canonical = m @ v_sensor`` (dimensionless).  Entries
    are rounded half away from zero: ``round(m * 2^14)``, in ``[-16384, 16384]``.
    Raises :class:`gaitedge.errors.DataError` when ``m`` is not a 3×3 matrix of
    finite numbers or its rows are not orthonormal within ``tol``
    (``max |m mᵀ - I| > tol``).
    """
    try:
        a = np.asarray(m, np.float64)
    except (TypeError, ValueError):
        raise DataError("mounting matrix: not a 3×3 matrix of numbers") from None
    if a.shape != (3, 3) or not np.all(np.isfinite(a)):
        raise DataError(f"mounting matrix: expected a 3×3 matrix of finite numbers, got shape {a.shape}")
    err = float(np.abs(a @ a.T - np.eye(3)).max())
    if err > tol:
        raise DataError(f"mounting matrix is not a rotation: rows must be orthonormal "
                        f"(max |M Mᵀ - I| = {err:.3g} > {tol:g})")
    q = np.sign(a) * np.floor(np.abs(a) * MOUNT_ONE + 0.5)
    return np.clip(q, -MOUNT_ONE, MOUNT_ONE).astype(np.int16)


def check_triads(triads: Sequence[Triad], n_inputs: int) -> list[Triad]:
    """The triads as a list if they fit a model with ``n_inputs`` channels (what
    ``ge_set_mounting`` accepts), else :class:`gaitedge.errors.DataError`.

    At most :data:`MAX_TRIADS` triads; indices in ``[0, n_inputs)``, no channel in
    two places; entries in ``[-2^14, 2^14]``.
    """
    triads = list(triads)
    if len(triads) > MAX_TRIADS:
        raise DataError(f"mounting has {len(triads)} triads; at most {MAX_TRIADS}")
    seen: set[int] = set()
    for k, t in enumerate(triads):
        if not isinstance(t, Triad):
            raise DataError(f"mounting triad {k}: expected a Triad, got {type(t).__name__}")
        for c in t.channels:
            if not 0 <= c < n_inputs:
                raise DataError(f"mounting triad {k}: channel {c} out of range (the model has {n_inputs} inputs)")
            if c in seen:
                raise DataError(f"mounting triad {k}: channel {c} appears twice in the mounting")
            seen.add(c)
        if t.rot.shape != (3, 3) or np.abs(t.rot).max() > MOUNT_ONE:
            raise DataError(f"mounting triad {k}: entries must be a 3×3 Q1.14 matrix within ±{MOUNT_ONE}")
    return triads


def rotate_counts(counts: np.ndarray, triads: Sequence[Triad] | None) -> np.ndarray:
    """``counts [B, C]`` (int16 values) with every triad rotated: int64 ``[B, C]``.

    Bit for bit ``ge_mounting_apply``.  ``triads`` None or empty: the counts unchanged.
    """
    out = np.array(counts, np.int64, copy=True)
    if not triads:
        return out
    src = out.copy()
    half = 1 << (MOUNT_FRAC - 1)
    for t in triads:
        c = src[..., list(t.channels)]  # [B, 3]
        acc = c @ t.rot.T + half
        out[..., list(t.channels)] = sat16(acc >> MOUNT_FRAC)
    return out


def triads_from_matrices(triad_channels: Sequence[Sequence[int]], matrices: Sequence[np.ndarray]) -> list[Triad]:
    """Triads of float rotation matrices (one per channel triple), quantized with :func:`rotation_q14`."""
    if len(triad_channels) != len(matrices):
        raise DataError(f"{len(triad_channels)} channel triads but {len(matrices)} matrices")
    out = []
    for ch, m in zip(triad_channels, matrices):
        if len(ch) != 3:
            raise DataError(f"a triad needs 3 channels, got {list(ch)}")
        out.append(Triad((int(ch[0]), int(ch[1]), int(ch[2])), rotation_q14(m)))
    return out
