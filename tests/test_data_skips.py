"""Datasets of many trials leave out a trial they cannot use, say so once, and keep going."""

import json
import re
import shutil
import subprocess
import sys
import warnings

import numpy as np
import pytest

from gaitedge.data import Recordings, SkippedTrialWarning, load_ipol, load_spec, load_trial, save_csv, synth_dataset
from gaitedge.errors import DataError
from tests.conftest import write_ipol_trial

SENSOR = "frame=sensor"


def _edit_meta(folder, stem, **changes):
    p = folder / f"{stem}.json"
    meta = json.loads(p.read_text())
    meta.update(changes)
    p.write_text(json.dumps(meta))


def _nan_block(folder, stem, code, rows=range(10, 30)):
    p = folder / f"{stem}_{code}.txt"
    lines = p.read_text().splitlines()
    for i in rows:
        cols = lines[2 + i].split("\t")
        cols[1:4] = ["nan", "inf", "nan"]
        lines[2 + i] = "\t".join(cols)
    p.write_text("\n".join(lines) + "\n")


def _truncate(folder, stem, code):
    p = folder / f"{stem}_{code}.txt"
    text = p.read_text()
    cut = text.index("\n", len(text) // 2) + 20  # in the middle of a sample line
    p.write_text(text[:cut])


#: one bad trial of each kind: (subject, how to spoil it, the file at fault, the reason)
BAD = {
    "trial_end_past_recording": (2, lambda d: _edit_meta(d, "2-1", TrialBoundaries=[100, 700]),
                                 "2-1.json", r"TrialBoundaries end 700 beyond the 600 samples recorded"),
    "swing_past_recording": (3, lambda d: _edit_meta(d, "3-1", LeftFootEvents=[[100, 140], [450, 650]]),
                             "3-1.json", r"left swing \[450, 650\) of the trial ends past the 600 samples"),
    "nan_block": (4, lambda d: _nan_block(d, "4-1", "rf"),
                  "4-1_rf.txt", r"non-finite value at sample 10, column Acc_X"),
    "truncated_file": (5, lambda d: _truncate(d, "5-1", "lf"), "5-1_lf.txt", r"malformed sample line"),
    "missing_foot_file": (6, lambda d: (d / "6-1_rf.txt").unlink(), "6-1_rf.txt", r"file not found"),
}


def _folder(tmp_path, kinds=tuple(BAD)):
    d = tmp_path / "GaitData"
    write_ipol_trial(d, 1, 1, seed=1)
    for kind in kinds:
        subject, spoil, _, _ = BAD[kind]
        write_ipol_trial(d, subject, 1, seed=subject)
        spoil(d)
    return d


def _skip_warnings(record):
    return [str(w.message) for w in record if issubclass(w.category, SkippedTrialWarning)]


def _assert_same(a, b):
    assert a.source == b.source and a.location == b.location and a.subject == b.subject
    assert a.channels == b.channels and a.rate_hz == b.rate_hz
    np.testing.assert_array_equal(a.signals, b.signals)
    np.testing.assert_array_equal(a.labels, b.labels)
    assert {k: v.tolist() for k, v in a.events.items()} == {k: v.tolist() for k, v in b.events.items()}


@pytest.mark.parametrize("kind", sorted(BAD))
def test_one_bad_trial_is_skipped_with_one_warning(tmp_path, kind):
    d = _folder(tmp_path, [kind])
    _, _, name, reason = BAD[kind]
    with pytest.warns(SkippedTrialWarning) as record:
        recs = load_ipol(tmp_path, frame="sensor")
    msgs = _skip_warnings(record)
    assert len(msgs) == 1 and "\n" not in msgs[0]
    assert re.fullmatch(rf"skipped {re.escape(str(d / name))}: .*{reason}.*", msgs[0]), msgs[0]
    assert isinstance(recs, Recordings) and len(recs) == 2 and {r.subject for r in recs} == {"1"}
    assert [s.source for s in recs.skipped] == [str(d / name)]
    assert re.search(reason, recs.skipped[0].reason) and not recs.skipped[0].reason.startswith(str(d))
    # strict: the error it would have been
    with pytest.raises(DataError, match=rf"{re.escape(name)}: .*{reason}"):
        load_ipol(tmp_path, frame="sensor", strict=True)
    with pytest.raises(DataError, match=rf"{re.escape(name)}: .*{reason}"):
        load_spec(f"ipol:{tmp_path}?{SENSOR}&strict=true")


def test_every_kind_at_once_loads_the_good_trial_whole(tmp_path):
    d = _folder(tmp_path)
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        recs = load_spec(f"ipol:{tmp_path}?{SENSOR}")
    msgs = _skip_warnings(record)
    assert len(msgs) == len(BAD) == len(recs.skipped)
    for kind, (_, _, name, reason) in BAD.items():
        assert sum(str(d / name) in m for m in msgs) == 1, kind
        (s,) = [s for s in recs.skipped if s.source == str(d / name)]
        assert re.search(reason, s.reason) and s.to_dict() == {"source": s.source, "reason": s.reason}
    # nothing half-loaded: exactly the good trial, as loading it alone gives it
    alone = load_trial(tmp_path, 1, 1, frame="sensor")
    assert len(recs) == len(alone) == 2
    for a, b in zip(recs, alone):
        _assert_same(a, b)
    with pytest.raises(DataError):
        load_spec(f"ipol:{tmp_path}?{SENSOR}", strict=True)
    with pytest.raises(DataError, match="strict must be true or false"):
        load_spec(f"ipol:{tmp_path}?{SENSOR}&strict=maybe")


def test_every_trial_skipped_is_an_error_naming_the_reasons(tmp_path):
    d = _folder(tmp_path, ["trial_end_past_recording", "nan_block"])
    (d / "1-1.json").unlink()
    for code in ("lf", "rf", "lb"):
        (d / f"1-1_{code}.txt").unlink()
    with pytest.warns(SkippedTrialWarning), pytest.raises(DataError) as exc:
        load_ipol(tmp_path, frame="sensor")
    msg = str(exc.value)
    assert "no usable trial, all 2 skipped" in msg
    assert "2-1.json: TrialBoundaries end 700 beyond" in msg and "4-1_rf.txt: non-finite value" in msg


def test_subjects_not_asked_for_are_not_read(tmp_path):
    _folder(tmp_path)
    with warnings.catch_warnings():
        warnings.simplefilter("error", SkippedTrialWarning)
        recs = load_spec(f"ipol:{tmp_path}?{SENSOR}&subjects=1")
    assert len(recs) == 2 and recs.skipped == []


def test_unusable_mounting_skips_the_trial_in_the_canonical_frame(tmp_path, ipol_root):
    """A trial without standing cannot be rotated into the canonical frame: skipped; the real trial loads."""
    d = tmp_path / "GaitData"
    d.mkdir()
    for name in ("1-1.json", "1-1_lf.txt", "1-1_rf.txt", "1-1_lb.txt"):
        shutil.copy(ipol_root / "GaitData" / name, d / name)
    write_ipol_trial(d, 2, 1)  # noise: no standing still
    with pytest.warns(SkippedTrialWarning, match=r"skipped .*2-1_lf\.txt: only .* standing still"):
        recs = load_spec(f"ipol:{tmp_path}")
    assert {r.subject for r in recs} == {"1"} and all(r.frame == "foot-canonical" for r in recs)
    assert len(recs.skipped) == 1 and recs.skipped[0].source == str(d / "2-1_lf.txt")
    for a, b in zip(recs, load_trial(tmp_path, 1, 1)):
        _assert_same(a, b)
    with pytest.raises(DataError, match="standing still"):
        load_spec(f"ipol:{tmp_path}?strict=true")


def _csv_folder(tmp_path):
    folder = tmp_path / "csv"
    folder.mkdir()
    for i, rec in enumerate(synth_dataset(subjects=2, trials=1)[::2]):
        save_csv(rec, folder / f"s{i + 1}.csv")
    rec = synth_dataset(subjects=3, trials=1)[4]
    rec.signals[50:60, 1] = np.nan
    save_csv(rec, folder / "nan.csv")
    text = (folder / "s1.csv").read_text()
    (folder / "cut.csv").write_text(text[: text.index("\n", len(text) // 2) + 5])
    return folder


def test_csv_folder_skips_a_bad_file(tmp_path):
    folder = _csv_folder(tmp_path)
    spec = f"csv:{folder}?label=label&time=time"
    with pytest.warns(SkippedTrialWarning) as record:
        recs = load_spec(spec)
    msgs = _skip_warnings(record)
    assert len(msgs) == 2
    assert any(m.startswith(f"skipped {folder / 'nan.csv'}: NaN or inf at line 52") for m in msgs)
    assert any(m.startswith(f"skipped {folder / 'cut.csv'}: line ") for m in msgs)
    assert sorted(r.subject for r in recs) == ["s1", "s2"]
    assert sorted(s.source for s in recs.skipped) == [str(folder / "cut.csv"), str(folder / "nan.csv")]
    for rec in recs:
        alone = load_spec(f"csv:{rec.source}?label=label&time=time")[0]
        _assert_same(rec, alone)
    with pytest.raises(DataError, match="cut.csv: line"):
        load_spec(spec + "&strict=true")
    with pytest.raises(DataError, match="cut.csv: line"):
        load_spec(spec, strict=True)
    # a single bad file stays an error
    with pytest.raises(DataError, match="nan.csv: NaN or inf"):
        load_spec(f"csv:{folder / 'nan.csv'}?label=label&time=time")
    # files of other subjects are not read
    with warnings.catch_warnings():
        warnings.simplefilter("error", SkippedTrialWarning)
        assert [r.subject for r in load_spec(spec + "&subjects=s2")] == ["s2"]


def test_training_records_the_skipped_files(tmp_path):
    from gaitedge.training.train import prepare_data, train
    from tiny import tiny_config

    folder = tmp_path / "csv"
    folder.mkdir()
    for rec in synth_dataset(subjects=3, trials=1, other_foot=True)[::2]:
        save_csv(rec, folder / f"{rec.subject}.csv")
    (folder / "broken.csv").write_text("time,acc_x,label\n0,1,rest\n0.01,x,rest\n")
    cfg = tiny_config(epochs=1, steps_per_epoch=2)
    cfg.data.train = f"csv:{folder}?label=label&time=time"
    cfg.data.val_subjects = ["syn3"]
    with pytest.warns(SkippedTrialWarning, match="broken.csv"):
        data = prepare_data(cfg)
    assert [s.source for s in data.skipped] == [str(folder / "broken.csv")]
    with pytest.raises(DataError, match="broken.csv: line 3"):
        prepare_data(cfg, strict=True)
    with pytest.warns(SkippedTrialWarning):
        _, metrics, out = train(cfg, out_dir=tmp_path / "run", progress=False, log=lambda *a, **k: None)
    saved = json.loads((out / "metrics.json").read_text())
    assert saved["skipped"] == metrics["skipped"] == [
        {"source": str(folder / "broken.csv"), "reason": "line 3, column 'acc_x': not a number: 'x'"}
    ]


def _cli(*args):
    return subprocess.run([sys.executable, "-m", "gaitedge", *args], capture_output=True, text=True, timeout=300)


def test_data_info_lists_the_skipped_trials_and_strict_fails(tmp_path):
    d = _folder(tmp_path)
    r = _cli("data", "info", f"ipol:{tmp_path}?{SENSOR}")
    assert r.returncode == 0, r.stderr
    lines = r.stderr.splitlines()
    assert len(lines) == len(BAD) and all(ln.startswith("gaitedge: warning: skipped ") for ln in lines), r.stderr
    for _, _, name, reason in BAD.values():
        assert sum(re.fullmatch(rf"gaitedge: warning: skipped {re.escape(str(d / name))}: .*{reason}.*", ln)
                   is not None for ln in lines) == 1, (name, r.stderr)
        assert f"  {d / name}: " in r.stdout
    assert f"skipped {len(BAD)} trial(s)" in r.stdout and r.stdout.startswith("2 recordings, 1 subjects: 1")
    r = _cli("data", "info", f"ipol:{tmp_path}?{SENSOR}", "--strict")
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert r.stderr.startswith("gaitedge: error: ") and len(r.stderr.splitlines()) == 1
    r = _cli("data", "info", f"ipol:{tmp_path}?{SENSOR}&strict=true")
    assert r.returncode == 2 and "Traceback" not in r.stderr and len(r.stderr.splitlines()) == 1
