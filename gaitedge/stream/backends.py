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

* :class:`DeviceBackend` — a gaitedge board (real, QEMU or the host build):
  samples forwarded over its serial link in SAMPLES frames, the board's labels
  and events read back.  Its results arrive asynchronously, so
  :meth:`Backend.push` may return no labels for one call and several for a
  later one.
"""

from __future__ import annotations

import math
import time
from abc import ABC, abstractmethod
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple, Sequence

import numpy as np

from gaitedge.errors import DeviceError, ModelError
from gaitedge.rundir import MODEL_FILE, ONNX_SEQUENCE_FILE, ONNX_STEP_FILE, QUANT_FILE, run_folder
from gaitedge.runtime.onnx_runtime import GaitEvent, OnnxGaitClassifier
from gaitedge.runtime.postprocess import CausalFilter, Debouncer

if TYPE_CHECKING:
    from gaitedge.checkpoint import TrainedModel
    from gaitedge.device.client import DeviceClient

_NONE: tuple[int, ...] = ()


class Decisions(NamedTuple):
    """What a backend decided in one call."""

    #: index of the sample ``labels[0]`` belongs to (meaningless when ``labels`` is empty).
    start: int
    #: debounced class indices of samples ``start, start + 1, ...``.
    labels: Sequence[int]
    #: events adopted in this call (sample indices as in ``start``).
    events: list[GaitEvent]
    #: class probabilities ``(len(labels), K)`` of the same samples as ``labels``, or None when the
    #: backend does not give them (a board, a torch model).
    probs: np.ndarray | None = None


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
    #: coordinate frame the model expects its IMU channels in (``gaitedge.data.mounting``).
    frame: str = "sensor"

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

    def close(self) -> None:  # noqa: B027  (nothing to release by default)
        """Release resources (sessions, ports)."""


class OnnxBackend(Backend):
    """ONNX Runtime over ``model_step.onnx`` (a run folder or the file itself)."""

    kind = "onnx"

    def __init__(self, path: str | Path, threads: int = 1) -> None:
        self.clf = OnnxGaitClassifier(path, threads=threads)
        #: (sample index, probabilities) of classified samples whose label is not yet decided
        self._probs: deque[tuple[int, np.ndarray]] = deque()
        info = self.clf.info
        self.path = str(self.clf.path)
        self.channels = info.channels
        self.units = info.units
        self.classes = info.classes
        self.rate_hz = info.rate_hz
        self.delay = info.delay
        self.min_run = self.clf.min_run
        self.frame = info.frame
        self._lag = self.clf.label_lag

    def _probs_of(self, start: int, n: int) -> np.ndarray | None:
        """Probabilities ``(n, K)`` of samples ``start ..`` from the queue (None if one is missing)."""
        q = self._probs
        while q and q[0][0] < start:
            q.popleft()
        if len(q) < n or (n and q[0][0] != start):
            return None
        return np.stack([q.popleft()[1] for _ in range(n)]) if n else None

    def push(self, x: np.ndarray) -> Decisions:
        r = self.clf.push(x)
        if r.probabilities is not None:
            self._probs.append((self.clf.samples_pushed - 1 - self.delay, r.probabilities))
        if r.label < 0:
            return Decisions(0, _NONE, r.events)
        j = self.clf.samples_pushed - 1 - self._lag
        return Decisions(j, (r.label,), r.events, self._probs_of(j, 1))

    def flush(self) -> Decisions:
        f = self.clf.flush()
        n = len(f.labels)
        for i, p in enumerate(f.probabilities):
            self._probs.append((f.prob_start + i, p))
        probs = self._probs_of(f.label_start, n)
        self._probs.clear()
        return Decisions(f.label_start, f.labels.tolist(), f.events, probs)

    def reset(self) -> None:
        self.clf.reset()
        self._probs.clear()


def _softmax(z: Sequence[float]) -> np.ndarray:
    """Softmax of a short list of logits as float32 ``(K,)`` (as the ONNX runtime computes it)."""
    m = max(z)
    e = [math.exp(v - m) for v in z]
    s = sum(e)
    return np.array([v / s for v in e], dtype=np.float32)


class TorchBackend(Backend):
    """``GaitModel.step`` in torch with the ONNX runtime's preprocessing and debounce.

    The low-pass and the debounce are the ONNX runtime's own
    (:mod:`gaitedge.runtime.postprocess`), normalization runs in float32, and at
    :meth:`flush` the last normalized input is repeated ``delay`` times, exactly
    as :class:`~gaitedge.runtime.OnnxGaitClassifier` does.  ``threads`` sets
    torch's intra-op thread count (process-wide; None leaves it).
    """

    kind = "torch"

    def __init__(self, tm: "TrainedModel", threads: int | None = 1, path: str = "") -> None:
        import torch

        self._torch = torch
        if not getattr(tm.model, "causal", True):
            from gaitedge.runtime.onnx_runtime import non_causal_message

            raise ModelError(non_causal_message(tm.model.family, path or MODEL_FILE))
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
        self.frame = tm.frame
        self._mean = np.asarray(tm.normalizer.mean, np.float32)
        self._std = np.asarray(tm.normalizer.std, np.float32)
        swing = self.classes.index("swing") if "swing" in self.classes else -1
        self._filt = CausalFilter(tm.sos) if tm.sos is not None else None
        self._deb = Debouncer(self.min_run, swing, self.rate_hz)
        self.reset()

    def reset(self) -> None:
        self._state = self.model.init_state(1)
        self._xn: np.ndarray | None = None
        self._n = 0
        self._steps = 0
        if self._filt is not None:
            self._filt.reset()
        self._deb.reset()

    def _step(self) -> list[float]:
        with self._torch.inference_mode():
            logits, self._state = self.model.step(self._torch.from_numpy(self._xn)[None], self._state)
        self._steps += 1
        return logits[0].tolist()

    def _classify(self, logits: list[float]) -> tuple[int, int, list[GaitEvent]]:
        """(index of the decided label or -1, the label, events) after one model step."""
        i = self._steps - 1 - self.delay
        if i < 0:
            return -1, -1, []
        p = _softmax(logits)
        events = self._deb.update(int(p.argmax()), i)
        j = i - self.min_run + 1
        return (j, self._deb.confirmed, events) if j >= 0 else (-1, -1, events)

    def push(self, x: np.ndarray) -> Decisions:
        x64 = np.asarray(x, dtype=np.float64)
        if self._filt is not None:
            x64 = self._filt(x64)
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
            labels += [self._deb.confirmed] * (n - label_start - len(labels))
        self.reset()
        return Decisions(label_start, labels, events)


# -- sensor mounting in front of a desktop backend ---------------------------------------------


def merge_decisions(ds: Sequence[Decisions]) -> Decisions:
    """One Decisions from consecutive ones (their labels are contiguous runs)."""
    start, labels, events = 0, [], []
    probs: list[np.ndarray] | None = []
    for d in ds:
        if d.labels:
            if not labels:
                start = d.start
            elif d.start != start + len(labels):
                raise ValueError("decisions to merge are not contiguous")
            labels.extend(d.labels)
            if probs is not None and d.probs is not None and len(d.probs) == len(d.labels):
                probs.append(d.probs)
            else:
                probs = None
        events.extend(d.events)
    return Decisions(start, labels, events, np.concatenate(probs) if probs else None)


class WrappedBackend(Backend):
    """A backend in front of another: it describes the same model and passes every call on.

    A subclass overrides what it changes (the samples it pushes, a check on
    the way); ``inner`` is the backend behind it.
    """

    def __init__(self, inner: Backend) -> None:
        self.inner = inner
        self.kind, self.path, self.frame = inner.kind, inner.path, inner.frame
        self.channels, self.units, self.classes = inner.channels, inner.units, inner.classes
        self.rate_hz, self.delay, self.min_run = inner.rate_hz, inner.delay, inner.min_run

    @property
    def label_lag(self) -> int:
        return self.inner.label_lag

    def push(self, x: np.ndarray) -> Decisions:
        return self.inner.push(x)

    def flush(self) -> Decisions:
        return self.inner.flush()

    def reset(self) -> None:
        self.inner.reset()

    def close(self) -> None:
        self.inner.close()


class MountedBackend(WrappedBackend):
    """A desktop backend fed through a sensor mounting: each sample's IMU triads are rotated first.

    ``mounting``: a :class:`~gaitedge.data.mounting.Mounting` (declared), or
    ``"auto"``: the samples are held until a mounting can be estimated from
    them (:func:`~gaitedge.data.mounting.estimate_recording`: at least 1 s of
    standing and 5 swings of each sensor, confidence at least
    ``min_confidence``), tried once a second.  No label or event is given before
    it locks, since a wrong frame gives wrong events; at the lock the held
    samples are classified in order, so labels and events cover the stream from
    its first sample.  If nothing locks within ``max_hold_s`` (or by the end of
    the stream) the samples are taken as already in the canonical frame, with a
    notice.  ``location`` (``left_foot`` / ``right_foot``) names the foot of the
    own channels (``other_*`` are the other foot's).  ``on_notice`` receives
    plain-text reports (the lock, the fallback).
    """

    def __init__(
        self,
        inner: Backend,
        mounting: Any,
        location: str = "left_foot",
        max_hold_s: float = 60.0,
        min_confidence: float = 0.3,
        on_notice: Any = None,
    ) -> None:
        from gaitedge.data.mounting import rotations_for

        super().__init__(inner)
        self.location = location
        self.on_notice = on_notice
        self.min_confidence = float(min_confidence)
        self.max_hold = max(1, int(round(max_hold_s * self.rate_hz)))
        self.auto = isinstance(mounting, str) and mounting == "auto"
        self.rotations: list[tuple[list[int], np.ndarray]] = []
        self.locked = not self.auto
        #: the mounting in force once locked (None for the identity fallback)
        self.mounting = None if self.auto else mounting
        self._held: list[np.ndarray] = []
        self._last_reason = ""
        if not self.auto:
            self.rotations = rotations_for(list(self.channels), location, mounting)

    def _notice(self, text: str) -> None:
        if self.on_notice is not None:
            self.on_notice(text)

    def _rotate(self, x: np.ndarray) -> np.ndarray:
        if not self.rotations:
            return x
        y = np.array(x, dtype=np.float64, copy=True)
        for tri, m in self.rotations:
            y[tri] = m @ y[tri]
        return y.astype(np.float32)

    def _try_lock(self, final: bool = False) -> bool:
        from gaitedge.data.mounting import estimate_recording, rotations_for
        from gaitedge.data.recording import Recording
        from gaitedge.errors import DataError

        held = np.asarray(self._held, np.float32)
        rec = Recording(held, list(self.channels), list(self.units), self.rate_hz, location=self.location,
                        source="stream")
        try:
            m = estimate_recording(rec)
            low = [f"{k} {v.confidence:.2f}" for k, v in m.sensors.items() if v.confidence < self.min_confidence]
            if low:
                raise DataError(f"confidence too low ({', '.join(low)})")
        except DataError as exc:
            self._last_reason = str(exc).split(": ", 1)[-1]
            if not (final or len(self._held) >= self.max_hold):
                return False
            self._notice(f"mounting: no estimate after {len(self._held) / self.rate_hz:.0f} s "
                         f"({self._last_reason}); going on with the input taken as in the canonical frame")
            self.rotations = []
        else:
            self.mounting = m
            self.rotations = rotations_for(list(self.channels), self.location, m)
            parts = []
            for name, sm in m.sensors.items():
                from gaitedge.data.mounting import angles_deg

                parts.append(f"{name} {angles_deg(sm.matrix)['angle']:.0f}° (confidence {sm.confidence:.2f})")
            self._notice(f"mounting locked after {len(self._held) / self.rate_hz:.0f} s: " + ", ".join(parts))
        self.locked = True
        return True

    def _release(self) -> Decisions:
        held, self._held = self._held, []
        return merge_decisions([self.inner.push(self._rotate(x)) for x in held])

    def push(self, x: np.ndarray) -> Decisions:
        if self.locked:
            return self.inner.push(self._rotate(x))
        self._held.append(np.asarray(x, np.float32))
        n = len(self._held)
        if n % max(1, int(round(self.rate_hz))) == 0 and n >= 5 * self.rate_hz and self._try_lock():
            return self._release()
        return Decisions(0, _NONE, [])

    def flush(self) -> Decisions:
        first = Decisions(0, _NONE, [])
        if not self.locked and self._held:
            self._try_lock(final=True)
        if self._held:
            first = self._release()
        return merge_decisions([first, self.inner.flush()])

    def reset(self) -> None:
        """A new stream from the same sensors: the locked mounting stays."""
        self._held = []
        self.inner.reset()


class CheckedBackend(WrappedBackend):
    """A desktop backend that looks at the first ``check_s`` seconds of its input once.

    The samples it passes on (after any mounting) are checked with
    :func:`gaitedge.data.sanity.input_warnings` (units, and for a
    canonical-frame model gravity and the walking rotation axis); each warning
    goes to ``on_notice`` once.  Classification is not changed.
    """

    def __init__(self, inner: Backend, check_s: float = 20.0, on_notice: Any = None) -> None:
        super().__init__(inner)
        self.on_notice = on_notice
        self._n = max(1, int(round(check_s * self.rate_hz)))
        self._seen: list[np.ndarray] | None = []
        #: the warnings given (plain text)
        self.warnings: list[str] = []

    def _check(self) -> None:
        from gaitedge.data.recording import Recording
        from gaitedge.data.sanity import input_warnings

        seen, self._seen = self._seen, None
        if not seen:
            return
        rec = Recording(np.asarray(seen, np.float32), list(self.channels), list(self.units), self.rate_hz,
                        source="stream")
        self.warnings = [w.replace("stream:unknown: ", "") for w in input_warnings([rec], self.frame)]
        for w in self.warnings:
            if self.on_notice is not None:
                self.on_notice(w)

    def push(self, x: np.ndarray) -> Decisions:
        if self._seen is not None:
            self._seen.append(np.asarray(x, np.float32))
            if len(self._seen) >= self._n:
                self._check()
        return self.inner.push(x)

    def flush(self) -> Decisions:
        if self._seen is not None and len(self._seen) >= self.rate_hz:
            self._check()
        return self.inner.flush()


# -- a board over its serial link ------------------------------------------------------------



def model_identity(model: str | Path) -> dict[str, Any]:
    """What a run says about its model, to compare with a board's INFO.

    ``model``: a run folder, its ``quant.npz``, ``model.pt`` or
    ``model_step.onnx``.  Returns ``channels``, ``classes``, ``rate_hz`` (Hz),
    ``delay`` and ``min_run`` (samples), ``weights`` (the quantized weights'
    SHA-256 as the board reports it; ``""`` without ``quant.npz``) and
    ``source`` (the file read).  A run folder's ``quant.npz`` is preferred.
    """
    p = Path(model)
    if not p.exists():
        raise ModelError(f"{p}: no such model (give a run folder, its quant.npz, model.pt or model_step.onnx)")
    folder = run_folder(p)
    quant = p if p.is_file() and p.suffix == ".npz" else folder / QUANT_FILE
    if quant.is_file() and not (p.is_file() and p.suffix in (".pt", ".onnx")):
        from gaitedge.quant.model import QuantModel

        qm = QuantModel.load(quant)
        return {"channels": list(qm.channels), "classes": list(qm.classes), "rate_hz": float(qm.rate_hz),
                "delay": int(qm.delay), "min_run": int(qm.min_run), "weights": qm.weights_hash(),
                "source": str(quant)}
    ckpt = p if p.is_file() and p.suffix == ".pt" else folder / MODEL_FILE
    if ckpt.is_file() and not (p.is_file() and p.suffix == ".onnx"):
        from gaitedge.checkpoint import load_checkpoint

        tm = load_checkpoint(ckpt)
        return {"channels": list(tm.channels), "classes": list(tm.classes), "rate_hz": float(tm.rate_hz),
                "delay": int(tm.delay), "min_run": int(tm.min_run), "weights": "", "source": str(ckpt)}
    step = p if p.is_file() and p.suffix == ".onnx" else folder / ONNX_STEP_FILE
    if step.is_file():
        clf = OnnxGaitClassifier(step)
        return {"channels": list(clf.channels), "classes": list(clf.classes), "rate_hz": float(clf.rate_hz),
                "delay": int(clf.delay), "min_run": int(clf.min_run), "weights": "", "source": str(step)}
    raise ModelError(f"{p}: no {QUANT_FILE}, {MODEL_FILE} or {ONNX_STEP_FILE} here")


def check_device_model(info: Any, ident: dict[str, Any], url: str = "the board") -> None:
    """ModelError naming every difference between a board's INFO and a run's :func:`model_identity`."""
    src = ident["source"]
    diffs = []
    if list(info.channels) != list(ident["channels"]):
        diffs.append(f"channels {','.join(info.channels)} on the board, {','.join(ident['channels'])} in the run")
    if list(info.classes) != list(ident["classes"]):
        diffs.append(f"classes {','.join(info.classes)} on the board, {','.join(ident['classes'])} in the run")
    if abs(float(info.rate_hz) - float(ident["rate_hz"])) > 1e-3:
        diffs.append(f"rate {info.rate_hz:g} Hz on the board, {ident['rate_hz']:g} Hz in the run")
    if int(info.delay) != int(ident["delay"]):
        diffs.append(f"output delay {info.delay} samples on the board, {ident['delay']} in the run")
    if int(info.min_run) != int(ident["min_run"]):
        diffs.append(f"debounce {info.min_run} samples on the board, {ident['min_run']} in the run")
    if diffs:
        raise ModelError(f"{url} runs another model than {src}: " + "; ".join(diffs)
                         + ". Build and flash that run's firmware ('gaitedge firmware build RUN'), or leave out "
                           "--model to use the board's model as it is")
    if ident["weights"] and ident["weights"] != info.model_hash:
        raise ModelError(f"{url} runs weights {info.model_hash[:16]}... ({info.source}), {src} has "
                         f"{ident['weights'][:16]}...; send them with 'gaitedge flash RUN --port URL', or leave "
                         "out --model to use the board's weights")


@dataclass
class _InFlight:
    """One SAMPLES frame sent and not answered yet."""

    seq: int
    #: backend sample index of its first sample (padding at a flush counts on past the stream).
    start: int
    #: int16 counts ``(k, C)``.
    counts: np.ndarray
    #: bytes on the wire (estimate).
    size: int
    #: ``time.perf_counter()`` when it was written, s.
    sent: float


class DeviceBackend(Backend):
    """A gaitedge board classifying the stream: samples go out over its serial link, its results come back.

    ``url`` is the board's pyserial URL (``/dev/ttyACM0``, or the
    ``socket://127.0.0.1:PORT`` that ``gaitedge device emulate`` prints); an
    open :class:`~gaitedge.device.client.DeviceClient` may be given as
    ``client`` instead.  Channels, units, classes, rate, output delay and
    debounce come from the board's INFO.  ``model`` (a run folder,
    ``quant.npz``, ``model.pt`` or ``model_step.onnx``) is optional: when
    given, the board must run that model (:func:`check_device_model`, a
    ModelError naming the differences otherwise).

    Input: with ``counts=False`` physical values in the model's units (m/s²,
    rad/s), turned into int16 sensor counts with the board's resolution
    (``Info.to_counts``: ``floor(x / lsb + 0.5)``, saturated); with
    ``counts=True`` the raw sensor counts themselves (as
    :class:`~gaitedge.stream.sources.SamplesFrameDecoder` passes them from an
    IMU's binary frames).

    Labels and events are the board's own: the debounced label it reports at
    step ``s`` belongs to sample ``s - label_lag`` (output delay plus debounce,
    as in the other backends), and each event carries the sample where its new
    phase began.  :meth:`flush` sends ``delay`` copies of the last sample (as
    the integer reference pads a recording), labels the last ``min_run - 1``
    samples with the last confirmed label, and resets the board (RESET_STATE).

    Pipelining: :meth:`push` queues the sample and writes it at once while
    fewer than ``window`` frames are in flight and their bytes fit the board's
    receive buffer; samples that queue up meanwhile go out together, up to
    the board's maximum per frame.  Replies are read without blocking, so
    their labels come back with a later call.  When the caller comes back
    half a model sample period or more after the previous call returned (a
    live IMU at its rate, no backlog), ``push`` instead waits for the reply
    (``wait=None``, the default; ``True`` always waits, ``False`` never
    does), so the labels of a sample are known when ``push`` returns.  More than ``max_pending`` queued samples
    make ``push`` wait for the board (back-pressure).

    Faults: a board that restarts (its BOOT frame), a reply that does not come
    within ``timeout`` s, or a step counter that is not where it should be
    (another host reset the board) end the board's segment: the frames not
    answered are abandoned, the board is reset (RESET_STATE) and their
    samples sent again, so the new segment starts at the first sample without
    a result; the samples of the old segment still undecided get its last
    confirmed label, and a ``gap`` event at the restart sample reports it
    (details in :attr:`incidents`).  A board that comes back with another
    model is a DeviceError.  Stats: :attr:`frames_sent`, :attr:`samples_sent`,
    :attr:`restarts`, :meth:`round_trip_ms`.
    """

    kind = "device"

    def __init__(
        self,
        url: str | None = None,
        *,
        model: str | Path | None = None,
        counts: bool = False,
        window: int = 2,
        timeout: float = 2.0,
        wait: bool | None = None,
        max_pending: int | None = None,
        client: "DeviceClient | None" = None,
    ) -> None:
        from gaitedge.device.client import DeviceClient

        if client is None:
            if not url:
                raise DeviceError("the device backend needs the board's URL (--device URL)")
            client = DeviceClient(url, timeout=timeout)
        self.client = client
        self.url = client.url
        self.path = self.url
        try:
            self.info = info = client.info()
        except DeviceError:
            client.close()
            raise
        if model is not None:
            try:
                check_device_model(info, model_identity(model), self.url)
            except ModelError:
                client.close()
                raise
        self.channels = tuple(info.channels)
        self.units = tuple(info.units) if len(info.units) == len(info.channels) else ("",) * len(info.channels)
        self.classes = tuple(info.classes)
        self.rate_hz = float(info.rate_hz)
        self.delay = int(info.delay)
        self.min_run = max(1, int(info.min_run))
        self.counts = bool(counts)
        if not self.counts and not info.lsb:
            client.close()
            raise DeviceError(f"{self.url} does not report its channels' sensor resolution, so physical values "
                              "cannot be converted to its counts; stream raw counts (--format frames)")
        self._lsb = np.asarray(info.lsb, np.float64) if info.lsb else None
        self.window = max(1, int(window))
        self.timeout = float(timeout)
        self.wait = wait
        self.max_samples = max(1, int(info.max_samples))
        self.max_pending = int(max_pending) if max_pending else 4 * self.max_samples
        self._budget = max(int(info.rx_buffer) - 64, 1)
        self._wait_gap = 0.5 / self.rate_hz
        self._lag = self.label_lag
        self._boots = len(client.boots)
        #: frames and samples written (padding and samples sent again included).
        self.frames_sent = 0
        self.samples_sent = 0
        #: board segments ended by a fault (restart, lost reply, step counter off).
        self.restarts = 0
        #: one line per fault: where and why.
        self.incidents: list[str] = []
        self._rtt: deque[float] = deque(maxlen=100_000)
        self._last_push = -math.inf
        self._stuck = 0
        self._clear()
        self._reset_board()

    # -- state ---------------------------------------------------------------------------

    def _clear(self) -> None:
        self._pending: deque[np.ndarray] = deque()
        self._pending_start = 0
        self._inflight: deque[_InFlight] = deque()
        self._n = 0
        self._base = 0
        self._next_label = 0
        self._last_label = -1
        self._last_counts: np.ndarray | None = None
        self._out_start = 0
        self._out_labels: list[int] = []
        self._out_events: list[GaitEvent] = []

    def _abandon(self) -> None:
        outstanding = getattr(self.client, "_outstanding", None)
        for e in self._inflight:
            if outstanding is not None:
                outstanding.discard(e.seq)
        self._inflight.clear()

    def _reset_board(self) -> None:
        self.client.reset()

    # -- conversion ----------------------------------------------------------------------

    def _to_counts(self, x: np.ndarray) -> np.ndarray:
        v = np.asarray(x, np.float64)
        if v.shape != (len(self.channels),):
            raise DeviceError(f"the board's model takes {len(self.channels)} channels, got a sample of shape {v.shape}")
        if self.counts:
            q = np.rint(v)
        else:
            q = np.floor(v / self._lsb + 0.5)
        return np.clip(np.nan_to_num(q), -32768, 32767).astype(np.int16)

    # -- output --------------------------------------------------------------------------

    def _label(self, j: int, label: int) -> None:
        if not self._out_labels:
            self._out_start = j
        self._out_labels.append(label)
        self._next_label = j + 1

    def _fill(self, end: int) -> None:
        """Label samples ``next_label .. end - 1`` with the last confirmed label (a segment's undecided tail)."""
        end = min(end, self._n)
        if self._last_label < 0 or end <= self._next_label:
            return
        if self._out_labels and self._out_start + len(self._out_labels) != self._next_label:
            return
        for j in range(self._next_label, end):
            self._label(j, self._last_label)

    def _take(self) -> Decisions:
        labels, events = self._out_labels, self._out_events
        start = self._out_start
        self._out_labels, self._out_events = [], []
        if not labels:
            return Decisions(0, _NONE, events)
        return Decisions(start, labels, events)

    # -- the link ------------------------------------------------------------------------

    def _send(self) -> None:
        """Write queued samples while the window and the board's receive buffer allow."""
        c = len(self.channels)
        while self._pending and len(self._inflight) < self.window:
            k = min(len(self._pending), self.max_samples)
            size = 20 + 2 * k * c + (2 * k * c) // 254
            if self._inflight and sum(e.size for e in self._inflight) + size > self._budget:
                break
            block = np.stack([self._pending.popleft() for _ in range(k)])
            start = self._pending_start
            self._pending_start += k
            seq = self.client.send_samples(block)
            self._inflight.append(_InFlight(seq, start, block, size, time.perf_counter()))
            self.frames_sent += 1
            self.samples_sent += k

    def _collect(self, timeout: float) -> None:
        """Read replies (waiting up to ``timeout`` s for the first) and turn them into labels and events."""
        from gaitedge.device.client import DeviceNak

        try:
            got = self.client.poll_results(timeout)
        except DeviceNak as exc:
            raise DeviceError(f"{self.url}: the board refused a SAMPLES frame: {exc}") from None
        now = time.perf_counter()
        booted = len(self.client.boots) != self._boots
        for seq, res in got:
            if not self._inflight or all(e.seq != seq for e in self._inflight):
                continue
            if self._inflight[0].seq != seq:
                # a BOOT frame read before this reply explains the missing one: the board restarted
                self._resync("the board restarted" if booted else "a reply was lost on the link", booted)
                return
            e = self._inflight.popleft()
            self._rtt.append(now - e.sent)
            expected = e.start - self._base
            if res.first_step != expected or len(res) != len(e.counts):
                self._inflight.appendleft(e)
                why = ("the board restarted" if booted else
                       f"the board's step counter is {res.first_step}, expected {expected} (reset by another host?)")
                self._resync(why, booted)
                return
            self._accept(e, res)
        if booted:
            self._resync("the board restarted", True)

    def _accept(self, e: _InFlight, res: Any) -> None:
        from gaitedge.protocol.messages import EVENT_NAMES

        self._stuck = 0
        lag, base, n = self._lag, self._base, self._n
        labels, events, ev_s = res.label.tolist(), res.event.tolist(), res.event_sample.tolist()
        for i, lab in enumerate(labels):
            if lab >= 0:
                self._last_label = lab
                j = e.start + i - lag
                if base <= j < n and j >= self._next_label:
                    if j > self._next_label:
                        self._fill(j)
                    self._label(j, lab)
            if events[i]:
                g = base + ev_s[i]
                self._out_events.append(GaitEvent(EVENT_NAMES.get(events[i], str(events[i])), g, g / self.rate_hz))

    def _resync(self, why: str, booted: bool = False) -> None:
        """End the board's segment at the first sample without a result; reset the board; send the rest again.

        ``booted``: the board sent a BOOT frame (then it must still run the same model)."""
        self._stuck += 1
        if self._stuck > 3:
            raise DeviceError(f"{self.url}: {why}, and resetting the board did not help")
        at = self._inflight[0].start if self._inflight else self._pending_start
        again = [row for e in self._inflight for row in e.counts]
        self._abandon()
        self._fill(at)
        self.restarts += 1
        booted = booted or len(self.client.boots) != self._boots
        self._boots = len(self.client.boots)
        if booted:
            info = self.client.info()
            if (info.arch_hash, info.model_hash) != (self.info.arch_hash, self.info.model_hash):
                raise DeviceError(f"{self.url} restarted with another model (weights {info.model_hash[:16]}..., "
                                  f"{info.source}) than it ran before ({self.info.model_hash[:16]}...)")
        self._reset_board()
        if at >= self._n:  # only the padding of a flush was lost: nothing of the stream to classify again
            self._pending.clear()
            self._pending_start = at
            self.incidents.append(f"sample {at}: {why} at the end of the stream")
            return
        self._pending.extendleft(reversed(again))
        self._pending_start = at
        self._base = at
        self._next_label = max(self._next_label, at)
        self._last_label = -1
        self._out_events.append(GaitEvent("gap", at, at / self.rate_hz))
        self.incidents.append(f"sample {at}: {why}; board reset, {len(again)} sample(s) sent again")

    def _check_timeout(self) -> None:
        if self._inflight and time.perf_counter() - self._inflight[0].sent > self.timeout:
            self._resync(f"no reply within {self.timeout:g} s")

    def _drain(self) -> None:
        """Send everything queued and wait until every frame is answered."""
        while self._pending or self._inflight:
            self._send()
            if self._inflight:
                self._collect(0.05)
                self._check_timeout()

    # -- Backend -------------------------------------------------------------------------

    def push(self, x: np.ndarray) -> Decisions:
        counts = self._to_counts(x)
        self._last_counts = counts
        self._pending.append(counts)
        self._n += 1
        wait = self.wait if self.wait is not None else time.perf_counter() - self._last_push >= self._wait_gap
        self._collect(0.0)
        self._send()
        if wait:
            self._drain()
        else:
            while len(self._pending) > self.max_pending:
                self._collect(0.05)
                self._send()
                self._check_timeout()
            self._check_timeout()
        self._last_push = time.perf_counter()
        return self._take()

    def flush(self) -> Decisions:
        if self._n > 0 and self._last_counts is not None:
            for _ in range(self.delay):
                self._pending.append(self._last_counts)
            self._drain()
            self._fill(self._n)
        d = self._take()
        self.reset()
        return d

    def reset(self) -> None:
        self._abandon()
        self._clear()
        self._reset_board()

    def close(self) -> None:
        self._abandon()
        self.client.close()

    # -- figures -------------------------------------------------------------------------

    def round_trip_ms(self, q: Sequence[float] = (50, 99)) -> list[float]:
        """Percentiles ``q`` of the frame round trip (SAMPLES written -> RESULTS read) in ms; NaN if none."""
        if not self._rtt:
            return [math.nan] * len(q)
        return [float(v) for v in np.percentile(np.asarray(self._rtt) * 1e3, q)]

    def describe(self) -> str:
        """One line about the link: frames, samples per frame, round trip, restarts."""
        p50, p99 = self.round_trip_ms()
        per = self.samples_sent / self.frames_sent if self.frames_sent else 0.0
        return (f"board {self.info.board} on {self.url}: {self.frames_sent} frames ({per:.1f} samples per frame), "
                f"frame written -> results read p50 {p50:.2f} ms, p99 {p99:.2f} ms, {self.restarts} restart(s)")


def load_backend(model: str | Path, kind: str = "onnx", threads: int = 1) -> Backend:
    """A backend for ``model``: a run folder, its ``model_step.onnx`` or its ``model.pt``.

    ``kind`` ``onnx`` needs the step graph (``gaitedge export onnx RUN``);
    ``torch`` needs the checkpoint.  ModelError names what is missing.
    """
    p = Path(model)
    if not p.exists():
        raise ModelError(f"{p}: no such model (give a run folder, its model_step.onnx or model.pt)")
    folder = run_folder(p)
    if kind == "onnx":
        if p.is_file() and p.suffix == ".onnx":
            return OnnxBackend(p, threads=threads)
        step = folder / ONNX_STEP_FILE
        if step.is_file():
            return OnnxBackend(step, threads=threads)
        if (folder / ONNX_SEQUENCE_FILE).is_file():
            from gaitedge.runtime.onnx_runtime import refuse_window_model

            refuse_window_model(folder / ONNX_SEQUENCE_FILE)
        if (folder / MODEL_FILE).is_file() or p.suffix == ".pt":
            raise ModelError(
                f"{folder}: no {ONNX_STEP_FILE}; export it with 'gaitedge export onnx {folder}' (or use --backend torch)"
            )
        return OnnxBackend(p, threads=threads)
    if kind == "torch":
        from gaitedge.checkpoint import load_checkpoint

        ckpt = p if p.is_file() and p.suffix != ".onnx" else folder / MODEL_FILE
        if not ckpt.is_file():
            raise ModelError(f"{folder}: no {MODEL_FILE} checkpoint for --backend torch")
        return TorchBackend(load_checkpoint(ckpt), threads=threads, path=str(ckpt))
    raise ModelError(f"unknown backend {kind!r}; use onnx or torch")
