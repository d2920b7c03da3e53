"""Hyperparameter search over any config keys on Optuna studies, trials in parallel processes.

Library entry point: :func:`run_sweep`; ``gaitedge sweep`` is a thin layer over it.

A *study* (Optuna) holds the sweep's plan and every trial.  It lives in a
database: by default the SQLite file ``OUT/study.db``, or any database URL
Optuna's RDB storage accepts (``postgresql://...``, ``mysql://...``), so that
``run_sweep`` calls on several machines work on one study.  The study is
created with one waiting trial per planned trial (a grid point for the grid
sampler, following Optuna's ``GridSampler``: trial ``i`` trains grid point
``i``); every sweep process claims waiting trials atomically, so no trial runs
twice and the study ends at the planned count.  The random and TPE samplers
draw a trial's values when it is claimed (seeded by ``seed`` and the trial
number).

A *trial* is one :func:`gaitedge.training.train.train` call on the base config with some
``table.key`` values replaced.  Trials run in worker processes (``workers`` at
a time per sweep process, each a fresh spawned interpreter with
``train.threads = 1`` unless the trial sets it), each in its own run directory
``OUT/trial-NNN/run`` with its log in ``OUT/trial-NNN/train.log`` (``NNN`` is
the study's trial number).  Every epoch's validation score is reported to the
study; with the median pruner a trial whose score falls below the median of
earlier trials at the same epoch is stopped (state PRUNED).  A trial that
raises, crashes or runs past its time limit is recorded as failed (state FAIL,
the reason in its ``error`` attribute) and the sweep goes on.  A trial whose
sweep process died (killed, machine lost) is recorded as interrupted and its
point is queued again: at once by a sweep process on the same host, after
:data:`GRACE_S` seconds without a heartbeat by any other.

Outputs in ``OUT``: ``trials.csv`` (one row per trial of the study: parameters,
status ``ok``/``pruned``/``failed``/``interrupted``/``running``, error,
validation and test metrics, times; rewritten as trials finish),
``sweep.json`` (the same with the full metrics of this host's trials), and
``best.toml`` (the base config with the best trial's values: highest
validation score, the mean of macro-F1 and event F1 that training also uses to
pick its best epoch).
"""

from __future__ import annotations

import csv
import json
import math
import multiprocessing as mp
import os
import signal
import socket
import threading
import time
import tomllib
import warnings
from dataclasses import dataclass, fields
from datetime import datetime
from multiprocessing.connection import wait
from pathlib import Path
from typing import Any, Callable

from gaitedge.config import SECTIONS, Config, apply_override, dump_toml, from_dict
from gaitedge.errors import ConfigError
from gaitedge.rundir import atomic_path, write_json, write_text


@dataclass(frozen=True)
class Range:
    """A numeric search range: uniform in [lo, hi], or log-uniform with ``log``.

    Integer bounds (``16:128``) give integers.
    """

    lo: float
    hi: float
    log: bool = False
    integer: bool = False


@dataclass(frozen=True)
class Choice:
    """A categorical search dimension: one of ``values``, uniformly."""

    values: tuple[Any, ...]


#: what ``--random N`` searches when no ``--space`` is given.
DEFAULT_SPACE: dict[str, Range | Choice] = {
    "train.lr": Range(1e-3, 1e-2, log=True),
    "model.hidden": Choice((32, 48, 64, 96)),
    "train.window_s": Range(2.0, 6.0),
    "model.dropout": Range(0.0, 0.3),
    "train.augment_rotation_deg": Range(0.0, 30.0),
    "train.augment_time_warp": Range(0.0, 0.2),
}


def _split_top(text: str, sep: str) -> list[str]:
    """Split on ``sep`` outside brackets, braces and quotes."""
    parts, depth, quote, cur = [], 0, "", []
    for ch in text:
        if quote:
            quote = "" if ch == quote else quote
        elif ch in "'\"":
            quote = ch
        elif ch in "[{":
            depth += 1
        elif ch in "]}":
            depth -= 1
        elif ch == sep and depth == 0:
            parts.append("".join(cur))
            cur = []
            continue
        cur.append(ch)
    parts.append("".join(cur))
    return [p.strip() for p in parts]


def parse_value(text: str) -> Any:
    """One value as TOML (``0.003``, ``true``, ``['1','2']``), else the bare string."""
    try:
        return tomllib.loads(f"v = {text.strip()}")["v"]
    except tomllib.TOMLDecodeError:
        return text.strip()


def _split_key(item: str, flag: str) -> tuple[str, str]:
    key, eq, rest = item.partition("=")
    key = key.strip()
    if not eq or "." not in key or not rest.strip():
        raise ConfigError(f"{flag} {item!r}: expected table.key=...")
    return key, rest


def parse_grid(items: list[str]) -> dict[str, list[Any]]:
    """``["train.lr=0.001,0.003", "model.hidden=32,64"]`` -> ``{key: [values]}``."""
    grid: dict[str, list[Any]] = {}
    for item in items:
        key, rest = _split_key(item, "--grid")
        values = [parse_value(v) for v in _split_top(rest, ",") if v]
        if not values:
            raise ConfigError(f"--grid {item!r}: no values")
        grid[key] = values
    return grid


