"""Benchmark firmware: the C runtime + an exported model built for Cortex-M and run on QEMU.

Used by the benchmarks (``benchmarks/bench_mcu.py`` and others) and the tests; the
compiler flags, compile and link steps are those of :mod:`gaitedge.firmware.build`.
Method: ``arm-none-eabi-gcc -O2 -mcpu=cortex-m4 -mthumb`` with newlib-nano +
semihosting, ``qemu-system-arm -M mps2-an386`` and a TCG plugin
(``gaitedge/csrc/bench/icount_plugin.c``) that counts the guest instructions
executed between two marker functions.  The sources are in
:func:`gaitedge.resources.bench_dir`.
"""

from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from gaitedge import resources
from gaitedge.firmware.build import (
    ARM_GCC,
    RV_GCC,
    SECTION_FLAGS,
    WARN,
    BuildError,
    arm_flags,
    compile_c,
    link,
    missing_tools,
    riscv_flags,
    run_tool,
)

#: the runtime the benchmark firmware is built from (None: the one shipped with gaitedge;
#: a benchmark may point it at another revision's runtime).
RUNTIME: Path | None = None
QEMU = "qemu-system-arm"

__all__ = ["ARM_GCC", "QEMU", "RV_GCC", "RV_QEMU", "RUNTIME", "WARN", "BuildError", "Firmware", "QemuRun",
           "build_arm_program", "build_firmware", "build_plugin", "build_riscv_firmware", "build_window_firmware", "object_sizes",
           "riscv_toolchain_missing", "run_qemu", "run_qemu_riscv", "runtime_root", "symbol", "toolchain_missing",
           "write_bench_input"]


def toolchain_missing() -> list[str]:
    """Names of the tools that are not installed (empty when everything is there)."""
    return missing_tools([ARM_GCC, "arm-none-eabi-size", "arm-none-eabi-nm", QEMU, "gcc"])


def build_plugin(out_dir: Path) -> Path:
    """Compile the instruction-counting TCG plugin for the host."""
    so = Path(out_dir) / "icount_plugin.so"
    return link("gcc", [resources.bench_dir() / "icount_plugin.c"], so, ["-shared", "-fPIC", "-O2", "-Wall", "-Wextra"])


def write_bench_input(path: Path, counts: np.ndarray) -> None:
    """``bench_input.h`` holding ``counts [N, C]`` (int16) for the firmware."""
    counts = np.asarray(counts, np.int64)
    n, c = counts.shape
    vals = ", ".join(str(int(v)) for v in counts.ravel())
    Path(path).write_text(
        "/* generated benchmark input: raw int16 counts */\n#include <stdint.h>\n"
        f"#define BENCH_N {n}\n#define BENCH_NI {c}\n"
        f"static const int16_t bench_input[{n * c}] = {{{vals}}};\n"
    )


@dataclass
class Firmware:
    """A built benchmark ELF, its object files by source stem and the stack bytes per function."""

    elf: Path
    objects: dict[str, Path] = field(default_factory=dict)
    stack_usage: dict[str, int] = field(default_factory=dict)


def runtime_root() -> Path:
    """The runtime the benchmark firmware is built from (:data:`RUNTIME`, else the one shipped with gaitedge)."""
    return Path(RUNTIME) if RUNTIME is not None else resources.runtime_dir()


