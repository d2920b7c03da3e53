"""Lab Streaming Layer (LSL): IMU streams in, gait phase and events out, recordings served.

* :class:`LslSource` reads one or more LSL IMU streams (``gaitedge stream
  --lsl QUERY``).  Each query is resolved with a timeout; channel labels and
  units come from the stream's description (the XDF channel convention
  ``desc/channels/channel/{label,unit,type}``) when it has them.  Sample
  timestamps are LSL times corrected into this host's LSL clock
  (``time_correction`` applied by liblsl), and the session finds gaps by them.
  When an outlet goes away the source reports it lost; the session's reconnect
  resolves the query again, so the outlet coming back is a reconnect.  Several
  streams (one per foot) are aligned by timestamp into one sample.
* :class:`LslOutlets` publishes what a session decides (``--lsl-out NAME``):
  per lane a regular-rate phase stream (the decided class index, then the class
  probabilities when the backend gives them) and one irregular string marker
  stream of events, each stamped with the LSL time of the sample it belongs to
  (not the time it was decided).
* :class:`LslImuSim` serves a recording as an LSL IMU stream
  (``gaitedge imu-sim --listen lsl:NAME``), with speed, loop and unplug faults.

pylsl is imported only inside these functions, so gaitedge works without it;
:func:`import_pylsl` names the package when an LSL option is used without it.
Unless ``LSLAPICFG`` names a liblsl configuration file, liblsl's own log is
limited to fatal errors (gaitedge reports losses and reconnects itself).
"""

from __future__ import annotations

import json
import math
import os
import re
import threading
import time
import xml.etree.ElementTree as ET
from collections import deque
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Sequence

import numpy as np

from gaitedge.errors import DataError
from gaitedge.stream.imusim import ThreadedServer
from gaitedge.stream.sources import (
    ALIASES,
    GRAVITY,
    ColumnMap,
    Sample,
    Source,
    SourceError,
    SourceLost,
)

if TYPE_CHECKING:
    from gaitedge.data.recording import Recording
    from gaitedge.stream.backends import Backend, Decisions
    from gaitedge.stream.session import Lane, Record, Session

#: liblsl configuration used when ``LSLAPICFG`` is not set: log fatal errors only.
QUIET_CONFIG = "[log]\nlevel = -3\n"
#: a stream with this suffix carries a lane's phase, this one the events.
PHASE_SUFFIX = "-phase"
EVENTS_SUFFIX = "-events"
#: gait events published as markers (incidents are published too, with their detail).
GAIT_EVENTS = ("heel_strike", "toe_off")
#: units a stream may declare, as factor into the model unit: {stream unit: (model unit, factor)}.
UNIT_FACTORS: dict[str, tuple[str, float]] = {
    "m/s^2": ("m/s^2", 1.0), "m/s²": ("m/s^2", 1.0), "m/s2": ("m/s^2", 1.0), "ms-2": ("m/s^2", 1.0),
    "g": ("m/s^2", GRAVITY), "mg": ("m/s^2", GRAVITY / 1000.0),
    "rad/s": ("rad/s", 1.0), "deg/s": ("rad/s", math.pi / 180.0), "dps": ("rad/s", math.pi / 180.0),
    "°/s": ("rad/s", math.pi / 180.0), "mdeg/s": ("rad/s", math.pi / 180000.0),
}

_configured = False
_config_lock = threading.Lock()


def import_pylsl() -> Any:
    """The ``pylsl`` module (DataError naming the package when it is not installed)."""
    global _configured
    try:
        import pylsl
    except ImportError as exc:
        raise DataError(
            f"the Lab Streaming Layer options need the pylsl package (pip install pylsl): {exc}"
        ) from None
    with _config_lock:
        if not _configured:
            _configured = True
            if not os.environ.get("LSLAPICFG"):
                try:
                    pylsl.set_config_content(QUIET_CONFIG)
                except Exception:  # older liblsl without the call, or liblsl already started
                    pass
    return pylsl


