"""Preprocessing: resampling, the causal low-pass filter, normalization statistics.

The filter is causal (``scipy.signal.sosfilt``, second-order sections) so that the
same filter can run sample by sample on a device; its state starts in steady state
for the first sample (as if the signal had been constant before it), which the
runtimes reproduce.  Normalization statistics come from training data only and
travel with the model.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from fractions import Fraction

import numpy as np
from scipy import signal

from gaitedge.data.recording import UNLABELED, Recording
from gaitedge.errors import DataError


def resample(rec: Recording, rate_hz: float) -> Recording:
    """Resample a recording to ``rate_hz`` (polyphase, scipy); labels by nearest sample.

    Events are rescaled to the new rate and rounded to the nearest sample.
    """
    if abs(rec.rate_hz - rate_hz) < 1e-9:
        return rec
    frac = Fraction(rate_hz / rec.rate_hz).limit_denominator(1000)
    if abs(float(frac) - rate_hz / rec.rate_hz) > 1e-6:
        raise DataError(f"{rec.source}: cannot resample {rec.rate_hz} Hz to {rate_hz} Hz by a rational factor")
    up, down = frac.numerator, frac.denominator
    sig = signal.resample_poly(rec.signals.astype(np.float64), up, down, axis=0, padtype="line")
    n = sig.shape[0]
    labels = None
    if rec.labels is not None:
        src = np.minimum(np.round(np.arange(n) * rec.rate_hz / rate_hz).astype(np.int64), len(rec) - 1)
        labels = rec.labels[src]
    events = {k: np.round(v * rate_hz / rec.rate_hz).astype(np.int64) for k, v in rec.events.items()}
    return replace(rec, signals=sig.astype(np.float32), rate_hz=float(rate_hz), labels=labels, events=events)


def design_lowpass(cutoff_hz: float | None, rate_hz: float, order: int = 2) -> np.ndarray | None:
    """Butterworth low-pass as second-order sections ``(n_sections, 6)``, or None if off."""
    if cutoff_hz is None or cutoff_hz <= 0:
        return None
    if cutoff_hz >= rate_hz / 2:
        raise DataError(f"low-pass cutoff {cutoff_hz} Hz must be below Nyquist ({rate_hz / 2} Hz)")
    if order < 1 or order > 8:
        raise DataError(f"low-pass order must be 1..8, got {order}")
    return signal.butter(order, cutoff_hz, btype="low", fs=rate_hz, output="sos")


def causal_filter(x: np.ndarray, sos: np.ndarray | None) -> np.ndarray:
    """Filter ``(T, C)`` causally; filter state starts in steady state for ``x[0]``."""
    if sos is None or len(x) == 0:
        return np.asarray(x, dtype=np.float32)
    zi = signal.sosfilt_zi(sos)  # (n_sections, 2), for a unit step
    zi = zi[:, :, None] * np.asarray(x[0], dtype=np.float64)[None, None, :]
    y, _ = signal.sosfilt(sos, np.asarray(x, dtype=np.float64), axis=0, zi=zi)
    return y.astype(np.float32)


@dataclass
class Normalizer:
    """Per-channel affine normalization ``(x - mean) / std`` (units of the channel)."""

    mean: np.ndarray
    std: np.ndarray

    @classmethod
    def fit(cls, arrays: list[np.ndarray]) -> "Normalizer":
        """Statistics over all samples of the (training) arrays."""
        x = np.concatenate(arrays, axis=0).astype(np.float64)
        std = x.std(axis=0)
        std = np.where(std < 1e-6, 1.0, std)
        return cls(mean=x.mean(axis=0).astype(np.float32), std=std.astype(np.float32))

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return ((x - self.mean) / self.std).astype(np.float32)

    def to_dict(self) -> dict:
        return {"mean": self.mean.tolist(), "std": self.std.tolist()}

    @classmethod
    def from_dict(cls, d: dict) -> "Normalizer":
        return cls(mean=np.asarray(d["mean"], np.float32), std=np.asarray(d["std"], np.float32))


def prepare(
    rec: Recording,
    channels: list[str],
    rate_hz: float,
    sos: np.ndarray | None,
    min_samples: int = 1,
) -> Recording:
    """Select channels, check values, resample and filter one recording (not normalized)."""
    rec = rec.select_channels(channels)
    rec.check_finite()
    rec = resample(rec, rate_hz)
    if len(rec) < min_samples:
        raise DataError(
            f"{rec.source}: only {len(rec)} samples ({rec.duration_s:.2f} s) at {rate_hz} Hz; "
            f"at least {min_samples} needed"
        )
    return replace(rec, signals=causal_filter(rec.signals, sos))


def has_labels(rec: Recording) -> bool:
    """True if the recording carries at least one labelled sample."""
    return rec.labels is not None and bool(np.any(rec.labels != UNLABELED))
