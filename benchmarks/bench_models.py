"""The model table: every model family on the IPOL gait-phase task, float and fixed-point C.

For each row (a family plus options) the script

1. trains the family with ``configs/ipol_gru.toml``'s recipe (both feet as input,
   12 channels; 50 ms output delay, 60 ms debounce) on subjects 1-11 (checked
   trials) for ``--epochs`` epochs of 40 steps with one thread, and tests it on
   subjects 12-15 (all trials);
2. quantizes it (post-training, calibrated on the training subjects) and evaluates
   the integer pipeline (the Python twin, bit-exact with the C runtime) on the
   same test subjects;
3. exports it to C, builds firmware for the emulated Cortex-M4 (QEMU
   ``mps2-an386``, ``arm-none-eabi-gcc -O2 -DGE_USE_DSP``) and counts the guest
   instructions of ``ge_step()`` exactly with the TCG plugin
   (``gaitedge/csrc/bench``); the firmware's outputs must equal the Python twin.

Results are kept per row in ``benchmarks/results/models.json`` (so rows can be
measured separately, e.g. ``--rows ctrnn,gactrnn``) and the whole table is
rewritten into the section ``## Model table (IPOL gait phase)`` of BENCHMARKS.md.

Usage::

    python benchmarks/bench_models.py --rows gru,lstm [--epochs 20] [--runs-dir runs/bench_models]
    python benchmarks/bench_models.py --rows "deep_gru:connection=residual:layers=2"
    python benchmarks/bench_models.py --render      # only rewrite the table from the stored rows

A row spec is ``family[:key=value[:key=value...]]``; ``hidden``, ``layers`` and
``dropout`` go to ``[model]``, other keys are family options
(``--set model.KEY=VALUE``).  Training runs are reused when present (``--retrain``
trains again).
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import json
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from benchlib import cpu_model, tool_version, write_section

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "models.json"
SECTION = "## Model table (IPOL gait phase)"
TRAIN_SPEC = "ipol?subjects=1-11&quality=checked"
TEST_SPEC = "ipol?subjects=12-15"
BASE_CONFIG = "configs/ipol_gru.toml"
MODEL_KEYS = ("hidden", "layers", "dropout")


def parse_row(spec: str) -> tuple[str, str, dict]:
    """``family:key=value:...`` -> (row name, family, settings)."""
    parts = [p for p in spec.strip().split(":") if p]
    family, opts = parts[0], {}
    for p in parts[1:]:
        k, eq, v = p.partition("=")
        if not eq:
            raise SystemExit(f"row {spec!r}: expected key=value, got {p!r}")
        opts[k] = v
    name = family + "".join(f"-{k}={v}" for k, v in opts.items())
    return name, family, opts


def _load_mcu():
    from gaitedge.firmware import mcu

    return mcu


def train_row(name: str, family: str, opts: dict, runs_dir: Path, epochs: int, retrain: bool, log) -> Path:
    run = runs_dir / name.replace("=", "").replace("/", "_")
    if (run / "model.pt").is_file() and not retrain:
        log(f"{name}: reusing {run}")
        return run
    sets = ["--set", "train.threads=1", "--set", f"train.epochs={epochs}"]
    for k, v in opts.items():
        sets += ["--set", f"model.{k}={v}"]
    cmd = [sys.executable, "-m", "gaitedge", "train", "--config", BASE_CONFIG, "--model", family,
           "--data", TRAIN_SPEC, "--test", TEST_SPEC, "--out", str(run), "--no-progress", "--force", *sets]
    log(f"{name}: training ({' '.join(cmd[2:])})")
    subprocess.run(cmd, check=True, cwd=ROOT)
    return run


def measure_window(tm, qm, rep: dict, window: int, log) -> dict:
    """A whole-window model: flash/RAM for windows of ``window`` samples and Cortex-M4 instructions of one
    ``ge_window_run()`` over the first ``window`` samples of a test recording (firmware == Python twin)."""
    from gaitedge.data.spec import load_spec
    from gaitedge.export.c_window import LUT_BYTES, export_c_window, window_arena_bytes, window_weight_bytes
    from gaitedge.quant.evaluate import recording_counts
    from gaitedge.quant.window import window_run

    out: dict = {"c": True, "ptq": rep["ptq"]["test"]["quantized"], "weights_bytes": window_weight_bytes(qm)["total"],
                 "lut_bytes": LUT_BYTES, "arena_bytes": window_arena_bytes(qm, window), "window": window}
    mcu = _load_mcu()
    missing = mcu.toolchain_missing()
    if missing:
        out["mcu_missing"] = missing
        return out
    rec = load_spec(TEST_SPEC, other_foot=tm.config["data"]["other_foot"])[0]
    counts = recording_counts(qm, rec)[:window]
    ref = window_run(qm, counts)
    want = np.column_stack([ref["label"][0], ref["logits"][0]])
    with tempfile.TemporaryDirectory(prefix="bench_models_") as td:
        work = Path(td)
        export_c_window(qm, work / "model", window=len(counts), copy_runtime=False, measure_code=False)
        plugin = mcu.build_plugin(work)
        (work / "fw").mkdir()
        mcu.write_bench_input(work / "fw" / "bench_input.h", counts)
        fw = mcu.build_window_firmware(work / "model", work / "fw", dsp=True)
        res = mcu.run_qemu(fw.elf, plugin, timeout=600)
        if res.rc != 0:
            raise SystemExit(f"{tm.model.family}: window firmware failed (rc {res.rc})\n{res.stdout[-2000:]}")
        rows = np.array([list(map(int, ln.split())) for ln in res.stdout.splitlines()
                         if ln and ln[0] in "-0123456789"])
        ic = np.array(res.icounts)
        over = int(ic[:3].min())
        sizes = mcu.object_sizes([p for k, p in fw.objects.items()
                                  if k not in ("bench_window", "startup", "model_data", "ge_lut")])
    per_window = int(ic[3] - over)
    out.update({
        "instr_median": per_window,
        "instr_max": per_window,
        "instr_per_sample": per_window / len(counts),
        "steps": len(counts),
        "c_equals_python": bool(rows.shape == want.shape and np.array_equal(rows, want)),
        "runtime_code_bytes": int(sum(v["text"] + v["data"] for v in sizes.values())),
    })
    return out


def m4_streaming(qm, counts: np.ndarray, mcu) -> dict:
    """Exact Cortex-M4 instructions per ``ge_step()`` over ``counts`` (QEMU, ``-O2 -DGE_USE_DSP``, only the
    model's kernels linked), whether every step's output equals the Python twin, and the runtime's code bytes."""
    from gaitedge.export.c_common import kind_cflags, linked_objects
    from gaitedge.export.c_export import export_c
    from gaitedge.quant import Runner

    ref = Runner(qm).run(counts)
    want = np.column_stack([ref["raw_label"][0], ref["label"][0], ref["event"][0], ref["event_sample"][0],
                            ref["logits"][0]])
    with tempfile.TemporaryDirectory(prefix="bench_models_") as td:
        work = Path(td)
        export_c(qm, work / "model", copy_runtime=False, measure_code=False)
        plugin = mcu.build_plugin(work)
        (work / "fw").mkdir()
        mcu.write_bench_input(work / "fw" / "bench_input.h", counts)
        fw = mcu.build_firmware(work / "model", work / "fw", dsp=True, extra=kind_cflags(qm))
        res = mcu.run_qemu(fw.elf, plugin, timeout=600)
        if res.rc != 0:
            raise SystemExit(f"{qm.family}: firmware failed (rc {res.rc})\n{res.stdout[-2000:]}")
        rows = np.array([list(map(int, ln.split())) for ln in res.stdout.splitlines()
                         if ln and ln[0] in "-0123456789"])
        ic = np.array(res.icounts)
        over = int(ic[:3].min())
        per_step = ic[3 : 3 + len(counts)] - over
        linked = {Path(o).stem for o in linked_objects("arm-none-eabi-nm", [str(p) for p in fw.objects.values()],
                                                       ("ge_model",))}
        sizes = mcu.object_sizes([p for k, p in fw.objects.items()
                                  if k in linked and k not in ("bench_main", "startup", "model_data", "ge_lut")])
    return {
        "instr_median": int(np.median(per_step)),
        "instr_max": int(per_step.max()),
        "steps": len(counts),
        "c_equals_python": bool(rows.shape == want.shape and np.array_equal(rows, want)),
        "runtime_code_bytes": int(sum(v["text"] + v["data"] for v in sizes.values())),
    }


def measure_c(run: Path, steps: int, log, window: int = 256) -> dict:
    """PTQ metrics on the test subjects, flash/RAM, and Cortex-M4 instructions per step."""
    from gaitedge.checkpoint import load_checkpoint
    from gaitedge.data.spec import load_spec
    from gaitedge.errors import GaitedgeError
    from gaitedge.export.c_common import LUT_BYTES
    from gaitedge.export.c_export import arena_bytes, weight_bytes
    from gaitedge.quant.evaluate import recording_counts
    from gaitedge.quant.quantizer import check_supported
    from gaitedge.quant.workflow import load_quant, quantize_run

    tm = load_checkpoint(run)
    try:
        check_supported(tm.model)
    except GaitedgeError as exc:
        return {"c": False, "why": str(exc)}
    rep = quantize_run(run, test=TEST_SPEC, log=log)
    qm = load_quant(run)
    if qm.architecture == "window":  # whole-window model: the window API, instructions per window
        return measure_window(tm, qm, rep, window, log)
    out: dict = {"c": True, "ptq": rep["ptq"]["test"]["quantized"], "weights_bytes": weight_bytes(qm)["total"],
                 "lut_bytes": LUT_BYTES, "arena_bytes": arena_bytes(qm)}
    mcu = _load_mcu()
    missing = mcu.toolchain_missing()
    if missing:
        out["mcu_missing"] = missing
        return out
    rec = load_spec(TEST_SPEC, other_foot=tm.config["data"]["other_foot"])[0]
    counts = recording_counts(qm, rec)[:steps]
    out.update(m4_streaming(qm, counts, mcu))
    return out


def measure_row(spec: str, args, log) -> dict:
    name, family, opts = parse_row(spec)
    t0 = time.time()
    run = train_row(name, family, opts, Path(args.runs_dir), args.epochs, args.retrain, log)
    metrics = json.loads((run / "metrics.json").read_text())
    test = metrics["test"]
    row = {
        "name": name, "family": family, "options": opts, "run": str(run),
        "n_params": metrics["n_params"], "epochs_run": metrics["epochs_run"], "best_epoch": metrics["best_epoch"],
        "train_time_s": metrics["train_time_s"],
        "float": {"macro_f1": test["macro_f1"], "hs_f1": test["events"]["heel_strike"]["f1"],
                  "to_f1": test["events"]["toe_off"]["f1"], "event_f1": test["event_f1"],
                  "median_err_ms": test["event_median_abs_error_ms"]},
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%d"),
        "epochs_budget": args.epochs,
    }
    if not args.no_c:
        row.update(measure_c(run, args.steps, log, args.window))
    row["bench_time_s"] = time.time() - t0
    return row


@contextlib.contextmanager
def _locked():
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    with open(RESULTS.with_suffix(".lock"), "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def load_rows() -> dict:
    return json.loads(RESULTS.read_text()) if RESULTS.is_file() else {}


def store_row(row: dict) -> None:
    with _locked():
        rows = load_rows()
        rows[row["name"]] = row
        tmp = RESULTS.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(rows, indent=1, sort_keys=True, default=float))
        tmp.replace(RESULTS)


def _f(v, fmt="{:.3f}") -> str:
    return "—" if v is None else fmt.format(v)


def render(rows: dict) -> str:
    hdr = ("| model | params | macro-F1 | HS F1 | TO F1 | median err ms | int macro-F1 | int event F1 "
           "| M4 instr/step | weights flash B | RAM B | C == Python | train s (epochs) |\n"
           "|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    lines = [hdr]
    for name in sorted(rows, key=lambda n: (rows[n]["family"], n)):
        r = rows[name]
        fl = r["float"]
        q = r.get("ptq") or {}
        if r.get("c"):
            instr = _f(r.get("instr_median"), "{:,}") + (f" / window of {r['window']}" if r.get("window") else "")
            flash = _f(r.get("weights_bytes"), "{:,}")
            ram = _f(r.get("arena_bytes"), "{:,}")
            eq = {True: "yes", False: "NO", None: "—"}[r.get("c_equals_python")]
        else:
            instr = flash = ram = eq = "no C kernel"
        label = name + (" (whole window: sees the future)" if r.get("window") else "")
        lines.append(
            f"| {label} | {r['n_params']:,} | {_f(fl['macro_f1'])} | {_f(fl['hs_f1'])} | {_f(fl['to_f1'])} "
            f"| {_f(fl['median_err_ms'], '{:.0f}')} | {_f(q.get('macro_f1'))} | {_f(q.get('event_f1'))} "
            f"| {instr} | {flash} | {ram} | {eq} | {r['train_time_s']:.0f} ({r['epochs_run']}) |"
        )
    dates = sorted({r["date"] for r in rows.values()})
    return (
        f"{SECTION}\n\n"
        "Every family on the same task and budget: trained on IPOL subjects 1-11 (checked trials) with "
        f"`{BASE_CONFIG}`'s recipe (12 channels: both feet; 50 ms output delay, 60 ms debounce), one thread, "
        "the epoch budget given per row; tested on subjects 12-15 (all trials). *int* columns: post-training "
        "quantization (the default input range: the 99.9th percentile of the calibration inputs), the integer pipeline (the Python twin, bit-exact with the C runtime) on the same test "
        "subjects. *M4 instr/step*: median exact instruction count of one `ge_step()` (preprocessing, every "
        "layer, head, debounce) on the emulated Cortex-M4 (QEMU mps2-an386, TCG plugin, `-O2 -DGE_USE_DSP`) "
        "over the first steps of a test recording; *C == Python*: the firmware's outputs at every one of those "
        "steps equal the Python twin's. Rows marked *whole window* are non-causal models (bidirectional, "
        "encoder-decoder): each output sees the samples after it, so their accuracy is not comparable to the "
        "streaming rows; they are evaluated on whole recordings and run on the device through `ge_window_run()`, "
        "counted per window of N samples (RAM: the arena for that window). Weights flash excludes the 4 KiB sigmoid/tanh table and the runtime code; "
        "RAM is the arena `ge_init()` needs. Training times were taken while other jobs shared the two cores: compare them only roughly. The firmware links only the model's kernels (`GE_WITH_<KIND>` flags); rows measured before that was the default linked every kernel and count up to about 10 more instructions per step in the kind dispatch. This is one split and a short budget per family, meant to compare "
        "families; the cross-validated figures of the default configs are in the sections above.\n\n"
        f"Command: `python benchmarks/bench_models.py --rows ROWS [--epochs N]` (per row), then "
        f"`python benchmarks/bench_models.py --render`. Machine: {cpu_model()}; "
        f"{tool_version(['arm-none-eabi-gcc', '--version'])}; {tool_version(['qemu-system-arm', '--version'])}. "
        f"Measured {', '.join(dates)}.\n\n" + "\n".join(lines) + "\n"
    )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rows", default="", help="comma-separated row specs family[:key=value...]")
    ap.add_argument("--epochs", type=int, default=20)
    ap.add_argument("--steps", type=int, default=50, help="ge_step() calls counted on the emulated board")
    ap.add_argument("--window", type=int, default=256,
                    help="whole-window models: samples per ge_window_run() window counted on the emulated board")
    ap.add_argument("--runs-dir", default="runs/bench_models")
    ap.add_argument("--retrain", action="store_true")
    ap.add_argument("--no-c", action="store_true", help="float metrics only")
    ap.add_argument("--render", action="store_true", help="only rewrite the BENCHMARKS.md table")
    ap.add_argument("--out", default=str(ROOT / "BENCHMARKS.md"))
    args = ap.parse_args(argv)
    sys.path.insert(0, str(ROOT))

    def log(msg: str) -> None:
        print(msg, flush=True)

    for spec in [s for s in args.rows.split(",") if s.strip()]:
        row = measure_row(spec, args, log)
        store_row(row)
        log(json.dumps({k: v for k, v in row.items() if k != "options"}, default=float))
    with _locked():
        rows = load_rows()
        if rows:
            write_section(args.out, SECTION, render(rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
