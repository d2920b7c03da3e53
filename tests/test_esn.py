"""Echo state networks (esn, leaky_esn, deep_esn): reservoir construction and refusals, the
closed-form ridge readout and its cross-validation, step == sequence, ONNX (any length),
the integer reservoir kernel (CSR format, hand-computed step) and the C runtime against
its Python twin (gcc with sanitizers, portable and DSP-emulated builds).
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch

from gaitedge.checkpoint import TrainedModel
from gaitedge.data.preprocess import Normalizer
from gaitedge.data.spec import load_spec
from gaitedge.errors import GaitedgeError, ModelError
from gaitedge.export.c_export import export_c
from gaitedge.models import build_model
from gaitedge.models.esn import EchoStateNetwork, make_reservoir, spectral_radius
from gaitedge.quant import Runner, quantize_model, spec
from gaitedge.quant.evaluate import recording_counts
from gaitedge.quant.model import QLayer
from gaitedge.quant.reservoir import decode_csr, encode_csr, reservoir_step

from ctools import ARM_GCC, CFLAGS, GCC, HARNESS, RUNTIME, VARIANTS, runtime_objects  # noqa: E402
from ctools import compile_cmd as _compile  # noqa: E402
FAMILIES = ("esn", "leaky_esn", "deep_esn")


@pytest.fixture(scope="module")
def syn():
    return load_spec("synthetic?n=3&trials=1", other_foot=True)


def make_esn_tm(recs, family: str = "esn", hidden: int = 16, layers: int = 1, delay: int = 0, min_run: int = 2,
                **opts) -> TrainedModel:
    """An ESN family model with its readout fitted (one ridge value) on ``recs``."""
    torch.manual_seed(0)
    r0 = recs[0]
    opts.setdefault("ridge", 1e-4)
    opts.setdefault("input_scaling", 0.6)
    model = build_model(family, len(r0.channels), len(r0.classes), hidden=hidden, layers=layers, **opts)
    tm = TrainedModel(model=model, classes=r0.classes, channels=list(r0.channels), units=list(r0.units),
                      rate_hz=r0.rate_hz, normalizer=Normalizer(np.zeros(1), np.ones(1)), lowpass_hz=0.0,
                      filter_order=2, min_run=min_run, tolerance_ms=50.0, delay=delay)
    tm.normalizer = Normalizer.fit([tm.preprocess(r).signals for r in recs])
    xs = [tm.normalizer(tm.preprocess(r).signals).astype(np.float32) for r in recs]
    ys = [np.asarray(tm.preprocess(r).labels, np.int64) for r in recs]
    model.fit_closed_form(xs, ys, [str(r.subject) for r in recs], lambda *a: None)
    model.eval()
    return tm


# ---------------------------------------------------------------------- reservoir and options


@pytest.mark.parametrize("n,density,radius", [(50, 0.1, 0.9), (64, 0.05, 0.5), (8, 1.0, 0.99)])
def test_spectral_radius_after_scaling_equals_target(n, density, radius):
    w = make_reservoir(n, density, radius, np.random.default_rng(3))
    assert abs(np.max(np.abs(np.linalg.eigvals(w))) - radius) < 1e-9
    k = max(1, round(density * n))
    assert all(np.count_nonzero(row) == k for row in w)  # fixed in-degree, sparse
    m = build_model("leaky_esn", 6, 3, hidden=n, density=density, spectral_radius=radius, seed=1)
    assert abs(spectral_radius(m.w_rec0.double().numpy()) - radius) < 1e-5
    assert m.n_params() == (n + 1) * 3  # only the readout is trained; the reservoir is buffers
    assert not any(p.requires_grad for name, p in m.named_parameters() if not name.startswith("head"))
    assert m.reservoir_size()["recurrent_nonzeros"] == n * k


def test_reservoir_is_seeded():
    a = build_model("esn", 6, 3, hidden=20, seed=5)
    b = build_model("esn", 6, 3, hidden=20, seed=5)
    c = build_model("esn", 6, 3, hidden=20, seed=6)
    assert torch.equal(a.w_rec0, b.w_rec0) and torch.equal(a.w_in0, b.w_in0)
    assert not torch.equal(a.w_rec0, c.w_rec0)


@pytest.mark.parametrize("radius", [1.0, 1.3])
def test_radius_at_or_above_one_is_refused_unless_forced(radius):
    with pytest.raises(ModelError, match="echo-state condition.*force"):
        build_model("esn", 6, 3, hidden=10, spectral_radius=radius)
    m = build_model("esn", 6, 3, hidden=10, spectral_radius=radius, force=True)
    assert abs(spectral_radius(m.w_rec0.double().numpy()) - radius) < 1e-5


@pytest.mark.parametrize("leak", [0.0, -0.2, 1.5, float("nan")])
def test_leak_outside_unit_interval_is_refused(leak):
    with pytest.raises(ModelError, match=r"leak rate must be in \(0, 1\]"):
        build_model("leaky_esn", 6, 3, hidden=8, leak=leak)
    with pytest.raises(ModelError, match=r"leak rate must be in \(0, 1\]"):
        build_model("deep_esn", 6, 3, hidden=8, layers=2, leak=leak)


@pytest.mark.parametrize("family,kw,match", [
    ("esn", {"leak": 0.5}, "no leak rate"),
    ("esn", {"layers": 2}, "use deep_esn"),
    ("deep_esn", {"layers": 1}, "layers >= 2"),
    ("esn", {"density": 0.0}, "density"),
    ("esn", {"spectral_radius": 0.0}, "spectral_radius must be > 0"),
    ("esn", {"ridge": [1e-3, -1.0]}, "ridge"),
    ("esn", {"dropout": 0.2}, "dropout"),
    ("esn", {"washout": -1}, "washout"),
    ("esn", {"no_such_option": 1}, "bad option"),
])
def test_bad_options_are_refused(family, kw, match):
    kw = {"hidden": 8, **kw}
    with pytest.raises(ModelError, match=match):
        build_model(family, 6, 3, **kw)


@pytest.mark.parametrize("family,layers,leak", [("esn", 1, None), ("leaky_esn", 1, 0.3), ("deep_esn", 3, 0.6)])
def test_step_equals_sequence(family, layers, leak):
    kw = {} if leak is None else {"leak": leak}
    m = build_model(family, 5, 3, hidden=12, layers=layers, input_scaling=0.8, **kw).eval()
    x = torch.randn(2, 30, 5)
    with torch.no_grad():
        ref, last = m(x)
        s = m.init_state(2)
        outs = []
        for t in range(30):
            o, s = m.step(x[:, t], s)
            outs.append(o)
        # a split sequence continues from its state
        a, sa = m(x[:, :11])
        b, _ = m(x[:, 11:], sa)
    assert torch.allclose(torch.stack(outs, 1), ref, atol=1e-5)
    assert torch.allclose(s[0], last[0], atol=1e-6)
    assert torch.allclose(torch.cat([a, b], 1), ref, atol=1e-5)
    assert last[0].shape == (layers, 2, 12)


def test_leaky_update_by_hand():
    """One step of a 2-unit leaky reservoir against the equation written out."""
    m = build_model("leaky_esn", 1, 2, hidden=2, leak=0.25, density=1.0)
    with torch.no_grad():
        m.w_in0.copy_(torch.tensor([[0.5], [-1.0]]))
        m.w_rec0.copy_(torch.tensor([[0.0, 0.5], [0.25, 0.0]]))
        m.b0.copy_(torch.tensor([0.1, 0.0]))
        m.head.weight.copy_(torch.eye(2))
        m.head.bias.zero_()
        h0 = torch.tensor([[[0.2, -0.4]]])
        logits, (h1,) = m.step(torch.tensor([[2.0]]), (h0,))
    want = [0.75 * 0.2 + 0.25 * np.tanh(0.5 * 2 + 0.5 * -0.4 + 0.1),
            0.75 * -0.4 + 0.25 * np.tanh(-1.0 * 2 + 0.25 * 0.2)]
    assert np.allclose(h1[0, 0].numpy(), want, atol=1e-6)
    assert np.allclose(logits[0].numpy(), want, atol=1e-6)


# ---------------------------------------------------------------------- ridge readout


def _toy(n_subjects=3, t=160, c=3, seed=0):
    rng = np.random.default_rng(seed)
    xs, ys, groups = [], [], []
    for s in range(n_subjects):
        for _ in range(2):
            x = rng.normal(size=(t, c)).astype(np.float32)
            y = (x[:, 0] > 0).astype(np.int64) + (x[:, 1] > 1).astype(np.int64)
            y[rng.random(t) < 0.1] = -1
            xs.append(x)
            ys.append(y)
            groups.append(f"s{s}")
    return xs, ys, groups


def test_ridge_readout_equals_closed_form_solution():
    xs, ys, groups = _toy()
    lam = 3e-3
    m = build_model("leaky_esn", 3, 3, hidden=10, leak=0.7, ridge=lam, washout=5)
    rep = m.fit_closed_form(xs, ys, groups, lambda *a: None)
    assert rep["ridge"] == lam and rep["cv_mse"] is None
    zs, ts = [], []
    with torch.no_grad():
        for x, y in zip(xs, ys):
            z, _ = m.states(torch.from_numpy(x)[None])
            keep = y >= 0
            keep[:5] = False
            zs.append(z[0].double().numpy()[keep])
            ts.append(np.eye(3)[y[keep]])
    z, t = np.concatenate(zs), np.concatenate(ts)
    n, f = z.shape
    # min ||[Z 1] w - T||^2 + n lam ||W||^2 as an ordinary least-squares problem (bias unpenalized)
    a = np.concatenate([np.concatenate([z, np.ones((n, 1))], 1),
                        np.concatenate([np.sqrt(n * lam) * np.eye(f), np.zeros((f, 1))], 1)])
    b = np.concatenate([t, np.zeros((f, 3))])
    w = np.linalg.lstsq(a, b, rcond=None)[0]
    assert np.allclose(m.head.weight.detach().double().numpy(), w[:-1].T, atol=1e-5)
    assert np.allclose(m.head.bias.detach().double().numpy(), w[-1], atol=1e-5)
    resid = ((a[:n] @ w - t) ** 2).mean()
    assert abs(rep["train_loss"] - resid) < 1e-6


def test_cross_validation_picks_from_the_grid_by_subject():
    xs, ys, groups = _toy(n_subjects=4)
    m = build_model("esn", 3, 3, hidden=12, ridge=[1e6, 1e-5, 10.0], cv_folds=2)
    logs = []
    rep = m.fit_closed_form(xs, ys, groups, logs.append)
    cv = rep["cv_mse"]
    assert set(cv) == {repr(1e6), repr(1e-5), repr(10.0)}
    assert rep["ridge"] == min((1e6, 1e-5, 10.0), key=lambda v: cv[repr(v)])
    assert rep["ridge"] == 1e-5  # a huge penalty predicts the class frequencies only
    assert cv[repr(1e6)] > cv[repr(1e-5)]
    assert "4 subjects in 2 folds" in logs[0]
    with pytest.raises(ModelError, match="at least 2 subjects"):
        build_model("esn", 3, 3, hidden=12).fit_closed_form(xs[:2], ys[:2], groups[:2], lambda *a: None)


def test_gaitedge_train_cli_fits_in_closed_form(tmp_path):
    from gaitedge.cli import main

    out = tmp_path / "run"
    rc = main(["train", "--model", "deep_esn", "--data", "synthetic?n=4&trials=1", "--out", str(out),
               "--no-progress", "--set", "model.hidden=16", "--set", "model.layers=2", "--set", "train.threads=1",
               "--set", "data.val_subjects=['syn4']", "--set", "model.ridge=[1e-4, 1e-2]"])
    assert rc == 0
    import json

    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["epochs_run"] == 1 and metrics["n_params"] == (2 * 16 + 1) * 3
    assert metrics["val"]["macro_f1"] > 0.5
    from gaitedge.checkpoint import load_checkpoint

    tm = load_checkpoint(out)
    assert tm.info["fit"]["ridge"] in (1e-4, 1e-2) and tm.info["fit"]["reservoir"]["units"] == 32
    rc = main(["train", "--model", "esn", "--data", "synthetic?n=2&trials=1", "--out", str(tmp_path / "bad"),
               "--no-progress", "--set", "model.spectral_radius=1.2"])
    assert rc != 0


# ---------------------------------------------------------------------- ONNX


@pytest.mark.parametrize("family,layers", [("leaky_esn", 1), ("deep_esn", 2)])
def test_onnx_sequence_any_length_and_step(syn, tmp_path, family, layers):
    import onnx
    import onnxruntime as ort

    from gaitedge.export.onnx_export import export_onnx

    tm = make_esn_tm(syn, family, hidden=12, layers=layers)
    paths = export_onnx(tm, tmp_path)  # its self-check runs T = 24; the graph was traced at T = 8
    seq = onnx.load(str(paths.sequence))
    assert "Loop" in {n.op_type for n in seq.graph.node}
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    s_seq = ort.InferenceSession(str(paths.sequence), so, providers=["CPUExecutionProvider"])
    s_step = ort.InferenceSession(str(paths.step), so, providers=["CPUExecutionProvider"])
    x = np.random.default_rng(1).normal(size=(2, 37, tm.model.input_size)).astype(np.float32)
    h0 = np.random.default_rng(2).uniform(-0.5, 0.5, size=(layers, 2, 12)).astype(np.float32)
    with torch.no_grad():
        ref, (hn,) = tm.model(torch.from_numpy(x), (torch.from_numpy(h0),))
    logits, h_out = s_seq.run(None, {"x": x, "h_in": h0})
    assert np.abs(logits - ref.numpy()).max() <= 1e-4
    assert np.abs(h_out - hn.numpy()).max() <= 1e-5
    h, steps = h0, []
    for t in range(37):
        o, h = s_step.run(None, {"x": x[:, t], "h_in": h})
        steps.append(o)
    assert np.abs(np.stack(steps, 1) - ref.numpy()).max() <= 1e-4


# ---------------------------------------------------------------------- integer kernel


def test_csr_roundtrip_and_padding():
    rng = np.random.default_rng(0)
    w = np.where(rng.random((12, 12)) < 0.3, rng.integers(-127, 128, size=(12, 12)), 0)
    w[3] = 0  # an empty row
    w[5, :] = rng.integers(1, 127, size=12)  # a full row (3 groups)
    extra = encode_csr(w, 12345)
    leak, back = decode_csr(extra, 12)
    assert leak == 12345 and np.array_equal(back, w)
    groups = sum(-(-np.count_nonzero(r) // 4) for r in w)
    assert int(extra[1]) == groups and len(extra) == 2 + 3 + 3 * groups
    assert np.all((extra >= spec.INT32_MIN) & (extra <= spec.INT32_MAX))
    with pytest.raises(ModelError):
        encode_csr(w, 0)
    with pytest.raises(ModelError):
        encode_csr(w, 32769)


def test_integer_step_by_hand():
    """4 units over 2 inputs: every term of the spec written out for one unit."""
    hp = 4
    w_rec = np.zeros((4, 4), np.int64)
    w_rec[0, 1], w_rec[0, 3], w_rec[2, 0] = 50, -20, 127
    w_in = np.array([[10, -3], [0, 0], [7, 7], [-127, 1]])
    bias = np.array([1000, 0, -500, 123456])
    m_in = np.array([1 << 28, 1 << 28, 1 << 27, 1 << 26])
    m_rec = np.array([3 << 27, 1 << 29, 1 << 28, 1 << 28])
    leak = 8192  # a = 0.25
    lay = QLayer("reservoir", 2, hp, np.concatenate([w_rec, w_in], 1), bias, np.concatenate([m_in, m_rec]),
                 extra=encode_csr(w_rec, leak))
    h = np.array([1000, -2000, 3000, 16000])
    x = np.array([20000, -10000])
    got, _ = reservoir_step(lay, np.concatenate([h, x])[None], None)
    acc_in0 = 1000 + 10 * 20000 + -3 * -10000  # 231000
    acc_rec0 = 50 * -2000 + -20 * 16000  # -420000
    v0 = (acc_in0 * (1 << 28) + (1 << 31)) // (1 << 32) + (acc_rec0 * (3 << 27) + (1 << 31)) // (1 << 32)
    assert v0 == 14438 + -39375
    t0 = int(spec.tanh_q(max(v0, 0)))  # usat16 clamps the negative pre-activation to 0
    assert t0 == -32767
    h0 = 1000 + (leak * (t0 - 1000) + (1 << 14)) // (1 << 15)
    assert int(got[0, 0]) == h0 == 1000 - 8442
    # unit 2: one recurrent weight (127 * h_0), positive pre-activation inside the table
    acc_in2, acc_rec2 = -500 + 7 * 20000 + 7 * -10000, 127 * 1000
    v2 = (acc_in2 * (1 << 27) + (1 << 31)) // (1 << 32) + (acc_rec2 * (1 << 28) + (1 << 31)) // (1 << 32)
    assert v2 == 2172 + 7938
    t2 = int(spec.tanh_q(v2))
    assert int(got[0, 2]) == 3000 + (leak * (t2 - 3000) + (1 << 14)) // (1 << 15)


def test_padded_units_stay_zero_and_quantized_model_follows_float(syn):
    tm = make_esn_tm(syn, "leaky_esn", hidden=14, leak=0.4)
    qm = quantize_model(tm, syn[:2])
    lay = qm.layers[0]
    assert lay.kind == "reservoir" and lay.hidden == 16 and qm.head_cols == 16
    counts = recording_counts(qm, syn[-1])
    runner = Runner(qm)
    out = runner.run(counts)
    assert not runner.vec[:, 14:16].any()  # inert padding units
    # end to end: the integer pipeline labels like the float model on held-out data
    with torch.no_grad():
        x = tm.normalizer(tm.preprocess(syn[-1]).signals).astype(np.float32)
        ref = tm.model(torch.from_numpy(x)[None])[0][0].argmax(-1).numpy()
    n = min(len(ref), out["raw_label"].shape[1])
    assert np.mean(out["raw_label"][0, :n] == ref[:n]) > 0.95
    assert qm.report["reservoir"]["leak_q15"] == round(0.4 * 32768)


# ---------------------------------------------------------------------- C runtime == Python twin


@pytest.fixture(scope="module")
def runtime_objs() -> dict[str, list[Path]]:
    if GCC is None:
        pytest.skip("no host C compiler (gcc)")
    return runtime_objects()


def _c_vs_python(qm, counts, objs, work: Path) -> None:
    export_c(qm, work / "model", copy_runtime=False, measure_code=False)
    runner = Runner(qm)
    ref = []
    for t in range(len(counts)):
        o = runner.step(counts[t][None])
        ref.append([o.raw_label[0], o.label[0], o.event[0], o.event_sample[0], *o.logits[0]])
    ref = np.array(ref)
    for name, flags in VARIANTS.items():
        exe = work / f"harness-{name}"
        _compile([GCC, *CFLAGS, *flags, f"-I{RUNTIME / 'include'}", f"-I{work / 'model'}",
                  str(work / "model" / "model_data.c"), str(HARNESS), *map(str, objs[name]), "-o", str(exe)])
        r = subprocess.run([str(exe), "step"], input=np.asarray(counts, "<i2").tobytes(), capture_output=True,
                           check=True)
        got = np.array([list(map(int, ln.split())) for ln in r.stdout.decode().splitlines()])
        assert np.array_equal(got, ref), f"{name} build differs from the Python twin"


@pytest.mark.parametrize("family,hidden,layers,opts", [
    ("esn", 20, 1, {"density": 0.2}),
    ("leaky_esn", 70, 1, {"leak": 0.3, "density": 0.1}),  # > GE_BLOCK units, a padded unit
    ("deep_esn", 16, 2, {"leak": 0.7, "inter_scaling": 0.5}),
])
def test_c_runtime_equals_twin(syn, runtime_objs, tmp_path, family, hidden, layers, opts):
    tm = make_esn_tm(syn, family, hidden=hidden, layers=layers, delay=1, **opts)
    qm = quantize_model(tm, syn[:2])
    if family == "deep_esn":
        assert qm.head_cols == sum(lay.hidden for lay in qm.layers) and qm.layers[1].in_size == 16
    counts = recording_counts(qm, syn[-1])[:400]
    _c_vs_python(qm, counts, runtime_objs, tmp_path)


@pytest.mark.parametrize("corrupt", ["groups", "column"])
def test_c_check_refuses_a_corrupt_reservoir(syn, runtime_objs, tmp_path, corrupt):
    """ge_check_model refuses a CSR that does not add up or points outside the reservoir."""
    tm = make_esn_tm(syn, "esn", hidden=8)
    qm = quantize_model(tm, syn[:2])
    extra = qm.layers[0].extra.copy()
    if corrupt == "groups":
        extra[1] += 1  # one group more than the rows hold
    else:
        extra[2 + 2] = 8 | (8 << 16)  # column indices 8 in a reservoir of 8 units
    qm.layers[0].extra = extra
    export_c(qm, tmp_path / "model", copy_runtime=False, measure_code=False)
    exe = tmp_path / "harness"
    _compile([GCC, *CFLAGS, f"-I{RUNTIME / 'include'}", f"-I{tmp_path / 'model'}",
              str(tmp_path / "model" / "model_data.c"), str(HARNESS), *map(str, runtime_objs["portable"]),
              "-o", str(exe)])
    counts = recording_counts(qm, syn[-1])[:3]
    r = subprocess.run([str(exe), "step"], input=np.asarray(counts, "<i2").tobytes(), capture_output=True)
    # ge_arena_bytes() is 0 for a model ge_check_model() refuses
    assert r.returncode == 3 and b"arena size mismatch: 0 vs" in r.stderr, r.stderr


@pytest.mark.skipif(ARM_GCC is None, reason="arm-none-eabi-gcc not installed")
@pytest.mark.parametrize("dsp", [False, True])
def test_arm_build_is_warning_free(tmp_path, dsp):
    flags = ["-std=c99", "-O2", "-mcpu=cortex-m4", "-mthumb", "-Wall", "-Wextra", "-Werror", "-pedantic",
             f"-I{RUNTIME / 'include'}"] + (["-DGE_USE_DSP"] if dsp else [])
    for src in ("ge_reservoir.c", "ge_layers.c"):
        _compile([ARM_GCC, *flags, "-c", str(RUNTIME / "src" / src), "-o", str(tmp_path / (src + ".o"))])
    syms = subprocess.run(["arm-none-eabi-nm", "-u", str(tmp_path / "ge_reservoir.c.o")], capture_output=True,
                          text=True).stdout
    assert not any(s in syms for s in ("__aeabi_f", "__aeabi_d", "malloc"))


def test_unknown_family_error_is_a_gaitedge_error():
    assert issubclass(ModelError, GaitedgeError)
    assert isinstance(build_model("deep_esn", 4, 2, hidden=4, layers=2), EchoStateNetwork)
