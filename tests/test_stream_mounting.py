"""``gaitedge stream`` and ``gaitedge evaluate`` with a sensor mounting, on a rotated IPOL recording."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch
from scipy.spatial.transform import Rotation

from gaitedge.checkpoint import load_checkpoint
from gaitedge.cli import main
from gaitedge.config import Config
from gaitedge.data import save_csv
from gaitedge.data.mounting import Mounting, SensorMounting, angular_error_deg, apply_mounting
from gaitedge.data.spec import load_spec
from gaitedge.stream.app import mount_backend
from gaitedge.stream.backends import TorchBackend
from gaitedge.stream.view import read_log
from gaitedge.training.train import train

Q_LEFT = Rotation.from_euler("zyx", [150, 20, -10], degrees=True).as_matrix()
Q_RIGHT = Rotation.from_euler("zyx", [-60, -15, 25], degrees=True).as_matrix()


@pytest.fixture(scope="module")
def canon_run(ipol_root, tmp_path_factory):
    """A tiny GRU trained briefly on IPOL subjects 1-3 in the canonical frame."""
    torch.set_num_threads(1)
    cfg = Config()
    cfg.data.train = f"ipol:{ipol_root}?subjects=1-3&quality=checked"
    cfg.data.val_subjects = ["3"]
    cfg.model.hidden = 16
    cfg.train.epochs = 3
    cfg.train.steps_per_epoch = 15
    cfg.train.batch_size = 16
    cfg.train.window_s = 2.5
    cfg.train.threads = 1
    out = tmp_path_factory.mktemp("canon") / "run"
    train(cfg, out_dir=out, progress=False, log=lambda *a: None)
    return out


@pytest.fixture(scope="module")
def worn(ipol_root, tmp_path_factory):
    """IPOL 13-1 left foot (both feet's channels) as two sensors mounted Q_LEFT / Q_RIGHT would record it."""
    rec = load_spec(f"ipol:{ipol_root}?subjects=13&feet=left", other_foot=True)[0]
    inv = Mounting({"left": SensorMounting(Q_LEFT.T), "right": SensorMounting(Q_RIGHT.T)})
    w = replace(apply_mounting(rec, inv), frame="sensor", meta={})
    path = tmp_path_factory.mktemp("worn") / "worn.csv"
    save_csv(w, path)
    return rec, w, path


def _events(log) -> dict[str, list[int]]:
    rows = read_log(log)
    return {k: sorted(r["sample"] for r in rows if r["kind"] == k) for k in ("toe_off", "heel_strike")}


def test_checkpoint_records_the_canonical_frame(canon_run):
    assert load_checkpoint(canon_run).frame == "foot-canonical"


def test_stream_with_a_declared_mounting_equals_predict(canon_run, worn, tmp_path, capsys):
    rec, _, path = worn
    tm = load_checkpoint(canon_run)
    _, _, _, want = tm.predict(rec)
    assert len(want["heel_strike"]) > 5
    mfile = tmp_path / "m.toml"
    Mounting({"left": SensorMounting(Q_LEFT), "right": SensorMounting(Q_RIGHT)}).save(mfile)
    log = tmp_path / "ev.jsonl"
    assert main(["stream", "--replay", str(path), "--model", str(canon_run / "model.pt"), "--backend", "torch",
                 "--mounting", str(mfile), "--foot", "left", "--speed", "0", "--quiet", "--log", str(log)]) == 0
    got = _events(log)
    assert got == {k: v.tolist() for k, v in want.items()}
    # the gaitmap-style table of that stream holds the same events, stride by stride
    from gaitedge.data.gaitmap import read_event_table

    table = tmp_path / "strides.csv"
    assert main(["stream", "--replay", str(path), "--model", str(canon_run / "model.pt"), "--backend", "torch",
                 "--mounting", str(mfile), "--foot", "left", "--speed", "0", "--quiet",
                 "--events-table", str(table)]) == 0
    strides = read_event_table(table)["left"]
    assert set(strides.ic.tolist()) <= set(got["heel_strike"]) and set(strides.tc.tolist()) <= set(got["toe_off"])
    assert len(strides.ic) >= len(got["heel_strike"]) - 3
    # without the mounting the same stream gives other events, and evaluate warns about the frame
    log2 = tmp_path / "plain.jsonl"
    main(["stream", "--replay", str(path), "--model", str(canon_run / "model.pt"), "--backend", "torch",
          "--speed", "0", "--quiet", "--log", str(log2)])
    assert _events(log2) != got


def test_stream_auto_mounting_locks_and_covers_the_whole_stream(canon_run, worn, tmp_path, capsys):
    rec, w, path = worn
    tm = load_checkpoint(canon_run)
    log = tmp_path / "auto.jsonl"
    assert main(["stream", "--replay", str(path), "--model", str(canon_run / "model.pt"), "--backend", "torch",
                 "--mounting", "auto", "--foot", "left", "--speed", "0", "--quiet", "--log", str(log)]) == 0
    err = capsys.readouterr().err
    assert "mounting locked after" in err
    notices = [r for r in read_log(log) if r["kind"] == "notice" and "locked" in r["detail"]]
    assert len(notices) == 1
    # the library backend reports the mounting it locked; events equal predict with that mounting
    be = mount_backend(TorchBackend(tm), "auto", "left_foot")
    x = w.select_channels(tm.channels).signals
    for row in x:
        be.push(row)
    be.flush()
    assert be.locked and be.mounting is not None
    assert angular_error_deg(be.mounting.sensors["left"].matrix, Q_LEFT) < 10.0
    assert angular_error_deg(be.mounting.sensors["right"].matrix, Q_RIGHT) < 10.0
    _, _, _, want = tm.predict(apply_mounting(w, be.mounting))
    assert _events(log) == {k: v.tolist() for k, v in want.items()}


def test_evaluate_auto_mounting_and_frame_warning(canon_run, worn, tmp_path, capsys):
    rec, w, path = worn
    spec = f"csv:{path}?rate=100&label=label"
    out = tmp_path / "plain.json"
    assert main(["evaluate", str(canon_run), "--data", spec, "--out", str(out)]) == 0
    err = capsys.readouterr().err
    assert "gravity" in err and "--mounting auto" in err
    out2 = tmp_path / "auto.json"
    table = tmp_path / "events.csv"
    assert main(["evaluate", str(canon_run), "--data", spec, "--mounting", "auto", "--out", str(out2),
                 "--events-out", str(table)]) == 0
    err = capsys.readouterr().err
    assert "gravity" not in err
    import json

    plain, auto = json.loads(out.read_text()), json.loads(out2.read_text())
    assert auto["macro_f1"] > plain["macro_f1"] + 0.05
    assert table.is_file() and "ic" in table.read_text().splitlines()[0]


def test_mounting_estimate_cli(worn, tmp_path, capsys):
    _, w, path = worn
    out = tmp_path / "m.toml"
    assert main(["mounting", "estimate", "--data", f"csv:{path}?rate=100&label=label", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "confidence" in text and "rotation" in text
    from gaitedge.data.mounting import load_mounting_file

    m = load_mounting_file(out)
    # a CSV recording names no foot: its own sensor is "foot", the other foot's "other"
    assert angular_error_deg(m.sensors["foot"].matrix, Q_LEFT) < 10.0
    # standing only: refused with the reason, no file written
    short = tmp_path / "short.csv"
    save_csv(replace(w, signals=w.signals[:300], labels=w.labels[:300]), short)
    out2 = tmp_path / "m2.toml"
    assert main(["mounting", "estimate", "--data", f"csv:{short}?rate=100&label=label", "--out", str(out2)]) == 2
    assert "swing" in capsys.readouterr().err and not out2.exists()


def test_stream_warns_about_a_frame_mismatch_and_deg_s(canon_run, worn, tmp_path, capsys):
    """Unmounted rotated input gets a frame warning; gyro in deg/s gets a units warning; both name the fix."""
    _, w, path = worn
    log = tmp_path / "w.jsonl"
    main(["stream", "--replay", str(path), "--model", str(canon_run / "model.pt"), "--backend", "torch",
          "--speed", "0", "--quiet", "--samples", "2500", "--log", str(log)])
    notes = [r["detail"] for r in read_log(log) if r["kind"] == "notice"]
    assert any("gravity" in n and "--mounting auto" in n for n in notes), notes
    deg = tmp_path / "deg.csv"
    gyr = [i for i, c in enumerate(w.channels) if "gyr_" in c]
    sig = w.signals.copy()
    sig[:, gyr] *= 180.0 / np.pi
    save_csv(replace(w, signals=sig), deg)
    log2 = tmp_path / "d.jsonl"
    main(["stream", "--replay", str(deg), "--model", str(canon_run / "model.pt"), "--backend", "torch",
          "--mounting", "x=x,y=y,z=z", "--speed", "0", "--quiet", "--samples", "2500", "--log", str(log2)])
    notes = [r["detail"] for r in read_log(log2) if r["kind"] == "notice"]
    assert any("deg/s" in n and "gyr=deg" in n for n in notes), notes
