"""Hyperparameter sweeps on Optuna studies: parsing, plans, parallel and shared trials, pruning, resume, failures."""

import csv
import glob
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

pytest.importorskip("optuna")

from gaitedge.config import Config, load_config  # noqa: E402
from gaitedge.errors import ConfigError  # noqa: E402
from gaitedge.training.sweep import Choice, Range, make_plan, parse_grid, parse_space, run_sweep  # noqa: E402

BASE = """
[data]
train = "synthetic?n=5&trials=2"
val_subjects = ["syn5"]
test = "synthetic?n=7&trials=1&subjects=6-7"
[model]
hidden = 8
[train]
epochs = 2
steps_per_epoch = 3
batch_size = 8
window_s = 2.0
threads = 2
"""
# no test set: the shared-study tests only count and compare trials
SMALL = BASE.replace('test = "synthetic?n=7&trials=1&subjects=6-7"\n', "")
GRID4 = ["--grid", "train.lr=0.003,0.01,0.02,0.03"]


def sweep_cmd(base: Path, *args: str) -> list[str]:
    return [sys.executable, "-m", "gaitedge", "sweep", str(base), *args]


def read_rows(path: Path) -> list[dict]:
    return list(csv.DictReader(open(path)))


def write_base(tmp_path: Path, text: str = BASE) -> Path:
    p = tmp_path / "base.toml"
    p.write_text(text)
    return p


def test_grid_and_space_parsing():
    grid = parse_grid(["train.lr=0.001,3e-3", "data.val_subjects=['1','2'],['3']", "model.name=gru,lstm"])
    assert grid == {"train.lr": [0.001, 0.003], "data.val_subjects": [["1", "2"], ["3"]], "model.name": ["gru", "lstm"]}
    plan = make_plan(grid=grid)
    assert plan.sampler == "grid" and plan.n_trials == 8
    assert plan.signature()["space"]["data.val_subjects"] == {"choice": ['["1", "2"]', '["3"]']}
    space = parse_space(["train.lr=1e-4:1e-2:log", "model.hidden=16:128", "train.dropout_like=0.0:0.5",
                         "model.name=gru,lstm"])
    assert space["train.lr"] == Range(1e-4, 1e-2, log=True)
    assert space["model.hidden"].integer and not space["train.dropout_like"].integer
    assert space["model.name"] == Choice(("gru", "lstm"))
    assert make_plan(space=space, n_trials=5, sampler="tpe").n_trials == 5
    assert make_plan(space={"model.name": Choice(("gru", "lstm"))}, sampler="grid").n_trials == 2
    for bad in (["train.lr"], ["lr=1,2"], ["train.lr="]):
        with pytest.raises(ConfigError):
            parse_grid(bad)
    with pytest.raises(ConfigError, match="lo < hi"):
        parse_space(["train.lr=0.1:0.01"])
    with pytest.raises(ConfigError, match="--sampler grid needs --grid"):
        make_plan(space=space, n_trials=4, sampler="grid")
    with pytest.raises(ConfigError, match="N >= 1"):
        make_plan(space=space, n_trials=0)


def test_unknown_key_stops_the_sweep_before_any_trial(tmp_path):
    with pytest.raises(ConfigError, match="unknown key 'lrate' in \\[train\\]"):
        run_sweep(Config(), [{"train.lrate": 0.1}], out_dir=tmp_path / "s")
    assert not (tmp_path / "s").exists()


def test_trial_past_its_time_limit_is_recorded(tmp_path):
    cfg = load_config(write_base(tmp_path))
    res = run_sweep(cfg, [{"train.epochs": 50}], out_dir=tmp_path / "s", trial_timeout_s=0.5, log=lambda *_: None)
    assert res.best is None and res.rows[0]["status"] == "failed" and "timed out" in res.rows[0]["error"]


