"""The live streaming pipeline: source -> inference -> log and display.

Three threads, data flowing one way::

    reader ──(bounded sample buffer)──> inference ──(bounded record queue)──> writer ──> log, view

* The **reader** calls :meth:`Source.read`; when the port vanishes
  (:class:`SourceLost`) it reconnects with exponential back-off.  A live source
  cannot wait, so when the sample buffer is full new samples are *dropped* and
  counted; a replayed recording blocks instead.
* The **inference** thread checks every sample for gaps (by its counter field,
  else its timestamp), pushes it through each lane's backend, and turns the
  decided labels and events into step counts, cadence and stance/swing ratio.
  A short gap (up to ``max_fill_s``) is filled by holding the last sample, so
  sample indices stay on the device's time grid; a longer one, time running
  backwards, or a reconnect without timestamps ends the segment: the backends
  are flushed and start afresh.  A sample whose counter or timestamp says
  there is a gap is held until the next one arrives, and kept only when that
  one follows it closely and either does not follow the sample before it
  closely or shows the held one in between; otherwise the held sample's
  counter or timestamp was damaged in transit (a line that still parses), so
  it is dropped (``outliers``) and its slot filled, instead of restarting the
  model and moving the sample grid.  A held sample that no next sample
  confirms (a disconnect, the end, 0.2 s of silence) is kept only after a
  fillable gap.  For the next gap check a
  timestamp counts as at most a quarter period off its slot, so one that is a
  little early or late does not move the samples after it either.
* The **writer** appends events and stream incidents to the event log
  (flushed at every batch) and keeps recent records for the view.  Neither the
  log nor the view can block inference: its queue is bounded and a full queue
  is counted, not waited on.

Latency is measured per sample from the moment its bytes were read to the
moment every lane has classified it (the labels it decides are then known); the
model's own lag (output delay plus debounce, ``label_lag`` samples) comes on
top and is reported separately.
"""

from __future__ import annotations

import math
import queue
import threading
import time
from collections import deque
from dataclasses import asdict, dataclass, field
from typing import Any, Callable, NamedTuple, Sequence

import numpy as np

from gaitedge.errors import DataError, GaitedgeError
from gaitedge.stream.backends import Backend, Decisions
from gaitedge.stream.sources import ColumnMap, EndOfStream, Sample, Source, SourceError, SourceLost

#: stride times above this (s) are pauses, not strides, for cadence.
MAX_STRIDE_S = 2.5
#: how many recent samples :meth:`Session.sample_time` remembers.
TIME_RING = 1 << 16


@dataclass
class Lane:
    """One model labelling one foot from the shared input stream."""

    #: display name (``left``, ``right``, ``foot``, ...).
    name: str
    backend: Backend
    #: which input fields feed the model's channels.
    columns: ColumnMap


class Record(NamedTuple):
    """One line of the event log: a gait event or a stream incident."""

    #: ``heel_strike``, ``toe_off``, ``gap``, ``restart``, ``disconnect``, ``reconnect`` or ``notice``.
    kind: str
    #: lane (foot) name for gait events, ``""`` for stream incidents.
    foot: str
    #: sample index in the stream (0 = first sample; the device time grid), -1 if none.
    sample: int
    #: stream time of that sample in s (device clock when the input carries one).
    t_s: float
    #: host wall-clock time (Unix s) when it was recorded.
    wall: float
    #: free text (gap length, reconnect reason, ...).
    detail: str = ""


# -- small building blocks ---------------------------------------------------------------


class _Marker:
    def __init__(self, name: str, detail: str = "", value: float = 0.0) -> None:
        self.name, self.detail, self.value = name, detail, value


_END = _Marker("end")


