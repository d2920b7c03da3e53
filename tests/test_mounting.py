"""Sensor mounting: axis maps, mounting files, the estimator, and the canonical IPOL frame."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from gaitedge.data.ipol import load_trial
from gaitedge.data.mounting import (
    CANONICAL,
    Mounting,
    SensorMounting,
    angular_error_deg,
    apply_mounting,
    check_matrix,
    estimate_recording,
    estimate_sensor,
    load_mounting_file,
    mount_all,
    parse_axis_map,
    parse_mounting,
    rotations_for,
)
from gaitedge.data.preprocess import resample
from gaitedge.data.recording import Recording
from gaitedge.errors import DataError
from gaitedge.data.augment import mirror_signs


def test_axis_map_parsing():
    m = parse_axis_map("x=-y,y=x,z=z")
    assert np.array_equal(m, [[0, -1, 0], [1, 0, 0], [0, 0, 1]])
    assert np.allclose(m @ [1.0, 2.0, 3.0], [-2.0, 1.0, 3.0])
    assert np.linalg.det(parse_axis_map("x=x, y=-y, z=z")) == pytest.approx(-1.0)


@pytest.mark.parametrize(
    "text, words",
    [
        ("x=x,y=x,z=z", "used twice"),
        ("x=x,y=y", "missing z"),
        ("x=x,x=y,z=z", "given twice"),
        ("x=2y,y=x,z=z", "not of the form"),
        ("x=x,y=y,z=w", "not of the form"),
    ],
)
def test_axis_map_refusals(text, words):
    with pytest.raises(DataError, match=words):
        parse_axis_map(text)


def test_matrix_refusals():
    with pytest.raises(DataError, match="not a rotation"):
        check_matrix([[1, 0, 0], [0, 1, 0], [0, 0.5, 1]])
    with pytest.raises(DataError, match="3×3"):
        check_matrix([[1, 0], [0, 1]])
    r = Rotation.from_euler("zyx", [30, -20, 10], degrees=True).as_matrix()
    assert np.allclose(check_matrix(r), r)


def test_parse_mounting_per_sensor_and_files(tmp_path):
    m = parse_mounting("left=x=-y,y=x,z=z,right=x=y,y=-x,z=z")
    assert set(m.sensors) == {"left", "right"}
    assert np.array_equal(m.sensors["right"].matrix, [[0, 1, 0], [-1, 0, 0], [0, 0, 1]])
    one = parse_mounting("x=-x,y=-y,z=z")
    assert set(one.sensors) == {"*"} and one.matrix_for("back") is not None
    assert parse_mounting("auto") == "auto"
    with pytest.raises(DataError, match="unknown sensor"):
        parse_mounting("hand=x=x,y=y,z=z")
    with pytest.raises(DataError, match="start every axis map"):
        parse_mounting("x=x,y=y,z=z,left=x=x,y=y,z=z")
    rot = Rotation.from_euler("zyx", [100, 30, -5], degrees=True).as_matrix()
    src = Mounting({"left": SensorMounting(rot, method="estimated", confidence=0.8), "right": m.sensors["right"]})
    for name in ("m.toml", "m.json"):
        src.save(tmp_path / name)
        back = parse_mounting(str(tmp_path / name))
        assert np.allclose(back.sensors["left"].matrix, rot, atol=1e-6)
        assert back.sensors["left"].method == "estimated"
        assert np.array_equal(back.sensors["right"].matrix, m.sensors["right"].matrix)
    (tmp_path / "bad.toml").write_text('[sensors.left]\nmatrix = [[1, 0, 0], [0, 1, 0], [0, 1, 1]]\n')
    with pytest.raises(DataError, match="not a rotation"):
        load_mounting_file(tmp_path / "bad.toml")
    with pytest.raises(DataError, match="not found"):
        parse_mounting(str(tmp_path / "missing.toml"))


def test_apply_uses_each_sensors_matrix():
    t = 5
    x = np.random.default_rng(0).normal(size=(t, 13)).astype(np.float32)
    chans = [f"{p}{q}_{a}" for p in ("", "other_") for q in ("acc", "gyr") for a in "xyz"] + ["pressure"]
    rec = Recording(x, chans, [""] * 13, 100.0, location="right_foot")
    ml, mr = parse_axis_map("x=-y,y=x,z=z"), parse_axis_map("x=y,y=-x,z=z")
    out = apply_mounting(rec, Mounting({"left": SensorMounting(ml), "right": SensorMounting(mr)}))
    assert out.frame == CANONICAL and set(out.meta["mounting"]) == {"left", "right"}
    assert np.allclose(out.signals[:, 0:3], x[:, 0:3] @ mr.T)  # own channels: the right foot's sensor
    assert np.allclose(out.signals[:, 3:6], x[:, 3:6] @ mr.T)
    assert np.allclose(out.signals[:, 6:9], x[:, 6:9] @ ml.T)  # other_: the left foot's
    assert np.array_equal(out.signals[:, 12], x[:, 12])
    with pytest.raises(DataError, match="no mounting for sensor 'left'"):
        rotations_for(chans, "right_foot", Mounting({"right": SensorMounting(mr)}))
    with pytest.raises(DataError, match="already in the canonical"):
        mount_all([out], "x=x,y=y,z=z")


def test_mirror_signs():
    chans = ["acc_x", "acc_y", "acc_z", "gyr_x", "gyr_y", "gyr_z", "other_acc_y", "other_gyr_y"]
    assert mirror_signs(chans).tolist() == [1, -1, 1, -1, 1, -1, -1, 1]


# ---------------------------------------------------------------- on real gait data


def _sensor_trial(root, s, t, foot=0):
    return load_trial(root, s, t, other_foot=False, frame="sensor")[foot]


def test_canonical_ipol_frame_is_physical(ipol_root):
    """In the canonical frame gravity is +z at rest and every swing turns the foot toe-up about +y."""
    for s, t in [(1, 1), (3, 2), (12, 1)]:  # 12-3 has annotations its signals contradict
        for rec in load_trial(ipol_root, s, t):
            assert rec.frame == CANONICAL
            rest = rec.signals[: 50, :3].mean(axis=0)
            tilt = np.degrees(np.arccos(rest[2] / np.linalg.norm(rest)))
            assert tilt < 3.0, (rec.name, tilt)
            turns = [rec.signals[a:b, 4].sum() / rec.rate_hz
                     for a, b in zip(rec.events["toe_off"], rec.events["heel_strike"])]
            assert np.mean(np.array(turns) < 0) >= 0.9 and np.median(turns) < -0.8, (rec.name, turns)
            info = rec.meta["mounting"][rec.location.split("_")[0]]
            assert info["method"] == "estimated" and 0.0 < info["confidence"] <= 1.0


def test_estimator_recovers_random_rotations(ipol_root):
    """A known random rotation of a recording, resampled to 204.8 Hz, is recovered within 3°."""
    rng = np.random.default_rng(7)
    errs = []
    for s, t in [(2, 1), (9, 2), (14, 4)]:
        rec = _sensor_trial(ipol_root, s, t)
        ref = estimate_recording(rec).sensors["left"].matrix
        q = Rotation.random(random_state=rng).as_matrix()
        moved = resample(apply_mounting(rec, Mounting({"*": SensorMounting(q)})), 204.8)
        est = estimate_recording(moved).sensors["left"]
        # the moved sensor's true mounting is ref @ q^T
        errs.append(angular_error_deg(est.matrix, ref @ q.T))
        assert est.confidence > 0.2
    assert max(errs) < 3.0, errs


def test_estimator_refuses_without_standing_or_steps(ipol_root):
    rec = _sensor_trial(ipol_root, 1, 1)
    acc, gyr = rec.signals[:, :3], rec.signals[:, 3:]
    lo = int(rec.events["toe_off"][0])
    hi = int(rec.events["heel_strike"][-1])
    with pytest.raises(DataError, match="standing still"):
        estimate_sensor(acc[lo + 20 : hi - 20], gyr[lo + 20 : hi - 20], rec.rate_hz)
    stop = int(rec.events["toe_off"][2])
    with pytest.raises(DataError, match="swing"):
        estimate_sensor(acc[:stop], gyr[:stop], rec.rate_hz)


def test_estimate_is_stable_within_a_trial(ipol_root):
    """The first and second halves of the walking (each with its standing) agree within 10°."""
    rec = _sensor_trial(ipol_root, 5, 1)
    n = len(rec)
    mid = n // 2
    a = estimate_sensor(rec.signals[:mid, :3], rec.signals[:mid, 3:], rec.rate_hz).matrix
    b = estimate_sensor(rec.signals[mid:, :3], rec.signals[mid:, 3:], rec.rate_hz).matrix
    assert angular_error_deg(a, b) < 10.0


def test_estimator_finds_mirrored_sensor_frames(ipol_root):
    """A left-handed export (y negated) is recognised from the heel rises on most recordings, a
    right-handed sensor is never taken as mirrored, and the matrices fit; combining keeps the majority."""
    from dataclasses import replace as _replace

    from gaitedge.data.mounting import combine

    rng = np.random.default_rng(11)
    mirror = np.diag([1.0, -1.0, 1.0])
    left_handed = Rotation.from_euler("zyx", [120, 25, -10], degrees=True).as_matrix() @ mirror
    found, ests = 0, []
    recs = load_trial(ipol_root, 12, 1) + load_trial(ipol_root, 12, 2) + load_trial(ipol_root, 13, 1)
    for rec in recs:
        for true in (Rotation.random(random_state=rng).as_matrix(), left_handed):
            worn = _replace(apply_mounting(rec, Mounting({"*": SensorMounting(np.linalg.inv(true))})), frame="sensor")
            est = estimate_recording(worn).sensors[rec.location.split("_")[0]]
            if np.linalg.det(true) > 0:
                assert np.linalg.det(est.matrix) > 0 and angular_error_deg(est.matrix, true) < 1.0
                continue
            ests.append(Mounting({"left": est}))
            if np.linalg.det(est.matrix) < 0:
                found += 1
                assert angular_error_deg(est.matrix, true) < 3.0
    assert found >= 4, found
    both = combine(ests)
    assert np.linalg.det(both.sensors["left"].matrix) < 0
    assert angular_error_deg(both.sensors["left"].matrix, left_handed) < 3.0


def test_estimator_names_wrong_units(ipol_root):
    rec = _sensor_trial(ipol_root, 1, 1)
    acc, gyr = rec.signals[:, :3], rec.signals[:, 3:]
    with pytest.raises(DataError, match="in g, not m/s²"):
        estimate_sensor(acc / 9.81, gyr, rec.rate_hz)
    with pytest.raises(DataError, match="in deg/s, not rad/s"):
        estimate_sensor(acc, np.degrees(gyr) + 1.0, rec.rate_hz)


def test_a_checkpoint_without_a_frame_refuses_canonical_data(tmp_path):
    """A checkpoint written before frames were recorded cannot silently run on canonical data."""
    import torch

    from gaitedge.checkpoint import load_checkpoint
    from gaitedge.data.spec import load_spec
    from gaitedge.training.evaluate import evaluate_model
    from gaitedge.training.train import train
    from tests.tiny import tiny_config

    cfg = tiny_config(epochs=1)
    cfg.train.steps_per_epoch = 2
    tm, _, run = train(cfg, out_dir=tmp_path / "run", progress=False, log=lambda *a: None)
    assert tm.frame == CANONICAL
    d = torch.load(run / "model.pt", weights_only=True)
    del d["frame"]
    torch.save(d, run / "model.pt")
    old = load_checkpoint(run)
    assert old.frame == "unrecorded"
    recs = load_spec("synthetic?n=5&trials=1&subjects=syn5", other_foot=True)
    with pytest.raises(DataError, match="trained before gaitedge rotated data"):
        evaluate_model(old, recs)
