"""Build the C runtime + an exported window model (``ge_window_model``) into Cortex-M firmware.

The window counterpart of ``mcu.py`` (whose toolchain helpers, plugin and QEMU
runner it reuses): ``bench_window.c`` runs one window through ``ge_window_run()``
between the instruction-counting markers.  Imported by path by
``benchmarks/bench_models.py`` and the tests.
"""

from __future__ import annotations

import importlib.util
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
    return _mcu().build_firmware(model_dir, work, dsp, cpu, print_steps, main_src=HERE / "bench_window.c")