def parse_space(items: list[str]) -> dict[str, Range | Choice]:
    """``key=lo:hi[:log]`` (numeric range) or ``key=v1,v2,...`` (choice) per item."""
    space: dict[str, Range | Choice] = {}
    for item in items:
        key, rest = _split_key(item, "--space")
        parts = _split_top(rest, ":")
        if len(parts) in (2, 3) and all(isinstance(parse_value(p), (int, float)) for p in parts[:2]) \
                and not any(isinstance(parse_value(p), bool) for p in parts[:2]):
            lo, hi = parse_value(parts[0]), parse_value(parts[1])
            log = len(parts) == 3
            if log and parts[2] != "log":
                raise ConfigError(f"--space {item!r}: the third field can only be 'log'")
            if not lo < hi or (log and lo <= 0):
                raise ConfigError(f"--space {item!r}: need lo < hi" + (" and lo > 0 for log" if log else ""))
            space[key] = Range(float(lo), float(hi), log, isinstance(lo, int) and isinstance(hi, int))
        else:
            space[key] = Choice(tuple(parse_value(v) for v in _split_top(rest, ",") if v))
    return space


def check_keys(keys: list[str]) -> None:
    """Raise ConfigError for a ``table.key`` that no config has (typos fail the whole sweep)."""
    for key in keys:
        sec, _, name = key.partition(".")
        if sec not in SECTIONS:
            raise ConfigError(f"sweep key {key!r}: unknown table [{sec}]; known: {', '.join(SECTIONS)}")
        if sec != "model" and name not in {f.name for f in fields(SECTIONS[sec])}:
            known = ", ".join(sorted(f.name for f in fields(SECTIONS[sec])))
            raise ConfigError(f"sweep key {key!r}: unknown key '{name}' in [{sec}]; known: {known}")


def _toml(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v) if math.isfinite(v) else ("nan" if v != v else ("inf" if v > 0 else "-inf"))
    if isinstance(v, str):
        return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_toml(x) for x in v) + "]"
    raise ConfigError(f"cannot use {v!r} as a config value")


def apply_params(cfg: Config, params: dict[str, Any]) -> Config:
    """A copy of ``cfg`` with ``params`` (``{"table.key": value}``) applied."""
    out = from_dict(cfg.to_dict())
    for key, value in params.items():
        apply_override(out, f"{key}={_toml(value)}")
    return out


def _config_problem(cfg: Config, params: dict[str, Any]) -> str:
    """Why ``params`` cannot even start training on ``cfg`` ("" if they can)."""

    try:
        apply_params(cfg, params).check()
    except ConfigError as exc:
        return f"ConfigError: {exc}"
    return ""




SAMPLERS = ("grid", "random", "tpe")
PRUNERS = ("median", "none")
#: seconds between heartbeats of a running trial, and without one before another host takes it as interrupted
HEARTBEAT_S = 10
GRACE_S = 60


@dataclass(frozen=True)
class SweepPlan:
    """What a study searches: its space, planned trial count, sampler and seed.

    ``sampler`` is ``grid``, ``random``, ``tpe`` or ``points`` (the explicit
    trials in ``points``, in order).  Build one with :func:`make_plan`.
    """

    space: dict[str, Range | Choice]
    n_trials: int
    sampler: str
    seed: int = 0
    points: tuple[dict[str, Any], ...] = ()

    def signature(self) -> dict[str, Any]:
        """The plan as JSON-able data, stored with the study and compared when a sweep joins it."""
        space: dict[str, Any] = {}
        for key in sorted(self.space):
            dim = self.space[key]
            if isinstance(dim, Choice):
                space[key] = {"choice": [_encode(v) for v in dim.values]}
            else:
                space[key] = {"range": [dim.lo, dim.hi], "log": dim.log, "int": dim.integer}
        sig: dict[str, Any] = {"space": space, "sampler": self.sampler, "n_trials": self.n_trials}
        if self.sampler in ("random", "tpe"):
            sig["seed"] = self.seed
        if self.points:
            sig["points"] = [{k: _encode(v) for k, v in p.items()} for p in self.points]
        return sig


def _encode(v: Any) -> Any:
    """A choice as Optuna stores it: scalars as they are, lists as their TOML text."""
    return v if v is None or isinstance(v, (bool, int, float, str)) else _toml(v)


def make_plan(
    grid: dict[str, list[Any]] | None = None,
    space: dict[str, Range | Choice] | None = None,
    n_trials: int | None = None,
    sampler: str | None = None,
    seed: int = 0,
    points: list[dict[str, Any]] | None = None,
) -> SweepPlan:
    """The plan of a sweep: ``grid`` (values per key), or ``space`` with ``n_trials``, or explicit ``points``.

    ``sampler`` defaults to ``grid`` with a grid and ``random`` otherwise; the
    grid sampler trains every combination once (a ``space`` of choices only is
    a grid too), ``random``/``tpe`` draw ``n_trials`` points (default: the
    grid's size).  Raises ConfigError for an impossible combination.
    """
    if points is not None:
        if not points:
            raise ConfigError("the sweep has no trials")
        keys = list(dict.fromkeys(k for p in points for k in p))
        if any(set(p) != set(keys) for p in points):
            raise ConfigError("every explicit trial must set the same keys")
        dims: dict[str, Range | Choice] = {}
        for k in keys:
            vals = list({_toml(p[k]): p[k] for p in points}.values())
            dims[k] = Choice(tuple(vals))
        return SweepPlan(dims, len(points), "points", seed, tuple(dict(p) for p in points))
    if sampler is not None and sampler not in SAMPLERS:
        raise ConfigError(f"unknown sampler {sampler!r}; choose from {', '.join(SAMPLERS)}")
    if grid is not None:
        dims = {k: Choice(tuple(v)) for k, v in grid.items()}
        sampler = sampler or "grid"
    else:
        dims = dict(space if space is not None else DEFAULT_SPACE)
        sampler = sampler or "random"
    if not dims:
        raise ConfigError("the sweep searches no keys")
    for k, dim in dims.items():
        if isinstance(dim, Choice) and not dim.values:
            raise ConfigError(f"sweep key {k!r}: no values")
        if isinstance(dim, Choice) and len({_toml(v) for v in dim.values}) != len(dim.values):
            raise ConfigError(f"sweep key {k!r}: a value is given twice")
    if sampler == "grid":
        if not all(isinstance(d, Choice) for d in dims.values()):
            raise ConfigError("--sampler grid needs --grid (or a --space of value lists only)")
        size = math.prod(len(d.values) for d in dims.values())  # type: ignore[union-attr]
        if n_trials is not None and n_trials != size:
            raise ConfigError(f"--sampler grid trains every combination ({size}); drop --random {n_trials}")
        n_trials = size
    elif n_trials is None:
        if grid is None:
            raise ConfigError("--random needs N >= 1 trials")
        n_trials = math.prod(len(v) for v in grid.values())
    if n_trials < 1:
        raise ConfigError("--random needs N >= 1 trials")
    return SweepPlan(dims, n_trials, sampler, seed)


