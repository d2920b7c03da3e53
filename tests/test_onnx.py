"""ONNX export (sequence and step graphs) and the streaming ONNX Runtime classifier."""

from __future__ import annotations

import json
from dataclasses import replace
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from torch import nn

import gaitedge
from gaitedge.checkpoint import TrainedModel, load_checkpoint
from gaitedge.config import Config
from gaitedge.data.preprocess import Normalizer, causal_filter
from gaitedge.data.spec import load_spec
from gaitedge.errors import DataError, ModelError
from gaitedge.events import debounce_labels, labels_to_events
from gaitedge.export import export_onnx, onnx_export
from gaitedge.models.base import GaitModel
from gaitedge.runtime import OnnxGaitClassifier, onnx_runtime
from gaitedge.training.train import train

TOL = 1e-5
META_KEYS = {
    "format", "format_version", "graph", "gaitedge_version", "family", "hparams", "classes", "channels", "units",
    "rate_hz", "norm_mean", "norm_std", "lowpass_hz", "filter_order", "filter_sos", "delay", "min_run",
    "weights_sha256", "inputs", "outputs", "state_inputs", "state_outputs", "state_shapes", "frame",
}
#: name -> (family, layers, low-pass Hz, filter order, output delay ms)
VARIANTS = {
    "lstm": ("lstm", 1, 15.0, 2, 30.0),
    "gru": ("gru", 1, 0.0, 2, 0.0),
    "elman": ("elman", 1, 20.0, 2, 10.0),
    "lstm2": ("lstm", 2, 12.0, 4, 20.0),
}


def _session(path: Path) -> ort.InferenceSession:
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    so.inter_op_num_threads = 1
    return ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, tuple[TrainedModel, Path]]:
    """Tiny models trained on synthetic data (12 channels with the other foot), exported."""
    torch.set_num_threads(1)
    out = {}
    for name, (family, layers, lowpass, order, delay_ms) in VARIANTS.items():
        cfg = Config()
        cfg.data.train = "synthetic?n=4&trials=1"
        cfg.data.other_foot = True
        cfg.data.lowpass_hz = lowpass
        cfg.data.filter_order = order
        cfg.model.name = family
        cfg.model.hidden = 16
        cfg.model.layers = layers
        cfg.train.epochs = 2
        cfg.train.steps_per_epoch = 20
        cfg.train.batch_size = 16
        cfg.train.window_s = 2.0
        cfg.train.lr = 0.01
        cfg.train.threads = 1
        cfg.events.delay_ms = delay_ms
        run_dir = tmp_path_factory.mktemp("onnx") / name
        tm, _, run_dir = train(cfg, out_dir=run_dir, progress=False, log=lambda *a: None)
        export_onnx(tm, run_dir)
        out[name] = (load_checkpoint(run_dir), run_dir)
    return out


@pytest.fixture(scope="module")
def test_recs():
    """Held-out synthetic subjects (the models saw syn1-syn4)."""
    return load_spec("synthetic?n=6&trials=1&subjects=5-6", other_foot=True)