class SampleBuffer:
    """Bounded FIFO between reader and inference, counted in samples.

    :meth:`put` either drops what does not fit (``block=False``; returns the
    number dropped) or waits for room; markers always fit.  :meth:`get`
    returns everything queued (a batch) or waits up to ``timeout`` s.
    """

    def __init__(self, capacity: int) -> None:
        self.capacity = max(1, int(capacity))
        self._items: deque[Any] = deque()
        self._n = 0
        self._cond = threading.Condition()
        self.high_water = 0

    def __len__(self) -> int:
        return self._n

    def put(self, samples: list[Sample], block: bool, stop: threading.Event) -> int:
        with self._cond:
            if block:
                while self._n + len(samples) > self.capacity and self._n > 0 and not stop.is_set():
                    self._cond.wait(0.05)
                dropped = 0
            else:
                room = self.capacity - self._n
                dropped = max(0, len(samples) - room)
                if dropped:
                    samples = samples[:room]
            self._items.extend(samples)
            self._n += len(samples)
            self.high_water = max(self.high_water, self._n)
            self._cond.notify_all()
            return dropped

    def put_marker(self, marker: _Marker) -> None:
        with self._cond:
            self._items.append(marker)
            self._cond.notify_all()

    def get(self, timeout: float) -> list[Any]:
        with self._cond:
            if not self._items:
                self._cond.wait(timeout)
            items = list(self._items)
            self._items.clear()
            self._n = 0
            self._cond.notify_all()
            return items


class LatencyRecorder:
    """The last ``capacity`` latencies (s) in a ring buffer."""

    def __init__(self, capacity: int = 1 << 18) -> None:
        self._buf = np.zeros(int(capacity), np.float64)
        self.count = 0

    def add(self, seconds: float) -> None:
        self._buf[self.count % len(self._buf)] = seconds
        self.count += 1

    def values(self, last: int | None = None) -> np.ndarray:
        """Recorded latencies in s, oldest first (at most ``last``)."""
        n = min(self.count, len(self._buf))
        if last is not None:
            n = min(n, last)
        if n == 0:
            return np.zeros(0)
        end = self.count % len(self._buf)
        idx = (np.arange(end - n, end)) % len(self._buf)
        return self._buf[idx]

    def percentiles_ms(self, qs: Sequence[float] = (50, 99), last: int | None = None) -> list[float]:
        v = self.values(last)
        if len(v) == 0:
            return [math.nan for _ in qs]
        return [float(x) * 1e3 for x in np.percentile(v, list(qs))]


class GaitTracker:
    """Per-foot gait figures from decided labels and events (sample indices at ``rate_hz``).

    A stride runs from one heel strike of this foot to the next; strides longer
    than :data:`MAX_STRIDE_S` are pauses.  Stance is heel strike to toe off,
    swing toe off to the next heel strike.  One foot's stride holds two steps.
    """

    def __init__(self, classes: Sequence[str], rate_hz: float) -> None:
        self.classes = tuple(classes)
        self.rate_hz = rate_hz
        self.phase = -1
        self.phase_sample = -1
        self.strides = 0
        self.counts: dict[str, int] = {"heel_strike": 0, "toe_off": 0}
        self.stride_s: list[float] = []
        self.phases: list[tuple[float, float]] = []
        self._last_hs = -1
        self._last_to = -1
        #: every gait event so far: kind -> sample indices (stream samples)
        self.events: dict[str, list[int]] = {"heel_strike": [], "toe_off": []}

    def on_labels(self, start: int, labels: Sequence[int]) -> None:
        self.phase = int(labels[-1])
        self.phase_sample = start + len(labels) - 1

    def on_event(self, kind: str, sample: int) -> None:
        self.counts[kind] = self.counts.get(kind, 0) + 1
        self.events.setdefault(kind, []).append(int(sample))
        if kind == "toe_off":
            self._last_to = sample
            return
        if kind != "heel_strike":
            return
        self.strides += 1
        if self._last_hs >= 0:
            dur = (sample - self._last_hs) / self.rate_hz
            if 0 < dur <= MAX_STRIDE_S:
                self.stride_s.append(dur)
                if self._last_hs < self._last_to < sample:
                    self.phases.append(((self._last_to - self._last_hs) / self.rate_hz, (sample - self._last_to) / self.rate_hz))
        self._last_hs = sample

    def cadence(self, last: int | None = 6, now_sample: int | None = None) -> float:
        """Steps per minute over the last ``last`` strides (all when None); NaN when not walking."""
        if not self.stride_s:
            return math.nan
        if now_sample is not None and (now_sample - self._last_hs) / self.rate_hz > MAX_STRIDE_S:
            return math.nan
        s = self.stride_s[-last:] if last else self.stride_s
        return 120.0 / float(np.median(s))

    def stance_swing(self, last: int | None = 8) -> tuple[float, float]:
        """Stance and swing as percent of the stride over the last ``last`` strides (NaN if none)."""
        ph = self.phases[-last:] if last else self.phases
        if not ph:
            return math.nan, math.nan
        st = sum(a for a, _ in ph)
        sw = sum(b for _, b in ph)
        return 100.0 * st / (st + sw), 100.0 * sw / (st + sw)

    @property
    def phase_name(self) -> str:
        return self.classes[self.phase] if 0 <= self.phase < len(self.classes) else "-"


