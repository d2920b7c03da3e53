"""``gaitedge train``, ``sweep``, ``cv`` and ``models``: training runs and searches."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from gaitedge.cli.common import STRICT_HELP, apply_config_options
from gaitedge.errors import GaitedgeError
from gaitedge.rundir import CONFIG_FILE, CONFUSION_FILE, CURVES_FILE, CV_FILE, RUN_FILES, write_json


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Add this group's commands to the ``gaitedge`` sub-command parser."""
    t = sub.add_parser("train", help="train a model (default: GRU on built-in synthetic gait)")
    t.add_argument("--config", help="TOML experiment config (see configs/)")
    t.add_argument("--data", help="training data spec: synthetic | ipol[:PATH][?subjects=1-11] | csv:PATH")
    t.add_argument("--test", help="held-out data spec evaluated after training")
    t.add_argument("--model", help="model family (see 'gaitedge models')")
    t.add_argument("--out", help="run directory (default runs/<model>-<time>)")
    t.add_argument("--epochs", type=int, help="maximum epochs")
    t.add_argument("--set", action="append", metavar="TABLE.KEY=VALUE", help="override a config value (repeatable)")
    t.add_argument("--force", action="store_true", help="overwrite a run directory that holds a model")
    t.add_argument("--no-progress", action="store_true", help="no progress bar")
    t.add_argument("--resume", metavar="RUN_DIR", help="continue an interrupted run from its train_state.pt")
    t.add_argument("--device", default="cpu", help="cpu (default), cuda, cuda:N or auto")
    t.add_argument("--strict", action="store_true", help=STRICT_HELP)
    t.set_defaults(func=cmd_train)

    sw = sub.add_parser("sweep", help="hyperparameter search on an Optuna study, trials in parallel processes")
    sw.add_argument("config", help="base TOML experiment config")
    sw.add_argument("--grid", action="append", metavar="TABLE.KEY=V1,V2",
                    help="values of one key; all combinations are trained (repeatable)")
    sw.add_argument("--random", type=int, metavar="N", help="N trials drawn from --space")
    sw.add_argument("--space", action="append", metavar="TABLE.KEY=LO:HI[:log]|V1,V2",
                    help="a search dimension for --random: numeric range or choice (repeatable; default: lr, "
                         "hidden, window, dropout, rotation, time warp)")
    sw.add_argument("--sampler", choices=["tpe", "random", "grid"],
                    help="Optuna sampler (default: grid with --grid, random with --random)")
    sw.add_argument("--seed", type=int, default=0, help="seed of the random and TPE samplers (default 0)")
    sw.add_argument("--pruner", choices=["median", "none"], default="none",
                    help="stop trials whose per-epoch validation score falls below the median of earlier "
                         "trials at that epoch (default none)")
    sw.add_argument("--prune-startup", type=int, default=2, metavar="N",
                    help="finished trials before the pruner acts (default 2)")
    sw.add_argument("--prune-warmup", type=int, default=1, metavar="E",
                    help="epochs every trial trains before it can be pruned (default 1)")
    sw.add_argument("--study", default="sweep", help="study name in the storage (default 'sweep')")
    sw.add_argument("--storage", metavar="URL",
                    help="Optuna database URL shared by sweep processes on several machines, e.g. "
                         "postgresql://user:pw@host/db (default: sqlite file OUT/study.db)")
    sw.add_argument("--resume", action="store_true",
                    help="continue an interrupted sweep (same command line) to its planned trial count")
    sw.add_argument("--workers", type=int, default=1, help="trials trained at once here, one process each (default 1)")
    sw.add_argument("--threads", type=int, default=1, help="torch threads per trial (default 1)")
    sw.add_argument("--timeout-min", type=float, help="fail a trial that runs longer than this (minutes)")
    sw.add_argument("--data", help="training data spec (overrides the config)")
    sw.add_argument("--test", help="held-out data spec evaluated after each trial")
    sw.add_argument("--epochs", type=int, help="maximum epochs per trial")
    sw.add_argument("--set", action="append", metavar="TABLE.KEY=VALUE", help="override a base config value")
    sw.add_argument("--out", help="sweep folder (default runs/sweep-<time>)")
    sw.add_argument("--force", action="store_true", help="start again in a folder or study that holds a sweep")
    sw.set_defaults(func=cmd_sweep)

    cv = sub.add_parser("cv", help="leave-subjects-out k-fold cross-validation of a config")
    cv.add_argument("config", help="TOML experiment config")
    cv.add_argument("--data", help="data spec whose subjects are split into folds (default: the config's train)")
    cv.add_argument("--folds", type=int, default=5, help="number of folds (default 5)")
    cv.add_argument("--seed", type=int, default=0, help="seed of the subject folds (default 0)")
    cv.add_argument("--epochs", type=int, help="maximum epochs per fold")
    cv.add_argument("--set", action="append", metavar="TABLE.KEY=VALUE", help="override a config value")
    cv.add_argument("--out", help="folder for the fold runs and cv.json (default runs/cv-<model>)")
    cv.add_argument("--force", action="store_true", help="reuse a folder that holds a cross-validation")
    cv.set_defaults(func=cmd_cv)

    m = sub.add_parser("models", help="list model families")
    m.set_defaults(func=cmd_models)


