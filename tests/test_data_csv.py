import numpy as np
import pytest

from gaitedge.data import load_csv, load_spec, save_csv, synth_dataset
from gaitedge.errors import DataError


def _write(path, text):
    path.write_text(text)
    return path


def test_roundtrip_with_labels(tmp_path):
    rec = synth_dataset(subjects=1, trials=1)[0]
    save_csv(rec, tmp_path / "a.csv")
    back = load_csv(tmp_path / "a.csv", label_column="label", time_column="time")
    assert back.rate_hz == pytest.approx(100.0)
    assert back.channels == rec.channels
    np.testing.assert_allclose(back.signals, rec.signals, rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(back.labels, rec.labels)
    assert back.events["toe_off"].tolist() == rec.events["toe_off"].tolist()
    assert back.events["heel_strike"].tolist() == rec.events["heel_strike"].tolist()


def test_columns_by_name_and_rate(tmp_path):
    p = _write(tmp_path / "b.csv", "gz,ax,junk\n1,2,x\n3,4,y\n")
    rec = load_csv(p, columns=["ax", "gz"], rate_hz=50)
    np.testing.assert_array_equal(rec.signals, [[2, 1], [4, 3]])
    assert rec.rate_hz == 50 and rec.units == ["m/s^2", "rad/s"]
    spec_recs = load_spec(f"csv:{p}?columns=ax,gz&rate=50")
    np.testing.assert_array_equal(spec_recs[0].signals, rec.signals)


@pytest.mark.parametrize(
    "text, kwargs, message",
    [
        ("ax,ay\n1,2\n", {"columns": ["ax", "az"], "rate_hz": 100}, "missing column"),
        ("ax,ay\n1,nan\n", {"rate_hz": 100}, "NaN or inf at line 2, column 'ay'"),
        ("ax,ay\n1,oops\n", {"rate_hz": 100}, "not a number"),
        ("ax,ay\n1,2,3\n", {"rate_hz": 100}, "line 2 has 3 fields"),
        ("ax,ay\n1,2\n", {}, "sampling rate"),
        ("ax\n", {"rate_hz": 100}, "header row and at least one data row"),
        ("t,ax\n0,1\n0.01,2\n0.5,3\n", {"time_column": "t"}, "not evenly spaced"),
        ("t,ax,label\n0,1,stance\n0.01,2,walk\n", {"time_column": "t", "label_column": "label"}, "unknown label 'walk'"),
        ("ax,ay\n1,2\n", {"rate_hz": 100, "label_column": "label"}, "no column 'label'"),
    ],
)
def test_bad_csv(tmp_path, text, kwargs, message):
    p = _write(tmp_path / "bad.csv", text)
    with pytest.raises(DataError, match=message) as exc:
        load_csv(p, **kwargs)
    assert "bad.csv" in str(exc.value)


def test_missing_file(tmp_path):
    with pytest.raises(DataError, match="file not found"):
        load_csv(tmp_path / "none.csv", rate_hz=100)