def lsl_predicate(query: str) -> str:
    """An LSL XPath predicate from a query.

    ``key=value`` items separated by commas (``name=FootIMU``,
    ``type=IMU,hostname=lab1``, ``desc/manufacturer=X``) become
    ``name='FootIMU' and ...``; anything else (containing a quote, a bracket or
    a function call) is taken as a full predicate, e.g.
    ``starts-with(name,'Foot')``.
    """
    q = query.strip()
    if not q:
        raise DataError("--lsl: empty query; give e.g. name=FootIMU or type=IMU")
    simple = re.fullmatch(r"[A-Za-z_][\w/.-]*=[^,'\"\[\]()]*(,\s*[A-Za-z_][\w/.-]*=[^,'\"\[\]()]*)*", q)
    if not simple:
        return q
    parts = []
    for item in q.split(","):
        key, _, value = item.partition("=")
        parts.append(f"{key.strip()}='{value.strip()}'")
    return " and ".join(parts)


@dataclass(frozen=True)
class LslChannel:
    """One channel of an LSL stream as its description declares it ("" when not declared)."""

    label: str
    unit: str
    type: str


def describe_channels(xml: str, count: int) -> list[LslChannel]:
    """The ``desc/channels/channel`` entries of a stream's XML (empty labels when absent or incomplete)."""
    try:
        root = ET.fromstring(xml)
    except ET.ParseError:
        return [LslChannel("", "", "")] * count
    found = root.findall("./desc/channels/channel")
    if len(found) != count:
        return [LslChannel("", "", "")] * count
    return [
        LslChannel((ch.findtext("label") or "").strip(), (ch.findtext("unit") or "").strip(),
                   (ch.findtext("type") or "").strip())
        for ch in found
    ]


@dataclass
class LslStream:
    """What the resolution of one query found."""

    query: str
    name: str
    type: str
    source_id: str
    hostname: str
    channel_count: int
    #: nominal rate in Hz (0: irregular).
    rate_hz: float
    channels: list[LslChannel]
    info: Any = None

    @property
    def labels(self) -> list[str]:
        return [c.label for c in self.channels]

    @property
    def units(self) -> list[str]:
        return [c.unit for c in self.channels]

    @property
    def has_labels(self) -> bool:
        return all(self.labels) and len(set(self.labels)) == len(self.labels)


def resolve(query: str, timeout: float) -> LslStream:
    """Find the stream a query names within ``timeout`` s (SourceError when nothing answers)."""
    pylsl = import_pylsl()
    pred = lsl_predicate(query)
    try:
        found = pylsl.resolve_bypred(pred, 1, float(timeout))
    except Exception as exc:  # liblsl rejects a malformed predicate
        raise SourceError(f"--lsl {query!r}: not a valid LSL query ({pred}): {exc}") from None
    if not found:
        raise SourceError(
            f"no LSL stream matching {query!r} ({pred}) answered within {timeout:g} s; is its outlet running "
            "and reachable (same network, multicast allowed)?"
        )
    info = sorted(found, key=lambda i: (i.created_at(), i.uid()))[0]
    n = info.channel_count()
    if info.channel_format() == pylsl.cf_string:
        raise SourceError(f"LSL stream {info.name()!r} carries strings, not IMU samples")
    # a resolved info carries the header only: the description (channels) comes with an inlet's info
    return LslStream(query, info.name(), info.type(), info.source_id(), info.hostname(), n,
                     float(info.nominal_srate()), [LslChannel("", "", "")] * n, info)


