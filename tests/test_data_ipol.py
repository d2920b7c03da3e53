import json
import re

import numpy as np
import pytest

from gaitedge.data import GAIT_CLASSES, load_ipol, load_spec, load_trial
from gaitedge.data.ipol import list_trials
from gaitedge.errors import DataError
from gaitedge.events import labels_to_events
from tests.conftest import write_ipol_trial

# A folder whose only trial is bad warns that it skips it, then fails; the
# warnings themselves are checked in test_data_skips.py.
pytestmark = pytest.mark.filterwarnings("ignore::gaitedge.errors.SkippedTrialWarning")


def test_shared_dataset_loads_15_subjects(ipol_root):
    trials = list_trials(ipol_root)
    assert len(trials) == 86
    assert sorted({s for s, _ in trials}) == list(range(1, 16))


def test_shared_trial_labels_and_events(ipol_root):
    meta = json.loads((ipol_root / "GaitData" / "1-1.json").read_text())
    left, right = load_trial(ipol_root, 1, 1)
    assert left.channels == ["acc_x", "acc_y", "acc_z", "gyr_x", "gyr_y", "gyr_z"]
    assert left.units[:3] == ["m/s^2"] * 3 and left.units[3:] == ["rad/s"] * 3
    assert left.rate_hz == 100.0 and left.signals.dtype == np.float32
    assert left.subject == "1" and left.location == "left_foot" and right.location == "right_foot"
    start, end = meta["TrialBoundaries"]
    rest = GAIT_CLASSES.index("rest")
    assert (left.labels[:start] == rest).all() and (left.labels[end:] == rest).all()
    assert (left.labels[start:end] != rest).all()
    # events are the JSON pairs, and they are exactly the transitions of the labels
    assert left.events["toe_off"].tolist() == [a for a, _ in meta["LeftFootEvents"]]
    assert left.events["heel_strike"].tolist() == [b for _, b in meta["LeftFootEvents"]]
    for rec in (left, right):
        ev = labels_to_events(rec.labels)
        assert ev["toe_off"].tolist() == rec.events["toe_off"].tolist()
        assert ev["heel_strike"].tolist() == rec.events["heel_strike"].tolist()
    # in the sensor frame the first sample is the file's text; in the canonical
    # frame it is that sample rotated by the mounting kept in the metadata
    first = (ipol_root / "GaitData" / "1-1_lf.txt").read_text().splitlines()[2].split("\t")
    raw = np.array([float(v) for v in first[1:7]])
    sensor_left = load_trial(ipol_root, 1, 1, frame="sensor")[0]
    assert sensor_left.frame == "sensor" and sensor_left.meta == {}
    assert np.allclose(sensor_left.signals[0], raw, atol=1e-5)
    m = np.array(left.meta["mounting"]["left"]["matrix"])
    assert left.frame == "foot-canonical"
    assert np.allclose(left.signals[0, :3], m @ raw[:3], atol=1e-4)
    assert np.allclose(left.signals[0, 3:], m @ raw[3:], atol=1e-4)


def test_other_foot_and_back_channels(ipol_root):
    left, right = load_trial(ipol_root, 2, 1, other_foot=True, lower_back=True)
    assert left.signals.shape[1] == 18
    assert left.channels[6] == "other_acc_x" and left.channels[12] == "back_acc_x"
    np.testing.assert_array_equal(left.signals[:, 6:12], right.signals[:, :6])


def test_spec_subject_filter(ipol_root):
    recs = load_spec(f"ipol:{ipol_root}?subjects=12-13&feet=left")
    assert {r.subject for r in recs} == {"12", "13"}
    assert all(r.location == "left_foot" for r in recs)
    with pytest.raises(DataError, match="subject"):
        load_spec(f"ipol:{ipol_root}?subjects=16")


def test_missing_dir_and_files(tmp_path):
    with pytest.raises(DataError, match="no such directory"):
        load_ipol(tmp_path / "nope")
    with pytest.raises(DataError, match="no IPOL trial files"):
        load_ipol(tmp_path)
    write_ipol_trial(tmp_path / "GaitData", 1, 1)
    (tmp_path / "GaitData" / "1-1_rf.txt").unlink()
    with pytest.raises(DataError, match=r"1-1_rf\.txt: file not found"):
        load_ipol(tmp_path)


@pytest.mark.parametrize(
    "mutate, message",
    [
        (lambda t: t.replace("Acc_Y", "AccY"), "lacks column"),
        (lambda t: t.replace("Acquisition frequency: 100 Hz", "hello"), "line 1"),
        (lambda t: t.replace("\n5.0\t", "\n5.0\tabc\t", 1), "malformed"),
        (lambda t: re.sub(r"\n7\.0\t[^\t]+", "\n7.0\tnan", t, count=1), "non-finite value at sample 7"),
        (lambda t: t.replace("\n9.0\t", "\n9.0\t1.0\t", 1), "malformed sample line"),
    ],
)
def test_crafted_bad_imu_files(tmp_path, mutate, message):
    write_ipol_trial(tmp_path / "GaitData", 3, 1)
    p = tmp_path / "GaitData" / "3-1_lf.txt"
    p.write_text(mutate(p.read_text()))
    with pytest.raises(DataError, match=message) as exc:
        load_ipol(tmp_path)
    assert "3-1_lf.txt" in str(exc.value)


