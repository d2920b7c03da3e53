"""Continuous-time families: CTRNN, S-CTRNN, GACTRNN.

Hand-computed Euler steps and S-CTRNN loss, step == sequence, option errors, ONNX
(any-length sequence graph), the integer twins against the C runtime (gcc with
ASan/UBSan, portable and DSP-emulated), quantized vs float, and the S-CTRNN's
library API (anomaly score on perturbed gait, closed-loop generation).
"""

from __future__ import annotations

import math
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from gaitedge.checkpoint import TrainedModel
from gaitedge.data.preprocess import Normalizer
from gaitedge.data.spec import load_spec
from gaitedge.errors import ModelError
from gaitedge.models import build_model
from gaitedge.quant import Runner, quantize_model
from gaitedge.quant.evaluate import recording_counts

sys.path.insert(0, str(Path(__file__).resolve().parent))
import test_c_runtime as _crt  # noqa: E402
from test_c_runtime import GCC, build, c_steps, py_steps_batch  # noqa: E402

#: the runtime compiled once per variant (portable, DSP-emulated), shared fixture
runtime_objs = _crt.runtime_objs

FAMILIES = ("ctrnn", "sctrnn", "gactrnn")


def sig(v: float) -> float:
    return 1.0 / (1.0 + math.exp(-v))


def _set(p: torch.nn.Parameter, values) -> None:
    with torch.no_grad():
        p.copy_(torch.tensor(values, dtype=torch.float32))


# ------------------------------------------------------------------- hand-computed steps


def _two_neuron_ctrnn(family: str = "ctrnn"):
    """2 neurons, 1 input, 100 Hz, tau = 20 ms and 50 ms fixed: alpha = 0.5, 0.2."""
    m = build_model(family, 1, 2, hidden=2, rate_hz=100, tau_ms=[20.0, 50.0], learn_tau=False).eval()
    cell = m.cells[0]
    _set(cell.rec, [[0.5, -1.0], [2.0, 0.0]])  # rec[i, j]: weight from neuron j into neuron i
    _set(cell.inp.weight, [[1.0], [-2.0]])
    _set(cell.inp.bias, [0.1, 0.0])
    _set(m.head.weight, [[1.0, 0.0], [0.0, 1.0]])  # logits = y
    _set(m.head.bias, [0.0, 0.0])
    return m


def test_ctrnn_one_euler_step_by_hand():
    m = _two_neuron_ctrnn()
    assert torch.allclose(m.cells[0].alpha(), torch.tensor([0.5, 0.2]))
    # u = 0, y = (0.5, 0.5), I = 1:
    #   drive_0 = 0.5*0.5 - 1.0*0.5 + 1.0*1 + 0.1 = 0.85;  u_0' = 0 + 0.5 (0.85 - 0) = 0.425
    #   drive_1 = 2.0*0.5 + 0.0*0.5 - 2.0*1 + 0.0 = -1.0;  u_1' = 0 + 0.2 (-1.0 - 0) = -0.2
    logits, (u,) = m(torch.tensor([[[1.0]]]))
    assert u[0, 0].tolist() == pytest.approx([0.425, -0.2], abs=1e-6)
    assert logits[0, 0].tolist() == pytest.approx([sig(0.425), sig(-0.2)], abs=1e-6)
    # second step, I = -1: y = (sig(.425), sig(-.2)) = (0.604680, 0.450166)
    y0, y1 = sig(0.425), sig(-0.2)
    assert (y0, y1) == pytest.approx((0.604680, 0.450166), abs=1e-6)
    d0 = 0.5 * y0 - 1.0 * y1 - 1.0 + 0.1  # -1.0478260
    d1 = 2.0 * y0 + 2.0  # 3.2093600
    u_exp = [0.425 + 0.5 * (d0 - 0.425), -0.2 + 0.2 * (d1 + 0.2)]  # (-0.3114130, 0.4818720)
    assert u_exp == pytest.approx([-0.311413, 0.481872], abs=1e-6)
    _, (u2,) = m(torch.tensor([[[1.0], [-1.0]]]))
    assert u2[0, 0].tolist() == pytest.approx(u_exp, abs=1e-6)


