"""The predictive-coding RNN family: torch (step == sequence, one relaxation step by hand), ONNX (any T),
the fixed-point kernel against its Python twin (C, both host variants; ARM build), training smoke."""

from __future__ import annotations

import math
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from gaitedge import resources
from gaitedge.checkpoint import TrainedModel
from gaitedge.data.preprocess import Normalizer
from gaitedge.data.spec import load_spec
from gaitedge.errors import ModelError
from gaitedge.models import build_model
from gaitedge.models.pcrnn import PCRNNClassifier, norm_cap
from gaitedge.quant import Runner, quantize_model
from gaitedge.quant.evaluate import recording_counts
from gaitedge.quant.kernels import kernel_for

sys.path.insert(0, str(Path(__file__).resolve().parent))
import test_c_runtime as crt  # noqa: E402
from test_c_runtime import build, c_steps, py_steps_batch  # noqa: E402
from ctools import runtime_objects  # noqa: E402

RUNTIME = resources.runtime_dir()


def _model(c=5, k=3, h=8, h1=6, **kw) -> PCRNNClassifier:
    torch.manual_seed(0)
    return build_model("pcrnn", c, k, hidden=h, hidden1=h1, **kw).eval()


def test_step_equals_sequence_and_state_carries():
    m = _model(relax_steps=3, tau1=2.0, tau2=3.0)
    x = torch.randn(2, 23, 5)
    with torch.no_grad():
        y, st = m(x)
        y1, st1 = m(x[:, :10])
        y2, st2 = m(x[:, 10:], st1)
        s = m.init_state(2)
        outs = []
        for t in range(23):
            o, s = m.step(x[:, t], s)
            outs.append(o)
    assert torch.allclose(torch.stack(outs, 1), y, atol=1e-6)
    assert torch.allclose(torch.cat([y1, y2], 1), y, atol=1e-6)
    assert all(torch.allclose(a, b, atol=1e-6) for a, b in zip(s, st))
    assert [tuple(t.shape) for t in st] == [(1, 2, 8), (1, 2, 6)]


def test_one_relaxation_step_by_hand():
    """C = H1 = H2 = 1, K = 1, dt/tau1 = 1/2, dt/tau2 = 1/4, from p1 = 0.5, p2 = 1.0, s = 1.0."""
    m = _model(c=1, k=2, h=1, h1=1, relax_steps=1, tau1=2.0, tau2=4.0)
    with torch.no_grad():
        for name, v in dict(w_s=0.8, b_s=0.1, w_21=0.5, b_1=-0.2, w_r=0.5, b_r=0.0).items():
            getattr(m, name).fill_(v)
    assert norm_cap(0.5) > 0.8  # the caps leave these weights alone
    # prior: phat = tanh(0.5 * 1.0 + 0) = 0.46211716; p2 starts there
    # a = tanh(0.5) = 0.46211716
    # e_s = 1 - (0.8 * 0.46211716 + 0.1) = 0.53030627
    # e_1 = 0.5 - (0.5 * 0.46211716 - 0.2) = 0.46894142;  e_2 = 0
    # d1 = (1 - 0.46211716^2) * 0.8 * 0.53030627 - 0.46894142 = -0.13529489
    # d2 = 0.5 * 0.46894142 - 0 = 0.23447071
    # p1 = 0.5 + 0.5 * d1 = 0.43235256;  p2 = 0.46211716 + 0.25 * d2 = 0.52073483
    state = (torch.tensor([[[1.0]]]), torch.tensor([[[0.5]]]))
    with torch.no_grad():
        _, (p2, p1) = m.step(torch.tensor([[1.0]]), state)
    assert math.isclose(float(p1), 0.43235256, abs_tol=1e-6)
    assert math.isclose(float(p2), 0.52073483, abs_tol=1e-6)
    assert math.isclose(math.tanh(0.5), 0.46211716, abs_tol=1e-8)


def test_norm_caps_keep_the_relaxation_stable():
    m = _model(h=8, h1=8, relax_steps=20, tau1=1.5, tau2=1.5)
    with torch.no_grad():
        m.w_s.mul_(50.0)
        m.w_21.mul_(50.0)
        y, st = m(torch.randn(1, 50, 5) * 3)
    assert torch.isfinite(y).all() and float(st[0].abs().max()) < 20
    ew = m.effective_weights()
    cap = norm_cap(1 / 1.5)
    for k in ("w_s", "w_21"):
        assert np.linalg.norm(ew[k]) <= cap * (1 + 1e-6)


