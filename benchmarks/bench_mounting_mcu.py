"""Sensor mounting on the Cortex-M4: instructions per step with 0, 2 and 4 rotated triads.

A GRU-64 with 12 inputs (both feet: acc + gyro each, as ``configs/ipol_gru.toml``),
3 classes, random weights (seed 0), is quantized, exported with ``gaitedge export c``
and built with ``gaitedge/csrc/bench/bench_mounting.c`` for QEMU ``-M mps2-an386``
(``arm-none-eabi-gcc -O2 -mcpu=cortex-m4 -mthumb``, DSP path and portable C).  The
TCG plugin (``gaitedge/csrc/bench/icount_plugin.c``) counts the guest
instructions of every ``ge_step()`` (marker overhead subtracted) for the same
samples with no mounting, a 2-triad mounting (one foot) and a 4-triad mounting (two
feet), and of ``ge_mounting_apply()`` alone.  Every on-target output is compared with
the Python integer twin (``Runner(qm, mounting=...)``).  The rotations are fixed
(not identities); the count does not depend on their values.

With ``--baseline REV`` the runtime of git revision ``REV`` (one without the
mounting) runs the same model and samples with ``bench_main.c``: the cost of the
"no mounting" check in ``ge_step()``.

Usage::

    python benchmarks/bench_mounting_mcu.py [--steps 100] [--baseline REV]

writes the subsection ``### Sensor mounting`` at the end of the section
``## Microcontroller runtime (Cortex-M4, QEMU mps2-an386)`` of BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from bench_mcu import SECTION, _load_mcu, make_model
from benchlib import cpu_model, load_avg, tool_version

from gaitedge import resources

ROOT = Path(__file__).resolve().parents[1]
SUBSECTION = "### Sensor mounting"
#: yaw, pitch, roll (degrees) of the four sensors' mountings; the third is mirrored (det -1)
ANGLES = [(30, -20, 10), (-75, 5, 40), (120, 15, -25), (10, 80, -5)]


def bench_triads(channels: list[str]):
    from scipy.spatial.transform import Rotation

    from gaitedge.quant.mounting import Triad, rotation_q14

    out = []
    for k, prefix in enumerate(["acc", "gyr", "other_acc", "other_gyr"]):
        m = Rotation.from_euler("ZYX", ANGLES[k], degrees=True).as_matrix()
        if k == 2:
            m = m @ np.diag([1.0, -1.0, 1.0])
        out.append(Triad(tuple(channels.index(f"{prefix}_{a}") for a in "xyz"), rotation_q14(m)))
    return out


def write_mount_header(path: Path, triads) -> None:
    idx = ", ".join("{" + ", ".join(map(str, t.channels)) + "}" for t in triads)
    rot = ", ".join("{" + ", ".join(str(int(v)) for v in t.rot.ravel()) + "}" for t in triads)
    path.write_text("/* generated: the benchmark's sensor mounting */\n"
                    f"#define BENCH_MOUNT {{{len(triads)}, {{{idx}}}, {{{rot}}}}}\n")


def baseline_steps(rev: str, qm, counts: np.ndarray, work: Path, mcu, plugin: Path) -> dict:
    """Median instructions per ge_step() of the runtime at git revision ``rev`` (bench_main.c), per path."""
    from gaitedge.export.c_common import kind_cflags

    src = work / "baseline-src"
    src.mkdir()
    # the runtime's folder at that revision (it moved into the package from firmware_export/)
    for rt_path in ("gaitedge/csrc/runtime", "firmware_export/runtime"):
        arch = subprocess.run(["git", "-C", str(ROOT), "archive", rev, rt_path], capture_output=True)
        if arch.returncode == 0:
            break
    else:
        raise SystemExit(f"no C runtime at git revision {rev}")
    subprocess.run(["tar", "-x", "-C", str(src)], input=arch.stdout, check=True)
    saved, mcu.RUNTIME = mcu.RUNTIME, src / rt_path
    out = {}
    try:
        for variant, dsp in (("dsp", True), ("portable", False)):
            d = work / f"baseline-{variant}"
            d.mkdir()
            mcu.write_bench_input(d / "bench_input.h", counts)
            fw = mcu.build_firmware(work / "model", d, dsp=dsp, extra=kind_cflags(qm), print_steps=False)
            run = mcu.run_qemu(fw.elf, plugin, timeout=300)
            ic = np.array(run.icounts)
            out[variant] = int(np.median(ic[3 : 3 + len(counts)] - ic[:3].min()))
    finally:
        mcu.RUNTIME = saved
    return out


def measure(steps: int, work: Path, baseline: str | None = None) -> dict:
    from gaitedge.data.spec import load_spec
    from gaitedge.export.c_common import kind_cflags
    from gaitedge.export.c_export import export_c
    from gaitedge.quant import Runner, quantize_model
    from gaitedge.quant.evaluate import recording_counts

    mcu = _load_mcu()
    try:
        recs = load_spec("ipol?subjects=1", other_foot=True)[:4]
        src = f"IPOL subject 1 ({recs[-1].name}), both feet"
    except Exception:  # no dataset: synthetic gait
        recs = load_spec("synthetic?n=2&trials=1", other_foot=True)
        src = "synthetic gait (IPOL data not found), both feet"
    qm = quantize_model(make_model("gru", recs), recs)
    export_c(qm, work / "model", copy_runtime=False, measure_code=False)
    counts = recording_counts(qm, recs[-1])[:steps]
    triads = bench_triads(list(qm.channels))
    refs = []
    for n in (0, 2, 4):
        r = Runner(qm, mounting=triads[:n]).run(counts)
        refs.append(np.column_stack([r["raw_label"][0], r["label"][0], r["event"][0], r["event_sample"][0],
                                     r["logits"][0]]))
    plugin = mcu.build_plugin(work)
    res: dict = {"source": src, "steps": len(counts), "n_inputs": qm.n_inputs}
    for variant, dsp in (("dsp", True), ("portable", False)):
        d = work / variant
        d.mkdir()
        mcu.write_bench_input(d / "bench_input.h", counts)
        write_mount_header(d / "bench_mount.h", triads)
        fw = mcu.build_firmware(work / "model", d, dsp=dsp, extra=kind_cflags(qm),
                                main_src=resources.bench_dir() / "bench_mounting.c")
        run = mcu.run_qemu(fw.elf, plugin, timeout=300)
        if run.rc != 0:
            raise SystemExit(f"{variant}: firmware failed (rc {run.rc})\n{run.stdout[-2000:]}")
        sizes = next(ln.split() for ln in run.stdout.splitlines() if ln.startswith("sizeof_state"))
        rows = [list(map(int, ln.split())) for ln in run.stdout.splitlines() if ln and ln[0] in "-0123456789"]
        n = len(counts)
        exact = len(rows) == 3 * n and all(np.array_equal(np.array(rows[k * n:(k + 1) * n]), refs[k])
                                           for k in range(3))
        ic = np.array(run.icounts)
        over = int(ic[:3].min())
        step = [ic[3 + k * n: 3 + (k + 1) * n] - over for k in range(3)]
        kern = ic[3 + 3 * n:] - over
        nk = len(kern) // 2
        res[variant] = {
            "exact": exact,
            "step": [{"median": int(np.median(s)), "min": int(s.min()), "max": int(s.max())} for s in step],
            "apply": [int(np.median(kern[:nk])), int(np.median(kern[nk:]))],
            "code": mcu.object_sizes([fw.objects["ge_mounting"]])["ge_mounting"]["text"],
            "state": int(sizes[1]), "mounting": int(sizes[3]),
        }
    if baseline:
        res["baseline"] = {"rev": baseline, **baseline_steps(baseline, qm, counts, work, mcu, plugin)}
    return res


def report(res: dict, steps: int, date: str, load0, load1) -> str:
    base = res.get("baseline")
    cmd = f"python benchmarks/bench_mounting_mcu.py --steps {steps}" + (f" --baseline {base['rev']}" if base else "")
    lines = [SUBSECTION, "",
             f"Command: `{cmd}`", "",
             f"- machine: {cpu_model()}, {os.cpu_count()} logical cores; 1-min load average {load0} before, "
             f"{load1} after (instruction counts do not depend on the load)",
             f"- date: {date}",
             f"- toolchain: {tool_version(['arm-none-eabi-gcc', '--version'])}, "
             f"{tool_version(['qemu-system-arm', '--version'])}",
             "- firmware: runtime + `gaitedge export c` model data + `gaitedge/csrc/bench/bench_mounting.c`, "
             "`arm-none-eabi-gcc -O2 -mcpu=cortex-m4 -mthumb -mfloat-abi=soft` (`-DGE_USE_DSP` for the DSP path); "
             "QEMU 7.2 `-M mps2-an386`, TCG plugin counting the instructions between two markers around each call "
             "(exact; marker overhead subtracted)",
             f"- model: GRU-64, {res['n_inputs']} inputs (both feet), 3 classes, random weights (seed 0); "
             f"{res['steps']} consecutive steps of {res['source']}, the same samples for every mounting; "
             "triads: acc and gyr of the worn foot (2), plus the other foot's (4); fixed rotations, one mirrored",
             f"- every on-target output equal to the Python integer twin with the same mounting: "
             f"DSP: {'yes' if res['dsp']['exact'] else 'NO'}, portable: {'yes' if res['portable']['exact'] else 'NO'}",
             "",
             "| path | mounting | ge_step() instructions (median) | min .. max | extra vs none | "
             "ge_mounting_apply() alone |",
             "|---|---|---:|---:|---:|---:|"]
    for variant, name in (("dsp", "DSP (Cortex-M4/M7)"), ("portable", "portable C")):
        r = res[variant]
        none = r["step"][0]["median"]
        if res.get("baseline"):
            b = res["baseline"][variant]
            lines.append(f"| {name} | runtime at {res['baseline']['rev']} (no mounting code) | {b:,} | | | |")
        for k, label in enumerate(("none", "2 triads (one foot)", "4 triads (two feet)")):
            s = r["step"][k]
            extra = "" if k == 0 else f"{s['median'] - none:+,}"
            alone = "" if k == 0 else f"{r['apply'][k - 1]:,}"
            lines.append(f"| {name} | {label} | {s['median']:,} | {s['min']:,} .. {s['max']:,} | {extra} | {alone} |")
    lines += ["", f"- `ge_mounting.c` code: {res['dsp']['code']} B (DSP build), {res['portable']['code']} B "
              f"(portable); RAM: the mounting lives in `ge_state` ({res['dsp']['mounting']} B of its "
              f"{res['dsp']['state']} B)"]
    if base:
        lines.append(f"- no mounting: {res['dsp']['step'][0]['median'] - base['dsp']:+} instructions per step (DSP), "
                     f"{res['portable']['step'][0]['median'] - base['portable']:+} (portable) against the runtime at "
                     f"{base['rev']} (the n_triads check in ge_step())")
    return "\n".join(lines) + "\n"


def insert_subsection(path: Path, block: str) -> None:
    """Put ``block`` (a ``###`` subsection) at the end of the MCU section, replacing an older one."""
    text = path.read_text()
    sec = re.search(rf"^{re.escape(SECTION)}\n.*?(?=^## |\Z)", text, re.S | re.M)
    if sec is None:
        raise SystemExit(f"{path}: no section {SECTION!r} (run benchmarks/bench_mcu.py first)")
    body = re.sub(rf"^{re.escape(SUBSECTION)}\n.*?(?=^##+ |\Z)", "", sec.group(0), flags=re.S | re.M).rstrip()
    new = body + "\n\n" + block.strip() + "\n\n"
    text = text[: sec.start()] + new + text[sec.end():].lstrip("\n")
    tmp = path.with_suffix(".md.tmp")
    tmp.write_text(text)
    tmp.replace(path)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=100)
    ap.add_argument("--out", default=str(ROOT / "BENCHMARKS.md"))
    ap.add_argument("--baseline", metavar="REV", help="also measure the runtime of this git revision (no mounting)")
    args = ap.parse_args(argv)
    mcu = _load_mcu()
    missing = mcu.toolchain_missing()
    if missing:
        raise SystemExit(f"missing tools: {', '.join(missing)}")
    load0 = load_avg()
    date = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    with tempfile.TemporaryDirectory() as td:
        res = measure(args.steps, Path(td), args.baseline)
    block = report(res, args.steps, date, load0, load_avg())
    print(block)
    insert_subsection(Path(args.out), block)
    return 0 if res["dsp"]["exact"] and res["portable"]["exact"] else 1


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    sys.exit(main())
