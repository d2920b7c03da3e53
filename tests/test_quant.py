"""Fixed-point spec and the numpy integer twins of the C kernels (gaitedge.quant)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import signal
from torch import nn

from gaitedge import resources
from gaitedge.checkpoint import TrainedModel
from gaitedge.data.preprocess import Normalizer, causal_filter, design_lowpass
from gaitedge.data.spec import load_spec
from gaitedge.errors import ModelError
from gaitedge.events import debounce_labels, labels_to_events
from gaitedge.models import build_model
from gaitedge.quant import QuantModel, Runner, quantize_model, saturation_summary, spec
from gaitedge.quant.argmax import argmax
from gaitedge.quant.dense import dense_step
from gaitedge.quant.events import EventState, events_step
from gaitedge.quant.evaluate import evaluate_quant, recording_counts
from gaitedge.quant.model import QLayer, QPreproc
from gaitedge.quant.preproc import FilterState, preproc_step



def make_tm(recs, family="gru", hidden=16, layers=1, lowpass=0.0, order=2, delay=0, min_run=3, seed=0,
            gain=2.0) -> TrainedModel:
    """An untrained model with lively dynamics (scaled recurrent weights) and real preprocessing."""
    torch.manual_seed(seed)
    r0 = recs[0]
    model = build_model(family, len(r0.channels), len(r0.classes), hidden=hidden, layers=layers)
    with torch.no_grad():
        for name, p in getattr(model, "rnn", nn.Identity()).named_parameters():
            if name.startswith("weight"):
                p.mul_(gain)
        model.head.weight.mul_(4.0)
    model.eval()
    tm = TrainedModel(model=model, classes=r0.classes, channels=list(r0.channels), units=list(r0.units),
                      rate_hz=r0.rate_hz, normalizer=Normalizer(np.zeros(1), np.ones(1)), lowpass_hz=lowpass,
                      filter_order=order, min_run=min_run, tolerance_ms=50.0, delay=delay)
    tm.normalizer = Normalizer.fit([tm.preprocess(r).signals for r in recs])
    return tm


@pytest.fixture(scope="module")
def syn():
    return load_spec("synthetic?n=3&trials=1", other_foot=True)


# ---------------------------------------------------------------------------- primitives


@settings(max_examples=300, deadline=None)
@given(st.integers(-(2**31), 2**31 - 1), st.integers(-(2**31), 2**31 - 1))
def test_mulhr_is_round_half_up_of_exact_product(a, m):
    exact = a * m  # python int, exact
    assert int(spec.mulhr(a, m)) == (exact + 2**31) // 2**32


def test_saturation_helpers():
    assert spec.sat16([-40000, -32768, 0, 32767, 40000]).tolist() == [-32768, -32768, 0, 32767, 32767]
    assert spec.usat16([-5, 0, 65535, 70000]).tolist() == [0, 0, 65535, 65535]
    assert spec.rshift_round(np.array([-3, -2, -1, 1, 2, 3]), 1).tolist() == [-1, -1, 0, 1, 1, 2]


def test_lut_matches_float_functions():
    u = np.arange(65536)
    x = (u - spec.U_OFFSET) / 4096.0
    sig = spec.sigmoid_q(u) / 32768.0
    tan = spec.tanh_q(u) / 32768.0
    assert np.max(np.abs(sig - 1 / (1 + np.exp(-x)))) * 32768 < 3.0
    assert np.max(np.abs(tan - np.tanh(x))) * 32768 < 14.0
    # monotone and within int16
    assert np.all(np.diff(spec.sigmoid_q(u)) >= 0) and np.all(np.diff(spec.tanh_q(u)) >= 0)
    assert spec.tanh_q(u).max() <= 32767 and spec.tanh_q(u).min() >= -32767
    assert spec.tanh_q(32768) == 0 and spec.sigmoid_q(32768) == 16384


def test_lut_base_slope_form_equals_knot_form():
    u = np.arange(65536)
    tab = spec.lut_table()
    i = u >> 8
    assert np.array_equal(tab[i, 0] + ((u * tab[i, 1]) >> 8), spec.sigmoid_q(u))
    assert np.array_equal(tab[i, 2] + ((u * tab[i, 3]) >> 8), spec.tanh_q(u))
    # the DSP form: U = u << 8, SMLAWB
    big = u << 8
    assert np.array_equal(tab[i, 0] + ((big * tab[i, 1]) >> 16), spec.sigmoid_q(u))


def test_committed_lut_source_is_generated_from_spec():
    src = (resources.runtime_dir() / "src" / "ge_lut.c").read_text()
    assert src == spec.generate_lut_c()


# ---------------------------------------------------------------------------- kernels


def _layer(family, rng, hp=8, n_in=6, cell_frac=11):
    gates = {"lstm": 4, "gru": 4, "elman": 1}[family]
    rows = gates * hp
    w = rng.integers(-127, 128, size=(rows, hp + n_in))
    if family == "gru":
        w[2 * hp : 3 * hp, hp:] = 0  # nh: h only
        w[3 * hp :, :hp] = 0  # nx: input only
    scale = rng.uniform(0.005, 0.03, size=rows)
    b_real = rng.normal(0, 0.5, size=rows)
    mult = spec.quant_multiplier(scale, 29)
    offset = np.full(rows, float(spec.U_OFFSET))
    if family == "gru":
        offset[2 * hp : 3 * hp] = 0
    bias = np.floor((b_real * 4096 + offset) * 2.0**32 / mult + 0.5).astype(np.int64)
    return QLayer(family, n_in, hp, w, bias, mult, cell_frac, scale), scale, b_real


def _float_gates(lay, scale, b_real, v):
    """Float pre-activations of the rows (what the integer kernels approximate)."""
    w = lay.weight * scale[:, None] / 32768.0
    return v / 1.0 @ w.T + b_real


@pytest.mark.parametrize("family", ["lstm", "gru", "elman"])
def test_recurrent_kernels_follow_float_math(family):
    from gaitedge.quant.elman import elman_step
    from gaitedge.quant.gru import gru_step
    from gaitedge.quant.lstm import lstm_step

    rng = np.random.default_rng(1)
    lay, scale, b = _layer(family, rng)
    hp = lay.hidden
    v = rng.integers(-20000, 20000, size=(16, hp + lay.in_size))
    pre = _float_gates(lay, scale, b, v)
    h = v[:, :hp] / 32768.0
    sig = lambda x: 1 / (1 + np.exp(-np.clip(x, -8, 8)))  # noqa: E731
    tanh = lambda x: np.tanh(np.clip(x, -8, 8))  # noqa: E731
    if family == "lstm":
        c = rng.integers(-3000, 3000, size=(16, hp))
        hq, cq = lstm_step(lay, v, c)
        i, f, g, o = (pre[:, k * hp : (k + 1) * hp] for k in range(4))
        cf = sig(f) * c / 2.0**lay.cell_frac + sig(i) * tanh(g)
        hf = sig(o) * tanh(cf)
        assert np.max(np.abs(cq / 2.0**lay.cell_frac - cf)) < 2e-3
    elif family == "gru":
        hq = gru_step(lay, v)
        r, z = sig(pre[:, :hp]), sig(pre[:, hp : 2 * hp])
        n = tanh(pre[:, 3 * hp :] + r * np.clip(pre[:, 2 * hp : 3 * hp], -8, 8))
        hf = (1 - z) * n + z * h
    else:
        hq = elman_step(lay, v)
        hf = tanh(pre)
    assert np.max(np.abs(hq / 32768.0 - hf)) < 2e-3
    assert hq.min() >= -32768 and hq.max() <= 32767


def test_dense_and_argmax():
    w = np.array([[127, 0], [0, 127], [64, 64]])
    b = np.array([0, 0, 0])
    m = spec.quant_multiplier(np.full(3, 1 / 127), 32 - 15 + 8)  # logits Q8
    h = np.array([[16384, 0], [0, 16384], [16384, 16384]])
    lg = dense_step(w, b, m, h)
    assert np.allclose(lg / 256.0, [[0.5, 0, 0.252], [0, 0.5, 0.252], [0.5, 0.5, 0.504]], atol=0.01)
    assert argmax(np.array([[1, 5, 5], [7, 7, 7], [0, -1, 3]])).tolist() == [1, 0, 2]


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(0, 2), min_size=1, max_size=120), st.integers(0, 6))
def test_streaming_detector_equals_offline_debounce(labels, min_run):
    labels = np.asarray(labels)
    stt = EventState(1)
    conf, evs = [], {"toe_off": [], "heel_strike": []}
    for t, lab in enumerate(labels):
        c, ev, evs_ = events_step(stt, [lab], t, min_run, 2)
        conf.append(int(c[0]))
        if ev[0] == spec.EVENT_TOE_OFF:
            evs["toe_off"].append(int(evs_[0]))
        elif ev[0] == spec.EVENT_HEEL_STRIKE:
            evs["heel_strike"].append(int(evs_[0]))
    ref = labels_to_events(debounce_labels(labels, min_run), swing=2)
    assert evs["toe_off"] == ref["toe_off"].tolist()
    assert evs["heel_strike"] == ref["heel_strike"].tolist()
    # the confirmed label at the end is the debounced label of the last confirmed run
    deb = debounce_labels(labels, min_run)
    assert conf[-1] in (deb[-1], conf[-1])


# ---------------------------------------------------------------------------- preprocessing


def _pre(lsb, mean, std, k, sos=None):
    nm = np.floor(lsb / (std * k) * 2.0**24 + 0.5).astype(np.int64)
    nb = np.floor(-mean / (std * k) * 2.0**24 + 0.5).astype(np.int64)
    sq = zq = None
    if sos is not None:
        coefs = np.stack([sos[:, 0], sos[:, 1], sos[:, 2], sos[:, 4], sos[:, 5]], 1)
        sq = np.floor(coefs * 2.0**spec.COEF_FRAC + 0.5).astype(np.int64)
        zq = np.floor(signal.sosfilt_zi(sos) * 2.0**spec.COEF_FRAC + 0.5).astype(np.int64)
    n = len(lsb)
    return QPreproc(n, n + n % 2, nm, nb, sq, zq, lsb, k)


def test_preproc_normalizes_counts():
    rng = np.random.default_rng(0)
    lsb, mean, std, k = np.array([0.005, 0.001, 0.01]), np.array([9.8, 0.1, -2]), np.array([3, 1.5, 2]), np.array([8.0, 10, 6])
    pp = _pre(lsb, mean, std, k)
    counts = rng.integers(-20000, 20000, size=(50, 3))
    x = preproc_step(pp, counts, None)
    assert x.shape == (50, 4) and np.all(x[:, 3] == 0)
    ref = (counts * lsb - mean) / std / k
    # error: 1 output LSB plus the resolution of the Q24 gain (|counts| * 0.5 / 2^24 + offset rounding)
    tol = (np.abs(counts) + 1) * 0.5 / 2**24 + 1.0 / 32768
    assert np.all(np.abs(x[:, :3] / 32768.0 - np.clip(ref, -1, 1)) <= tol)


@pytest.mark.parametrize("order", [2, 4])
def test_preproc_filter_tracks_float_filter(order):
    rng = np.random.default_rng(order)
    sos = design_lowpass(8.0, 100.0, order)
    lsb, mean, std, k = np.array([0.004, 0.002]), np.array([1.0, -0.5]), np.array([2.0, 1.0]), np.array([9.0, 7.0])
    pp = _pre(lsb, mean, std, k, sos)
    counts = np.cumsum(rng.integers(-300, 300, size=(400, 2)), axis=0) + 500
    fs = FilterState(1, 2, len(sos))
    x = np.stack([preproc_step(pp, counts[t][None], fs)[0] for t in range(len(counts))])
    ref = (causal_filter(counts * lsb, sos) - mean) / std / k
    assert np.max(np.abs(x[:, :2] / 32768.0 - np.clip(ref, -1, 1))) < 3e-4
    # steady state: a constant input stays constant from the first sample
    fs = FilterState(1, 2, len(sos))
    const = np.stack([preproc_step(pp, np.array([[1000, -400]]), fs)[0] for _ in range(30)])
    assert np.all(np.abs(const - const[0]) <= 1)


# ---------------------------------------------------------------------------- quantizer


@pytest.mark.parametrize("family,layers", [("lstm", 1), ("gru", 1), ("elman", 1), ("lstm", 2)])
def test_quantized_model_follows_float_model(syn, family, layers):
    tm = make_tm(syn, family, layers=layers, lowpass=10.0 if family == "lstm" else 0.0)
    qm = quantize_model(tm, syn)
    rec = syn[-1]
    counts = recording_counts(qm, rec)
    out = Runner(qm).run(counts)
    prep = tm.preprocess(rec)
    phys = counts * qm.pre.lsb  # what the integer pipeline saw
    with torch.no_grad():
        fl, _ = tm.model(torch.from_numpy(tm.normalizer(causal_filter(phys, tm.sos))[None]))
    fl = fl[0].numpy()
    qlog = out["logits"][0] / 2.0**qm.logit_frac
    assert prep.signals.shape[0] == counts.shape[0]
    assert np.mean(np.abs(qlog - fl)) < 0.05 * np.mean(np.abs(fl)) + 0.02
    assert np.mean(out["raw_label"][0] == fl.argmax(1)) > 0.97


def test_quantized_save_load_roundtrip(syn, tmp_path):
    tm = make_tm(syn, "lstm", lowpass=12.0, order=4, delay=3)
    qm = quantize_model(tm, syn)
    qm.save(tmp_path / "quant.npz")
    back = QuantModel.load(tmp_path / "quant.npz")
    assert back.weights_hash() == qm.weights_hash() and back.architecture == qm.architecture == "streaming"
    c = recording_counts(qm, syn[0])[:200]
    assert np.array_equal(Runner(back).run(c)["logits"], Runner(qm).run(c)["logits"])
    assert not list(tmp_path.glob("*.tmp*"))
    with pytest.raises(ModelError, match="quantize"):
        QuantModel.load(tmp_path / "missing.npz")


class _ConvHead(nn.Module):
    family = "conv_head"

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv1d(6, 8, 3)
        self.head = nn.Linear(8, 3)


def test_unsupported_layers_are_refused_by_name(syn):
    from gaitedge.quant.quantizer import check_supported

    with pytest.raises(ModelError, match=r"layer 'conv' \(Conv1d\) has no C kernel"):
        check_supported(_ConvHead())
    tm = make_tm(syn, "elman")
    tm.model.rnn = nn.RNN(12, 16, nonlinearity="relu", batch_first=True)
    with pytest.raises(ModelError, match="layer 'rnn'.*relu"):
        quantize_model(tm, syn)
    tm.model.rnn = nn.GRU(12, 16, batch_first=True, bidirectional=True)
    with pytest.raises(ModelError, match="layer 'rnn'.*bidirectional"):
        quantize_model(tm, syn)


def test_saturating_weights_and_biases_are_reported(syn):
    tm = make_tm(syn, "gru")
    with torch.no_grad():
        tm.model.rnn.weight_hh_l0[0, 0] = 1000.0  # beyond int8 x the largest row scale
        tm.model.rnn.bias_ih_l0[1] = 1e7
    qm = quantize_model(tm, syn)
    lines = "\n".join(saturation_summary(qm))
    assert "weights saturated: rnn.l0 1" in lines
    assert "biases saturated: rnn.l0 1" in lines


def test_evaluate_quant_close_to_float(syn):
    from gaitedge.training.evaluate import evaluate_model

    tm = make_tm(syn, "gru", min_run=4, delay=2)
    qm = quantize_model(tm, syn)
    fm = evaluate_model(tm, syn)
    im = evaluate_quant(qm, syn, tm.tolerance_ms)
    assert abs(fm["accuracy"] - im["accuracy"]) < 0.02


# ---------------------------------------------------------------------------- QAT


def test_fake_quant_model_tracks_integer_pipeline(syn):
    from gaitedge.quant.qat import FakeQuantModel

    tm = make_tm(syn, "lstm")
    qm = quantize_model(tm, syn)
    counts = recording_counts(qm, syn[0])[:300]
    il = Runner(qm).run(counts)["logits"][0] / 2.0**qm.logit_frac
    xn = tm.normalizer((counts * qm.pre.lsb).astype(np.float32))
    with torch.no_grad():
        fq = FakeQuantModel(tm, qm)(torch.from_numpy(xn)[None])[0].numpy()
        fl, _ = tm.model(torch.from_numpy(xn)[None])
    fl = fl[0].numpy()
    assert np.abs(il - fq).mean() < 0.3 * np.abs(il - fl).mean() + 1e-3


def test_finetune_runs_and_keeps_best(syn):
    from gaitedge.quant.qat import finetune

    torch.set_num_threads(1)
    tm = make_tm(syn, "gru", hidden=8)
    qm = quantize_model(tm, syn[:2])
    h0 = tm.weights_hash()
    tm2, qm2, hist = finetune(tm, qm, syn[:2], syn[2:], epochs=1, steps_per_epoch=2, batch_size=4, window_s=1.0,
                              log=lambda *a: None)
    assert [h["epoch"] for h in hist] == [0, 1]
    best = max(hist, key=lambda h: h["score"])
    assert tm2.info["qat_best_epoch"] == best["epoch"]
    assert (tm2.weights_hash() != h0) == (best["epoch"] == 1)
    assert qm2.float_weights_sha256 == tm2.weights_hash()
    assert np.allclose(qm2.pre.input_range, qm.pre.input_range)


def test_finetune_is_refused_for_families_without_fake_quantization(syn, tmp_path):
    from gaitedge.errors import ConfigError
    from gaitedge.quant.workflow import quantize_run

    tm = make_tm(syn, "ctrnn", hidden=8)
    tm.config = {"data": {"train": "synthetic?n=3&trials=1", "other_foot": True}}
    tm.info = {"train_subjects": ["syn1", "syn2"], "val_subjects": ["syn3"]}
    tm.save(tmp_path / "model.pt")
    with pytest.raises(ConfigError, match="ctrnn is quantized post-training only"):
        quantize_run(tmp_path, finetune_epochs=1, log=lambda *_: None)
    assert not (tmp_path.with_name(tmp_path.name + "-qat")).exists()


def test_default_input_range_clips_rare_peaks_and_keeps_recurrent_precision(syn):
    """One spike in the calibration data sets the maximum-based range (percentile 100) of its
    channel; the default 99.9th percentile ignores it, so the first layer's rows (whose input
    columns are scaled by the range) keep a finer int8 scale for their recurrent columns."""
    import copy

    spiky = [copy.deepcopy(r) for r in syn]
    spiky[0].signals[100, 3] += 60.0  # one gyro sample, 60 rad/s above the signal
    tm = make_tm(spiky, "elman", hidden=16)
    q_max = quantize_model(tm, spiky, input_percentile=100)
    q_def = quantize_model(tm, spiky)
    k_max, k_def = np.asarray(q_max.report["input_range"]), np.asarray(q_def.report["input_range"])
    assert k_def[3] < 0.2 * k_max[3]  # the spike sets the maximum, not the percentile
    assert np.allclose(np.delete(k_def, 3), np.delete(k_max, 3), rtol=0.5)
    assert q_def.report["input_clip_frac"][3] > 0 and q_max.report["input_clip_frac"][3] == 0
    hp = q_def.layers[0].hidden

    def rec_err(qm):  # mean |dequantized - float| recurrent weight of the first layer
        lay = qm.layers[0]
        w_int = np.asarray(lay.weight)[:hp, :hp].astype(np.float64)
        scale = np.asarray(lay.mult, np.float64)[:hp, None] / 2.0**29  # M_j = s_j 2^29
        w_fl = tm.model.rnn.weight_hh_l0.detach().numpy().astype(np.float64)
        return np.mean(np.abs(w_int * scale - w_fl))

    assert rec_err(q_def) < 0.5 * rec_err(q_max)
    with pytest.raises(ModelError, match=r"input percentile must be in \(0, 100\]"):
        quantize_model(tm, spiky, input_percentile=0)
