"""Build the C runtime + an exported window model (``ge_window_model``) into Cortex-M firmware.

The window counterpart of ``mcu.py`` (whose toolchain helpers, plugin and QEMU
runner it reuses): ``bench_window.c`` runs one window through ``ge_window_run()``
between the instruction-counting markers.  Imported by path by
``benchmarks/bench_models.py`` and the tests.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def _mcu():
    if "ge_mcu" in sys.modules:
        return sys.modules["ge_mcu"]
    spec = importlib.util.spec_from_file_location("ge_mcu", HERE / "mcu.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules["ge_mcu"] = mod
    spec.loader.exec_module(mod)
    return mod


def build_window_firmware(model_dir: Path, work: Path, dsp: bool, cpu: str = "cortex-m4", print_steps: bool = True):
    """Compile runtime + window model (``model_dir`` holds model_data.c/.h) + bench_window.c into an ELF.

    ``work`` must hold ``bench_input.h`` (``mcu.write_bench_input``).  Returns ``mcu.Firmware``.
    """
    mcu = _mcu()
    work = Path(work)
    work.mkdir(parents=True, exist_ok=True)
    arch = ["-mcpu=" + cpu, "-mthumb", "-mfloat-abi=soft"]
    base = ["-O2", *arch, "-ffunction-sections", "-fdata-sections", f"-I{mcu.RUNTIME / 'include'}",
            f"-I{model_dir}", f"-I{work}"] + (["-DGE_USE_DSP"] if dsp else [])
    objs: dict[str, Path] = {}
    for src in sorted((mcu.RUNTIME / "src").glob("*.c")) + [Path(model_dir) / "model_data.c"]:
        o = work / (src.stem + ".o")
        subprocess.run([mcu.ARM_GCC, *mcu.WARN, *base, "-fstack-usage", "-c", str(src), "-o", str(o)], check=True,
                       capture_output=True, text=True)
        objs[src.stem] = o
    for src, flags in ((HERE / "bench_window.c", mcu.WARN + [f"-DBENCH_PRINT={int(print_steps)}"]),
                       (HERE / "startup.c", ["-std=c99", "-Wall"])):
        o = work / (src.stem + ".o")
        subprocess.run([mcu.ARM_GCC, *flags, *base, "-c", str(src), "-o", str(o)], check=True, capture_output=True,
                       text=True)
        objs[src.stem] = o
    elf = work / "fw.elf"
    subprocess.run([mcu.ARM_GCC, *arch, "--specs=nano.specs", "--specs=rdimon.specs", "-T",
                    str(HERE / "mps2_an386.ld"), "-Wl,--gc-sections", *map(str, objs.values()), "-o", str(elf)],
                   check=True, capture_output=True, text=True)
    su: dict[str, int] = {}
    for f in work.glob("*.su"):
        for line in f.read_text().splitlines():
            parts = line.split("\t")
            if len(parts) >= 2:
                su[parts[0].split(":")[-1]] = int(parts[1])
    return mcu.Firmware(elf, objs, su)