@pytest.fixture(scope="module")
def ipol_recs(ipol_root):
    recs = load_spec(f"ipol:{ipol_root}?subjects=12-15", other_foot=True)
    picks = [recs[0], recs[len(recs) // 2], recs[-1]]
    assert len({r.subject for r in picks}) >= 2
    return picks


def _seq_ort(path: Path, xn: np.ndarray) -> tuple[np.ndarray, list[np.ndarray]]:
    """Run the sequence graph from a zero state on ``xn [B, T, C]``."""
    s = _session(path)
    meta = s.get_modelmeta().custom_metadata_map
    shapes = json.loads(meta["state_shapes"])
    feeds = {"x": xn}
    for name, shape in zip(json.loads(meta["state_inputs"]), shapes):
        shape[1] = xn.shape[0]
        feeds[name] = np.zeros(shape, np.float32)
    out = s.run(None, feeds)
    return out[0], out[1:]


def _offline(tm: TrainedModel, raw: np.ndarray):
    """What TrainedModel.predict computes for raw signals at the model rate."""
    probs = tm.predict_signals(causal_filter(raw, tm.sos))
    labels = debounce_labels(probs.argmax(axis=1), tm.min_run)
    return labels, probs, labels_to_events(labels, tm.classes.index("swing"))


# -- the graphs ---------------------------------------------------------------------------


@pytest.mark.parametrize("name", list(VARIANTS))
def test_graphs_pass_checker_without_shape_ops(runs, name):
    tm, run_dir = runs[name]
    n_state = 2 if tm.model.family == "lstm" else 1
    for fname, x_rank in (("model.onnx", 3), ("model_step.onnx", 2)):
        mp = onnx.load(run_dir / fname)
        onnx.checker.check_model(mp, full_check=True)
        assert max(o.version for o in mp.opset_import if o.domain in ("", "ai.onnx")) >= 17
        ops = {n.op_type for n in mp.graph.node}
        assert not ops & {"Shape", "Expand", "ConstantOfShape"}, ops
        assert [i.name for i in mp.graph.input] == ["x", "h_in", "c_in"][: 1 + n_state]
        assert [o.name for o in mp.graph.output] == ["logits", "h_out", "c_out"][: 1 + n_state]
        dims = mp.graph.input[0].type.tensor_type.shape.dim
        assert len(dims) == x_rank and dims[0].dim_param == "batch" and dims[-1].dim_value == 12
        out_dims = mp.graph.output[0].type.tensor_type.shape.dim
        assert out_dims[-1].dim_value == 3
        if x_rank == 3:
            assert dims[1].dim_param == "time"


@pytest.mark.parametrize("name", list(VARIANTS))
def test_metadata(runs, name):
    tm, run_dir = runs[name]
    metas = []
    for fname, graph in (("model.onnx", "sequence"), ("model_step.onnx", "step")):
        meta = {p.key: p.value for p in onnx.load(run_dir / fname).metadata_props}
        assert set(meta) == META_KEYS
        assert meta["graph"] == graph
        metas.append({k: v for k, v in meta.items() if k != "graph"})
    assert metas[0] == metas[1]
    meta = metas[0]
    assert meta["format"] == "gaitedge-onnx" and meta["format_version"] == "1"
    assert meta["gaitedge_version"] == gaitedge.__version__
    assert meta["family"] == tm.model.family
    assert json.loads(meta["hparams"]) == tm.model.hparams()
    assert tuple(json.loads(meta["classes"])) == tm.classes == ("rest", "stance", "swing")
    assert json.loads(meta["channels"]) == tm.channels and len(tm.channels) == 12
    assert json.loads(meta["units"]) == tm.units
    assert float(meta["rate_hz"]) == tm.rate_hz == 100.0
    np.testing.assert_array_equal(np.asarray(json.loads(meta["norm_mean"]), np.float32), tm.normalizer.mean)
    np.testing.assert_array_equal(np.asarray(json.loads(meta["norm_std"]), np.float32), tm.normalizer.std)
    assert float(meta["lowpass_hz"]) == tm.lowpass_hz and int(meta["filter_order"]) == tm.filter_order
    sos = json.loads(meta["filter_sos"])
    if tm.sos is None:
        assert sos == []
    else:
        np.testing.assert_array_equal(np.asarray(sos), tm.sos)
        assert len(sos) == tm.filter_order // 2 + tm.filter_order % 2
    assert int(meta["delay"]) == tm.delay == round(VARIANTS[name][4] / 10)
    assert int(meta["min_run"]) == tm.min_run == 4
    assert meta["weights_sha256"] == tm.weights_hash() == tm.info["weights_sha256"]
    layers, hidden = tm.model.layers, tm.model.hidden
    assert json.loads(meta["state_shapes"]) == [[layers, 1, hidden]] * (2 if tm.model.family == "lstm" else 1)


@pytest.mark.parametrize("name", list(VARIANTS))
def test_sequence_parity_and_chained_steps(runs, test_recs, name):
    tm, run_dir = runs[name]
    xs = [tm.normalizer(tm.preprocess(r).signals) for r in test_recs]
    step = _session(run_dir / "model_step.onnx")
    for xn in xs:
        got, final = _seq_ort(run_dir / "model.onnx", xn[None])
        with torch.no_grad():
            ref, ref_state = tm.model(torch.from_numpy(xn)[None])
        assert np.abs(got - ref.numpy()).max() <= TOL
        for a, b in zip(final, ref_state):
            assert np.abs(a - b.numpy()).max() <= TOL
        # T chained step calls reproduce the sequence graph
        state = [np.zeros_like(a) for a in final]
        names = [i.name for i in step.get_inputs()][1:]
        out = []
        for t in range(len(xn)):
            res = step.run(None, {"x": xn[t : t + 1], **dict(zip(names, state))})
            out.append(res[0][0])
            state = res[1:]
        assert np.abs(np.stack(out) - got[0]).max() <= TOL
        for a, b in zip(state, final):
            assert np.abs(a - b).max() <= TOL
    # batches of independent streams
    n = min(len(x) for x in xs)
    batch = np.stack([x[:n] for x in xs])
    got, _ = _seq_ort(run_dir / "model.onnx", batch)
    with torch.no_grad():
        ref, _ = tm.model(torch.from_numpy(batch))
    assert np.abs(got - ref.numpy()).max() <= TOL


def test_ipol_parity_and_runtime(runs, ipol_recs):
    for name in ("lstm", "gru"):
        tm, run_dir = runs[name]
        clf = OnnxGaitClassifier(run_dir)
        assert list(clf.channels) == tm.channels
        for rec in ipol_recs:
            prep, probs, labels, events = tm.predict(rec)
            xn = tm.normalizer(prep.signals)
            got, _ = _seq_ort(run_dir / "model.onnx", xn[None])
            with torch.no_grad():
                ref, _ = tm.model(torch.from_numpy(xn)[None])
            assert np.abs(got[0] - ref[0].numpy()).max() <= TOL, rec.source
            lab, pr, ev = clf.classify(rec.select_channels(tm.channels).signals)
            np.testing.assert_array_equal(lab, labels)
            assert np.abs(pr - probs).max() <= TOL
            for kind in ("toe_off", "heel_strike"):
                np.testing.assert_array_equal(ev[kind], events[kind])


# -- the runtime ---------------------------------------------------------------------------


@pytest.mark.parametrize("name", list(VARIANTS))
def test_runtime_reproduces_predict(runs, test_recs, name):
    tm, run_dir = runs[name]
    clf = OnnxGaitClassifier(run_dir / "model_step.onnx")
    assert (clf.delay, clf.min_run, clf.label_lag) == (tm.delay, tm.min_run, tm.delay + tm.min_run - 1)
    n_events = 0
    for rec in test_recs:
        _, probs, labels, events = tm.predict(rec)
        lab, pr, ev = clf.classify(rec.select_channels(tm.channels).signals)
        np.testing.assert_array_equal(lab, labels)
        assert pr.shape == probs.shape and np.abs(pr - probs).max() <= TOL
        for kind in ("toe_off", "heel_strike"):
            np.testing.assert_array_equal(ev[kind], events[kind])
            n_events += len(events[kind])
    if name in ("lstm", "gru"):
        assert n_events > 10  # the comparison covered real gait events


@pytest.mark.parametrize("location", ["left_foot", "right_foot"])
def test_runtime_applies_the_mounting_like_torch(runs, test_recs, location):
    """A stream in two rotated sensor frames, with its mounting, gives what torch gives in the model's frame."""
    from scipy.spatial.transform import Rotation

    from gaitedge.data.mounting import Mounting, SensorMounting, apply_mounting

    tm, run_dir = runs["lstm"]
    rng = np.random.default_rng(3)
    ml, mr = (Rotation.random(random_state=rng).as_matrix() for _ in range(2))
    mounting = Mounting({"left": SensorMounting(ml), "right": SensorMounting(mr)})
    inverse = Mounting({"left": SensorMounting(ml.T), "right": SensorMounting(mr.T)})
    rec = replace(test_recs[0], location=location)
    worn = apply_mounting(rec, inverse)  # what the two sensors would measure
    assert np.abs(worn.signals - rec.signals).max() > 1.0
    _, probs, labels, events = tm.predict(rec)
    clf = OnnxGaitClassifier(run_dir, mounting=mounting, location=location)
    assert len(clf.mounting_rotations) == 4  # acc and gyr of both feet
    lab, pr, ev = clf.classify(worn.select_channels(tm.channels).signals)
    np.testing.assert_array_equal(lab, labels)
    assert np.abs(pr - probs).max() <= 1e-4
    for kind in ("toe_off", "heel_strike"):
        np.testing.assert_array_equal(ev[kind], events[kind])
    # without the mounting the same stream is classified differently
    plain, _, _ = OnnxGaitClassifier(run_dir).classify(worn.select_channels(tm.channels).signals)
    assert (plain != labels).mean() > 0.01


def test_push_and_flush_timing(runs, test_recs):
    tm, run_dir = runs["lstm"]  # delay 3, min_run 4, low-pass on
    clf = OnnxGaitClassifier(run_dir)
    rec = test_recs[0]
    raw = rec.select_channels(tm.channels).signals
    _, probs, labels, events = tm.predict(rec)
    lag, d = clf.label_lag, clf.delay
    assert lag == 6 and d == 3
    got_labels, got_events = {}, []
    for n, row in enumerate(raw):
        r = clf.push(row)
        assert clf.samples_pushed == n + 1
        if n < d:
            assert r.probabilities is None
        else:
            assert np.abs(r.probabilities - probs[n - d]).max() <= TOL
        if n < lag:
            assert r.label == -1
        else:
            assert r.label == labels[n - lag]
            got_labels[n - lag] = r.label
        for e in r.events:
            # an event is reported as soon as it is decided: label_lag samples after it happened
            assert e.sample == n - lag
            assert e.time_s == pytest.approx(e.sample / 100.0)
        got_events += r.events
    f = clf.flush()
    assert f.label_start == len(raw) - lag and len(f.labels) == lag
    assert f.prob_start == len(raw) - d and f.probabilities.shape == (d, 3)
    np.testing.assert_array_equal(f.labels, labels[-lag:])
    assert np.abs(f.probabilities - probs[-d:]).max() <= TOL
    got_events += f.events
    for kind in ("toe_off", "heel_strike"):
        assert [e.sample for e in got_events if e.kind == kind] == events[kind].tolist()
    assert len(got_labels) == len(raw) - lag
    # flush leaves a fresh stream
    assert clf.samples_pushed == 0
    assert clf.push(raw[0]).probabilities is None


@pytest.mark.parametrize("n", [1, 2, 3, 5, 9, 40])
def test_short_streams(runs, test_recs, n):
    tm, run_dir = runs["lstm2"]  # delay 2, min_run 4, 4th-order low-pass
    clf = OnnxGaitClassifier(run_dir)
    raw = test_recs[1].select_channels(tm.channels).signals[600 : 600 + n]
    labels, probs, events = _offline(tm, raw)
    lab, pr, ev = clf.classify(raw)
    np.testing.assert_array_equal(lab, labels)
    assert np.abs(pr - probs).max() <= TOL
    for kind in ("toe_off", "heel_strike"):
        np.testing.assert_array_equal(ev[kind], events[kind])
    # flush with nothing pushed
    f = clf.flush()
    assert len(f.labels) == 0 and f.probabilities.shape == (0, 3) and f.events == []


def test_reset_starts_a_new_stream(runs, test_recs):
    tm, run_dir = runs["gru"]
    clf = OnnxGaitClassifier(run_dir)
    raw = test_recs[0].select_channels(tm.channels).signals[:300]
    first = [clf.push(row) for row in raw[:150]]
    clf.reset()
    again = [clf.push(row) for row in raw[:150]]
    assert [a.label for a in first] == [b.label for b in again]
    assert all(np.array_equal(a.probabilities, b.probabilities) for a, b in zip(first, again))


def test_metadata_reader_matches_the_writer():
    assert onnx_runtime.FORMAT == onnx_export.FORMAT
    assert onnx_runtime.FORMAT_VERSION == onnx_export.FORMAT_VERSION
    assert set(onnx_runtime.REQUIRED_KEYS) <= META_KEYS


# -- bad input -----------------------------------------------------------------------------


def test_bad_samples(runs):
    tm, run_dir = runs["lstm"]
    clf = OnnxGaitClassifier(run_dir)
    good = np.full(12, 0.5, np.float32)
    clf.push(good)
    with pytest.raises(DataError, match="expected one sample of 12 values .*got shape \\(11,\\)"):
        clf.push(good[:11])
    with pytest.raises(DataError, match="got shape \\(1, 12\\)"):
        clf.push(good[None])
    bad = good.copy()
    bad[4] = np.nan
    with pytest.raises(DataError, match="sample 1: non-finite value in channel\\(s\\) gyr_y"):
        clf.push(bad)
    bad[4], bad[7] = 0.0, np.inf
    with pytest.raises(DataError, match="other_acc_y"):
        clf.push(bad)
    with pytest.raises(DataError, match="not numeric"):
        clf.push(["a"] * 12)
    assert clf.samples_pushed == 1  # rejected samples leave the stream untouched
    with pytest.raises(DataError, match=r"shape \(T, 12\)"):
        clf.classify(np.zeros((10, 6), np.float32))


def test_bad_model_files(runs, tmp_path):
    _, run_dir = runs["gru"]
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(np.random.default_rng(0).bytes(2048))
    with pytest.raises(ModelError, match="junk.onnx: not a loadable ONNX model"):
        OnnxGaitClassifier(junk)
    g = onnx.helper.make_graph(
        [onnx.helper.make_node("Identity", ["x"], ["y"])], "g",
        [onnx.helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [1, 12])],
        [onnx.helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [1, 12])],
    )
    other = tmp_path / "other.onnx"
    onnx.save(onnx.helper.make_model(g, opset_imports=[onnx.helper.make_opsetid("", 17)]), other)
    with pytest.raises(ModelError, match="other.onnx: not a gaitedge model"):
        OnnxGaitClassifier(other)
    with pytest.raises(ModelError, match="model.onnx: is the gaitedge sequence graph; load the step graph"):
        OnnxGaitClassifier(run_dir / "model.onnx")
    with pytest.raises(ModelError, match="no such ONNX model file"):
        OnnxGaitClassifier(tmp_path / "missing.onnx")
    with pytest.raises(ModelError, match="no such ONNX model file"):
        OnnxGaitClassifier(tmp_path)  # a folder without model_step.onnx
    # metadata that does not add up
    mp = onnx.load(run_dir / "model_step.onnx")
    for p in mp.metadata_props:
        if p.key == "norm_std":
            p.value = json.dumps([1.0] * 5)
    broken = tmp_path / "broken.onnx"
    onnx.save(mp, broken)
    with pytest.raises(ModelError, match="broken.onnx: inconsistent gaitedge metadata"):
        OnnxGaitClassifier(broken)


