"""The ``gaitedge stream`` and ``gaitedge imu-sim`` commands, built from the library pieces.

Several feet: ``--model`` may be given twice (``NAME=PATH``; default names
``left`` and ``right``), one model per foot, each with its own ``--columns``
saying which fields of the shared input line feed it.  With one model the lane
is called ``foot`` unless named.

``--backend device --device URL`` classifies on a gaitedge board instead (its
model described by its INFO; ``--model`` optional, checked against the board).
``--format frames`` reads binary SAMPLES frames of int16 counts instead of
text lines: forwarded as counts to a board, or converted to physical units
for the desktop backends (``--scale`` in units per count, else the run's
``quant.npz`` resolution, else the default ±16 g / ±2000 dps at 16 bit).

``--lsl QUERY`` reads a Lab Streaming Layer stream instead (twice: one stream
per foot), and ``--lsl-out NAME`` publishes the phase and the events on LSL
(:mod:`gaitedge.stream.lsl`; docs/lsl.md).
"""

from __future__ import annotations

import math
import signal
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

import numpy as np

from gaitedge.errors import DataError
from gaitedge.rundir import QUANT_FILE
from gaitedge.stream.backends import (
    Backend,
    CheckedBackend,
    DeviceBackend,
    MountedBackend,
    load_backend,
)
from gaitedge.stream.session import MAX_STRIDE_S, Lane, Session, Summary
from gaitedge.stream.sources import ALIASES, ColumnMap, PortSource, ReplaySource, Source, load_replay

if TYPE_CHECKING:
    from gaitedge.stream.lsl import LslOutlets
    from gaitedge.stream.view import EventLog



@dataclass
class StreamOptions:
    """What ``gaitedge stream`` is asked to do (the command-line options, typed).

    Exactly one source: ``port`` (a pyserial URL), ``replay`` (a CSV file or data
    spec) or ``lsl`` (one or two LSL queries).  ``model``: ``[NAME=]RUN`` items,
    one per foot.  ``speed``: replay speed-up (None: real time); ``duration`` in s.
    """

    model: list[str] = field(default_factory=list)
    port: str | None = None
    replay: str | None = None
    lsl: list[str] | None = None
    backend: str = "onnx"
    device: str | None = None
    format: str = "text"
    columns: list[str] = field(default_factory=list)
    scale: str | None = None
    mounting: str | None = None
    foot: str | None = None
    speed: float | None = None
    index: int = 0
    baud: int = 115200
    lsl_timeout: float = 5.0
    lsl_out: str | None = None
    log: str | None = None
    events_table: str | None = None
    plot: bool = False
    duration: float | None = None
    samples: int | None = None
    quiet: bool = False


@dataclass
class ImuSimOptions:
    """What ``gaitedge imu-sim`` is asked to do (the command-line options, typed).

    ``listen``: ``pty``, ``tcp:PORT`` or ``lsl:NAME``; ``garbage`` / ``corrupt``:
    probabilities per line; ``burst_every`` in s; ``unplug``: ``AT[:FOR]`` items
    in s of stream time; ``lsb``: frames only, channel units per count.
    """

    replay: str
    listen: str = "pty"
    speed: float | None = None
    loop: bool = False
    index: int = 0
    other_foot: bool = False
    link: str | None = None
    counter: bool = False
    garbage: float = 0.0
    corrupt: float = 0.0
    burst_every: float | None = None
    burst_size: int | None = None
    unplug: list[str] = field(default_factory=list)
    seed: int = 0
    format: str = "text"
    lsb: dict[str, float] | None = None
    frame_samples: int | None = None


def parse_models(items: Sequence[str]) -> list[tuple[str, str]]:
    """``[NAME=]PATH`` items -> (name, path); default names ``foot`` or ``left``/``right``."""
    if not items:
        raise DataError("give --model RUN (a run folder, model_step.onnx or model.pt)")
    if len(items) > 2:
        raise DataError("at most two --model (one per foot)")
    defaults = ["foot"] if len(items) == 1 else ["left", "right"]
    out = []
    for item, default in zip(items, defaults):
        name, eq, path = item.partition("=")
        if eq and name and "/" not in name and not Path(item).exists():
            out.append((name, path))
        else:
            out.append((default, item))
    if len({n for n, _ in out}) != len(out):
        raise DataError("the two --model need different names")
    return out


