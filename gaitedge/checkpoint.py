"""Trained-model checkpoints: weights plus everything downstream stages need.

A checkpoint (``model.pt`` in a run directory) holds plain data and tensors only,
so it loads with ``torch.load(weights_only=True)``: the model family and its
hyperparameters, class names, input channels and units, sampling rate (Hz),
normalization statistics, the causal filter (cutoff, order, second-order
sections), the event debounce, and the full experiment config.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

import gaitedge
from gaitedge.data.preprocess import Normalizer, causal_filter, design_lowpass, prepare
from gaitedge.data.recording import Recording
from gaitedge.errors import DataError, ModelError
from gaitedge.events import debounce_labels, labels_to_events
from gaitedge.models import GaitModel, build_model

FORMAT = "gaitedge-checkpoint"
#: The frame of a checkpoint written before checkpoints recorded one: its training
#: data's own frame (for IPOL, the raw Xsens frames: ``ipol?frame=sensor``).
UNRECORDED_FRAME = "unrecorded"
FORMAT_VERSION = 1


@dataclass
class TrainedModel:
    """A model with its preprocessing, ready to label recordings."""

    model: GaitModel
    classes: tuple[str, ...]
    channels: list[str]
    units: list[str]
    rate_hz: float
    normalizer: Normalizer
    lowpass_hz: float
    filter_order: int
    min_run: int
    tolerance_ms: float
    #: output delay in samples: the logits of step t classify sample t - delay.
    delay: int = 0
    #: coordinate frame the model expects its IMU channels in: ``"foot-canonical"``
    #: (``gaitedge.data.mounting``), ``"sensor"`` (that of its training data), or
    #: ``"unrecorded"`` for a checkpoint older than the frame (``UNRECORDED_FRAME``).
    frame: str = "sensor"
    config: dict = field(default_factory=dict)
    info: dict = field(default_factory=dict)

    @property
    def sos(self) -> np.ndarray | None:
        """The causal low-pass as second-order sections (None when off)."""
        return design_lowpass(self.lowpass_hz or None, self.rate_hz, self.filter_order)

    def preprocess(self, rec: Recording) -> Recording:
        """Channels, resampling and filter as in training (not yet normalized).

        The recording's IMU triads must already be in the model's frame
        (:func:`gaitedge.data.mounting.mount_all` rotates them there).
        """
        return prepare(rec, self.channels, self.rate_hz, self.sos)

    def predict_signals(self, x: np.ndarray) -> np.ndarray:
        """Class probabilities ``(T, K)`` for filtered, un-normalized signals ``(T, C)``.

        Row ``i`` classifies sample ``i``: with an output delay ``d`` the model's
        step ``i + d`` is used, and the input is extended by repeating its last
        sample ``d`` times so that the final samples are classified too.
        """
        self.model.eval()
        xn = self.normalizer(pad_for_delay(x, self.delay))
        with torch.no_grad():
            logits, _ = self.model(torch.from_numpy(xn)[None])
            return torch.softmax(logits[0, self.delay :], dim=-1).numpy()

    def predict(self, rec: Recording) -> tuple[Recording, np.ndarray, np.ndarray, dict[str, np.ndarray]]:
        """Label a raw recording.

        Returns (preprocessed recording, probabilities ``(T, K)``, debounced
        labels ``(T,)``, events {kind: sample indices}); sample indices are at
        the model rate.
        """
        prep = self.preprocess(rec)
        probs = self.predict_signals(prep.signals)
        labels = debounce_labels(probs.argmax(axis=1), self.min_run)
        events = labels_to_events(labels, swing=self.classes.index("swing")) if "swing" in self.classes else {}
        return prep, probs, labels, events

    def weights_hash(self) -> str:
        """SHA-256 (hex) over the model's parameters in state-dict order."""
        h = hashlib.sha256()
        for k, v in self.model.state_dict().items():
            h.update(k.encode())
            h.update(v.detach().cpu().contiguous().numpy().tobytes())
        return h.hexdigest()

    def to_dict(self) -> dict:
        return {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "gaitedge_version": gaitedge.__version__,
            "family": self.model.family,
            "hparams": self.model.hparams(),
            "input_size": self.model.input_size,
            "classes": list(self.classes),
            "channels": list(self.channels),
            "units": list(self.units),
            "rate_hz": float(self.rate_hz),
            "normalizer": self.normalizer.to_dict(),
            "lowpass_hz": float(self.lowpass_hz),
            "filter_order": int(self.filter_order),
            "min_run": int(self.min_run),
            "delay": int(self.delay),
            "frame": self.frame,
            "tolerance_ms": float(self.tolerance_ms),
            "config": self.config,
            "info": self.info,
            "state_dict": self.model.state_dict(),
        }

    def save(self, path: str | Path) -> None:
        """Write atomically (temp file + rename)."""
        path = Path(path)
        tmp = path.with_suffix(path.suffix + ".tmp")
        torch.save(self.to_dict(), tmp)
        tmp.replace(path)


