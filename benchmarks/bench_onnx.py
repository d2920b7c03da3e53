"""Per-step latency of the ONNX step model versus torch eager, single thread.

For LSTM-64 and GRU-64 (12 inputs, 3 classes, one layer; untrained weights:
latency does not depend on the weight values) this measures one streaming step
with batch 1:

* ``torch eager``: ``GaitModel.step`` under ``torch.inference_mode`` with
  ``torch.set_num_threads(1)``, the state passed back each call;
* ``ORT run``: ``InferenceSession.run`` on ``model_step.onnx`` with a feed dict,
  the state arrays passed back each call;
* ``ORT IOBinding``: ``run_with_iobinding`` on preallocated input/output buffers,
  two bindings used alternately so the state never moves (what the runtime does);
* ``push()``: the whole ``OnnxGaitClassifier.push`` (input checks, 2nd-order
  causal low-pass, normalization, step, softmax, debounce, events).

ONNX Runtime sessions run with ``intra_op_num_threads=1``,
``inter_op_num_threads=1``, all graph optimizations and no CPU memory arena
(the runtime's settings).  The engines are measured in interleaved rounds so
that load from other processes affects them alike; latencies are per call
(``time.perf_counter_ns``), throughput is calls per second of wall time.

Usage::

    python benchmarks/bench_onnx.py [--steps 20000] [--rounds 5] [--no-write]

writes the section ``## ONNX Runtime step latency`` of BENCHMARKS.md (the rest
of the file is kept).
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

import numpy as np
import onnxruntime as ort
import torch

from benchlib import cpu_model, write_section
from gaitedge.checkpoint import TrainedModel
from gaitedge.data.preprocess import Normalizer
from gaitedge.export import export_onnx
from gaitedge.models import build_model
from gaitedge.runtime import OnnxGaitClassifier

ROOT = Path(__file__).resolve().parents[1]
SECTION = "## ONNX Runtime step latency"
CHANNELS = [f"{s}{a}_{x}" for s in ("", "other_") for a in ("acc", "gyr") for x in "xyz"]
UNITS = ["m/s^2", "m/s^2", "m/s^2", "rad/s", "rad/s", "rad/s"] * 2
TARGET_P50_US = 30.0
TARGET_SPEEDUP = 10.0


def make_model(family: str, hidden: int = 64, seed: int = 0) -> TrainedModel:
    """An untrained 12-channel, 3-class model with a 20 Hz 2nd-order low-pass and 40 ms debounce."""
    torch.manual_seed(seed)
    model = build_model(family, len(CHANNELS), 3, hidden=hidden).eval()
    return TrainedModel(
        model=model,
        classes=("rest", "stance", "swing"),
        channels=list(CHANNELS),
        units=list(UNITS),
        rate_hz=100.0,
        normalizer=Normalizer(np.zeros(len(CHANNELS), np.float32), np.ones(len(CHANNELS), np.float32)),
        lowpass_hz=20.0,
        filter_order=2,
        min_run=4,
        tolerance_ms=50.0,
    )


def single_thread_session(path: Path) -> ort.InferenceSession:
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    so.enable_cpu_mem_arena = False
    return ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])


def engines(tm: TrainedModel, step_path: Path, xs: np.ndarray) -> dict[str, Callable[[int], None]]:
    """name -> call(i) doing one step on input row ``i % len(xs)``."""
    n = len(xs)
    model = tm.model
    xt = torch.from_numpy(xs)
    tstate = [model.init_state(1)]

    def torch_step(i: int) -> None:
        with torch.inference_mode():
            _, tstate[0] = model.step(xt[i % n][None], tstate[0])

    sess = single_thread_session(step_path)
    in_names = [i.name for i in sess.get_inputs()]
    out_names = [o.name for o in sess.get_outputs()]
    feeds = {name: s.numpy() for name, s in zip(in_names[1:], model.init_state(1))}
    rows = [xs[i][None].copy() for i in range(n)]

    def ort_run(i: int) -> None:
        feeds["x"] = rows[i % n]
        out = sess.run(out_names, feeds)
        for name, v in zip(in_names[1:], out[1:]):
            feeds[name] = v

    sess2 = single_thread_session(step_path)
    xbuf = np.zeros((1, xs.shape[1]), np.float32)
    logits = np.zeros((1, len(tm.classes)), np.float32)
    states = [[s.numpy().copy() for s in model.init_state(1)] for _ in range(2)]
    keep = []
    bindings = []
    ov = ort.OrtValue.ortvalue_from_numpy
    for j in range(2):
        b = sess2.io_binding()
        vals = [ov(xbuf)] + [ov(a) for a in states[j]]
        outs = [ov(logits)] + [ov(a) for a in states[1 - j]]
        for name, v in zip(in_names, vals):
            b.bind_ortvalue_input(name, v)
        for name, v in zip(out_names, outs):
            b.bind_ortvalue_output(name, v)
        keep += vals + outs
        bindings.append(b)

    def ort_iobinding(i: int) -> None:
        xbuf[0] = xs[i % n]
        sess2.run_with_iobinding(bindings[i & 1])

    clf = OnnxGaitClassifier(step_path, threads=1)
    raw = [xs[i] * 2.0 + 9.81 * (np.arange(xs.shape[1]) == 2) for i in range(n)]

    def push(i: int) -> None:
        clf.push(raw[i % n])

    ort_iobinding.keep = keep  # type: ignore[attr-defined]
    return {"torch eager": torch_step, "ORT run": ort_run, "ORT IOBinding": ort_iobinding, "push()": push}


def call_floor(channels: int) -> Callable[[int], None]:
    """IOBinding call of a one-node Identity graph: ONNX Runtime's fixed cost per step."""
    from onnx import TensorProto, helper

    g = helper.make_graph(
        [helper.make_node("Identity", ["x"], ["y"])],
        "identity",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, channels])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, channels])],
    )
    mp = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "identity.onnx"
        path.write_bytes(mp.SerializeToString())
        sess = single_thread_session(path)
    x = np.zeros((1, channels), np.float32)
    y = np.zeros((1, channels), np.float32)
    b = sess.io_binding()
    vx, vy = ort.OrtValue.ortvalue_from_numpy(x), ort.OrtValue.ortvalue_from_numpy(y)
    b.bind_ortvalue_input("x", vx)
    b.bind_ortvalue_output("y", vy)

    def run(i: int) -> None:
        sess.run_with_iobinding(b)

    run.keep = (vx, vy, x, y)  # type: ignore[attr-defined]
    return run