def build_lanes(
    backends: Sequence[tuple[str, Backend]],
    columns: Sequence[str],
    scale: str | None,
    fields: Sequence[str] | None = None,
) -> list[Lane]:
    """One lane per model.  ``fields``: the source's own field names (a replayed
    recording's channels), used when no ``--columns`` is given."""
    if columns and len(columns) not in (1, len(backends)):
        raise DataError(f"give --columns once, or once per model ({len(backends)})")
    if len(backends) > 1 and len(columns) != len(backends):
        raise DataError("with two models give --columns once per model, saying which fields feed each foot's model")
    lanes = []
    for k, (name, be) in enumerate(backends):
        ch, units = be.channels, be.units
        if columns:
            cmap = ColumnMap.parse(columns[k if len(columns) > 1 else 0], ch, units, scale, allow_time=fields is None)
        elif fields is not None:
            missing = [c for c in ch if c not in fields]
            if missing:
                raise DataError(
                    f"the replayed recording lacks channel(s) {', '.join(missing)} that model {name!r} needs; "
                    f"it has {', '.join(fields)}"
                )
            cmap = ColumnMap.parse([f if f in ch else "_" for f in fields], ch, units, scale)
        else:
            cmap = ColumnMap.default_line(ch, units, scale)
        if fields is not None and cmap.n_fields != len(fields):
            raise DataError(
                f"--columns names {cmap.n_fields} fields but the replayed recording has {len(fields)} channels "
                f"({', '.join(fields)})"
            )
        lanes.append(Lane(name, be, cmap))
    return lanes


def make_backends(opts: StreamOptions) -> list[tuple[str, Backend]]:
    """The (lane name, backend) pairs the command-line options describe."""
    kind = opts.backend
    device = opts.device
    mounting = opts.mounting
    if kind != "device":
        if device:
            raise DataError("--device applies to --backend device")
        pairs = [(name, CheckedBackend(load_backend(path, kind))) for name, path in parse_models(opts.model or [])]
        return [(name, mount_backend(be, mounting, lane_location(name, opts.foot)))
                for name, be in pairs] if mounting else pairs
    if mounting:
        raise DataError("with --backend device the board applies the mounting itself: set it once with "
                        "'gaitedge device mounting --port URL FILE'")
    if not device:
        raise DataError("--backend device needs --device URL: the board's serial port (/dev/ttyACM0, or the "
                        "socket:// URL 'gaitedge device emulate' prints)")
    models = opts.model or []
    if len(models) > 1:
        raise DataError("--backend device drives one board: give at most one --model")
    name, path = parse_models(models)[0] if models else ("foot", None)
    frames = opts.format == "frames"
    return [(name, DeviceBackend(device, model=path, counts=frames))]


def lane_location(name: str, foot: str | None) -> str:
    """The foot a lane's own channels come from: ``--foot``, else the lane name (left/right), else left."""
    if foot:
        return f"{foot}_foot"
    return f"{name}_foot" if name in ("left", "right") else "left_foot"


def mount_backend(be: Backend, mounting: str, location: str) -> Backend:
    """``be`` behind a sensor mounting (``auto``, a file, or axis maps; see docs/frames.md)."""
    from gaitedge.data.mounting import parse_mounting

    return MountedBackend(be, parse_mounting(mounting), location=location)


def quant_lsb(folder: str | Path) -> dict[str, float] | None:
    """``{channel: lsb}`` (physical units per count) of ``folder/quant.npz``, or None without one.

    Read with numpy alone (no torch): the sensor resolution the run was quantized for."""
    path = Path(folder) / QUANT_FILE
    if not path.is_file():
        return None
    try:
        import json

        with np.load(path) as z:
            meta = json.loads(bytes(z["meta"]).decode())
            lsb = [float(v) for v in z["lsb"]]
    except Exception as exc:
        raise DataError(f"{path}: not a gaitedge quantized model ({type(exc).__name__})") from None
    return dict(zip(meta["channels"], lsb))


