"""RNN encoder-decoder: the torch family, forecasting, ONNX window graph, streaming refusal, window twin and C."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch

from gaitedge.cli import main
from gaitedge.data.spec import load_spec
from gaitedge.errors import ModelError
from gaitedge.export import export_onnx
from gaitedge.models import build_model
from gaitedge.quant import quantize_model
from gaitedge.quant.evaluate import evaluate_quant, recording_counts

sys.path.insert(0, str(Path(__file__).resolve().parent))
from windowtools import GCC, build_harness, c_window, make_window_tm, py_window  # noqa: E402


@pytest.fixture(scope="module")
def syn():
    return load_spec("synthetic?n=3&trials=1", other_foot=True)


@pytest.mark.parametrize("encoder", ["gru", "lstm"])
@pytest.mark.parametrize("context", ["init", "input", "both"])
def test_context_rules_by_hand(encoder, context):
    """Encoder final h -> context; decoder GRU from it (init) and/or reading it at every step (input)."""
    torch.manual_seed(0)
    m = build_model("encdec", 5, 3, hidden=6, encoder=encoder, context=context).eval()
    x = torch.randn(2, 13, 5)
    with torch.no_grad():
        _, hn = m.encoder(x)
        c = (hn[0] if encoder == "lstm" else hn)[-1]
        inp = torch.cat([x, c[:, None, :].expand(2, 13, 6)], -1) if context != "init" else x
        h0 = c[None] if context != "input" else torch.zeros(1, 2, 6)
        d, _ = m.decoder(inp, h0)
        got, state = m(x)
    torch.testing.assert_close(got, m.head(d), atol=1e-6, rtol=1e-6)
    assert m.decoder.input_size == 5 + (6 if context != "init" else 0)
    assert len(state) == (2 if encoder == "lstm" else 1) and torch.equal(state[0][-1], c)


def test_options_and_non_causal():
    m = build_model("encdec", 4, 3, hidden=8, layers=2).eval()
    assert m.causal is False and m.hparams()["context"] == "init"
    x = torch.randn(1, 20, 4)
    x2 = x.clone()
    x2[:, -1] += 3.0
    with torch.no_grad():
        assert not torch.allclose(m(x)[0][:, 0], m(x2)[0][:, 0])  # the first output sees the last sample
    with pytest.raises(ModelError, match="whole-window"):
        m.step(x[:, 0], m.init_state(1))
    with pytest.raises(ModelError, match="target=phase\\+forecast"):
        build_model("encdec", 4, 3, target="forecast")
    for bad in (dict(encoder="rnn"), dict(context="late"), dict(horizon=0), dict(forecast_weight=-1.0)):
        with pytest.raises(ModelError, match="encdec: option"):
            build_model("encdec", 4, 3, **bad)
    with pytest.raises(ModelError, match="without a forecast"):
        m.forecast(x)


def test_forecast_mode_loss_by_hand():
    torch.manual_seed(2)
    m = build_model("encdec", 3, 2, hidden=5, target="phase+forecast", horizon=4, forecast_weight=0.5)
    x = torch.randn(2, 12, 3)
    logits, _ = m(x)
    loss = m.auxiliary_loss(x, logits)
    with torch.no_grad():
        pred = m.forecast(x[:, :8], 4)
        # the forecast is autoregressive: its first step reads the last observed sample
        ctx, _ = m.encode(x[:, :8])
        y, _ = m.fdecoder(x[:, 7:8], ctx[None])
        torch.testing.assert_close(pred[:, :1], m.fhead(y))
        want = 0.5 * ((pred - x[:, 8:]) ** 2).mean(-1).sum()
    torch.testing.assert_close(loss.detach(), want)
    loss.backward()
    assert m.fdecoder.weight_hh_l0.grad is not None and m.encoder.weight_hh_l0.grad.abs().sum() > 0
    assert m.forecast(x, 7).shape == (2, 7, 3)


def test_trains_on_tiny_synthetic_data_and_beats_chance():
    """Windows of synthetic gait (3 subjects), a few dozen Adam steps; tested on a held-out subject."""
    from gaitedge.data.preprocess import Normalizer

    torch.manual_seed(0)
    torch.set_num_threads(1)
    recs = load_spec("synthetic?n=4&trials=1")
    train, test = recs[:3], recs[3]
    norm = Normalizer.fit([r.signals for r in train])
    xs = [torch.from_numpy(norm(r.signals)) for r in train]
    ys = [torch.from_numpy(r.labels) for r in train]
    m = build_model("encdec", xs[0].shape[1], len(train[0].classes), hidden=12, context="both",
                    target="phase+forecast", horizon=5)
    opt = torch.optim.Adam(m.parameters(), lr=0.02)
    rng = np.random.default_rng(0)
    win = 120
    for _ in range(50):
        idx = rng.integers(0, 3, 8)
        starts = [int(rng.integers(0, len(xs[i]) - win)) for i in idx]
        xb = torch.stack([xs[i][s : s + win] for i, s in zip(idx, starts)])
        yb = torch.stack([ys[i][s : s + win] for i, s in zip(idx, starts)])
        logits, _ = m(xb)
        loss = torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), yb.reshape(-1),
                                                 ignore_index=-1, reduction="sum")
        loss = (loss + m.auxiliary_loss(xb, logits)) / yb.numel()
        opt.zero_grad()
        loss.backward()
        opt.step()
    m.eval()
    x = torch.from_numpy(norm(test.signals))
    ok = test.labels >= 0
    with torch.no_grad():
        pred = np.concatenate([m(x[s : s + win][None])[0][0].argmax(-1).numpy() for s in range(0, len(x), win)])
    acc = float((pred[ok] == test.labels[ok]).mean())
    majority = float(np.bincount(test.labels[ok]).max() / ok.sum())
    assert acc > majority + 0.15, (acc, majority)


def test_onnx_window_graph_and_refusal(syn, tmp_path, capsys):
    import onnxruntime as ort

    tm = make_window_tm(syn, "encdec", hidden=8, encoder="lstm", context="both", layers=2)
    paths = export_onnx(tm, tmp_path)
    assert paths.step is None
    mp = onnx.load(paths.sequence)
    assert {p.key: p.value for p in mp.metadata_props}["causal"] == "false"
    assert not {n.op_type for n in mp.graph.node} & {"Shape", "Expand", "ConstantOfShape"}
    sess = ort.InferenceSession(str(paths.sequence), providers=["CPUExecutionProvider"])
    x = np.random.default_rng(1).standard_normal((2, 41, tm.model.input_size)).astype(np.float32)
    zeros = [s.numpy() for s in tm.model.init_state(2)]
    got = sess.run(None, {"x": x, "h_in": zeros[0], "c_in": zeros[1]})[0]
    with torch.no_grad():
        ref = tm.model(torch.from_numpy(x))[0].numpy()
    assert np.abs(got - ref).max() <= 1e-4
    rc = main(["stream", "--replay", "synthetic?n=1&trials=1", "--model", str(tmp_path), "--quiet"])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and "encdec is a whole-window" in err[0] and "window API" in err[0]


def test_quantized_window_metrics_close_to_float(syn):
    from gaitedge.training.evaluate import evaluate_model

    tm = make_window_tm(syn, "encdec", hidden=12, context="input", lowpass=10.0, delay=1)
    qm = quantize_model(tm, syn[:2])
    fm, im = evaluate_model(tm, syn[2:]), evaluate_quant(qm, syn[2:], 50.0)
    assert abs(fm["accuracy"] - im["accuracy"]) < 0.02


@pytest.fixture(scope="module")
def ipol(ipol_root):
    train = load_spec(f"ipol:{ipol_root}?subjects=2", other_foot=True)[:3]
    test = load_spec(f"ipol:{ipol_root}?subjects=12-15", other_foot=True)
    return train, test


@pytest.mark.skipif(GCC is None, reason="no host C compiler")
@pytest.mark.parametrize("opts", [dict(encoder="gru", context="init", hidden=16, delay=3),
                                  dict(encoder="lstm", context="both", layers=2, hidden=12, lowpass=12.0)])
def test_c_equals_twin_on_ipol_windows(ipol, tmp_path, opts):
    train, test = ipol
    qm = quantize_model(make_window_tm(train, "encdec", **opts), train)
    exe = build_harness(qm, tmp_path, window=200)
    assert subprocess.run([str(exe), "selftest"], capture_output=True, text=True).stdout.strip() == "ok"
    n = 0
    for rec in test[1::9]:
        c = recording_counts(qm, rec)
        for start in (0, len(c) // 3):
            win = c[start : start + 200]
            assert np.array_equal(c_window(exe, win), py_window(qm, win)), rec.name
            n += len(win)
    assert n > 1500