def test_gactrnn_one_euler_step_by_hand():
    m = build_model("gactrnn", 1, 2, hidden=2, rate_hz=100, tau_ms=[20.0, 50.0]).eval()
    cell = m.cells[0]
    assert torch.allclose(cell.alpha(), torch.tensor([0.5, 0.2]))
    assert torch.allclose(cell.tau_s(), torch.tensor([0.02, 0.05]))
    # rows: input gate (2), forget gate (2), drive (2)
    _set(cell.inp.weight, [[1.0], [0.0], [0.0], [-1.0], [1.0], [-2.0]])
    _set(cell.inp.bias, [0.0, 0.0, 0.0, 0.0, 0.1, 0.0])
    _set(cell.rec, [[0.0, 0.0], [0.0, 0.0], [0.0, 0.0], [0.0, 0.0], [0.5, -1.0], [2.0, 0.0]])
    # u = 0, y = 0.5, x = 1: i = sig(1, 0) = (0.731059, 0.5), f = sig(0, -1) = (0.5, 0.268941),
    # drive = (0.85, -1.0) as in the CTRNN case;  u' = u + alpha (i drive - f u)
    #   u_0' = 0.5 * 0.731059 * 0.85 = 0.310700;  u_1' = 0.2 * 0.5 * -1.0 = -0.1
    _, (u,) = m(torch.tensor([[[1.0]]]))
    assert u[0, 0].tolist() == pytest.approx([0.310700, -0.1], abs=1e-6)
    # second step, x = 0: i = (0.5, 0.5), f = (0.5, 0.5); y = sig(u)
    y0, y1 = sig(0.3107003), sig(-0.1)
    d = [0.5 * y0 - 1.0 * y1 + 0.1, 2.0 * y0]
    u_exp = [0.3107003 + 0.5 * (0.5 * d[0] - 0.5 * 0.3107003), -0.1 + 0.2 * (0.5 * d[1] + 0.5 * 0.1)]
    _, (u2,) = m(torch.tensor([[[1.0], [0.0]]]))
    assert u2[0, 0].tolist() == pytest.approx(u_exp, abs=1e-6)


def test_sctrnn_loss_tiny_case_by_hand():
    m = build_model("sctrnn", 1, 2, hidden=2, nll_weight=1.0)
    with torch.no_grad():
        m.mu.weight.zero_()
        m.mu.bias.fill_(0.5)  # mu = 0.5
        m.beta.weight.zero_()
        m.beta.bias.fill_(math.log(2.0))  # sigma = 2
    x = torch.tensor([[[0.0], [1.0], [-1.0]]])
    m.train()
    logits, _ = m(x)
    # targets x_1 = 1, x_2 = -1 (x_0 has no prediction):
    #   1/2 [log(2 pi 4) + (1 - 0.5)^2 / 4] + 1/2 [log(2 pi 4) + (-1 - 0.5)^2 / 4]
    #   = log(8 pi) + (0.0625 + 0.5625) / 2 = 3.2241714 + 0.3125 = 3.5366714
    assert float(m.auxiliary_loss(x, logits).detach()) == pytest.approx(3.5366714, abs=1e-5)
    m.nll_weight = 0.25
    m(x)
    assert float(m.auxiliary_loss(x, logits).detach()) == pytest.approx(0.25 * 3.5366714, abs=1e-5)
    m.eval()
    score = m.anomaly_score(np.array([[0.0], [1.0], [-1.0]]))
    assert np.isnan(score[0])
    assert score[1:].tolist() == pytest.approx([0.5 * (math.log(8 * math.pi) + 0.0625),
                                                0.5 * (math.log(8 * math.pi) + 0.5625)], abs=1e-5)
    mu, sigma, _ = m.predict_next(np.zeros((4, 1)))
    assert mu.shape == (4, 1) and np.allclose(mu, 0.5) and np.allclose(sigma, 2.0)


