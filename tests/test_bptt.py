"""The numpy BPTT reference against autograd, and gradient-norm clipping in training."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from torch import nn

from gaitedge.bptt import ElmanParams, elman_bptt, elman_forward, gradient_norm
from gaitedge.config import Config
from gaitedge.errors import ModelError
from gaitedge.models import build_model
from gaitedge.training.train import train


def _torch_grads(model, x: np.ndarray, y: np.ndarray, h0: np.ndarray | None = None):
    """Autograd gradients of the summed cross-entropy of a float64 elman model."""
    model = model.double()
    model.zero_grad()
    xt = torch.from_numpy(x)
    st = None if h0 is None else (torch.from_numpy(h0)[None].requires_grad_(True),)
    logits, _ = model(xt, st)
    loss = nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), torch.from_numpy(y).reshape(-1),
                                       ignore_index=-1, reduction="sum")
    loss.backward()
    r = model.rnn
    g = {"W_xh": r.weight_ih_l0.grad, "W_hh": r.weight_hh_l0.grad, "b_h": r.bias_ih_l0.grad,
         "W_hy": model.head.weight.grad, "b_y": model.head.bias.grad}
    assert torch.allclose(r.bias_ih_l0.grad, r.bias_hh_l0.grad, rtol=0, atol=1e-12)  # b_h = b_ih + b_hh
    gh0 = None if st is None else st[0].grad[0].numpy()
    return float(loss.detach()), {k: v.numpy() for k, v in g.items()}, gh0


@pytest.mark.parametrize("seed,b,t", [(0, 1, 1), (1, 3, 17), (2, 2, 60)])
def test_bptt_equals_autograd(seed, b, t):
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    model = build_model("elman", 4, 3, hidden=6)
    with torch.no_grad():
        model.rnn.weight_hh_l0.mul_(3.0)  # lively dynamics: saturating and sign-changing units
    x = rng.standard_normal((b, t, 4))
    y = rng.integers(-1, 3, (b, t))  # -1: unlabelled steps
    h0 = rng.uniform(-0.9, 0.9, (b, 6))
    loss_ref, g_ref, gh0_ref = _torch_grads(model, x, y, h0)
    res = elman_bptt(ElmanParams.from_model(model), x, y, h0)
    assert res.loss == pytest.approx(loss_ref, rel=1e-12, abs=1e-12)
    for k, v in g_ref.items():
        assert res.grads[k].shape == v.shape
        assert np.abs(res.grads[k] - v).max() <= 1e-10, k
    assert np.abs(res.grad_h0 - gh0_ref).max() <= 1e-10
    with torch.no_grad():
        ref_logits = model(torch.from_numpy(x), (torch.from_numpy(h0)[None],))[0].numpy()
    assert np.abs(res.logits - ref_logits).max() <= 1e-12


def test_hand_computed_one_unit():
    """H = 1, K = 2, T = 2: the recursion written out by hand."""
    p = ElmanParams(W_xh=[[0.5]], W_hh=[[0.8]], b_h=[0.1], W_hy=[[1.0], [-1.0]], b_y=[0.0, 0.2])
    x = np.array([[1.0], [-2.0]])
    k = np.array([0, 1])
    h1 = math.tanh(0.5 + 0.1)
    h2 = math.tanh(-1.0 + 0.8 * h1 + 0.1)

    def soft(h):
        e = [math.exp(h), math.exp(-h + 0.2)]
        return [v / sum(e) for v in e]

    p1, p2 = soft(h1), soft(h2)
    loss = -math.log(p1[0]) - math.log(p2[1])
    dy1, dy2 = [p1[0] - 1, p1[1]], [p2[0], p2[1] - 1]
    dh2 = (dy2[0] - dy2[1]) * (1 - h2**2)
    dh1 = (dy1[0] - dy1[1] + 0.8 * dh2) * (1 - h1**2)
    res = elman_bptt(p, x, k)
    assert res.loss == pytest.approx(loss, abs=1e-14)
    assert res.grads["W_hh"][0, 0] == pytest.approx(dh2 * h1, abs=1e-14)  # h(-1) = 0
    assert res.grads["W_xh"][0, 0] == pytest.approx(dh1 * 1.0 + dh2 * -2.0, abs=1e-14)
    assert res.grads["b_h"][0] == pytest.approx(dh1 + dh2, abs=1e-14)
    assert res.grads["W_hy"][:, 0] == pytest.approx([dy1[0] * h1 + dy2[0] * h2, dy1[1] * h1 + dy2[1] * h2])
    assert res.delta_norm == pytest.approx([abs(dh1), abs(dh2)])


def test_vanishing_and_exploding_backward_signal():
    """Loss only at the last step: |δ_h(t)| shrinks going back with small W_hh, grows with
    large W_hh in the linear regime (tiny inputs keep tanh' close to 1)."""
    rng = np.random.default_rng(0)
    h = 8
    q, _ = np.linalg.qr(rng.standard_normal((h, h)))
    x = rng.standard_normal((1, 40, 2)) * 1e-12
    y = np.full((1, 40), -1)
    y[0, -1] = 1
    for gain, vanishes in ((0.5, True), (1.5, False)):
        p = ElmanParams(rng.standard_normal((h, 2)), gain * q, np.zeros(h), rng.standard_normal((2, h)), np.zeros(2))
        d = elman_bptt(p, x, y).delta_norm
        ratio = d[0] / d[-1]
        assert (ratio < 1e-8) if vanishes else (ratio > 1e5), (gain, ratio)
        assert ratio == pytest.approx(gain**39, rel=1e-3)


def test_bad_input():
    p = ElmanParams(np.zeros((3, 2)), np.zeros((3, 3)), np.zeros(3), np.zeros((2, 3)), np.zeros(2))
    with pytest.raises(ModelError, match="x must be"):
        elman_forward(p, np.zeros((1, 5, 4)))
    with pytest.raises(ModelError, match="beyond the 2 classes"):
        elman_bptt(p, np.zeros((5, 2)), np.full(5, 2))
    with pytest.raises(ModelError, match="do not fit"):
        ElmanParams(np.zeros((3, 2)), np.zeros((2, 2)), np.zeros(3), np.zeros((2, 3)), np.zeros(2))
    with pytest.raises(ModelError, match="one unidirectional tanh layer"):
        ElmanParams.from_model(build_model("elman", 2, 2, hidden=4, layers=2))


# ---------------------------------------------------------------------------- clipping


def _tiny_cfg(clip: float) -> Config:
    cfg = Config()
    cfg.data.train = "synthetic?n=3&trials=1"
    cfg.data.other_foot = True
    cfg.model.name = "elman"
    cfg.model.hidden = 8
    cfg.train.epochs = 2
    cfg.train.steps_per_epoch = 5
    cfg.train.batch_size = 8
    cfg.train.window_s = 2.0
    cfg.train.threads = 1
    cfg.train.patience = 10
    cfg.train.grad_clip = clip
    return cfg


def test_grad_clip_bounds_the_norm_and_is_logged(tmp_path, monkeypatch):
    calls: list[tuple[float, float, float]] = []
    real = nn.utils.clip_grad_norm_

    def spy(params, max_norm, *a, **k):
        params = list(params)
        pre = real(params, max_norm, *a, **k)
        post = gradient_norm({str(i): q.grad.double().numpy() for i, q in enumerate(params) if q.grad is not None})
        calls.append((float(pre), post, float(max_norm)))
        return pre

    monkeypatch.setattr(nn.utils, "clip_grad_norm_", spy)
    _, _, run = train(_tiny_cfg(0.05), out_dir=tmp_path / "clip", progress=False, force=True,
                      log=lambda *a, **k: None)
    assert len(calls) == 10 and all(m == 0.05 for _, _, m in calls)
    assert all(post <= 0.05 * (1 + 1e-5) for _, post, _ in calls)
    assert any(pre > 0.05 for pre, _, _ in calls), "the clip should have been active"
    hist = json.loads((run / "metrics.json").read_text())["history"]
    for e, row in enumerate(hist):
        pres = [pre for pre, _, _ in calls[5 * e : 5 * e + 5]]
        assert row["grad_norm"] == pytest.approx(np.mean(pres)) and row["grad_norm_max"] == pytest.approx(max(pres))
    assert (run / "curves.png").is_file()

    # grad_clip = 0: no clipping, the norm is still logged
    calls.clear()
    _, _, run = train(_tiny_cfg(0.0), out_dir=tmp_path / "free", progress=False, force=True,
                      log=lambda *a, **k: None)
    assert calls == []
    hist = json.loads((run / "metrics.json").read_text())["history"]
    assert all(row["grad_norm_max"] >= row["grad_norm"] > 0 for row in hist)
