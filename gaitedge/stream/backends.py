"""Inference backends for live streaming: one raw sample in, decided labels and events out.

Every backend runs the chain of ``TrainedModel.predict`` one sample at a time
(causal low-pass, normalization, recurrent step with carried state, softmax,
arg-max, debounce, events) and reports what it has decided as
:class:`Decisions`: labels of consecutive samples from ``start`` on, plus the
events adopted.  Sample indices count from 0 at the first sample pushed since
the last :meth:`Backend.reset`.

* :class:`OnnxBackend` — ``model_step.onnx`` through
  :class:`gaitedge.runtime.OnnxGaitClassifier` (ONNX Runtime, no torch).
* :class:`TorchBackend` — the checkpoint's ``GaitModel.step`` in torch, with
  its own filter, normalization and debounce that match the ONNX runtime
  (for debugging a model against the exported graph).

A device backend (samples forwarded to the board over its serial link, its
labels read back) implements the same :class:`Backend` interface; because its
results arrive asynchronously, :meth:`Backend.push` may return no labels for
one call and several for a later one.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple, Sequence

import numpy as np

from gaitedge.errors import ModelError
from gaitedge.runtime.onnx_runtime import STEP_FILE, GaitEvent, OnnxGaitClassifier

if TYPE_CHECKING:
    from gaitedge.checkpoint import TrainedModel

_NONE: tuple[int, ...] = ()


class Decisions(NamedTuple):
    """What a backend decided in one call."""

    #: index of the sample ``labels[0]`` belongs to (meaningless when ``labels`` is empty).
    start: int
    #: debounced class indices of samples ``start, start + 1, ...``.
    labels: Sequence[int]
    #: events adopted in this call (sample indices as in ``start``).
    events: list[GaitEvent]


class Backend(ABC):
    """One model classifying one stream of raw samples (model channel order and units).

    Attributes describe the model: ``channels``, ``units``, ``classes``,
    ``rate_hz`` (Hz), ``delay`` (output delay, samples), ``min_run``
    (debounce, samples) and ``label_lag`` (how many samples the newest decided
    label lags the newest input).
    """

    #: backend name for messages: ``onnx``, ``torch``, ...
    kind: str = ""
    channels: tuple[str, ...]
    units: tuple[str, ...]
    classes: tuple[str, ...]
    rate_hz: float
    delay: int
    min_run: int
    #: where the model came from.
    path: str = ""

    @property
    def label_lag(self) -> int:
        """Samples between the newest input and the newest decided label: ``delay + min_run - 1``."""
        return self.delay + max(1, self.min_run) - 1

    @abstractmethod
    def push(self, x: np.ndarray) -> Decisions:
        """Classify one sample ``x (C,)`` float32; returns the labels and events decided now."""

    @abstractmethod
    def flush(self) -> Decisions:
        """End the stream: decide every label not yet returned, then reset."""

    @abstractmethod
    def reset(self) -> None:
        """Start a new stream (zero state, fresh filter and debounce)."""

    def close(self) -> None:
        """Release resources (sessions, ports)."""


class OnnxBackend(Backend):
    """ONNX Runtime over ``model_step.onnx`` (a run folder or the file itself)."""

    kind = "onnx"

    def __init__(self, path: str | Path, threads: int = 1) -> None:
        self.clf = OnnxGaitClassifier(path, threads=threads)
        info = self.clf.info
        self.path = str(self.clf.path)
        self.channels = info.channels
        self.units = info.units
        self.classes = info.classes
        self.rate_hz = info.rate_hz
        self.delay = info.delay
        self.min_run = self.clf.min_run
        self._lag = self.clf.label_lag

    def push(self, x: np.ndarray) -> Decisions:
        r = self.clf.push(x)
        if r.label < 0:
            return Decisions(0, _NONE, r.events)
        return Decisions(self.clf.samples_pushed - 1 - self._lag, (r.label,), r.events)

    def flush(self) -> Decisions:
        f = self.clf.flush()
        return Decisions(f.label_start, f.labels.tolist(), f.events)

    def reset(self) -> None:
        self.clf.reset()


def _softmax(z: Sequence[float]) -> np.ndarray:
    """Softmax of a short list of logits as float32 ``(K,)`` (as the ONNX runtime computes it)."""
    m = max(z)
    e = [math.exp(v - m) for v in z]
    s = sum(e)
    return np.array([v / s for v in e], dtype=np.float32)


class TorchBackend(Backend):
    """``GaitModel.step`` in torch with the ONNX runtime's preprocessing and debounce.

    The low-pass runs in float64 (direct form II transposed, state started in
    steady state for the first sample), normalization in float32, and at
    :meth:`flush` the last normalized input is repeated ``delay`` times, exactly
    as :class:`~gaitedge.runtime.OnnxGaitClassifier` does.  ``threads`` sets
    torch's intra-op thread count (process-wide; None leaves it).
    """

    kind = "torch"

    def __init__(self, tm: "TrainedModel", threads: int | None = 1, path: str = "") -> None:
        import torch

        self._torch = torch
        if threads:
            torch.set_num_threads(int(threads))
        self.tm = tm
        self.model = tm.model.eval()
        self.path = path
        self.channels = tuple(tm.channels)
        self.units = tuple(tm.units)
        self.classes = tuple(tm.classes)
        self.rate_hz = float(tm.rate_hz)
        self.delay = int(tm.delay)
        self.min_run = max(1, int(tm.min_run))
        self._mean = np.asarray(tm.normalizer.mean, np.float32)
        self._std = np.asarray(tm.normalizer.std, np.float32)
        self._swing = self.classes.index("swing") if "swing" in self.classes else -1
        sos = tm.sos
        self._sec: list[tuple[float, ...]] | None = None
        if sos is not None:
            from scipy.signal import sosfilt_zi

            self._zi_unit = sosfilt_zi(sos)
            self._sec = [tuple(float(v) for v in row) for row in sos]
        self.reset()

    def reset(self) -> None:
        self._state = self.model.init_state(1)
        self._z: np.ndarray | None = None
        self._xn: np.ndarray | None = None
        self._n = 0
        self._steps = 0
        self._confirmed = -1
        self._cand = -1
        self._cand_start = 0
        self._count = 0

    def _filter(self, x: np.ndarray) -> np.ndarray:
        if self._z is None:
            self._z = self._zi_unit[:, :, None] * x[None, None, :]
        z = self._z
        cur = x
        for s, (b0, b1, b2, _, a1, a2) in enumerate(self._sec or ()):
            new = b0 * cur + z[s, 0]
            z[s, 0] = b1 * cur - a1 * new + z[s, 1]
            z[s, 1] = b2 * cur - a2 * new
            cur = new
        return cur

    def _step(self) -> list[float]:
        with self._torch.inference_mode():
            logits, self._state = self.model.step(self._torch.from_numpy(self._xn)[None], self._state)
        self._steps += 1
        return logits[0].tolist()

    def _debounce(self, r: int, i: int) -> list[GaitEvent]:
        if self._confirmed < 0:
            self._confirmed = r
            return []
        if r == self._confirmed:
            self._cand = -1
            self._count = 0
            return []
        if r == self._cand:
            self._count += 1
        else:
            self._cand, self._cand_start, self._count = r, i, 1
        if self._count < self.min_run:
            return []
        old, s = self._confirmed, self._cand_start
        self._confirmed, self._cand, self._count = r, -1, 0
        if self._swing < 0:
            return []
        if r == self._swing:
            return [GaitEvent("toe_off", s, s / self.rate_hz)]
        if old == self._swing:
            return [GaitEvent("heel_strike", s, s / self.rate_hz)]
        return []

    def _classify(self, logits: list[float]) -> tuple[int, int, list[GaitEvent]]:
        """(index of the decided label or -1, the label, events) after one model step."""
        i = self._steps - 1 - self.delay
        if i < 0:
            return -1, -1, []
        p = _softmax(logits)
        events = self._debounce(int(p.argmax()), i)
        j = i - self.min_run + 1
        return (j, self._confirmed, events) if j >= 0 else (-1, -1, events)

    def push(self, x: np.ndarray) -> Decisions:
        x64 = np.asarray(x, dtype=np.float64)
        if self._sec is not None:
            x64 = self._filter(x64)
        xf = x64.astype(np.float32)
        self._xn = np.divide(np.subtract(xf, self._mean), self._std).astype(np.float32)
        self._n += 1
        j, label, events = self._classify(self._step())
        return Decisions(j, (label,), events) if j >= 0 else Decisions(0, _NONE, events)

    def flush(self) -> Decisions:
        n = self._n
        label_start = max(0, n - self.label_lag)
        labels: list[int] = []
        events: list[GaitEvent] = []
        if n > 0:
            for _ in range(self.delay):
                j, label, ev = self._classify(self._step())
                events += ev
                if j >= 0:
                    labels.append(label)
            labels += [self._confirmed] * (n - label_start - len(labels))
        self.reset()
        return Decisions(label_start, labels, events)


def load_backend(model: str | Path, kind: str = "onnx", threads: int = 1) -> Backend:
    """A backend for ``model``: a run folder, its ``model_step.onnx`` or its ``model.pt``.

    ``kind`` ``onnx`` needs the step graph (``gaitedge export onnx RUN``);
    ``torch`` needs the checkpoint.  ModelError names what is missing.
    """
    p = Path(model)
    if not p.exists():
        raise ModelError(f"{p}: no such model (give a run folder, its model_step.onnx or model.pt)")
    folder = p if p.is_dir() else p.parent
    if kind == "onnx":
        if p.is_file() and p.suffix == ".onnx":
            return OnnxBackend(p, threads=threads)
        step = folder / STEP_FILE
        if step.is_file():
            return OnnxBackend(step, threads=threads)
        if (folder / "model.pt").is_file() or p.suffix == ".pt":
            raise ModelError(
                f"{folder}: no {STEP_FILE}; export it with 'gaitedge export onnx {folder}' (or use --backend torch)"
            )
        return OnnxBackend(p, threads=threads)
    if kind == "torch":
        from gaitedge.checkpoint import load_checkpoint

        ckpt = p if p.is_file() and p.suffix != ".onnx" else folder / "model.pt"
        if not ckpt.is_file():
            raise ModelError(f"{folder}: no model.pt checkpoint for --backend torch")
        return TorchBackend(load_checkpoint(ckpt), threads=threads, path=str(ckpt))
    raise ModelError(f"unknown backend {kind!r}; use onnx or torch")
