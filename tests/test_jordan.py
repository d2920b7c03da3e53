"""Jordan network: equations, streaming, ONNX, the integer twin and the C kernel."""

from __future__ import annotations

import math
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from gaitedge.cli import main
from gaitedge.data.spec import load_spec
from gaitedge.errors import ModelError
from gaitedge.models import build_model
from gaitedge.quant import Runner, quantize_model
from gaitedge.quant.evaluate import recording_counts
from gaitedge.quant.jordan import jordan_step
from gaitedge.quant.model import QLayer

sys.path.insert(0, str(Path(__file__).resolve().parent))
from discrete_tools import ARM_GCC, GCC, arm_compile, c_vs_twin, onnx_any_t, step_vs_sequence, tm_for  # noqa: E402


@pytest.fixture(scope="module")
def syn():
    return load_spec("synthetic?n=3&trials=1", other_foot=True)


def _lively(model, seed=0, gain=2.0):
    torch.manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn_like(p) * gain / math.sqrt(p.shape[-1]))
    return model.eval()


def test_hand_computed_two_steps():
    """1 input, 1 hidden unit, 2 classes: the fed-back value is sigmoid(logits), not h."""
    m = build_model("jordan", 1, 2, hidden=1)
    with torch.no_grad():
        m.inp.weight.fill_(0.5)
        m.inp.bias.fill_(0.1)
        m.fb.weight.copy_(torch.tensor([[1.0, -2.0]]))
        m.head.weight.copy_(torch.tensor([[2.0], [-1.0]]))
        m.head.bias.copy_(torch.tensor([0.0, 0.5]))
    x = torch.tensor([[[1.0], [-1.0]]])
    logits, (y,) = m.eval()(x)
    # t = 0: y_-1 = 0
    h0 = math.tanh(0.5 * 1.0 + 0.1)
    z0 = [2.0 * h0, -h0 + 0.5]
    y0 = [1 / (1 + math.exp(-z)) for z in z0]
    # t = 1: h = tanh(0.5 * -1 + 0.1 + 1 * y0[0] - 2 * y0[1])
    h1 = math.tanh(-0.5 + 0.1 + y0[0] - 2.0 * y0[1])
    z1 = [2.0 * h1, -h1 + 0.5]
    assert logits[0, 0].tolist() == pytest.approx(z0, abs=1e-6)
    assert logits[0, 1].tolist() == pytest.approx(z1, abs=1e-6)
    assert y[0, 0].tolist() == pytest.approx([1 / (1 + math.exp(-z)) for z in z1], abs=1e-6)
    assert y.shape == (1, 1, 2)


def test_step_equals_sequence_and_state_carries():
    m = _lively(build_model("jordan", 5, 3, hidden=7))
    assert step_vs_sequence(m) < 1e-6
    x = torch.randn(2, 20, 5)
    with torch.no_grad():
        full, _ = m(x)
        a, st = m(x[:, :9])
        b, _ = m(x[:, 9:], st)
    assert torch.allclose(torch.cat([a, b], 1), full, atol=1e-6)
    # the streaming state is the fed-back output y = sigmoid(last logits), not h
    assert st[0].shape == (1, 2, 3) and torch.allclose(st[0][0], torch.sigmoid(a[:, -1]), atol=1e-7)


def test_bad_options():
    with pytest.raises(ModelError, match="layers must be 1"):
        build_model("jordan", 4, 2, hidden=8, layers=2)
    with pytest.raises(ModelError, match="hidden"):
        build_model("jordan", 4, 2, hidden=0)
    with pytest.raises(ModelError, match="bad option"):
        build_model("jordan", 4, 2, hidden=8, feedback="softmax")


def test_onnx_any_length(syn, tmp_path):
    tm = tm_for(_lively(build_model("jordan", 12, len(syn[0].classes), hidden=10)), syn)
    e_seq, e_step = onnx_any_t(tm, tmp_path, t=37)
    assert e_seq <= 1e-4 and e_step <= 1e-4