def _optuna() -> Any:
    """The optuna module, quiet; a ConfigError naming the package if it is not installed."""
    try:
        import optuna
    except ImportError:
        raise ConfigError("gaitedge sweep needs Optuna: pip install optuna") from None
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    return optuna


def safe_url(url: str) -> str:
    """``url`` with any password replaced by ``***`` (for messages and logs)."""
    try:
        from sqlalchemy.engine import make_url

        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # noqa: BLE001  (not a URL SQLAlchemy can parse: show it as given)
        return url


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}".strip()


def open_storage(url: str) -> Any:
    """An Optuna RDB storage on ``url`` with heartbeats; ConfigError if it cannot be reached or used."""
    optuna = _optuna()
    scheme = url.split(":", 1)[0].lower()
    given = url
    if scheme in ("postgresql", "postgres"):
        url = _postgres_driver(url)
    engine: dict[str, Any] = {}
    if scheme.startswith("sqlite"):
        engine = {"connect_args": {"timeout": 60}}
    elif scheme.startswith(("postgresql", "mysql")):
        engine = {"connect_args": {"connect_timeout": 10}}
    try:
        for attempt in range(10):
            try:
                return optuna.storages.RDBStorage(
                    url, engine_kwargs=engine, heartbeat_interval=HEARTBEAT_S, grace_period=GRACE_S,
                    heartbeat_stale_trial_callback=_requeue_stale)
            except Exception as exc:  # noqa: BLE001
                # several sweep processes creating the tables of a new database at once: one wins, retry
                text = str(exc).lower()
                racing = type(exc).__name__ == "IntegrityError" or "already exists" in text or "locked" in text \
                    or "duplicate" in text
                if not racing or attempt == 9:
                    raise
                time.sleep(0.3 + 0.2 * attempt)
        raise AssertionError("unreachable")
    except ImportError:
        raise ConfigError(f"study storage {safe_url(given)}: its database driver is not installed "
                          "(postgresql://: pip install psycopg2-binary; mysql+pymysql://: pip install pymysql)"
                          ) from None
    except Exception as exc:  # noqa: BLE001  (SQLAlchemy/driver errors: refused, unknown host, bad URL, ...)
        raise ConfigError(f"cannot open the study storage {safe_url(given)}: {_first_line(exc)}") from None


def _postgres_driver(url: str) -> str:
    """``postgresql://`` with the driver that is installed: psycopg (3), else psycopg2."""
    import importlib.util

    if importlib.util.find_spec("psycopg") is None and importlib.util.find_spec("psycopg2") is not None:
        return "postgresql+psycopg2:" + url.split(":", 1)[1]
    return url


def _requeue(study: Any, trial: Any) -> None:
    """Queue an interrupted trial's point again (the same grid point, or the same values)."""
    optuna = _optuna()
    attrs = {"retry_of": trial.number}
    if "grid_id" in trial.system_attrs:
        study.add_trial(optuna.trial.create_trial(
            state=optuna.trial.TrialState.WAITING, user_attrs=attrs,
            system_attrs={"grid_id": trial.system_attrs["grid_id"],
                          "search_space": trial.system_attrs.get("search_space")}))
    elif trial.params:
        study.enqueue_trial(dict(trial.params), user_attrs=attrs)
    else:
        study.add_trial(optuna.trial.create_trial(
            state=optuna.trial.TrialState.WAITING, user_attrs=attrs,
            system_attrs=({"fixed_params": trial.system_attrs["fixed_params"]}
                          if "fixed_params" in trial.system_attrs else {})))


def _requeue_stale(study: Any, trial: Any) -> None:
    """Optuna's callback for a trial failed for a missing heartbeat: queue its point again."""
    _requeue(study, trial)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _recover(study: Any, storage: Any) -> int:
    """Fail and queue again the running trials whose sweep process is gone; how many.

    On this host a dead process id is enough; trials of other hosts are taken
    after :data:`GRACE_S` seconds without a heartbeat (Optuna's stale-trial check).
    """
    optuna = _optuna()
    TrialState = optuna.trial.TrialState
    host, n = socket.gethostname(), 0
    for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        worker = str(t.user_attrs.get("worker", ""))
        w_host, _, w_pid = worker.rpartition(":")
        if w_host != host or not w_pid.isdigit() or int(w_pid) == os.getpid() or _pid_alive(int(w_pid)):
            continue
        try:
            storage.set_trial_user_attr(t._trial_id, "error", f"interrupted: its sweep process {worker} ended")
            storage.set_trial_user_attr(t._trial_id, "interrupted", True)
            if not storage.set_trial_state_values(t._trial_id, TrialState.FAIL):
                continue
        except optuna.exceptions.UpdateFinishedTrialError:
            continue  # another sweep process on this host took it first
        _requeue(study, storage.get_trial(t._trial_id))
        n += 1
    before = len(study.get_trials(deepcopy=False, states=(TrialState.WAITING,)))
    optuna.storages.fail_stale_trials(study)
    return n + max(0, len(study.get_trials(deepcopy=False, states=(TrialState.WAITING,))) - before)


