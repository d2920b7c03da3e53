import csv
import math

import numpy as np
import pytest

from gaitedge.data import load_spec
from gaitedge.data.gaitmap import (
    load_gaitmap,
    read_event_table,
    read_imu_table,
    strides_from_events,
    write_event_table,
)
from gaitedge.data.recording import GAIT_CLASSES, UNLABELED
from gaitedge.errors import DataError
from gaitedge.metrics import MetricAccumulator

AXES = ["acc_x", "acc_y", "acc_z", "gyr_x", "gyr_y", "gyr_z"]
N = 60
STANCE, SWING = GAIT_CLASSES.index("stance"), GAIT_CLASSES.index("swing")
# s_id, foot, start, end, ic, tc, min_vel
STRIDES = [
    (0, "left", 10, 30, 22, 15, 10),
    (1, "left", 30, 50, 42, 35, 30),
    (0, "right", 20, 40, 32, 25, 20),
]


def _signals():
    t = np.arange(N, dtype=np.float64)
    left = np.stack([t, t + 0.5, -t, 90.0 + 0 * t, 180.0 + 0 * t, -t], axis=1)
    right = np.stack([2 * t, 1.0 + 0 * t, 9.81 + 0 * t, 360.0 + 0 * t, t, -45.0 + 0 * t], axis=1)
    return left, right


def write_imu(path, sensors=("left_sensor", "right_sensor"), sparse=False, index=True, float_index=False, axes=AXES):
    left, right = _signals()
    data = {"left_sensor": left, "right_sensor": right}
    blocks = [data.get(s, left if "left" in s else right) for s in sensors]
    row1 = [""] if index else []
    row2 = [""] if index else []
    for s in sensors:
        row1 += [s] + ([""] * (len(axes) - 1) if sparse else [s] * (len(axes) - 1))
        row2 += list(axes)
    with path.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(row1)
        w.writerow(row2)
        for i in range(N):
            row = [f"{float(i)}" if float_index else str(i)] if index else []
            for b in blocks:
                row += [repr(float(v)) for v in b[i, : len(axes)]]
            w.writerow(row)
    return path


def write_events(path, strides=STRIDES, index=True, floats=False, extra=True):
    with path.open("w", newline="") as fh:
        w = csv.writer(fh)
        cols = ["s_id", "foot", "start", "end", "ic", "tc", "min_vel"] + (["pre_ic"] if extra else [])
        w.writerow(([""] if index else []) + cols)
        for k, s in enumerate(strides):
            vals = [f"{float(v)}" if floats and isinstance(v, int) else str(v) for v in s[2:]]
            w.writerow(([str(k)] if index else []) + [str(s[0]), s[1], *vals] + (["nan"] if extra else []))
    return path


def expected_labels(foot):
    lab = np.full(N, UNLABELED)
    for _, f, start, end, ic, tc, _ in STRIDES:
        if f == foot:
            lab[start : end + 1] = STANCE
            lab[tc:ic] = SWING
    return lab


@pytest.mark.parametrize("sparse", [False, True])
def test_two_sensor_file_gives_two_recordings(tmp_path, sparse):
    imu = write_imu(tmp_path / "imu.csv", sparse=sparse)
    ev = write_events(tmp_path / "ev.csv")
    recs = load_gaitmap(imu, events=ev, rate_hz=204.8)
    assert [r.location for r in recs] == ["left_foot", "right_foot"]
    left, right = _signals()
    for rec, raw in zip(recs, (left, right)):
        assert rec.channels == AXES
        assert rec.units == ["m/s^2"] * 3 + ["rad/s"] * 3
        assert rec.rate_hz == 204.8 and rec.subject == "imu" and len(rec) == N
        assert rec.frame == "foot-canonical"
        np.testing.assert_allclose(rec.signals[:, :3], raw[:, :3], rtol=1e-6)
        np.testing.assert_allclose(rec.signals[:, 3:], raw[:, 3:] * math.pi / 180.0, rtol=1e-6, atol=1e-7)
    # deg/s -> rad/s by hand: left gyr_y is 180 deg/s, right gyr_x 360 deg/s
    assert recs[0].signals[0, 4] == pytest.approx(math.pi, rel=1e-6)
    assert recs[1].signals[0, 3] == pytest.approx(2 * math.pi, rel=1e-6)
    assert recs[0].events["toe_off"].tolist() == [15, 35]
    assert recs[0].events["heel_strike"].tolist() == [22, 42]
    assert recs[1].events["toe_off"].tolist() == [25]
    assert recs[1].events["heel_strike"].tolist() == [32]
    np.testing.assert_array_equal(recs[0].labels, expected_labels("left"))
    np.testing.assert_array_equal(recs[1].labels, expected_labels("right"))
    # outside the strides: unlabelled; on the shared boundary sample 30: stance
    assert recs[0].labels[:10].tolist() == [UNLABELED] * 10 and recs[0].labels[51:].tolist() == [UNLABELED] * 9
    assert recs[0].labels[30] == STANCE and recs[0].labels[50] == STANCE


