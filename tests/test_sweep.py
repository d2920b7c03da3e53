"""Hyperparameter sweeps: parsing, search spaces, parallel trials, failures, outputs."""

import csv
import subprocess
import sys

import numpy as np
import pytest

from gaitedge.config import Config, load_config
from gaitedge.errors import ConfigError
from gaitedge.sweep import Choice, Range, grid_trials, parse_grid, parse_space, random_trials, run_sweep

BASE = """
[data]
train = "synthetic?n=5&trials=2"
val_subjects = ["syn5"]
test = "synthetic?n=7&trials=1&subjects=6-7"
[model]
hidden = 12
[train]
epochs = 2
steps_per_epoch = 6
batch_size = 8
window_s = 2.0
threads = 2
"""


def test_grid_and_space_parsing():
    grid = parse_grid(["train.lr=0.001,3e-3", "data.val_subjects=['1','2'],['3']", "model.name=gru,lstm"])
    assert grid == {"train.lr": [0.001, 0.003], "data.val_subjects": [["1", "2"], ["3"]], "model.name": ["gru", "lstm"]}
    trials = grid_trials(grid)
    assert len(trials) == 8 and trials[0] == {"train.lr": 0.001, "data.val_subjects": ["1", "2"], "model.name": "gru"}
    assert trials[1]["model.name"] == "lstm"  # last key varies fastest
    space = parse_space(["train.lr=1e-4:1e-2:log", "model.hidden=16:128", "train.dropout_like=0.0:0.5",
                         "model.name=gru,lstm"])
    assert space["train.lr"] == Range(1e-4, 1e-2, log=True)
    assert space["model.hidden"].integer and not space["train.dropout_like"].integer
    assert space["model.name"] == Choice(("gru", "lstm"))
    draws = random_trials(space, 200, seed=3)
    assert draws == random_trials(space, 200, seed=3)
    lr = np.array([d["train.lr"] for d in draws])
    assert lr.min() >= 1e-4 and lr.max() <= 1e-2 and (lr < 1e-3).mean() > 0.3  # log-uniform
    assert all(isinstance(d["model.hidden"], int) and 16 <= d["model.hidden"] <= 128 for d in draws)
    assert {d["model.name"] for d in draws} == {"gru", "lstm"}
    for bad in (["train.lr"], ["lr=1,2"], ["train.lr="]):
        with pytest.raises(ConfigError):
            parse_grid(bad)
    with pytest.raises(ConfigError, match="lo < hi"):
        parse_space(["train.lr=0.1:0.01"])


def test_unknown_key_stops_the_sweep_before_any_trial(tmp_path):
    with pytest.raises(ConfigError, match="unknown key 'lrate' in \\[train\\]"):
        run_sweep(Config(), [{"train.lrate": 0.1}], out_dir=tmp_path / "s")
    assert not (tmp_path / "s").exists()


def test_trial_past_its_time_limit_is_recorded(tmp_path):
    cfg = load_config_text(tmp_path, BASE)
    res = run_sweep(cfg, [{"train.epochs": 50}], out_dir=tmp_path / "s", trial_timeout_s=0.5, log=lambda *_: None)
    assert res.best is None and res.rows[0]["status"] == "failed" and "timed out" in res.rows[0]["error"]


def load_config_text(tmp_path, text) -> Config:
    p = tmp_path / "base.toml"
    p.write_text(text)
    return load_config(p)


def test_sweep_cli_runs_trials_in_parallel_and_survives_failures(tmp_path):
    (tmp_path / "base.toml").write_text(BASE)
    out = tmp_path / "sweep"
    r = subprocess.run(
        [sys.executable, "-m", "gaitedge", "sweep", str(tmp_path / "base.toml"),
         "--grid", "train.lr=0.003,0.02,-1", "--grid", "model.hidden=12,0", "--workers", "2", "--out", str(out)],
        capture_output=True, text=True, timeout=300,
    )
    assert r.returncode == 0, r.stdout + r.stderr
    rows = list(csv.DictReader(open(out / "trials.csv")))
    assert [int(x["trial"]) for x in rows] == list(range(6))
    by = {(x["train.lr"], x["model.hidden"]): x for x in rows}
    ok = [by[("0.003", "12")], by[("0.02", "12")]]
    assert all(x["status"] == "ok" and 0 <= float(x["score"]) <= 1 and x["test_macro_f1"] for x in ok)
    # a value the config refuses, and one that fails inside training, are recorded; the sweep goes on
    assert by[("-1", "12")]["status"] == "failed" and "train.lr must be > 0" in by[("-1", "12")]["error"]
    assert by[("0.003", "0")]["status"] == "failed" and "hidden >= 1" in by[("0.003", "0")]["error"]
    assert (out / "trial-001" / "train.log").read_text().count("Traceback") == 1
    best = max(ok, key=lambda x: float(x["score"]))
    cfg = load_config(out / "best.toml")
    assert cfg.train.lr == float(best["train.lr"]) and cfg.model.hidden == 12
    assert cfg.train.threads == 2  # the base config's own value, not the per-trial 1
    # printed summary: best first, failed last
    table = r.stdout[r.stdout.index("val score"):].splitlines()[2:8]
    assert table[0].split()[0] == best["trial"] and all("failed" in line for line in table[2:])
    assert "2 of 6 trials ok" in r.stdout
    assert (out / "trial-000" / "run" / "model.pt").is_file()