def frame_lsb(lanes: Sequence[Lane]) -> np.ndarray:
    """Resolution (physical units per count) of each field of a frame, for the desktop backends.

    Per model channel: the run's ``quant.npz`` if it has one, else the default
    resolution of the channel's unit; fields no model reads get 1."""
    from gaitedge.stream.imusim import sensor_lsb

    fields = lanes[0].columns.fields
    out = np.ones(len(fields), np.float64)
    done = np.zeros(len(fields), bool)
    defaults_used = False
    for ln in lanes:
        be = ln.backend
        table = quant_lsb(Path(be.path).parent) if be.path else None
        if table is None or any(c not in table for c in be.channels):
            table = dict(zip(be.channels, sensor_lsb(be.channels, be.units)))
            defaults_used = True
        for i, f in enumerate(fields):
            name = ALIASES.get(f, f)
            if f.startswith("other_") and f[6:] in ALIASES:
                name = "other_" + ALIASES[f[6:]]
            if not done[i] and name in table:
                out[i] = table[name]
                done[i] = True
    if defaults_used:
        print("gaitedge: converting frame counts with the default sensor resolution (+-16 g, +-2000 dps at 16 bit); "
              "give --scale (units per count) or quantize the run to use its resolution", file=sys.stderr)
    return out


def make_source(opts: StreamOptions, backends: Sequence[tuple[str, Backend]]) -> tuple[Source, list[Lane]]:
    """The source and lanes the command-line options describe."""
    lsl = opts.lsl or []
    if sum(map(bool, (opts.port, opts.replay, lsl))) != 1:
        raise DataError("give exactly one of --port URL, --replay FILE or --lsl QUERY")
    columns = opts.columns or []
    frames = opts.format == "frames"
    if lsl:
        return make_lsl_source(opts, backends)
    if frames and opts.replay:
        raise DataError("--format frames applies to --port (a replay reads its recording directly)")
    if opts.replay:
        from gaitedge.data.preprocess import resample

        needs_other = any(c.startswith("other_") for _, be in backends for c in be.channels)
        rec = load_replay(opts.replay, index=opts.index, other_foot=needs_other)
        rate = backends[0][1].rate_hz
        if abs(rec.rate_hz - rate) > 1e-9:
            rec = resample(rec, rate)
        rec.check_finite()
        lanes = build_lanes(backends, columns, opts.scale, fields=rec.channels)
        speed = opts.speed if opts.speed is not None else 1.0
        return ReplaySource(rec, speed=speed), lanes
    if opts.speed is not None:
        raise DataError("--speed applies to --replay only")
    if not frames:
        lanes = build_lanes(backends, columns, opts.scale)
        return PortSource.text_lines(opts.port, lanes[0].columns, baudrate=opts.baud), lanes
    device = any(isinstance(be, DeviceBackend) for _, be in backends)
    if device and opts.scale:
        raise DataError("--scale does not apply to frames forwarded to a board: their counts go to it unchanged")
    if columns and len(columns) not in (1, len(backends)) or len(backends) > 1 and len(columns) != len(backends):
        raise DataError("with two models give --columns once per model, naming the frame's channels each one reads")
    lanes = [
        Lane(name, be, ColumnMap.for_frames(be.channels, be.units, columns[min(k, len(columns) - 1)] if columns
                                            else None, opts.scale))
        for k, (name, be) in enumerate(backends)
    ]
    lsb = None if device or opts.scale else frame_lsb(lanes)
    return PortSource.samples_frames(opts.port, lanes[0].columns, lsb=lsb, baudrate=opts.baud), lanes


