"""Bidirectional LSTM / GRU: the torch family, ONNX window graph, streaming refusal, window twin and C."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch

from gaitedge.cli import main
from gaitedge.config import Config
from gaitedge.data.spec import load_spec
from gaitedge.errors import ModelError
from gaitedge.export import export_onnx
from gaitedge.models import build_model
from gaitedge.quant import Runner, quantize_model
from gaitedge.quant.evaluate import recording_counts
from gaitedge.quant.window import window_run

sys.path.insert(0, str(Path(__file__).resolve().parent))
from windowtools import ARM_GCC, GCC, QEMU, arm_objects, build_harness, c_window, make_window_tm, py_window  # noqa: E402


@pytest.fixture(scope="module")
def syn():
    return load_spec("synthetic?n=3&trials=1", other_foot=True)


# ------------------------------------------------------------------------------ torch


@pytest.mark.parametrize("family,cell", [("bilstm", torch.nn.LSTM), ("bigru", torch.nn.GRU)])
@pytest.mark.parametrize("merge", ["concat", "sum", "mean"])
def test_directions_and_merge_by_hand(family, cell, merge):
    """One level equals a forward cell over x and the same-weight backward cell over reversed x, merged."""
    torch.manual_seed(0)
    m = build_model(family, 5, 3, hidden=6, merge=merge).eval()
    x = torch.randn(2, 17, 5)
    fwd, bwd = cell(5, 6, batch_first=True), cell(5, 6, batch_first=True)
    rnn = m.levels[0]
    with torch.no_grad():
        for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
            getattr(fwd, f"{name}_l0").copy_(getattr(rnn, f"{name}_l0"))
            getattr(bwd, f"{name}_l0").copy_(getattr(rnn, f"{name}_l0_reverse"))
        hf, _ = fwd(x)
        hb = bwd(x.flip(1))[0].flip(1)
        y = {"concat": torch.cat([hf, hb], -1), "sum": hf + hb, "mean": (hf + hb) / 2}[merge]
        want = m.head(y)
        got, state = m(x)
    torch.testing.assert_close(got, want, atol=1e-6, rtol=1e-6)
    assert m.head.in_features == (12 if merge == "concat" else 6)
    assert len(state) == (2 if family == "bilstm" else 1) and state[0].shape == (2, 2, 6)


def test_non_causal_options_and_no_step():
    torch.manual_seed(1)
    m = build_model("bigru", 4, 3, hidden=8, layers=2, merge="sum").eval()
    assert m.causal is False and m.hparams() == {"hidden": 8, "layers": 2, "dropout": 0.0, "merge": "sum"}
    x = torch.randn(1, 30, 4)
    x2 = x.clone()
    x2[:, 25:] += 3.0  # the future changes the past's logits
    with torch.no_grad():
        assert not torch.allclose(m(x)[0][:, :20], m(x2)[0][:, :20])
    with pytest.raises(ModelError, match="whole-window"):
        m.step(x[:, 0], m.init_state(1))
    with pytest.raises(ModelError, match="merge='max'"):
        build_model("bilstm", 4, 3, merge="max")
    with pytest.raises(ModelError, match="bad option"):
        build_model("bilstm", 4, 3, wings=2)


def test_trains_on_windows_and_predicts_whole_recordings(tmp_path):
    from gaitedge.training.evaluate import evaluate_model
    from gaitedge.training.train import train

    cfg = Config()
    cfg.data.train = "synthetic?n=3&trials=1"
    cfg.data.val_subjects = ["syn3"]
    cfg.model.name = "bigru"
    cfg.model.hidden = 8
    cfg.model.options = {"merge": "mean"}
    cfg.train.epochs = 2
    cfg.train.steps_per_epoch = 4
    cfg.train.batch_size = 8
    cfg.train.window_s = 2.0
    cfg.train.threads = 1
    tm, metrics, run = train(cfg, out_dir=tmp_path / "run", progress=False, force=True, log=lambda *a, **k: None)
    recs = load_spec(cfg.data.train, other_foot=cfg.data.other_foot)
    prep, probs, labels, _ = tm.predict(recs[0])
    assert probs.shape == (len(prep), len(tm.classes)) and len(labels) == len(prep)
    m = evaluate_model(tm, recs[-1:])
    assert 0.0 <= m["macro_f1"] <= 1.0
    assert (run / "model.pt").is_file()


# ------------------------------------------------------------------------------ ONNX and refusal


@pytest.fixture(scope="module")
def onnx_dir(syn, tmp_path_factory):
    tm = make_window_tm(syn, "bilstm", hidden=8, layers=2, merge="concat")
    out = tmp_path_factory.mktemp("onnx")
    paths = export_onnx(tm, out)
    return tm, out, paths


def test_onnx_window_graph_any_length(onnx_dir):
    import onnxruntime as ort

    tm, out, paths = onnx_dir
    assert paths.step is None and not (out / "model_step.onnx").exists()
    mp = onnx.load(paths.sequence)
    meta = {p.key: p.value for p in mp.metadata_props}
    assert meta["causal"] == "false" and meta["graph"] == "sequence" and meta["family"] == "bilstm"
    sess = ort.InferenceSession(str(paths.sequence), providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(3)
    for b, t in ((1, 5), (3, 53)):  # traced at T=8
        x = rng.standard_normal((b, t, tm.model.input_size)).astype(np.float32)
        zeros = [s.numpy() for s in tm.model.init_state(b)]
        got = sess.run(None, {"x": x, "h_in": zeros[0], "c_in": zeros[1]})[0]
        with torch.no_grad():
            ref = tm.model(torch.from_numpy(x))[0].numpy()
        assert np.abs(got - ref).max() <= 1e-4


def test_streaming_runtimes_refuse(onnx_dir, syn, tmp_path, capsys):
    from gaitedge.runtime import OnnxGaitClassifier
    from gaitedge.stream.backends import TorchBackend

    tm, out, paths = onnx_dir
    for p in (out, paths.sequence):
        with pytest.raises(ModelError, match="whole-window .* use the window API"):
            OnnxGaitClassifier(p)
    with pytest.raises(ModelError, match="window API"):
        TorchBackend(tm)
    tm.save(out / "model.pt")
    rc = main(["stream", "--replay", "synthetic?n=1&trials=1", "--model", str(out), "--speed", "0", "--quiet"])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and err[0].startswith("gaitedge: error:") and "window API" in err[0]
    qm = quantize_model(tm, syn[:1])
    with pytest.raises(ModelError, match="window API"):
        Runner(qm)
    from gaitedge.export.c_export import export_c_stream

    with pytest.raises(ModelError, match="window API"):
        export_c_stream(qm, tmp_path / "c")


def test_export_c_cli_goes_to_the_window_api(syn, tmp_path, capsys):
    tm = make_window_tm(syn, "bigru", hidden=8, merge="sum")
    run = tmp_path / "run"
    run.mkdir()
    tm.save(run / "model.pt")
    quantize_model(tm, syn[:2]).save(run / "quant.npz")
    rc = main(["export", "c", str(run), "--out", str(tmp_path / "fw"), "--no-runtime", "--window", "128"])
    text = capsys.readouterr().out
    assert rc == 0 and "whole-window" in text and "window API" in text
    h = (tmp_path / "fw" / "model_data.h").read_text()
    assert "ge_window_model" in h and "GE_MODEL_DATA_WINDOW 128u" in h


# ------------------------------------------------------------------------------ integer twin and C


def test_twin_batches_like_single_windows_and_tracks_float(syn):
    tm = make_window_tm(syn, "bilstm", hidden=12, merge="mean", lowpass=8.0, delay=2)
    qm = quantize_model(tm, syn[:2])
    a = recording_counts(qm, syn[2])[:160]
    b = recording_counts(qm, syn[1])[:90]
    xb = np.zeros((2, 160, a.shape[1]), np.int64)
    xb[0], xb[1, :90] = a, b
    both = window_run(qm, xb, np.array([160, 90]))
    one_a, one_b = window_run(qm, a), window_run(qm, b)
    assert np.array_equal(both["logits"][0], one_a["logits"][0])
    assert np.array_equal(both["logits"][1, :90], one_b["logits"][0])
    assert (one_a["label"][0, :2] == -1).all() and (one_a["label"][0, 2:] >= 0).all()
    with torch.no_grad():
        xn = tm.normalizer(tm.preprocess(syn[2]).signals)[:160]
        fl = tm.model(torch.from_numpy(xn)[None])[0][0].numpy()
    assert np.abs(one_a["logits"][0] / 2.0**qm.logit_frac - fl).max() < 0.1


@pytest.fixture(scope="module")
def ipol(ipol_root):
    train = load_spec(f"ipol:{ipol_root}?subjects=1", other_foot=True)[:3]
    test = load_spec(f"ipol:{ipol_root}?subjects=12-15", other_foot=True)
    return train, test


#: (family, options): concat over two levels, sum with a hidden size above one block (GE_BLOCK = 64)
IPOL_CASES = [("bilstm", dict(merge="concat", layers=2, hidden=12, lowpass=12.0, delay=5)),
              ("bigru", dict(merge="sum", hidden=68, delay=2))]


@pytest.mark.skipif(GCC is None, reason="no host C compiler")
@pytest.mark.parametrize("family,opts", IPOL_CASES)
def test_c_equals_twin_on_ipol_windows(ipol, tmp_path, family, opts):
    train, test = ipol
    tm = make_window_tm(train, family, **opts)
    qm = quantize_model(tm, train)
    exe = build_harness(qm, tmp_path, window=256)
    assert subprocess.run([str(exe), "selftest"], capture_output=True, text=True).stdout.strip() == "ok"
    n = 0
    for rec in test[::9]:
        c = recording_counts(qm, rec)
        for start in (0, len(c) // 2):
            win = c[start : start + 256]
            assert np.array_equal(c_window(exe, win), py_window(qm, win)), rec.name
            n += len(win)
    short = recording_counts(qm, test[0])[:3]
    assert np.array_equal(c_window(exe, short), py_window(qm, short))
    assert n > 2000


@pytest.mark.skipif(ARM_GCC is None, reason="arm-none-eabi-gcc not installed")
@pytest.mark.parametrize("cpu,dsp", [("cortex-m4", True), ("cortex-m4", False), ("cortex-m0plus", False)])
def test_arm_build_is_warning_free(syn, tmp_path, cpu, dsp):
    qm = quantize_model(make_window_tm(syn, "bigru", hidden=8, merge="concat"), syn[:1])
    for obj in arm_objects(qm, tmp_path, cpu, dsp):
        syms = subprocess.run(["arm-none-eabi-nm", "-u", str(obj)], capture_output=True, text=True).stdout
        assert not any(s in syms for s in ("__aeabi_f", "__aeabi_d", "malloc")), (obj, syms)


@pytest.mark.skipif(ARM_GCC is None or QEMU is None, reason="arm-none-eabi-gcc / qemu-system-arm not installed")
def test_qemu_cortex_m4_window_equals_twin(syn, tmp_path):
    from gaitedge.export.c_window import export_c_window
    from gaitedge.firmware import mcu

    qm = quantize_model(make_window_tm(syn, "bilstm", hidden=12, merge="concat", delay=1), syn[:2])
    counts = recording_counts(qm, syn[2])[:120]
    export_c_window(qm, tmp_path / "m", window=len(counts), copy_runtime=False, measure_code=False)
    (tmp_path / "fw").mkdir()
    mcu.write_bench_input(tmp_path / "fw" / "bench_input.h", counts)
    fw = mcu.build_window_firmware(tmp_path / "m", tmp_path / "fw", dsp=True)
    run = mcu.run_qemu(fw.elf, timeout=60)
    assert run.rc == 0, run.stdout
    got = np.array([list(map(int, ln.split())) for ln in run.stdout.splitlines() if ln and ln[0] in "-0123456789"])
    assert np.array_equal(got, py_window(qm, counts))


def test_architecture_is_typed_and_read_from_old_files(tmp_path):
    """quant.npz stores the architecture; files without it (and layers saying ``family``) read back the same."""
    import json

    from gaitedge.export.c_export import export_c
    from gaitedge.quant import QuantModel

    recs = load_spec("synthetic?n=2&trials=1")
    qm = quantize_model(make_window_tm(recs, "bilstm", hidden=8), recs)
    assert qm.architecture == "window" and qm.report["window"]
    qm.save(tmp_path / "quant.npz")
    z = dict(np.load(tmp_path / "quant.npz"))
    meta = json.loads(bytes(z["meta"]).decode())
    assert meta["architecture"] == "window" and all("kind" in lm for lm in meta["layers"])
    del meta["architecture"]
    meta["layers"] = [{("family" if k == "kind" else k): v for k, v in lm.items()} for lm in meta["layers"]]
    z["meta"] = np.frombuffer(json.dumps(meta).encode(), np.uint8)
    np.savez(tmp_path / "old.npz", **z)
    old = QuantModel.load(tmp_path / "old.npz")
    assert old.architecture == "window" and [lay.kind for lay in old.layers] == [lay.kind for lay in qm.layers]
    assert old.weights_hash() == qm.weights_hash()
    with pytest.raises(ModelError, match="whole-window"):
        Runner(qm)
    with pytest.raises(ModelError, match="flat layout only"):
        export_c(qm, tmp_path / "lib", layout="library", measure_code=False)
    res = export_c(qm, tmp_path / "flat", copy_runtime=False, measure_code=False, window=32)
    assert "ge_window_model" in (tmp_path / "flat" / "model_data.h").read_text() and res.report["window"] == 32
