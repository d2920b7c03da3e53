"""The exported C library (``gaitedge export c``) on Cortex-M0+ / M4 / M33 and RV32IMAC.

For GRU-64 and LSTM-64 (12 inputs: both feet's acc + gyro, 3 classes, random
seeded weights, quantized as in ``bench_mcu.py``) the library folder is exported
with :func:`gaitedge.export.c_export.export_c` (what ``gaitedge export c`` calls)
and built with its own ``CMakeLists.txt``:

* Cortex-M: the folder's ``cmake/arm-none-eabi.cmake`` with
  ``-DGAITEDGE_CPU=cortex-m0plus|cortex-m4|cortex-m33``, ``CMAKE_C_FLAGS=-O2 -Wall -Wextra
  -Werror`` (the optimization of the counted firmware) and ``GAITEDGE_DSP=AUTO`` (the DSP
  path on M4 and M33, portable C on M0+);
* RV32: a toolchain file written here for ``riscv64-unknown-elf-gcc -march=rv32imac
  -mabi=ilp32 --specs=picolibc.specs`` (the flags of
  :func:`gaitedge.firmware.mcu.build_riscv_firmware`), same build type.

Reported per target: code = ``.text*`` of the library's runtime objects (every
object of the static library but ``model_data.o``; ``size -A``), other constants
= ``.rodata*`` of those objects (the sigmoid/tanh table and small tables),
weights = ``.rodata*`` of ``model_data.o`` (the model's const arrays), RAM =
``ge_arena_bytes`` (the arena ``ge_init()`` needs) + ``sizeof(ge_state)`` (from
the target compiler) + the library's ``.data``/``.bss``.

Instructions per ``ge_step()``, where an emulator counts them: the library's
``src/`` and ``include/`` (with its generated ``gaitedge_config.h``) are built into
the benchmark firmware of :mod:`gaitedge.firmware.mcu` (``bench_main.c``, ``-O2``,
as ``bench_mcu.py`` / ``bench_riscv.py`` do) and run on QEMU with the
instruction-counting TCG plugin (marker overhead subtracted): Cortex-M4 on
``mps2-an386``, RV32IMAC on ``virt``, Cortex-M33 on ``mps2-an505`` when that board
runs the firmware; every step's output must equal the Python integer twin.

Usage::

    python benchmarks/bench_library.py [--steps 100]

writes ``benchmarks/results/bench_library.json`` and prints a markdown table.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_mcu import bench_recordings, make_model  # noqa: E402
from benchlib import cpu_model, load_avg, tool_version  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "bench_library.json"
FAMILIES = ("gru", "lstm")
#: (target name, CMake toolchain, GAITEDGE_CPU, size tool, emulator machine or None)
TARGETS = (
    ("cortex-m0plus", "arm", "cortex-m0plus", "arm-none-eabi-size", None),
    ("cortex-m4", "arm", "cortex-m4", "arm-none-eabi-size", "mps2-an386"),
    ("cortex-m33", "arm", "cortex-m33", "arm-none-eabi-size", "mps2-an505"),
    ("rv32imac", "riscv", None, "riscv64-unknown-elf-size", "virt"),
)
#: the CMake build: no CMAKE_BUILD_TYPE, -O2 in CMAKE_C_FLAGS (the optimization of the counted firmware)
BUILD_FLAGS = "-O2 -Wall -Wextra -Werror"
#: why a board does not run the benchmark firmware (appended to its failure)
NOT_RUNNING = {
    "mps2-an505": ": QEMU's mps2-an505 starts the Cortex-M33 in the Secure state from the vector table at "
                  "0x10000000 (its secure code alias), where nothing of the firmware is loaded; the benchmark "
                  "firmware is linked for mps2-an386 (code at 0x0, RAM at 0x20000000), so the M33 board needs "
                  "its own linker script and startup (a new board layer)",
}


def riscv_toolchain_text() -> str:
    """A CMake toolchain file for 32-bit RISC-V with Debian's riscv64-unknown-elf-gcc and picolibc."""
    from gaitedge.firmware import mcu

    return f"""set(CMAKE_SYSTEM_NAME Generic)
set(CMAKE_SYSTEM_PROCESSOR riscv32)
set(CMAKE_C_COMPILER {mcu.RV_GCC})
set(CMAKE_TRY_COMPILE_TARGET_TYPE STATIC_LIBRARY)
add_compile_options(-march=rv32imac -mabi=ilp32 --specs=picolibc.specs -ffunction-sections -fdata-sections)
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
"""


