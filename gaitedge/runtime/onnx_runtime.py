"""Real-time gait-phase classification with ONNX Runtime, one sample at a time.

:class:`OnnxGaitClassifier` loads ``model_step.onnx`` written by ``gaitedge
export onnx`` and everything it needs from the file's metadata (see
:mod:`gaitedge.export.onnx_export` for the keys); torch is not needed.  Each
:meth:`OnnxGaitClassifier.push` takes one raw sample (model channel order and
units, at the model rate) and runs the same chain as ``TrainedModel.predict``:

1. the causal low-pass filter (second-order sections, direct form II
   transposed, float64), its state starting in steady state for the first
   sample of the stream;
2. normalization ``(x - mean) / std`` in float32;
3. one step of the recurrent model (state kept between calls);
4. softmax and arg-max;
5. the causal debounce: a new label is adopted only once it has lasted
   ``min_run`` consecutive samples, and then from its first sample;
6. events: ``toe_off`` at every adopted transition into ``swing``,
   ``heel_strike`` at every adopted transition out of it.

Timing.  With an output delay of ``d`` samples the model's step ``n`` classifies
input sample ``n - d``, and the debounce decides the label of sample ``i`` when
sample ``i + min_run - 1`` has been classified.  So ``push`` number ``n`` (from
0) returns the probabilities of sample ``n - d`` and the final label of sample
``n - d - min_run + 1`` (``-1`` / ``None`` while those indices are negative);
events carry the index of the input sample where they happened.  When a stream
ends, :meth:`OnnxGaitClassifier.flush` decides the last ``d + min_run - 1``
samples exactly as the offline ``predict`` does: it repeats the last filtered
sample ``d`` times and treats the end of the stream as the end of any pending
label run.  Pushing a whole recording and flushing therefore reproduces
``TrainedModel.predict`` (labels, events, and probabilities to float rounding).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple, Sequence

import numpy as np

from gaitedge.data.mounting import Mounting, rotations_for
from gaitedge.errors import DataError, ModelError
from gaitedge.rundir import ONNX_SEQUENCE_FILE, file_in_run
from gaitedge.rundir import ONNX_STEP_FILE as STEP_FILE
from gaitedge.runtime.postprocess import CausalFilter, Debouncer, GaitEvent

FORMAT = "gaitedge-onnx"
FORMAT_VERSION = 1
REQUIRED_KEYS = (
    "format", "format_version", "graph", "gaitedge_version", "family", "classes", "channels", "units",
    "rate_hz", "norm_mean", "norm_std", "filter_sos", "delay", "min_run", "weights_sha256",
    "inputs", "outputs", "state_inputs", "state_outputs", "state_shapes",
)


class PushResult(NamedTuple):
    """What one :meth:`OnnxGaitClassifier.push` returns."""

    #: debounced class index of sample ``n - delay - min_run + 1`` (-1 while undecided).
    label: int
    #: class probabilities ``(K,)`` of sample ``n - delay`` (None while ``n < delay``).
    probabilities: np.ndarray | None
    #: events adopted by this push (usually none).
    events: list[GaitEvent]


class FlushResult(NamedTuple):
    """What :meth:`OnnxGaitClassifier.flush` returns: the stream's undecided tail."""

    #: debounced labels of samples ``label_start .. end - 1``.
    labels: np.ndarray
    label_start: int
    #: probabilities ``(n, K)`` of samples ``prob_start .. end - 1``.
    probabilities: np.ndarray
    prob_start: int
    #: events adopted while flushing.
    events: list[GaitEvent]


@dataclass(frozen=True)
class OnnxModelInfo:
    """The metadata of a gaitedge ONNX graph, parsed and checked."""

    graph: str
    family: str
    gaitedge_version: str
    classes: tuple[str, ...]
    channels: tuple[str, ...]
    units: tuple[str, ...]
    #: sampling rate in Hz.
    rate_hz: float
    #: normalization mean and divisor per channel (channel units), float32.
    mean: np.ndarray
    std: np.ndarray
    #: low-pass second-order sections ``(n_sections, 6)``, or None when off.
    sos: np.ndarray | None
    #: output delay in samples.
    delay: int
    #: debounce length in samples.
    min_run: int
    weights_sha256: str
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    state_inputs: tuple[str, ...]
    state_outputs: tuple[str, ...]
    #: state shapes for one stream (batch axis 1).
    state_shapes: tuple[tuple[int, ...], ...]
    #: coordinate frame of the IMU channels the model expects (``"sensor"`` if not recorded).
    frame: str = "sensor"
    #: every metadata entry as stored (strings).
    raw: dict[str, str] = field(repr=False, default_factory=dict)

    @property
    def swing(self) -> int:
        """Index of class ``swing``, or -1 if the model has none (no events then)."""
        return self.classes.index("swing") if "swing" in self.classes else -1


