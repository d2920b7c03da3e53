"""Leave-subjects-out k-fold cross-validation over a config.

Library entry point: :func:`cross_validate`; ``gaitedge cv`` and
``benchmarks/cv_ipol.py`` are thin layers over it.
"""

from __future__ import annotations

import copy

import time
from pathlib import Path
from typing import Callable, Iterator

import numpy as np

from gaitedge.config import Config
from gaitedge.data.recording import Recording
from gaitedge.data.splits import by_subjects, kfold_subjects
from gaitedge.training.evaluate import evaluate_model
from gaitedge.training.train import train


def fold_row(m: dict) -> dict:
    """The headline figures of one evaluation summary."""
    return {
        "macro_f1": m["macro_f1"],
        "accuracy": m["accuracy"],
        "f1": m["f1"],
        "hs_f1": m["events"]["heel_strike"]["f1"],
        "to_f1": m["events"]["toe_off"]["f1"],
        "event_f1": m["event_f1"],
        "median_err_ms": m["event_median_abs_error_ms"],
        "mean_err_ms": m["event_mean_abs_error_ms"],
        "n_recordings": m["n_recordings"],
    }


def cross_validate(
    cfg: Config,
    recs: list[Recording],
    k: int = 5,
    seed: int = 0,
    out_root: str | Path = "runs/cv",
    train_pool: list[Recording] | None = None,
    extra_eval: dict[str, list[Recording]] | None = None,
    skip: set[tuple[str, ...]] | None = None,
    log: Callable[[str], None] = print,
) -> Iterator[dict]:
    """Train and test once per fold; yield one result row per fold.

    Subjects of ``recs`` are split into ``k`` seeded folds.  Each fold trains on
    ``train_pool`` (default ``recs``) minus the fold's subjects — with the
    config's own subject-wise validation split for early stopping — and is
    tested on the fold's recordings in ``recs`` (and in every ``extra_eval``
    set, reported under its name).  Folds whose test subjects are in ``skip``
    are not run.  Run directories go to ``out_root/fold<i>``.
    """
    pool = recs if train_pool is None else train_pool
    for i, test_subjects in enumerate(kfold_subjects(recs, k, seed=seed)):
        if skip and tuple(test_subjects) in skip:
            continue
        held = set(test_subjects)
        t0 = time.time()
        fold_cfg = copy.deepcopy(cfg)  # per-fold teachers: "{fold}" in their paths
        fold_cfg.train.teachers = [t.replace("{fold}", str(i)) for t in cfg.train.teachers]
        tm, metrics, run = train(
            fold_cfg,
            out_dir=Path(out_root) / f"fold{i}",
            recs=[r for r in pool if r.subject not in held],
            progress=False,
            force=True,
            log=lambda *_: None,
        )
        row = {
            "fold": i,
            "test_subjects": test_subjects,
            **fold_row(evaluate_model(tm, by_subjects(recs, test_subjects))),
            "train_s": time.time() - t0,
            "params": metrics["n_params"],
            "best_epoch": metrics["best_epoch"],
            "run": str(run),
        }
        for name, extra in (extra_eval or {}).items():
            subset = by_subjects(extra, test_subjects)
            if subset:
                row[name] = fold_row(evaluate_model(tm, subset))
        log(
            f"fold {i} (test subjects {', '.join(test_subjects)}): macro-F1 {row['macro_f1']:.4f}  "
            f"heel-strike F1 {row['hs_f1']:.4f}  toe-off F1 {row['to_f1']:.4f}  "
            f"median error {row['median_err_ms']:.1f} ms  ({row['train_s']:.0f} s)"
        )
        yield row


def mean_sd(rows: list[dict], key: str) -> tuple[float, float]:
    """Mean and sample standard deviation of ``key`` over fold rows."""
    v = np.array([r[key] for r in rows], dtype=float)
    return float(v.mean()), float(v.std(ddof=1)) if len(v) > 1 else 0.0
