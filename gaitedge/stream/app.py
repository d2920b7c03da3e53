"""The ``gaitedge stream`` and ``gaitedge imu-sim`` commands, built from the library pieces.

Several feet: ``--model`` may be given twice (``NAME=PATH``; default names
``left`` and ``right``), one model per foot, each with its own ``--columns``
saying which fields of the shared input line feed it.  With one model the lane
is called ``foot`` unless named.
"""

from __future__ import annotations

import argparse
import math
import signal
import sys
import time
from pathlib import Path
from typing import Sequence

from gaitedge.errors import DataError
from gaitedge.stream.backends import Backend, load_backend
from gaitedge.stream.sources import ColumnMap, PortSource, ReplaySource, Source, load_replay
from gaitedge.stream.session import Lane, Session, Summary


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


def make_source(args: argparse.Namespace, backends: Sequence[tuple[str, Backend]]) -> tuple[Source, list[Lane]]:
    """The source and lanes the command-line options describe."""
    if bool(args.port) == bool(args.replay):
        raise DataError("give exactly one of --port URL or --replay FILE")
    columns = args.columns or []
    if args.replay:
        from gaitedge.data.preprocess import resample

        needs_other = any(c.startswith("other_") for _, be in backends for c in be.channels)
        rec = load_replay(args.replay, index=args.index, other_foot=needs_other)
        rate = backends[0][1].rate_hz
        if abs(rec.rate_hz - rate) > 1e-9:
            rec = resample(rec, rate)
        rec.check_finite()
        lanes = build_lanes(backends, columns, args.scale, fields=rec.channels)
        speed = args.speed if args.speed is not None else 1.0
        return ReplaySource(rec, speed=speed), lanes
    if args.speed is not None:
        raise DataError("--speed applies to --replay only")
    lanes = build_lanes(backends, columns, args.scale)
    return PortSource.text_lines(args.port, lanes[0].columns, baudrate=args.baud), lanes


def run_stream(args: argparse.Namespace) -> int:
    """``gaitedge stream``: classify a live or replayed IMU stream until it ends or Ctrl-C."""
    from gaitedge.stream.view import EventLog, LivePlot, TerminalView, format_summary

    if args.duration is not None and not args.duration > 0:
        raise DataError("--duration must be > 0 s")
    if args.samples is not None and args.samples < 1:
        raise DataError("--samples must be >= 1")
    backends = [(name, load_backend(path, args.backend)) for name, path in parse_models(args.model)]
    source, lanes = make_source(args, backends)
    log = EventLog(args.log) if args.log else None
    session = Session(
        source,
        lanes,
        log=log,
        max_samples=args.samples,
        duration_s=args.duration,
        history_s=15.0 if args.plot else 0.0,
    )
    title = f"{source.description}  {args.backend}  " + ", ".join(
        f"{ln.name}={Path(ln.backend.path).parent.name}/{Path(ln.backend.path).name}" for ln in lanes
    )
    view = None if args.quiet else TerminalView(session, title=title)
    try:
        session.start()
    except BaseException:
        if log is not None:
            log.close()
        raise
    plot = None
    if args.plot:
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
    if log is not None:
        print(f"event log: {log.path} ({log.count} records)")
    if isinstance(session.error, DataError):
        raise session.error
    return 0


def run_imusim(args: argparse.Namespace) -> int:
    """``gaitedge imu-sim``: serve a recording as a virtual IMU board until it ends or Ctrl-C."""
    from gaitedge.stream.imusim import ImuSim, parse_unplug

    rec = load_replay(args.replay, index=args.index, other_foot=args.other_foot)
    rec.check_finite()
    speed = 1.0 if args.speed is None else args.speed
    sim = ImuSim(
        rec,
        listen=args.listen,
        speed=speed,
        loop=args.loop,
        link=args.link,
        counter=args.counter,
        garbage=args.garbage,
        corrupt=args.corrupt,
        burst_every_s=args.burst_every or 0.0,
        burst_size=args.burst_size or 0,
        unplugs=[parse_unplug(u) for u in args.unplug or []],
        seed=args.seed,
    )
    url = sim.open()
    print(url, flush=True)
    fields = (["seq"] if args.counter else []) + ["t", *rec.channels]
    rate = "as fast as read" if not (speed > 0 and math.isfinite(speed)) else f"{rec.rate_hz * speed:g} lines/s"
    print(
        f"imu-sim: serving {rec.name} ({len(rec)} samples at {rec.rate_hz:g} Hz, {rate}"
        f"{', looping' if args.loop else ''}) on {url}\n"
        f"imu-sim: lines are {','.join(fields)}; Ctrl-C to stop",
        file=sys.stderr,
        flush=True,
    )
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
    st = sim.stats
    print(
        f"imu-sim: {st.sent} lines sent in {time.perf_counter() - t0:.1f} s, {st.connections} connection(s), "
        f"{st.garbage} garbage lines, {st.corrupted} corrupted, {st.lost} samples lost, {st.bursts} bursts, "
        f"{st.unplugs} unplugs",
        file=sys.stderr,
    )
    return 0
