"""The one recording type every loader produces and every later stage consumes."""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np

from gaitedge.errors import DataError

#: The gait-phase classes, in the order of their integer codes.
GAIT_CLASSES: tuple[str, ...] = ("rest", "stance", "swing")
#: Integer label for samples that carry no label (ignored by losses and metrics).
UNLABELED = -1


@dataclass
class Recording:
    """One IMU recording of one body location, with optional gait labels.

    Attributes:
        signals: ``(T, C)`` float32 samples.
        channels: ``C`` channel names, e.g. ``acc_x`` (m/s²) or ``gyr_z`` (rad/s).
        units: ``C`` unit strings (``"m/s^2"``, ``"rad/s"``, ...).
        rate_hz: sampling rate in Hz.
        labels: ``(T,)`` int64 class codes into ``classes``; ``UNLABELED`` (-1) where
            unknown; ``None`` for an unlabelled recording.
        classes: names of the label codes (``GAIT_CLASSES`` for the gait-phase task).
        events: ground-truth event sample indices, keys ``heel_strike`` and
            ``toe_off`` (int64 arrays, ascending).
        subject: subject identifier (splits are always by subject).
        location: sensor location, e.g. ``left_foot``.
        source: the file the recording came from.
        frame: the coordinate frame of the IMU triads: ``"foot-canonical"`` (see
            ``gaitedge.data.mounting``) or ``"sensor"`` (the sensor's own, unknown).
        meta: loader facts worth keeping, e.g. ``meta["mounting"]``: per sensor the
            rotation that brought it into the canonical frame.
    """

    signals: np.ndarray
    channels: list[str]
    units: list[str]
    rate_hz: float
    labels: np.ndarray | None = None
    classes: tuple[str, ...] = GAIT_CLASSES
    events: dict[str, np.ndarray] = field(default_factory=dict)
    subject: str = "unknown"
    location: str = "unknown"
    source: str = ""
    frame: str = "sensor"
    meta: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.signals = np.ascontiguousarray(self.signals, dtype=np.float32)
        if self.signals.ndim != 2:
            raise DataError(f"{self.source or 'recording'}: signals must be 2-D (T x C), got shape {self.signals.shape}")
        if len(self.channels) != self.signals.shape[1]:
            raise DataError(
                f"{self.source or 'recording'}: {len(self.channels)} channel names for "
                f"{self.signals.shape[1]} signal columns"
            )
        if len(self.units) != len(self.channels):
            raise DataError(f"{self.source or 'recording'}: {len(self.units)} units for {len(self.channels)} channels")
        if not np.isfinite(self.rate_hz) or self.rate_hz <= 0:
            raise DataError(f"{self.source or 'recording'}: sampling rate must be > 0 Hz, got {self.rate_hz}")
        if self.labels is not None:
            self.labels = np.asarray(self.labels, dtype=np.int64)
            if self.labels.shape != (len(self),):
                raise DataError(
                    f"{self.source or 'recording'}: {self.labels.shape[0]} labels for {len(self)} samples"
                )
            bad = (self.labels < UNLABELED) | (self.labels >= len(self.classes))
            if bad.any():
                raise DataError(f"{self.source or 'recording'}: label codes outside 0..{len(self.classes) - 1}")
        self.events = {k: np.asarray(v, dtype=np.int64) for k, v in self.events.items()}

    def __len__(self) -> int:
        return int(self.signals.shape[0])

    @property
    def duration_s(self) -> float:
        """Length in seconds."""
        return len(self) / self.rate_hz

    @property
    def name(self) -> str:
        """Short human-readable identifier: source file stem and location."""
        from pathlib import Path

        stem = Path(self.source).stem if self.source else "recording"
        return f"{stem}:{self.location}"

    def select_channels(self, names: list[str]) -> "Recording":
        """Return a copy holding only ``names``, in that order (clear error if missing)."""
        missing = [n for n in names if n not in self.channels]
        if missing:
            raise DataError(
                f"{self.source or 'recording'}: missing channel(s) {', '.join(missing)}; "
                f"it has {', '.join(self.channels)}"
            )
        idx = [self.channels.index(n) for n in names]
        return replace(
            self,
            signals=self.signals[:, idx],
            channels=list(names),
            units=[self.units[i] for i in idx],
        )

    def check_finite(self) -> None:
        """Raise DataError naming the first non-finite sample, if any."""
        bad = ~np.isfinite(self.signals)
        if bad.any():
            t, c = np.argwhere(bad)[0]
            raise DataError(
                f"{self.source or 'recording'}: non-finite value (NaN or inf) at sample {t}, "
                f"channel {self.channels[c]} ({int(bad.sum())} in total)"
            )


def labels_from_swings(n: int, start: int, end: int, swings: list[tuple[int, int]]) -> np.ndarray:
    """Per-sample gait-phase labels from walking boundaries and swing intervals.

    Samples before ``start`` or from ``end`` on are ``rest``; inside, samples in a
    half-open swing interval ``[toe_off, heel_strike)`` are ``swing``, the others
    ``stance``.
    """
    labels = np.full(n, GAIT_CLASSES.index("rest"), dtype=np.int64)
    labels[max(start, 0) : min(end, n)] = GAIT_CLASSES.index("stance")
    for to, hs in swings:
        labels[max(to, 0) : min(hs, n)] = GAIT_CLASSES.index("swing")
    return labels