def parse_metadata(meta: dict[str, str], source: str) -> OnnxModelInfo:
    """Parse ``metadata_props`` of a gaitedge ONNX file; ModelError names ``source`` and the problem."""
    if meta.get("format") != FORMAT:
        raise ModelError(
            f"{source}: not a gaitedge model (no gaitedge metadata); export one with 'gaitedge export onnx RUN'"
        )
    missing = [k for k in REQUIRED_KEYS if k not in meta]
    if missing:
        raise ModelError(f"{source}: gaitedge metadata lacks {', '.join(missing)}")

    def val(key: str, conv: Any) -> Any:
        try:
            return conv(meta[key])
        except (ValueError, TypeError) as exc:
            raise ModelError(f"{source}: metadata {key!r} is malformed ({exc})") from None

    version = val("format_version", int)
    if version > FORMAT_VERSION:
        raise ModelError(f"{source}: gaitedge ONNX format {version} is newer than this gaitedge understands")
    classes = tuple(str(c) for c in val("classes", json.loads))
    channels = tuple(str(c) for c in val("channels", json.loads))
    units = tuple(str(u) for u in val("units", json.loads))
    mean = np.asarray(val("norm_mean", json.loads), dtype=np.float32)
    std = np.asarray(val("norm_std", json.loads), dtype=np.float32)
    sos_list = val("filter_sos", json.loads)
    sos = np.asarray(sos_list, dtype=np.float64) if len(sos_list) else None
    info = OnnxModelInfo(
        graph=meta["graph"],
        family=meta["family"],
        gaitedge_version=meta["gaitedge_version"],
        classes=classes,
        channels=channels,
        units=units,
        rate_hz=val("rate_hz", float),
        mean=mean,
        std=std,
        sos=sos,
        delay=val("delay", int),
        min_run=val("min_run", int),
        weights_sha256=meta["weights_sha256"],
        inputs=tuple(val("inputs", json.loads)),
        outputs=tuple(val("outputs", json.loads)),
        state_inputs=tuple(val("state_inputs", json.loads)),
        state_outputs=tuple(val("state_outputs", json.loads)),
        state_shapes=tuple(tuple(int(d) for d in s) for s in val("state_shapes", json.loads)),
        frame=meta.get("frame", "sensor"),
        raw=dict(meta),
    )
    c = len(channels)
    problems = []
    if len(classes) < 2:
        problems.append(f"{len(classes)} classes")
    if c < 1 or len(units) != c or mean.shape != (c,) or std.shape != (c,):
        problems.append(f"{c} channels but {len(units)} units, {mean.size} means, {std.size} stds")
    if not np.all(np.isfinite(mean)) or not np.all(np.isfinite(std)) or np.any(std == 0):
        problems.append("normalization has non-finite values or zero std")
    if sos is not None and (sos.ndim != 2 or sos.shape[1] != 6 or not np.all(sos[:, 3] == 1.0)):
        problems.append(f"filter_sos must be rows [b0, b1, b2, 1, a1, a2], got shape {sos.shape}")
    if not (info.rate_hz > 0 and math.isfinite(info.rate_hz)):
        problems.append(f"rate_hz {info.rate_hz}")
    if info.delay < 0 or info.min_run < 0:
        problems.append(f"delay {info.delay} / min_run {info.min_run} negative")
    n_state = len(info.state_inputs)
    if (len(info.state_outputs) != n_state or len(info.state_shapes) != n_state
            or info.inputs[1:] != info.state_inputs or info.outputs[1:] != info.state_outputs):
        problems.append("state names and shapes do not match the inputs and outputs")
    if problems:
        raise ModelError(f"{source}: inconsistent gaitedge metadata: {'; '.join(problems)}")
    return info


