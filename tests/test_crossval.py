from gaitedge.config import Config
from gaitedge.training.crossval import cross_validate, mean_sd
from gaitedge.data import synth_dataset


def test_folds_hold_out_their_subjects(tmp_path):
    recs = synth_dataset(subjects=4, trials=1, seed=2, other_foot=False)
    cfg = Config()
    cfg.model.hidden = 8
    cfg.train.epochs = 1
    cfg.train.steps_per_epoch = 2
    cfg.train.batch_size = 4
    cfg.train.window_s = 2.0
    cfg.train.threads = 1
    rows = list(cross_validate(cfg, recs, k=2, seed=0, out_root=tmp_path, extra_eval={"again": recs},
                               log=lambda *_: None))
    assert len(rows) == 2
    assert sorted(s for r in rows for s in r["test_subjects"]) == ["syn1", "syn2", "syn3", "syn4"]
    import json

    for r in rows:
        m = json.loads((tmp_path / f"fold{r['fold']}" / "metrics.json").read_text())
        trained_on = set(m["train_subjects"]) | set(m["val_subjects"])
        assert trained_on.isdisjoint(r["test_subjects"])
        assert r["again"]["macro_f1"] == r["macro_f1"]  # same recordings, same figures
    skipped = list(cross_validate(cfg, recs, k=2, seed=0, out_root=tmp_path,
                                  skip={tuple(rows[0]["test_subjects"])}, log=lambda *_: None))
    assert [r["fold"] for r in skipped] == [1]
    mean, sd = mean_sd(rows, "macro_f1")
    assert 0.0 <= mean <= 1.0 and sd >= 0.0


def test_cv_command_runs_folds_and_refuses_bad_input(tmp_path):
    import json
    import subprocess
    import sys

    cfg = tmp_path / "tiny.toml"
    cfg.write_text(
        "[data]\ntrain = \"synthetic?n=4&trials=1&seed=2\"\nother_foot = false\n"
        "[model]\nhidden = 8\n[train]\nepochs = 1\nsteps_per_epoch = 2\nbatch_size = 4\nwindow_s = 2.0\n"
        "threads = 1\n"
    )

    def run(*args):
        return subprocess.run([sys.executable, "-m", "gaitedge", "cv", *args], capture_output=True, text=True,
                              timeout=300)

    out = tmp_path / "cv"
    r = run(str(cfg), "--folds", "2", "--out", str(out))
    assert r.returncode == 0, r.stderr
    res = json.loads((out / "cv.json").read_text())
    assert len(res["folds"]) == 2
    assert sorted(s for f in res["folds"] for s in f["test_subjects"]) == ["syn1", "syn2", "syn3", "syn4"]
    assert "macro-F1" in r.stdout and "±" in r.stdout
    again = run(str(cfg), "--folds", "2", "--out", str(out))
    assert again.returncode == 2 and "already holds a cross-validation" in again.stderr
    assert "Traceback" not in again.stderr
    too_many = run(str(cfg), "--folds", "9", "--out", str(tmp_path / "x"))
    assert too_many.returncode == 2 and "fewer than --folds 9" in too_many.stderr
