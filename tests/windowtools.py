"""Helpers of the whole-window model tests (bidirectional, encoder-decoder); not a test module."""

from __future__ import annotations

import atexit
import functools
import shutil
import subprocess
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import torch

from gaitedge import resources
from gaitedge.checkpoint import TrainedModel
from gaitedge.data.preprocess import Normalizer
from gaitedge.models import build_model

RUNTIME = resources.runtime_dir()
HARNESS = resources.host_dir() / "ge_window_harness.c"
GCC = shutil.which("gcc")
ARM_GCC = shutil.which("arm-none-eabi-gcc")
QEMU = shutil.which("qemu-system-arm")
CFLAGS = ["-std=c99", "-O1", "-g", "-Wall", "-Wextra", "-Werror", "-pedantic",
          "-fsanitize=address,undefined", "-fno-sanitize-recover=all"]


def make_window_tm(recs, family: str, hidden: int = 12, lowpass: float = 0.0, delay: int = 0, min_run: int = 3,
                   seed: int = 0, gain: float = 2.0, **options) -> TrainedModel:
    """An untrained whole-window model with lively dynamics and real preprocessing."""
    torch.manual_seed(seed)
    r0 = recs[0]
    model = build_model(family, len(r0.channels), len(r0.classes), hidden=hidden, **options)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.startswith(("levels", "encoder", "decoder")) and "weight" in name:
                p.mul_(gain)
        model.head.weight.mul_(4.0)
    model.eval()
    tm = TrainedModel(model=model, classes=r0.classes, channels=list(r0.channels), units=list(r0.units),
                      rate_hz=r0.rate_hz, normalizer=Normalizer(np.zeros(1), np.ones(1)), lowpass_hz=lowpass,
                      filter_order=2, min_run=min_run, tolerance_ms=50.0, delay=delay)
    tm.normalizer = Normalizer.fit([tm.preprocess(r).signals for r in recs])
    return tm


def _compile(args: list[str]) -> None:
    res = subprocess.run(args, capture_output=True, text=True)
    if res.returncode != 0:
        raise AssertionError(f"compile failed: {' '.join(args)}\n{res.stderr}")


@functools.lru_cache(maxsize=None)
def runtime_objects() -> tuple[Path, ...]:
    """The runtime compiled once per test session (host gcc, sanitizers)."""
    d = Path(tempfile.mkdtemp(prefix="gaitedge-window-rt-"))
    atexit.register(shutil.rmtree, d, True)
    jobs = [[GCC, *CFLAGS, f"-I{RUNTIME / 'include'}", "-c", str(src), "-o", str(d / (src.stem + ".o"))]
            for src in sorted((RUNTIME / "src").glob("*.c"))]
    with ThreadPoolExecutor(2) as ex:
        list(ex.map(_compile, jobs))
    return tuple(sorted(d.glob("*.o")))


def build_harness(qm, work: Path, window: int) -> Path:
    """Export ``qm`` for the window API and link the host harness (ASan/UBSan) against the runtime."""
    from gaitedge.export.c_window import export_c_window

    export_c_window(qm, work / "model", window=window, copy_runtime=False, measure_code=False)
    exe = work / "harness"
    _compile([GCC, *CFLAGS, f"-I{RUNTIME / 'include'}", f"-I{work / 'model'}", str(work / "model" / "model_data.c"),
              str(HARNESS), *map(str, runtime_objects()), "-o", str(exe)])
    return exe


def c_window(exe: Path, counts: np.ndarray) -> np.ndarray:
    """Rows ``label logits...`` of one window run by the C harness."""
    r = subprocess.run([str(exe), "run", str(len(counts))], input=np.asarray(counts, "<i2").tobytes(),
                       capture_output=True, check=True)
    return np.array([list(map(int, line.split())) for line in r.stdout.decode().splitlines()])


def py_window(qm, counts: np.ndarray) -> np.ndarray:
    from gaitedge.quant.window import window_run

    out = window_run(qm, counts)
    return np.column_stack([out["label"][0], out["logits"][0]])


def arm_objects(qm, work: Path, cpu: str, dsp: bool) -> list[Path]:
    """Compile ge_window.c (with the runtime) and model_data.c for Cortex-M, -Werror; returns the objects."""
    from gaitedge.export.c_window import export_c_window

    export_c_window(qm, work / "m", copy_runtime=False, measure_code=False)
    flags = ["-std=c99", "-O2", f"-mcpu={cpu}", "-mthumb", "-mfloat-abi=soft", "-Wall", "-Wextra", "-Werror",
             "-pedantic", f"-I{RUNTIME / 'include'}", f"-I{work / 'm'}"] + (["-DGE_USE_DSP"] if dsp else [])
    objs = []
    for src in (RUNTIME / "src" / "ge_window.c", work / "m" / "model_data.c"):
        o = work / (src.stem + ".o")
        _compile([ARM_GCC, *flags, "-c", str(src), "-o", str(o)])
        objs.append(o)
    return objs