def measure(calls: dict[str, Callable[[int], None]], steps: int, rounds: int, warmup: int) -> dict[str, dict]:
    """Interleaved rounds; per-call latencies (µs) and throughput (calls/s)."""
    lat: dict[str, list[np.ndarray]] = {k: [] for k in calls}
    wall: dict[str, float] = {k: 0.0 for k in calls}
    per_round = max(1, steps // rounds)
    pc = time.perf_counter_ns
    for fn in calls.values():
        for i in range(warmup):
            fn(i)
    for _ in range(rounds):
        for name, fn in calls.items():
            ts = np.empty(per_round, np.int64)
            t_start = pc()
            for i in range(per_round):
                t0 = pc()
                fn(i)
                ts[i] = pc() - t0
            wall[name] += (pc() - t_start) / 1e9
            lat[name].append(ts)
    out = {}
    for name in calls:
        a = np.concatenate(lat[name]) / 1e3
        out[name] = {
            "p50": float(np.percentile(a, 50)),
            "p99": float(np.percentile(a, 99)),
            "per_s": len(a) / wall[name],
        }
    return out


def table(results: dict[str, dict[str, dict]]) -> str:
    lines = [
        "| model | engine | p50 (µs) | p99 (µs) | steps/s | p50 speed-up vs torch |",
        "|---|---|---:|---:|---:|---:|",
    ]
    for model, res in results.items():
        base = res["torch eager"]["p50"]
        for eng, r in res.items():
            lines.append(
                f"| {model} | {eng} | {r['p50']:.1f} | {r['p99']:.1f} | {r['per_s']:,.0f} | {base / r['p50']:.1f}x |"
            )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--steps", type=int, default=20000, help="timed calls per engine and model")
    ap.add_argument("--rounds", type=int, default=5, help="interleaved rounds")
    ap.add_argument("--warmup", type=int, default=1000, help="untimed calls per engine first")
    ap.add_argument("--out", default=str(ROOT / "BENCHMARKS.md"), help="Markdown file to update")
    ap.add_argument("--no-write", action="store_true", help="print only")
    args = ap.parse_args(argv)

    torch.set_num_threads(1)
    torch.set_num_interop_threads(1)
    rng = np.random.default_rng(0)
    xs = rng.standard_normal((1000, len(CHANNELS))).astype(np.float32)
    results: dict[str, dict[str, dict]] = {}
    load0 = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as tmp:
        for family in ("lstm", "gru"):
            tm = make_model(family)
            paths = export_onnx(tm, Path(tmp) / family)
            res = measure(engines(tm, paths.step, xs), args.steps, args.rounds, args.warmup)
            results[f"{family.upper()}-64"] = res
            print(f"{family.upper()}-64:")
            for eng, r in res.items():
                print(f"  {eng:14s} p50 {r['p50']:7.1f} µs  p99 {r['p99']:7.1f} µs  {r['per_s']:10,.0f} steps/s")
    floor = measure({"floor": call_floor(len(CHANNELS))}, args.steps, args.rounds, args.warmup)["floor"]
    print(f"ORT call floor (Identity graph, IOBinding): p50 {floor['p50']:.1f} µs")
    load1 = os.getloadavg()[0]

    verdict = []
    for model, res in results.items():
        p50 = res["ORT IOBinding"]["p50"]
        speed = res["torch eager"]["p50"] / p50
        ok = p50 <= TARGET_P50_US and speed >= TARGET_SPEEDUP
        verdict.append(
            f"- {model}: ONNX step p50 {p50:.1f} µs (target <= {TARGET_P50_US:.0f} µs), "
            f"{speed:.1f}x torch eager (target >= {TARGET_SPEEDUP:.0f}x): {'met' if ok else 'NOT met'}"
        )
    body = "\n".join(
        [
            f"Command: `python benchmarks/bench_onnx.py --steps {args.steps} --rounds {args.rounds}`",
            "",
            f"- machine: {cpu_model()}, {os.cpu_count()} logical cores; "
            f"1-min load average {load0:.1f} before, {load1:.1f} after (other processes were running)",
            f"- date: {datetime.now(timezone.utc).strftime('%Y-%m-%d %H:%M UTC')}",
            f"- software: Python {platform.python_version()}, torch {torch.__version__}, "
            f"onnxruntime {ort.__version__}, numpy {np.__version__}",
            "- models: 1 layer, hidden 64, 12 inputs, 3 classes, batch 1, untrained weights "
            "(timing does not depend on the weight values); opset 17",
            "- single thread: torch.set_num_threads(1); ORT intra_op_num_threads=1, inter_op_num_threads=1 "
            "(plus ORT_ENABLE_ALL, no CPU memory arena, as in OnnxGaitClassifier)",
            "- `torch eager`: GaitModel.step under inference_mode; `ORT run`: session.run with a feed dict; "
            "`ORT IOBinding`: run_with_iobinding on preallocated buffers (as OnnxGaitClassifier does); "
            "`push()`: OnnxGaitClassifier.push incl. input checks, 20 Hz 2nd-order low-pass, "
            "normalization, softmax, debounce",
            f"- per-call latency over {args.steps} calls in {args.rounds} interleaved rounds "
            f"after {args.warmup} warm-up calls; steps/s = calls / wall time",
            "",
            table(results),
            "",
            *verdict,
            f"- for scale: one ONNX Runtime call of a one-node Identity graph through IOBinding takes "
            f"p50 {floor['p50']:.1f} µs (p99 {floor['p99']:.1f} µs) here, the fixed cost inside every ORT step above",
        ]
    )
    print()
    print(body)
    if not args.no_write:
        write_section(Path(args.out), SECTION, body)
        print(f"\nupdated {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
