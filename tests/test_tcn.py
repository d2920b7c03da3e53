"""TCN, TCN-LSTM and TCN-GRU: torch streaming, ONNX graphs, the integer twin and the C kernel.

The C runtime is built with ``gcc -std=c99 -Wall -Wextra -Werror -pedantic
-fsanitize=address,undefined`` (portable and the emulated DSP path) and must equal
the Python twin at every step; with arm-none-eabi-gcc and QEMU, also on the
emulated Cortex-M4 (DSP assembly path).
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch

from gaitedge.checkpoint import TrainedModel
from gaitedge.data.preprocess import Normalizer
from gaitedge.data.spec import load_spec
from gaitedge.errors import ModelError
from gaitedge.export.c_export import export_c
from gaitedge.models import build_model
from gaitedge.quant import quantize_model
from gaitedge.quant.evaluate import recording_counts
from gaitedge.quant.model import QLayer
from gaitedge.quant.tcn import aux_words, tcn_step

from ctools import ARM_GCC, GCC, RUNTIME, runtime_objects  # noqa: E402
from ctools import build as build_harness, c_steps, compile_cmd as _compile, py_steps  # noqa: E402
QEMU = shutil.which("qemu-system-arm")
FAMILIES = ["tcn", "tcn_gru", "tcn_lstm"]
#: tiny sizes per family (hidden, and channels for the hybrids)
TINY = {"tcn": dict(hidden=12), "tcn_gru": dict(hidden=12, channels=10), "tcn_lstm": dict(hidden=8, channels=8)}


def tiny_model(family: str, inputs: int = 6, classes: int = 3, seed: int = 0, **kw) -> torch.nn.Module:
    torch.manual_seed(seed)
    return build_model(family, inputs, classes, **{**TINY[family], **kw}).eval()


# ------------------------------------------------------------------------------ torch


@pytest.mark.parametrize("family", FAMILIES)
def test_steps_equal_sequence_forward_and_state_carries(family):
    m = tiny_model(family, kernel_size=3, levels=3)
    x = torch.randn(2, 45, 6)
    with torch.no_grad():
        ref, final = m(x)
        st = m.init_state(2)
        outs = []
        for t in range(45):
            o, st = m.step(x[:, t], st)
            outs.append(o)
        a, s1 = m(x[:, :20])
        b, s2 = m(x[:, 20:], s1)
    assert torch.allclose(torch.stack(outs, 1), ref, atol=1e-5)
    assert torch.allclose(torch.cat([a, b], 1), ref, atol=1e-5)
    for u, v in zip(s2, final):
        assert torch.allclose(u, v, atol=1e-6)
    # state layout: two ring buffers [(K-1) d, batch, width] per block (batch on axis 1)
    spans = [s.shape[0] for s in m.init_state(1)[: 2 * 3]]
    assert spans == [2, 2, 4, 4, 8, 8]


def test_receptive_field_is_exact():
    m = tiny_model("tcn", kernel_size=3, levels=4)
    assert m.receptive_field == 1 + 2 * 2 * (1 + 2 + 4 + 8) == 61
    assert m.receptive_field_ms(100.0) == pytest.approx(610.0)
    with pytest.raises(ModelError, match="rate"):
        m.receptive_field_ms(0.0)
    x = torch.randn(1, 80, 6)
    with torch.no_grad():
        y0, _ = m(x)
        x2 = x.clone()
        x2[0, 79 - 61] += 5.0  # 62 samples back: outside the field
        assert torch.equal(m(x2)[0][0, 79], y0[0, 79])
        x2 = x.clone()
        x2[0, 79 - 60] += 5.0  # 61 samples back: inside
        assert not torch.equal(m(x2)[0][0, 79], y0[0, 79])


def test_block_forward_hand_computed():
    """One block, 1 channel in and out (identity residual), K = 2, d = 1."""
    m = build_model("tcn", 1, 2, hidden=1, levels=1, kernel_size=2)
    blk = m.blocks[0]
    with torch.no_grad():
        blk.conv1.weight[:] = torch.tensor([[[0.5, 2.0]]])  # [out, in, K]: oldest tap first
        blk.conv1.bias[:] = -1.0
        blk.conv2.weight[:] = torch.tensor([[[1.0, -1.0]]])
        blk.conv2.bias[:] = 0.5
    x = torch.tensor([[[1.0], [3.0], [-2.0]]])
    feat, _ = m._run_blocks(x, m.init_state(1))
    # a = relu(0.5 x_{t-1} + 2 x_t - 1): [1, 5.5, 0]; y = relu(a_{t-1} - a_t + 0.5): [0, 0, 6]
    # out = relu(y + x): [1, 3, 4]
    assert feat[0, 0].tolist() == [1.0, 3.0, 4.0]


def test_bad_options_raise_model_errors():
    with pytest.raises(ModelError, match="kernel_size"):
        build_model("tcn", 6, 3, kernel_size=1)
    with pytest.raises(ModelError, match="levels"):
        build_model("tcn_gru", 6, 3, levels=0)
    with pytest.raises(ModelError, match="layers must be 1"):
        build_model("tcn", 6, 3, layers=2)
    with pytest.raises(ModelError, match="bad option"):
        build_model("tcn_lstm", 6, 3, dilation=3)
    with pytest.raises(ModelError, match="dropout"):
        build_model("tcn", 6, 3, dropout=1.5)


def test_default_sizes_comparable_to_gru64():
    gru = build_model("gru", 12, 3, hidden=64).n_params()
    for family in FAMILIES:
        m = build_model(family, 12, 3)
        assert m.receptive_field >= 50
        assert 0.8 * gru <= m.n_params() <= 1.1 * gru, (family, m.n_params(), gru)


# ------------------------------------------------------------------------------ ONNX


def _tm(model, recs) -> TrainedModel:
    r0 = recs[0]
    tm = TrainedModel(model=model, classes=r0.classes, channels=list(r0.channels), units=list(r0.units),
                      rate_hz=r0.rate_hz, normalizer=Normalizer(np.zeros(1), np.ones(1)), lowpass_hz=0.0,
                      filter_order=2, min_run=2, tolerance_ms=50.0, delay=1)
    tm.normalizer = Normalizer.fit([tm.preprocess(r).signals for r in recs])
    return tm


@pytest.fixture(scope="module")
def syn():
    return load_spec("synthetic?n=3&trials=1", other_foot=True)


@pytest.mark.parametrize("family", FAMILIES)
def test_onnx_sequence_any_length_and_step_chain(family, syn, tmp_path):
    import onnxruntime as ort

    from gaitedge.export.onnx_export import export_onnx

    nch = len(syn[0].channels)
    m = tiny_model(family, inputs=nch)
    paths = export_onnx(_tm(m, syn), tmp_path)
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    seq = ort.InferenceSession(str(paths.sequence), so, providers=["CPUExecutionProvider"])
    step = ort.InferenceSession(str(paths.step), so, providers=["CPUExecutionProvider"])
    names = [i.name for i in seq.get_inputs()][1:]
    x = np.random.default_rng(1).standard_normal((3, 53, nch)).astype(np.float32)
    with torch.no_grad():
        ref, fin = m(torch.from_numpy(x))
        _, mid = m(torch.from_numpy(x[:, :31]))
    st = [s.numpy() for s in m.init_state(3)]
    out = seq.run(None, {"x": x, **dict(zip(names, st))})
    assert np.abs(out[0] - ref.numpy()).max() <= 1e-4  # T = 53, traced at 8
    assert all(np.abs(a - b.numpy()).max() <= 1e-4 for a, b in zip(out[1:], fin))
    # continuing from a non-zero state (the ring buffers' contents)
    out2 = seq.run(None, {"x": x[:, 31:], **{n: s.numpy() for n, s in zip(names, mid)}})
    assert np.abs(out2[0] - ref.numpy()[:, 31:]).max() <= 1e-4
    # the step graph chained T times
    logits = []
    for t in range(53):
        o = step.run(None, {"x": x[:, t], **dict(zip(names, st))})
        logits.append(o[0])
        st = o[1:]
    assert np.abs(np.stack(logits, 1) - ref.numpy()).max() <= 1e-4


# ------------------------------------------------------------------------------ integer twin


def test_twin_block_hand_computed():
    """K = 2, d = 2 (a ring of 2 samples), 2 inputs, 4 outputs, a 1x1 residual conv.

    Row 0 of each conv: conv1 ``x_{t-2} + 2 x_t`` (channel 0), conv2 ``a_{t-2} + a_t``,
    1x1 ``x_t``; every multiplier 2^30, so ``mulhr(v, M) = floor((v + 2) / 4)`` (v / 4
    rounded half up); biases zero.
    """
    hp, c = 4, 2
    w = np.zeros((3 * hp, 2 * c + 2 * hp + c), np.int64)
    w[0, 0], w[0, c] = 1, 2  # conv1: oldest tap, then the current sample
    w[hp, 2 * c], w[hp, 2 * c + hp] = 1, 1  # conv2: a two back, current a
    w[2 * hp, 2 * c + 2 * hp] = 1  # 1x1
    lay = QLayer("tcn", c, hp, w, np.zeros(3 * hp, np.int64), np.full(3 * hp, 1 << 30, np.int64), 2,
                 aux=aux_words(2, 2, c, hp), extra=np.array([2, 1, 0]))
    assert lay.aux == 2 + 2 * (c + hp)
    aux = np.zeros((1, lay.aux), np.int64)
    hs = []
    for x0 in (100, 7, -40, 1000):
        v = np.zeros((1, hp + c), np.int64)
        v[0, hp] = x0
        h, aux = tcn_step(lay, v, aux)
        hs.append(int(h[0, 0]))
        assert h[0, 1:].tolist() == [0, 0, 0]
    # a = [50, 4, floor(22/4) = 5, floor(2009/4) = 502]; y = [13, 1, floor(57/4) = 14, floor(508/4) = 127]
    # r = [25, 2, floor(-38/4) = -10, 250]; h = relu(y + r)
    assert hs == [38, 3, 4, 377]
    assert int(aux[0, 0]) == 0  # the ring position wrapped twice
    assert aux[0, 2:6].tolist() == [-40, 0, 1000, 0]  # ring of inputs: slot 0 then 1


# ------------------------------------------------------------------------------ C runtime


@pytest.fixture(scope="module")
def runtime_libs() -> dict[str, list[Path]]:
    """The runtime compiled once per variant: {variant: object files} (shared by the kernel tests)."""
    if GCC is None:
        pytest.skip("no host C compiler (gcc)")
    return runtime_objects()


def quantized(family: str, recs, **kw):
    nch = len(recs[0].channels)
    m = tiny_model(family, inputs=nch, **kw)
    with torch.no_grad():
        m.head.weight.mul_(4.0)
    tm = _tm(m, recs)
    return tm, quantize_model(tm, recs[:2])


@pytest.mark.parametrize("family,kw", [("tcn", {"kernel_size": 2}), ("tcn_gru", {"kernel_size": 4, "levels": 3}),
                                       ("tcn_lstm", {"layers": 2, "levels": 2, "seed": 1})])
def test_c_equals_twin_every_step(family, kw, syn, runtime_libs, tmp_path):
    tm, qm = quantized(family, syn, **kw)
    kinds = [lay.kind for lay in qm.layers]
    assert kinds[: tm.model.levels] == ["tcn"] * tm.model.levels
    exes = build_harness(qm, runtime_libs, tmp_path)
    counts = recording_counts(qm, syn[-1])[:600]
    ref = py_steps(qm, counts)
    assert len(set(ref[:, 0].tolist())) > 1, "the model should not be constant"
    for variant, exe in exes.items():
        got = c_steps(exe, counts)
        bad = np.argwhere(got != ref)
        assert len(bad) == 0, f"{variant}: first difference at step {bad[0][0]}: C {got[bad[0][0]]} vs {ref[bad[0][0]]}"
    # ge_reset() empties the ring buffers: the same as a fresh stream
    assert np.array_equal(c_steps(exes["portable"], counts[:300], "reset", "150"), py_steps(qm, counts[:300], 150))
    # the integer model follows the float one
    x = tm.normalizer(tm.preprocess(syn[-1]).signals)[:600]
    with torch.no_grad():
        fl = tm.model(torch.from_numpy(x.astype(np.float32))[None])[0][0].numpy()
    assert (fl.argmax(1) == ref[:, 0]).mean() > 0.95


def test_descriptor_checks_refuse_bad_tcn_layers(syn, runtime_libs, tmp_path):
    """The C check rejects a TCN layer whose aux does not hold its ring buffers."""
    _, qm = quantized("tcn", syn, levels=2)
    qm.layers[1].aux += 2
    exes = build_harness(qm, runtime_libs, tmp_path)
    r = subprocess.run([str(exes["portable"]), "step"], input="", capture_output=True, text=True)
    assert r.returncode == 3 and "arena size mismatch: 0 vs" in r.stderr  # ge_arena_bytes() = 0: refused


def test_quantizer_refuses_rows_wider_than_the_runtime(syn):
    with pytest.raises(ModelError, match="512 columns"):
        quantized("tcn", syn, hidden=180, levels=1, kernel_size=3)


@pytest.fixture(scope="module")
def ipol(ipol_root):
    train = load_spec(f"ipol:{ipol_root}?subjects=1", other_foot=True)[:3]
    test = load_spec(f"ipol:{ipol_root}?subjects=12", other_foot=True)[:1]
    return train, test


def test_ipol_recording_bit_exact(ipol, runtime_libs, tmp_path):
    """The first 3000 steps of a held-out IPOL recording (both TCN block variants, the LSTM kernel)."""
    train, test = ipol
    tm, qm = quantized("tcn_lstm", train, kernel_size=3, levels=4)
    exes = build_harness(qm, runtime_libs, tmp_path)
    for rec in test:
        counts = recording_counts(qm, rec)[:3000]
        ref = py_steps(qm, counts)
        for variant, exe in exes.items():
            assert np.array_equal(c_steps(exe, counts), ref), f"{variant} differs on {rec.name}"


# ------------------------------------------------------------------------------ Cortex-M


@pytest.mark.skipif(ARM_GCC is None, reason="arm-none-eabi-gcc not installed")
@pytest.mark.parametrize("cpu,dsp", [("cortex-m4", True), ("cortex-m4", False), ("cortex-m0plus", False)])
def test_arm_build_warning_free(cpu, dsp, tmp_path):
    flags = ["-std=c99", "-O2", f"-mcpu={cpu}", "-mthumb", "-mfloat-abi=soft", "-Wall", "-Wextra", "-Werror",
             "-pedantic", f"-I{RUNTIME / 'include'}"] + (["-DGE_USE_DSP"] if dsp else [])
    for src in ("ge_tcn.c", "ge_layers.c"):
        _compile([ARM_GCC, *flags, "-c", str(RUNTIME / "src" / src), "-o", str(tmp_path / (src + ".o"))])
    syms = subprocess.run(["arm-none-eabi-nm", "-u", str(tmp_path / "ge_tcn.c.o")], capture_output=True,
                          text=True).stdout
    assert not any(s in syms for s in ("__aeabi_f", "__aeabi_d", "malloc"))


@pytest.mark.skipif(ARM_GCC is None or QEMU is None, reason="arm-none-eabi-gcc / qemu-system-arm not installed")
def test_qemu_cortex_m4_dsp_bit_exact(syn, tmp_path):
    from gaitedge.firmware import mcu

    _, qm = quantized("tcn_lstm", syn)
    export_c(qm, tmp_path / "m", copy_runtime=False, measure_code=False)
    counts = recording_counts(qm, syn[-1])[:200]
    ref = py_steps(qm, counts)
    mcu.write_bench_input(tmp_path / "bench_input.h", counts)
    fw = mcu.build_firmware(tmp_path / "m", tmp_path, dsp=True, cpu="cortex-m4")
    run = mcu.run_qemu(fw.elf, machine="mps2-an386", timeout=60)
    assert run.rc == 0, run.stdout
    lines = [ln for ln in run.stdout.splitlines() if ln and ln != "done" and not ln.startswith("sizeof")]
    assert np.array_equal(np.array([list(map(int, ln.split())) for ln in lines]), ref)
