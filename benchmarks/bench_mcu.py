"""Fixed-point C runtime: Cortex-M4 instructions per step, flash, RAM, host speed, accuracy.

* **On the emulated board**: LSTM-64 and GRU-64 (6 inputs: one foot's acc + gyro,
  3 classes) are quantized, exported with ``gaitedge export c`` and built with
  ``arm-none-eabi-gcc -O2 -mcpu=cortex-m4 -mthumb`` (portable C and the DSP path,
  ``-DGE_USE_DSP``) into firmware for QEMU ``-M mps2-an386``.  A TCG plugin
  (``gaitedge/csrc/bench/icount_plugin.c``) counts the guest instructions of
  every ``ge_step()`` call between two marker functions, exactly (method:
  ../shared/notes/EMULATOR.md); the marker overhead (an empty bracket) is
  subtracted.  The firmware also prints every step's output, which must equal
  the Python integer reference.  Weights are random (seeded): instruction counts
  and sizes do not depend on the weight values; the inputs are the first
  samples of an IPOL recording (synthetic data without ../shared).
* **Flash / RAM**: the model's const arrays (int8 weights, int32 biases and
  multipliers, preprocessing constants), the sigmoid/tanh table, the runtime's
  code (``arm-none-eabi-size`` of its objects); RAM = the arena ``ge_init()``
  needs (state + scratch) + ``sizeof(ge_state)``.
* **Host x86**: ns per ``ge_step()`` of the same models (``gcc -O2``, portable C)
  vs ``session.run`` of the ONNX Runtime step model (``gaitedge export onnx``,
  one thread).
* **Accuracy**: the IPOL models of ``configs/ipol_gru.toml`` /
  ``configs/ipol_lstm.toml`` (12 inputs), trained on subjects 1-11, tested on
  12-15: float vs post-training quantization vs quantization-aware fine-tuning,
  all metrics of the integer pipeline computed by the Python twin (bit-exact
  with the C runtime).  Missing runs are trained first (a few minutes each).

Usage::

    python benchmarks/bench_mcu.py [--runs-dir runs/bench_mcu] [--qat-epochs 3] [--steps 100] [--no-accuracy]

writes the section ``## Microcontroller runtime (Cortex-M4, QEMU mps2-an386)``
of BENCHMARKS.md (the rest of the file is kept).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from benchlib import cpu_model, load_avg, tool_version, write_section

from gaitedge import resources

ROOT = Path(__file__).resolve().parents[1]
SECTION = "## Microcontroller runtime (Cortex-M4, QEMU mps2-an386)"
TARGETS = {"lstm": 25_000, "gru": 19_000}
FLASH_TARGET_LSTM = 20 * 1024
RAM_TARGET = 1536
ONNX2C_LSTM = 89_600  # peer measurement, ../shared/notes/EMULATOR.md


#: subsections of SECTION written by other scripts (kept when this one rewrites the section)
KEPT_SUBSECTIONS = ("### Sensor mounting",  # benchmarks/bench_mounting_mcu.py
                    "### 32-bit RISC-V (rv32imac, QEMU virt)",  # benchmarks/bench_riscv.py
                    "### Exported C library (`gaitedge export c` + CMake): Cortex-M0+ / M4 / M33, RV32IMAC")
# the last one: benchmarks/bench_library.py


def kept_subsections(path: Path) -> str:
    """The KEPT_SUBSECTIONS blocks currently in SECTION of ``path`` (empty when none)."""
    import re

    if not path.exists():
        return ""
    sec = re.search(rf"^{re.escape(SECTION)}\n.*?(?=^## |\Z)", path.read_text(), re.S | re.M)
    if sec is None:
        return ""
    out = ""
    for head in KEPT_SUBSECTIONS:
        m = re.search(rf"^{re.escape(head)}\n.*?(?=^##+ |\Z)", sec.group(0), re.S | re.M)
        if m:
            out += "\n\n" + m.group(0).strip() + "\n"
    return out


def _load_mcu():
    from gaitedge.firmware import mcu

    return mcu


def bench_recordings(other_foot: bool = False):
    """(calibration recordings, input recording, description): one foot's 6 channels, or 12 with ``other_foot``."""
    from gaitedge.data.spec import load_spec

    try:
        recs = load_spec("ipol?subjects=1", other_foot=other_foot)[:4]
        src = f"IPOL subject 1 ({recs[-1].name})"
    except Exception:  # no dataset: synthetic gait
        recs = load_spec("synthetic?n=2&trials=1", other_foot=other_foot)
        src = "synthetic gait (IPOL data not found)"
    return recs, recs[-1], src