def _sampler(plan: SweepPlan, number: int) -> Any:
    optuna = _optuna()
    seed = plan.seed * 1_000_003 + number
    if plan.sampler == "grid":
        return optuna.samplers.GridSampler(_grid_space(plan), seed=0)  # one grid order in every process
    if plan.sampler == "tpe":
        return optuna.samplers.TPESampler(seed=seed, n_startup_trials=max(2, min(10, plan.n_trials // 3)))
    return optuna.samplers.RandomSampler(seed=seed)


def _grid_space(plan: SweepPlan) -> dict[str, list[Any]]:
    return {k: [_encode(v) for v in d.values] for k, d in plan.space.items()}  # type: ignore[union-attr]


def _pruner(name: str, startup: int, warmup: int) -> Any:
    optuna = _optuna()
    if name == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=startup, n_warmup_steps=warmup)
    if name == "none":
        return optuna.pruners.NopPruner()
    raise ConfigError(f"unknown pruner {name!r}; choose from {', '.join(PRUNERS)}")


def _describe(sig: dict) -> str:
    parts = []
    for k, d in sig["space"].items():
        if "choice" in d:
            parts.append(f"{k}={','.join(map(str, d['choice']))}")
        else:
            parts.append(f"{k}={d['range'][0]:g}:{d['range'][1]:g}" + (":log" if d["log"] else ""))
    return f"{sig['sampler']} sampler, {sig['n_trials']} trials" + (
        f", seed {sig['seed']}" if "seed" in sig else "") + "; " + " ".join(parts)


def _open_study(storage: Any, url: str, name: str, plan: SweepPlan, join: bool, force: bool,
                log: Callable[[str], None], resume: bool = False) -> Any:
    """Create the study with its waiting trials, or load it and check that its plan is ``plan``."""
    optuna = _optuna()
    TrialState = optuna.trial.TrialState
    sig = plan.signature()
    names = set(optuna.study.get_all_study_names(storage))
    if name in names and force:
        optuna.delete_study(study_name=name, storage=storage)
        names.discard(name)
        log(f"sweep: deleted the earlier study {name!r} (--force)")
    study = None
    if name not in names and resume:
        raise ConfigError(f"--resume: no study {name!r} in {safe_url(url)}; nothing to resume")
    if name not in names:
        try:
            study = optuna.create_study(study_name=name, storage=storage, direction="maximize")
        except optuna.exceptions.DuplicatedStudyError:
            study = None  # created by another sweep process just now: join it below
        else:
            if plan.sampler == "grid":
                space = _grid_space(plan)
                for i in range(plan.n_trials):
                    study.add_trial(optuna.trial.create_trial(
                        state=TrialState.WAITING, system_attrs={"grid_id": i, "search_space": space}))
            elif plan.points:
                for p in plan.points:
                    study.enqueue_trial({k: _encode(v) for k, v in p.items()})
            else:
                for _ in range(plan.n_trials):
                    study.add_trial(optuna.trial.create_trial(state=TrialState.WAITING))
            study.set_user_attr("gaitedge_plan", sig)  # last: marks the study complete
            return study
    elif not join:
        raise ConfigError(f"study {name!r} in {safe_url(url)} already exists; pass --resume to continue it, "
                          f"--force to start it again, or choose another --study/--out")
    study = optuna.load_study(study_name=name, storage=storage)
    for _ in range(300):  # a study created a moment ago gets its plan once its trials are queued
        if "gaitedge_plan" in study.user_attrs:
            break
        time.sleep(0.1)
    old = study.user_attrs.get("gaitedge_plan")
    if old is None:
        raise ConfigError(f"study {name!r} in {safe_url(url)} was not made by gaitedge sweep; choose another --study")
    if old != json.loads(json.dumps(sig)):
        raise ConfigError(f"study {name!r} in {safe_url(url)} searches a different space than this command line: "
                          f"the study has [{_describe(old)}], the command line [{_describe(sig)}]; give the "
                          "study's own --grid/--random/--space/--sampler/--seed, or another --study")
    return study


def _claim(study: Any, storage: Any) -> Any:
    """Atomically take one waiting trial of the study (None if none is left).

    The state changes from WAITING to RUNNING in one conditional UPDATE, so of
    several sweep processes (on any database, SQLite included) exactly one gets
    each trial: a read-then-write check would let two take the same one.
    """
    from datetime import datetime

    import sqlalchemy

    optuna = _optuna()
    trials = sqlalchemy.table("trials", sqlalchemy.column("trial_id"), sqlalchemy.column("state"),
                              sqlalchemy.column("datetime_start"))
    for t in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.WAITING,)):
        stmt = (trials.update()
                .where(trials.c.trial_id == t._trial_id, trials.c.state == "WAITING")
                .values(state="RUNNING", datetime_start=datetime.now()))
        with storage.engine.begin() as conn:
            if conn.execute(stmt).rowcount == 1:
                return t
    return None


def _suggest(trial: Any, plan: SweepPlan) -> dict[str, Any]:
    """Draw (or read the fixed) values of every key of the plan; returns them as config values."""
    params: dict[str, Any] = {}
    for key, dim in plan.space.items():
        if isinstance(dim, Choice):
            enc = [_encode(v) for v in dim.values]
            params[key] = dim.values[enc.index(trial.suggest_categorical(key, enc))]
        elif dim.integer:
            params[key] = trial.suggest_int(key, int(dim.lo), int(dim.hi), log=dim.log)
        else:
            params[key] = trial.suggest_float(key, dim.lo, dim.hi, log=dim.log)
    return params


