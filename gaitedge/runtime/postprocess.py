"""The per-sample chain around a streaming model, shared by every desktop backend.

* :class:`CausalFilter` — the model's Butterworth low-pass as second-order
  sections, direct form II transposed in float64, its state starting in steady
  state for the first sample of a stream (as ``TrainedModel.predict`` filters);
* :class:`Debouncer` — a new label is adopted only once it has lasted
  ``min_run`` consecutive samples, and then from its first sample; adopted
  transitions into ``swing`` are toe-offs, out of it heel-strikes.

Both are plain numpy / Python and need neither torch nor ONNX Runtime.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np


class GaitEvent(NamedTuple):
    """A detected gait event."""

    #: ``toe_off`` or ``heel_strike``.
    kind: str
    #: index of the input sample where it happened (0 = first sample of the stream).
    sample: int
    #: ``sample / rate_hz``: seconds since the first sample of the stream.
    time_s: float


class CausalFilter:
    """Second-order sections ``sos [S, 6]`` applied one multichannel sample at a time."""

    def __init__(self, sos: np.ndarray) -> None:
        from scipy.signal import sosfilt_zi

        self._zi_unit = sosfilt_zi(sos)
        self._sec = [tuple(float(v) for v in row) for row in sos]
        self._z: np.ndarray | None = None

    def reset(self) -> None:
        """The next sample starts a new stream (steady state for that sample)."""
        self._z = None

    def __call__(self, x: np.ndarray) -> np.ndarray:
        """Filter one sample ``x [C]`` (float64); returns the filtered sample."""
        if self._z is None:
            self._z = self._zi_unit[:, :, None] * x[None, None, :]
        z = self._z
        cur = x
        for s, (b0, b1, b2, _, a1, a2) in enumerate(self._sec):
            new = b0 * cur + z[s, 0]
            z[s, 0] = b1 * cur - a1 * new + z[s, 1]
            z[s, 1] = b2 * cur - a2 * new
            cur = new
        return cur


class Debouncer:
    """Causal label debounce and event detector (``min_run`` samples, class ``swing`` or -1)."""

    def __init__(self, min_run: int, swing: int, rate_hz: float) -> None:
        self.min_run = max(1, int(min_run))
        self.swing = int(swing)
        self.rate_hz = float(rate_hz)
        self.reset()

    def reset(self) -> None:
        #: the adopted label (-1 before the first sample).
        self.confirmed = -1
        self._cand = -1
        self._cand_start = 0
        self._count = 0

    def update(self, r: int, i: int) -> list[GaitEvent]:
        """Feed the raw label ``r`` of sample ``i``; returns the events adopted now."""
        if self.confirmed < 0:
            self.confirmed = r
            return []
        if r == self.confirmed:
            self._cand = -1
            self._count = 0
            return []
        if r == self._cand:
            self._count += 1
        else:
            self._cand, self._cand_start, self._count = r, i, 1
        if self._count < self.min_run:
            return []
        old, s = self.confirmed, self._cand_start
        self.confirmed, self._cand, self._count = r, -1, 0
        if self.swing < 0:
            return []
        if r == self.swing:
            return [GaitEvent("toe_off", s, s / self.rate_hz)]
        if old == self.swing:
            return [GaitEvent("heel_strike", s, s / self.rate_hz)]
        return []