def make_lsl_source(opts: StreamOptions, backends: Sequence[tuple[str, Backend]]) -> tuple[Source, list[Lane]]:
    """An :class:`~gaitedge.stream.lsl.LslSource` for the ``--lsl`` queries, and its lanes."""
    from gaitedge.stream.lsl import LslSource, lsl_lanes

    if opts.format == "frames":
        raise DataError("--format frames applies to --port (LSL streams carry their samples as numbers)")
    if opts.speed is not None:
        raise DataError("--speed applies to --replay only")
    if any(isinstance(be, DeviceBackend) for _, be in backends):
        raise DataError("--lsl feeds the desktop backends (onnx, torch), not --backend device")
    if len(opts.lsl) > 2:
        raise DataError("at most two --lsl streams (one per foot)")
    timeout = opts.lsl_timeout
    source = LslSource(opts.lsl, backends[0][1].rate_hz, timeout=timeout)
    source.resolve()
    return source, lsl_lanes(source, backends, opts.columns or [], opts.scale)


def make_outlets(opts: StreamOptions, backends: Sequence[tuple[str, Backend]]) -> "LslOutlets | None":
    """The LSL outlets of ``--lsl-out NAME`` (None without it)."""
    name = opts.lsl_out
    if name is None:
        return None
    from gaitedge.stream.lsl import LslOutlets

    return LslOutlets(name, backends, lsl_times=bool(opts.lsl))


def run_stream(opts: StreamOptions) -> int:
    """``gaitedge stream``: classify a live or replayed IMU stream until it ends or Ctrl-C."""
    if opts.duration is not None and not opts.duration > 0:
        raise DataError("--duration must be > 0 s")
    if opts.samples is not None and opts.samples < 1:
        raise DataError("--samples must be >= 1")
    if opts.lsl_timeout is not None and not opts.lsl_timeout > 0:
        raise DataError("--lsl-timeout must be > 0 s")
    backends = make_backends(opts)
    outlets = None
    try:
        # the outlets exist before the source is resolved, so a recorder can subscribe to them first
        outlets = make_outlets(opts, backends)
        source, lanes = make_source(opts, backends)
    except BaseException:
        if outlets is not None:
            outlets.close(0.0)
        for _, be in backends:
            be.close()
        raise
    try:
        return _run_session(opts, source, lanes, outlets)
    finally:
        if outlets is not None:
            outlets.close()
        for _, be in backends:
            be.close()


def _notice_to(session: Session, lane: str, echo: bool):
    """A notice callback: into the session's log (and on stderr when the live view is off)."""

    def notice(text: str) -> None:
        session.notice(f"{lane}: {text}")
        if echo:
            print(f"gaitedge: {lane}: {text}", file=sys.stderr)

    return notice


def _lane_title(ln: Lane) -> str:
    be = ln.backend
    while isinstance(be, (MountedBackend, CheckedBackend)):
        be = be.inner
    if isinstance(be, DeviceBackend):
        return f"{ln.name}=board {be.info.board} ({be.info.family}, weights {be.info.model_hash[:12]}) on {be.url}"
    return f"{ln.name}={Path(be.path).parent.name}/{Path(be.path).name}"


def _run_session(opts: StreamOptions, source: Source, lanes: list[Lane], outlets: "LslOutlets | None" = None) -> int:
    from gaitedge.stream.view import EventLog, LivePlot, TerminalView, format_summary

    log = EventLog(opts.log) if opts.log else None
    session = Session(
        source,
        lanes,
        log=log,
        max_samples=opts.samples,
        duration_s=opts.duration,
        history_s=15.0 if opts.plot else 0.0,
    )
    if outlets is not None:
        outlets.attach(session)
    for ln in lanes:
        be = ln.backend
        while isinstance(be, (MountedBackend, CheckedBackend)):
            be.on_notice = _notice_to(session, ln.name, opts.quiet)
            be = be.inner
    title = f"{source.description}  {opts.backend}  " + ", ".join(_lane_title(ln) for ln in lanes)
    view = None if opts.quiet else TerminalView(session, title=title)
    try:
        session.start()
    except BaseException:
        if log is not None:
            log.close()
        raise
    plot = None
    if opts.plot:
        try:
            plot = LivePlot(session)
        except ImportError as exc:
            print(f"gaitedge: --plot needs matplotlib ({exc})", file=sys.stderr)
        else:
            if not plot.interactive:
                print("gaitedge: no interactive matplotlib backend (no display?); --plot draws off-screen only",
                      file=sys.stderr)
    interrupts = [0]

    def on_sigint(signum: int, frame: object) -> None:
        interrupts[0] += 1
        session.stop()
        if interrupts[0] > 1:
            signal.signal(signal.SIGINT, signal.default_int_handler)

    old = signal.signal(signal.SIGINT, on_sigint)
    try:
        while not session.done:
            if plot is not None:
                plot.update()
                plot.pause(0.1)
            else:
                session.wait(0.2)
            if view is not None:
                view.update()
        session.wait()
    finally:
        signal.signal(signal.SIGINT, old)
        if plot is not None:
            plot.close()
    if view is not None:
        view.update(final=True)
    s: Summary = session.summary()
    if session.error is not None and not isinstance(session.error, DataError):
        raise session.error
    print(format_summary(s))
    _report(opts, session, lanes, log, outlets)
    if isinstance(session.error, DataError):
        raise session.error
    return 0


