"""Random fixed-length training windows cut from recordings, with their augmentation.

:class:`WindowSampler` draws a batch as a :class:`BatchPlan` (small per-window
parameters) and cuts it with :meth:`WindowSampler.materialize`; the windows are
numpy arrays (``float32`` inputs ``[B, T, C]`` in normalized units, ``int64``
labels ``[B, T]`` with :data:`UNLABELED` where no loss applies).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from gaitedge.data.augment import WARP_KNOTS, random_rotations, warp_offsets
from gaitedge.data.preprocess import Normalizer
from gaitedge.data.recording import UNLABELED


def loss_labels(labels: np.ndarray, boundary: int, delay: int) -> np.ndarray:
    """Training targets aligned to model steps: step t learns the label of sample t - delay."""
    y = labels.copy()
    if boundary > 0:
        change = np.flatnonzero(np.diff(labels) != 0) + 1
        for c in change:
            y[max(c - boundary, 0) : c + boundary] = UNLABELED
    if delay > 0:
        y = np.concatenate([np.full(delay, UNLABELED, np.int64), y[:-delay]])
    return y


@dataclass
class BatchPlan:
    """One training batch as per-window draws, before any window is cut.

    ``rec`` / ``start``: recording index and first source sample of each window;
    ``warp``: source offsets ``[B, window]`` when time-warped, else None;
    ``rot``: one ``[B, 3, 3]`` rotation per IMU (sensor frame, acc and gyro
    together); ``gain``: ``[B, C]`` relative gain deviations or None;
    ``noise_seed``: per-window seed of the Gaussian noise (std ``noise`` in
    normalized units) or None.
    """

    rec: np.ndarray
    start: np.ndarray
    warp: np.ndarray | None
    rot: list[np.ndarray]
    gain: np.ndarray | None
    noise_seed: np.ndarray | None
    noise: float
    #: ``[B]`` bool, windows mirrored left/right (None: mirroring off)
    mirror: np.ndarray | None = None


class WindowSampler:
    """Random fixed-length training windows, recordings drawn in proportion to length.

    Holds un-normalized signals; augmentation (time warp, sensor-frame rotation,
    per-channel gain, noise) is applied per window around normalization.
    :meth:`plan` + :meth:`materialize` is what training uses (a batch can be cut
    in parts by different processes); :meth:`batch` is the older one-call form.
    """

    def __init__(
        self,
        xs: list[np.ndarray],
        ys: list[np.ndarray],
        window: int,
        burn_in: int,
        seed: int,
        normalizer: Normalizer,
        triads: list[list[int]] | None = None,
        mirror_sign: np.ndarray | None = None,
    ) -> None:
        self.xs, self.ys = xs, ys
        self.window, self.burn_in = window, burn_in
        self.norm = normalizer
        self.triads = triads or []
        #: per-channel sign of a left/right mirror (``mirror_signs``); None = no IMU channels
        self.mirror_sign = mirror_sign
        lens = np.array([len(x) for x in xs], dtype=np.float64)
        self.lens = lens.astype(np.int64)
        self.p = lens / lens.sum()
        self.rng = np.random.default_rng(seed)

    def batch(
        self, size: int, gain: float, noise: float, rotation_deg: float = 0.0, time_warp: float = 0.0,
        mirror: bool = False,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Draw and cut one whole batch: :meth:`plan` then :meth:`materialize` of every window."""
        plan = self.plan(size, gain, noise, rotation_deg, time_warp, mirror)
        return self.materialize(plan, np.arange(size))

    def plan(
        self, size: int, gain: float, noise: float, rotation_deg: float = 0.0, time_warp: float = 0.0,
        mirror: bool = False,
    ) -> BatchPlan:
        """Draw one batch of ``size`` windows without cutting them (see :class:`BatchPlan`).

        Only small per-window parameters are drawn here, from this sampler's own
        random stream, in an order that does not depend on who later cuts which
        window.  Samplers built with the same seed and recording lengths draw the
        same plans, so processes holding different shards of the recordings agree
        on the global batch (see :mod:`gaitedge.training.distributed`).
        """
        rng = self.rng
        rec = rng.choice(len(self.xs), size=size, p=self.p)
        warp = None
        if time_warp > 0:
            knots = rng.uniform(-1.0, 1.0, size=(size, WARP_KNOTS))
            warp = warp_offsets(knots, self.window, time_warp)
        start = np.zeros(size, np.int64)
        for b in range(size):
            need = self.window if warp is None else int(np.ceil(warp[b, -1])) + 1
            start[b] = int(rng.integers(0, max(int(self.lens[rec[b]]) - need, 0) + 1))
        rot = [random_rotations(rng, size, rotation_deg).astype(np.float32) for _ in self.triads] if rotation_deg > 0 else []
        g = rng.uniform(-gain, gain, size=(size, self.xs[0].shape[1])).astype(np.float32) if gain > 0 else None
        seeds = rng.integers(0, 2**63, size=size, dtype=np.int64) if noise > 0 else None
        flip = rng.random(size) < 0.5 if mirror and self.mirror_sign is not None else None
        return BatchPlan(rec, start, warp, rot, g, seeds, float(noise), flip)

    def materialize(self, plan: BatchPlan, idx: np.ndarray | list[int]) -> tuple[np.ndarray, np.ndarray]:
        """Cut and augment the windows ``idx`` of ``plan``: (x ``[k, window, C]`` float32, labels ``[k, window]`` int64).

        Order: time warp (linear interpolation of the signals, labels of the
        nearest sample), sensor-frame rotation, normalization, zero padding of
        windows longer than their recording, burn-in, per-channel gain, noise.
        Each window depends only on its own plan entries, so any subset gives
        the same windows as cutting the whole batch.
        """
        idx = np.asarray(idx, dtype=np.int64)
        k, c = len(idx), self.xs[0].shape[1]
        xb = np.zeros((k, self.window, c), np.float32)
        yb = np.full((k, self.window), UNLABELED, np.int64)
        valid = np.zeros((k, self.window), bool)
        for j, b in enumerate(idx):
            x, y = self.xs[plan.rec[b]], self.ys[plan.rec[b]]
            s = int(plan.start[b])
            if plan.warp is None:
                n = min(len(x), self.window)
                xb[j, :n] = x[s : s + n]
                yb[j, :n] = y[s : s + n]
            else:
                pos = s + plan.warp[b]
                n = int(np.searchsorted(pos, len(x) - 1, side="right"))
                p = pos[:n]
                i0 = np.floor(p).astype(np.int64)
                i1 = np.minimum(i0 + 1, len(x) - 1)
                f = (p - i0).astype(np.float32)[:, None]
                xb[j, :n] = x[i0] * (1.0 - f) + x[i1] * f
                yb[j, :n] = y[np.minimum(np.rint(p).astype(np.int64), len(x) - 1)]
            valid[j, :n] = True
        for rot, tris in zip(plan.rot, self.triads):
            r = rot[idx]
            for t in range(0, len(tris), 3):
                tri = tris[t : t + 3]
                xb[:, :, tri] = np.einsum("bij,btj->bti", r, xb[:, :, tri])
        if plan.mirror is not None and self.mirror_sign is not None:
            flip = plan.mirror[idx]
            xb[flip] *= self.mirror_sign[None, :]
        xb = self.norm(xb) * valid[:, :, None]
        yb[:, : self.burn_in] = UNLABELED
        if plan.gain is not None:
            xb *= 1.0 + plan.gain[idx][:, None, :]
        if plan.noise_seed is not None:
            for j, b in enumerate(idx):
                nrng = np.random.default_rng(int(plan.noise_seed[b]))
                xb[j] += nrng.normal(0.0, plan.noise, size=xb[j].shape).astype(np.float32)
        return np.ascontiguousarray(xb, dtype=np.float32), yb