@pytest.mark.parametrize("opts, what", [
    (dict(tau1=1.2), "tau1"),
    (dict(tau2=0.5), "tau2"),
    (dict(relax_steps=0), "relax_steps"),
    (dict(relax_steps=2.5), "relax_steps"),
    (dict(tau1="fast"), "tau1"),
    (dict(layers=2), "layers"),
    (dict(hidden1=0), "hidden1"),
    (dict(leak=0.3), "bad option"),
])
def test_bad_options_are_refused(opts, what):
    with pytest.raises(ModelError, match=what):
        build_model("pcrnn", 4, 3, **opts)


def _tm(recs, hidden=16, hidden1=12, seed=0, **kw) -> TrainedModel:
    torch.manual_seed(seed)
    r0 = recs[0]
    model = build_model("pcrnn", len(r0.channels), len(r0.classes), hidden=hidden, hidden1=hidden1, **kw)
    with torch.no_grad():
        model.w_r.mul_(2.0)
        model.b_1.normal_(0.0, 0.5)
        model.head.weight.mul_(4.0)
    model.eval()
    tm = TrainedModel(model=model, classes=r0.classes, channels=list(r0.channels), units=list(r0.units),
                      rate_hz=r0.rate_hz, normalizer=Normalizer(np.zeros(1), np.ones(1)), lowpass_hz=10.0,
                      filter_order=2, min_run=3, tolerance_ms=50.0, delay=1)
    tm.normalizer = Normalizer.fit([tm.preprocess(r).signals for r in recs])
    return tm


@pytest.fixture(scope="module")
def runtime_objs() -> dict[str, list[Path]]:
    """The runtime compiled once per host variant (portable, DSP emulated), shared by the kernel tests."""
    if crt.GCC is None:
        pytest.skip("no host C compiler (gcc)")
    return runtime_objects()


@pytest.fixture(scope="module")
def syn():
    return load_spec("synthetic?n=3&trials=1", other_foot=True)


def test_onnx_sequence_any_length_and_chained_steps(syn, tmp_path):
    import onnxruntime as ort

    from gaitedge.export.onnx_export import export_onnx

    tm = _tm(syn, hidden=8, hidden1=6, relax_steps=2, tau1=2.0, tau2=3.0)
    paths = export_onnx(tm, tmp_path)
    x = np.random.default_rng(1).standard_normal((2, 37, tm.model.input_size)).astype(np.float32)
    with torch.no_grad():
        ref, st = tm.model(torch.from_numpy(x))
    z = [s.numpy() for s in tm.model.init_state(2)]
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    seq = ort.InferenceSession(str(paths.sequence), so, providers=["CPUExecutionProvider"])
    got = seq.run(None, {"x": x, "h_in": z[0], "c_in": z[1]})
    assert np.abs(got[0] - ref.numpy()).max() <= 1e-4
    assert np.abs(got[1] - st[0].numpy()).max() <= 1e-4 and np.abs(got[2] - st[1].numpy()).max() <= 1e-4
    step = ort.InferenceSession(str(paths.step), so, providers=["CPUExecutionProvider"])
    state, outs = z, []
    for t in range(x.shape[1]):
        o = step.run(None, {"x": x[:, t], "h_in": state[0], "c_in": state[1]})
        outs.append(o[0])
        state = o[1:]
    assert np.abs(np.stack(outs, 1) - ref.numpy()).max() <= 1e-4
    import onnx

    ops = {n.op_type for n in onnx.load(str(paths.sequence)).graph.node}
    assert "Loop" in ops


def test_kernel_code_matches_the_c_enum():
    hdr = (RUNTIME / "include" / "gaitedge_rt.h").read_text()
    code = int(re.search(r"GE_LAYER_PCRNN\s*=\s*(\d+)", hdr).group(1))
    assert kernel_for("pcrnn").code == code and 15 <= code <= 19