# ------------------------------------------------------------------- structure and options


@pytest.mark.parametrize("family", FAMILIES)
def test_step_equals_sequence(family):
    torch.manual_seed(1)
    m = build_model(family, 5, 3, hidden=8, layers=2, tau_ms=[10, 15, 20, 30, 40, 60, 80, 100]).eval()
    x = torch.randn(2, 40, 5)
    ref, (u_ref,) = m(x)
    state = m.init_state(2)
    outs = []
    for t in range(40):
        o, state = m.step(x[:, t], state)
        outs.append(o)
    assert torch.allclose(torch.stack(outs, 1), ref, atol=1e-5)
    assert torch.allclose(state[0], u_ref, atol=1e-5)
    # continuing from a state equals one long run
    a, st = m(x[:, :15])
    b, _ = m(x[:, 15:], st)
    assert torch.allclose(torch.cat([a, b], 1), ref, atol=1e-5)


@pytest.mark.parametrize("family", FAMILIES)
def test_time_constant_shorter_than_dt_is_refused(family):
    with pytest.raises(ModelError, match="unstable for dt > tau"):
        build_model(family, 3, 2, hidden=4, rate_hz=100, tau_ms=5.0)
    with pytest.raises(ModelError, match="unstable for dt > tau"):
        build_model(family, 3, 2, hidden=2, rate_hz=200, tau_ms=[10.0, 4.0])
    build_model(family, 3, 2, hidden=4, rate_hz=100, tau_ms=10.0)  # tau = dt is allowed
    with pytest.raises(ModelError, match="rate_hz"):
        build_model(family, 3, 2, hidden=4, rate_hz=0)
    with pytest.raises(ModelError, match="tau_ms lists 3"):
        build_model(family, 3, 2, hidden=4, tau_ms=[20.0, 30.0, 40.0])
    with pytest.raises(ModelError, match="bad option"):
        build_model(family, 3, 2, hidden=4, tau=20.0)


def test_other_bad_options():
    with pytest.raises(ModelError, match="learn_tau"):
        build_model("ctrnn", 3, 2, hidden=4, learn_tau="maybe")
    with pytest.raises(ModelError, match="nll_weight"):
        build_model("sctrnn", 3, 2, hidden=4, nll_weight=-1.0)
    m = build_model("sctrnn", 3, 2, hidden=4)
    with pytest.raises(ModelError, match="channels"):
        m.anomaly_score(np.zeros((10, 2)))


def test_learned_time_constants_never_fall_below_dt():
    m = build_model("ctrnn", 3, 2, hidden=4, rate_hz=50, tau_ms=100.0)
    assert torch.allclose(m.cells[0].tau_s(), torch.full((4,), 0.1), atol=1e-6)
    with torch.no_grad():
        m.cells[0].tau_raw.fill_(-50.0)
    assert torch.all(m.cells[0].tau_s() >= 0.02) and torch.all(m.cells[0].alpha() <= 1.0)
    g = build_model("gactrnn", 3, 2, hidden=4, rate_hz=50, tau_ms=100.0)
    with torch.no_grad():
        g.cells[0].eta.fill_(-20.0)  # tau = exp(-20) s would be far below dt
    assert torch.allclose(g.cells[0].tau_s(), torch.full((4,), 0.02)) and torch.allclose(
        g.cells[0].alpha(), torch.ones(4))
    fixed = build_model("ctrnn", 3, 2, hidden=4, tau_ms=30.0, learn_tau=False)
    assert not any("tau" in n for n, _ in fixed.named_parameters())
    assert torch.allclose(fixed.cells[0].alpha(), torch.full((4,), 1 / 3))


# ------------------------------------------------------------------------------- ONNX