class History:
    """Recent model input (one channel) and decided labels per sample, for the live plot."""

    def __init__(self, capacity: int, channel: int) -> None:
        self.capacity = int(capacity)
        self.channel = channel
        self.values = np.full(self.capacity, np.nan, np.float32)
        self.labels = np.full(self.capacity, -1, np.int8)
        self.newest = -1

    def put_value(self, sample: int, x: np.ndarray) -> None:
        self.values[sample % self.capacity] = x[self.channel]
        self.labels[sample % self.capacity] = -1
        self.newest = sample

    def put_labels(self, start: int, labels: Sequence[int]) -> None:
        for j, lab in enumerate(labels):
            g = start + j
            if g > self.newest - self.capacity:
                self.labels[g % self.capacity] = lab

    def window(self, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(sample indices, values, labels) of the last ``n`` samples."""
        end = self.newest + 1
        n = max(0, min(n, self.capacity, end))
        idx = np.arange(end - n, end)
        return idx, self.values[idx % self.capacity], self.labels[idx % self.capacity]


# -- statistics ----------------------------------------------------------------------------


@dataclass
class StreamStats:
    """Live counters of a session (updated by its threads)."""

    #: samples decoded from the source.
    received: int = 0
    #: samples pushed through the backends (received + filled - duplicates).
    pushed: int = 0
    #: samples made up to fill short gaps.
    filled: int = 0
    #: samples dropped because the sample buffer was full.
    dropped: int = 0
    #: samples missing according to counter or timestamp (lost in transport, corrupt, or dropped here).
    lost: int = 0
    #: repeated samples (same counter / timestamp), skipped.
    duplicates: int = 0
    #: samples dropped because their counter or timestamp was off the grid of their neighbours.
    outliers: int = 0
    gaps: int = 0
    #: segments ended early (long gap, time backwards, reconnect without timestamps).
    restarts: int = 0
    disconnects: int = 0
    reconnects: int = 0
    #: records the writer had no room for.
    records_dropped: int = 0
    #: host time (perf_counter s) the session started / first and last sample arrived.
    started: float = 0.0
    first_arrival: float = math.nan
    last_arrival: float = math.nan
    connected: bool = False


@dataclass
class LaneSummary:
    """Per-foot figures at the end of a session."""

    name: str
    strides: int
    heel_strikes: int
    toe_offs: int
    #: steps/min over all strides (NaN if no strides).
    cadence_spm: float
    stance_pct: float
    swing_pct: float


@dataclass
class Summary:
    """What a session did, for the final report (times in s, latencies in ms)."""

    duration_s: float
    samples: int
    pushed: int
    filled: int
    dropped: int
    lost: int
    corrupt: int
    skipped: int
    duplicates: int
    gaps: int
    restarts: int
    disconnects: int
    reconnects: int
    records_dropped: int
    #: steps: heel strikes of all observed feet (2 per stride when one foot is observed).
    steps: int
    cadence_spm: float
    latency_p50_ms: float
    latency_p99_ms: float
    latency_max_ms: float
    latency_n: int
    #: the model's own label lag (output delay + debounce) in ms.
    model_lag_ms: float
    #: samples per second of wall time between the first and last arrival.
    input_rate: float
    lanes: list[LaneSummary] = field(default_factory=list)
    error: str = ""
    #: samples dropped because their counter or timestamp was off the grid of their neighbours.
    outliers: int = 0

    def to_dict(self) -> dict:
        return asdict(self)


# -- the session ---------------------------------------------------------------------------


class Session:
    """Stream one :class:`Source` through one or more :class:`Lane` s.

    Options: ``log`` (an object with ``write(Record)``, ``flush()``,
    ``close()``, e.g. :class:`gaitedge.stream.view.EventLog`); stop after
    ``max_samples`` samples or ``duration_s`` s of wall time; ``queue_samples``
    (sample buffer size) and ``record_queue`` (writer queue size);
    ``max_fill_s`` (longest gap filled by holding the last sample, s);
    ``reconnect`` and ``backoff_s`` (first and longest wait between reconnect
    attempts, s); ``block`` (wait instead of drop when the buffer is full;
    default: only for non-live sources); ``on_labels(lane, start, labels)``
    called in the inference thread with every decided label run (global sample
    indices); ``on_decisions(lane, start, decisions)`` likewise with the whole
    :class:`~gaitedge.stream.backends.Decisions` (labels with their class
    probabilities where the backend gives them); ``on_record(record)`` called
    in the inference thread with every record before it is queued for the log
    (e.g. to publish events at once); ``history_s`` keeps that much recent input
    and labels for a plot.  :meth:`sample_time` gives the source timestamp and
    arrival time of a recent sample.
    """

    def __init__(
        self,
        source: Source,
        lanes: Sequence[Lane],
        *,
        log: Any = None,
        max_samples: int | None = None,
        duration_s: float | None = None,
        queue_samples: int = 8192,
        record_queue: int = 4096,
        max_fill_s: float = 0.1,
        reconnect: bool = True,
        backoff_s: tuple[float, float] = (0.05, 2.0),
        block: bool | None = None,
        on_labels: Callable[[int, int, Sequence[int]], None] | None = None,
        history_s: float = 0.0,
        on_decisions: Callable[[int, int, Decisions], None] | None = None,
        on_record: Callable[[Record], None] | None = None,
    ) -> None:
        if not lanes:
            raise DataError("a stream needs at least one model")
        rates = {ln.backend.rate_hz for ln in lanes}
        if len(rates) > 1:
            raise DataError(f"the models run at different rates ({', '.join(f'{r:g}' for r in sorted(rates))} Hz)")
        widths = {ln.columns.n_fields for ln in lanes}
        if len(widths) > 1:
            raise DataError(f"the column maps disagree on the number of fields per sample ({sorted(widths)})")
        for ln in lanes:
            if ln.columns.channels != tuple(ln.backend.channels):
                raise DataError(f"{ln.name}: column map is for channels {ln.columns.channels}, "
                                f"the model has {ln.backend.channels}")
        self.source = source
        self.lanes = list(lanes)
        self.log = log
        self.rate_hz = float(lanes[0].backend.rate_hz)
        self.max_samples = max_samples
        self.duration_s = duration_s
        self.max_fill = max(0, int(round(max_fill_s * self.rate_hz)))
        self.reconnect = reconnect
        self.backoff_s = backoff_s
        self.block = (not source.live) if block is None else block
        self.on_labels = on_labels
        self.on_decisions = on_decisions
        self.on_record = on_record
        #: source timestamp (s, NaN for none or a filled sample) and arrival (perf_counter s) of recent samples
        self._times = np.full((TIME_RING, 2), math.nan)
        layout = lanes[0].columns
        self._counter_mod = layout.counter_modulo
        self.stats = StreamStats()
        self.latency = LatencyRecorder()
        self.trackers = [GaitTracker(ln.backend.classes, self.rate_hz) for ln in lanes]
        self.history: list[History] | None = None
        if history_s > 0:
            cap = int(history_s * self.rate_hz) + 1
            self.history = []
            for ln in lanes:
                ch = list(ln.backend.channels)
                pick = next((c for c in ("gyr_y", "gyr_z", "gyr_x") if c in ch), ch[0])
                self.history.append(History(cap, ch.index(pick)))
        self.recent: deque[Record] = deque(maxlen=1000)
        self._n_records = 0
        self._rec_lock = threading.Lock()
        self.error: BaseException | None = None
        self._buf = SampleBuffer(queue_samples)
        self._out: queue.Queue[Record | None] = queue.Queue(maxsize=max(1, record_queue))
        self._stop = threading.Event()
        self._done = threading.Event()
        self._threads: list[threading.Thread] = []
        # inference-thread state
        self._next = 0
        self._seg0 = 0
        self._seg_t0 = math.nan
        self._prev: Sample | None = None
        #: a sample after an apparent gap, waiting for the next one to confirm its counter / timestamp
        self._held: Sample | None = None
        self._after_reconnect = False
        self._dts: list[float] = []
        self._started = False
        self._ended_at = math.nan

    # -- control -----------------------------------------------------------------------

    @property
    def label_lag(self) -> int:
        """The largest label lag of the lanes, samples."""
        return max(ln.backend.label_lag for ln in self.lanes)

    def start(self) -> None:
        """Open the source (SourceError if impossible) and start the threads."""
        if self._started:
            return
        self.source.open()
        self._started = True
        self.stats.started = time.perf_counter()
        self.stats.connected = True
        self._threads = [
            threading.Thread(target=self._read_loop, name="gaitedge-reader", daemon=True),
            threading.Thread(target=self._infer_loop, name="gaitedge-inference", daemon=True),
            threading.Thread(target=self._write_loop, name="gaitedge-writer", daemon=True),
        ]
        for t in self._threads:
            t.start()

    def stop(self) -> None:
        """Ask the session to end: stop reading, classify what is queued, flush, close the log.

        Safe to call from a signal handler or any thread.
        """
        self._stop.set()

    def wait(self, timeout: float | None = None) -> bool:
        """Wait up to ``timeout`` s for the session to end; True when it has."""
        return self._done.wait(timeout)

    @property
    def done(self) -> bool:
        return self._done.is_set()

    def run(self, timeout: float | None = None) -> Summary:
        """Start, wait until the session ends (or ``timeout`` s, then stop), return the summary."""
        self.start()
        if not self.wait(timeout):
            self.stop()
            self.wait()
        return self.summary()

    def records_since(self, position: int) -> tuple[list[Record], int]:
        """Records written after ``position`` (a count returned by an earlier call; 0 at first),
        oldest first, and the new position.  Only the last 1000 are kept."""
        with self._rec_lock:
            total = self._n_records
            recent = list(self.recent)
        new = min(total - position, len(recent))
        return (recent[len(recent) - new:] if new > 0 else []), total

    # -- reader ------------------------------------------------------------------------

    def _deadline(self) -> float:
        return self.stats.started + self.duration_s if self.duration_s else math.inf

    def _read_loop(self) -> None:
        src, st, buf = self.source, self.stats, self._buf
        remaining = self.max_samples
        deadline = self._deadline()
        try:
            while not self._stop.is_set() and time.perf_counter() < deadline:
                try:
                    samples = src.read(0.1)
                except SourceLost as exc:
                    st.connected = False
                    st.disconnects += 1
                    buf.put_marker(_Marker("disconnect", str(exc)))
                    if not self.reconnect or not self._reconnect():
                        break
                    continue
                except EndOfStream:
                    break
                if not samples:
                    continue
                if remaining is not None:
                    samples = samples[:remaining]
                    remaining -= len(samples)
                st.received += len(samples)
                if st.received == len(samples):
                    st.first_arrival = samples[0].arrival
                st.last_arrival = samples[-1].arrival
                st.dropped += buf.put(samples, self.block, self._stop)
                if remaining == 0:
                    break
        except GaitedgeError as exc:
            self.error = exc
        except Exception as exc:  # a bug: end the session and report it
            self.error = exc
        finally:
            buf.put_marker(_END)
            try:
                src.close()
            except Exception:
                pass

    def _reconnect(self) -> bool:
        src = self.source
        src.close()
        t_lost = time.perf_counter()
        delay, longest = self.backoff_s
        deadline = self._deadline()
        while not self._stop.is_set():
            if self._stop.wait(min(delay, max(0.0, deadline - time.perf_counter()))):
                return False
            if time.perf_counter() >= deadline:
                return False
            try:
                src.open()
            except SourceError:
                delay = min(delay * 2, longest)
                continue
            self.stats.connected = True
            self.stats.reconnects += 1
            dt = time.perf_counter() - t_lost
            self._buf.put_marker(_Marker("reconnect", f"after {dt:.2f} s", dt))
            return True
        return False

    # -- inference ---------------------------------------------------------------------

    def _time_of(self, sample: int) -> float:
        if math.isnan(self._seg_t0):
            return sample / self.rate_hz
        return self._seg_t0 + (sample - self._seg0) / self.rate_hz

    def sample_time(self, sample: int) -> tuple[float, float]:
        """(source timestamp in s, arrival in ``time.perf_counter()`` s) of stream sample ``sample``.

        The timestamp is NaN when the source gives none or the sample was made
        up to fill a gap or skipped in a long one (then the arrival is that of
        the sample after the gap);
        both are NaN for a sample no longer remembered (:data:`TIME_RING` back)
        or never received.  Meant for the inference thread's callbacks.
        """
        if not 0 <= sample < self._next or sample < self._next - TIME_RING:
            return math.nan, math.nan
        t, a = self._times[sample % TIME_RING]
        return float(t), float(a)

    def _emit(self, rec: Record) -> None:
        if self.on_record is not None:
            self.on_record(rec)
        try:
            self._out.put_nowait(rec)
        except queue.Full:
            self.stats.records_dropped += 1

    def _decided(self, k: int, d: Decisions) -> None:
        if d.labels:
            start = self._seg0 + d.start
            self.trackers[k].on_labels(start, d.labels)
            if self.history is not None:
                self.history[k].put_labels(start, d.labels)
            if self.on_labels is not None:
                self.on_labels(k, start, d.labels)
            if self.on_decisions is not None:
                self.on_decisions(k, start, d)
        if d.events:
            name = self.lanes[k].name
            tr = self.trackers[k]
            for ev in d.events:
                g = self._seg0 + ev.sample
                tr.on_event(ev.kind, g)
                self._emit(Record(ev.kind, name, g, self._time_of(g), time.time()))

    def _push(self, values: np.ndarray, t: float = math.nan, arrival: float = math.nan) -> None:
        self._times[self._next % TIME_RING] = (t, arrival)
        for k, ln in enumerate(self.lanes):
            x = ln.columns(values)
            if self.history is not None:
                self.history[k].put_value(self._next, x)
            d = ln.backend.push(x)
            if d.labels or d.events:
                self._decided(k, d)
        self._next += 1
        self.stats.pushed += 1

    def _end_segment(self) -> None:
        for k, ln in enumerate(self.lanes):
            d = ln.backend.flush()
            if d.labels or d.events:
                self._decided(k, d)
        self._seg0 = self._next
        self._seg_t0 = math.nan
        self._prev = None

    def notice(self, text: str) -> None:
        """Record a plain-text notice in the event log at the current sample (e.g. a mounting lock)."""
        self._incident("notice", text)

    def _incident(self, kind: str, detail: str, sample: int | None = None, t_s: float | None = None) -> None:
        g = self._next if sample is None else sample
        self._emit(Record(kind, "", g, self._time_of(g) if t_s is None else t_s, time.time(), detail))

    def _gap(self, s: Sample) -> tuple[int, str]:
        """(missing samples, reason for a restart or '') between the previous sample and ``s``."""
        p = self._prev
        if p is None:
            return 0, ""
        if s.counter >= 0 and p.counter >= 0:
            d = s.counter - p.counter
            if self._counter_mod:
                d %= self._counter_mod
            if d == 0:
                return -1, ""
            if d < 0:
                return 0, f"counter went back from {p.counter} to {s.counter}"
            return d - 1, ""
        if not (math.isnan(s.t) or math.isnan(p.t)):
            dt = s.t - p.t
            if dt == 0:
                return -1, ""
            if dt < -0.5 / self.rate_hz:
                return 0, f"time went back from {p.t:.3f} s to {s.t:.3f} s"
            if len(self._dts) < 200 and dt > 0:
                self._dts.append(dt)
                if len(self._dts) == 200:
                    rate = 1.0 / float(np.median(self._dts))
                    if abs(rate / self.rate_hz - 1) > 0.05:
                        self._incident("notice", f"input runs at {rate:.1f} Hz but the model expects "
                                                 f"{self.rate_hz:g} Hz; results will be off")
            return max(0, int(round(dt * self.rate_hz)) - 1), ""
        if self._after_reconnect:
            return 0, "reconnected (no timestamps to bridge the gap)"
        return 0, ""

    def _steps(self, a: Sample, b: Sample) -> int | None:
        """Grid steps from sample ``a`` to ``b`` by their counters, else timestamps; None when neither tells."""
        if a.counter >= 0 and b.counter >= 0:
            d = b.counter - a.counter
            return d % self._counter_mod if self._counter_mod else d
        if not (math.isnan(a.t) or math.isnan(b.t)):
            return int(round((b.t - a.t) * self.rate_hz))
        return None

    def _follows(self, a: Sample | None, b: Sample) -> bool:
        """Whether ``b`` comes a fillable gap or less after ``a`` on the grid."""
        if a is None:
            return False
        k = self._steps(a, b)
        return k is not None and 1 <= k <= self.max_fill + 1

    def _between(self, p: Sample | None, h: Sample, n: Sample) -> bool:
        """Whether ``h`` lies on the grid after ``p`` and before ``n``."""
        if p is None:
            return False
        a, b, c = self._steps(p, h), self._steps(h, n), self._steps(p, n)
        return a is not None and b is not None and c is not None and a >= 1 and b >= 1 and a + b <= c

    def _take(self, s: Sample) -> None:
        """Process ``s``, holding it first when its counter / timestamp says there is a gap."""
        held = self._held
        if held is not None:
            self._held = None
            p = self._prev
            if self._follows(held, s) and (not self._follows(p, s) or self._between(p, held, s)):
                self._process(held)
            else:
                self.stats.outliers += 1  # damaged in transit: its slot becomes a filled gap
        p = self._prev
        k = self._steps(p, s) if p is not None else None
        if k is not None and (k >= 2 or k < 0):
            self._held = s
            return
        self._process(s)

    def _release(self) -> None:
        """A marker or the end came before the sample after a held one: process the held sample if
        it is a fillable gap after the previous one, else drop it (nothing confirms a longer jump)."""
        if self._held is not None:
            held, self._held = self._held, None
            if self._follows(self._prev, held):
                self._process(held)
            else:
                self.stats.outliers += 1

    def _on_grid(self, s: Sample, p: Sample, steps: int) -> Sample:
        """``s`` as the reference of the next gap check, ``steps`` sample periods after ``p``: a timestamp
        more than a quarter period off that is taken as a quarter period off, so that one timestamp a
        little early or late cannot move the samples after it to other slots (a drifting clock still
        moves the reference along)."""
        if (s.counter >= 0 and p.counter >= 0) or math.isnan(s.t) or math.isnan(p.t):
            return s
        off = (s.t - p.t) * self.rate_hz - steps
        if abs(off) <= 0.25:
            return s
        return Sample(s.values, p.t + (steps + math.copysign(0.25, off)) / self.rate_hz, s.counter, s.arrival)

    def _process(self, s: Sample) -> None:
        p = self._prev
        missing, restart = self._gap(s)
        self._after_reconnect = False
        st = self.stats
        if missing < 0:
            st.duplicates += 1
            return
        if restart:
            st.restarts += 1
            g, t = self._next, self._time_of(self._next)
            self._end_segment()
            self._incident("restart", restart, g, t)
        elif missing > 0:
            st.gaps += 1
            st.lost += missing
            ms = 1000.0 * missing / self.rate_hz
            if missing <= self.max_fill and self._prev is not None:
                self._incident("gap", f"{missing} samples ({ms:.0f} ms) missing; filled with the last sample")
                prev = self._prev.values
                for _ in range(missing):
                    self._push(prev, math.nan, s.arrival)
                st.filled += missing
            else:
                st.restarts += 1
                g, t = self._next, self._time_of(self._next)
                self._end_segment()
                self._incident("gap", f"{missing} samples ({ms:.0f} ms) missing; model restarted", g, t)
                skipped = np.arange(self._next, self._next + min(missing, TIME_RING)) % TIME_RING
                self._times[skipped] = (math.nan, s.arrival)
                self._next += missing
                self._seg0 = self._next
        if self._prev is None and math.isnan(self._seg_t0) and not math.isnan(s.t):
            self._seg_t0 = s.t
        self._push(s.values, s.t, s.arrival)
        self._prev = s if self._prev is None or p is None else self._on_grid(s, p, missing + 1)
        self.latency.add(time.perf_counter() - s.arrival)

    def _infer_loop(self) -> None:
        buf = self._buf
        try:
            while True:
                items = buf.get(0.2)
                if not items:  # nothing for 0.2 s: a held sample is not waited on any longer
                    self._release()
                for it in items:
                    if type(it) is Sample:
                        self._take(it)
                        continue
                    self._release()
                    if it is _END:
                        self._end_segment()
                        return
                    elif it.name == "disconnect":
                        self._incident("disconnect", it.detail)
                    elif it.name == "reconnect":
                        self._after_reconnect = True
                        self._incident("reconnect", it.detail)
        except BaseException as exc:  # a bug or a backend failure: end the session, report it
            self.error = exc
            self._stop.set()
        finally:
            self._ended_at = time.perf_counter()
            self._stop.set()
            while True:
                try:
                    self._out.put(None, timeout=1.0)
                    break
                except queue.Full:
                    continue

    # -- writer ------------------------------------------------------------------------

    def _write_loop(self) -> None:
        try:
            while True:
                rec = self._out.get()
                batch = [rec]
                while True:
                    try:
                        batch.append(self._out.get_nowait())
                    except queue.Empty:
                        break
                end = False
                for r in batch:
                    if r is None:
                        end = True
                        continue
                    with self._rec_lock:
                        self.recent.append(r)
                        self._n_records += 1
                    if self.log is not None:
                        self.log.write(r)
                if self.log is not None:
                    self.log.flush()
                if end:
                    break
        except BaseException as exc:
            if self.error is None:
                self.error = exc
            self._stop.set()
        finally:
            if self.log is not None:
                try:
                    self.log.close()
                except Exception as exc:
                    if self.error is None:
                        self.error = exc
            self._done.set()

    # -- reporting ---------------------------------------------------------------------

    def summary(self) -> Summary:
        """Figures so far (final once the session is done)."""
        st = self.stats
        src = self.source.stats
        p50, p99, pmax = self.latency.percentiles_ms((50, 99, 100))
        lanes = []
        for ln, tr in zip(self.lanes, self.trackers):
            stance, swing = tr.stance_swing(None)
            lanes.append(LaneSummary(
                name=ln.name,
                strides=tr.strides,
                heel_strikes=tr.counts.get("heel_strike", 0),
                toe_offs=tr.counts.get("toe_off", 0),
                cadence_spm=tr.cadence(None),
                stance_pct=stance,
                swing_pct=swing,
            ))
        hs = sum(lane.heel_strikes for lane in lanes)
        steps = 2 * hs if len(lanes) == 1 else hs
        cads = [lane.cadence_spm for lane in lanes if not math.isnan(lane.cadence_spm)]
        span = st.last_arrival - st.first_arrival
        end = self._ended_at if not math.isnan(self._ended_at) else time.perf_counter()
        return Summary(
            duration_s=max(0.0, end - st.started) if self._started else 0.0,
            samples=st.received,
            pushed=st.pushed,
            filled=st.filled,
            dropped=st.dropped,
            lost=st.lost,
            corrupt=src.corrupt,
            skipped=src.skipped,
            duplicates=st.duplicates,
            outliers=st.outliers,
            gaps=st.gaps,
            restarts=st.restarts,
            disconnects=st.disconnects,
            reconnects=st.reconnects,
            records_dropped=st.records_dropped,
            steps=steps,
            cadence_spm=float(np.mean(cads)) if cads else math.nan,
            latency_p50_ms=p50,
            latency_p99_ms=p99,
            latency_max_ms=pmax,
            latency_n=min(self.latency.count, len(self.latency._buf)),
            model_lag_ms=1000.0 * self.label_lag / self.rate_hz,
            input_rate=(st.received - 1) / span if st.received > 1 and span > 0 else math.nan,
            lanes=lanes,
            error=str(self.error) if self.error is not None else "",
        )