@pytest.mark.parametrize("case", ["h16-h12", "h18-h70-5ch"])
def test_quantized_c_equals_twin_and_tracks_float(syn, runtime_objs, tmp_path, case):
    """Every step of a synthetic recording, portable and DSP-emulated C; the second case pads
    both levels (18 -> 20, 70 -> 72 units, wider than GE_BLOCK) and 5 inputs (6 words, 8 G rows)."""
    if case == "h16-h12":
        recs = syn
        tm = _tm(recs, relax_steps=3, tau1=2.0, tau2=3.0)
    else:
        recs = [r.select_channels(r.channels[:5]) for r in syn]
        tm = _tm(recs, hidden=18, hidden1=70, relax_steps=2, tau1=1.5, tau2=5.0)
    qm = quantize_model(tm, recs[:2])
    lay = qm.layers[0]
    if case == "h16-h12":
        assert lay.kind == "pcrnn" and lay.aux == 12 and lay.extra.tolist() == [3, 16384, 10923]
    else:
        assert (lay.hidden, lay.aux, lay.in_size, lay.extra.tolist()) == (20, 72, 6, [2, 21845, 6554])
    exes = build(qm, runtime_objs, tmp_path)
    counts = recording_counts(qm, recs[-1])
    ref = py_steps_batch(qm, [counts])[0]
    assert len(set(ref[:, 0].tolist())) > 1, "the model should not be constant"
    for variant, exe in exes.items():
        got = c_steps(exe, counts)
        bad = np.argwhere(got != ref)
        assert got.shape == ref.shape and len(bad) == 0, \
            f"{variant}: first difference at step {bad[0][0]}: C {got[bad[0][0]]} vs {ref[bad[0][0]]}"
    if case != "h16-h12":
        return
    # the integer model follows the float one for a few samples (the random model is chaotic later)
    x = tm.normalizer(tm.preprocess(recs[-1]).signals).astype(np.float32)
    with torch.no_grad():
        fl, _ = tm.model(torch.from_numpy(x[:8])[None])
    q = Runner(qm).run(counts[:8])["logits"][0] / 2.0**qm.logit_frac
    assert np.abs(q - fl[0].numpy()).max() < 0.05


@pytest.mark.skipif(shutil.which("arm-none-eabi-gcc") is None, reason="no arm-none-eabi-gcc")
@pytest.mark.parametrize("dsp", [False, True])
def test_arm_build_is_warning_free(tmp_path, dsp):
    flags = ["-std=c99", "-Wall", "-Wextra", "-Werror", "-pedantic", "-mcpu=cortex-m4", "-mthumb", "-O2",
             f"-I{RUNTIME / 'include'}"] + (["-DGE_USE_DSP"] if dsp else [])
    for src in ("ge_pcrnn.c", "ge_layers.c"):
        r = subprocess.run(["arm-none-eabi-gcc", *flags, "-c", str(RUNTIME / "src" / src), "-o",
                            str(tmp_path / (src + ".o"))], capture_output=True, text=True)
        assert r.returncode == 0, r.stderr


def test_trains_through_the_cli_config(syn, tmp_path):
    from gaitedge.config import Config
    from gaitedge.training.train import train

    cfg = Config()
    cfg.data.train = "synthetic?n=2&trials=1&rate=25"
    cfg.data.other_foot = True
    cfg.data.val_subjects = ["syn2"]
    cfg.model.name = "pcrnn"
    cfg.model.hidden = 8
    cfg.model.options = {"relax_steps": 2, "tau1": 2}
    cfg.train.epochs = 1
    cfg.train.steps_per_epoch = 2
    cfg.train.batch_size = 4
    cfg.train.window_s = 1.0
    cfg.train.threads = 1
    tm, metrics, _ = train(cfg, out_dir=tmp_path / "run", progress=False, force=True, log=lambda *a, **k: None)
    assert tm.model.family == "pcrnn" and tm.model.hparams()["relax_steps"] == 2
    assert all(torch.isfinite(p).all() for p in tm.model.parameters())


def test_cli_error_for_unstable_tau(tmp_path, capsys):
    from gaitedge.cli import main

    rc = main(["train", "--model", "pcrnn", "--data", "synthetic?n=2&trials=1", "--out", str(tmp_path / "r"),
               "--set", "model.tau1=1.0", "--no-progress"])
    err = capsys.readouterr().err
    assert rc != 0 and "gaitedge: error:" in err and "tau1" in err