def test_export_failure_leaves_nothing(runs, tmp_path, monkeypatch):
    tm, _ = runs["gru"]
    target = tmp_path / "a-file"
    target.write_text("x")
    with pytest.raises(ModelError, match="not a folder"):
        export_onnx(tm, target)
    with pytest.raises(ModelError, match="opset must be >= 17"):
        export_onnx(tm, tmp_path / "low", opset=13)
    assert not (tmp_path / "low").exists()

    def boom(*args, **kwargs):
        raise OSError(28, "No space left on device")

    out = tmp_path / "out"
    out.mkdir()
    monkeypatch.setattr("os.replace", boom)
    with pytest.raises(ModelError, match="cannot write the ONNX files"):
        export_onnx(tm, out)
    assert list(out.iterdir()) == []
    monkeypatch.undo()

    def disagree(*args, **kwargs):
        raise ModelError("exported graphs disagree with torch")

    monkeypatch.setattr(onnx_export, "_verify", disagree)
    with pytest.raises(ModelError, match="disagree"):
        export_onnx(tm, out)
    assert list(out.iterdir()) == []


class _PlainGRU(GaitModel):
    """A family outside the built-in recurrent classifier (exported through GaitModel.step)."""

    family = "plain-gru"

    def __init__(self, input_size: int, num_classes: int) -> None:
        super().__init__(input_size, num_classes)
        self.gru = nn.GRU(input_size, 8, batch_first=True)
        self.out = nn.Linear(8, num_classes)

    def hparams(self) -> dict:
        return {}

    def init_state(self, batch: int = 1):
        return (torch.zeros(1, batch, 8),)

    def forward(self, x, state=None):
        if state is None:
            state = self.init_state(x.shape[0])
        y, h = self.gru(x, state[0])
        return self.out(torch.relu(y)), (h,)


