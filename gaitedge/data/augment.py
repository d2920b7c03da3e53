"""Training-time augmentation of IMU windows: sensor-frame rotations, left/right mirroring, time warp.

Pure numpy; :class:`gaitedge.data.windows.WindowSampler` draws and applies them.
"""

from __future__ import annotations

import numpy as np


def imu_triads(channels: list[str]) -> list[list[int]]:
    """Channel-index groups ``[x, y, z]`` per sensor and quantity, grouped per IMU.

    Returns one list per IMU (prefix before ``acc``/``gyr``) holding the indices
    of its acc x/y/z then gyr x/y/z triads (those present).
    """
    groups: dict[str, list[int]] = {}
    for qty in ("acc", "gyr"):
        for name in channels:
            if name.endswith(f"{qty}_x"):
                prefix = name[: -len(f"{qty}_x")]
                tri = [channels.index(f"{prefix}{qty}_{a}") if f"{prefix}{qty}_{a}" in channels else -1 for a in "xyz"]
                if -1 not in tri:
                    groups.setdefault(prefix, []).extend(tri)
    return list(groups.values())


def mirror_signs(channels: list[str]) -> np.ndarray:
    """Per-channel signs of a mirror in the sagittal (x-z) plane of the canonical frame.

    Accelerations are polar vectors (``acc_y`` flips), angular rates axial ones
    (``gyr_x`` and ``gyr_z`` flip); other channels keep their sign.
    """
    flips = ("acc_y", "gyr_x", "gyr_z")
    return np.array([-1.0 if any(c.endswith(f) for f in flips) else 1.0 for c in channels], np.float32)


def random_rotations(rng: np.random.Generator, n: int, max_deg: float) -> np.ndarray:
    """``n`` rotation matrices about random axes by angles uniform in ±max_deg."""
    axis = rng.normal(size=(n, 3))
    axis /= np.linalg.norm(axis, axis=1, keepdims=True)
    ang = np.deg2rad(rng.uniform(-max_deg, max_deg, size=n))
    k = np.zeros((n, 3, 3))
    k[:, 0, 1], k[:, 0, 2], k[:, 1, 2] = -axis[:, 2], axis[:, 1], -axis[:, 0]
    k = k - k.transpose(0, 2, 1)
    s, c = np.sin(ang)[:, None, None], np.cos(ang)[:, None, None]
    return np.eye(3)[None] + s * k + (1 - c) * (k @ k)


#: number of random speed knots per window for time warping.
WARP_KNOTS = 4


def warp_offsets(knots: np.ndarray, window: int, max_stretch: float) -> np.ndarray:
    """Source-sample offsets ``[B, window]`` (float, first 0) of smoothly time-warped windows.

    The local playback speed of window ``b`` moves linearly between ``knots[b]``
    (values in [-1, 1], spread evenly over the window): at each output sample
    the window advances ``1 + max_stretch * knot`` source samples, so the time
    axis is locally stretched or compressed by at most ``max_stretch``
    (fraction, e.g. 0.1 = ±10 %), which mimics cadence changes within a window.
    """
    k = knots.shape[1]
    basis = np.stack([np.interp(np.arange(window), np.linspace(0, window - 1, k), np.eye(k)[i]) for i in range(k)])
    speed = 1.0 + max_stretch * (knots @ basis)
    return np.concatenate([np.zeros((len(knots), 1)), np.cumsum(speed[:, :-1], axis=1)], axis=1)