def _report(opts: StreamOptions, session: Session, lanes: list[Lane], log: "EventLog | None",
            outlets: "LslOutlets | None") -> None:
    """After the summary: the event table, the boards' counters, the event log and the LSL outlets."""
    if opts.events_table:
        from gaitedge.data.gaitmap import write_event_table

        feet = {}
        for k, ln in enumerate(lanes):
            foot = ln.name if ln.name in ("left", "right") else (opts.foot or "left")
            if foot in feet:
                raise DataError("--events-table: two lanes for one foot; name the models left= and right=")
            feet[foot] = session.trackers[k].events
        n = write_event_table(opts.events_table, feet, session.rate_hz, max_stride_s=MAX_STRIDE_S)
        print(f"event table: {opts.events_table} ({n} strides, gaitmap layout)")
    for ln in lanes:
        if isinstance(ln.backend, DeviceBackend):
            print(f"  {ln.backend.describe()}")
            for line in ln.backend.incidents[:20]:
                print(f"    {line}")
    if log is not None:
        print(f"event log: {log.path} ({log.count} records)")
    if outlets is not None:
        lat = np.asarray(outlets.latencies) * 1e3
        figs = ""
        if len(lat) and np.percentile(lat, 50) >= 0:
            figs = (f"; sample -> event marker pushed p50 {np.percentile(lat, 50):.1f} ms, "
                    f"p99 {np.percentile(lat, 99):.1f} ms over {len(lat)} events")
        elif len(lat):
            figs = "; the source's timestamps run ahead of this host's LSL clock (a replay faster than real time?)"
        print(f"LSL outlets: {', '.join(outlets.names)}{figs}")