def sections(size_tool: str, obj: Path) -> dict[str, int]:
    """Bytes per section class (text, rodata, data, bss) of one object (``size -A``)."""
    out = subprocess.run([size_tool, "-A", str(obj)], capture_output=True, text=True, check=True).stdout
    acc = {"text": 0, "rodata": 0, "data": 0, "bss": 0}
    for line in out.splitlines():
        parts = line.split()
        if len(parts) < 2 or not parts[0].startswith(".") or not parts[1].isdigit():
            continue
        name = parts[0]
        for key in ("text", "rodata", "data", "bss"):
            if name == f".{key}" or name.startswith(f".{key}."):
                acc[key] += int(parts[1])
        if name.startswith(".srodata") or name.startswith(".sdata2"):
            acc["rodata"] += int(parts[1])
        elif name.startswith(".sdata"):
            acc["data"] += int(parts[1])
        elif name.startswith(".sbss"):
            acc["bss"] += int(parts[1])
    return acc


def cmake_build(lib: Path, build: Path, kind: str, cpu: str | None, name: str, toolchains: Path) -> Path:
    """Configure and build the library's static-library target; the path of its objects folder."""
    if kind == "arm":
        tc = [f"-DCMAKE_TOOLCHAIN_FILE={lib / 'cmake' / 'arm-none-eabi.cmake'}", f"-DGAITEDGE_CPU={cpu}"]
    else:
        tc = [f"-DCMAKE_TOOLCHAIN_FILE={toolchains / 'riscv32-picolibc.cmake'}"]
    cfg = ["cmake", "-S", str(lib), "-B", str(build), *tc, "-DCMAKE_BUILD_TYPE=",
           "-DGAITEDGE_BUILD_EXAMPLE=OFF", f"-DCMAKE_C_FLAGS={BUILD_FLAGS}"]
    for cmd in (cfg, ["cmake", "--build", str(build), "--target", name, "-j", "2"]):
        p = subprocess.run(cmd, capture_output=True, text=True)
        if p.returncode != 0:
            raise SystemExit(f"{' '.join(cmd)} failed:\n{p.stdout[-2000:]}\n{p.stderr[-3000:]}")
    objs = library_objects(build, name)
    if not objs:
        raise SystemExit(f"no objects of target {name} under {build}")
    return build


def library_objects(build: Path, name: str) -> list[Path]:
    """The object files of the library target (not CMake's compiler-identification objects)."""
    d = build / "CMakeFiles" / f"{name}.dir"
    return sorted(d.rglob("*.o")) + sorted(d.rglob("*.obj"))


def state_size(kind: str, cpu: str | None, lib: Path, work: Path) -> int:
    """sizeof(ge_state) for a target, from its compiler (the size of an array of that many bytes)."""
    from gaitedge.firmware import build

    src = work / "state_probe.c"
    src.write_text('#include "gaitedge_rt.h"\nconst unsigned char ge_state_probe[sizeof(ge_state)] = {0};\n')
    obj = work / f"state_probe_{cpu or kind}.o"
    if kind == "arm":
        cc, nm, flags = build.ARM_GCC, "arm-none-eabi-nm", build.arm_flags(cpu, dsp=False)
    else:
        cc, nm, flags = build.RV_GCC, "riscv64-unknown-elf-nm", build.riscv_flags()
    build.compile_c(cc, src, obj, [*flags, "-std=c99", "-O2", f"-I{lib / 'include'}"])
    out = subprocess.run([nm, "-S", str(obj)], check=True, capture_output=True, text=True).stdout
    for line in out.splitlines():
        parts = line.split()
        if parts and parts[-1] == "ge_state_probe":
            return int(parts[1], 16)
    raise SystemExit("ge_state_probe not found")


def count_steps(lib: Path, target: str, machine: str, counts: np.ndarray, ref_rows: np.ndarray, plugin: Path,
                work: Path) -> dict:
    """Instructions per ge_step() of the library's sources in the benchmark firmware, on QEMU."""
    from gaitedge.firmware import mcu

    work.mkdir(parents=True, exist_ok=True)
    mcu.write_bench_input(work / "bench_input.h", counts)
    old = mcu.RUNTIME
    mcu.RUNTIME = lib  # the library's include/ and src/ (its generated gaitedge_config.h, only its kernels)
    try:
        if target == "rv32imac":
            fw = mcu.build_riscv_firmware(lib / "src", work)
            run = mcu.run_qemu_riscv(fw.elf, plugin, timeout=600)
        else:
            fw = mcu.build_firmware(lib / "src", work, dsp=False, cpu=target)
            run = mcu.run_qemu(fw.elf, plugin, machine=machine, timeout=600)
    except subprocess.TimeoutExpired:
        return {"measured": False, "why": f"QEMU -M {machine}: no exit within 600 s"}
    except mcu.BuildError as e:
        return {"measured": False, "why": f"build failed: {str(e)[-500:]}"}
    finally:
        mcu.RUNTIME = old
    if run.rc != 0 or len(run.icounts) < 3 + len(counts):
        return {"measured": False,
                "why": f"QEMU -M {machine}: exit code {run.rc}, {len(run.icounts)} marker counts"
                       + (f"; output: {run.stdout[-300:]!r}" if run.stdout.strip() else "")
                       + NOT_RUNNING.get(machine, "")}
    rows = np.array([list(map(int, ln.split())) for ln in run.stdout.splitlines() if ln and ln[0] in "-0123456789"])
    ic = np.array(run.icounts)
    per_step = ic[3 : 3 + len(counts)] - ic[:3].min()
    return {"measured": True, "machine": machine, "median": int(np.median(per_step)), "min": int(per_step.min()),
            "max": int(per_step.max()), "steps": len(counts),
            "exact": rows.shape == ref_rows.shape and bool(np.array_equal(rows, ref_rows))}