def build_arm_program(sources: list[tuple[Path, list[str]]], work: Path, includes: list[Path], dsp: bool = False,
                      cpu: str = "cortex-m4", extra: list[str] | None = None) -> Firmware:
    """Compile ``(source, its own flags)`` pairs + the semihosting startup into ``work/fw.elf`` for QEMU mps2-an386.

    Every source gets ``-O2``, the Cortex-M flags (:func:`gaitedge.firmware.build.arm_flags`),
    the section flags and ``-I`` of ``includes`` and ``work``; newlib-nano with rdimon.
    """
    here = resources.bench_dir()
    work = Path(work)
    work.mkdir(parents=True, exist_ok=True)
    arch = arm_flags(cpu, dsp)
    base = ["-O2", *arch, *SECTION_FLAGS, *(f"-I{d}" for d in [*includes, work]), *(extra or [])]
    objs: dict[str, Path] = {}
    for src, flags in [*sources, (here / "startup.c", ["-std=c99", "-Wall"])]:
        objs[src.stem] = compile_c(ARM_GCC, src, work / (src.stem + ".o"), [*flags, *base])
    elf = link(ARM_GCC, list(objs.values()), work / "fw.elf",
               [*arch, "--specs=nano.specs", "--specs=rdimon.specs", "-T", str(here / "mps2_an386.ld"),
                "-Wl,--gc-sections"])
    su: dict[str, int] = {}
    for f in work.glob("*.su"):
        for line in f.read_text().splitlines():
            parts = line.split("\t")
            if len(parts) >= 2:
                su[parts[0].split(":")[-1]] = int(parts[1])
    return Firmware(elf, objs, su)


def build_firmware(model_dir: Path, work: Path, dsp: bool, cpu: str = "cortex-m4", print_steps: bool = True,
                   extra: list[str] | None = None, main_src: Path | None = None) -> Firmware:
    """Compile runtime + model (``model_dir`` holds model_data.c/.h) + a bench main into an ELF.

    ``main_src``: the bench program (default ``bench_main.c``, the streaming step).
    ``work`` must hold ``bench_input.h`` (:func:`write_bench_input`).
    """
    runtime = runtime_root()
    srcs = [(s, [*WARN, "-fstack-usage"]) for s in _model_sources(model_dir)]
    main = (main_src or resources.bench_dir() / "bench_main.c", WARN + [f"-DBENCH_PRINT={int(print_steps)}"])
    return build_arm_program([*srcs, main], work, [runtime / "include", Path(model_dir)], dsp, cpu, extra)


def _model_sources(model_dir: Path) -> list[Path]:
    """The runtime's ``.c`` files and the model's ``model_data.c``."""
    return sorted((runtime_root() / "src").glob("*.c")) + [Path(model_dir) / "model_data.c"]


def build_window_firmware(model_dir: Path, work: Path, dsp: bool, cpu: str = "cortex-m4",
                          print_steps: bool = True) -> Firmware:
    """Compile runtime + window model (``model_dir``: model_data.c/.h of a ``ge_window_model``) + ``bench_window.c``.

    ``bench_window.c`` runs one window through ``ge_window_run()`` between the
    instruction-counting markers; ``work`` must hold ``bench_input.h``.
    """
    return build_firmware(model_dir, work, dsp, cpu, print_steps, main_src=resources.bench_dir() / "bench_window.c")


#: QEMU for the 32-bit RISC-V builds (``-M virt``)
RV_QEMU = "qemu-system-riscv32"
#: memory of QEMU's riscv32 ``virt`` board for the picolibc linker script (4 MB code, 1 MB RAM)
RV_LINK = ["-Wl,--defsym=__flash=0x80000000", "-Wl,--defsym=__flash_size=0x400000",
           "-Wl,--defsym=__ram=0x80400000", "-Wl,--defsym=__ram_size=0x100000", "-Wl,--defsym=__stack_size=0x4000"]


def riscv_toolchain_missing() -> list[str]:
    """The RISC-V tools that are not installed (gcc-riscv64-unknown-elf, picolibc, qemu-system-misc)."""
    missing = missing_tools([RV_GCC, "riscv64-unknown-elf-nm", "riscv64-unknown-elf-size", RV_QEMU, "gcc"])
    if not missing:
        p = subprocess.run([RV_GCC, *riscv_flags(), "-E", "-x", "c", "-", "-o", "/dev/null"],
                           input="#include <stdio.h>\n", capture_output=True, text=True)
        if p.returncode != 0:
            missing.append("picolibc-riscv64-unknown-elf")
    return missing