def test_float_indices_no_index_columns_and_sensor_aliases(tmp_path):
    imu = write_imu(tmp_path / "imu.csv", sensors=("left", "right_foot"), index=False, float_index=True)
    ev = write_events(tmp_path / "ev.csv", index=False, floats=True, extra=False)
    recs = load_gaitmap(imu, events=ev)
    assert [r.location for r in recs] == ["left_foot", "right_foot"]
    assert recs[0].events["heel_strike"].tolist() == [22, 42]
    np.testing.assert_array_equal(recs[1].labels, expected_labels("right"))
    np.testing.assert_allclose(recs[1].signals[:, 0], _signals()[1][:, 0])
    imu2 = write_imu(tmp_path / "imu2.csv", float_index=True)
    assert len(read_imu_table(imu2)["left"]) == N


def test_pandas_index_name_row_is_skipped(tmp_path):
    p = write_imu(tmp_path / "imu.csv")
    lines = p.read_text().splitlines()
    lines[0] = "sensor" + lines[0]
    lines[1] = "axis" + lines[1]
    lines.insert(2, "n" + "," * 12)
    p.write_text("\n".join(lines) + "\n")
    assert len(read_imu_table(p)["right"]) == N


def test_other_foot_and_single_foot(tmp_path):
    imu = write_imu(tmp_path / "imu.csv")
    recs = load_gaitmap(imu, events=write_events(tmp_path / "ev.csv"), other_foot=True)
    assert recs[0].channels == AXES + [f"other_{a}" for a in AXES]
    np.testing.assert_array_equal(recs[0].signals[:, 6:], recs[1].signals[:, :6])
    np.testing.assert_array_equal(recs[1].signals[:, 6:], recs[0].signals[:, :6])
    assert recs[1].units[6:] == ["m/s^2"] * 3 + ["rad/s"] * 3
    one = write_imu(tmp_path / "one.csv", sensors=("left_sensor",))
    recs = load_gaitmap(one, events=write_events(tmp_path / "ev1.csv", strides=STRIDES[:2]))
    assert len(recs) == 1 and recs[0].location == "left_foot"
    with pytest.raises(DataError, match="other_foot needs both feet"):
        load_gaitmap(one, other_foot=True)
    # without an event table: unlabelled recordings
    assert all(r.labels is None and r.events == {} for r in load_gaitmap(imu))


def test_load_spec(tmp_path):
    imu = write_imu(tmp_path / "imu.csv")
    write_events(tmp_path / "ev.csv")
    recs = load_spec(f"gaitmap:{imu}?events=ev.csv&rate=100&subject=s7")
    assert [(r.location, r.subject, r.rate_hz) for r in recs] == [
        ("left_foot", "s7", 100.0),
        ("right_foot", "s7", 100.0),
    ]
    assert recs[0].events["toe_off"].tolist() == [15, 35]
    assert load_spec(f"gaitmap:{imu}?subjects=other") == []
    assert load_spec(f"gaitmap:{imu}", other_foot=True)[0].signals.shape == (N, 12)
    assert load_spec(f"gaitmap:{imu}")[0].rate_hz == 204.8
    with pytest.raises(DataError, match="unknown option"):
        load_spec(f"gaitmap:{imu}?feet=left")
    with pytest.raises(DataError, match="rate must be a number"):
        load_spec(f"gaitmap:{imu}?rate=fast")
    with pytest.raises(DataError, match="gaitmap:IMU.csv"):
        load_spec("nosuch:thing")


def _imu_text(tmp_path, mutate):
    p = write_imu(tmp_path / "imu.csv")
    lines = p.read_text().splitlines()
    p.write_text("\n".join(mutate(lines)) + "\n")
    return p