def load_checkpoint(path: str | Path) -> TrainedModel:
    """Load ``model.pt`` (or a run directory containing it)."""
    path = Path(path)
    if path.is_dir():
        path = path / "model.pt"
    if not path.is_file():
        raise ModelError(f"{path}: no checkpoint here (expected a run directory with model.pt)")
    try:
        d = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for a non-checkpoint file
        raise ModelError(f"{path}: not a gaitedge checkpoint ({type(exc).__name__})") from None
    if not isinstance(d, dict) or d.get("format") != FORMAT:
        raise ModelError(f"{path}: not a gaitedge checkpoint")
    if d.get("format_version", 0) > FORMAT_VERSION:
        raise ModelError(f"{path}: checkpoint format {d['format_version']} is newer than this gaitedge understands")
    model = build_model(d["family"], d["input_size"], len(d["classes"]), **d["hparams"])
    try:
        model.load_state_dict(d["state_dict"])
    except RuntimeError as exc:
        raise ModelError(f"{path}: weights do not fit a {d['family']} model ({exc})") from None
    model.eval()
    return TrainedModel(
        model=model,
        classes=tuple(d["classes"]),
        channels=list(d["channels"]),
        units=list(d["units"]),
        rate_hz=float(d["rate_hz"]),
        normalizer=Normalizer.from_dict(d["normalizer"]),
        lowpass_hz=float(d["lowpass_hz"]),
        filter_order=int(d["filter_order"]),
        min_run=int(d["min_run"]),
        delay=int(d.get("delay", 0)),
        frame=str(d.get("frame", UNRECORDED_FRAME)),
        tolerance_ms=float(d["tolerance_ms"]),
        config=d.get("config", {}),
        info=d.get("info", {}),
    )


def pad_for_delay(x: np.ndarray, delay: int) -> np.ndarray:
    """``x`` followed by ``delay`` copies of its last row (flushes a delayed output)."""
    if delay <= 0 or len(x) == 0:
        return x
    return np.concatenate([x, np.repeat(x[-1:], delay, axis=0)], axis=0)


def check_input(tm: TrainedModel, rec: Recording) -> None:
    """Raise DataError if a recording cannot feed this model (channels, values)."""
    missing = [c for c in tm.channels if c not in rec.channels]
    if missing:
        raise DataError(f"{rec.source}: lacks channel(s) {', '.join(missing)} that the model needs")
    if tm.frame == UNRECORDED_FRAME and rec.frame == "foot-canonical":
        raise DataError(
            f"{rec.name}: the data is in the canonical foot frame but the model expects the sensor frame of "
            "its own training data (it was trained before gaitedge rotated data into the canonical frame); "
            "for IPOL data use ipol?frame=sensor, or train the model again"
        )
    rec.check_finite()


__all__ = ["TrainedModel", "load_checkpoint", "check_input", "causal_filter"]
