"""Peephole LSTM: equations, streaming, ONNX, the integer twin and the C kernel."""

from __future__ import annotations

import math
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from gaitedge.data.spec import load_spec
from gaitedge.errors import ModelError
from gaitedge.models import build_model
from gaitedge.quant import Runner, quantize_model
from gaitedge.quant.evaluate import recording_counts
from gaitedge.quant.lstm import lstm_step
from gaitedge.quant.model import QLayer
from gaitedge.quant.peephole import peephole_step

sys.path.insert(0, str(Path(__file__).resolve().parent))
from discrete_tools import ARM_GCC, GCC, arm_compile, c_vs_twin, onnx_any_t, step_vs_sequence, tm_for  # noqa: E402


@pytest.fixture(scope="module")
def syn():
    return load_spec("synthetic?n=3&trials=1", other_foot=True)


def _lively(model, seed=0, gain=1.5, peep=1.0):
    torch.manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            scale = peep if name.endswith("peep") else gain / math.sqrt(p.shape[-1])
            p.copy_(torch.randn_like(p) * scale)
    return model.eval()


def test_hand_computed_step():
    """1 input, 1 unit: i and f see c(t-1), o sees c(t)."""
    m = build_model("peephole", 1, 2, hidden=1)
    cell = m.cells[0]
    with torch.no_grad():
        cell.ih.weight.copy_(torch.tensor([[0.5], [-0.3], [1.0], [0.2]]))
        cell.ih.bias.copy_(torch.tensor([0.1, 0.2, -0.1, 0.0]))
        cell.hh.weight.copy_(torch.tensor([[0.4], [0.1], [-0.5], [0.3]]))
        cell.peep.copy_(torch.tensor([[0.7], [-0.6], [1.5]]))
    sig = lambda v: 1 / (1 + math.exp(-v))  # noqa: E731
    x, h, c = 0.8, -0.2, 0.5
    i = sig(0.5 * x + 0.1 + 0.4 * h + 0.7 * c)
    f = sig(-0.3 * x + 0.2 + 0.1 * h - 0.6 * c)
    g = math.tanh(1.0 * x - 0.1 - 0.5 * h)
    c1 = f * c + i * g
    o = sig(0.2 * x + 0.0 + 0.3 * h + 1.5 * c1)
    h1 = o * math.tanh(c1)
    _, (hn, cn) = m.eval().step(torch.tensor([[x]]), (torch.tensor([[[h]]]), torch.tensor([[[c]]])))
    assert float(hn.detach()) == pytest.approx(h1, abs=1e-6) and float(cn.detach()) == pytest.approx(c1, abs=1e-6)


def test_step_equals_sequence_two_layers():
    m = _lively(build_model("peephole", 5, 3, hidden=6, layers=2))
    assert step_vs_sequence(m) < 1e-5


def test_zero_peepholes_is_torch_lstm():
    """With p = 0 the cell is torch's LSTM (same weights, single bias)."""
    m = _lively(build_model("peephole", 4, 2, hidden=5), peep=0.0)
    ref = torch.nn.LSTM(4, 5, batch_first=True)
    with torch.no_grad():
        ref.weight_ih_l0.copy_(m.cells[0].ih.weight)
        ref.weight_hh_l0.copy_(m.cells[0].hh.weight)
        ref.bias_ih_l0.copy_(m.cells[0].ih.bias)
        ref.bias_hh_l0.zero_()
    x = torch.randn(2, 15, 4)
    with torch.no_grad():
        y, _ = ref(x)
        got, _ = m(x)
        assert torch.allclose(got, m.head(y), atol=1e-6)


def test_bad_options():
    with pytest.raises(ModelError, match="layers"):
        build_model("peephole", 4, 2, hidden=8, layers=0)
    with pytest.raises(ModelError, match="bad option"):
        build_model("peephole", 4, 2, hidden=8, connection="dense")


def test_onnx_any_length(syn, tmp_path):
    tm = tm_for(_lively(build_model("peephole", 12, len(syn[0].classes), hidden=8, layers=2)), syn)
    e_seq, e_step = onnx_any_t(tm, tmp_path, t=41)
    assert e_seq <= 1e-4 and e_step <= 1e-4