def run_imusim(opts: ImuSimOptions) -> int:
    """``gaitedge imu-sim``: serve a recording as a virtual IMU board until it ends or Ctrl-C."""
    from gaitedge.stream.imusim import ImuSim, parse_unplug

    rec = load_replay(opts.replay, index=opts.index, other_foot=opts.other_foot)
    rec.check_finite()
    speed = 1.0 if opts.speed is None else opts.speed
    if opts.listen.startswith("lsl:"):
        return _run_imusim_lsl(opts, rec, speed)
    fmt = opts.format
    lsb = opts.lsb
    if lsb and fmt != "frames":
        raise DataError("--lsb applies to --format frames")
    if opts.frame_samples is not None and fmt != "frames":
        raise DataError("--frame-samples applies to --format frames")
    sim = ImuSim(
        rec,
        listen=opts.listen,
        speed=speed,
        loop=opts.loop,
        link=opts.link,
        counter=opts.counter,
        garbage=opts.garbage,
        corrupt=opts.corrupt,
        burst_every_s=opts.burst_every or 0.0,
        burst_size=opts.burst_size or 0,
        unplugs=[parse_unplug(u) for u in opts.unplug or []],
        seed=opts.seed,
        format=fmt,
        lsb=lsb,
        frame_samples=opts.frame_samples or 1,
    )
    url = sim.open()
    print(url, flush=True)
    fields = (["seq"] if opts.counter else []) + ["t", *rec.channels]
    unit = "lines/s" if fmt == "text" else "samples/s"
    rate = "as fast as read" if not (speed > 0 and math.isfinite(speed)) else f"{rec.rate_hz * speed:g} {unit}"
    if fmt == "text":
        layout = f"lines are {','.join(fields)}"
    else:
        assert sim.lsb is not None
        layout = (f"SAMPLES frames of up to {sim.frame_samples} sample(s) x {len(rec.channels)} int16 counts ("
                  + ", ".join(f"{c} {v:.6g} {u}" for c, u, v in zip(rec.channels, rec.units, sim.lsb))
                  + " per count)")
    print(
        f"imu-sim: serving {rec.name} ({len(rec)} samples at {rec.rate_hz:g} Hz, {rate}"
        f"{', looping' if opts.loop else ''}) on {url}\n"
        f"imu-sim: {layout}; Ctrl-C to stop",
        file=sys.stderr,
        flush=True,
    )
    elapsed = _serve_until_signal(sim)
    st = sim.stats
    what = f"{st.sent} lines" if fmt == "text" else f"{st.sent} samples in {st.frames} frames"
    print(
        f"imu-sim: {what} sent in {elapsed:.1f} s, {st.connections} connection(s), "
        f"{st.garbage} garbage {'lines' if fmt == 'text' else 'runs'}, {st.corrupted} corrupted, "
        f"{st.lost} samples lost, {st.bursts} bursts, {st.unplugs} unplugs",
        file=sys.stderr,
    )
    return 0


def _serve_until_signal(sim: object) -> float:
    """Run ``sim.serve()`` until it ends or SIGINT/SIGTERM stops it, then close it; the seconds it ran."""
    t0 = time.perf_counter()

    def on_signal(signum: int, frame: object) -> None:
        sim.stop()

    old = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        sim.serve()
    finally:
        for sig, handler in old.items():
            signal.signal(sig, handler)
        sim.close()
    return time.perf_counter() - t0


def _run_imusim_lsl(opts: ImuSimOptions, rec: object, speed: float) -> int:
    """``gaitedge imu-sim --listen lsl:NAME``: publish the recording as an LSL IMU stream."""
    from gaitedge.stream.imusim import parse_unplug
    from gaitedge.stream.lsl import LslImuSim

    for opt, on in (("--link", opts.link), ("--counter", opts.counter), ("--garbage", opts.garbage),
                    ("--corrupt", opts.corrupt), ("--burst-every", opts.burst_every),
                    ("--burst-size", opts.burst_size), ("--lsb", opts.lsb),
                    ("--frame-samples", opts.frame_samples),
                    ("--format frames", opts.format == "frames")):
        if on:
            raise DataError(f"{opt} applies to --listen pty or tcp:PORT (an LSL stream carries whole samples)")
    sim = LslImuSim(rec, opts.listen[4:], speed=speed, loop=opts.loop,
                    unplugs=[parse_unplug(u) for u in opts.unplug or []])
    query = sim.open()
    print(query, flush=True)
    rate = "as fast as possible" if not (speed > 0 and math.isfinite(speed)) else f"{rec.rate_hz * speed:g} samples/s"
    print(
        f"imu-sim: publishing {rec.name} ({len(rec)} samples at {rec.rate_hz:g} Hz, {rate}"
        f"{', looping' if opts.loop else ''}) as LSL stream {sim.name!r} (type IMU, "
        f"{len(rec.channels)} channels: {', '.join(f'{c} [{u}]' for c, u in zip(rec.channels, rec.units))}); "
        "starts when the first inlet connects; Ctrl-C to stop",
        file=sys.stderr,
        flush=True,
    )
    elapsed = _serve_until_signal(sim)
    st = sim.stats
    print(f"imu-sim: {st.sent} samples sent in {elapsed:.1f} s, {st.connections} connection(s), "
          f"{st.lost} samples lost, {st.unplugs} unplugs", file=sys.stderr)
    return 0