def measure(family: str, steps: int, work: Path, recs, rec, log) -> dict:
    from gaitedge.export.c_export import arena_bytes, export_c, weight_bytes
    from gaitedge.firmware import mcu
    from gaitedge.quant import Runner, quantize_model
    from gaitedge.quant.evaluate import recording_counts

    qm = quantize_model(make_model(family, recs), recs)
    name = f"gaitedge_{family}64"
    lib = work / name
    exp = export_c(qm, lib, layout="library", measure_code=False)
    counts = recording_counts(qm, rec)[:steps]
    ref = Runner(qm).run(counts)
    ref_rows = np.column_stack([ref["raw_label"][0], ref["label"][0], ref["event"][0], ref["event_sample"][0],
                                ref["logits"][0]])
    (work / "toolchains").mkdir()
    (work / "toolchains" / "riscv32-picolibc.cmake").write_text(riscv_toolchain_text())
    plugin = mcu.build_plugin(work)
    out: dict = {"family": family, "n_inputs": qm.n_inputs, "n_classes": qm.n_classes, "hidden": qm.hidden,
                 "library": exp.report["name"], "library_sources": exp.report["library_sources"],
                 "weight_bytes_export": weight_bytes(qm), "arena": arena_bytes(qm), "targets": {}}
    for target, kind, cpu, size_tool, machine in TARGETS:
        build = cmake_build(lib, work / f"build-{target}", kind, cpu, name, work / "toolchains")
        objs = library_objects(build, name)
        per = {o.name.split(".")[0]: sections(size_tool, o) for o in objs}
        rt = {k: v for k, v in per.items() if k != "model_data"}
        md = per["model_data"]
        st = state_size(kind, cpu, lib, work)
        data_bss = sum(v["data"] + v["bss"] for v in per.values())
        res = {"code": sum(v["text"] for v in rt.values()), "code_by_object": {k: v["text"] for k, v in rt.items()},
               "runtime_rodata": sum(v["rodata"] for v in rt.values()), "weights": md["rodata"],
               "model_text": md["text"], "data_bss": data_bss, "state_struct": st,
               "ram": arena_bytes(qm) + st + data_bss}
        if machine is None:
            res["ic"] = {"measured": False, "why": "no emulator counts instructions for this core here"}
        else:
            res["ic"] = count_steps(lib, target, machine, counts, ref_rows, plugin, work / f"fw-{target}")
        out["targets"][target] = res
        ic = res["ic"]
        log(f"{family} {target}: code {res['code']} B, weights {res['weights']} B, RAM {res['ram']} B, "
            + (f"{ic['median']} instructions/step (exact {ic['exact']})" if ic["measured"]
               else f"instructions not measured ({ic['why']})"))
    return out


def table(results: list[dict]) -> str:
    L = ["| model | target | code (B) | other const (B) | weights (B) | RAM (B) | instructions / step |",
         "|---|---|---:|---:|---:|---:|---:|"]
    for r in results:
        for target, t in r["targets"].items():
            ic = t["ic"]
            if ic["measured"]:
                cell = f"{ic['median']:,}" + ("" if ic["exact"] else " (**outputs differ**)")
            elif target == "cortex-m0plus":
                cell = "no emulator"
            else:
                cell = "not measured"
            label = {"cortex-m0plus": "Cortex-M0+ (portable C)", "cortex-m4": "Cortex-M4 (DSP path)",
                     "cortex-m33": "Cortex-M33 (DSP path)", "rv32imac": "RV32IMAC (portable C)"}[target]
            L.append(f"| {r['family'].upper()}-64 | {label} | {t['code']:,} | {t['runtime_rodata']:,} | "
                     f"{t['weights']:,} | {t['ram']:,} | {cell} |")
    return "\n".join(L) + "\n"


