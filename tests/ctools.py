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

import numpy as np

from gaitedge import resources

ROOT = Path(__file__).resolve().parents[1]
RUNTIME = resources.runtime_dir()
HARNESS = resources.host_dir() / "ge_harness.c"
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


def build(qm, objs: dict[str, list[Path]], work: Path) -> dict[str, Path]:
    """Export ``qm`` into ``work/model`` and link the host harness for every variant: {variant: executable}."""
    from gaitedge.export.c_export import arena_bytes, export_c

    res = export_c(qm, work / "model", copy_runtime=False, measure_code=False)
    assert res.report["arena_bytes"] == arena_bytes(qm)
    exes, jobs = {}, []
    for name, flags in VARIANTS.items():
        exe = work / f"harness-{name}"
        jobs.append([GCC, *CFLAGS, *flags, f"-I{RUNTIME / 'include'}", f"-I{work / 'model'}",
                     str(work / "model" / "model_data.c"), str(HARNESS), *map(str, objs[name]), "-o", str(exe)])
        exes[name] = exe
    with ThreadPoolExecutor(2) as ex:
        list(ex.map(compile_cmd, jobs))
    return exes


def c_steps(exe: Path, counts: np.ndarray, *mode: str) -> np.ndarray:
    """Rows the harness prints per step (raw label, label, event, event sample, logits)."""
    r = subprocess.run([str(exe), *(mode or ("step",))], input=np.asarray(counts, "<i2").tobytes(),
                       capture_output=True, check=True)
    return np.array([list(map(int, line.split())) for line in r.stdout.decode().splitlines()])


def py_steps(qm, counts: np.ndarray, reset_at: int = -1) -> np.ndarray:
    """The Python twin's rows for the same steps (``reset_at``: step before which the stream is reset)."""
    from gaitedge.quant import Runner

    runner = Runner(qm)
    rows = []
    for t in range(len(counts)):
        if t == reset_at:
            runner.reset()
        o = runner.step(counts[t][None])
        rows.append([o.raw_label[0], o.label[0], o.event[0], o.event_sample[0], *o.logits[0]])
    return np.array(rows)
