"""Hyperparameter search: grid or random trials over any config keys, in parallel processes.

Library entry point: :func:`run_sweep`; ``gaitedge sweep`` is a thin layer over it.

A *trial* is one :func:`gaitedge.train.train` call on the base config with some
``table.key`` values replaced.  Trials run in worker processes (``workers`` at
a time, each a fresh spawned interpreter with ``train.threads = 1`` unless the
trial sets it), each in its own run directory ``OUT/trial-NNN/run`` with its
log in ``OUT/trial-NNN/train.log``.  A trial that raises, crashes or runs past
its time limit is recorded as failed with the reason and the sweep goes on.

Outputs in ``OUT``: ``trials.csv`` (one row per trial: parameters, status,
error, validation and test metrics, times; rewritten as trials finish),
``sweep.json`` (the same with the full metrics), and ``best.toml`` (the base
config with the best trial's values: highest validation score, the mean of
macro-F1 and event F1 that training also uses to pick its best epoch).
"""

from __future__ import annotations

import csv
import itertools
import json
import math
import multiprocessing as mp
import os
import time
import tomllib
from dataclasses import dataclass, fields
from datetime import datetime
from multiprocessing.connection import wait
from pathlib import Path
from typing import Any, Callable

import numpy as np

from gaitedge.config import _SECTIONS, Config, apply_override, dump_toml, from_dict
from gaitedge.errors import ConfigError


@dataclass(frozen=True)
class Range:
    """A numeric search range: uniform in [lo, hi], or log-uniform with ``log``.

    Integer bounds (``16:128``) give integers.
    """

    lo: float
    hi: float
    log: bool = False
    integer: bool = False

    def sample(self, rng: np.random.Generator) -> float | int:
        if self.log:
            v = float(np.exp(rng.uniform(np.log(self.lo), np.log(self.hi))))
        else:
            v = float(rng.uniform(self.lo, self.hi))
        if self.integer:
            return int(min(max(round(v), self.lo), self.hi))
        return float(f"{v:.4g}")


@dataclass(frozen=True)
class Choice:
    """A categorical search dimension: one of ``values``, uniformly."""

    values: tuple[Any, ...]

    def sample(self, rng: np.random.Generator) -> Any:
        return self.values[int(rng.integers(len(self.values)))]


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


def grid_trials(grid: dict[str, list[Any]]) -> list[dict[str, Any]]:
    """Every combination of the grid's values (last key varies fastest)."""
    keys = list(grid)
    return [dict(zip(keys, combo)) for combo in itertools.product(*(grid[k] for k in keys))]


def random_trials(space: dict[str, Range | Choice], n: int, seed: int = 0) -> list[dict[str, Any]]:
    """``n`` independent draws from ``space`` (seeded)."""
    if n < 1:
        raise ConfigError("--random needs N >= 1 trials")
    rng = np.random.default_rng(seed)
    return [{k: dim.sample(rng) for k, dim in space.items()} for _ in range(n)]


def check_keys(keys: list[str]) -> None:
    """Raise ConfigError for a ``table.key`` that no config has (typos fail the whole sweep)."""
    for key in keys:
        sec, _, name = key.partition(".")
        if sec not in _SECTIONS:
            raise ConfigError(f"sweep key {key!r}: unknown table [{sec}]; known: {', '.join(_SECTIONS)}")
        if sec != "model" and name not in {f.name for f in fields(_SECTIONS[sec])}:
            known = ", ".join(sorted(f.name for f in fields(_SECTIONS[sec])))
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
    from gaitedge.train import _check_config

    try:
        _check_config(apply_params(cfg, params))
    except ConfigError as exc:
        return f"ConfigError: {exc}"
    return ""


def _trial_main(cfg_dict: dict, params: dict, trial_dir: str, threads: int) -> None:
    """Worker process body: one training, its outcome in ``trial_dir/result.json``."""
    d = Path(trial_dir)
    log = open(d / "train.log", "w", buffering=1)
    os.dup2(log.fileno(), 1)
    os.dup2(log.fileno(), 2)
    for var in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE", "GROUP_RANK"):
        os.environ.pop(var, None)
    t0 = time.time()
    try:
        cfg = apply_params(from_dict(cfg_dict), params)
        if "train.threads" not in params:
            cfg.train.threads = threads
        from gaitedge.train import train

        _, m, run = train(cfg, out_dir=d / "run", progress=False, force=True,
                          log=lambda *a: print(*a, flush=True))
        res = {"status": "ok", "error": "", "val": m["val"], "test": m.get("test"),
               "best_epoch": m["best_epoch"], "epochs_run": m["epochs_run"], "n_params": m["n_params"],
               "train_time_s": m["train_time_s"], "run_dir": str(run)}
    except BaseException as exc:  # noqa: BLE001  (every failure is a result of the trial)
        import traceback

        traceback.print_exc()
        res = {"status": "failed", "error": f"{type(exc).__name__}: {exc}".strip()}
    res["time_s"] = time.time() - t0
    tmp = d / "result.json.tmp"
    from gaitedge.train import _json_default

    tmp.write_text(json.dumps(res, indent=1, default=_json_default, allow_nan=True))
    tmp.replace(d / "result.json")


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
            "best_epoch", "epochs_run", "train_time_s", "time_s", "error", "run_dir"]
    tmp = path.with_suffix(".csv.tmp")
    with open(tmp, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(cols)
        for r in sorted(rows, key=lambda r: r["trial"]):
            flat = {**r, **r["params"]}
            w.writerow([_cell(flat.get(c, "")) for c in cols])
    tmp.replace(path)


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
                  _fmt(r["test_macro_f1"]), _fmt(r["test_event_f1"]), f"{r['time_s']:.0f}",
                  r["status"] if r["status"] == "ok" else f"{r['status']}: {r['error'][:80]}"]
        lines.append(cells)
    widths = [max(len(h), *(len(c[i]) for c in lines)) if lines else len(h) for i, h in enumerate(head)]
    fmt = lambda cells: "  ".join(c.ljust(w) for c, w in zip(cells, widths)).rstrip()  # noqa: E731
    return "\n".join([fmt(head), fmt(["-" * w for w in widths]), *(fmt(c) for c in lines)])


