"""Fixed-point C runtime on 32-bit RISC-V beside the Cortex-M4: instructions per step.

The LSTM-64 and GRU-64 models of ``bench_mcu.py`` (6 inputs, random seeded weights,
inputs from an IPOL recording) are built with ``riscv64-unknown-elf-gcc -O2
-march=rv32imac -mabi=ilp32`` and picolibc (semihosting) for QEMU ``-M virt``, and
with ``arm-none-eabi-gcc -O2 -mcpu=cortex-m4`` (portable C and the DSP path) for
``-M mps2-an386``; the same TCG plugin counts the guest instructions of every
``ge_step()`` (marker overhead subtracted).  Every step's output must equal the
Python integer twin.  Writes the subsection "32-bit RISC-V" of the microcontroller
section of BENCHMARKS.md.

Usage::

    python benchmarks/bench_riscv.py [--steps 100]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from bench_mcu import bench_recordings, make_model
from bench_mounting_mcu import insert_subsection
from benchlib import cpu_model, load_avg, tool_version

ROOT = Path(__file__).resolve().parents[1]
SUBSECTION = "### 32-bit RISC-V (rv32imac, QEMU virt)"


def _code_bytes(size_tool: str, nm: str, objs: dict[str, Path]) -> int:
    """.text + .data of the runtime objects a ge_step() firmware links (tables and model data excluded)."""
    from gaitedge.export.c_common import linked_objects

    linked = linked_objects(nm, [str(p) for p in objs.values()], ("ge_model",))
    keep = [o for o in linked if Path(o).stem not in ("bench_main", "startup", "model_data", "ge_lut")]
    out = subprocess.run([size_tool, "-t", *keep], capture_output=True, text=True, check=True).stdout
    total = out.strip().splitlines()[-1].split()
    return int(total[0]) + int(total[1])


def measure(family: str, steps: int, work: Path) -> dict:
    from gaitedge.export.c_common import kind_cflags
    from gaitedge.export.c_export import export_c
    from gaitedge.firmware import mcu
    from gaitedge.quant import Runner, quantize_model
    from gaitedge.quant.evaluate import recording_counts

    recs, rec, src = bench_recordings()
    qm = quantize_model(make_model(family, recs), recs)
    export_c(qm, work / "model", copy_runtime=False, measure_code=False)
    counts = recording_counts(qm, rec)[:steps]
    ref = Runner(qm).run(counts)
    ref_rows = np.column_stack([ref["raw_label"][0], ref["label"][0], ref["event"][0], ref["event_sample"][0],
                                ref["logits"][0]])
    plugin = mcu.build_plugin(work)
    out: dict = {"family": family, "source": src}
    for variant in ("m4-dsp", "m4-portable", "rv32imac"):
        d = work / variant
        d.mkdir()
        mcu.write_bench_input(d / "bench_input.h", counts)
        if variant == "rv32imac":
            fw = mcu.build_riscv_firmware(work / "model", d, extra=kind_cflags(qm))
            run = mcu.run_qemu_riscv(fw.elf, plugin, timeout=300)
            code = _code_bytes("riscv64-unknown-elf-size", "riscv64-unknown-elf-nm", fw.objects)
        else:
            fw = mcu.build_firmware(work / "model", d, dsp=variant == "m4-dsp", extra=kind_cflags(qm))
            run = mcu.run_qemu(fw.elf, plugin, timeout=300)
            code = _code_bytes("arm-none-eabi-size", "arm-none-eabi-nm", fw.objects)
        if run.rc != 0:
            raise SystemExit(f"{family} {variant}: firmware failed (rc {run.rc})\n{run.stdout[-2000:]}")
        rows = np.array([list(map(int, ln.split())) for ln in run.stdout.splitlines() if ln and ln[0] in "-0123456789"])
        ic = np.array(run.icounts)
        per_step = ic[3 : 3 + len(counts)] - ic[:3].min()
        out[variant] = {"median": int(np.median(per_step)), "min": int(per_step.min()), "max": int(per_step.max()),
                        "exact": rows.shape == ref_rows.shape and bool(np.array_equal(rows, ref_rows)), "code": code}
    return out


def report(results: list[dict], steps: int, date: str, load0: str, load1: str) -> str:
    lines = [SUBSECTION, "",
             f"Instructions per `ge_step()` (median over {steps} steps of {results[0]['source']}; exact counts "
             "by the TCG plugin, marker overhead subtracted) and the runtime code a `ge_step()` firmware links "
             "(.text + .data of the runtime objects, sigmoid/tanh table and model data excluded). "
             "Outputs equal to the Python integer twin on every step: "
             + ("yes" if all(r[v]["exact"] for r in results for v in ("m4-dsp", "m4-portable", "rv32imac"))
                else "**NO**") + ".", "",
             "| model | Cortex-M4 DSP path | Cortex-M4 portable C | RV32IMAC portable C | RV32 / M4 DSP | "
             "code M4 DSP / M4 portable / RV32 |",
             "|---|---:|---:|---:|---:|---|"]
    for r in results:
        dsp, port, rv = r["m4-dsp"], r["m4-portable"], r["rv32imac"]
        lines.append(f"| {r['family'].upper()}-64 | {dsp['median']:,} | {port['median']:,} | {rv['median']:,} | "
                     f"{rv['median'] / dsp['median']:.2f}x | {dsp['code']:,} / {port['code']:,} / {rv['code']:,} B |")
    lines += [
        "",
        "RISC-V has only the portable C path: RV32IMAC has no packed 16-bit multiply-accumulate (the M4's SMLAD "
        "does two 16x16 MACs per instruction; SXTB16 unpacks two int8 weights at once), so every int8 weight "
        "costs its own load/sign-extension, multiply and add, and the saturations are compare-and-branch "
        "sequences instead of SSAT. Against the M4's portable C path the difference is the instruction sets "
        "(Thumb-2's register-shifted operands and conditional execution against RV32's simpler instructions); "
        "the RISC-V P extension (packed SIMD) would be the counterpart of the DSP path.",
        "",
        f"- machine: {cpu_model()}; load average {load0} before, {load1} after; date: {date}",
        f"- toolchain: {tool_version(['riscv64-unknown-elf-gcc', '--version'])} with picolibc "
        f"(`-O2 -march=rv32imac -mabi=ilp32 --specs=picolibc.specs --oslib=semihost`), "
        f"{tool_version(['qemu-system-riscv32', '--version'])} `-M virt`; "
        f"{tool_version(['arm-none-eabi-gcc', '--version'])} `-O2 -mcpu=cortex-m4 -mthumb` for the M4 columns",
        f"- command: `python benchmarks/bench_riscv.py --steps {steps}`",
    ]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    from gaitedge.firmware import mcu

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=100)
    ap.add_argument("--out", default=str(ROOT / "BENCHMARKS.md"))
    args = ap.parse_args(argv)
    missing = mcu.toolchain_missing() + mcu.riscv_toolchain_missing()
    if missing:
        raise SystemExit(f"missing tools: {', '.join(sorted(set(missing)))}")
    load0 = load_avg()
    date = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    results = []
    for family in ("lstm", "gru"):
        with tempfile.TemporaryDirectory() as td:
            results.append(measure(family, args.steps, Path(td)))
    block = report(results, args.steps, date, load0, load_avg())
    print(block)
    import bench_mounting_mcu

    bench_mounting_mcu.SUBSECTION = SUBSECTION
    insert_subsection(Path(args.out), block)
    return 0 if all(r[v]["exact"] for r in results for v in ("m4-dsp", "m4-portable", "rv32imac")) else 1


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    sys.exit(main())
