"""Long faulty stream: an hour of recorded gait through a faulty pty into a live session.

A feeder process replays recorded gait (IPOL, every left- and right-foot trial
in turn, one foot's 6 channels; the built-in synthetic gait only when
../shared is absent, and the output says so) as IMU text lines
``t,acc_x,..,gyr_z`` (as ``gaitedge imu-sim`` prints them) into a
pseudo-terminal at ``--speed`` times real time, and injects faults:

* **corrupt bytes**: a fraction ``--corrupt`` of all bytes written is replaced
  by a random other byte value at a random position (seeded); a line that
  holds one is *damaged* (a replaced newline damages the next line too);
* **garbage lines** every few seconds of stream time on average: non-numeric
  text, numeric lines with the wrong number of fields, and over-long lines
  (5-9 kB without a newline in the first 4 kB);
* **unplug / replug** every ``--unplug-every`` s of stream time: the pty master
  is closed and the stable link the session reads is removed; the port comes
  back ``--unplug-for`` s later (the board's clock runs on, samples meanwhile
  are never written, and those written before the session has reopened the
  port are lost too);
* with ``--backend device``: the board (host build of the firmware,
  ``gaitedge-fw-host``, over TCP) is rebooted (REBOOT request) every
  ``--reset-every`` s of stream time, from the inference thread.

The session in this process (``PortSource`` + ``TextLineDecoder`` on the
link, ONNX or device backend) is pinned to one core, the feeder to the other.
The same model classifies the same samples without faults (a *clean run*: the
backend pushed every sample in order, no session, no faults) and every label
the faulty run emitted is compared with the clean label of the same sample.

Which sample a label belongs to: the session's sample index is the device's
time grid (0 = the first sample it received), so label ``g`` belongs to line
``g + offset`` where ``offset`` is the line number of the first sample.  A
label whose sample arrived with a timestamp that is not its line's (the grid
slipped) is counted as *misplaced*.

Exclusion window: the labels near an injected fault may legitimately differ
from the clean run.  A fault damaging lines ``[a, b)`` (lost, filled, or
corrupted so that they still parse) affects the labels from ``a - lag`` on
(``lag`` = output delay + debounce - 1: a label is decided ``lag`` samples
after its sample) until the model state has re-converged.  The session either
fills a gap of up to ``max_fill_s`` (0.1 s) by holding the last sample, with
the model state carried on, or ends the segment and restarts the model from a
zero state.  The re-warm window ``W`` is measured on the clean data for this
model: the model is restarted from zero state at many points (every
``--warm-every`` s) and ``W`` is the longest time until its labels agree with
the clean run for good (within a 10 s horizon), rounded up to 0.5 s.  Every
fault excludes ``[a - lag - inflight, b + W)``, ``inflight`` being the
samples a board may hold unanswered at a reboot (0 for ONNX).  Labels outside
every window that differ from the clean run are **wrong labels accepted**.

Reported: samples written / received / labelled, the faults injected
(damaged lines, of which still parseable, garbage lines, unplugs, reboots,
samples never written, samples that cannot arrive) against what the session
detected (corrupt lines, gaps, samples missing, samples dropped for an
off-grid timestamp, model restarts, disconnects / reconnects, board
restarts), wrong labels accepted and misplaced labels, RSS of this process
per slice (start and end), and the sample-to-label latency p50 / p99 / max
per ``--slice`` s of stream time.

How much is compared depends on the fault density: a line is ~87 bytes, so at
1 % of bytes (the default) more than half the lines are damaged and nearly
every label lies within a window of some fault; that run tests detection,
the sample grid (misplaced labels), memory and latency under heavy damage.
``--corrupt 0.0002`` (~1.7 % of lines) leaves about a sixth of the labels
outside every window, which is where the label comparison has teeth.

RSS: the session's latency ring (2 MB of float64, allocated with
``np.zeros``) becomes resident as it first fills, i.e. over the first 262,144
samples (~44 min of stream at 100 Hz); the benchmark itself keeps at most
5,000 stream incidents.  Growth after that is what would be a leak.

Usage::

    python benchmarks/bench_soak.py [--hours 1.0] [--speed 10] [--backend onnx|device|both] [--seed 0]
                                    [--corrupt 0.01] [--json FILE]

prints a Markdown section (``--write`` puts it in BENCHMARKS.md as ``## Long
faulty stream``).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from benchlib import cpu_model, load_avg, write_section  # noqa: E402
from gaitedge.stream.backends import WrappedBackend  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
SHARED_IPOL = ROOT.parent / "shared" / "data" / "ipol-gait"
SECTION = "## Long faulty stream"
RATE_HZ = 100.0
#: wall seconds the feeder waits after the session opened the port (its open-time input flush).
SETTLE_S = 0.2
#: lines at the very start written without faults (the decoder's layout check looks at the first lines).
CLEAN_START = 20
#: the re-warm horizon: a restarted model that has not converged within this many s counts as this long.
WARM_HORIZON_S = 10.0


# -- data ------------------------------------------------------------------------------------


def load_gait(hours: float, rate_hz: float = RATE_HZ) -> tuple[np.ndarray, list[str], list[str], str]:
    """At least ``hours`` of one-foot gait (6 channels) as ``(signals [N, 6] float32, channels, units, source)``.

    IPOL (``../shared/data/ipol-gait``): every trial's left foot, then every
    trial's right foot, in turn, repeated when more is asked for than there is.
    Without ../shared: the built-in synthetic gait, and ``source`` says so.
    """
    from gaitedge.data.spec import load_spec

    n = int(round(hours * 3600 * rate_hz))
    if (SHARED_IPOL / "GaitData").is_dir():
        recs = load_spec(f"ipol:{SHARED_IPOL}?feet=left", other_foot=False)
        recs += load_spec(f"ipol:{SHARED_IPOL}?feet=right", other_foot=False)
        source = f"IPOL ({SHARED_IPOL}), {len(recs)} one-foot trial recordings in turn"
    else:
        recs = load_spec("synthetic?n=10&trials=3", other_foot=False)
        source = "SYNTHETIC gait (../shared/data/ipol-gait is absent here), not recorded gait"
    if abs(recs[0].rate_hz - rate_hz) > 1e-6:
        raise SystemExit(f"expected {rate_hz} Hz data, got {recs[0].rate_hz}")
    parts, have = [], 0
    while have < n:
        for r in recs:
            parts.append(np.asarray(r.signals, np.float32))
            have += len(r)
            if have >= n:
                break
    sig = np.concatenate(parts)[:n]
    return np.ascontiguousarray(sig), list(recs[0].channels), list(recs[0].units), source


# -- the model -------------------------------------------------------------------------------


def make_model(folder: Path, device: bool, epochs: int = 10, log: Callable[[str], None] = print) -> Path:
    """A small GRU-16 on one foot (6 channels) trained briefly on IPOL (synthetic without ../shared),
    exported to ONNX; with ``device`` also quantized and built as the host firmware.  Returns the run folder.

    Reuses what an earlier call left in ``folder``."""
    from gaitedge.config import Config
    from gaitedge.export import export_onnx

    from gaitedge.training.train import train

    run = folder / "run"
    if not (run / "model_step.onnx").is_file():
        import torch

        torch.set_num_threads(1)
        cfg = Config()
        ipol = (SHARED_IPOL / "GaitData").is_dir()
        cfg.data.train = f"ipol:{SHARED_IPOL}?feet=left&subjects=1-11" if ipol else "synthetic?n=6&trials=2"
        cfg.data.val_subjects = ["11"] if ipol else ["syn6"]
        cfg.data.other_foot = False
        cfg.data.lowpass_hz = 15.0
        cfg.events.delay_ms = 30.0
        cfg.model.name = "gru"
        cfg.model.hidden = 16
        cfg.train.seed = 0
        cfg.train.epochs = epochs
        cfg.train.steps_per_epoch = 20
        cfg.train.batch_size = 16
        cfg.train.window_s = 4.0
        cfg.train.threads = 1
        t0 = time.perf_counter()
        tm, metrics, out = train(cfg, out_dir=run, progress=False, force=True, log=lambda *a, **k: None)
        export_onnx(tm, out)
        log(f"trained GRU-16 ({epochs} epochs, {time.perf_counter() - t0:.0f} s): val macro-F1 "
            f"{metrics.get('val_macro_f1', float('nan')):.3f}" if isinstance(metrics, dict) else "trained")
    if device and not (folder / "host" / "gaitedge-fw-host").is_file():
        from gaitedge.checkpoint import load_checkpoint
        from gaitedge.data.spec import load_spec
        from gaitedge.firmware import build_firmware
        from gaitedge.quant import calibration_recordings, quantize_model

        tm = load_checkpoint(run)
        spec = tm.info.get("data_train") or ""
        try:
            calib = calibration_recordings(tm, load_spec(spec or "synthetic?n=6&trials=2", other_foot=False))
        except Exception:
            calib = load_spec("synthetic?n=6&trials=2", other_foot=False)
        qm = quantize_model(tm, calib)
        qm.save(run / "quant.npz")
        build_firmware(qm, folder / "host", board="host")
    return run


# -- the feeder (a separate process) --------------------------------------------------------------

GARBAGE_TEXT = [b"ERR imu timeout", b"hello from the board", b"nan,nan,x", b"BOOT v1.2 ok", b"!!!!", b"acc=?;gyr=?"]


def _garbage(rng: np.random.Generator) -> bytes:
    kind = int(rng.integers(3))
    if kind == 0:
        return GARBAGE_TEXT[int(rng.integers(len(GARBAGE_TEXT)))] + b"\n"
    if kind == 1:
        k = int(rng.choice([1, 3, 5, 9, 13]))
        return b",".join(f"{v:.4f}".encode() for v in rng.normal(size=k)) + b"\n"
    n = int(rng.integers(5000, 9000))
    return bytes(rng.choice(np.frombuffer(b"0123456789.,-", np.uint8), n)) + b"\n"


def feeder(args: argparse.Namespace) -> int:
    """The faulty board: write the lines of ``args.signals`` into a pty at ``args.speed`` x real time.

    Writes ``args.faults`` (npz) at the end: per line ``written`` and
    ``damaged`` (bool), ``parses`` (a damaged line that still parses as a
    sample), the unplug intervals, and counters."""
    if args.core >= 0:
        try:
            os.sched_setaffinity(0, {args.core})
        except OSError:
            pass
    from gaitedge.stream import LineParser
    from gaitedge.stream.imusim import PtyPort

    sig = np.load(args.signals)
    n = len(sig)
    rate = RATE_HZ
    body = [b"," + b",".join(f"{float(v):.9g}".encode() for v in row) + b"\n" for row in sig]
    rng = np.random.default_rng(args.seed)
    parser = LineParser(sig.shape[1] + 1, 0)
    written = np.zeros(n, bool)
    damaged = np.zeros(n, bool)
    parses = np.zeros(n, bool)
    unplugs: list[tuple[int, int]] = []
    garbage = corrupted_bytes = bytes_out = 0
    every = max(1, int(round(args.unplug_every * rate))) if args.unplug_every > 0 else n + 1
    next_unplug = every
    period = 1.0 / (rate * args.speed)
    port = PtyPort(Path(args.link))

    def wait_client() -> bool:
        if not port.wait_client(60.0):
            return False
        time.sleep(SETTLE_S)
        return True

    if not wait_client():
        port.unplug()
        return 1
    t0 = time.perf_counter()
    i = 0
    carry = False  # the newline ending the previous chunk was corrupted: the next line is damaged
    while i < n:
        due = min(n, int((time.perf_counter() - t0) / period) + 1)
        if i >= next_unplug:
            a = i
            port.unplug()
            time.sleep(args.unplug_for / args.speed)
            port.plug()
            if not wait_client():
                break
            i = max(i, min(n, int((time.perf_counter() - t0) / period) + 1))
            unplugs.append((a, i))
            next_unplug += every
            carry = False
            continue
        due = min(due, next_unplug)
        if due <= i:
            time.sleep(min(period, 0.002))
            continue
        pieces: list[bytes] = []
        owner: list[int] = []
        for j in range(i, due):
            if j >= CLEAN_START and args.garbage > 0 and rng.random() < args.garbage:
                pieces.append(_garbage(rng))
                owner.append(-1)
                garbage += 1
            pieces.append(f"{j / rate:.6f}".encode() + body[j])
            owner.append(j)
        lens = np.fromiter((len(p) for p in pieces), np.int64, len(pieces))
        total = int(lens.sum())
        k = int(rng.binomial(total, args.corrupt)) if args.corrupt > 0 else 0
        if carry and owner[0] >= 0:
            damaged[owner[0]] = True
        carry = False
        if k:
            ends = np.cumsum(lens)
            pos = np.sort(rng.integers(0, total, k))
            vals = rng.integers(1, 256, k)
            buf = [bytearray(p) for p in pieces]
            hit: set[int] = set()
            for p, v in zip(pos.tolist(), vals.tolist()):
                q = int(np.searchsorted(ends, p, side="right"))
                if owner[q] >= 0 and owner[q] < CLEAN_START:
                    continue
                off = p - (int(ends[q - 1]) if q else 0)
                old = buf[q][off]
                buf[q][off] = (old + v) % 256  # a value other than the old one
                corrupted_bytes += 1
                hit.add(q)
                if off == len(buf[q]) - 1:  # the newline: this line runs into the next one
                    if q + 1 < len(pieces):
                        hit.add(q + 1)
                    else:
                        carry = True
            for q in hit:
                j = owner[q]
                if j >= 0:
                    damaged[j] = True
                    line = bytes(buf[q]).strip()
                    if b"\n" not in line and b"\r" not in line:
                        try:
                            parser.parse(line, 0.0)
                            parses[j] = True
                        except ValueError:
                            pass
            pieces = [bytes(b) for b in buf]
        data = b"".join(pieces)
        if not port.write_all(data):
            break
        bytes_out += len(data)
        written[i:due] = True
        i = due
    time.sleep(0.5)
    port.unplug()
    np.savez(args.faults, written=written, damaged=damaged, parses=parses,
             unplugs=np.array(unplugs, np.int64).reshape(-1, 2),
             counts=np.array([garbage, corrupted_bytes, bytes_out], np.int64),
             wall=np.array([time.perf_counter() - t0]))
    return 0


# -- clean runs and the re-warm window -----------------------------------------------------------


def push_all(be, sig: np.ndarray, start: int = 0, stop: int | None = None) -> np.ndarray:
    """Labels (int8, -1 none) of ``sig[start:stop]`` pushed in order through backend ``be`` then flushed."""
    stop = len(sig) if stop is None else stop
    out = np.full(stop - start, -1, np.int8)

    def take(d) -> None:
        if d.labels:
            out[d.start : d.start + len(d.labels)] = d.labels

    be.reset()
    for x in sig[start:stop]:
        take(be.push(x))
    take(be.flush())
    return out


def rewarm_window(be, sig: np.ndarray, clean: np.ndarray, every_s: float, limit: int | None = None) -> tuple[int, list[int]]:
    """Samples a restarted model needs until its labels agree with the clean run for good.

    The model is restarted (zero state) at a point every ``every_s`` s of the
    data and run for :data:`WARM_HORIZON_S`; the time to agreement is the
    index of the first sample after which every label equals the clean one
    (the horizon when it never converges).  Returns (the longest, all of them)."""
    h = int(WARM_HORIZON_S * RATE_HZ)
    step = max(1, int(every_s * RATE_HZ))
    points = list(range(step, len(sig) - h, step))
    if limit is not None:
        points = points[:limit]
    times = []
    for p in points:
        lab = push_all(be, sig, p, p + h)
        tail = h - int(be.label_lag)  # the last labels are the flush's
        diff = np.nonzero(lab[:tail] != clean[p : p + tail])[0]
        times.append(int(diff[-1]) + 1 if len(diff) else 0)
    return (max(times) if times else 0), times


# -- the soak -------------------------------------------------------------------------------------


class Rebooting(WrappedBackend):
    """A device backend that reboots its board (REBOOT request) at given session samples.

    Runs in the session's inference thread (no race on the link).  Each reboot
    is noted in the session's event log (``Session.notice``), which also gives
    its sample index."""

    def __init__(self, inner, every: int) -> None:
        super().__init__(inner)
        self.every = every
        self.session = None
        self._pushes = 0
        self.reboots = 0

    def push(self, x):
        self._pushes += 1
        if self.every and self._pushes % self.every == 0:
            from gaitedge.protocol import messages as M

            if self.session is not None:
                self.session.notice("soak: REBOOT sent to the board")
            self.inner.client.request(M.REBOOT)
            self.reboots += 1
        return self.inner.push(x)


def rss_mb() -> float:
    """Resident set size of this process, MB."""
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


@dataclass
class SoakResult:
    """Figures of one faulty stream (see the module docstring)."""

    backend: str
    samples: int
    written: int
    received: int
    labelled: int
    pushed: int
    filled: int
    dropped: int
    lost: int
    corrupt_lines: int
    skipped_lines: int
    gaps: int
    outliers: int
    restarts: int
    disconnects: int
    reconnects: int
    board_restarts: int
    damaged_lines: int
    damaged_parse: int
    garbage_lines: int
    corrupted_bytes: int
    bytes_out: int
    unplugs: int
    reboots: int
    never_written: int
    #: samples that cannot arrive: never written, or on a damaged line that no longer parses
    lost_injected: int
    lag: int
    window: int
    inflight: int
    compared: int
    wrong: int
    misplaced: int
    labelled_twice: int
    offset: int
    wall_s: float
    error: str
    slices: list[dict] = field(default_factory=list)
    #: the first wrong labels (line numbers) and the stream incidents next to each
    wrong_at: list[int] = field(default_factory=list)
    wrong_context: list[list] = field(default_factory=list)
    #: the first misplaced labels (line numbers) and the stream incidents next to the first
    misplaced_at: list[int] = field(default_factory=list)
    misplaced_context: list = field(default_factory=list)
    #: the board's own restart reports (device backend)
    incidents: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        from dataclasses import asdict

        return asdict(self)


def soak(
    run: Path,
    sig: np.ndarray,
    clean: np.ndarray,
    window: int,
    *,
    backend: str = "onnx",
    device_url: str | None = None,
    speed: float = 10.0,
    corrupt: float = 0.01,
    garbage: float = 0.002,
    unplug_every_s: float = 180.0,
    unplug_for_s: float = 3.0,
    reset_every_s: float = 600.0,
    seed: int = 0,
    slice_s: float = 300.0,
    core: int = -1,
    feeder_core: int = -1,
    tmp: Path | None = None,
    log: Callable[[str], None] = print,
) -> SoakResult:
    """Stream ``sig`` through a faulty pty into a session and compare its labels with ``clean``.

    ``window``: the re-warm window in samples (see the module docstring).
    ``backend``: ``onnx`` (``run``'s ``model_step.onnx``) or ``device`` (the
    board at ``device_url``, rebooted every ``reset_every_s`` s of stream)."""
    from gaitedge.stream import ColumnMap, DeviceBackend, Lane, OnnxBackend, PortSource, Session

    tmp = Path(tempfile.mkdtemp(prefix="gaitedge-soak-")) if tmp is None else tmp
    tmp.mkdir(parents=True, exist_ok=True)
    n = len(sig)
    sig_path = tmp / "signals.npy"
    np.save(sig_path, sig)
    link = tmp / "imu0"
    faults = tmp / "faults.npz"
    if backend == "device":
        inner = DeviceBackend(device_url, model=run)
        be: Any = Rebooting(inner, int(reset_every_s * RATE_HZ) if reset_every_s > 0 else 0)
        inflight = inner.max_pending + inner.window * inner.max_samples
    else:
        be = OnnxBackend(run)
        inflight = 0
    lag = int(be.label_lag)
    cmap = ColumnMap.default_line(be.channels, be.units)
    lane = Lane("foot", be, cmap)
    got = np.full(n, -1, np.int8)
    src = np.full(n, -1, np.int64)  # line number a sample's timestamp says (-1: no timestamp)
    extra = {"beyond": 0, "twice": 0}
    from collections import deque

    # stream incidents: the board reboot notices all, the others the last 5000 (context for diagnostics)
    notices: list[tuple[str, str, int, str]] = []
    recent: deque[tuple[str, str, int, str]] = deque(maxlen=5000)
    session_ref: list[Any] = []

    def on_labels(k: int, start: int, labels) -> None:
        s = session_ref[0]
        for j, lab in enumerate(labels):
            g = start + j
            if not 0 <= g < n:
                extra["beyond"] += 1
                continue
            if got[g] >= 0:
                extra["twice"] += 1
            got[g] = lab
            t, _ = s.sample_time(g)
            if not math.isnan(t):
                src[g] = int(round(t * RATE_HZ))

    def on_record(r) -> None:
        if r.kind == "notice":
            notices.append((r.kind, r.foot, int(r.sample), r.detail))
        elif r.kind in ("gap", "restart", "disconnect", "reconnect"):
            recent.append((r.kind, r.foot, int(r.sample), r.detail))

    proc = subprocess.Popen(
        [sys.executable, __file__, "--feeder", "--signals", str(sig_path), "--link", str(link), "--faults",
         str(faults), "--speed", str(speed), "--corrupt", str(corrupt), "--garbage", str(garbage),
         "--unplug-every", str(unplug_every_s), "--unplug-for", str(unplug_for_s), "--seed", str(seed),
         "--core", str(feeder_core)],
    )
    deadline = time.monotonic() + 30
    while not link.exists():
        if proc.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError("the feeder did not create its port")
        time.sleep(0.01)
    source = PortSource.text_lines(str(link), cmap)
    session = Session(source, [lane], on_labels=on_labels, on_record=on_record, backoff_s=(0.02, 0.5))
    session_ref.append(session)
    if isinstance(be, Rebooting):
        be.session = session
    slices: list[dict] = []
    slice_wall = slice_s / speed
    session.start()
    t0 = time.perf_counter()
    last_count = 0
    next_slice = t0 + slice_wall
    rss0 = rss_mb()
    slices.append({"stream_s": 0.0, "rss_mb": rss0})

    def close_slice(final: bool = False) -> None:
        nonlocal last_count
        c = session.latency.count
        v = session.latency.values(last=c - last_count) * 1e3 if c > last_count else np.zeros(0)
        last_count = c
        st = session.stats
        row = {
            "stream_s": round((time.perf_counter() - t0) * speed, 1),
            "rss_mb": round(rss_mb(), 1),
            "n": int(len(v)),
            "p50_ms": float(np.percentile(v, 50)) if len(v) else math.nan,
            "p99_ms": float(np.percentile(v, 99)) if len(v) else math.nan,
            "max_ms": float(v.max()) if len(v) else math.nan,
            "received": st.received, "dropped": st.dropped,
        }
        slices.append(row)
        log(f"  {row['stream_s']:7.0f} s stream: RSS {row['rss_mb']:.1f} MB, latency p50 {row['p50_ms']:.2f} "
            f"p99 {row['p99_ms']:.2f} max {row['max_ms']:.1f} ms, {st.received} received, {st.gaps} gaps, "
            f"{st.restarts} restarts, {st.reconnects} reconnects")

    while proc.poll() is None:
        time.sleep(0.05)
        if time.perf_counter() >= next_slice:
            close_slice()
            next_slice += slice_wall
        if session.done:
            break
    fed = proc.wait(timeout=60) == 0
    # let the session take what is still in flight, then end it
    quiet = time.perf_counter()
    pushed = -1
    while time.perf_counter() - quiet < 1.0 and not session.done:
        if session.stats.pushed != pushed:
            pushed, quiet = session.stats.pushed, time.perf_counter()
        time.sleep(0.1)
    session.stop()
    if not session.wait(60):
        raise RuntimeError("the session did not end within 60 s of stop() (a hang)")
    wall = time.perf_counter() - t0
    close_slice(final=True)
    summ = session.summary()
    be.close()
    if not fed:
        raise RuntimeError(f"the feeder failed: exit {proc.returncode}; session error {summ.error!r}")
    f = np.load(faults)
    written, damaged, parses, unpl = f["written"], f["damaged"], f["parses"], f["unplugs"]
    garbage_n, cbytes, bytes_out = (int(x) for x in f["counts"])
    # the session's sample 0 is the first line it received
    offset = int(src[0]) if src[0] >= 0 else 0
    if offset:
        got = np.concatenate([np.full(offset, -1, np.int8), got[: n - offset]])
        src = np.concatenate([np.full(offset, -1, np.int64), src[: n - offset] ])
    idx = np.arange(n)
    has_t = src >= 0
    misplaced_mask = has_t & (src != idx) & (got >= 0)
    # a timestamp damaged in transit may say anything
    misplaced_mask &= ~damaged[np.clip(src, 0, n - 1)] & ~damaged
    # exclusion windows: every damaged or never-written line, every unplug, every reboot
    excl = np.zeros(n + 1, np.int64)

    def exclude(a: int, b: int, before: int) -> None:
        lo, hi = max(0, a - lag - before), min(n, b + window)
        if lo < hi:
            excl[lo] += 1
            excl[hi] -= 1

    bad = damaged | ~written
    bad[:offset] = False
    edges = np.diff(np.concatenate([[0], bad.astype(np.int8), [0]]))
    for a, b in zip(np.nonzero(edges == 1)[0], np.nonzero(edges == -1)[0]):
        exclude(int(a), int(b), 0)
    records = sorted(notices + list(recent), key=lambda x: x[2])
    reboots = [g + offset for kind, _, g, d in notices if "REBOOT" in d]
    for g in reboots:
        exclude(g, g + 1, inflight)
    # samples the session dropped (its buffer full) are its own loss, not an injected fault: not excluded
    excluded = np.cumsum(excl[:n]) > 0
    comparable = (got >= 0) & ~excluded & (idx >= offset)
    wrong_mask = comparable & (got != clean)
    board_restarts = getattr(getattr(be, "inner", be), "restarts", 0)
    return SoakResult(
        backend=backend, samples=n, written=int(written.sum()), received=summ.samples, labelled=int((got >= 0).sum()),
        pushed=summ.pushed, filled=summ.filled, dropped=summ.dropped, lost=summ.lost, corrupt_lines=summ.corrupt,
        skipped_lines=summ.skipped, gaps=summ.gaps, outliers=summ.outliers, restarts=summ.restarts, disconnects=summ.disconnects,
        reconnects=summ.reconnects, board_restarts=int(board_restarts), damaged_lines=int(damaged.sum()),
        damaged_parse=int(parses.sum()), garbage_lines=garbage_n, corrupted_bytes=cbytes, bytes_out=bytes_out,
        unplugs=len(unpl), reboots=len(reboots), never_written=int((~written).sum()),
        lost_injected=int((~written[offset:]).sum() + (damaged & ~parses)[offset:].sum()), lag=lag, window=window,
        inflight=inflight, compared=int(comparable.sum()), wrong=int(wrong_mask.sum()),
        misplaced=int(misplaced_mask.sum()) + extra["beyond"], labelled_twice=extra["twice"], offset=offset,
        wall_s=wall, error=summ.error, slices=slices, wrong_at=np.nonzero(wrong_mask)[0][:50].tolist(),
        wrong_context=[[(k, f, g + offset, d) for k, f, g, d in records if abs(g + offset - w) < 2000]
                       for w in np.nonzero(wrong_mask)[0][:5].tolist()],
        incidents=list(getattr(getattr(be, "inner", be), "incidents", []))[:100],
        misplaced_at=np.nonzero(misplaced_mask)[0][:50].tolist(),
        misplaced_context=[(k, f, g + offset, d) for k, f, g, d in records
                           if misplaced_mask.any() and abs(g + offset - int(np.argmax(misplaced_mask))) < 300],
    )


# -- the command ----------------------------------------------------------------------------------


def _row(r: SoakResult, speed: float) -> list[str]:
    sl = [s for s in r.slices[1:] if s.get("n")]
    p99 = ", ".join(f"{s['p99_ms']:.1f}" for s in sl)
    slice_s = (r.slices[2]["stream_s"] - r.slices[1]["stream_s"]) if len(r.slices) > 2 else 0
    rss = [s["rss_mb"] for s in r.slices]
    return [
        f"**{r.backend}**: {r.written:,} lines written of {r.samples:,} ({r.samples / RATE_HZ / 3600:.2f} h at "
        f"{speed:g}x, {r.wall_s:.0f} s wall), {r.received:,} received, {r.labelled:,} labelled",
        f"- injected: {r.corrupted_bytes:,} corrupted bytes ({100 * r.corrupted_bytes / max(1, r.bytes_out):.2f} % "
        f"of {r.bytes_out:,}) damaging {r.damaged_lines:,} lines ({r.damaged_parse:,} of them still parse as a "
        f"sample), {r.garbage_lines:,} garbage lines, {r.unplugs} unplugs ({r.never_written:,} samples never "
        f"written)" + (f", {r.reboots} board reboots" if r.backend == "device" else "")
        + f": {r.lost_injected:,} samples cannot arrive",
        f"- detected: {r.corrupt_lines:,} corrupt lines (+{r.skipped_lines:,} skipped), {r.gaps:,} gaps "
        f"({r.lost:,} samples missing, {r.filled:,} filled), {r.outliers:,} samples dropped for an off-grid "
        f"timestamp, {r.restarts:,} model restarts, {r.disconnects} "
        f"disconnects / {r.reconnects} reconnects, {r.dropped:,} dropped by the session"
        + (f", {r.board_restarts} board restarts" if r.backend == "device" else ""),
        f"- **wrong labels accepted: {r.wrong}** of {r.compared:,} labels compared outside the exclusion windows "
        f"({100 * r.compared / max(1, r.labelled):.1f} % of the labels; window = {r.lag} samples before, "
        f"{r.window} after each fault" + (f", plus {r.inflight} in flight before a reboot" if r.inflight else "")
        + f"); misplaced labels (sample off its line): {r.misplaced}; labelled twice: {r.labelled_twice}",
        f"- RSS {rss[0]:.1f} MB at start, {rss[-1]:.1f} MB at the end (max {max(rss):.1f})",
        f"- latency sample -> label p99 per {slice_s:.0f} s of stream (ms): {p99}",
    ] + ([f"- session error: {r.error}"] if r.error else [])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--hours", type=float, default=1.0, help="hours of gait to stream")
    ap.add_argument("--speed", type=float, default=10.0, help="times real time")
    ap.add_argument("--backend", default="onnx", choices=["onnx", "device", "both"])
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--corrupt", type=float, default=0.01,
                    help="fraction of bytes corrupted (0.01: more than half the lines damaged)")
    ap.add_argument("--garbage", type=float, default=0.002, help="probability per line of a garbage line before it")
    ap.add_argument("--unplug-every", type=float, default=180.0, help="s of stream between unplugs (0: none)")
    ap.add_argument("--unplug-for", type=float, default=3.0, help="s of stream the port is gone")
    ap.add_argument("--reset-every", type=float, default=600.0, help="s of stream between board reboots (device)")
    ap.add_argument("--slice", type=float, default=300.0, help="s of stream per latency / RSS slice")
    ap.add_argument("--warm-every", type=float, default=10.0, help="s of data between re-warm measurement points")
    ap.add_argument("--epochs", type=int, default=10, help="training epochs of the small model")
    ap.add_argument("--cache", default=str(ROOT / "bench_out" / "soak"), help="folder for the model and firmware")
    ap.add_argument("--core", type=int, default=0, help="core for the streaming process")
    ap.add_argument("--json", help="write the figures here")
    ap.add_argument("--write", action="store_true", help="put the section into BENCHMARKS.md")
    ap.add_argument("--feeder", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--signals", help=argparse.SUPPRESS)
    ap.add_argument("--link", help=argparse.SUPPRESS)
    ap.add_argument("--faults", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.feeder:
        return feeder(args)

    cores = sorted(os.sched_getaffinity(0))
    core = args.core if args.core in cores else cores[0]
    feeder_core = next((c for c in cores if c != core), core)
    backends = ["onnx", "device"] if args.backend == "both" else [args.backend]
    started = datetime.now(timezone.utc)
    load0 = load_avg()
    cache = Path(args.cache)
    cache.mkdir(parents=True, exist_ok=True)
    run = make_model(cache, "device" in backends, epochs=args.epochs)
    sig, channels, units, source = load_gait(args.hours)
    print(f"data: {source}; {len(sig):,} samples ({len(sig) / RATE_HZ / 3600:.2f} h)")
    os.sched_setaffinity(0, {core})
    results: list[SoakResult] = []
    windows: dict[str, dict] = {}
    for name in backends:
        emu = None
        if name == "device":
            from gaitedge.device import Emulator
            from gaitedge.stream import DeviceBackend

            emu = Emulator(cache / "host" / "gaitedge-fw-host")
            emu.start()
            os.sched_setaffinity(emu.proc.pid, set(cores))
            ref = DeviceBackend(emu.url, model=run, wait=False)
        else:
            from gaitedge.stream import OnnxBackend

            ref = OnnxBackend(run)
        try:
            t = time.perf_counter()
            clean = push_all(ref, sig)
            t_clean = time.perf_counter() - t
            t = time.perf_counter()
            w, times = rewarm_window(ref, sig, clean, args.warm_every)
            window = int(math.ceil((w + 1) / (RATE_HZ / 2)) * (RATE_HZ / 2))
            windows[name] = {"max": w, "window": window, "points": len(times),
                             "p50": float(np.median(times)) if times else 0.0,
                             "p99": float(np.percentile(times, 99)) if times else 0.0}
            print(f"{name}: clean run {t_clean:.0f} s; re-warm after a restart at {len(times)} points: median "
                  f"{windows[name]['p50'] / RATE_HZ:.2f} s, longest {w / RATE_HZ:.2f} s -> window "
                  f"{window / RATE_HZ:.1f} s ({time.perf_counter() - t:.0f} s)")
            if name == "device":
                ref.close()
                ref = None
            print(f"{name}: streaming {len(sig) / RATE_HZ / 3600:.2f} h at {args.speed:g}x with faults ...")
            r = soak(run, sig, clean, window, backend=name, device_url=emu.url if emu else None, speed=args.speed,
                     corrupt=args.corrupt, garbage=args.garbage, unplug_every_s=args.unplug_every,
                     unplug_for_s=args.unplug_for, reset_every_s=args.reset_every, seed=args.seed,
                     slice_s=args.slice, core=core, feeder_core=feeder_core)
            results.append(r)
            print("\n".join(_row(r, args.speed)))
        finally:
            if ref is not None and name == "device":
                ref.close()
            if emu is not None:
                emu.stop()
    load1 = load_avg()
    import onnxruntime as ort

    cmd = (f"python benchmarks/bench_soak.py --hours {args.hours:g} --speed {args.speed:g} --backend {args.backend} "
           f"--seed {args.seed} --corrupt {args.corrupt:g}")
    body = [
        f"Command: `{cmd}`",
        "",
        f"- machine: {cpu_model()}, {os.cpu_count()} logical cores shared with other jobs; session pinned to core "
        f"{core}, feeder on core {feeder_core}; load average {load0} before, {load1} after",
        f"- date: {started.strftime('%Y-%m-%d %H:%M UTC')}; Python {platform.python_version()}, onnxruntime "
        f"{ort.__version__}, numpy {np.__version__}",
        f"- data: {source}",
        f"- model: GRU-16 on one foot (6 channels), {args.epochs} epochs on IPOL subjects 1-11 (accuracy irrelevant "
        "here), 15 Hz low-pass, 30 ms output delay, debounce; device: the same model quantized, host build "
        "`gaitedge-fw-host` over TCP",
        f"- faults: {100 * args.corrupt:g} % of bytes replaced by random values; a garbage line (text, wrong "
        f"field count, or 5-9 kB over-long) before {100 * args.garbage:g} % of lines; unplug for "
        f"{args.unplug_for:g} s every {args.unplug_every:g} s of stream; device: REBOOT every "
        f"{args.reset_every:g} s of stream",
        "- re-warm window (labels excluded after each fault): "
        + "; ".join(f"{k}: restarted at {v['points']} points, longest {v['max'] / RATE_HZ:.2f} s to agree with "
                    f"the clean run for good (median {v['p50'] / RATE_HZ:.2f} s) -> {v['window'] / RATE_HZ:.1f} s"
                    for k, v in windows.items()),
        "",
    ]
    for r in results:
        body += _row(r, args.speed) + [""]
    text = "\n".join(body)
    print()
    print(SECTION)
    print()
    print(text)
    if args.json:
        Path(args.json).write_text(json.dumps({"args": vars(args), "windows": windows,
                                               "results": [r.to_dict() for r in results]}, indent=1, default=float))
    if args.write:
        write_section(ROOT / "BENCHMARKS.md", SECTION, text)
    return 0 if all(r.wrong == 0 and r.misplaced == 0 and not r.error for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