def notes(results: list[dict], meta: dict) -> str:
    """The lines under the table: what each column is, and what was not measured and why."""
    w = {r["family"]: r["weight_bytes_export"]["total"] for r in results}
    exact = all(t["ic"]["exact"] for r in results for t in r["targets"].values() if t["ic"]["measured"])
    L = [f"- library: `gaitedge export c` folder ({results[0]['n_inputs']} inputs, {results[0]['n_classes']} "
         "classes, random seeded weights, quantized int8/int16), built with its `CMakeLists.txt`, "
         f"`CMAKE_C_FLAGS={meta['c_flags']}`, `GAITEDGE_DSP=AUTO`: `cmake/arm-none-eabi.cmake` with "
         "`GAITEDGE_CPU=cortex-m0plus|cortex-m4|cortex-m33`; RV32 with a toolchain file for "
         "`riscv64-unknown-elf-gcc -march=rv32imac -mabi=ilp32` + picolibc",
         "- code: `.text` of the library's runtime objects (`size -A`); other const: their `.rodata` "
         "(4,096 B sigmoid/tanh table + small tables); weights: `.rodata` of `model_data.o` (weight arrays "
         + ", ".join(f"{k.upper()} {v:,} B" for k, v in w.items())
         + ", plus the model descriptor and class names); RAM: `ge_arena_bytes` + `sizeof(ge_state)` "
         "(target compiler) + the library's `.data`/`.bss`, without the stack",
         f"- instructions per `ge_step()`: median over {meta['steps']} steps of {meta['input']}, the library's "
         "`src/` + `include/` in the benchmark firmware (`bench_main.c`, `-O2`), QEMU with the counting TCG "
         "plugin, marker overhead subtracted; outputs equal to the Python integer twin on every step: "
         + ("yes" if exact else "**NO**"),
         "- Cortex-M0+: no instruction count (QEMU 7.2 has no Cortex-M0+ board)"]
    whys = {t["ic"]["why"] for r in results for k, t in r["targets"].items()
            if not t["ic"]["measured"] and k != "cortex-m0plus"}
    for why in sorted(whys):
        L.append(f"- not measured: {why}")
    tc = meta["toolchains"]
    L.append(f"- toolchains: {tc['arm']}, {tc['riscv']}, {tc['cmake']}, {tc['qemu_arm']}, {tc['qemu_riscv']}; "
             f"gaitedge {meta['gaitedge']}")
    L.append(f"- machine: {meta['machine']}; load average {meta['load_before']} before, {meta['load_after']} "
             f"after (other processes were running); date: {meta['date']}")
    L.append(f"- command: `{meta['cmd']}`")
    return "\n".join(L) + "\n"


def main(argv: list[str] | None = None) -> int:
    from gaitedge.firmware import mcu

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=100, help="streaming steps counted on the emulators")
    ap.add_argument("--out", default=str(RESULTS))
    args = ap.parse_args(argv)
    missing = mcu.toolchain_missing() + mcu.riscv_toolchain_missing()
    missing += [t for t in ("cmake",) if shutil.which(t) is None]
    if missing:
        raise SystemExit(f"missing tools: {', '.join(sorted(set(missing)))}")
    import torch

    torch.set_num_threads(1)
    load0 = load_avg()
    date = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    recs, rec, src = bench_recordings(other_foot=True)
    results = []
    for family in FAMILIES:
        with tempfile.TemporaryDirectory(prefix="bench_library_") as td:
            results.append(measure(family, args.steps, Path(td), recs, rec, print))
    import gaitedge

    cmd = "python benchmarks/bench_library.py" + "".join(f" {a}" for a in (argv if argv is not None else sys.argv[1:]))
    meta = {
        "cmd": cmd, "date": date, "machine": f"{cpu_model()}, {os.cpu_count()} logical cores ({platform.machine()})",
        "load_before": load0, "load_after": load_avg(), "input": src, "steps": args.steps,
        "gaitedge": gaitedge.__version__, "c_flags": BUILD_FLAGS,
        "toolchains": {"arm": tool_version(["arm-none-eabi-gcc", "--version"]),
                       "riscv": tool_version([mcu.RV_GCC, "--version"]),
                       "cmake": tool_version(["cmake", "--version"]),
                       "qemu_arm": tool_version(["qemu-system-arm", "--version"]),
                       "qemu_riscv": tool_version(["qemu-system-riscv32", "--version"])},
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"meta": meta, "results": results}, indent=1) + "\n")
    print()
    print(table(results))
    print(notes(results, meta))
    print(f"results: {out}")
    bad = [(r["family"], k) for r in results for k, t in r["targets"].items()
           if t["ic"]["measured"] and not t["ic"]["exact"]]
    return 1 if bad else 0


if __name__ == "__main__":
    raise SystemExit(main())