def make_model(family: str, recs, seed: int = 0):
    import torch

    from gaitedge.checkpoint import TrainedModel
    from gaitedge.data.preprocess import Normalizer
    from gaitedge.models import build_model

    torch.manual_seed(seed)
    r0 = recs[0]
    model = build_model(family, len(r0.channels), len(r0.classes), hidden=64)
    model.eval()
    return TrainedModel(model=model, classes=r0.classes, channels=list(r0.channels), units=list(r0.units),
                        rate_hz=100.0, normalizer=Normalizer.fit([r.signals for r in recs]), lowpass_hz=0.0,
                        filter_order=2, min_run=6, tolerance_ms=50.0, delay=5)


def measure_mcu(family: str, recs, rec, steps: int, work: Path, mcu) -> dict:
    """Instruction counts (portable, DSP), sizes, and the on-target exactness check."""
    from gaitedge.export.c_common import LUT_BYTES, kind_cflags, linked_objects
    from gaitedge.export.c_export import arena_bytes, export_c, weight_bytes
    from gaitedge.quant import Runner, quantize_model
    from gaitedge.quant.evaluate import recording_counts

    tm = make_model(family, recs)
    qm = quantize_model(tm, recs)
    export_c(qm, work / "model", copy_runtime=False, measure_code=False)
    counts = recording_counts(qm, rec)[:steps]
    ref = Runner(qm).run(counts)
    ref_rows = np.column_stack([ref["raw_label"][0], ref["label"][0], ref["event"][0], ref["event_sample"][0],
                                ref["logits"][0]])
    plugin = mcu.build_plugin(work)
    out: dict = {"family": family, "weights": weight_bytes(qm), "lut_bytes": LUT_BYTES, "arena": arena_bytes(qm),
                 "n_steps": len(counts), "tm": tm, "qm": qm, "counts": counts}
    for variant, dsp in (("portable", False), ("dsp", True)):
        d = work / variant
        d.mkdir()
        mcu.write_bench_input(d / "bench_input.h", counts)
        fw = mcu.build_firmware(work / "model", d, dsp=dsp, extra=kind_cflags(qm))
        run = mcu.run_qemu(fw.elf, plugin, timeout=300)
        if run.rc != 0:
            raise SystemExit(f"{family} {variant}: firmware failed (rc {run.rc})\n{run.stdout[-2000:]}")
        lines = run.stdout.splitlines()
        state_bytes = int(next(ln.split()[1] for ln in lines if ln.startswith("sizeof_state")))
        rows = np.array([list(map(int, ln.split())) for ln in lines if ln and ln[0] in "-0123456789"])
        exact = rows.shape == ref_rows.shape and bool(np.array_equal(rows, ref_rows))
        ic = np.array(run.icounts)
        over = int(ic[:3].min())
        per_step = ic[3 : 3 + len(counts)] - over
        kernel = ic[3 + len(counts) :] - over
        linked = {Path(o).stem for o in linked_objects("arm-none-eabi-nm", [str(p) for p in fw.objects.values()],
                                                       ("ge_model",))}
        sizes = mcu.object_sizes([p for k, p in fw.objects.items() if k in linked and k not in ("bench_main", "startup",
                                                                                  "model_data", "ge_lut")])
        code = sum(v["text"] + v["data"] for v in sizes.values())
        used = {k: v["text"] for k, v in sizes.items()}
        su = fw.stack_usage
        kname = {"lstm": "ge_lstm_step", "gru": "ge_gru_step"}[family]
        stack = su.get("ge_step", 0) + su.get(kname, 0) + su.get("ge_matvec4", 0) + 56
        out[variant] = {
            "median": int(np.median(per_step)), "min": int(per_step.min()), "max": int(per_step.max()),
            "kernel": int(np.median(kernel)), "exact": exact, "code": code, "code_by_object": used,
            "state_struct": state_bytes, "stack_est": stack,
        }
    return out