class LslSource(Source):
    """Samples from one or more LSL streams (one per query), aligned by timestamp.

    A :class:`Sample` holds the channels of every stream in query order, ``t``
    the LSL time (s, this host's clock) of the first stream's sample, counter
    -1.  ``rate_hz`` (the model's rate, Hz) sets the alignment tolerance (half
    a sample period) for several streams; samples of one stream without a
    partner in the others are skipped and counted in ``stats.skipped``, rows
    with non-finite values in ``stats.corrupt``.  The first :meth:`open`
    resolves with ``timeout`` s, later ones (reconnects) with
    ``reopen_timeout`` s and must find the same channel counts.
    """

    live = True

    def __init__(self, queries: Sequence[str], rate_hz: float, timeout: float = 5.0,
                 reopen_timeout: float = 0.5) -> None:
        super().__init__()
        if not queries:
            raise DataError("give at least one --lsl QUERY")
        if not timeout > 0:
            raise DataError("--lsl-timeout must be > 0 s")
        self.queries = list(queries)
        self.rate_hz = float(rate_hz)
        self.timeout = float(timeout)
        self.reopen_timeout = float(reopen_timeout)
        self.streams: list[LslStream] = []
        self.description = " + ".join(f"lsl:{q}" for q in self.queries)
        self._inlets: list[Any] = []
        self._queues: list[deque[tuple[float, np.ndarray, float]]] = [deque() for _ in self.queries]
        self._max_queue = max(64, int(10 * self.rate_hz))
        self._lost_error: type[BaseException] = EOFError

    @property
    def field_count(self) -> int:
        """Channels per sample (all streams)."""
        return sum(s.channel_count for s in self.streams)

    def resolve(self) -> list[LslStream]:
        """Resolve and open every query (first time, ``timeout`` s each); returns the streams with
        their channel descriptions."""
        if not self._inlets:
            self.open()
        return self.streams

    def open(self) -> None:
        if self._inlets:
            return
        pylsl = import_pylsl()
        from pylsl.util import LostError

        self._lost_error = LostError
        if not self.streams:
            streams = [resolve(q, self.timeout) for q in self.queries]
        else:
            streams = [resolve(q, self.reopen_timeout) for q in self.queries]
            for old, new in zip(self.streams, streams):
                if new.channel_count != old.channel_count:
                    raise SourceError(f"LSL stream {new.name!r} came back with {new.channel_count} channels "
                                      f"instead of {old.channel_count}")
        inlets = []
        try:
            for s in streams:
                inlet = pylsl.StreamInlet(s.info, max_buflen=30, recover=False,
                                          processing_flags=pylsl.proc_clocksync)
                inlet.open_stream(max(self.reopen_timeout, 1.0))
                inlets.append(inlet)
                try:  # the first clock offset takes a few probes; get it now, not in the first read
                    inlet.time_correction(max(self.reopen_timeout, 2.0))
                except Exception:
                    pass
        except Exception as exc:
            for inlet in inlets:
                inlet.close_stream()
            raise SourceError(f"cannot open LSL stream {s.name!r}: {exc}") from None
        if not self.streams:
            for s, inlet in zip(streams, inlets):
                try:
                    xml = inlet.info(max(1.0, self.timeout)).as_xml()
                except Exception:
                    xml = ""
                s.channels = describe_channels(xml, s.channel_count)
            self.streams = streams
            self.description = " + ".join(f"lsl:{s.name}" for s in streams)
        self._inlets = inlets
        for q in self._queues:
            q.clear()

    def _rows(self, data: Any, stamps: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
        vals = np.asarray(data, dtype=np.float64).reshape(len(stamps), -1)
        ok = np.isfinite(vals).all(axis=1) & (np.abs(vals) <= np.finfo(np.float32).max).all(axis=1)
        bad = int((~ok).sum())
        if bad:
            self.stats.corrupt += bad
            if len(self.stats.examples) < 5:
                self.stats.examples.append("sample with a non-finite value")
        return vals[ok].astype(np.float32), np.asarray(stamps, np.float64)[ok]

    def read(self, timeout: float) -> list[Sample]:
        if not self._inlets:
            raise SourceLost("LSL inlet is closed")
        arrival = 0.0
        try:
            if len(self._inlets) == 1:
                data, stamps = self._inlets[0].pull_chunk(timeout=timeout, max_samples=1024, min_samples=1)
                if not stamps:
                    return []
                arrival = time.perf_counter()
                vals, ts = self._rows(data, stamps)
                self.stats.samples += len(ts)
                return [Sample(vals[i], float(ts[i]), -1, arrival) for i in range(len(ts))]
            for k, inlet in enumerate(self._inlets):
                data, stamps = inlet.pull_chunk(timeout=timeout if k == 0 else 0.0, max_samples=1024,
                                                min_samples=1 if k == 0 else None)
                arrival = time.perf_counter()
                if stamps:
                    vals, ts = self._rows(data, stamps)
                    q = self._queues[k]
                    q.extend((float(t), v, arrival) for t, v in zip(ts, vals))
                    while len(q) > self._max_queue:
                        q.popleft()
                        self.stats.skipped += 1
        except self._lost_error:
            raise SourceLost("LSL outlet went away") from None
        out = self._align()
        self.stats.samples += len(out)
        return out

    def _align(self) -> list[Sample]:
        qs = self._queues
        half = 0.5 / self.rate_hz
        out: list[Sample] = []
        while all(qs):
            newest = max(q[0][0] for q in qs)
            dropped = False
            for q in qs:
                while q and q[0][0] < newest - half:
                    q.popleft()
                    self.stats.skipped += 1
                    dropped = True
            if dropped:
                continue
            heads = [q.popleft() for q in qs]
            out.append(Sample(np.concatenate([h[1] for h in heads]), heads[0][0], -1, max(h[2] for h in heads)))
        return out

    def close(self) -> None:
        inlets, self._inlets = self._inlets, []
        for inlet in inlets:
            try:
                inlet.close_stream()
            except Exception:
                pass


def unit_factor(stream_unit: str, model_unit: str) -> float | None:
    """Factor from a stream's declared unit into the model's unit (1 for none declared; None: unknown)."""
    su = stream_unit.strip().replace(" ", "")
    mu = model_unit.strip().replace(" ", "").replace("²", "^2")
    if not su or su.lower() == mu.lower():
        return 1.0
    hit = UNIT_FACTORS.get(su) or UNIT_FACTORS.get(su.lower())
    if hit is None or hit[0] != mu:
        return None
    return hit[1]


def lsl_lanes(
    source: LslSource,
    backends: Sequence[tuple[str, "Backend"]],
    columns: Sequence[str],
    scale: str | None,
) -> list["Lane"]:
    """One lane per model for an (already resolved) :class:`LslSource`.

    With ``--columns`` (once, or once per model) the fields are named as for a
    port, without a time field (the LSL timestamps are the time).  Without,
    the streams' channel labels name them: with one stream per model, a
    model's own channels come from its stream and its ``other_*`` channels from
    the other one.  Units: ``--scale`` when given, else the declared units
    converted into the model's (g, mg, deg/s, ... are known).
    """
    from gaitedge.stream.session import Lane

    streams = source.resolve()
    n_fields = source.field_count
    desc = ", ".join(f"{s.name!r} ({s.channel_count} channels)" for s in streams)
    for s in streams:
        for _, be in backends:
            if s.rate_hz > 0 and abs(s.rate_hz / be.rate_hz - 1) > 0.01:
                raise DataError(f"LSL stream {s.name!r} runs at {s.rate_hz:g} Hz but the model expects "
                                f"{be.rate_hz:g} Hz")
    if columns and len(columns) not in (1, len(backends)):
        raise DataError(f"give --columns once, or once per model ({len(backends)})")
    if len(backends) > 1 and len(streams) != len(backends) and len(columns) != len(backends):
        raise DataError("with two models give one --lsl stream per foot (in --model order), or --columns once per "
                        "model saying which channels feed each foot's model")
    lanes = []
    for k, (name, be) in enumerate(backends):
        ch, units = list(be.channels), list(be.units)
        if columns:
            cmap = ColumnMap.parse(columns[k if len(columns) > 1 else 0], ch, units, scale, allow_time=False)
            if cmap.n_fields != n_fields:
                raise DataError(f"--columns names {cmap.n_fields} fields but the LSL stream(s) {desc} carry "
                                f"{n_fields} channels")
            lanes.append(Lane(name, be, cmap))
            continue
        unlabelled = [s.name for s in streams if not s.has_labels]
        if unlabelled:
            raise DataError(
                f"LSL stream {unlabelled[0]!r} describes no channel labels (desc/channels/channel/label); "
                f"give --columns naming its {n_fields} channels"
            )
        names: list[str] = []
        stream_units: list[str] = []
        for j, s in enumerate(streams):
            for label, unit in zip(s.labels, s.units):
                base = ALIASES.get(label, label)
                own = len(streams) == 1 or len(streams) != len(backends) or j == k
                names.append(base if own else f"other_{base}")
                stream_units.append(unit)
        if len(set(names)) != len(names):
            raise DataError(f"the LSL streams {desc} repeat channel labels; give --columns once per model")
        missing = [c for c in ch if c not in names]
        if missing:
            have = ", ".join(n for n in names)
            raise DataError(f"model {name!r} needs channel(s) {', '.join(missing)} that the LSL stream(s) {desc} "
                            f"do not carry (they have {have}); give --columns")
        cmap = ColumnMap.parse([n if n in ch else "_" for n in names], ch, units, scale, allow_time=False)
        if not scale:
            factors = []
            for c, mu in zip(ch, units):
                su = stream_units[names.index(c)]
                f = unit_factor(su, mu)
                if f is None:
                    raise DataError(f"LSL channel {c} is in {su!r} but model {name!r} expects {mu!r}; "
                                    "give --scale with the factor")
                factors.append(f)
            sc = np.asarray(factors, np.float64)
            cmap.scale = None if np.all(sc == 1.0) else sc
        lanes.append(Lane(name, be, cmap))
    return lanes


def _model_of(be: "Backend") -> "Backend":
    while hasattr(be, "inner"):
        be = be.inner
    return be


def _software(desc: Any) -> None:
    from gaitedge import __version__

    sw = desc.append_child("software")
    sw.append_child_value("name", "gaitedge")
    sw.append_child_value("version", __version__)


def _model_desc(desc: Any, be: "Backend", lane: str) -> None:
    import hashlib
    from pathlib import Path

    inner = _model_of(be)
    m = desc.append_child("model")
    m.append_child_value("lane", lane)
    m.append_child_value("backend", inner.kind)
    path = getattr(inner, "path", "") or ""
    m.append_child_value("path", str(path))
    m.append_child_value("name", Path(path).parent.name if path else inner.kind)
    if path and Path(path).is_file():
        m.append_child_value("sha256", hashlib.sha256(Path(path).read_bytes()).hexdigest())
    m.append_child_value("rate_hz", f"{be.rate_hz:g}")
    m.append_child_value("label_lag_samples", str(be.label_lag))
    classes = m.append_child("classes")
    for c in be.classes:
        classes.append_child_value("class", c)


def _has_probabilities(be: "Backend") -> bool:
    from gaitedge.stream.backends import OnnxBackend

    return isinstance(_model_of(be), OnnxBackend)


class LslOutlets:
    """Publish a session's gait phase and events on LSL (``--lsl-out NAME``).

    Per lane a phase stream ``NAME-phase`` (``NAME-phase-LANE`` with several
    lanes), type ``GaitPhase``, float32 at the model's rate: channel ``phase``
    (the decided class index) then ``p_<class>`` (its probabilities) when the
    backend gives them.  One marker stream ``NAME-events``, type ``Markers``,
    irregular, one string channel: a JSON object per record, ``{"event":
    "heel_strike", "foot": "left", "sample": 1234}`` for gait events (also
    ``toe_off``), with ``detail`` for stream incidents (``gap``, ``restart``,
    ``disconnect``, ``reconnect``, ``notice``).  Every sample and marker is
    stamped with the LSL time of the stream sample it belongs to: the source's
    LSL timestamp when it is an LSL stream (``lsl_times``), else the sample's
    arrival on this host's LSL clock.  ``latencies`` collects, per gait event,
    the LSL time at which its marker was pushed minus its timestamp (s).
    """

    def __init__(self, name: str, lanes: Sequence["Lane"] | Sequence[tuple[str, "Backend"]],
                 lsl_times: bool = False) -> None:
        pylsl = import_pylsl()
        if not name or not name.strip():
            raise DataError("--lsl-out needs a stream name")
        self.pylsl = pylsl
        self.name = name.strip()
        self.lsl_times = lsl_times
        pairs = [(ln.name, ln.backend) if hasattr(ln, "backend") else ln for ln in lanes]
        self.session: "Session | None" = None
        self._offset = pylsl.local_clock() - time.perf_counter()
        self.latencies: list[float] = []
        self.phase: list[Any] = []
        self._width: list[int] = []
        self._names: list[str] = []
        host = os.uname().nodename if hasattr(os, "uname") else "host"
        for lane, be in pairs:
            probs = _has_probabilities(be)
            width = 1 + (len(be.classes) if probs else 0)
            sname = f"{self.name}{PHASE_SUFFIX}" + (f"-{lane}" if len(pairs) > 1 else "")
            info = pylsl.StreamInfo(sname, "GaitPhase", width, float(be.rate_hz), pylsl.cf_float32,
                                    f"gaitedge-{host}-{sname}")
            d = info.desc()
            chans = d.append_child("channels")
            c = chans.append_child("channel")
            c.append_child_value("label", "phase")
            c.append_child_value("unit", "class index")
            c.append_child_value("type", "GaitPhase")
            if probs:
                for cls in be.classes:
                    c = chans.append_child("channel")
                    c.append_child_value("label", f"p_{cls}")
                    c.append_child_value("unit", "probability")
                    c.append_child_value("type", "Probability")
            _model_desc(d, be, lane)
            _software(d)
            self.phase.append(pylsl.StreamOutlet(info))
            self._names.append(sname)
            self._width.append(width)
        ename = f"{self.name}{EVENTS_SUFFIX}"
        info = pylsl.StreamInfo(ename, "Markers", 1, pylsl.IRREGULAR_RATE, pylsl.cf_string,
                                f"gaitedge-{host}-{ename}")
        d = info.desc()
        c = d.append_child("channels").append_child("channel")
        c.append_child_value("label", "event")
        c.append_child_value("type", "Marker")
        for lane, be in pairs:
            _model_desc(d, be, lane)
        _software(d)
        self.events = pylsl.StreamOutlet(info)
        self._names.append(ename)

    @property
    def names(self) -> list[str]:
        """Names of the published streams."""
        return list(self._names)

    def attach(self, session: "Session") -> None:
        """Publish what ``session`` decides (sets its ``on_decisions`` and ``on_record``; before it starts)."""
        self.session = session
        session.on_decisions = self.on_decisions
        session.on_record = self.on_record

    def stamp(self, sample: int) -> float:
        """LSL time (s) of stream sample ``sample``."""
        assert self.session is not None
        t, arrival = self.session.sample_time(sample)
        if self.lsl_times and not math.isnan(t):
            return t
        if not math.isnan(arrival):
            return arrival + self._offset
        return self.pylsl.local_clock()

    def on_decisions(self, lane: int, start: int, d: "Decisions") -> None:
        n = len(d.labels)
        width = self._width[lane]
        rows = np.full((n, width), np.nan, np.float32)
        rows[:, 0] = d.labels
        if width > 1 and d.probs is not None and d.probs.shape == (n, width - 1):
            rows[:, 1:] = d.probs
        stamps = [self.stamp(start + j) for j in range(n)]
        self.phase[lane].push_chunk(rows, stamps)

    def on_record(self, rec: "Record") -> None:
        body: dict[str, Any] = {"event": rec.kind}
        if rec.foot:
            body["foot"] = rec.foot
        body["sample"] = rec.sample
        if rec.detail:
            body["detail"] = rec.detail
        ts = self.stamp(rec.sample) if rec.sample >= 0 else self.pylsl.local_clock()
        self.events.push_sample([json.dumps(body, separators=(",", ":"))], ts)
        if rec.kind in GAIT_EVENTS:
            self.latencies.append(self.pylsl.local_clock() - ts)

    def close(self, linger_s: float = 0.5) -> None:
        """Remove the outlets (after ``linger_s`` s when someone listens, so the last samples get out)."""
        outlets = [*self.phase, self.events]
        if linger_s > 0 and any(o.have_consumers() for o in outlets):
            time.sleep(linger_s)
        self.phase, self.events = [], None
        del outlets


@dataclass
class LslSimStats:
    """What :class:`LslImuSim` did."""

    #: samples pushed.
    sent: int = 0
    #: samples never pushed (unplugged).
    lost: int = 0
    unplugs: int = 0
    #: times the outlet got its first consumer.
    connections: int = 0


class LslImuSim(ThreadedServer):
    """Serve ``rec`` as an LSL IMU stream named ``name`` (type ``IMU``, float32, the recording's rate).

    The channel labels and units go into ``desc/channels``.  The clock starts
    when the first consumer connects (after ``settle_s`` s); sample ``i`` is
    stamped ``t0 + i / rate`` (``t0``: the LSL time of sample 0), so with
    ``speed`` other than 1 the timestamps stay on the recording's time grid
    while the samples come faster or slower.  ``loop`` repeats the recording
    with the clock running on; ``unplugs`` (``(at_s, for_s)`` in stream time)
    remove the outlet and bring it back (same source id) ``for_s`` s later, the
    samples meanwhile lost.  At the end of the recording (without ``loop``)
    the outlet stays ``linger_s`` s, then goes away.  ``start_at`` (an LSL
    time, s) starts the clock then instead (once a consumer is connected), so
    that several simulated sensors share one time grid.
    """

    thread_name = "imu-sim-lsl"

    def __init__(self, rec: "Recording", name: str, speed: float = 1.0, loop: bool = False,
                 unplugs: Sequence[tuple[float, float]] = (), settle_s: float = 0.3, linger_s: float = 1.0,
                 stream_type: str = "IMU", start_at: float | None = None) -> None:
        if len(rec) == 0:
            raise DataError(f"{rec.source}: nothing to replay (0 samples)")
        if not name.strip():
            raise DataError("--listen lsl:NAME needs a stream name")
        self.pylsl = import_pylsl()
        self.rec = rec
        self.name = name.strip()
        self.speed = float(speed)
        self.loop = loop
        self.unplugs = sorted((int(round(a * rec.rate_hz)), max(0.0, float(d))) for a, d in unplugs)
        self.settle_s = settle_s
        self.linger_s = linger_s
        self.stream_type = stream_type
        self.start_at = start_at
        self.stats = LslSimStats()
        #: LSL time (s) of sample 0 (NaN until the clock starts).
        self.t0 = math.nan
        self._signals = np.ascontiguousarray(rec.signals, np.float32)
        self._outlet: Any = None
        super().__init__()

    @property
    def query(self) -> str:
        """The ``--lsl`` query that finds this stream."""
        return f"name={self.name}"

    def _plug(self) -> None:
        p = self.pylsl
        info = p.StreamInfo(self.name, self.stream_type, self._signals.shape[1], float(self.rec.rate_hz),
                            p.cf_float32, f"gaitedge-imu-sim-{self.name}")
        d = info.desc()
        chans = d.append_child("channels")
        for c, u in zip(self.rec.channels, self.rec.units):
            e = chans.append_child("channel")
            e.append_child_value("label", c)
            e.append_child_value("unit", u)
            e.append_child_value("type", "Acc" if u.startswith("m/s") else "Gyro" if u == "rad/s" else "Misc")
        acq = d.append_child("acquisition")
        acq.append_child_value("manufacturer", "gaitedge imu-sim")
        acq.append_child_value("recording", self.rec.name)
        if self.rec.location:
            d.append_child_value("location", self.rec.location)
        _software(d)
        self._outlet = p.StreamOutlet(info)

    def _unplug_outlet(self) -> None:
        self._outlet = None

    def open(self) -> str:
        """Create the outlet; returns the query for ``--lsl``."""
        if self._outlet is None:
            self._plug()
        return self.query

    def _release(self) -> None:
        self._unplug_outlet()

    def _wait_for_consumer(self) -> bool:
        while not self._stop.is_set():
            if self._outlet is not None and self._outlet.wait_for_consumers(0.05):
                self.stats.connections += 1
                return not self._stop.wait(self.settle_s)
        return False

    def serve(self) -> LslSimStats:
        """Publish (blocking) until the recording ends or :meth:`stop`; returns the counters."""
        self.open()
        st = self.stats
        rate = self.rec.rate_hz
        n = len(self.rec)
        end = math.inf if self.loop else n
        fast = not (self.speed > 0 and math.isfinite(self.speed))
        period = 0.0 if fast else 1.0 / (rate * self.speed)
        unplugs = list(self.unplugs)
        if not self._wait_for_consumer():
            return st
        if self.start_at is not None:
            wait = self.start_at - self.pylsl.local_clock()
            if wait > 0 and self._stop.wait(wait):
                return st
        w0 = time.perf_counter()
        self.t0 = self.pylsl.local_clock() if self.start_at is None else float(self.start_at)
        w0 -= self.pylsl.local_clock() - self.t0  # a late start keeps the grid: samples already due go at once
        i = 0

        def due_now() -> int:
            return i + 256 if fast else int((time.perf_counter() - w0) / period) + 1

        while not self._stop.is_set():
            if i >= end:
                self._stop.wait(self.linger_s)
                self._unplug_outlet()
                break
            due = min(due_now(), end)
            if unplugs and due > unplugs[0][0]:
                due = max(i, unplugs[0][0])
            if due <= i:
                if unplugs and i >= unplugs[0][0]:
                    at, dur = unplugs.pop(0)
                    i = self._unplug(at, dur, due_now)
                    continue
                time.sleep(min(period, 0.002))
                continue
            idx = np.arange(i, int(due))
            self._outlet.push_chunk(self._signals[idx % n], (self.t0 + idx / rate).tolist())
            st.sent += len(idx)
            i = int(due)
            if fast:
                time.sleep(0.001)
        return st

    def _unplug(self, at: int, dur: float, due_now: Any) -> int:
        st = self.stats
        st.unplugs += 1
        self._unplug_outlet()
        wall = dur / self.speed if self.speed > 0 and math.isfinite(self.speed) else dur
        if self._stop.wait(wall):
            return at
        self._plug()
        if not self._wait_for_consumer():
            return at
        nxt = max(at + int(round(dur * self.rec.rate_hz)), due_now())
        if not self.loop:
            nxt = min(nxt, len(self.rec))
        st.lost += nxt - at
        return nxt


__all__ = [
    "LslChannel", "LslImuSim", "LslOutlets", "LslSimStats", "LslSource", "LslStream", "describe_channels",
    "import_pylsl", "lsl_lanes", "lsl_predicate", "resolve", "unit_factor",
]