def test_crafted_bad_meta(tmp_path):
    write_ipol_trial(tmp_path / "GaitData", 4, 1)
    p = tmp_path / "GaitData" / "4-1.json"
    p.write_text("{not json")
    with pytest.raises(DataError, match="4-1.json: not valid JSON"):
        load_ipol(tmp_path)
    p.write_text(json.dumps({"TrialBoundaries": [1, 2], "LeftFootEvents": []}))
    with pytest.raises(DataError, match="RightFootEvents"):
        load_ipol(tmp_path)
    p.write_text(json.dumps({"TrialBoundaries": [0, 9999], "LeftFootEvents": [], "RightFootEvents": []}))
    with pytest.raises(DataError, match="beyond"):
        load_ipol(tmp_path)


def test_quality_check_flags_annotations_the_signal_contradicts(tmp_path, ipol_root):
    from gaitedge.data.ipol import trial_issues

    assert trial_issues(ipol_root, 1, 1) == []
    issues = trial_issues(ipol_root, 12, 3)
    assert any("ends past" in i for i in issues) and any("motionless" in i for i in issues)
    checked = load_spec(f"ipol:{ipol_root}?subjects=12&quality=checked")
    everything = load_spec(f"ipol:{ipol_root}?subjects=12")
    names = {r.source for r in checked}
    assert len(checked) < len(everything) and not any("12-3_" in n for n in names)
    # trial 7-3's lower-back recording stops 196 samples before the trial ends
    assert not any("lower back" in i for i in trial_issues(ipol_root, 7, 3))
    assert any("lower back: 2278 samples recorded, the trial ends at sample 2474" in i
               for i in trial_issues(ipol_root, 7, 3, lower_back=True))


def test_quality_check_on_crafted_trial(tmp_path):
    from gaitedge.data.ipol import trial_issues

    write_ipol_trial(tmp_path / "GaitData", 5, 1)  # noise with std 1 rad/s: feet "move"
    assert trial_issues(tmp_path, 5, 1) == []
    p = tmp_path / "GaitData" / "5-1_lf.txt"
    lines = p.read_text().splitlines()
    for i in range(2 + 220, 2 + 260):  # left swing [220, 260): make the foot still
        cols = lines[i].split("\t")
        cols[4:7] = ["0.0", "0.0", "0.0"]
        lines[i] = "\t".join(cols)
    p.write_text("\n".join(lines) + "\n")
    issues = trial_issues(tmp_path, 5, 1)
    assert len(issues) == 1 and "left swing [220, 260)" in issues[0]
    assert load_ipol(tmp_path, quality="checked", frame="sensor") == []


def test_quality_check_with_lower_back_leaves_out_a_short_back_recording(tmp_path):
    from gaitedge.data.ipol import trial_issues

    write_ipol_trial(tmp_path / "GaitData", 5, 1)
    write_ipol_trial(tmp_path / "GaitData", 6, 1)
    p = tmp_path / "GaitData" / "5-1_lb.txt"
    lines = p.read_text().splitlines()
    p.write_text("\n".join(lines[:102]) + "\n")  # 100 samples: the trial runs longer
    assert trial_issues(tmp_path, 5, 1) == []  # the feet alone are fine
    issues = trial_issues(tmp_path, 5, 1, lower_back=True)
    assert len(issues) == 1 and "lower back: 100 samples" in issues[0]
    with pytest.raises(DataError, match="5-1.json: TrialBoundaries end .* beyond the 100 samples"):
        load_ipol(tmp_path, lower_back=True)
    kept = load_ipol(tmp_path, lower_back=True, quality="checked", frame="sensor")
    assert {r.subject for r in kept} == {"6"} and all(r.channels[-1] == "back_gyr_z" for r in kept)
    assert len(load_ipol(tmp_path, quality="checked", frame="sensor")) == 4  # without the back sensor both stay


def test_crafted_trial_without_gait_cannot_be_put_in_the_canonical_frame(tmp_path):
    """Noise has no standing: the canonical frame is refused with the reason; the sensor frame loads."""
    write_ipol_trial(tmp_path / "GaitData", 2, 1)
    with pytest.raises(DataError, match="2-1_lf.txt: only .* standing still"):
        load_ipol(tmp_path)
    assert len(load_ipol(tmp_path, frame="sensor")) == 2
    with pytest.raises(DataError, match="frame must be one of"):
        load_ipol(tmp_path, frame="body")
