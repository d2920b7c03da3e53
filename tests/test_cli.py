"""End to end through the real command line (subprocesses), and bad input."""

import json
import subprocess
import sys

import numpy as np
import pytest

from gaitedge.checkpoint import load_checkpoint
from gaitedge.data import load_spec, save_csv
from tiny import TINY_TRAIN

TINY = TINY_TRAIN


def run(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "gaitedge", *args], capture_output=True, text=True, cwd=cwd,
                          timeout=300)


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("run") / "gru"
    r = run("train", *TINY, "--epochs", "10", "--out", str(out), "--no-progress",
            "--test", "synthetic?n=7&trials=1&subjects=6-7")
    assert r.returncode == 0, r.stderr
    return out, r


def test_train_writes_a_complete_run(tiny_run):
    out, r = tiny_run
    for name in ("model.pt", "config.toml", "metrics.json", "curves.png", "confusion.png"):
        assert (out / name).is_file(), name
    m = json.loads((out / "metrics.json").read_text())
    assert m["val_subjects"] == ["syn5"] and "syn5" not in m["train_subjects"]
    assert len(m["history"]) == m["epochs_run"] == 10
    # it learned: far above chance (1/3) on held-out synthetic subjects
    assert m["test"]["macro_f1"] > 0.8, m["test"]["macro_f1"]
    assert m["test"]["event_f1"] > 0.6
    assert m["test"]["subjects"] == ["syn6", "syn7"]
    assert "run directory" in r.stdout and str(out) in r.stdout
    tm = load_checkpoint(out)
    assert tm.channels[:6] == ["acc_x", "acc_y", "acc_z", "gyr_x", "gyr_y", "gyr_z"] and len(tm.channels) == 12
    assert tm.rate_hz == 100.0 and tm.classes == ("rest", "stance", "swing")
    assert len(tm.normalizer.mean) == 12


def test_training_is_deterministic(tiny_run, tmp_path):
    out, _ = tiny_run
    r = run("train", *TINY, "--epochs", "2", "--out", str(tmp_path / "a"), "--no-progress")
    r2 = run("train", *TINY, "--epochs", "2", "--out", str(tmp_path / "b"), "--no-progress")
    assert r.returncode == 0 and r2.returncode == 0
    a = load_checkpoint(tmp_path / "a")
    b = load_checkpoint(tmp_path / "b")
    assert a.weights_hash() == b.weights_hash()


def test_evaluate_on_csv_of_held_out_subject(tiny_run, tmp_path):
    out, _ = tiny_run
    rec = load_spec("synthetic?n=8&trials=1&subjects=8", other_foot=True)[0]
    save_csv(rec, tmp_path / "s8.csv")
    r = run("evaluate", str(out), "--data", f"csv:{tmp_path / 's8.csv'}?label=label&time=time",
            "--out", str(tmp_path / "e.json"))
    assert r.returncode == 0, r.stderr
    m = json.loads((tmp_path / "e.json").read_text())
    assert m["n_recordings"] == 1 and m["macro_f1"] > 0.7
    assert "macro-F1" in r.stdout and (tmp_path / "e.png").is_file()


def test_evaluate_lists_skipped_trials_and_strict_fails(tiny_run, tmp_path):
    from test_data_skips import _folder

    out, _ = tiny_run
    d = _folder(tmp_path / "ipol", ["trial_end_past_recording", "nan_block"])
    spec = f"ipol:{tmp_path / 'ipol'}?frame=sensor"
    r = run("evaluate", str(out), "--data", spec, "--out", str(tmp_path / "e.json"))
    assert r.returncode == 0, r.stderr
    m = json.loads((tmp_path / "e.json").read_text())
    assert m["n_recordings"] == 2 and m["subjects"] == ["1"]
    assert [s["source"] for s in m["skipped"]] == [str(d / "2-1.json"), str(d / "4-1_rf.txt")]
    assert m["skipped"][0]["reason"] == "TrialBoundaries end 700 beyond the 600 samples recorded"
    assert m["skipped"][1]["reason"].startswith("non-finite value at sample 10")
    warned = [ln for ln in r.stderr.splitlines() if ln.startswith("gaitedge: warning: skipped ")]
    assert len(warned) == 2 and "2 trial(s) skipped" in r.stdout
    r = run("evaluate", str(out), "--data", spec, "--out", str(tmp_path / "s.json"), "--strict")
    assert r.returncode == 2 and "Traceback" not in r.stderr and not (tmp_path / "s.json").exists()
    assert "gaitedge: error: " in r.stderr and "2-1.json: TrialBoundaries end 700" in r.stderr


def test_refuses_to_overwrite_a_run(tiny_run):
    out, _ = tiny_run
    r = run("train", *TINY, "--epochs", "1", "--out", str(out))
    assert r.returncode == 2 and "already holds a trained model" in r.stderr


@pytest.mark.parametrize(
    "args, message",
    [
        (["train", "--model", "transformer"], "unknown model 'transformer'"),
        (["train", "--data", "csv:/no/such/file.csv"], "/no/such/file.csv: file not found"),
        (["train", "--data", "mystery"], "unknown data spec 'mystery'"),
        (["train", "--config", "/no/such.toml"], "/no/such.toml: config file not found"),
        (["train", "--set", "train.epochs=0"], "train.epochs must be >= 1"),
        (["evaluate", "/no/run", "--data", "synthetic"], "no checkpoint here"),
        (["data", "fetch", "ipol", "--url", "file:///no/such.zip", "--dest", "/tmp/gaitedge-none"], "download failed"),
    ],
)
def test_bad_input_is_one_clear_line(args, message):
    r = run(*args)
    assert r.returncode == 2
    assert message in r.stderr
    assert "Traceback" not in r.stderr


def test_bad_config_key_and_nan_csv(tmp_path):
    cfg = tmp_path / "x.toml"
    cfg.write_text("[model]\nname = 'gru'\nhiden = 3\n")
    r = run("train", "--config", str(cfg))
    assert r.returncode == 2 and "unknown key 'hiden' in [model]" in r.stderr and str(cfg) in r.stderr
    rec = load_spec("synthetic?n=1&trials=1")[0]
    rec.signals[5, 2] = np.nan
    save_csv(rec, tmp_path / "nan.csv")
    r = run("train", "--data", f"csv:{tmp_path / 'nan.csv'}?label=label&time=time")
    assert r.returncode == 2 and "nan.csv" in r.stderr and "NaN" in r.stderr and "Traceback" not in r.stderr
    assert not list(tmp_path.glob("runs/*")), "nothing written on bad input"


def test_too_short_recording(tmp_path):
    (tmp_path / "short.csv").write_text("time,acc_x,label\n0,1,rest\n0.01,1,rest\n")
    r = run("train", "--data", f"csv:{tmp_path / 'short.csv'}?label=label&time=time", cwd=tmp_path)
    assert r.returncode == 2 and "short.csv: only 2 samples" in r.stderr
    assert not (tmp_path / "runs").exists()


def test_models_and_version():
    r = run("models")
    assert r.returncode == 0 and set(r.stdout.split()) >= {"lstm", "gru", "elman"}
    assert run("--version").stdout.startswith("gaitedge ")