def _fmt(v: float) -> str:
    return "-" if not math.isfinite(v) else f"{v:.4f}"


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


def run_sweep(
    cfg: Config,
    trials: list[dict[str, Any]],
    out_dir: str | Path | None = None,
    workers: int = 1,
    threads: int = 1,
    trial_timeout_s: float | None = None,
    log: Callable[[str], None] = print,
) -> SweepResult:
    """Train one model per entry of ``trials`` (``{"table.key": value}``) on top of ``cfg``.

    Runs up to ``workers`` trials at once, each in a fresh process with
    ``train.threads = threads`` (unless the trial sets it) and at most
    ``trial_timeout_s`` seconds (None = no limit).  Writes ``trials.csv`` and
    ``sweep.json`` as trials finish and ``best.toml`` at the end; see the module
    docstring.  Key names are checked first (ConfigError); bad values only fail
    their trial.
    """
    if workers < 1:
        raise ConfigError("--workers must be >= 1")
    if not trials:
        raise ConfigError("the sweep has no trials")
    check_keys(sorted({k for t in trials for k in t}))
    out = Path(out_dir) if out_dir is not None else default_sweep_dir()
    out.mkdir(parents=True, exist_ok=True)
    (out / "base.toml").write_text(dump_toml(cfg))
    ctx = mp.get_context("spawn")
    pending = list(enumerate(trials))
    running: dict[int, tuple[Any, int, dict, float]] = {}
    rows: list[dict] = []
    full: dict[int, dict] = {}
    cfg_dict = cfg.to_dict()
    log(f"sweep: {len(trials)} trials, {workers} worker process(es), output {out}")

    def finish(proc: Any, index: int, params: dict, started: float, reason: str = "") -> None:
        res_path = out / f"trial-{index:03d}" / "result.json"
        if reason:
            res = {"status": "failed", "error": reason, "time_s": time.time() - started}
        elif res_path.is_file():
            res = json.loads(res_path.read_text())
        else:
            code = proc.exitcode
            why = f"killed by signal {-code}" if code is not None and code < 0 else f"exit status {code}"
            res = {"status": "failed", "error": f"worker process died ({why})", "time_s": time.time() - started}
        row = _row(index, params, res)
        rows.append(row)
        full[index] = {**row, "val": res.get("val"), "test": res.get("test")}
        write_csv(rows, out / "trials.csv")
        tmp = out / "sweep.json.tmp"
        tmp.write_text(json.dumps({"base": cfg_dict, "trials": [full[i] for i in sorted(full)]},
                                  indent=1, default=str, allow_nan=True))
        tmp.replace(out / "sweep.json")
        p = ", ".join(f"{k}={_cell(v)}" for k, v in params.items())
        if row["status"] == "ok":
            log(f"trial {index:3d} ok      score {row['score']:.4f}  (val macro-F1 {row['val_macro_f1']:.4f}, "
                f"event F1 {row['val_event_f1']:.4f})  {row['time_s']:.0f} s  {p}")
        else:
            log(f"trial {index:3d} FAILED  {row['error'][:200]}  {p}")

    try:
        while pending or running:
            while pending and len(running) < workers:
                index, params = pending.pop(0)
                tdir = out / f"trial-{index:03d}"
                tdir.mkdir(parents=True, exist_ok=True)
                (tdir / "result.json").unlink(missing_ok=True)
                bad = _config_problem(cfg, params)
                if bad:
                    finish(None, index, params, time.time(), bad)
                    continue
                proc = ctx.Process(target=_trial_main, args=(cfg_dict, params, str(tdir), threads),
                                   name=f"gaitedge-trial-{index}", daemon=False)
                proc.start()
                running[proc.sentinel] = (proc, index, params, time.time())
            wait(list(running), timeout=1.0)
            now = time.time()
            for sentinel in list(running):
                proc, index, params, started = running[sentinel]
                if not proc.is_alive():
                    proc.join()
                    del running[sentinel]
                    finish(proc, index, params, started)
                elif trial_timeout_s is not None and now - started > trial_timeout_s:
                    proc.kill()
                    proc.join()
                    del running[sentinel]
                    finish(proc, index, params, started, f"timed out after {trial_timeout_s:.0f} s")
    finally:
        for proc, *_ in running.values():
            proc.kill()
            proc.join()

    rows.sort(key=lambda r: r["trial"])
    ok = [r for r in _ranked(rows) if r["status"] == "ok" and math.isfinite(r["score"])]
    best = ok[0] if ok else None
    best_cfg = None
    if best is not None:
        best_cfg = apply_params(cfg, best["params"])
        head = [
            f"# best of {len(rows)} trials of the sweep in {out}: trial {best['trial']}",
            f"# validation score {best['score']:.4f} (macro-F1 {best['val_macro_f1']:.4f}, "
            f"event F1 {best['val_event_f1']:.4f})"
            + (f"; test macro-F1 {best['test_macro_f1']:.4f}, event F1 {best['test_event_f1']:.4f}"
               if math.isfinite(best["test_macro_f1"]) else ""),
            "# " + ", ".join(f"{k} = {_toml(v)}" for k, v in best["params"].items()),
            "",
        ]
        (out / "best.toml").write_text("\n".join(head) + dump_toml(best_cfg))
    return SweepResult(rows, best, out, best_cfg)