def _decode(plan: SweepPlan, stored: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in stored.items():
        dim = plan.space.get(key)
        if isinstance(dim, Choice):
            enc = [_encode(v) for v in dim.values]
            out[key] = dim.values[enc.index(value)] if value in enc else value
        else:
            out[key] = value
    return out


class _Pruned(Exception):
    """Raised inside a trial's training when the study prunes it."""


def _trial_main(cfg_dict: dict, params: dict, trial_dir: str, threads: int, conn: Any) -> None:
    """Worker process body: one training, its outcome in ``trial_dir/result.json``.

    After every epoch the validation score goes to the sweep process over
    ``conn``; the answer says whether to stop (pruned).
    """
    d = Path(trial_dir)
    log = open(d / "train.log", "w", buffering=1)
    os.dup2(log.fileno(), 1)
    os.dup2(log.fileno(), 2)
    for var in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE", "GROUP_RANK"):
        os.environ.pop(var, None)
    t0 = time.time()
    seen: list[tuple[int, float]] = []

    def on_epoch(row: dict) -> None:
        seen.append((int(row["epoch"]), float(row["score"])))
        conn.send(("epoch", int(row["epoch"]), float(row["score"])))
        if conn.recv():
            raise _Pruned(f"pruned after epoch {row['epoch']} (validation score {row['score']:.4f})")

    try:
        cfg = apply_params(from_dict(cfg_dict), params)
        if "train.threads" not in params:
            cfg.train.threads = threads
        from gaitedge.training.train import train

        _, m, run = train(cfg, out_dir=d / "run", progress=False, force=True,
                          log=lambda *a: print(*a, flush=True), on_epoch=on_epoch)
        res = {"status": "ok", "error": "", "val": m["val"], "test": m.get("test"),
               "best_epoch": m["best_epoch"], "epochs_run": m["epochs_run"], "n_params": m["n_params"],
               "train_time_s": m["train_time_s"], "run_dir": str(run)}
    except _Pruned as exc:
        print(exc, flush=True)
        res = {"status": "pruned", "error": "", "epochs_run": len(seen),
               "best_epoch": max(seen, key=lambda e: e[1])[0] if seen else ""}
    except BaseException as exc:  # noqa: BLE001  (every failure is a result of the trial)
        import traceback

        traceback.print_exc()
        res = {"status": "failed", "error": f"{type(exc).__name__}: {exc}".strip()}
    res["time_s"] = time.time() - t0
    write_json(d / "result.json", res)


_SCALARS = ("score", "macro_f1", "event_f1", "event_median_abs_error_ms")


def _scalars(m: dict | None) -> dict | None:
    """The few metrics of a trial kept in the study (JSON numbers; NaN as None)."""
    if not isinstance(m, dict):
        return None
    out = {k: _num(m.get(k)) for k in _SCALARS}
    ev = m.get("events")
    if isinstance(ev, dict):
        out["events"] = {e: {"f1": _num(v.get("f1") if isinstance(v, dict) else None)} for e, v in ev.items()}
    return out


def _num(v: Any) -> float | None:
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) else None


def study_rows(study: Any, plan: SweepPlan) -> list[dict]:
    """One row (as in ``trials.csv``) per started trial of the study, by trial number."""
    optuna = _optuna()
    S = optuna.trial.TrialState
    rows = []
    for t in study.get_trials(deepcopy=False):
        if t.state == S.WAITING:
            continue
        ua = t.user_attrs
        if t.state == S.COMPLETE:
            status = "ok"
        elif t.state == S.PRUNED:
            status = "pruned"
        elif t.state == S.RUNNING:
            status = "running"
        elif ua.get("interrupted") or "error" not in ua:
            status = "interrupted"
        else:
            status = "failed"
        res = {k: ua[k] for k in ("val", "test", "best_epoch", "epochs_run", "train_time_s", "time_s", "run_dir")
               if k in ua}
        res["status"] = status
        res["error"] = ua.get("error", "") if status != "ok" else ""
        if status == "interrupted" and not res["error"]:
            res["error"] = f"interrupted: no heartbeat from its sweep process for {GRACE_S} s"
        for k in ("val", "test"):
            if isinstance(res.get(k), dict):
                res[k] = {a: (float("nan") if b is None else b) for a, b in res[k].items()}
        row = _row(t.number, _decode(plan, t.params), res)
        row["worker"] = ua.get("worker", "")
        rows.append(row)
    return rows


def _metric(m: dict | None, *path: str) -> float:
    try:
        for p in path:
            m = m[p]  # type: ignore[index]
        return float(m)  # type: ignore[arg-type]
    except (KeyError, TypeError, ValueError):
        return float("nan")


def _row(index: int, params: dict, res: dict) -> dict:
    return {
        "trial": index,
        "status": res["status"],
        "score": _metric(res, "val", "score"),
        "val_macro_f1": _metric(res, "val", "macro_f1"),
        "val_event_f1": _metric(res, "val", "event_f1"),
        "val_median_err_ms": _metric(res, "val", "event_median_abs_error_ms"),
        "test_macro_f1": _metric(res, "test", "macro_f1"),
        "test_event_f1": _metric(res, "test", "event_f1"),
        "test_hs_f1": _metric(res, "test", "events", "heel_strike", "f1"),
        "test_to_f1": _metric(res, "test", "events", "toe_off", "f1"),
        "test_median_err_ms": _metric(res, "test", "event_median_abs_error_ms"),
        "best_epoch": res.get("best_epoch", ""),
        "epochs_run": res.get("epochs_run", ""),
        "train_time_s": _metric(res, "train_time_s"),
        "time_s": _metric(res, "time_s"),
        "params": params,
        "error": res.get("error", ""),
        "run_dir": res.get("run_dir", ""),
    }