def host_times(res: dict, work: Path, rounds: int = 7) -> dict:
    """µs per step: C runtime (gcc -O2, portable) vs ONNX Runtime step model, interleaved rounds, medians."""
    import onnxruntime as ort

    from gaitedge.export import export_onnx

    rt = resources.runtime_dir()
    counts = res["counts"]
    reps = max(1, 5_000 // len(counts))
    exe = work / "host-c"
    subprocess.run(["gcc", "-std=c99", "-O2", f"-I{rt / 'include'}", f"-I{work / 'model'}",
                    *map(str, sorted((rt / "src").glob("*.c"))), str(work / "model" / "model_data.c"),
                    str(resources.host_dir() / "ge_harness.c"), "-o", str(exe)], check=True)
    tm = res["tm"]
    paths = export_onnx(tm, work / "onnx")
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    so.inter_op_num_threads = 1
    sess = ort.InferenceSession(str(paths.step), so, providers=["CPUExecutionProvider"])
    names = [i.name for i in sess.get_inputs()]
    outs = [o.name for o in sess.get_outputs()]
    x = tm.normalizer((counts * res["qm"].pre.lsb).astype(np.float32))

    def ort_round() -> float:
        state = {n: np.zeros((1, 1, 64), np.float32) for n in names if n != "x"}
        t0 = time.perf_counter()
        for _ in range(reps):
            for t in range(len(x)):
                r = sess.run(None, {"x": x[t][None], **state})
                state = {k.replace("_out", "_in"): v for k, v in zip(outs[1:], r[1:])}
        return (time.perf_counter() - t0) / (reps * len(x)) * 1e6

    def c_round() -> float:
        r = subprocess.run([str(exe), "time", str(reps)], input=counts.astype("<i2").tobytes(),
                           capture_output=True, check=True)
        return float(r.stdout.split()[0]) / 1000.0

    ort_round()
    c_round()
    cs, os_ = [], []
    for _ in range(rounds):
        cs.append(c_round())
        os_.append(ort_round())
    return {"c": float(np.median(cs)), "ort": float(np.median(os_)), "rounds": rounds,
            "steps_per_round": reps * len(counts)}


def ensure_run(name: str, config: str, runs_dir: Path, log) -> Path:
    """The IPOL run of a config (trained on subjects 1-11) under runs_dir, training it if missing."""
    run = runs_dir / f"{name}_ipol"
    if (run / "model.pt").is_file():
        return run
    log(f"training {run} from {config} (a few minutes)...")
    subprocess.run([sys.executable, "-m", "gaitedge", "train", "--config", config, "--data",
                    "ipol?subjects=1-11&quality=checked", "--test", "ipol?subjects=12-15", "--out", str(run),
                    "--no-progress", "--set", "train.threads=1"], check=True, cwd=ROOT)
    return run


def c_matches_python(run: Path, work: Path) -> dict:
    """Host C runtime (gcc -O2, portable) vs the Python twin on every step of the IPOL test recordings."""
    from gaitedge.checkpoint import load_checkpoint
    from gaitedge.data.spec import load_spec
    from gaitedge.export.c_export import export_c
    from gaitedge.quant import Runner
    from gaitedge.quant.evaluate import recording_counts
    from gaitedge.quant.workflow import load_quant

    tm = load_checkpoint(run)
    qm = load_quant(run)
    recs = load_spec("ipol?subjects=12-15", other_foot=tm.config["data"]["other_foot"])
    export_c(qm, work / "model", copy_runtime=False, measure_code=False)
    rt = resources.runtime_dir()
    exe = work / "harness"
    subprocess.run(["gcc", "-std=c99", "-O2", f"-I{rt / 'include'}", f"-I{work / 'model'}",
                    *map(str, sorted((rt / "src").glob("*.c"))), str(work / "model" / "model_data.c"),
                    str(resources.host_dir() / "ge_harness.c"), "-o", str(exe)], check=True)
    counts = [recording_counts(qm, r) for r in recs]
    tmax = max(len(c) for c in counts)
    xb = np.stack([np.concatenate([c, np.repeat(c[-1:], tmax - len(c), 0)]) for c in counts])
    ref = Runner(qm, batch=len(counts)).run(xb)
    equal, steps = True, 0
    for b, c in enumerate(counts):
        n = len(c)
        want = np.column_stack([ref["raw_label"][b, :n], ref["label"][b, :n], ref["event"][b, :n],
                                ref["event_sample"][b, :n], ref["logits"][b, :n]])
        r = subprocess.run([str(exe), "step"], input=c.astype("<i2").tobytes(), capture_output=True, check=True)
        got = np.array([list(map(int, ln.split())) for ln in r.stdout.decode().splitlines()])
        equal &= bool(np.array_equal(got, want))
        steps += n
    return {"recordings": len(counts), "steps": steps, "equal": equal}


def accuracy(runs_dir: Path, qat_epochs: int, log) -> list[dict]:
    from gaitedge.quant.workflow import quantize_run

    rows = []
    for name, config in (("gru", "configs/ipol_gru.toml"), ("lstm", "configs/ipol_lstm.toml")):
        run = ensure_run(name, config, runs_dir, log)
        rep = quantize_run(run, test="ipol?subjects=12-15", log=log)
        row = {"name": name, "run": str(run), "ptq": rep["ptq"]["test"]}
        with tempfile.TemporaryDirectory(prefix="bench_mcu_c_") as td:
            row["c_check"] = c_matches_python(run, Path(td))
        log(f"{name}: C runtime vs Python twin on the test recordings: {row['c_check']}")
        if qat_epochs > 0:
            q = quantize_run(run, out=runs_dir / f"{name}_ipol-qat", finetune_epochs=qat_epochs,
                             test="ipol?subjects=12-15", force=True, log=log)
            row["qat"] = q["qat"]["test"]
            row["qat_best_epoch"] = q["qat"]["best_epoch"]
            row["qat_epochs"] = qat_epochs
        rows.append(row)
    return rows


def render(args, mcu_res: dict, host: dict, acc: list[dict], src: str, load_before: str, cmd: str, date: str,
           load_after: str, acc_from: str = "") -> str:
    import gaitedge
    import onnxruntime as ort

    L = [SECTION, "", f"Command: `{cmd}`", ""]
    L.append(f"- machine: {cpu_model()}, {os.cpu_count()} logical cores; 1-min load average {load_before} before, "
             f"{load_after} after (other processes were running)")
    L.append(f"- date: {date}")
    L.append(f"- toolchain: {tool_version(['arm-none-eabi-gcc', '--version'])}, "
             f"{tool_version(['qemu-system-arm', '--version'])}, host {tool_version(['gcc', '--version'])}; "
             f"gaitedge {gaitedge.__version__}, onnxruntime {ort.__version__}")
    L.append("- firmware: runtime + `gaitedge export c` model data + `gaitedge/csrc/bench/bench_main.c`, "
             "`arm-none-eabi-gcc -O2 -mcpu=cortex-m4 -mthumb -mfloat-abi=soft` (no FPU used), newlib-nano + "
             "semihosting; `-DGE_USE_DSP` for the DSP path (SMLAD/SXTB16 assembly), none for portable C99")
    L.append("- count: QEMU 7.2 `-M mps2-an386` with a TCG plugin counting every executed guest instruction between "
             "`ge_bench_begin()` and `ge_bench_end()` around each `ge_step()` (exact, repeatable); marker overhead "
             f"subtracted; {mcu_res['lstm']['n_steps']} consecutive steps of {src}; the step includes "
             "preprocessing (scaling + normalization of raw int16 counts), the recurrent layer, the dense head, "
             "argmax and the debounce/event detector")
    L.append("- models: LSTM-64 and GRU-64, 6 inputs, 3 classes, random weights (seed 0; counts and sizes do not "
             "depend on weight values), output delay 5, debounce 6; every on-target output equal to the Python "
             "integer reference: " + ", ".join(
                 f"{f.upper()} {v}: {'yes' if mcu_res[f][v]['exact'] else 'NO'}"
                 for f in ("lstm", "gru") for v in ("portable", "dsp")))
    L.append("")
    L.append("| model | path | instructions / step (median) | min .. max | recurrent layer alone | target |")
    L.append("|---|---|---:|---:|---:|---:|")
    for f in ("lstm", "gru"):
        for v, label in (("dsp", "DSP (Cortex-M4/M7)"), ("portable", "portable C")):
            m = mcu_res[f][v]
            tgt = f"<= {TARGETS[f]:,}" if v == "dsp" else ""
            L.append(f"| {f.upper()}-64 | {label} | {m['median']:,} | {m['min']:,} .. {m['max']:,} | "
                     f"{m['kernel']:,} | {tgt} |")
    L.append(f"| LSTM-64 (5 classes) | onnx2c float, FPU (peer, EMULATOR.md) | ~{ONNX2C_LSTM:,} | | | |")
    L.append("")
    L.append("| model | weights flash (int8 W + int32 bias + int32 mult + preproc) | sigmoid/tanh table | "
             "runtime code, DSP / portable | RAM: arena (state + scratch) + ge_state | stack (est.) |")
    L.append("|---|---:|---:|---:|---:|---:|")
    for f in ("lstm", "gru"):
        r = mcu_res[f]
        wb = r["weights"]
        ram = r["arena"] + r["dsp"]["state_struct"]
        L.append(f"| {f.upper()}-64 | {wb['total']:,} B ({wb['total'] / 1024:.2f} KiB) | {r['lut_bytes']:,} B | "
                 f"{r['dsp']['code']:,} B / {r['portable']['code']:,} B | {r['arena']:,} + "
                 f"{r['dsp']['state_struct']} = {ram:,} B | ~{r['dsp']['stack_est']} B |")
    L.append("")
    lm, gm = mcu_res["lstm"], mcu_res["gru"]
    ok = lambda c: "met" if c else "NOT met"  # noqa: E731
    L.append(f"- LSTM-64 DSP {lm['dsp']['median']:,} instructions/step (target <= 25,000): "
             f"{ok(lm['dsp']['median'] <= 25_000)}; {ONNX2C_LSTM / lm['dsp']['median']:.1f}x fewer than the "
             f"onnx2c float C on the same emulator")
    L.append(f"- GRU-64 DSP {gm['dsp']['median']:,} instructions/step (target <= 19,000): "
             f"{ok(gm['dsp']['median'] <= 19_000)}")
    L.append(f"- LSTM-64 weights {lm['weights']['total']:,} B (target <= 20 KB = 20,480 B): "
             f"{ok(lm['weights']['total'] <= FLASH_TARGET_LSTM)}")
    L.append(f"- state + scratch RAM {lm['arena'] + lm['dsp']['state_struct']:,} B (LSTM), "
             f"{gm['arena'] + gm['dsp']['state_struct']:,} B (GRU) (target <= 1.5 KB = 1,536 B): "
             f"{ok(max(lm['arena'] + lm['dsp']['state_struct'], gm['arena'] + gm['dsp']['state_struct']) <= RAM_TARGET)}")
    L.append(f"- the portable path (what a Cortex-M0+/M3 runs) is plain C99 (each int8 weight extracted with "
             f"SBFX/SXTB and multiplied separately): {lm['portable']['median'] / lm['dsp']['median']:.1f}x the DSP "
             f"path's instructions for the LSTM, still {ONNX2C_LSTM / lm['portable']['median']:.1f}x fewer than the "
             f"onnx2c float C with an FPU")
    L.append("- runtime code includes the DSP build's 2.3 KB of unrolled matrix loop (32 chunk copies)")
    L.append("")
    if host:
        hh = next(iter(host.values()))
        L.append("Host x86 (same models, one thread, µs per streaming step incl. preprocessing, head, argmax, "
                 "detector for the C runtime; ONNX Runtime: `session.run` of `model_step.onnx` with a feed dict, "
                 f"the recurrent step and head only, float32; medians of {hh['rounds']} interleaved rounds of "
                 f"{hh['steps_per_round']:,} steps each):")
        L.append("")
        L.append("| model | C runtime, gcc -O2 portable (µs) | ONNX Runtime step (µs) | ratio |")
        L.append("|---|---:|---:|---:|")
        for f in ("lstm", "gru"):
            h = host[f]
            L.append(f"| {f.upper()}-64 | {h['c']:.2f} | {h['ort']:.2f} | {h['ort'] / h['c']:.1f}x |")
        L.append("")
    if acc:
        L.append("Accuracy on held-out IPOL subjects 12-15 (both feet as input, 12 channels; trained on subjects "
                 "1-11 with the configs, checked trials; metrics of the integer pipeline from its Python twin, "
                 "bit-exact with the C runtime; raw counts assume +-16 g / +-2000 dps 16-bit sensors; "
                 "activation ranges calibrated on the training subjects only"
                 + (f"; table from the run of {acc_from}" if acc_from else "") + "):")
        L.append("")
        L.append("| model | variant | accuracy | macro-F1 | event F1 | Δ macro-F1 (pts) | Δ event F1 (pts) |")
        L.append("|---|---|---:|---:|---:|---:|---:|")
        for row in acc:
            base = row["ptq"]["float"]
            variants = [("float", base), ("int8/int16 PTQ", row["ptq"]["quantized"])]
            if "qat" in row:
                variants.append((f"int8/int16 QAT ({row['qat_epochs']} epochs, best epoch {row['qat_best_epoch']})",
                                 row["qat"]["quantized"]))
            for label, m in variants:
                dm = "" if label == "float" else f"{100 * (m['macro_f1'] - base['macro_f1']):+.2f}"
                de = "" if label == "float" else f"{100 * (m['event_f1'] - base['event_f1']):+.2f}"
                L.append(f"| {row['name'].upper()}-64 | {label} | {m['accuracy']:.4f} | {m['macro_f1']:.4f} | "
                         f"{m['event_f1']:.4f} | {dm} | {de} |")
        L.append("")
        for row in acc:
            cc = row["c_check"]
            L.append(f"- {row['name'].upper()}-64 PTQ model: host C runtime (gcc -O2) vs Python twin on every step "
                     f"of the {cc['recordings']} test recordings ({cc['steps']:,} steps): "
                     + ("identical" if cc["equal"] else "DIFFERENT"))
        for row in acc:
            b, q = row["ptq"]["float"], row["ptq"]["quantized"]
            worst = max(100 * (b["macro_f1"] - q["macro_f1"]), 100 * (b["event_f1"] - q["event_f1"]))
            L.append(f"- {row['name'].upper()}-64 post-training quantization loses at most {max(worst, 0):.2f} "
                     f"points (target <= 0.5): {ok(worst <= 0.5)}"
                     + ("; QAT picks the best validation epoch (epoch 0 = PTQ weights)" if "qat" in row else ""))
        L.append("")
    return "\n".join(L) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs-dir", default="runs/bench_mcu", help="IPOL runs (trained here when missing)")
    ap.add_argument("--qat-epochs", type=int, default=3, help="quantization-aware fine-tuning epochs (0: none)")
    ap.add_argument("--steps", type=int, default=100, help="streaming steps measured on the emulator")
    ap.add_argument("--no-accuracy", action="store_true", help="skip the IPOL accuracy table")
    ap.add_argument("--no-host", action="store_true", help="skip the host x86 timing")
    ap.add_argument("--out", default=str(ROOT / "BENCHMARKS.md"))
    ap.add_argument("--reuse-accuracy", action="store_true",
                    help="take the accuracy table from the last run's saved results instead of recomputing it")
    ap.add_argument("--render-only", action="store_true",
                    help="rewrite the section from the results saved by the last run (RUNS_DIR/bench_mcu.json)")
    args = ap.parse_args(argv)
    cache = ROOT / args.runs_dir / "bench_mcu.json"
    if args.render_only:
        saved = json.loads(cache.read_text())
        text = render(args, saved["mcu"], saved["host"], saved["acc"], saved["src"], saved["load_before"],
                      saved["cmd"], saved["date"], saved["load_after"], saved.get("acc_from", ""))
        write_section(Path(args.out), SECTION, text + kept_subsections(Path(args.out)))
        print(text)
        return 0
    import torch

    torch.set_num_threads(1)
    mcu = _load_mcu()
    missing = mcu.toolchain_missing()
    if missing:
        raise SystemExit(f"missing tools: {', '.join(missing)} (apt-get install gcc-arm-none-eabi "
                         f"libnewlib-arm-none-eabi qemu-system-arm)")
    load_before = load_avg()
    recs, rec, src = bench_recordings()
    res, host = {}, {}
    with tempfile.TemporaryDirectory(prefix="bench_mcu_") as td:
        for fam in ("lstm", "gru"):
            work = Path(td) / fam
            work.mkdir()
            res[fam] = measure_mcu(fam, recs, rec, args.steps, work, mcu)
            m = res[fam]
            print(f"{fam}: DSP {m['dsp']['median']} (exact {m['dsp']['exact']}), portable {m['portable']['median']} "
                  f"(exact {m['portable']['exact']}) instructions/step; weights {m['weights']['total']} B; "
                  f"arena {m['arena']} B", flush=True)
            if not args.no_host:
                host[fam] = host_times(res[fam], work)
                print(f"{fam}: host C {host[fam]['c']:.2f} µs, ORT {host[fam]['ort']:.2f} µs per step", flush=True)
    cmd = "python benchmarks/bench_mcu.py" + "".join(f" {a}" for a in (argv if argv is not None else sys.argv[1:]))
    date = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    if args.reuse_accuracy and cache.is_file():
        old = json.loads(cache.read_text())
        acc = old["acc"]
        acc_from = old.get("acc_from") or f"{old['date']}, `{old['cmd']}`"
    else:
        acc = [] if args.no_accuracy else accuracy(ROOT / args.runs_dir, args.qat_epochs, print)
        acc_from = ""
    mcu_plain = {f: {k: v for k, v in r.items() if k not in ("tm", "qm", "counts")} for f, r in res.items()}
    cache.parent.mkdir(parents=True, exist_ok=True)
    cache.write_text(json.dumps({"mcu": mcu_plain, "host": host, "acc": acc, "src": src, "load_before": load_before,
                                 "load_after": load_avg(), "cmd": cmd, "date": date, "acc_from": acc_from},
                                indent=1, default=float))
    text = render(args, mcu_plain, host, acc, src, load_before, cmd, date, load_avg(), acc_from)
    write_section(Path(args.out), SECTION, text + kept_subsections(Path(args.out)))
    print(text)
    bad = [f for f in ("lstm", "gru") for v in ("portable", "dsp") if not res[f][v]["exact"]]
    return 1 if bad else 0


if __name__ == "__main__":
    raise SystemExit(main())