@pytest.mark.parametrize(
    "mutate, message",
    [
        (lambda ls: ls[2:], "no header rows"),
        (lambda ls: ls[1:], "only one header row"),
        (
            lambda ls: [ls[0].replace("right_sensor", "pelvis_sensor"), *ls[1:]],
            "unknown sensor name(s) 'pelvis_sensor'",
        ),
        (lambda ls: [ls[1], ls[0], *ls[2:]], "header row 1 holds axis names"),
        (lambda ls: [ls[0], ls[1].replace("gyr_z", "mag_z"), *ls[2:]], "lacks axis column(s) gyr_z"),
        (lambda ls: [*ls[:5], ls[5].replace("3.0", "oops", 1), *ls[6:]], "line 6, left acc_x: not a number: 'oops'"),
        (lambda ls: [*ls[:5], ls[5].replace("3.5", "nan", 1), *ls[6:]], "NaN or inf at line 6, left acc_y"),
        (lambda ls: [*ls[:5], ls[5].replace("3.5", "inf", 1), *ls[6:]], "NaN or inf"),
        (lambda ls: ls[:2], "no samples"),
    ],
)
def test_bad_imu_files(tmp_path, mutate, message):
    p = _imu_text(tmp_path, mutate)
    with pytest.raises(DataError) as exc:
        load_spec(f"gaitmap:{p}")
    assert str(p) in str(exc.value) and message in str(exc.value)


def test_unknown_sensor_message_lists_found_and_accepted(tmp_path):
    p = write_imu(tmp_path / "imu.csv", sensors=("left_sensor", "hip"))
    with pytest.raises(DataError) as exc:
        load_gaitmap(p)
    msg = str(exc.value)
    assert "found 'left_sensor', 'hip'" in msg and "accepted: left_sensor, left, left_foot, right_sensor" in msg


@pytest.mark.parametrize(
    "strides, message",
    [
        ([(0, "middle", 10, 30, 22, 15, 10)], "foot 'middle' is not left or right"),
        ([(0, "left", 10, 70, 22, 15, 10)], "event outside the recording (sample indices must be 0 .. 59)"),
        ([(0, "left", -1, 30, 22, 15, 10)], "event outside the recording"),
        ([(0, "left", 10, 30, 15, 22, 10)], "tc 22 is not before ic 15"),
        ([(0, "left", 10, 30, 22, 22, 10)], "tc 22 is not before ic 22"),
        ([(0, "left", 10, 30, 35, 15, 10)], "must lie inside the stride"),
        (
            [(0, "left", 10, 30, 22, 15, 10), (1, "left", 25, 45, 40, 33, 25)],
            "left strides '0' [10, 30] and '1' [25, 45] overlap",
        ),
        ([(0, "left", 10, 30, 22, 15, 10), (1, "left", 10, 30, 22, 15, 10)], "overlap"),
        ([(0, "left", 10, 30, 22, 15, "x")], "column 'min_vel': not a number"),
        ([(0, "left", 10, 30, 22.5, 15, 10)], "column 'ic': '22.5' is not a whole sample index"),
        ([(0, "left", 10, 30, 22, "nan", 10)], "column 'tc': 'nan' is not a whole sample index"),
    ],
)
def test_bad_event_tables(tmp_path, strides, message):
    imu = write_imu(tmp_path / "imu.csv")
    ev = write_events(tmp_path / "ev.csv", strides=strides)
    with pytest.raises(DataError) as exc:
        load_spec(f"gaitmap:{imu}?events={ev}")
    assert str(ev) in str(exc.value) and message in str(exc.value)


def test_event_table_missing_columns_and_absent_foot(tmp_path):
    imu = write_imu(tmp_path / "imu.csv", sensors=("left_sensor",))
    ev = tmp_path / "ev.csv"
    ev.write_text("s_id,foot,start,end,ic,min_vel\n0,left,10,30,22,10\n")
    with pytest.raises(DataError, match=r"ev.csv: event table lacks column\(s\) tc"):
        load_gaitmap(imu, events=ev)
    ev2 = write_events(tmp_path / "ev2.csv")
    with pytest.raises(DataError, match="strides of the right foot, but .* has no such sensor"):
        load_gaitmap(imu, events=ev2)
    with pytest.raises(DataError, match="nope.csv: file not found"):
        load_gaitmap(imu, events=tmp_path / "nope.csv")


def test_predicted_events_outside_the_strides_are_not_false_positives(tmp_path):
    recs = load_gaitmap(write_imu(tmp_path / "imu.csv"), events=write_events(tmp_path / "ev.csv"))
    rec = recs[0]
    pred = {"toe_off": np.array([2, 15, 35, 55]), "heel_strike": np.array([6, 22, 42, 58])}
    acc = MetricAccumulator(GAIT_CLASSES, tolerance_ms=20)
    acc.add(rec.labels, np.where(rec.labels < 0, STANCE, rec.labels), rec.events, pred, rec.rate_hz)
    m = acc.summary()
    assert m["events"]["toe_off"]["precision"] == 1.0 and m["events"]["heel_strike"]["n_pred"] == 2
    assert m["n_samples"] == 41


