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
from gaitedge.rundir import MODEL_FILE, atomic_path, file_in_run

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
        with atomic_path(path) as tmp:
            torch.save(self.to_dict(), tmp)


def load_checkpoint(path: str | Path) -> TrainedModel:
    """Load ``model.pt`` (or a run directory containing it)."""
    path = file_in_run(path, MODEL_FILE)
    if not path.is_file():
        raise ModelError(f"{path}: no checkpoint here (expected a run directory with {MODEL_FILE})")
    try:
        d = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for a non-checkpoint file
        raise ModelError(f"{path}: not a gaitedge checkpoint ({type(exc).__name__})") from None
    if not isinstance(d, dict) or d.get("format") != FORMAT:
        raise ModelError(f"{path}: not a gaitedge checkpoint")
    version = d.get("format_version", 0)
    if not isinstance(version, int):
        raise ModelError(f"{path}: checkpoint format version {version!r} is not a number")
    if version > FORMAT_VERSION:
        raise ModelError(f"{path}: checkpoint format {d['format_version']} is newer than this gaitedge understands")
    _check_fields(d, path)
    model = _build_checked(d, path)
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


def _is_int(v: object) -> bool:
    """True for a Python int that is not a bool."""
    return isinstance(v, int) and not isinstance(v, bool)


def _is_number(v: object) -> bool:
    """True for a finite int or float that is not a bool."""
    return isinstance(v, (int, float)) and not isinstance(v, bool) and bool(np.isfinite(v))


def _check_fields(d: dict, path: Path) -> None:
    """ModelError naming the first field of a checkpoint dict that is missing or of the wrong kind."""

    def need(key: str, ok: bool, what: str) -> None:
        if not ok:
            shown = "missing" if key not in d else f"{type(d[key]).__name__} {str(d[key])[:40]!r}"
            raise ModelError(f"{path}: checkpoint field {key!r} must be {what} ({shown})")

    def strings(key: str) -> bool:
        v = d.get(key)
        return isinstance(v, (list, tuple)) and len(v) > 0 and all(isinstance(x, str) for x in v)

    need("family", isinstance(d.get("family"), str), "a model family name")
    need("hparams", isinstance(d.get("hparams"), dict) and all(isinstance(k, str) for k in d["hparams"]),
         "a table of model options")
    need("classes", strings("classes"), "a list of class names")
    need("channels", strings("channels"), "a list of channel names")
    need("units", strings("units") and len(d["units"]) == len(d["channels"]), "one unit per channel")
    need("input_size", _is_int(d.get("input_size")) and d["input_size"] == len(d["channels"]),
         "the number of channels")
    need("rate_hz", _is_number(d.get("rate_hz")) and d["rate_hz"] > 0, "a sampling rate > 0")
    need("lowpass_hz", _is_number(d.get("lowpass_hz")) and d["lowpass_hz"] >= 0, "a cutoff >= 0 (0: none)")
    need("tolerance_ms", _is_number(d.get("tolerance_ms")), "a number")
    for key in ("filter_order", "min_run"):
        need(key, _is_int(d.get(key)) and 0 <= d[key] <= 1 << 16, "a whole number >= 0")
    need("delay", _is_int(d.get("delay", 0)) and 0 <= d.get("delay", 0) <= 1 << 16, "a whole number >= 0")
    need("frame", isinstance(d.get("frame", ""), str), "a frame name")
    for key in ("config", "info"):
        need(key, isinstance(d.get(key, {}), dict), "a table")
    norm = d.get("normalizer")
    n = len(d["channels"])
    try:
        ok = isinstance(norm, dict) and all(
            np.asarray(norm[k], np.float64).shape == (n,) and bool(np.isfinite(np.asarray(norm[k], np.float64)).all())
            for k in ("mean", "std"))
    except (KeyError, TypeError, ValueError, RuntimeError):
        ok = False
    need("normalizer", ok, f"per-channel mean and std ({n} finite values each)")
    sd = d.get("state_dict")
    need("state_dict", isinstance(sd, dict) and all(isinstance(k, str) and isinstance(v, torch.Tensor)
                                                     for k, v in sd.items()), "a table of weight tensors")


def _build_checked(d: dict, path: Path) -> GaitModel:
    """The checkpoint's model, built only once its weights' shapes are known to fit its options.

    The options are tried on the ``meta`` device first (no memory), so a
    checkpoint whose options ask for a huge model fails without allocating it.
    """
    family, classes = d["family"], len(d["classes"])

    def build() -> GaitModel:
        try:
            return build_model(family, d["input_size"], classes, **d["hparams"])
        except ModelError:
            raise
        except Exception as exc:  # the models' constructors reject bad options with various types
            raise ModelError(
                f"{path}: cannot build a {family} model from its options ({type(exc).__name__}: {exc})"
            ) from None

    with torch.device("meta"):
        skeleton = build()
    want = {k: tuple(v.shape) for k, v in skeleton.state_dict().items()}
    got = {k: tuple(v.shape) for k, v in d["state_dict"].items()}
    if want != got:
        diff = sorted(set(want.items()) ^ set(got.items()))[:3]
        raise ModelError(f"{path}: weights do not fit a {family} model with its options (e.g. {diff})")
    return build()


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