def _tm(model, recs=None, channels: int | None = None) -> TrainedModel:
    if recs is None:
        c = channels or model.input_size
        return TrainedModel(model=model, classes=tuple(f"k{i}" for i in range(model.num_classes)),
                            channels=[f"c{i}" for i in range(c)], units=["g"] * c, rate_hz=100.0,
                            normalizer=Normalizer(np.zeros(c), np.ones(c)), lowpass_hz=0.0, filter_order=2,
                            min_run=2, tolerance_ms=50.0, delay=0)
    r0 = recs[0]
    tm = TrainedModel(model=model, classes=r0.classes, channels=list(r0.channels), units=list(r0.units),
                      rate_hz=r0.rate_hz, normalizer=Normalizer(np.zeros(1), np.ones(1)), lowpass_hz=0.0,
                      filter_order=2, min_run=3, tolerance_ms=50.0, delay=1)
    tm.normalizer = Normalizer.fit([tm.preprocess(r).signals for r in recs])
    return tm


@pytest.mark.parametrize("family", FAMILIES)
def test_onnx_sequence_any_length_and_step_chain(family, tmp_path):
    import onnx
    import onnxruntime as ort

    from gaitedge.export.onnx_export import export_onnx

    torch.manual_seed(2)
    m = build_model(family, 4, 3, hidden=6, layers=2, tau_ms=[10, 20, 30, 40, 50, 60]).eval()
    paths = export_onnx(_tm(m), tmp_path)  # traced at T = 8, self-checked at T = 24
    seq = onnx.load(paths.sequence)
    assert "Loop" in {n.op_type for n in seq.graph.node}
    so = ort.SessionOptions()
    so.log_severity_level = 3
    s_seq = ort.InferenceSession(str(paths.sequence), so, providers=["CPUExecutionProvider"])
    s_step = ort.InferenceSession(str(paths.step), so, providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(0)
    for t_len in (1, 37):
        x = rng.standard_normal((3, t_len, 4)).astype(np.float32)
        h0 = (0.5 * rng.standard_normal((2, 3, 6))).astype(np.float32)
        with torch.no_grad():
            ref, (u_ref,) = m(torch.from_numpy(x), (torch.from_numpy(h0),))
        got, u_got = s_seq.run(None, {"x": x, "h_in": h0})
        assert got.shape == (3, t_len, 3)
        assert np.abs(got - ref.numpy()).max() <= 1e-4 and np.abs(u_got - u_ref.numpy()).max() <= 1e-4
        h, steps = h0, []
        for t in range(t_len):
            lo, h = s_step.run(None, {"x": x[:, t], "h_in": h})
            steps.append(lo)
        assert np.abs(np.stack(steps, 1) - ref.numpy()).max() <= 1e-4


# ------------------------------------------------------------------ integer model and C


@pytest.fixture(scope="module")
def syn():
    return load_spec("synthetic?n=3&trials=1", other_foot=True)


def _lively(family: str, recs, hidden: int, layers: int = 1, seed: int = 0) -> TrainedModel:
    """An untrained model with lively dynamics (larger weights, a spread of time constants)."""
    torch.manual_seed(seed)
    r0 = recs[0]
    taus = list(np.geomspace(10.0, 300.0, hidden))
    m = build_model(family, len(r0.channels), len(r0.classes), hidden=hidden, layers=layers, tau_ms=taus)
    with torch.no_grad():
        for k, cell in enumerate(m.cells):
            cell.rec.mul_(3.0)
            cell.inp.weight.mul_(3.0)
            # centre the drive: y is about 1/2 on average
            cell.inp.bias.sub_(0.5 * cell.rec.sum(1) + (0.5 * cell.inp.weight.sum(1) if k else 0.0))
        m.head.weight.mul_(4.0)
        m.head.bias.copy_(-0.5 * m.head.weight.sum(1))
    return _tm(m.eval(), recs)


SYN_CASES = {
    "ctrnn": dict(family="ctrnn", hidden=16),
    "sctrnn-2layer": dict(family="sctrnn", hidden=12, layers=2),
    "gactrnn": dict(family="gactrnn", hidden=16),
    "gactrnn-h70": dict(family="gactrnn", hidden=70),
}


@pytest.mark.skipif(GCC is None, reason="no host C compiler (gcc)")
@pytest.mark.parametrize("name", list(SYN_CASES))
def test_c_equals_integer_twin(syn, runtime_objs, tmp_path, name):
    kw = SYN_CASES[name]
    tm = _lively(kw["family"], syn, kw["hidden"], kw.get("layers", 1))
    qm = quantize_model(tm, syn[:2])
    kinds = {lay.kind for lay in qm.layers}
    assert kinds == {"gactrnn" if kw["family"] == "gactrnn" else "ctrnn"}
    assert all(lay.aux == lay.hidden and len(lay.extra) == lay.hidden for lay in qm.layers)
    exes = build(qm, runtime_objs, tmp_path)
    counts = recording_counts(qm, syn[-1])[:800]
    ref = py_steps_batch(qm, [counts])[0]
    assert len(set(ref[:, 0].tolist())) > 1, "the model should not be constant"
    for variant, exe in exes.items():
        got = c_steps(exe, counts)
        bad = np.argwhere(got != ref)
        assert len(bad) == 0, f"{variant}: first difference at step {bad[0][0]}: C {got[bad[0][0]]} vs {ref[bad[0][0]]}"


@pytest.mark.parametrize("family", FAMILIES)
def test_quantized_follows_float(syn, family):
    tm = _lively(family, syn, 16)
    qm = quantize_model(tm, syn)  # calibrated on the recording too: no input clipping
    rec = syn[-1]
    out = Runner(qm).run(recording_counts(qm, rec)[:1500])
    x = tm.normalizer(tm.preprocess(rec).signals)[:1500]
    with torch.no_grad():
        ref, _ = tm.model(torch.from_numpy(np.asarray(x, np.float32))[None])
    ref = ref[0].numpy()
    got = out["logits"][0] / 2.0**qm.logit_frac
    scale = np.abs(ref).max()
    assert np.abs(got - ref).max() < 0.08 * scale, (np.abs(got - ref).max(), scale)
    assert np.median(np.abs(got - ref)) < 0.02 * scale
    assert (got.argmax(1) == ref.argmax(1)).mean() > 0.95


def test_integer_ctrnn_step_by_hand():
    """One integer step of a 4-unit layer worked out from the spec."""
    from gaitedge.quant.ctrnn import ctrnn_step
    from gaitedge.quant.model import QLayer
    from gaitedge.quant.spec import sigmoid_q

    w = np.zeros((4, 6), np.int64)
    w[0, 4] = 64  # unit 0 reads input 0
    lay = QLayer("ctrnn", 2, 4, w, np.array([0, 0, 4096 << 3, 0]), np.full(4, 1 << 29), cell_frac=10,
                 aux=4, extra=np.array([1 << 21, 1 << 22, 1 << 20, 0]))  # alpha = 1/2, 1, 1/4, 0 (A = a 2^22)
    v = np.array([[0, 0, 0, 0, 16384, 0]])  # z = 0, input 0 = 0.5
    u = np.array([[0, 1024, 0, 77]])
    z, un = ctrnn_step(lay, v, u)
    # unit 0: acc = 64 * 16384 = 2^20, p = mulhr(2^20, 2^29) = 2^17 (Q.12: 32.0), d = 2^17,
    #         u' = 0 + mulhr(2^25, 2^21) = 2^14 -> 16384 (Q.10: 16.0, saturating nothing)
    # unit 1: d = 0 - 1024 * 4 = -4096, u' = 1024 + mulhr(-2^20, 2^22) = 1024 - 1024 = 0
    # unit 2: acc = 2^15, p = 2^12 (1.0), d = 4096, u' = mulhr(2^20, 2^20) = 256 (0.25 in Q.10)
    # unit 3: alpha = 0 keeps u = 77
    assert un[0].tolist() == [16384, 0, 256, 77]
    uu = np.array([16384 * 4, 0, 256 * 4, 77 * 4]) + 32768
    assert z[0].tolist() == (2 * sigmoid_q(np.clip(uu, 0, 65535)) - 32768).tolist()
    assert z[0, 1] == 0 and z[0, 0] > 32700  # sigmoid(u = 16) saturates at the table's end


# ------------------------------------------------------------------ S-CTRNN library API


def _gait_signals(recs, norm: Normalizer, n: int) -> list[np.ndarray]:
    return [np.asarray(norm(r.signals), np.float32)[:n] for r in recs]


@pytest.fixture(scope="module")
def trained_sctrnn(syn):
    """An S-CTRNN trained on the next-sample NLL of synthetic gait (a few hundred steps)."""
    torch.manual_seed(0)
    torch.set_num_threads(1)
    recs = [r.select_channels(r.channels[:6]) for r in syn]
    norm = Normalizer.fit([r.signals for r in recs[:4]])
    sig_train = _gait_signals(recs[:4], norm, 3000)
    m = build_model("sctrnn", 6, len(recs[0].classes), hidden=16, tau_ms=list(np.geomspace(10, 200, 16)),
                    nll_weight=1.0)
    opt = torch.optim.Adam(m.parameters(), lr=1e-2)
    rng = np.random.default_rng(0)
    m.train()
    for _ in range(120):
        xb = []
        for _ in range(8):
            s = sig_train[rng.integers(len(sig_train))]
            t0 = rng.integers(0, len(s) - 150)
            xb.append(s[t0 : t0 + 150])
        x = torch.from_numpy(np.stack(xb))
        logits, _ = m(x)
        loss = m.auxiliary_loss(x, logits) / x.numel()
        opt.zero_grad()
        loss.backward()
        opt.step()
    return m.eval(), _gait_signals(recs[4:], norm, 1200)


def test_anomaly_score_higher_on_perturbed_gait(trained_sctrnn):
    m, tests = trained_sctrnn
    rng = np.random.default_rng(1)
    normal, reversed_, spiked = [], [], []
    for s in tests:
        seg = slice(500, 600)  # about one stride
        base = m.anomaly_score(s)[seg]
        r = s.copy()
        r[seg] = s[seg][::-1]
        k = s.copy()
        idx = rng.choice(np.arange(500, 600), 10, replace=False)
        k[idx] += rng.choice([-3.0, 3.0], size=(10, s.shape[1]))
        normal.append(np.mean(base))
        reversed_.append(np.mean(m.anomaly_score(r)[seg]))
        spiked.append(np.mean(m.anomaly_score(k)[seg]))
    assert np.mean(reversed_) > np.mean(normal) + 0.5, (normal, reversed_)
    assert np.mean(spiked) > np.mean(normal) + 2.0, (normal, spiked)
    assert all(a > b for a, b in zip(spiked, normal))


def test_generate_closed_loop(trained_sctrnn):
    m, tests = trained_sctrnn
    seed = tests[0][:300]
    a = m.generate(200, seed, np.random.default_rng(5))
    b = m.generate(200, seed, np.random.default_rng(5))
    assert a.shape == (200, 6) and np.array_equal(a, b) and np.all(np.isfinite(a))
    # the generated signal moves like gait, not a constant and not an explosion
    assert 0.1 < float(a.std()) < 5.0
    with pytest.raises(ModelError):
        m.generate(5, np.zeros((0, 6)))


def test_train_cli_path_with_auxiliary_loss(tmp_path):
    """``gaitedge train --model sctrnn`` machinery: config options reach the model, the NLL is used."""
    from gaitedge.config import Config, apply_override
    from gaitedge.training.train import train

    cfg = Config()
    cfg.data.train = "synthetic?n=3&trials=1"
    cfg.data.val_subjects = ["syn3"]
    cfg.model.name = "sctrnn"
    cfg.model.hidden = 8
    for o in ("model.tau_ms=30.0", "model.nll_weight=0.5", "model.learn_tau=false"):
        apply_override(cfg, o)
    cfg.train.epochs = 1
    cfg.train.steps_per_epoch = 3
    cfg.train.batch_size = 4
    cfg.train.window_s = 1.0
    cfg.train.threads = 1
    tm, _, _ = train(cfg, out_dir=tmp_path / "run", progress=False, force=True, log=lambda *a, **k: None)
    assert tm.model.family == "sctrnn" and tm.model.hparams()["nll_weight"] == 0.5
    assert tm.model.hparams()["learn_tau"] is False and tm.model.hparams()["tau_ms"] == 30.0


@pytest.mark.skipif(_crt.ARM_GCC is None, reason="arm-none-eabi-gcc not installed")
@pytest.mark.parametrize("dsp", [False, True])
def test_kernels_build_warning_free_for_cortex_m4(tmp_path, dsp):
    import subprocess

    for src in ("ge_ctrnn.c", "ge_gactrnn.c", "ge_layers.c"):
        r = subprocess.run([_crt.ARM_GCC, "-std=c99", "-O2", "-mcpu=cortex-m4", "-mthumb", "-mfloat-abi=soft",
                            "-Wall", "-Wextra", "-Werror", "-pedantic", *(["-DGE_USE_DSP"] if dsp else []),
                            f"-I{_crt.RUNTIME / 'include'}", "-c", str(_crt.RUNTIME / "src" / src),
                            "-o", str(tmp_path / (src + ".o"))], capture_output=True, text=True)
        assert r.returncode == 0, r.stderr
        syms = subprocess.run(["arm-none-eabi-nm", "-u", str(tmp_path / (src + ".o"))], capture_output=True,
                              text=True).stdout
        assert not any(s in syms for s in ("__aeabi_f", "__aeabi_d", "malloc")), syms


@pytest.mark.skipif(_crt.ARM_GCC is None or _crt.shutil.which("qemu-system-arm") is None,
                    reason="arm-none-eabi-gcc / qemu-system-arm not installed")
def test_qemu_cortex_m4_dsp_equals_twin(syn, tmp_path):
    """The DSP build on the emulated Cortex-M4 (a CTRNN under a GACTRNN layer) gives the Python answer."""
    from gaitedge.export.c_export import export_c

    mcu = _crt._mcu()
    tm = _lively("gactrnn", syn, 8, layers=2)
    qm = quantize_model(tm, syn[:2])
    qm.layers[0] = quantize_model(_lively("ctrnn", syn, 8, layers=2), syn[:2]).layers[0]
    export_c(qm, tmp_path / "m", copy_runtime=False, measure_code=False)
    counts = recording_counts(qm, syn[-1])[:200]
    ref = _crt.py_steps(qm, counts)
    mcu.write_bench_input(tmp_path / "bench_input.h", counts)
    fw = mcu.build_firmware(tmp_path / "m", tmp_path, dsp=True, cpu="cortex-m4")
    run = mcu.run_qemu(fw.elf, machine="mps2-an386", timeout=60)
    assert run.rc == 0, run.stdout
    lines = [ln for ln in run.stdout.splitlines() if ln and ln != "done" and not ln.startswith("sizeof")]
    assert np.array_equal(np.array([list(map(int, ln.split())) for ln in lines]), ref)


def test_train_passes_the_data_rate_to_continuous_time_families(tmp_path):
    from gaitedge.config import Config
    from gaitedge.training.train import train

    cfg = Config()
    cfg.data.train = "synthetic?n=3&trials=1"
    cfg.data.other_foot = False
    cfg.data.rate_hz = 50.0
    cfg.model.name = "ctrnn"
    cfg.model.hidden = 8
    cfg.train.epochs = 1
    cfg.train.steps_per_epoch = 1
    cfg.train.batch_size = 2
    cfg.train.window_s = 1.0
    cfg.train.threads = 1
    tm, _, _ = train(cfg, out_dir=tmp_path / "run", progress=False, log=lambda *_: None)
    assert tm.model.hparams()["rate_hz"] == 50.0
