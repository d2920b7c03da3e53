"""The firmware builder: compiler flags, toolchains, compile and link, and the board images.

The pieces every firmware build shares (the Cortex-M and RISC-V flags, the runtime
sources, :func:`compile_c` and :func:`link`, the toolchain checks, ELF sizes) are
here; :func:`build_firmware` (``gaitedge firmware build``) uses them for the board
images, :mod:`gaitedge.firmware.mcu` for the benchmark firmware.

Boards:

- ``mps2-an386`` — ``arm-none-eabi-gcc -O2 -mcpu=cortex-m4 -mthumb -mfloat-abi=soft
  -DGE_USE_DSP`` (the runtime is integer-only, so the soft-float ABI costs nothing
  and the image also runs on M4 parts without an FPU), newlib-nano for
  memcpy/memset, own startup and linker script; writes ``firmware.elf``,
  ``firmware.bin`` and a size report.
- ``stm32f405`` — the same compiler flags for the STM32F405 as QEMU emulates it
  (``-M netduinoplus2``): USART1, SysTick at QEMU's fixed 168 MHz, the weight slots
  (28 KB each) and settings pages in the upper 64 KB of SRAM because QEMU ignores
  flash writes (``boards/stm32f405_netduino``).
- ``stm32f405-chip`` — the same sources for a real STM32F405: PLL to 168 MHz, the slots
  in flash sectors 10-11 written by the STM32F4 flash driver (``-DSTM32F405_CHIP``,
  ``link_chip.ld``).
- ``host`` — the same application and protocol code built with the host ``gcc``
  as a POSIX program (serial on TCP or a pty, flash in a file) for fast tests.

The output folder also gets ``model/`` (what ``gaitedge export c`` writes),
``gen/fw_model.[ch]`` (architecture hash, blob binding), ``weights.blob`` (the
built-in weights as a blob) and ``build.json`` (commands, sizes).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from gaitedge import resources
from gaitedge.errors import GaitedgeError

BOARDS = ("mps2-an386", "stm32f405", "stm32f405-chip", "host")
#: bytes of one weight slot (boards/*/board.c)
SLOT_BYTES = {"mps2-an386": 512 * 1024, "stm32f405": 28 * 1024, "stm32f405-chip": 128 * 1024, "host": 512 * 1024}
#: board -> (folder under csrc/firmware/boards, linker script, extra compiler flags)
BOARD_FILES = {
    "mps2-an386": ("mps2_an386", "link.ld", []),
    "stm32f405": ("stm32f405_netduino", "link.ld", []),
    "stm32f405-chip": ("stm32f405_netduino", "link_chip.ld", ["-DSTM32F405_CHIP"]),
    "host": ("host", None, []),
}
#: boards whose image runs under QEMU (``gaitedge device emulate``), with the QEMU machine
QEMU_MACHINES = {"mps2-an386": "mps2-an386", "stm32f405": "netduinoplus2"}

ARM_GCC = "arm-none-eabi-gcc"
#: 32-bit RISC-V: Debian's gcc-riscv64-unknown-elf (rv32 multilibs) with picolibc
RV_GCC = "riscv64-unknown-elf-gcc"
#: keep each function and object in its own section, so that ``--gc-sections`` drops what is unused
SECTION_FLAGS = ["-ffunction-sections", "-fdata-sections"]
#: the warnings the runtime compiles without (the benchmark firmware builds with them)
WARN = ["-std=c99", "-Wall", "-Wextra", "-Werror", "-pedantic"]


def arm_flags(cpu: str = "cortex-m4", dsp: bool = True) -> list[str]:
    """Cortex-M code generation: Thumb, soft-float ABI (the runtime is integer-only), the DSP path if ``dsp``."""
    return [f"-mcpu={cpu}", "-mthumb", "-mfloat-abi=soft"] + (["-DGE_USE_DSP"] if dsp else [])


def riscv_flags(march: str = "rv32imac") -> list[str]:
    """32-bit RISC-V code generation with picolibc (the runtime's portable C path)."""
    return [f"-march={march}", "-mabi=ilp32", "--specs=picolibc.specs"]


ARM_FLAGS = arm_flags()
COMMON_FLAGS = ["-O2", "-Wall", "-Wextra", *SECTION_FLAGS]


class BuildError(GaitedgeError):
    """The toolchain is missing or a compile / link step failed."""


def missing_tools(tools: list[str]) -> list[str]:
    """The ``tools`` that are not on PATH."""
    return [t for t in tools if shutil.which(t) is None]


def toolchain_missing(board: str = "mps2-an386") -> list[str]:
    """Tools a build for ``board`` needs that are not on PATH."""
    return missing_tools(["gcc"] if board == "host" else [ARM_GCC, "arm-none-eabi-size", "arm-none-eabi-objcopy"])


@dataclass
class BuildResult:
    board: str
    out_dir: Path
    image: Path  # firmware.elf (mps2-an386) or the host executable
    bin: Path | None
    blob: Path
    sizes: dict = field(default_factory=dict)
    report: dict = field(default_factory=dict)

    def summary(self) -> str:
        r, s = self.report, self.sizes
        lines = [f"firmware for {self.board}: {self.image}"]
        if self.bin is not None:
            lines[0] += f" (+ {self.bin.name})"
        lines.append(f"model {r['family']} hidden {r['hidden']} x {r['layers']}, {r['n_inputs']} inputs, "
                     f"{r['n_classes']} classes; weights sha256 {r['weights_sha256'][:16]}...; "
                     f"architecture {r['arch_hash'][:16]}...")
        if s:
            lines.append(f"image: text {s['text']} B, data {s['data']} B, bss {s['bss']} B, stack {s['stack']} B"
                         f" -> flash {s['flash']} B, RAM {s['ram']} B")
        wb = r["weight_bytes"]
        lines.append(f"weights {wb['total']} B in flash (blob payload {r['blob_payload_bytes']} B, "
                     f"fits a {r['slot_bytes'] // 1024} KB slot), arena {r['arena_bytes']} B")
        lines.append(f"weights blob: {self.blob}")
        return "\n".join(lines)


def run_tool(cmd: list[str], log: list[str] | None = None, cwd: Path | None = None) -> str:
    """Run one toolchain command (appended to ``log``); its stdout, or BuildError with the end of its output."""
    if log is not None:
        log.append(" ".join(cmd))
    p = subprocess.run(cmd, capture_output=True, text=True, cwd=cwd)
    if p.returncode != 0:
        tail = "\n".join((p.stderr or p.stdout).strip().splitlines()[-15:])
        raise BuildError(f"{Path(cmd[0]).name} failed:\n{tail}")
    return p.stdout


def compile_c(cc: str, src: Path, obj: Path, flags: list[str], log: list[str] | None = None) -> Path:
    """Compile one C file to ``obj`` with ``flags`` (BuildError on failure)."""
    run_tool([cc, *flags, "-c", str(src), "-o", str(obj)], log)
    return obj


def link(cc: str, objs: list[Path], out: Path, flags: list[str], log: list[str] | None = None) -> Path:
    """Link ``objs`` into ``out`` with ``flags`` (BuildError on failure)."""
    run_tool([cc, *flags, *map(str, objs), "-o", str(out)], log)
    return out


def elf_sizes(elf: Path) -> dict:
    """text/data/bss/stack of an ELF (``arm-none-eabi-size -A``), flash and RAM totals."""
    out = run_tool(["arm-none-eabi-size", "-A", str(elf)])
    sec = {}
    for line in out.splitlines():
        parts = line.split()
        if len(parts) >= 3 and parts[0].startswith(".") and parts[1].isdigit():
            sec[parts[0]] = int(parts[1])
    text = sec.get(".isr_vector", 0) + sec.get(".text", 0) + sec.get(".ARM.exidx", 0)
    data, bss, stack = sec.get(".data", 0), sec.get(".bss", 0), sec.get(".stack", 0)
    return {"text": text, "data": data, "bss": bss, "stack": stack, "flash": text + data, "ram": data + bss + stack}


def runtime_sources(runtime_dir: Path | None = None) -> tuple[Path, list[Path]]:
    """(include folder, ``.c`` files) of the C runtime (default: the one shipped with gaitedge)."""
    rt = Path(runtime_dir) if runtime_dir else resources.runtime_dir()
    srcs = sorted((rt / "src").glob("*.c"))
    if not srcs:
        raise BuildError(f"{rt}: no C runtime sources here")
    return rt / "include", srcs


def build_firmware(
    source,
    out_dir: str | Path,
    board: str = "mps2-an386",
    runtime_dir: str | Path | None = None,
    extra_cflags: list[str] | None = None,
    log=None,
) -> BuildResult:
    """Build the firmware for ``board`` with the model ``source`` (run dir, quant.npz or QuantModel)."""
    from gaitedge.export.c_common import kind_cflags
    from gaitedge.export.c_export import export_c_stream
    from gaitedge.export.packing import arch_hash, build_payload, write_blob
    from gaitedge.firmware.codegen import fw_model_c, fw_model_h
    from gaitedge.quant.workflow import load_quant_model

    if board not in BOARDS:
        raise BuildError(f"unknown board {board!r}; available: {', '.join(BOARDS)}")
    missing = toolchain_missing(board)
    if missing:
        hint = ("apt-get install gcc-arm-none-eabi libnewlib-arm-none-eabi" if board != "host"
                else "install a C compiler")
        raise BuildError(f"{', '.join(missing)} not found ({hint})")
    fw_dir, proto_dir = resources.firmware_dir(), resources.protocol_dir()
    inc, rt_srcs = runtime_sources(Path(runtime_dir) if runtime_dir else None)
    qm = load_quant_model(source, log=log)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    ex = export_c_stream(qm, out / "model", copy_runtime=False, measure_code=False)
    gen = out / "gen"
    gen.mkdir(exist_ok=True)
    (gen / "fw_model.h").write_text(fw_model_h(qm))
    (gen / "fw_model.c").write_text(fw_model_c(qm))
    blob = write_blob(qm, out / "weights.blob")
    folder, link_script, board_flags = BOARD_FILES[board]
    board_dir = fw_dir / "boards" / folder
    srcs = [*rt_srcs, out / "model" / "model_data.c", gen / "fw_model.c", proto_dir / "ge_proto.c",
            fw_dir / "fw_app.c", fw_dir / "fw_blob.c", fw_dir / "fw_mount.c", fw_dir / "fw_mount_store.c",
            *sorted(board_dir.glob("*.c"))]
    incs = [f"-I{p}" for p in (inc, out / "model", gen, proto_dir, fw_dir)]
    cmds: list[str] = []
    objdir = out / "obj"
    objdir.mkdir(exist_ok=True)
    if board == "host":
        cc, std, arch = "gcc", "-std=gnu99", []
    else:
        cc, std, arch = ARM_GCC, "-std=c99", ARM_FLAGS
    objs = []
    kinds = kind_cflags(qm)  # link only the kernels of this model's layer kinds
    for src in srcs:
        o = objdir / (src.parent.name + "_" + src.stem + ".o")
        objs.append(compile_c(cc, src, o, [std, *arch, *COMMON_FLAGS, *incs, *kinds, *board_flags,
                                           *(extra_cflags or [])], cmds))
    sizes: dict = {}
    binf = None
    if board == "host":
        image = out / "gaitedge-fw-host"
        link(cc, objs, image, list(extra_cflags or []), cmds)
    else:
        image = out / "firmware.elf"
        link(cc, objs, image, [*arch, "-nostartfiles", "--specs=nano.specs", "--specs=nosys.specs", "-T",
                               str(board_dir / link_script), "-Wl,--gc-sections", f"-Wl,-Map={out / 'firmware.map'}"],
             cmds)
        binf = out / "firmware.bin"
        # stm32f405-chip: the image skips sectors 2-3 (settings pages); the gap is erased flash
        gap = ["--gap-fill", "0xff"] if board == "stm32f405-chip" else []
        run_tool(["arm-none-eabi-objcopy", *gap, "-O", "binary", str(image), str(binf)], cmds)
        sizes = elf_sizes(image)
    report = dict(ex.report)
    report.pop("saturation", None)
    report.update({
        "board": board,
        "arch_hash": arch_hash(qm).hex(),
        "blob_payload_bytes": len(build_payload(qm)),
        "slot_bytes": SLOT_BYTES[board],
        "build_s": round(time.time() - t0, 2),
    })
    if report["blob_payload_bytes"] + 96 > report["slot_bytes"]:
        raise BuildError(f"the weights ({report['blob_payload_bytes']} B) do not fit a "
                         f"{report['slot_bytes']} B weight slot of {board}")
    res = BuildResult(board, out, image, binf, blob, sizes, report)
    (out / "build.json").write_text(json.dumps({"report": report, "sizes": sizes, "commands": cmds,
                                                "image": str(image)}, indent=2) + "\n")
    return res
