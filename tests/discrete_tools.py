"""Helpers of the Jordan / peephole-LSTM / deep-GRU tests (not a test module).

* :func:`tm_for`: a :class:`TrainedModel` around any model with real preprocessing;
* :func:`onnx_any_t`: export to ONNX and compare ONNX Runtime with torch at a length
  other than the trace length, for the sequence graph and the step graph chained;
* :func:`c_vs_twin`: export a quantized model to C, build the host harness (portable
  and emulated-DSP, ASan/UBSan) and compare every step with the Python twin;
* :func:`arm_compile`: the given runtime sources compile warning-free for Cortex-M4.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import torch

from gaitedge.checkpoint import TrainedModel
from gaitedge.data.preprocess import Normalizer

from ctools import ARM_GCC, CFLAGS, GCC, HARNESS, RUNTIME, VARIANTS, compile_cmd, runtime_objects
ONNX_TOL = 1e-4


def tm_for(model, recs, delay: int = 0, min_run: int = 3, lowpass: float = 0.0) -> TrainedModel:
    """Wrap ``model`` (eval mode) with the recordings' channels and a fitted normalizer."""
    r0 = recs[0]
    model.eval()
    tm = TrainedModel(model=model, classes=r0.classes, channels=list(r0.channels), units=list(r0.units),
                      rate_hz=r0.rate_hz, normalizer=Normalizer(np.zeros(1), np.ones(1)), lowpass_hz=lowpass,
                      filter_order=2, min_run=min_run, tolerance_ms=50.0, delay=delay)
    tm.normalizer = Normalizer.fit([tm.preprocess(r).signals for r in recs])
    return tm


def step_vs_sequence(model, batch: int = 3, t: int = 29, seed: int = 0) -> float:
    """Max |Δlogit| between ``forward`` and ``t`` chained ``step`` calls (and the final states)."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(batch, t, model.input_size, generator=g)
    model.eval()
    with torch.no_grad():
        ref, st_ref = model(x)
        st = model.init_state(batch)
        outs = []
        for i in range(t):
            o, st = model.step(x[:, i], st)
            outs.append(o)
        got = torch.stack(outs, 1)
    err = float((got - ref).abs().max())
    for a, b in zip(st, st_ref):
        err = max(err, float((a - b).abs().max()))
    return err


def onnx_any_t(tm: TrainedModel, out: Path, t: int = 37, batch: int = 2) -> tuple[float, float]:
    """Export ``tm`` and return (sequence error, chained-step error) against torch at length ``t``."""
    import onnxruntime as ort

    from gaitedge.export.onnx_export import export_onnx, state_names

    paths = export_onnx(tm, out)
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    so.log_severity_level = 3
    model = tm.model.eval()
    x = np.random.default_rng(3).standard_normal((batch, t, model.input_size)).astype(np.float32)
    with torch.no_grad():
        ref = model(torch.from_numpy(x))[0].numpy()
    zeros = [s.numpy() for s in model.init_state(batch)]
    names = state_names(len(zeros))[0]
    seq = ort.InferenceSession(str(paths.sequence), so, providers=["CPUExecutionProvider"])
    got = seq.run(None, {"x": x, **dict(zip(names, zeros))})[0]
    step = ort.InferenceSession(str(paths.step), so, providers=["CPUExecutionProvider"])
    state, outs = zeros, []
    for i in range(t):
        o = step.run(None, {"x": x[:, i], **dict(zip(names, state))})
        outs.append(o[0])
        state = o[1:]
    return float(np.abs(got - ref).max()), float(np.abs(np.stack(outs, 1) - ref).max())


_run = compile_cmd
_runtime_objs = runtime_objects


def c_steps(exe: Path, counts: np.ndarray) -> np.ndarray:
    r = subprocess.run([str(exe), "step"], input=np.asarray(counts, "<i2").tobytes(), capture_output=True,
                       check=True)
    return np.array([list(map(int, line.split())) for line in r.stdout.decode().splitlines()])


def py_steps(qm, counts: np.ndarray) -> np.ndarray:
    """Per step: raw label, label, event, event sample, logits (what the harness prints)."""
    from gaitedge.quant import Runner

    out = Runner(qm).run(np.asarray(counts)[None])
    return np.column_stack([out["raw_label"][0], out["label"][0], out["event"][0], out["event_sample"][0],
                            out["logits"][0]])


def c_vs_twin(qm, counts: np.ndarray, work: Path) -> np.ndarray:
    """Build the harness for ``qm`` (both variants), assert every step equals the twin; returns the twin's rows."""
    from gaitedge.export.c_export import arena_bytes, export_c

    objs = _runtime_objs()
    res = export_c(qm, work / "model", copy_runtime=False, measure_code=False)
    assert res.report["arena_bytes"] == arena_bytes(qm)
    ref = py_steps(qm, counts)
    for name, flags in VARIANTS.items():
        exe = work / f"harness-{name}"
        _run([GCC, *CFLAGS, *flags, f"-I{RUNTIME / 'include'}", f"-I{work / 'model'}",
              str(work / "model" / "model_data.c"), str(HARNESS), *map(str, objs[name]), "-o", str(exe)])
        got = c_steps(exe, counts)
        assert got.shape == ref.shape, (name, got.shape, ref.shape)
        bad = np.argwhere(got != ref)
        assert len(bad) == 0, f"{name}: first difference at step {bad[0][0]}: C {got[bad[0][0]]} vs {ref[bad[0][0]]}"
    return ref


def arm_compile(sources: list[str], work: Path) -> None:
    """``arm-none-eabi-gcc -mcpu=cortex-m4 -mthumb -O2`` (portable and -DGE_USE_DSP), warnings are errors."""
    for dsp in (False, True):
        for s in sources:
            _run([ARM_GCC, "-std=c99", "-O2", "-mcpu=cortex-m4", "-mthumb", "-mfloat-abi=soft", "-Wall", "-Wextra",
                  "-Werror", "-pedantic", f"-I{RUNTIME / 'include'}", *(["-DGE_USE_DSP"] if dsp else []),
                  "-c", str(RUNTIME / "src" / s), "-o", str(work / f"{Path(s).stem}-{int(dsp)}.o")])