def non_causal_message(family: str, source: str) -> str:
    """Why a whole-window model cannot stream, and what to use instead."""
    return (f"{source}: {family} is a whole-window (non-causal) model whose output depends on later samples; "
            f"it cannot stream sample by sample: use the window API (the ONNX sequence graph model.onnx over "
            f"whole windows, or 'gaitedge export c' for the C ge_window_run)")


def refuse_window_model(path: Path) -> None:
    """Raise ModelError if ``path`` is a gaitedge graph of a whole-window model (else return)."""
    try:
        import onnx

        meta = {p.key: p.value for p in onnx.load(str(path), load_external_data=False).metadata_props}
    except Exception:
        return
    if meta.get("causal") == "false":
        raise ModelError(non_causal_message(meta.get("family", "the model"), str(path)))


def _softmax(z: list[float]) -> np.ndarray:
    """Softmax of a short list of logits as float32 ``(K,)``."""
    m = max(z)
    e = [math.exp(v - m) for v in z]
    s = sum(e)
    return np.array([v / s for v in e], dtype=np.float32)


class OnnxGaitClassifier:
    """Streaming gait-phase classifier over a gaitedge ``model_step.onnx``.

    ``path`` is the step graph or a folder holding ``model_step.onnx``;
    ``threads`` is ONNX Runtime's intra-op thread count (1 is fastest for these
    small models).  One instance classifies one stream; :meth:`reset` starts a
    new one.  See the module docstring for the timing of labels and events.
    """

    def __init__(self, path: str | Path, threads: int = 1, mounting: Mounting | None = None,
                 location: str = "left_foot") -> None:
        import onnxruntime as ort

        self.path = file_in_run(path, STEP_FILE)
        window = self.path.with_name(ONNX_SEQUENCE_FILE)
        if not self.path.is_file() and window.is_file():
            refuse_window_model(window)
        if not self.path.is_file():
            raise ModelError(f"{self.path}: no such ONNX model file (expected {STEP_FILE} from 'gaitedge export onnx')")
        so = ort.SessionOptions()
        so.intra_op_num_threads = max(1, int(threads))
        so.inter_op_num_threads = 1
        so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        so.enable_cpu_mem_arena = False
        so.log_severity_level = 3
        try:
            self._sess = ort.InferenceSession(str(self.path), so, providers=["CPUExecutionProvider"])
        except Exception as exc:  # ONNX Runtime raises its own types for unreadable files
            reason = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__
            raise ModelError(f"{self.path}: not a loadable ONNX model ({reason})") from None
        meta = dict(self._sess.get_modelmeta().custom_metadata_map)
        info = parse_metadata(meta, str(self.path))
        if meta.get("causal") == "false":
            raise ModelError(non_causal_message(info.family, str(self.path)))
        if info.graph != "step":
            raise ModelError(f"{self.path}: is the gaitedge {info.graph} graph; load the step graph {STEP_FILE}")
        self.info = info
        self._check_signature()

        c, k = len(info.channels), len(info.classes)
        self._n_channels = c
        self._shape = (c,)
        self._mean = info.mean
        self._std = info.std
        self._min_run = max(1, info.min_run)
        self._filt = CausalFilter(info.sos) if info.sos is not None else None
        self._deb = Debouncer(self._min_run, info.swing, info.rate_hz)
        self._rot: list[tuple[list[int], np.ndarray]] = []
        self.set_mounting(mounting, location)
        self._x = np.zeros((1, c), np.float32)
        self._logits = np.zeros((1, k), np.float32)
        self._states = [[np.zeros(s, np.float32) for s in info.state_shapes] for _ in range(2)]
        self._keep: list[Any] = []
        self._bindings = []
        ov = ort.OrtValue.ortvalue_from_numpy
        for j in range(2):
            b = self._sess.io_binding()
            vals = [ov(self._x)] + [ov(a) for a in self._states[j]]
            outs = [ov(self._logits)] + [ov(a) for a in self._states[1 - j]]
            for name, v in zip(info.inputs, vals):
                b.bind_ortvalue_input(name, v)
            for name, v in zip(info.outputs, outs):
                b.bind_ortvalue_output(name, v)
            self._keep += vals + outs
            self._bindings.append(b)
        self.reset()

    def set_mounting(self, mounting: Mounting | None, location: str = "left_foot") -> None:
        """Rotate every IMU triad of each sample by its sensor's mounting before the filter.

        ``location`` (``left_foot`` / ``right_foot``) says which foot this stream's
        own channels come from (``other_*`` are the other foot's); None removes
        the mounting.  Takes effect from the next :meth:`push`.
        """
        self._rot = [] if mounting is None else [
            (tri, np.asarray(m, np.float64)) for tri, m in rotations_for(list(self.info.channels), location, mounting)
        ]

    @property
    def mounting_rotations(self) -> list[tuple[list[int], np.ndarray]]:
        """The ``(triad channel indices, 3×3 matrix)`` pairs applied to each sample."""
        return list(self._rot)

    def _check_signature(self) -> None:
        info = self.info
        ins = self._sess.get_inputs()
        outs = self._sess.get_outputs()
        if tuple(i.name for i in ins) != info.inputs or tuple(o.name for o in outs) != info.outputs:
            raise ModelError(
                f"{self.path}: graph inputs/outputs {[i.name for i in ins]} -> {[o.name for o in outs]} "
                f"do not match its metadata {list(info.inputs)} -> {list(info.outputs)}"
            )
        x_shape = ins[0].shape
        if len(x_shape) != 2 or x_shape[1] != len(info.channels):
            raise ModelError(
                f"{self.path}: step input x has shape {x_shape}, expected [batch, {len(info.channels)}]"
            )
        if len(outs[0].shape) != 2 or outs[0].shape[1] != len(info.classes):
            raise ModelError(f"{self.path}: logits have shape {outs[0].shape}, expected [batch, {len(info.classes)}]")
        for i, shape in zip(ins[1:], info.state_shapes):
            if len(i.shape) != len(shape) or any(
                isinstance(a, int) and a != b for j, (a, b) in enumerate(zip(i.shape, shape)) if j != 1
            ):
                raise ModelError(f"{self.path}: state input {i.name} has shape {i.shape}, metadata says {list(shape)}")

    # -- description -----------------------------------------------------------------

    @property
    def classes(self) -> tuple[str, ...]:
        """Class names in probability order."""
        return self.info.classes

    @property
    def channels(self) -> tuple[str, ...]:
        """Input channel names, in the order ``push`` expects them."""
        return self.info.channels

    @property
    def units(self) -> tuple[str, ...]:
        """Unit of each input channel."""
        return self.info.units

    @property
    def rate_hz(self) -> float:
        """Sampling rate the model expects, Hz."""
        return self.info.rate_hz

    @property
    def delay(self) -> int:
        """Output delay in samples (probabilities lag the input by this much)."""
        return self.info.delay

    @property
    def min_run(self) -> int:
        """Debounce length in samples."""
        return self._min_run

    @property
    def label_lag(self) -> int:
        """How many samples the returned label lags the newest input: ``delay + min_run - 1``."""
        return self.info.delay + self._min_run - 1

    @property
    def samples_pushed(self) -> int:
        """Number of samples pushed since the last reset."""
        return self._n

    # -- streaming ---------------------------------------------------------------------

    def reset(self) -> None:
        """Start a new stream: zero model state, fresh filter and debounce."""
        for pair in self._states:
            for a in pair:
                a.fill(0.0)
        self._x.fill(0.0)
        self._cur = 0
        self._n = 0
        self._steps = 0
        if self._filt is not None:
            self._filt.reset()
        self._deb.reset()

    def _check_sample(self, sample: Sequence[float] | np.ndarray) -> np.ndarray:
        try:
            x = np.asarray(sample, dtype=np.float64)
        except (TypeError, ValueError):
            raise DataError(f"sample {self._n}: not numeric ({type(sample).__name__})") from None
        if x.shape != self._shape:
            ch = self.info.channels
            names = ", ".join(ch) if len(ch) <= 4 else f"{ch[0]}, {ch[1]}, ..., {ch[-1]}"
            raise DataError(
                f"sample {self._n}: expected one sample of {self._n_channels} values ({names}), got shape {x.shape}"
            )
        if not np.isfinite(x).all():
            bad = [c for c, ok in zip(self.info.channels, np.isfinite(x)) if not ok]
            raise DataError(f"sample {self._n}: non-finite value in channel(s) {', '.join(bad)}")
        return x

    def _step(self) -> None:
        self._sess.run_with_iobinding(self._bindings[self._cur])
        self._cur ^= 1
        self._steps += 1

    def _classify(self) -> tuple[np.ndarray | None, int, list[GaitEvent]]:
        """After a model step: (probabilities of the classified sample, its final label, events)."""
        i = self._steps - 1 - self.info.delay
        if i < 0:
            return None, -1, []
        p = _softmax(self._logits[0].tolist())
        events = self._deb.update(int(p.argmax()), i)
        label = self._deb.confirmed if i - self._min_run + 1 >= 0 else -1
        return p, label, events

    def push(self, sample: Sequence[float] | np.ndarray) -> PushResult:
        """Classify one raw sample (channel order :attr:`channels`, units :attr:`units`, at :attr:`rate_hz`).

        Returns the debounced label of sample ``n - delay - min_run + 1``, the
        probabilities of sample ``n - delay`` and the events adopted now (``n``:
        index of this sample in the stream).  Raises DataError for a sample of the
        wrong shape or with non-finite values (the stream state is unchanged).
        """
        x = self._check_sample(sample)
        if self._rot:
            x = x.copy()  # the caller's sample stays as given
        for tri, m in self._rot:
            x[tri] = m @ x[tri]
        if self._filt is not None:
            x = self._filt(x)
        xf = x.astype(np.float32)
        np.subtract(xf, self._mean, out=self._x[0])
        np.divide(self._x[0], self._std, out=self._x[0])
        self._n += 1
        self._step()
        p, label, events = self._classify()
        return PushResult(label, p, events)

    def flush(self) -> FlushResult:
        """End the stream: decide the labels not yet returned, then :meth:`reset`.

        Repeats the last filtered sample ``delay`` times (so that the final
        samples are classified, as the offline ``predict`` does) and ends any
        pending debounce run (too short to adopt).  ``labels`` then covers every
        sample whose label no ``push`` returned, ``probabilities`` every sample
        whose probabilities none returned.
        """
        n = self._n
        k = len(self.info.classes)
        label_start = max(0, n - self.label_lag)
        prob_start = max(0, n - self.info.delay)
        probs: list[np.ndarray] = []
        labels: list[int] = []
        events: list[GaitEvent] = []
        if n > 0:
            for _ in range(self.info.delay):
                self._step()
                p, label, ev = self._classify()
                if p is not None:
                    probs.append(p)
                    events += ev
                if label >= 0:
                    labels.append(label)
            labels += [self._deb.confirmed] * (n - label_start - len(labels))
        self.reset()
        return FlushResult(
            labels=np.asarray(labels, dtype=np.int64),
            label_start=label_start,
            probabilities=np.asarray(probs, dtype=np.float32).reshape(-1, k),
            prob_start=prob_start,
            events=events,
        )

    def classify(self, signals: np.ndarray) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
        """Offline convenience: reset, push every row of ``signals (T, C)``, flush.

        Returns (labels ``(T,)``, probabilities ``(T, K)``, events {kind: sample
        indices}) in the layout of ``TrainedModel.predict``.  Leaves the
        classifier reset.
        """
        x = np.asarray(signals)
        if x.ndim != 2 or x.shape[1] != self._n_channels:
            raise DataError(f"expected signals of shape (T, {self._n_channels}), got {x.shape}")
        self.reset()
        labels: list[int] = []
        probs: list[np.ndarray] = []
        events: list[GaitEvent] = []
        for row in x:
            r = self.push(row)
            if r.label >= 0:
                labels.append(r.label)
            if r.probabilities is not None:
                probs.append(r.probabilities)
            events += r.events
        f = self.flush()
        lab = np.concatenate([np.asarray(labels, np.int64), f.labels])
        pr = np.concatenate([np.asarray(probs, np.float32).reshape(-1, len(self.classes)), f.probabilities])
        kinds = ("toe_off", "heel_strike")
        ev = {k: np.asarray([e.sample for e in events if e.kind == k], dtype=np.int64) for k in kinds}
        return lab, pr, ev