def _qlayer(rng, hp=8, n_in=6, k=3):
    """A random jordan QLayer (bounded so accumulators stay in int32)."""
    ky = k + k % 2
    ko = -(-ky // 4) * 4
    w = np.zeros((2 * hp + ko, hp + n_in + ky), np.int64)
    w[:hp, hp : hp + n_in] = rng.integers(-127, 128, (hp, n_in))
    w[hp : 2 * hp, hp + n_in : hp + n_in + k] = rng.integers(-127, 128, (hp, k))
    w[2 * hp : 2 * hp + k, :hp] = rng.integers(-127, 128, (k, hp))
    mult = rng.integers(2**20, 2**23, 2 * hp + ko)
    # biases with the +32768 offset of the table input folded in (QUANTIZATION.md section 4)
    off = np.floor(32768 * 2.0**32 / mult + 0.5).astype(np.int64)
    b = off + rng.integers(-(2**20), 2**20, 2 * hp + ko)
    b[hp : 2 * hp] = 0
    return QLayer("jordan", n_in, hp, w, b, mult, 0, aux=ky)


def test_twin_follows_its_equations():
    """The integer step reproduces the float equations in the layer's own scaling."""
    rng = np.random.default_rng(0)
    lay = _qlayer(rng)
    hp, n_in = lay.hidden, lay.in_size
    v = rng.integers(-32768, 32768, (5, hp + n_in))
    y = rng.integers(0, 32768, (5, lay.aux))
    y[:, 3:] = 0
    h, y2 = jordan_step(lay, v, y)
    acc = (lay.bias[:hp] + v[:, hp:] @ lay.weight[:hp, hp : hp + n_in].T
           + y @ lay.weight[hp : 2 * hp, hp + n_in :].T)
    pre = (acc * lay.mult[:hp] / 2.0**32 - 32768) / 4096.0  # u -> real
    assert np.abs(h / 32768.0 - np.tanh(np.clip(pre, -8, 8))).max() < 2e-3
    acc_o = lay.bias[2 * hp : 2 * hp + 3] + h @ lay.weight[2 * hp : 2 * hp + 3, :hp].T
    z = (acc_o * lay.mult[2 * hp : 2 * hp + 3] / 2.0**32 - 32768) / 4096.0
    assert np.abs(y2[:, :3] / 32768.0 - 1 / (1 + np.exp(-np.clip(z, -8, 8)))).max() < 2e-3
    # the old hidden state is not an input
    v2 = v.copy()
    v2[:, :hp] = 0
    assert np.array_equal(jordan_step(lay, v2, y)[0], h)


@pytest.fixture(scope="module")
def trained(syn, tmp_path_factory):
    """A tiny Jordan net trained through the command line (gaitedge train --model jordan)."""
    torch.set_num_threads(1)
    out = tmp_path_factory.mktemp("jordan") / "run"
    rc = main(["train", "--data", "synthetic?n=3&trials=1", "--model", "jordan", "--out", str(out), "--epochs", "2",
               "--no-progress", "--set", "model.hidden=10", "--set", "train.steps_per_epoch=8",
               "--set", "train.batch_size=8", "--set", "train.window_s=2.0", "--set", "train.threads=1",
               "--set", "data.other_foot=true", "--set", "train.lr=0.01"])
    assert rc in (0, None)
    from gaitedge.checkpoint import load_checkpoint

    return load_checkpoint(out)


def test_quantized_follows_float(syn, trained):
    tm = trained
    qm = quantize_model(tm, syn[:2])
    lay = qm.layers[0]
    k = len(tm.classes)
    assert lay.kind == "jordan" and lay.aux == k + k % 2
    rec = syn[-1]
    counts = recording_counts(qm, rec)
    out = Runner(qm).run(counts)
    q_logits = out["logits"][0] / 2.0**qm.logit_frac
    with torch.no_grad():
        xf = tm.normalizer(tm.preprocess(rec).signals).astype(np.float32)
        f_logits = tm.model(torch.from_numpy(xf)[None])[0][0].numpy()
    agree = (q_logits.argmax(1) == f_logits.argmax(1)).mean()
    assert agree > 0.97, agree
    assert np.abs(q_logits - f_logits).mean() < 0.1


@pytest.mark.skipif(GCC is None, reason="no host C compiler")
def test_c_bit_exact_with_twin(syn, tmp_path):
    """Lively random weights (saturating pre-activations included), 3 classes, 12 inputs."""
    tm = tm_for(_lively(build_model("jordan", 12, len(syn[0].classes), hidden=10), gain=3.0), syn, delay=2)
    qm = quantize_model(tm, syn[:2])
    counts = recording_counts(qm, syn[-1])
    ref = c_vs_twin(qm, counts, tmp_path)
    assert len(set(ref[:, 0].tolist())) > 1


@pytest.mark.skipif(GCC is None, reason="no host C compiler")
def test_c_bit_exact_trained_wide(syn, trained, tmp_path):
    """The trained model, and a 70-unit layer (more than one GE_BLOCK) with 5 inputs."""
    c_vs_twin(quantize_model(trained, syn[:2]), recording_counts(quantize_model(trained, syn[:2]), syn[-1])[:600],
              tmp_path / "a")
    recs = [r.select_channels(r.channels[:5]) for r in syn]
    tm = tm_for(_lively(build_model("jordan", 5, len(syn[0].classes), hidden=70), seed=1), recs)
    qm = quantize_model(tm, recs[:2])
    c_vs_twin(qm, recording_counts(qm, recs[-1])[:500], tmp_path / "b")


@pytest.mark.skipif(ARM_GCC is None, reason="arm-none-eabi-gcc not installed")
def test_arm_build_warning_free(tmp_path):
    arm_compile(["ge_jordan.c", "ge_layers.c"], tmp_path)
