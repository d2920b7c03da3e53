"""The C runtime against its Python integer twin, bit for bit.

Host builds use ``gcc -std=c99 -Wall -Wextra -Werror -pedantic
-fsanitize=address,undefined``, in two variants: portable C and the DSP code
path with the instructions emulated in C (``-DGE_USE_DSP_EMULATE``).  With
arm-none-eabi-gcc and qemu-system-arm installed, the firmware also runs on the
emulated Cortex-M4 (DSP assembly path) and Cortex-M3 (portable) boards.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from gaitedge.data.spec import load_spec
from gaitedge.export.c_export import export_c
from gaitedge.quant import Runner, quantize_model, spec
from gaitedge.quant.evaluate import recording_counts

sys.path.insert(0, str(Path(__file__).resolve().parent))
from test_quant import make_tm  # noqa: E402

from ctools import GCC, RUNTIME, build, c_steps, py_steps  # noqa: E402
from ctools import runtime_objects  # noqa: E402
from ctools import compile_cmd as _compile  # noqa: E402

pytestmark = pytest.mark.skipif(GCC is None, reason="no host C compiler (gcc)")

#: synthetic-data models: name -> make_tm keyword arguments (and channel count)
SYN_MODELS = {
    "lstm": dict(family="lstm", lowpass=10.0, order=2, delay=3, min_run=3),
    "gru": dict(family="gru", delay=0, min_run=4),
    "elman": dict(family="elman", lowpass=15.0, order=4, min_run=2),
    "lstm-2layer": dict(family="lstm", layers=2, hidden=12, delay=2),
    "gru-2layer-5ch": dict(family="gru", layers=2, hidden=18, channels=5, min_run=1),
    "gru-h72": dict(family="gru", hidden=72, channels=6, delay=1),
    "lstm-h68": dict(family="lstm", hidden=68, channels=6),
    "elman-h70": dict(family="elman", hidden=70, channels=6, lowpass=8.0),
    "lstm-h132": dict(family="lstm", hidden=132, channels=6, delay=1),
}


@pytest.fixture(scope="module")
def runtime_objs() -> dict[str, list[Path]]:
    """The runtime compiled once per variant (shared with the other kernel tests)."""
    return runtime_objects()


def py_steps_batch(qm, counts_list: list[np.ndarray]) -> list[np.ndarray]:
    """Per-step outputs of many recordings at once (each padded with its last sample)."""
    tmax = max(len(c) for c in counts_list)
    xb = np.stack([np.concatenate([c, np.repeat(c[-1:], tmax - len(c), 0)]) for c in counts_list])
    out = Runner(qm, batch=len(counts_list)).run(xb)
    res = []
    for b, c in enumerate(counts_list):
        n = len(c)
        res.append(np.column_stack([out["raw_label"][b, :n], out["label"][b, :n], out["event"][b, :n],
                                    out["event_sample"][b, :n], out["logits"][b, :n]]))
    return res


@pytest.fixture(scope="module")
def syn():
    return load_spec("synthetic?n=3&trials=1", other_foot=True)


def _syn_model(syn, name):
    kw = dict(SYN_MODELS[name])
    ch = kw.pop("channels", None)
    recs = [r.select_channels(r.channels[:ch]) for r in syn] if ch else syn
    tm = make_tm(recs, **kw)
    return quantize_model(tm, recs[:2]), recs


@pytest.mark.parametrize("name", list(SYN_MODELS))
def test_synthetic_models_bit_exact(syn, runtime_objs, tmp_path, name):
    qm, recs = _syn_model(syn, name)
    exes = build(qm, runtime_objs, tmp_path)
    counts = recording_counts(qm, recs[-1])
    ref = py_steps_batch(qm, [counts])[0]
    assert len(set(ref[:, 0].tolist())) > 1, "the model should not be constant"
    for variant, exe in exes.items():
        got = c_steps(exe, counts)
        assert got.shape == ref.shape
        bad = np.argwhere(got != ref)
        assert len(bad) == 0, f"{variant}: first difference at step {bad[0][0]}: C {got[bad[0][0]]} vs {ref[bad[0][0]]}"


def test_lut_math_selftest_run_and_reset(syn, runtime_objs, tmp_path):
    qm, recs = _syn_model(syn, "lstm")
    exes = build(qm, runtime_objs, tmp_path)
    u = np.arange(65536)
    counts = recording_counts(qm, recs[0])[:700]
    ref = py_steps(qm, counts)
    ref_reset = py_steps(qm, counts, reset_at=333)
    for exe in exes.values():
        lut = c_steps(exe, [], "lut")
        assert np.array_equal(lut[:, 0], spec.sigmoid_q(u)) and np.array_equal(lut[:, 1], spec.tanh_q(u))
        r = subprocess.run([str(exe), "selftest"], capture_output=True, text=True)
        assert r.returncode == 0 and r.stdout.strip() == "ok", r.stdout + r.stderr
        # ge_run() = ge_step() in a loop: labels per step, then the events
        r = subprocess.run([str(exe), "run"], input=counts.astype("<i2").tobytes(), capture_output=True, check=True)
        lines = r.stdout.decode().splitlines()
        assert list(map(int, lines[0].split())) == ref[:, 1].tolist()
        evs = [list(map(int, line.split())) for line in lines[1:]]
        assert evs == [[int(e), int(s)] for e, s in zip(ref[ref[:, 2] > 0, 2], ref[ref[:, 2] > 0, 3])]
        assert np.array_equal(c_steps(exe, counts, "reset", "333"), ref_reset)


@pytest.fixture(scope="module")
def ipol(ipol_root):
    train = load_spec(f"ipol:{ipol_root}?subjects=1", other_foot=True)[:4]
    test = load_spec(f"ipol:{ipol_root}?subjects=12-15", other_foot=True)
    return train, test


@pytest.mark.parametrize("family", ["lstm", "gru", "elman"])
def test_ipol_test_recordings_bit_exact(ipol, runtime_objs, tmp_path, family):
    """Every step of every IPOL held-out recording (subjects 12-15), both C variants."""
    train, test = ipol
    tm = make_tm(train, family, hidden=16, delay=5, min_run=6, lowpass=12.0 if family == "lstm" else 0.0)
    qm = quantize_model(tm, train)
    exes = build(qm, runtime_objs, tmp_path)
    counts = [recording_counts(qm, r) for r in test]
    refs = py_steps_batch(qm, counts)
    n_events = 0
    for variant, exe in exes.items():
        for rec, c, ref in zip(test, counts, refs):
            got = c_steps(exe, c)
            assert np.array_equal(got, ref), f"{variant} differs on {rec.name}"
            n_events += int((ref[:, 2] > 0).sum())
    assert n_events > 0
    assert sum(len(c) for c in counts) > 50_000


# ------------------------------------------------------------------------ Cortex-M


def _mcu():
    from gaitedge.firmware import mcu

    return mcu


ARM_GCC = shutil.which("arm-none-eabi-gcc")


@pytest.mark.skipif(ARM_GCC is None, reason="arm-none-eabi-gcc not installed")
@pytest.mark.parametrize("cpu,dsp", [("cortex-m0plus", False), ("cortex-m3", False), ("cortex-m4", True),
                                     ("cortex-m7", True), ("cortex-m4", False)])
def test_arm_build_is_warning_free(syn, tmp_path, cpu, dsp):
    qm, _ = _syn_model(syn, "gru")
    export_c(qm, tmp_path / "m", copy_runtime=False, measure_code=False)
    srcs = sorted((RUNTIME / "src").glob("*.c")) + [tmp_path / "m" / "model_data.c"]
    flags = ["-std=c99", "-O2", f"-mcpu={cpu}", "-mthumb", "-mfloat-abi=soft", "-Wall", "-Wextra", "-Werror",
             "-pedantic", f"-I{RUNTIME / 'include'}", f"-I{tmp_path / 'm'}"] + (["-DGE_USE_DSP"] if dsp else [])
    for src in srcs:
        _compile([ARM_GCC, *flags, "-c", str(src), "-o", str(tmp_path / (src.stem + ".o"))])
    # no floating point and no libm in the inference path
    for obj in tmp_path.glob("*.o"):
        syms = subprocess.run(["arm-none-eabi-nm", "-u", str(obj)], capture_output=True, text=True).stdout
        assert not any(s in syms for s in ("__aeabi_f", "__aeabi_d", "expf", "tanhf", "malloc")), (obj, syms)


@pytest.mark.skipif(ARM_GCC is None or shutil.which("qemu-system-arm") is None,
                    reason="arm-none-eabi-gcc / qemu-system-arm not installed")
@pytest.mark.parametrize("name", ["lstm", "gru-h72", "lstm-2layer", "elman", "lstm-h132"])
def test_qemu_dsp_and_portable_bit_exact(syn, tmp_path, name):
    """Cortex-M4 with the DSP assembly and Cortex-M3 with portable C give the Python answer.

    lstm-h132 has rows of 138 columns (the looped matrix kernel) and three blocks.
    """
    mcu = _mcu()
    qm, recs = _syn_model(syn, name)
    export_c(qm, tmp_path / "m", copy_runtime=False, measure_code=False)
    counts = recording_counts(qm, recs[-1])[:300]
    ref = py_steps(qm, counts)
    for dsp, cpu, machine in ((True, "cortex-m4", "mps2-an386"), (False, "cortex-m3", "mps2-an385")):
        work = tmp_path / ("dsp" if dsp else "portable")
        work.mkdir()
        mcu.write_bench_input(work / "bench_input.h", counts)
        fw = mcu.build_firmware(tmp_path / "m", work, dsp=dsp, cpu=cpu)
        run = mcu.run_qemu(fw.elf, machine=machine, timeout=60)
        assert run.rc == 0, run.stdout
        lines = [ln for ln in run.stdout.splitlines() if ln and ln != "done" and not ln.startswith("sizeof")]
        got = np.array([list(map(int, ln.split())) for ln in lines])
        assert np.array_equal(got, ref), f"{cpu} ({'DSP' if dsp else 'portable'}) differs from Python"