def build_riscv_firmware(model_dir: Path, work: Path, march: str = "rv32imac", print_steps: bool = True,
                         extra: list[str] | None = None, main_src: Path | None = None) -> Firmware:
    """Compile runtime + model + ``bench_main.c`` for 32-bit RISC-V (picolibc, semihosting) into an ELF.

    The portable C path of the runtime, ``-O2 -march=<march> -mabi=ilp32``, for QEMU
    ``-M virt``; ``work`` must hold ``bench_input.h`` (:func:`write_bench_input`).
    """
    arch = riscv_flags(march)
    work = Path(work)
    work.mkdir(parents=True, exist_ok=True)
    base = ["-O2", *arch, *SECTION_FLAGS, f"-I{runtime_root() / 'include'}", f"-I{model_dir}", f"-I{work}",
            *(extra or [])]
    objs: dict[str, Path] = {}
    for src, flags in [(src, WARN) for src in _model_sources(model_dir)] + [
            (main_src or resources.bench_dir() / "bench_main.c", WARN + [f"-DBENCH_PRINT={int(print_steps)}"])]:
        objs[src.stem] = compile_c(RV_GCC, src, work / (src.stem + ".o"), [*flags, *base])
    elf = link(RV_GCC, list(objs.values()), work / "fw-rv32.elf",
               [*arch, "--oslib=semihost", *RV_LINK, "-Wl,--gc-sections"])
    return Firmware(elf, objs, {})


def run_qemu_riscv(elf: Path, plugin: Path | None = None, timeout: float = 120) -> QemuRun:
    """Run a RISC-V ELF on QEMU ``-M virt`` with semihosting; with ``plugin``, the marker instruction counts."""
    cmd = [RV_QEMU, "-M", "virt", "-nographic", "-bios", "none", "-monitor", "none", "-serial", "none",
           "-semihosting-config", "enable=on,target=native", "-kernel", str(elf)]
    if plugin is not None:
        nm = "riscv64-unknown-elf-nm"
        b, e = symbol(elf, "ge_bench_begin", nm), symbol(elf, "ge_bench_end", nm)
        cmd += ["-plugin", f"{plugin},begin={b:#x},end={e:#x}", "-d", "plugin"]
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    counts = [int(m) for m in re.findall(r"^icount (\d+)$", p.stderr, flags=re.M)]
    # picolibc's semihosting stdout reaches QEMU's stderr, beside the plugin's lines
    out = p.stdout + "".join(ln for ln in p.stderr.splitlines(keepends=True) if not ln.startswith("icount "))
    return QemuRun(p.returncode, out, counts)


def symbol(elf: Path, name: str, nm: str = "arm-none-eabi-nm") -> int:
    """Address of a symbol in an ELF (``nm`` of the ELF's toolchain); KeyError when absent."""
    out = run_tool([nm, str(elf)])
    for line in out.splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[2] == name:
            return int(parts[0], 16)
    raise KeyError(name)


@dataclass
class QemuRun:
    """Exit code, semihosting output and the instruction counts between the markers of a QEMU run."""

    rc: int
    stdout: str
    icounts: list[int]


def run_qemu(elf: Path, plugin: Path | None = None, machine: str = "mps2-an386", timeout: float = 120) -> QemuRun:
    """Run firmware with semihosting; with ``plugin``, collect the marker instruction counts."""
    cmd = [QEMU, "-M", machine, "-display", "none", "-monitor", "none", "-serial", "none",
           "-semihosting-config", "enable=on,target=native", "-kernel", str(elf)]
    if plugin is not None:
        b = symbol(elf, "ge_bench_begin")
        e = symbol(elf, "ge_bench_end")
        cmd += ["-plugin", f"{plugin},begin={b:#x},end={e:#x}", "-d", "plugin"]
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    counts = [int(m) for m in re.findall(r"^icount (\d+)$", p.stderr, flags=re.M)]
    return QemuRun(p.returncode, p.stdout, counts)


def object_sizes(paths: list[Path]) -> dict[str, int]:
    """text+data+bss of object files (``arm-none-eabi-size``)."""
    out = run_tool(["arm-none-eabi-size", *map(str, paths)]).splitlines()[1:]
    res = {}
    for line in out:
        parts = line.split()
        res[Path(parts[5]).stem] = {"text": int(parts[0]), "data": int(parts[1]), "bss": int(parts[2])}
    return res
