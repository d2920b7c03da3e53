"""The C runtime built for host tests, shared by every test module (not a test module).

The runtime is compiled once per test process and variant (portable C, and the DSP
path with its instructions emulated in C) with ``gcc -std=c99 -Wall -Wextra
-Werror -pedantic -fsanitize=address,undefined``; the kernel tests link their
exported models against these objects.
"""

from __future__ import annotations

import atexit
import functools
import shutil
import subprocess
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RUNTIME = ROOT / "firmware_export" / "runtime"
HARNESS = ROOT / "firmware_export" / "host" / "ge_harness.c"
GCC = shutil.which("gcc")
ARM_GCC = shutil.which("arm-none-eabi-gcc")
CFLAGS = ["-std=c99", "-O1", "-g", "-Wall", "-Wextra", "-Werror", "-pedantic",
          "-fsanitize=address,undefined", "-fno-sanitize-recover=all"]
VARIANTS = {"portable": [], "dsp-emulated": ["-DGE_USE_DSP_EMULATE"]}


def compile_cmd(args: list[str], cwd: Path | None = None) -> None:
    """Run a compiler command; AssertionError with the compiler's message when it fails."""
    res = subprocess.run(args, capture_output=True, text=True, cwd=cwd)
    if res.returncode != 0:
        raise AssertionError(f"compile failed: {' '.join(map(str, args))}\n{res.stderr}")


@functools.lru_cache(maxsize=None)
def runtime_objects() -> dict[str, list[Path]]:
    """{variant: the runtime's object files}, compiled once per process (2 jobs at a time)."""
    d = Path(tempfile.mkdtemp(prefix="gaitedge-rt-"))
    atexit.register(shutil.rmtree, d, True)
    out: dict[str, list[Path]] = {}
    jobs = []
    for name, flags in VARIANTS.items():
        (d / name).mkdir()
        out[name] = []
        for src in sorted((RUNTIME / "src").glob("*.c")):
            obj = d / name / (src.stem + ".o")
            out[name].append(obj)
            jobs.append([GCC, *CFLAGS, *flags, f"-I{RUNTIME / 'include'}", "-c", str(src), "-o", str(obj)])
    with ThreadPoolExecutor(2) as ex:
        list(ex.map(compile_cmd, jobs))
    return out