def test_sweep_cli_runs_trials_in_parallel_and_survives_failures(tmp_path):
    base = write_base(tmp_path)
    out = tmp_path / "sweep"
    r = subprocess.run(sweep_cmd(base, "--grid", "train.lr=0.003,0.02,-1", "--grid", "model.name=gru,nope",
                                 "--workers", "2", "--out", str(out)),
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    rows = read_rows(out / "trials.csv")
    assert [int(x["trial"]) for x in rows] == list(range(6))
    by = {(x["train.lr"], x["model.name"]): x for x in rows}
    assert len(by) == 6  # Optuna's grid: every combination once
    ok = [by[("0.003", "gru")], by[("0.02", "gru")]]
    assert all(x["status"] == "ok" and 0 <= float(x["score"]) <= 1 and x["test_macro_f1"] for x in ok)
    # a value the config refuses, and one that fails inside training, are recorded; the sweep goes on
    assert by[("-1", "gru")]["status"] == "failed" and "train.lr must be > 0" in by[("-1", "gru")]["error"]
    crashed = by[("0.003", "nope")]
    assert crashed["status"] == "failed" and "unknown model 'nope'" in crashed["error"]
    assert (out / f"trial-{int(crashed['trial']):03d}" / "train.log").read_text().count("Traceback") == 1
    best = max(ok, key=lambda x: float(x["score"]))
    cfg = load_config(out / "best.toml")
    assert cfg.train.lr == float(best["train.lr"]) and cfg.model.name == "gru"
    assert cfg.train.threads == 2  # the base config's own value, not the per-trial 1
    # printed summary: best first, failed last
    table = r.stdout[r.stdout.index("val score"):].splitlines()[2:8]
    assert table[0].split()[0] == best["trial"] and all("failed" in line for line in table[2:])
    assert "2 of 6 trials ok, 4 failed" in r.stdout
    assert (out / f"trial-{int(best['trial']):03d}" / "run" / "model.pt").is_file()
    # the same folder again: refused without --resume/--force; --resume on a finished study only rewrites outputs
    again = subprocess.run(sweep_cmd(base, "--grid", "train.lr=0.003,0.02,-1", "--grid", "model.name=gru,nope",
                                     "--out", str(out)), capture_output=True, text=True, timeout=120)
    assert again.returncode == 2 and again.stderr.startswith("gaitedge: error:") and "--resume" in again.stderr
    again = subprocess.run(sweep_cmd(base, "--grid", "train.lr=0.003,0.02,-1", "--grid", "model.name=gru,nope",
                                     "--out", str(out), "--resume"), capture_output=True, text=True, timeout=120)
    assert again.returncode == 0 and "0 waiting" in again.stdout and len(read_rows(out / "trials.csv")) == 6


def test_pruning_stops_a_bad_trial_early(tmp_path):
    cfg = load_config(write_base(tmp_path, SMALL))
    cfg.train.epochs = 3
    # trials run in this order (one worker); lr = 1000 wrecks the first epoch's validation score
    trials = [{"train.lr": 0.02}, {"train.lr": 0.03}, {"train.lr": 1000.0}]
    res = run_sweep(cfg, trials, out_dir=tmp_path / "s", pruner="median", prune_startup=2, prune_warmup=0,
                    log=lambda *_: None)
    status = [(r["trial"], r["status"], r["epochs_run"]) for r in res.rows]
    assert status == [(0, "ok", 3), (1, "ok", 3), (2, "pruned", 1)], status
    assert "pruned after epoch 1" in (tmp_path / "s" / "trial-002" / "train.log").read_text()
    assert res.best is not None and res.best["params"]["train.lr"] in (0.02, 0.03)
    import optuna

    study = optuna.load_study(study_name="sweep", storage=f"sqlite:///{tmp_path / 's' / 'study.db'}")
    t = study.trials[2]
    assert t.state == optuna.trial.TrialState.PRUNED and list(t.intermediate_values) == [1]
    assert list(study.trials[0].intermediate_values) == [1, 2, 3]


def _two_workers_on_one_study(tmp_path: Path, storage: str) -> None:
    """Two sweep processes (one worker each) on one study: 4 grid trials, none twice, both working."""
    base = write_base(tmp_path, SMALL)
    outs = [tmp_path / "a", tmp_path / "b"]
    procs = [subprocess.Popen(sweep_cmd(base, *GRID4, "--storage", storage, "--study", "shared", "--out", str(o)),
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for o in outs]
    results = [p.communicate(timeout=300) for p in procs]
    for p, (so, se) in zip(procs, results):
        assert p.returncode == 0, so + se
    runs = sorted(int(d.name[6:]) for o in outs for d in o.glob("trial-*"))
    assert runs == [0, 1, 2, 3]  # each trial trained once, by one of the two processes
    assert all(any(o.glob("trial-*")) for o in outs)  # both took trials
    # the process that finished last wrote the whole study
    last = max(outs, key=lambda o: (o / "trials.csv").stat().st_mtime)
    rows = read_rows(last / "trials.csv")
    assert sorted(x["train.lr"] for x in rows) == ["0.003", "0.01", "0.02", "0.03"]
    assert all(x["status"] == "ok" for x in rows) and len({x["worker"] for x in rows}) == 2


def test_two_sweep_processes_share_one_sqlite_study(tmp_path):
    _two_workers_on_one_study(tmp_path, f"sqlite:///{tmp_path / 'study.db'}")


def test_killed_sweep_resumes_to_the_planned_count(tmp_path):
    base = write_base(tmp_path, SMALL)
    out = tmp_path / "s"
    cmd = sweep_cmd(base, *GRID4, "--out", str(out))
    p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.time() + 240
    while time.time() < deadline and not ((out / "trials.csv").exists() and read_rows(out / "trials.csv")):
        time.sleep(0.2)
    time.sleep(1.0)  # the second trial is training now
    os.killpg(p.pid, signal.SIGKILL)  # the sweep and its trial process, no clean-up
    p.wait()
    done = [x for x in read_rows(out / "trials.csv") if x["status"] == "ok"]
    assert 1 <= len(done) < 4
    r = subprocess.run([*cmd, "--resume"], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    rows = read_rows(out / "trials.csv")
    ok = [x for x in rows if x["status"] == "ok"]
    assert sorted(x["train.lr"] for x in ok) == ["0.003", "0.01", "0.02", "0.03"]  # the planned 4, none twice
    assert all(x["status"] in ("ok", "interrupted") for x in rows)
    for x in rows:
        if x["status"] == "interrupted":
            assert "interrupted" in x["error"] and "queued again" in r.stdout


# --- bad input --------------------------------------------------------------------------------------------


def _one_error_line(r: subprocess.CompletedProcess) -> str:
    assert r.returncode == 2, r.stdout + r.stderr
    lines = r.stderr.strip().splitlines()
    assert lines[0].startswith("gaitedge: error:") and "Traceback" not in r.stderr, r.stderr
    return r.stderr


def test_unreachable_storage_is_one_clear_error(tmp_path):
    base = write_base(tmp_path, SMALL)
    r = subprocess.run(sweep_cmd(base, *GRID4, "--storage", "sqlite:////nonexistent-dir/x/study.db",
                                 "--out", str(tmp_path / "s")), capture_output=True, text=True, timeout=60)
    assert "cannot open the study storage sqlite:////nonexistent-dir/x/study.db" in _one_error_line(r)
    try:
        import psycopg2  # noqa: F401
    except ImportError:
        return
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    r = subprocess.run(sweep_cmd(base, *GRID4, "--storage", f"postgresql://u:secret@127.0.0.1:{port}/db",
                                 "--out", str(tmp_path / "s")), capture_output=True, text=True, timeout=60)
    err = _one_error_line(r)
    assert f"cannot open the study storage postgresql://u:***@127.0.0.1:{port}/db" in err and "secret" not in err


def test_study_with_another_search_space_is_an_error(tmp_path):
    base = write_base(tmp_path, SMALL)
    storage = f"sqlite:///{tmp_path / 'study.db'}"
    # trials whose values the config refuses finish at once, without training
    r = subprocess.run(sweep_cmd(base, "--grid", "train.lr=-1,-2", "--storage", storage, "--study", "S",
                                 "--out", str(tmp_path / "a")), capture_output=True, text=True, timeout=60)
    assert r.returncode == 1 and "0 of 2 trials ok, 2 failed" in r.stdout, r.stdout + r.stderr
    for other in (["--grid", "train.lr=-1,-3"], ["--grid", "train.lr=-1,-2", "--grid", "model.hidden=4,8"],
                  ["--random", "2", "--space", "train.lr=1e-3:1e-2"]):
        r = subprocess.run(sweep_cmd(base, *other, "--storage", storage, "--study", "S", "--out", str(tmp_path / "b")),
                           capture_output=True, text=True, timeout=60)
        err = _one_error_line(r)
        assert "study 'S'" in err and "searches a different space than this command line" in err
        assert "the study has [grid sampler, 2 trials; train.lr=-1,-2]" in err and len(err.splitlines()) == 1
    # the study is untouched and nothing trained
    assert not any((tmp_path / "b").glob("trial-*"))


# --- PostgreSQL -------------------------------------------------------------------------------------------


@pytest.fixture
def postgres_url():
    """A throwaway PostgreSQL server (Debian's postgresql package) on a free port; its URL."""
    initdbs = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if not initdbs:
        pytest.skip("PostgreSQL is not installed (Debian package postgresql: /usr/lib/postgresql/*/bin/initdb)")
    pytest.importorskip("psycopg2", reason="psycopg2 is not installed (pip install psycopg2-binary)")
    bindir = Path(initdbs[-1]).parent
    as_user: list[str] = []
    root = tempfile.mkdtemp(prefix="gaitedge-pg-")
    if os.geteuid() == 0:  # initdb refuses root: run the server as an unprivileged user
        import pwd

        for name in ("postgres", "nobody"):
            try:
                pw = pwd.getpwnam(name)
            except KeyError:
                continue
            as_user = ["runuser", "-u", name, "--"]
            os.chown(root, pw.pw_uid, pw.pw_gid)
            break
        if not as_user or shutil.which("runuser") is None:
            shutil.rmtree(root, ignore_errors=True)
            pytest.skip("running as root without a 'postgres' or 'nobody' user and runuser to start PostgreSQL")
    data = f"{root}/data"
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    try:
        subprocess.run([*as_user, str(bindir / "initdb"), "-D", data, "-U", "gaitedge", "--auth=trust", "-E", "UTF8"],
                       check=True, capture_output=True, timeout=120)
        subprocess.run([*as_user, str(bindir / "pg_ctl"), "-D", data, "-l", f"{root}/log", "-w", "-t", "60",
                        "-o", f"-p {port} -h 127.0.0.1 -k {root}", "start"], check=True, capture_output=True,
                       timeout=120)
    except subprocess.CalledProcessError as exc:
        shutil.rmtree(root, ignore_errors=True)
        pytest.skip(f"could not start PostgreSQL: {exc.stderr.decode(errors='replace')[-300:]}")
    try:
        yield f"postgresql://gaitedge@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run([*as_user, str(bindir / "pg_ctl"), "-D", data, "-m", "immediate", "stop"],
                       capture_output=True, timeout=60)
        shutil.rmtree(root, ignore_errors=True)


def test_two_sweep_processes_share_one_postgresql_study(tmp_path, postgres_url):
    _two_workers_on_one_study(tmp_path, postgres_url)


def test_on_epoch_hook_sees_every_epoch_and_changes_nothing(tmp_path):
    from gaitedge.training.train import train

    cfg = load_config(write_base(tmp_path, SMALL))
    cfg.train.threads = 1
    quiet = dict(progress=False, log=lambda *a, **k: None)
    plain, m0, _ = train(cfg, out_dir=tmp_path / "a", **quiet)
    seen: list[tuple[int, float]] = []
    hooked, m1, _ = train(cfg, out_dir=tmp_path / "b", on_epoch=lambda row: seen.append((row["epoch"], row["score"])),
                          **quiet)
    assert hooked.weights_hash() == plain.weights_hash() and m1["history"] == [
        {**h, "elapsed_s": m1["history"][i]["elapsed_s"]} for i, h in enumerate(m0["history"])]
    assert [e for e, _ in seen] == [1, 2] and seen[m1["best_epoch"] - 1][1] == pytest.approx(m1["val"]["score"])
    _, m2, _ = train(cfg, out_dir=tmp_path / "c", on_epoch=lambda row: True, **quiet)
    assert m2["epochs_run"] == 1