def test_other_gait_models_export(tmp_path):
    torch.manual_seed(0)
    model = _PlainGRU(12, 3).eval()
    tm = TrainedModel(
        model=model, classes=("rest", "stance", "swing"), channels=[f"c{i}" for i in range(12)],
        units=["u"] * 12, rate_hz=50.0, normalizer=Normalizer(np.zeros(12, np.float32), np.ones(12, np.float32)),
        lowpass_hz=0.0, filter_order=2, min_run=1, tolerance_ms=50.0,
    )
    paths = export_onnx(tm, tmp_path)
    x = np.random.default_rng(1).standard_normal((200, 12)).astype(np.float32)
    got, _ = _seq_ort(paths.sequence, x[None])
    with torch.no_grad():
        ref, _ = model(torch.from_numpy(x)[None])
    assert np.abs(got - ref.numpy()).max() <= TOL
    clf = OnnxGaitClassifier(paths.step)
    labels, probs, _ = _offline(tm, x)
    lab, pr, _ = clf.classify(x)
    np.testing.assert_array_equal(lab, labels)
    assert np.abs(pr - probs).max() <= TOL


# -- command line ---------------------------------------------------------------------------


def test_cli_export(runs, tmp_path):
    _, run_dir = runs["gru"]
    out = tmp_path / "exported"
    r = subprocess.run([sys.executable, "-m", "gaitedge", "export", "onnx", str(run_dir), "--out", str(out)],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert (out / "model.onnx").is_file() and (out / "model_step.onnx").is_file()
    assert str(out / "model_step.onnx") in r.stdout
    OnnxGaitClassifier(out)
    r = subprocess.run([sys.executable, "-m", "gaitedge", "export", "onnx", str(tmp_path / "no-run")],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 2
    assert r.stderr.count("\n") == 1 and r.stderr.startswith("gaitedge: error: ")
    assert "no-run" in r.stderr and "Traceback" not in r.stderr


@pytest.mark.parametrize("family", ["jordan", "peephole", "ctrnn"])
def test_loop_graphs_declare_their_true_output_shapes(family, tmp_path, capfd):
    """Scripted time loops: ONNX Runtime (default logging) runs them without shape warnings."""
    import onnx
    import onnxruntime as ort

    from gaitedge.checkpoint import TrainedModel
    from gaitedge.data.preprocess import Normalizer
    from gaitedge.export import export_onnx
    from gaitedge.models import build_model

    m = build_model(family, 6, 3, hidden=8).eval()
    tm = TrainedModel(model=m, classes=("rest", "stance", "swing"), channels=[f"c{i}" for i in range(6)],
                      units=["m/s^2"] * 6, rate_hz=100.0, normalizer=Normalizer(np.zeros(6), np.ones(6)),
                      lowpass_hz=0.0, filter_order=2, min_run=3, tolerance_ms=50.0, delay=0)
    paths = export_onnx(tm, tmp_path)
    out = {o.name: [d.dim_param or d.dim_value for d in o.type.tensor_type.shape.dim]
           for o in onnx.load(paths.sequence).graph.output}
    assert out["logits"] == ["batch", "time", 3]
    capfd.readouterr()
    s = ort.InferenceSession(str(paths.sequence), providers=["CPUExecutionProvider"])
    feeds = {i.name: np.zeros([1 if not isinstance(d, int) else d for d in i.shape], np.float32)
             for i in s.get_inputs()}
    feeds["x"] = np.zeros((2, 17, 6), np.float32)
    for name, st in zip([i.name for i in s.get_inputs()][1:], m.init_state(2)):
        feeds[name] = st.numpy()
    logits = s.run(None, feeds)[0]
    assert logits.shape == (2, 17, 3)
    err = capfd.readouterr().err
    assert "VerifyOutputSizes" not in err and "does not match" not in err