def test_strides_from_events():
    # swings [5, 9), [20, 26), [40, 47), [60, 66): strides around the middle two
    s = strides_from_events([5, 20, 40, 60], [9, 26, 47, 66])
    assert s == [((9 + 20) // 2, (26 + 40) // 2, 20, 26), ((26 + 40) // 2, (47 + 60) // 2, 40, 47)]
    # two toe offs in a row (30, 40) break the sequence: only the swing [20, 26) has both neighbours
    assert strides_from_events([5, 20, 30, 40, 60], [9, 26, 47, 66]) == [((9 + 20) // 2, (26 + 30) // 2, 20, 26)]
    assert strides_from_events([], []) == [] and strides_from_events([5], [9]) == []


def test_write_event_table_round_trip(tmp_path):
    events = {
        "left": {"toe_off": [100, 300, 500, 700, 900], "heel_strike": [160, 360, 560, 760, 960]},
        "right_foot": {"toe_off": [200, 400, 600], "heel_strike": [255, 455, 655]},
    }
    out = tmp_path / "sub" / "events.csv"
    n = write_event_table(out, events, rate_hz=100.0)
    assert n == 3 + 1
    assert [p.name for p in out.parent.iterdir()] == ["events.csv"]
    rows = list(csv.DictReader(out.open()))
    assert list(rows[0])[:7] == ["s_id", "foot", "start", "end", "ic", "tc", "min_vel"]
    assert [r["s_id"] for r in rows] == ["0", "1", "2", "3"]
    first = rows[0]
    assert (first["foot"], first["start"], first["tc"], first["ic"], first["end"], first["min_vel"]) == (
        "left", "230", "300", "360", "430", "230"
    )
    assert float(first["tc_s"]) == 3.0 and float(first["ic_s"]) == 3.6
    back = read_event_table(out)
    assert back["left"].tc.tolist() == [300, 500, 700] and back["left"].ic.tolist() == [360, 560, 760]
    assert back["right"].tc.tolist() == [400] and back["right"].ic.tolist() == [455]
    for foot, key in (("left", "left"), ("right", "right_foot")):
        strides = back[foot]
        for start, end, tc, ic in zip(strides.start, strides.end, strides.tc, strides.ic):
            assert start < tc < ic <= end
            # exactly one toe off and one heel strike of that foot inside the stride
            assert [t for t in events[key]["toe_off"] if start < t <= end] == [tc]
            assert [h for h in events[key]["heel_strike"] if start < h <= end] == [ic]
    # strides touch: one ends where the next starts
    assert back["left"].end[:-1].tolist() == back["left"].start[1:].tolist()


def test_write_event_table_labels_round_trip_through_the_loader(tmp_path):
    imu = write_imu(tmp_path / "imu.csv")
    ev = {"left": {"toe_off": [5, 15, 35, 52], "heel_strike": [8, 22, 42, 55]}}
    times = {"left": {"toe_off": [1, 2, 3, 4], "heel_strike": [1.5, 2.5, 3.5, 4.5]}}
    write_event_table(tmp_path / "ev.csv", ev, rate_hz=204.8, timestamps_by_foot=times)
    rec = load_gaitmap(imu, events=tmp_path / "ev.csv")[0]
    assert rec.events["toe_off"].tolist() == [15, 35] and rec.events["heel_strike"].tolist() == [22, 42]
    assert rec.labels[(8 + 15) // 2] == STANCE and rec.labels[(8 + 15) // 2 - 1] == UNLABELED
    rows = list(csv.DictReader((tmp_path / "ev.csv").open()))
    assert [float(r["tc_s"]) for r in rows] == [2.0, 3.0] and [float(r["ic_s"]) for r in rows] == [2.5, 3.5]


def test_write_event_table_errors_and_max_stride(tmp_path):
    out = tmp_path / "e.csv"
    with pytest.raises(DataError, match="foot 'middle'"):
        write_event_table(out, {"middle": {"toe_off": [1], "heel_strike": [2]}}, 100.0)
    with pytest.raises(DataError, match="whole sample indices"):
        write_event_table(out, {"left": {"toe_off": [1.5], "heel_strike": [2]}}, 100.0)
    with pytest.raises(DataError, match="2 timestamps for 1 events"):
        write_event_table(out, {"left": {"toe_off": [1], "heel_strike": [2]}}, 100.0,
                          timestamps_by_foot={"left": {"toe_off": [0.1, 0.2], "heel_strike": [0.3]}})
    assert not out.exists()
    # a 14 s pause between the swings at 500 and 2000: the two strides next to it last 8.5 s
    ev = {"left": {"toe_off": [100, 300, 500, 2000, 2200], "heel_strike": [160, 360, 560, 2060, 2260]}}
    assert write_event_table(out, ev, 100.0) == 3
    assert write_event_table(out, ev, 100.0, max_stride_s=5.0) == 1
    assert read_event_table(out)["left"].tc.tolist() == [300]
    assert list(tmp_path.iterdir()) == [out]