def _qlayer(rng, hp=8, n_in=6, cf=10, peep=None):
    w = rng.integers(-127, 128, (4 * hp, hp + n_in))
    mult = rng.integers(2**20, 2**22, 4 * hp)
    off = np.floor(32768 * 2.0**32 / mult + 0.5).astype(np.int64)
    b = off + rng.integers(-(2**20), 2**20, 4 * hp)
    p = rng.integers(-32767, 32768, 3 * hp) if peep is None else peep
    return QLayer("peephole", n_in, hp, w, b, mult, cf, aux=hp, extra=p)


def test_twin_zero_peepholes_is_lstm_twin():
    rng = np.random.default_rng(1)
    lay = _qlayer(rng, peep=np.zeros(24, np.int64))
    v = rng.integers(-32768, 32768, (6, 14))
    c = rng.integers(-20000, 20000, (6, 8))
    lstm = QLayer("lstm", lay.in_size, lay.hidden, lay.weight, lay.bias, lay.mult, lay.cell_frac)
    for a, b in zip(peephole_step(lay, v, c), lstm_step(lstm, v, c)):
        assert np.array_equal(a, b)


def test_twin_peephole_terms():
    """The peephole term is p*c in Q3.12: gates follow the float cell within table error."""
    rng = np.random.default_rng(2)
    lay = _qlayer(rng)
    hp, cf = lay.hidden, lay.cell_frac
    v = rng.integers(-32768, 32768, (6, hp + lay.in_size))
    c = rng.integers(-2**14, 2**14, (6, hp))
    h2, c2 = peephole_step(lay, v, c)
    pre = ((v @ lay.weight.T + lay.bias) * lay.mult / 2.0**32 - 32768) / 4096.0
    p = lay.extra.reshape(3, hp) / 4096.0
    cr = c / 2.0**cf
    sig = lambda a: 1 / (1 + np.exp(-np.clip(a, -8, 8)))  # noqa: E731
    i = sig(pre[:, :hp] + p[0] * cr)
    f = sig(pre[:, hp : 2 * hp] + p[1] * cr)
    g = np.tanh(np.clip(pre[:, 2 * hp : 3 * hp], -8, 8))
    cn = f * cr + i * g
    assert np.abs(c2 / 2.0**cf - cn).max() < 4e-3
    o = sig(pre[:, 3 * hp :] + p[2] * (c2 / 2.0**cf))
    assert np.abs(h2 / 32768.0 - o * np.tanh(np.clip(c2 / 2.0**cf, -8, 8))).max() < 2e-3


def test_quantized_follows_float(syn):
    tm = tm_for(_lively(build_model("peephole", 12, len(syn[0].classes), hidden=12, layers=2), gain=1.2,
                        peep=0.5), syn)
    qm = quantize_model(tm, syn[:2])
    assert [lay.kind for lay in qm.layers] == ["peephole", "peephole"]
    assert qm.report["peephole_saturated"] == 0
    rec = syn[-1]
    out = Runner(qm).run(recording_counts(qm, rec))
    q_logits = out["logits"][0] / 2.0**qm.logit_frac
    with torch.no_grad():
        xf = tm.normalizer(tm.preprocess(rec).signals).astype(np.float32)
        f_logits = tm.model(torch.from_numpy(xf)[None])[0][0].numpy()
    assert (q_logits.argmax(1) == f_logits.argmax(1)).mean() > 0.97
    assert np.abs(q_logits - f_logits).mean() < 0.1


@pytest.mark.skipif(GCC is None, reason="no host C compiler")
def test_c_bit_exact_with_twin(syn, tmp_path):
    tm = tm_for(_lively(build_model("peephole", 12, len(syn[0].classes), hidden=10, layers=2), gain=2.5,
                        peep=2.0), syn, delay=1, lowpass=10.0)
    qm = quantize_model(tm, syn[:2])
    ref = c_vs_twin(qm, recording_counts(qm, syn[-1]), tmp_path / "a")
    assert len(set(ref[:, 0].tolist())) > 1
    # a layer wider than one block (GE_BLOCK = 64), strong peepholes, 6 inputs
    recs = [r.select_channels(r.channels[:6]) for r in syn]
    tm = tm_for(_lively(build_model("peephole", 6, len(syn[0].classes), hidden=70), seed=3, peep=4.0), recs)
    qm = quantize_model(tm, recs[:2])
    c_vs_twin(qm, recording_counts(qm, recs[-1])[:500], tmp_path / "b")


@pytest.mark.skipif(ARM_GCC is None, reason="arm-none-eabi-gcc not installed")
def test_arm_build_warning_free(tmp_path):
    arm_compile(["ge_peephole.c"], tmp_path)