def _ranked(rows: list[dict]) -> list[dict]:
    def key(r: dict) -> tuple:
        ok = r["status"] == "ok" and math.isfinite(r["score"])
        return (0 if ok else 1, -r["score"] if ok else 0.0, r["trial"])

    return sorted(rows, key=key)


def write_csv(rows: list[dict], path: Path) -> None:
    """``trials.csv``: one row per trial, parameters as ``table.key`` columns (atomic)."""
    keys: list[str] = []
    for r in rows:
        keys += [k for k in r["params"] if k not in keys]
    cols = ["trial", "status", *keys, "score", "val_macro_f1", "val_event_f1", "val_median_err_ms",
            "test_macro_f1", "test_event_f1", "test_hs_f1", "test_to_f1", "test_median_err_ms",
            "best_epoch", "epochs_run", "train_time_s", "time_s", "error", "run_dir", "worker"]
    with atomic_path(path) as tmp, open(tmp, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(cols)
        for r in sorted(rows, key=lambda r: r["trial"]):
            flat = {**r, **r["params"]}
            w.writerow([_cell(flat.get(c, "")) for c in cols])


def _cell(v: Any) -> str:
    if isinstance(v, float):
        return "" if math.isnan(v) else f"{v:.6g}"
    if isinstance(v, (list, tuple, bool)):
        return _toml(v)
    return str(v)


def format_summary(rows: list[dict]) -> str:
    """Trials sorted by validation score (best first, failed last) as a text table."""
    keys: list[str] = []
    for r in rows:
        keys += [k for k in r["params"] if k not in keys]
    head = ["trial", *keys, "val score", "val F1", "val ev F1", "test F1", "test ev F1", "time s", "status"]
    lines = []
    for r in _ranked(rows):
        cells = [str(r["trial"]), *[_cell(r["params"].get(k, "")) for k in keys]]
        cells += [_fmt(r["score"]), _fmt(r["val_macro_f1"]), _fmt(r["val_event_f1"]),
                  _fmt(r["test_macro_f1"]), _fmt(r["test_event_f1"]), _fmt(r["time_s"], ".0f"),
                  f"{r['status']}: {r['error'][:80]}" if r["error"] else r["status"]]
        lines.append(cells)
    widths = [max(len(h), *(len(c[i]) for c in lines)) if lines else len(h) for i, h in enumerate(head)]
    fmt = lambda cells: "  ".join(c.ljust(w) for c, w in zip(cells, widths)).rstrip()  # noqa: E731
    return "\n".join([fmt(head), fmt(["-" * w for w in widths]), *(fmt(c) for c in lines)])


def _fmt(v: float, spec: str = ".4f") -> str:
    return "-" if not math.isfinite(v) else format(v, spec)


@dataclass
class SweepResult:
    """All trial rows (by trial number), the best one (None if all failed), and the output folder."""

    rows: list[dict]
    best: dict | None
    out: Path
    best_config: Config | None


def default_sweep_dir(root: str | Path = "runs") -> Path:
    """``runs/sweep-<YYYYmmdd-HHMMSS>``."""
    return Path(root) / f"sweep-{datetime.now().strftime('%Y%m%d-%H%M%S')}"


@dataclass
class _Running:
    """A trial being trained by this sweep process."""

    proc: Any
    conn: Any
    trial: Any
    params: dict
    tdir: Path
    started: float


def run_sweep(
    cfg: Config,
    trials: list[dict[str, Any]] | None = None,
    *,
    plan: SweepPlan | None = None,
    out_dir: str | Path | None = None,
    workers: int = 1,
    threads: int = 1,
    trial_timeout_s: float | None = None,
    study: str = "sweep",
    storage: str | None = None,
    pruner: str = "none",
    prune_startup: int = 2,
    prune_warmup: int = 1,
    resume: bool = False,
    force: bool = False,
    log: Callable[[str], None] = print,
) -> SweepResult:
    """Run (or join, or resume) the sweep ``plan`` on top of ``cfg``; see the module docstring.

    ``trials`` is a shortcut for ``plan=make_plan(points=trials)``: train exactly
    these ``{"table.key": value}`` points.  ``storage`` is an Optuna RDB URL
    (default ``sqlite:///OUT/study.db``) holding the study ``study``; an existing
    study is joined when ``storage`` is given or ``resume`` is set (its plan must
    equal ``plan``), started again with ``force``, and is an error otherwise.
    This process trains up to ``workers`` trials at once, each in a fresh
    process with ``train.threads = threads`` (unless the trial sets it) and at
    most ``trial_timeout_s`` seconds (None = no limit), until no waiting trial
    is left.  ``pruner`` is ``median`` (Optuna's MedianPruner after
    ``prune_startup`` finished trials; a trial trains at least ``max(prune_warmup, 1)``
    epochs) or
    ``none``.  Key names are checked first and the storage is opened before any
    trial (ConfigError); bad values only fail their trial.
    """
    if plan is None:
        if trials is None:
            raise ConfigError("run_sweep needs a plan or a list of trials")
        plan = make_plan(points=trials)
    if workers < 1:
        raise ConfigError("--workers must be >= 1")
    if prune_startup < 0 or prune_warmup < 0:
        raise ConfigError("--prune-startup and --prune-warmup must be >= 0")
    check_keys(sorted(plan.space))
    prune = _pruner(pruner, prune_startup, prune_warmup)
    if resume and out_dir is None and storage is None:
        raise ConfigError("--resume needs the sweep's --out folder (or its --storage and --study)")
    out = Path(out_dir) if out_dir is not None else default_sweep_dir()
    url = storage or f"sqlite:///{(out / 'study.db').resolve()}"
    if storage is None and resume and not (out / "study.db").is_file():
        raise ConfigError(f"--resume: {out} holds no study.db; nothing to resume")
    if storage is None:
        out.mkdir(parents=True, exist_ok=True)
    store = open_storage(url)
    ctl = _open_study(store, url, study, plan, join=resume or storage is not None, force=force, log=log,
                      resume=resume)
    out.mkdir(parents=True, exist_ok=True)
    write_text(out / "base.toml", dump_toml(cfg))
    sweep = _Sweep(cfg, plan, out, url, study, store, ctl, prune, threads, log)
    recovered = _recover(ctl, store)
    waiting = len(ctl.get_trials(deepcopy=False, states=(sweep.S.WAITING,)))
    log(f"sweep: study {study!r} in {safe_url(url)}: {plan.n_trials} planned trials ({plan.sampler} sampler, "
        f"pruner {pruner}), {waiting} waiting" + (f" ({recovered} queued again after an interruption)"
                                                 if recovered else "")
        + f"; {workers} worker process(es) here, output {out}")
    sweep.run(workers, trial_timeout_s)
    rows = sweep.write_outputs()
    best, best_cfg = sweep.write_best(rows)
    return SweepResult(rows, best, out, best_cfg)


class _Sweep:
    """One sweep process: claims waiting trials, trains each in a child process, records the results."""

    def __init__(self, cfg: Config, plan: SweepPlan, out: Path, url: str, study: str, store: Any, ctl: Any,
                 prune: Any, threads: int, log: Callable[[str], None]) -> None:
        self.optuna = _optuna()
        self.S = self.optuna.trial.TrialState
        self.cfg, self.plan, self.out, self.url, self.study = cfg, plan, out, url, study
        self.store, self.ctl, self.prune, self.threads, self.log = store, ctl, prune, threads, log
        self.cfg_dict = cfg.to_dict()
        self.worker_id = f"{socket.gethostname()}:{os.getpid()}"
        self.mp = mp.get_context("spawn")
        self.running: dict[int, _Running] = {}
        self.full: dict[int, dict] = {}

    def write_outputs(self) -> list[dict]:
        """Rewrite ``trials.csv`` and ``sweep.json`` from the study; return the rows."""
        rows = study_rows(self.ctl, self.plan)
        write_csv(rows, self.out / "trials.csv")
        trials_out = [{**r, **self.full.get(r["trial"], {})} for r in rows]
        write_text(self.out / "sweep.json",
                   json.dumps({"base": self.cfg_dict, "study": self.study, "storage": safe_url(self.url),
                               "plan": self.plan.signature(), "trials": trials_out},
                              indent=1, default=str, allow_nan=True))
        return rows

    def finish(self, run: _Running, res: dict) -> None:
        """Record a trial's result in the study (or a note when another process took it over) and log it."""
        S = self.S
        tid, number = run.trial._trial_id, run.trial.number
        res.setdefault("time_s", time.time() - run.started)
        attrs = {"time_s": res["time_s"]}
        for k in ("best_epoch", "epochs_run", "train_time_s", "run_dir", "n_params"):
            if k in res and res[k] != "":
                attrs[k] = res[k]
        for k in ("val", "test"):
            if isinstance(res.get(k), dict):
                attrs[k] = _scalars(res[k])
        score = _metric(res, "val", "score")
        if res["status"] == "ok" and not math.isfinite(score):
            res = {**res, "status": "failed", "error": "the validation score is not finite"}
        if res["status"] != "ok":
            attrs["error"] = res.get("error", "")
        try:
            for k, v in attrs.items():
                self.store.set_trial_user_attr(tid, k, v)
            self.ctl.get_trials(deepcopy=False)  # the trial's latest state into the study's storage cache
            if res["status"] == "ok":
                self.ctl.tell(number, score)
            else:
                self.ctl.tell(number, state=S.PRUNED if res["status"] == "pruned" else S.FAIL)
        except (self.optuna.exceptions.UpdateFinishedTrialError, RuntimeError, ValueError) as exc:
            # another sweep process took the trial as interrupted (no heartbeat) and queued it again
            self.log(f"trial {number:3d} was meanwhile recorded as interrupted by another sweep process "
                     f"({_first_line(exc)}); its result here is kept in {run.tdir} only")
        self.full[number] = {"val": res.get("val"), "test": res.get("test")}
        self._log_row(_row(number, run.params, res), run.params)
        self.write_outputs()

    def _log_row(self, row: dict, params: dict) -> None:
        p = ", ".join(f"{k}={_cell(v)}" for k, v in params.items())
        number = row["trial"]
        if row["status"] == "ok":
            self.log(f"trial {number:3d} ok      score {row['score']:.4f}  (val macro-F1 {row['val_macro_f1']:.4f}, "
                     f"event F1 {row['val_event_f1']:.4f})  {row['time_s']:.0f} s  {p}")
        elif row["status"] == "pruned":
            self.log(f"trial {number:3d} pruned  after epoch {row['epochs_run']}  {row['time_s']:.0f} s  {p}")
        else:
            self.log(f"trial {number:3d} FAILED  {row['error'][:200]}  {p}")

    def start(self) -> bool:
        """Claim a waiting trial and start its process; False when none is waiting."""
        frozen = _claim(self.ctl, self.store)
        if frozen is None:
            return False
        tid = frozen._trial_id
        self.store.set_trial_user_attr(tid, "worker", self.worker_id)
        self.store.record_heartbeat(tid)
        tstudy = self.optuna.load_study(study_name=self.study, storage=self.store,
                                        sampler=_sampler(self.plan, frozen.number), pruner=self.prune)
        tstudy.get_trials(deepcopy=False)  # brings the claimed trial into the study's storage cache
        trial = self.optuna.trial.Trial(tstudy, tid)
        tdir = self.out / f"trial-{frozen.number:03d}"
        tdir.mkdir(parents=True, exist_ok=True)
        (tdir / "result.json").unlink(missing_ok=True)
        t0 = time.time()
        try:
            params = _suggest(trial, self.plan)
        except Exception as exc:  # noqa: BLE001  (a stored value the plan cannot give)
            params = {}
            bad = f"cannot draw the trial's values: {_first_line(exc)}"
        else:
            bad = _config_problem(self.cfg, params)
        if bad:
            self.finish(_Running(None, None, trial, params, tdir, t0), {"status": "failed", "error": bad})
            return True
        parent, child = self.mp.Pipe()
        proc = self.mp.Process(target=_trial_main, args=(self.cfg_dict, params, str(tdir), self.threads, child),
                               name=f"gaitedge-trial-{frozen.number}", daemon=False)
        proc.start()
        child.close()
        self.running[tid] = _Running(proc, parent, trial, params, tdir, t0)
        return True

    def serve(self, run: _Running) -> None:
        """Answer the trial's per-epoch reports: record each score, say whether to prune."""
        while run.conn is not None and run.conn.poll():
            try:
                _, epoch, score = run.conn.recv()
            except (EOFError, OSError):
                run.conn.close()
                run.conn = None
                return
            stop = False
            if math.isfinite(score):
                try:
                    run.trial.report(score, epoch)
                    stop = run.trial.should_prune()
                except (self.optuna.exceptions.UpdateFinishedTrialError, RuntimeError, ValueError):
                    stop = True  # the study no longer takes this trial (recorded as interrupted elsewhere)
            try:
                run.conn.send(stop)
            except (BrokenPipeError, OSError):
                pass

    def run(self, workers: int, trial_timeout_s: float | None) -> None:
        """Train trials, ``workers`` at a time, until none is waiting; a SIGTERM stops it as Ctrl-C does."""

        def on_term(signum: int, frame: Any) -> None:
            raise KeyboardInterrupt

        old_term = (signal.signal(signal.SIGTERM, on_term)
                    if threading.current_thread() is threading.main_thread() else None)
        try:
            self._loop(workers, trial_timeout_s)
        finally:
            if old_term is not None:
                signal.signal(signal.SIGTERM, old_term)
            self._stop_running()

    def _loop(self, workers: int, trial_timeout_s: float | None) -> None:
        running, last_beat = self.running, 0.0
        while True:
            while len(running) < workers and self.start():
                pass
            if not running:
                if _recover(self.ctl, self.store):
                    continue
                return
            wait([r.proc.sentinel for r in running.values()] + [r.conn for r in running.values() if r.conn],
                 timeout=1.0)
            now = time.time()
            if now - last_beat >= HEARTBEAT_S / 2:
                for tid in running:
                    self.store.record_heartbeat(tid)
                last_beat = now
            for tid, run in list(running.items()):
                self.serve(run)
                if not run.proc.is_alive():
                    run.proc.join()
                    self.serve(run)
                    del running[tid]
                    self.finish(run, _result_of(run))
                elif trial_timeout_s is not None and now - run.started > trial_timeout_s:
                    run.proc.kill()
                    run.proc.join()
                    del running[tid]
                    self.finish(run, {"status": "failed", "error": f"timed out after {trial_timeout_s:.0f} s"})

    def _stop_running(self) -> None:
        """Kill the trials still training (Ctrl-C, error), record them as interrupted and queue them again."""
        for tid, run in self.running.items():
            run.proc.kill()
            run.proc.join()
            try:
                self.store.set_trial_user_attr(tid, "error", "interrupted: the sweep process stopped")
                self.store.set_trial_user_attr(tid, "interrupted", True)
                if self.store.set_trial_state_values(tid, self.S.FAIL):
                    _requeue(self.ctl, self.store.get_trial(tid))
            except Exception:  # noqa: BLE001  (the storage itself may be what failed)
                pass
        if self.running:
            try:
                self.write_outputs()
            except Exception:  # noqa: BLE001
                pass

    def write_best(self, rows: list[dict]) -> tuple[dict | None, Config | None]:
        """The best finished trial and its config, written to ``best.toml`` (None, None when none finished)."""
        ok = [r for r in _ranked(rows) if r["status"] == "ok" and math.isfinite(r["score"])]
        if not ok:
            return None, None
        best = ok[0]
        best_cfg = apply_params(self.cfg, best["params"])
        head = [
            f"# best of {len(rows)} trials of the sweep in {self.out} (study {self.study}): trial {best['trial']}",
            f"# validation score {best['score']:.4f} (macro-F1 {best['val_macro_f1']:.4f}, "
            f"event F1 {best['val_event_f1']:.4f})"
            + (f"; test macro-F1 {best['test_macro_f1']:.4f}, event F1 {best['test_event_f1']:.4f}"
               if math.isfinite(best["test_macro_f1"]) else ""),
            "# " + ", ".join(f"{k} = {_toml(v)}" for k, v in best["params"].items()),
            "",
        ]
        write_text(self.out / "best.toml", "\n".join(head) + dump_toml(best_cfg))
        return best, best_cfg


def _result_of(run: _Running) -> dict:
    """The ``result.json`` a finished trial process wrote, or a failure naming how it died."""
    res_path = run.tdir / "result.json"
    if res_path.is_file():
        return json.loads(res_path.read_text())
    code = run.proc.exitcode
    why = f"killed by signal {-code}" if code is not None and code < 0 else f"exit status {code}"
    return {"status": "failed", "error": f"worker process died ({why})"}
