"""Deep GRU (standard / residual / dense connections): torch definition, streaming, ONNX,
and the exact mapping onto the GRU kernel (bit-exact C vs twin)."""

from __future__ import annotations

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

sys.path.insert(0, str(Path(__file__).resolve().parent))
from discrete_tools import GCC, c_vs_twin, onnx_any_t, step_vs_sequence, tm_for  # noqa: E402

CONNECTIONS = ["standard", "residual", "dense"]


@pytest.fixture(scope="module")
def syn():
    return load_spec("synthetic?n=3&trials=1", other_foot=True)


def _lively(model, seed=0, gain=1.5):
    torch.manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.startswith("grus") and "weight" in name:
                p.mul_(gain)
        model.head.weight.mul_(3.0)
    return model.eval()


def test_connections_by_hand():
    """Layer inputs and head input of each connection, against explicit torch GRUs."""
    torch.manual_seed(0)
    x = torch.randn(2, 11, 4)
    for conn in CONNECTIONS:
        m = build_model("deep_gru", 4, 3, hidden=5, layers=3, connection=conn).eval()
        g = m.grus
        with torch.no_grad():
            h1, _ = g[0](x)
            if conn == "standard":
                h2, _ = g[1](h1)
                h3, _ = g[2](h2)
                feat = h3
            elif conn == "residual":
                h2, _ = g[1](h1)
                h3, _ = g[2](h1 + h2)
                feat = h1 + h2 + h3
            else:
                h2, _ = g[1](torch.cat([h1, x], -1))
                h3, _ = g[2](torch.cat([h2, h1, x], -1))
                feat = torch.cat([h3, h2, h1], -1)
            ref = m.head(feat)
            got, (hn,) = m(x)
        assert torch.allclose(got, ref, atol=1e-6), conn
        assert torch.allclose(hn[2], h3[:, -1], atol=1e-6)
    assert [gr.input_size for gr in m.grus] == [4, 9, 14] and m.head.in_features == 15


@pytest.mark.parametrize("conn", CONNECTIONS)
def test_step_equals_sequence(conn):
    m = _lively(build_model("deep_gru", 5, 3, hidden=6, layers=3, connection=conn))
    assert step_vs_sequence(m) < 1e-5


def test_bad_options():
    with pytest.raises(ModelError, match="unknown connection 'skip'"):
        build_model("deep_gru", 4, 2, hidden=8, connection="skip")
    with pytest.raises(ModelError, match="layers"):
        build_model("deep_gru", 4, 2, hidden=8, layers=0)


@pytest.mark.parametrize("conn", CONNECTIONS)
def test_onnx_any_length(syn, tmp_path, conn):
    tm = tm_for(_lively(build_model("deep_gru", 12, len(syn[0].classes), hidden=8, layers=3, connection=conn)), syn)
    e_seq, e_step = onnx_any_t(tm, tmp_path, t=33)
    assert e_seq <= 1e-4 and e_step <= 1e-4


@pytest.mark.parametrize("conn", CONNECTIONS)
def test_quantized_maps_onto_gru_kernel(syn, conn):
    """Only ``gru`` layers; widths as the connection needs; integer logits follow the float model."""
    tm = tm_for(_lively(build_model("deep_gru", 12, len(syn[0].classes), hidden=10, layers=3, connection=conn)),
                syn)
    qm = quantize_model(tm, syn[:2])
    hp = 12
    assert [lay.kind for lay in qm.layers] == ["gru"] * 3
    widths = {"standard": [12, hp, hp], "residual": [12, hp, 2 * hp], "dense": [12, hp + 12, 2 * hp + 12]}
    assert [lay.in_size for lay in qm.layers] == widths[conn]
    assert qm.head_cols == (hp if conn == "standard" else 3 * hp)
    if conn == "residual":  # the input weights repeat for every layer below
        w = qm.layers[2].weight
        assert np.array_equal(w[:, hp : 2 * hp][: 2 * hp], w[:, 2 * hp :][: 2 * hp])
    rec = syn[-1]
    out = Runner(qm).run(recording_counts(qm, rec))
    q = out["logits"][0] / 2.0**qm.logit_frac
    with torch.no_grad():
        xf = tm.normalizer(tm.preprocess(rec).signals).astype(np.float32)
        f = tm.model(torch.from_numpy(xf)[None])[0][0].numpy()
    assert (q.argmax(1) == f.argmax(1)).mean() > 0.97, conn
    assert np.abs(q - f).mean() < 0.1


@pytest.mark.skipif(GCC is None, reason="no host C compiler")
@pytest.mark.parametrize("conn", CONNECTIONS)
def test_c_bit_exact_with_twin(syn, tmp_path, conn):
    """The generic C runtime (ge_gru.c, wider in_size, head over all layers) equals the twin."""
    recs = [r.select_channels(r.channels[:5]) for r in syn]
    tm = tm_for(_lively(build_model("deep_gru", 5, len(syn[0].classes), hidden=18, layers=3, connection=conn),
                        gain=2.0), recs, delay=1)
    qm = quantize_model(tm, recs[:2])
    ref = c_vs_twin(qm, recording_counts(qm, recs[-1])[:800], tmp_path)
    assert len(set(ref[:, 0].tolist())) > 1


def test_too_wide_rows_are_refused(syn):
    tm = tm_for(build_model("deep_gru", 12, len(syn[0].classes), hidden=100, layers=6, connection="dense"), syn)
    with pytest.raises(ModelError, match="exceed the C runtime"):
        quantize_model(tm, syn[:1])