def cmd_train(args: argparse.Namespace) -> int:
    from gaitedge.config import load_config
    from gaitedge.metrics import format_summary
    from gaitedge.training.train import train

    if args.resume:
        given = [f"--{n}" for n in ("config", "data", "test", "model", "out", "epochs", "set")
                 if getattr(args, n) is not None]
        if given:
            raise GaitedgeError(f"--resume continues with the run's own config; drop {', '.join(given)}")
        run_dir = Path(args.resume)
        if not (run_dir / CONFIG_FILE).is_file():
            raise GaitedgeError(f"{run_dir}: no {CONFIG_FILE} here; not a run directory to resume")
        cfg = load_config(run_dir / CONFIG_FILE)
        out_dir = run_dir
    else:
        cfg = load_config(args.config)
        if args.model:
            cfg.model.name = args.model
        apply_config_options(cfg, args)
        out_dir = args.out
    _, metrics, out = train(cfg, out_dir=out_dir, progress=not args.no_progress, force=args.force,
                            resume=bool(args.resume), device=args.device, strict=args.strict)
    if os.environ.get("RANK", "0") != "0":
        return 0  # under torchrun, rank 0 reports
    print(f"\nbest epoch {metrics['best_epoch']} of {metrics['epochs_run']}, "
          f"{metrics['n_params']} parameters, {metrics['train_time_s']:.1f} s")
    print("validation (subjects " + ", ".join(metrics["val_subjects"]) + "):")
    print(format_summary(metrics["val"]))
    if "test" in metrics:
        print("test (subjects " + ", ".join(metrics["test"]["subjects"]) + "):")
        print(format_summary(metrics["test"]))
    if metrics.get("skipped"):
        print(f"skipped {len(metrics['skipped'])} training trial(s) (listed in metrics.json)")
    print(f"\nrun directory: {out}")
    for name in (*RUN_FILES, CURVES_FILE, CONFUSION_FILE):
        print(f"  {out / name}")
    return 0


def cmd_sweep(args: argparse.Namespace) -> int:
    from gaitedge.config import load_config
    from gaitedge.training.sweep import format_summary, make_plan, parse_grid, parse_space, run_sweep

    if bool(args.grid) == (args.random is not None):
        raise GaitedgeError("give either --grid KEY=V1,V2 ... or --random N")
    if args.space and args.random is None:
        raise GaitedgeError("--space goes with --random N")
    if args.resume and args.force:
        raise GaitedgeError("--resume continues the study and --force starts it again; give one")
    cfg = apply_config_options(load_config(args.config), args)
    if args.grid:
        plan = make_plan(grid=parse_grid(args.grid), sampler=args.sampler, seed=args.seed)
    else:
        plan = make_plan(space=parse_space(args.space) if args.space else None, n_trials=args.random,
                         sampler=args.sampler, seed=args.seed)
    if (args.out and args.storage is None and not args.resume and not args.force
            and (Path(args.out) / "trials.csv").exists()):
        raise GaitedgeError(f"{args.out}: already holds a sweep; pass --resume to continue it, "
                            "--force to start again, or choose another --out")
    res = run_sweep(cfg, plan=plan, out_dir=args.out, workers=args.workers, threads=args.threads,
                    trial_timeout_s=args.timeout_min * 60 if args.timeout_min else None,
                    study=args.study, storage=args.storage, pruner=args.pruner,
                    prune_startup=args.prune_startup, prune_warmup=args.prune_warmup,
                    resume=args.resume, force=args.force)
    print()
    print(format_summary(res.rows))
    counts = {s: sum(r["status"] == s for r in res.rows) for s in ("ok", "pruned", "failed", "interrupted", "running")}
    extra = "".join(f", {n} {s}" for s, n in counts.items() if n and s != "ok")
    print(f"\n{counts['ok']} of {len(res.rows)} trials ok{extra}; table: {res.out / 'trials.csv'}")
    if res.best is None:
        print("no trial finished; no best config")
        return 1
    print(f"best: trial {res.best['trial']} (validation score {res.best['score']:.4f}); "
          f"config: {res.out / 'best.toml'}")
    return 0


def cmd_cv(args: argparse.Namespace) -> int:
    from gaitedge.config import load_config
    from gaitedge.training.crossval import cross_validate, mean_sd
    from gaitedge.data.spec import load_spec

    cfg = load_config(args.config)
    spec = args.data or cfg.data.train
    apply_config_options(cfg, args, data=False)
    if args.folds < 2:
        raise GaitedgeError(f"--folds must be >= 2, got {args.folds}")
    recs = load_spec(spec, other_foot=cfg.data.other_foot, lower_back=cfg.data.lower_back)
    n_subj = len({r.subject for r in recs})
    if n_subj < args.folds:
        raise GaitedgeError(f"{spec}: {n_subj} subject(s), fewer than --folds {args.folds}")
    out = Path(args.out) if args.out else Path("runs") / f"cv-{cfg.model.name}"
    if (out / CV_FILE).exists() and not args.force:
        raise GaitedgeError(f"{out}: already holds a cross-validation; choose another --out or pass --force")
    out.mkdir(parents=True, exist_ok=True)
    rows = []
    for row in cross_validate(cfg, recs, k=args.folds, seed=args.seed, out_root=out, log=print):
        rows.append(row)
        write_json(out / CV_FILE, {"config": cfg.to_dict(), "data": spec, "folds": rows})
    print(f"\n{len(rows)} folds of {spec}:")
    for key, label in (("macro_f1", "macro-F1"), ("hs_f1", "heel-strike F1"), ("to_f1", "toe-off F1"),
                       ("median_err_ms", "median event error ms")):
        m, sd = mean_sd(rows, key)
        print(f"  {label:22s} {m:.4f} ± {sd:.4f}")
    print(f"per-fold results: {out / CV_FILE}")
    return 0


def cmd_models(args: argparse.Namespace) -> int:
    from gaitedge.models import available

    for name in available():
        print(name)
    return 0
