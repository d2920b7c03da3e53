"""Lab Streaming Layer end to end: source timestamp -> event marker pushed, at 100 Hz and 1,000 Hz, one core.

For each rate a small GRU is trained on synthetic gait at that rate (so that it
finds heel strikes and toe offs) and exported to ONNX.  A publisher process
(``gaitedge imu-sim --listen lsl:NAME --loop``, real time, pinned to another
core when there is one) serves synthetic walking resampled to the rate as an
LSL IMU stream; this process, pinned to one core, runs the session
(:class:`~gaitedge.stream.lsl.LslSource` -> ONNX backend) with
:class:`~gaitedge.stream.lsl.LslOutlets` publishing the phase and the event
markers, and a plain pylsl inlet subscribed to both, as a recorder would be.

Figures per rate:

* **event marker**: LSL time at which each gait event's marker was pushed
  minus its timestamp (the source's LSL timestamp of the sample where the
  event happened, clock offset applied).  This includes the model's own lag
  (output delay + debounce, given separately) and the LSL transport.
* **phase sample**: the same for every row of the phase stream (decided
  label pushed minus its sample's source timestamp), except the rows the
  final flush decides at the end of the run.

Samples of the first second of each run are left out of these two figures:
they carry the backlog of connecting (the inlet settles its clock offset
while the publisher has already started).
* **sample -> label (in-process)**: the session's own figure, from the sample
  arriving from liblsl to every lane having classified it.

Usage::

    python benchmarks/bench_lsl.py [--rate 100 --rate 1000] [--seconds 30] [--hidden 32]

prints a Markdown section for BENCHMARKS.md and writes
``benchmarks/results/bench_lsl.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from benchlib import cpu_model

ROOT = Path(__file__).resolve().parents[1]


def make_run(rate: float, hidden: int, folder: Path) -> Path:
    """A GRU trained briefly on synthetic gait at ``rate`` Hz, exported to ONNX; returns the run folder."""
    import torch

    from gaitedge.config import Config
    from gaitedge.export import export_onnx
    from gaitedge.training.train import train

    torch.set_num_threads(1)
    cfg = Config()
    cfg.data.train = "synthetic?n=3&trials=1"
    cfg.data.rate_hz = rate
    cfg.data.lowpass_hz = 15.0
    cfg.model.hidden = hidden
    cfg.train.epochs = 3
    cfg.train.steps_per_epoch = 15
    cfg.train.batch_size = 8
    cfg.train.window_s = 2.0
    cfg.train.lr = 0.02
    cfg.train.threads = 1
    cfg.events.delay_ms = 20.0
    tm, _, out = train(cfg, out_dir=folder, progress=False, log=lambda *a: None)
    export_onnx(tm, out)
    return out


def make_walk(rate: float, path: Path) -> None:
    """Synthetic walking of a held-out subject (both feet' channels) resampled to ``rate``, as CSV."""
    from gaitedge.data import save_csv
    from gaitedge.data.preprocess import resample
    from gaitedge.data.spec import load_spec

    rec = load_spec("synthetic?n=6&trials=1&subjects=6", other_foot=True)[0]
    save_csv(resample(rec, rate) if rate != rec.rate_hz else rec, path)


def measure(run: Path, walk: Path, rate: float, seconds: float, core: int, pub_core: int,
            warmup_s: float = 1.0) -> dict:
    """One rate: publisher process -> LSL -> session + outlets here; returns the figures.

    Latencies of the samples of the first ``warmup_s`` s are left out (the inlet's
    backlog from connecting, settling its clock offset and starting the session)."""
    import pylsl

    from gaitedge.stream import OnnxBackend, Session
    from gaitedge.stream.lsl import LslOutlets, LslSource, import_pylsl, lsl_lanes

    import_pylsl()
    name = f"bench-imu-{uuid.uuid4().hex[:8]}"
    out_name = f"bench-gait-{uuid.uuid4().hex[:8]}"
    pub = subprocess.Popen(
        ["taskset", "-c", str(pub_core), sys.executable, "-m", "gaitedge", "imu-sim", "--replay", str(walk),
         "--listen", f"lsl:{name}", "--loop"],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )
    try:
        pub.stdout.readline()
        os.sched_setaffinity(0, {core})
        be = OnnxBackend(run)
        # outlets and the recorder first: the publisher's clock starts when the source's inlet connects
        outlets = LslOutlets(out_name, [("foot", be)], lsl_times=True)
        phase_lat: list[float] = []
        event_lat: list[float] = []
        clock = pylsl.local_clock
        push_phase, push_record = outlets.on_decisions, outlets.on_record
        warm = int(round(warmup_s * rate))

        def on_decisions(lane, start, d):
            push_phase(lane, start, d)
            if not session._stop.is_set():  # not the labels the final flush decides at once
                now = clock()
                phase_lat.extend(now - outlets.stamp(start + j) for j in range(len(d.labels)) if start + j >= warm)

        def on_record(rec):
            push_record(rec)
            if rec.kind in ("heel_strike", "toe_off") and rec.sample >= warm:
                event_lat.append(outlets.latencies[-1])

        recorder = [pylsl.StreamInlet(pylsl.resolve_bypred(f"name='{n}'", 1, 10.0)[0]) for n in outlets.names]
        for inlet in recorder:
            inlet.open_stream(5.0)
        source = LslSource([f"name={name}"], rate, timeout=20.0)
        lanes = lsl_lanes(source, [("foot", be)], [], None)
        session = Session(source, lanes, duration_s=seconds)
        outlets.attach(session)
        session.on_decisions = on_decisions
        session.on_record = on_record
        cpu0 = time.process_time()
        summary = session.run()
        cpu = time.process_time() - cpu0
        got = [len(inlet.pull_chunk(timeout=0.5, max_samples=1 << 20)[1]) for inlet in recorder]
        outlets.close(0.0)
    finally:
        pub.terminate()
        pub.wait(10)
        os.sched_setaffinity(0, set(range(os.cpu_count() or 1)))
    ev = np.asarray(event_lat) * 1e3
    ph = np.asarray(phase_lat) * 1e3

    def pct(a: np.ndarray, q: float) -> float:
        return float(np.percentile(a, q)) if len(a) else float("nan")

    return {
        "rate_hz": rate,
        "seconds": seconds,
        "samples": summary.samples,
        "lost": summary.lost,
        "dropped": summary.dropped,
        "events": int(len(ev)),
        "event_p50_ms": pct(ev, 50),
        "event_p99_ms": pct(ev, 99),
        "event_max_ms": float(ev.max()) if len(ev) else float("nan"),
        "phase_p50_ms": pct(ph, 50),
        "phase_p99_ms": pct(ph, 99),
        "label_p50_ms": summary.latency_p50_ms,
        "label_p99_ms": summary.latency_p99_ms,
        "model_lag_ms": summary.model_lag_ms,
        "cpu_frac": cpu / max(summary.duration_s, 1e-9),
        "recorder_rows": got,
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rate", type=float, action="append", help="sample rate(s), Hz (default 100 and 1000)")
    ap.add_argument("--seconds", type=float, default=30.0, help="length of each run, s")
    ap.add_argument("--hidden", type=int, default=32, help="GRU hidden units")
    ap.add_argument("--core", type=int, default=0, help="core for the streaming process")
    ap.add_argument("--json", default=str(ROOT / "benchmarks" / "results" / "bench_lsl.json"))
    args = ap.parse_args(argv)
    rates = args.rate or [100.0, 1000.0]
    cores = sorted(os.sched_getaffinity(0))
    core = args.core if args.core in cores else cores[0]
    pub_core = next((c for c in cores if c != core), core)
    load0 = os.getloadavg()[0]
    results = []
    with tempfile.TemporaryDirectory() as tmpd:
        tmp = Path(tmpd)
        for rate in rates:
            run = make_run(rate, args.hidden, tmp / f"run-{rate:g}")
            walk = tmp / f"walk-{rate:g}.csv"
            make_walk(rate, walk)
            r = measure(run, walk, rate, args.seconds, core, pub_core)
            results.append(r)
            print(f"{rate:g} Hz: event marker p50 {r['event_p50_ms']:.2f} ms p99 {r['event_p99_ms']:.2f} ms "
                  f"({r['events']} events, model lag {r['model_lag_ms']:.0f} ms); phase p50 {r['phase_p50_ms']:.2f} "
                  f"p99 {r['phase_p99_ms']:.2f} ms; sample -> label p50 {r['label_p50_ms']:.3f} p99 "
                  f"{r['label_p99_ms']:.3f} ms; {r['samples']} samples, lost {r['lost']}, dropped {r['dropped']}, "
                  f"CPU {100 * r['cpu_frac']:.0f}%", flush=True)
    load1 = os.getloadavg()[0]
    import onnxruntime as ort
    import pylsl

    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps({"results": results, "date": datetime.now(timezone.utc).isoformat()},
                                          indent=1) + "\n")
    cmd = "python benchmarks/bench_lsl.py" + "".join(f" --rate {r:g}" for r in rates) + f" --seconds {args.seconds:g}"
    lines = [
        "## Lab Streaming Layer",
        "",
        f"Command: `{cmd}`",
        "",
        f"- machine: {cpu_model()}, {len(cores)} logical cores; streaming process pinned to core {core}, publisher "
        f"(`gaitedge imu-sim --listen lsl:NAME --loop`, real time) on core {pub_core}; 1-min load average "
        f"{load0:.1f} before, {load1:.1f} after",
        f"- date: {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC",
        f"- software: Python {platform.python_version()}, pylsl {pylsl.__version__} (liblsl "
        f"{pylsl.library_version()}), onnxruntime {ort.__version__}, numpy {np.__version__}; loopback",
        f"- model: GRU-{args.hidden} trained briefly on synthetic gait at each rate, 12 inputs, 3 classes, 15 Hz "
        "low-pass, 20 ms output delay; ONNX backend, 1 thread; a plain pylsl inlet subscribed to the phase and "
        "event streams throughout",
        "- event marker: LSL time of the push minus the marker's timestamp (the source timestamp of the event's "
        "sample); it contains the model lag (output delay + debounce), shown separately; phase row: the same per "
        "row of the phase stream; the first second of each run (connecting) is left out of both",
        "",
        "| rate | samples | lost | dropped | events | event marker p50 / p99 / max (ms) | model lag (ms) "
        "| phase row p50 / p99 (ms) | sample -> label in-process p50 / p99 (ms) | CPU of its core |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        lines.append(
            f"| {r['rate_hz']:,.0f} Hz | {r['samples']:,} | {r['lost']} | {r['dropped']} | {r['events']} | "
            f"{r['event_p50_ms']:.2f} / {r['event_p99_ms']:.2f} / {r['event_max_ms']:.2f} | {r['model_lag_ms']:.0f} | "
            f"{r['phase_p50_ms']:.2f} / {r['phase_p99_ms']:.2f} | {r['label_p50_ms']:.3f} / {r['label_p99_ms']:.3f} | "
            f"{100 * r['cpu_frac']:.0f}% |"
        )
    print("\n" + "\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
