"""The ``gaitedge`` command line: a thin layer over the library API.

User mistakes (bad files, options, configs) end with one ``gaitedge: error:``
line and exit status 2; no traceback.
"""

from __future__ import annotations

import argparse
import os
import sys
import warnings
from pathlib import Path

from gaitedge import __version__
from gaitedge.errors import GaitedgeError, SkippedTrialWarning


def _cmd_train(args: argparse.Namespace) -> int:
    from gaitedge.config import apply_override, load_config
    from gaitedge.metrics import format_summary
    from gaitedge.training.train import train

    if args.resume:
        given = [f"--{n}" for n in ("config", "data", "test", "model", "out", "epochs", "set")
                 if getattr(args, n) is not None]
        if given:
            raise GaitedgeError(f"--resume continues with the run's own config; drop {', '.join(given)}")
        run_dir = Path(args.resume)
        cfg = load_config(run_dir / "config.toml") if (run_dir / "config.toml").is_file() else None
        if cfg is None:
            raise GaitedgeError(f"{run_dir}: no config.toml here; not a run directory to resume")
        out_dir = run_dir
    else:
        cfg = load_config(args.config)
        if args.data:
            cfg.data.train = args.data
        if args.test is not None:
            cfg.data.test = args.test
        if args.model:
            cfg.model.name = args.model
        if args.epochs is not None:
            cfg.train.epochs = args.epochs
        for item in args.set or []:
            apply_override(cfg, item)
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
    for name in ("model.pt", "config.toml", "metrics.json", "curves.png", "confusion.png"):
        print(f"  {out / name}")
    return 0


def _cmd_sweep(args: argparse.Namespace) -> int:
    from gaitedge.config import apply_override, load_config
    from gaitedge.training.sweep import format_summary, make_plan, parse_grid, parse_space, run_sweep

    if bool(args.grid) == (args.random is not None):
        raise GaitedgeError("give either --grid KEY=V1,V2 ... or --random N")
    if args.space and args.random is None:
        raise GaitedgeError("--space goes with --random N")
    if args.resume and args.force:
        raise GaitedgeError("--resume continues the study and --force starts it again; give one")
    cfg = load_config(args.config)
    if args.data:
        cfg.data.train = args.data
    if args.test is not None:
        cfg.data.test = args.test
    if args.epochs is not None:
        cfg.train.epochs = args.epochs
    for item in args.set or []:
        apply_override(cfg, item)
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


def _cmd_cv(args: argparse.Namespace) -> int:
    import json

    from gaitedge.config import apply_override, load_config
    from gaitedge.training.crossval import cross_validate, mean_sd
    from gaitedge.data.spec import load_spec

    cfg = load_config(args.config)
    if args.epochs is not None:
        cfg.train.epochs = args.epochs
    for item in args.set or []:
        apply_override(cfg, item)
    spec = args.data or cfg.data.train
    if args.folds < 2:
        raise GaitedgeError(f"--folds must be >= 2, got {args.folds}")
    recs = load_spec(spec, other_foot=cfg.data.other_foot, lower_back=cfg.data.lower_back)
    n_subj = len({r.subject for r in recs})
    if n_subj < args.folds:
        raise GaitedgeError(f"{spec}: {n_subj} subject(s), fewer than --folds {args.folds}")
    out = Path(args.out) if args.out else Path("runs") / f"cv-{cfg.model.name}"
    if (out / "cv.json").exists() and not args.force:
        raise GaitedgeError(f"{out}: already holds a cross-validation; choose another --out or pass --force")
    out.mkdir(parents=True, exist_ok=True)
    rows = []
    for row in cross_validate(cfg, recs, k=args.folds, seed=args.seed, out_root=out, log=print):
        rows.append(row)
        tmp = out / "cv.json.tmp"
        tmp.write_text(json.dumps({"config": cfg.to_dict(), "data": spec, "folds": rows}, indent=1))
        tmp.replace(out / "cv.json")
    print(f"\n{len(rows)} folds of {spec}:")
    for key, label in (("macro_f1", "macro-F1"), ("hs_f1", "heel-strike F1"), ("to_f1", "toe-off F1"),
                       ("median_err_ms", "median event error ms")):
        m, sd = mean_sd(rows, key)
        print(f"  {label:22s} {m:.4f} ± {sd:.4f}")
    print(f"per-fold results: {out / 'cv.json'}")
    return 0


def _slug(text: str) -> str:
    keep = "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in text)
    return keep.strip("_")[:60] or "data"


def _cmd_evaluate(args: argparse.Namespace) -> int:
    from gaitedge.checkpoint import load_checkpoint
    from gaitedge.data.spec import load_spec
    from gaitedge.training.evaluate import evaluate_model
    from gaitedge.metrics import format_summary
    from gaitedge.training.plots import plot_confusion
    from gaitedge.rundir import write_json

    from gaitedge.data.mounting import mount_all
    from gaitedge.data.skips import skipped_of

    tm = load_checkpoint(args.run)
    dcfg = tm.config.get("data", {})
    recs = load_spec(args.data, other_foot=dcfg.get("other_foot", False), lower_back=dcfg.get("lower_back", False),
                     strict=args.strict)
    skipped = skipped_of(recs)
    recs = mount_all(recs, args.mounting)
    _warn_input(recs, tm.frame)
    detected: list = []
    m = evaluate_model(tm, recs, detected)
    m["data"] = args.data
    m["skipped"] = [s.to_dict() for s in skipped]
    if args.mounting:
        m["mounting"] = args.mounting
        if args.mounting.strip().lower() == "auto":
            m["mounting_estimates"] = {r.name: r.meta.get("mounting", {}) for r in recs}
    print(f"{m['n_recordings']} recordings, subjects {', '.join(m['subjects'])}"
          + (f"; {len(skipped)} trial(s) skipped (listed in the metrics JSON)" if skipped else ""))
    print(format_summary(m))
    run = Path(args.run) if Path(args.run).is_dir() else Path(args.run).parent
    out = Path(args.out) if args.out else run / f"eval-{_slug(args.data)}.json"
    write_json(out, m)
    plot_confusion(m["confusion"], tm.classes, out.with_suffix(".png"), title=args.data)
    print(f"saved {out} and {out.with_suffix('.png')}")
    if args.events_out:
        from gaitedge.data.gaitmap import write_event_table

        n = 0
        for rec, events in detected:
            path = _events_path(Path(args.events_out), rec, len(detected))
            from gaitedge.data.mounting import foot_of

            n += write_event_table(path, {foot_of(rec.location) or "left": events}, tm.rate_hz)
        print(f"wrote {n} strides to {args.events_out}" + (" (one table per recording)" if len(detected) > 1 else ""))
    return 0


def _events_path(base: Path, rec, n_recordings: int) -> Path:
    """``base`` for one recording; ``base`` with the recording's name before the suffix for several."""
    if n_recordings == 1:
        return base
    return base.with_name(f"{base.stem}-{_slug(Path(rec.source).stem + '-' + rec.location)}{base.suffix or '.csv'}")


def _warn_input(recs: list, frame: str) -> None:
    """Print input-sanity warnings (units, frame) once each, on stderr."""
    from gaitedge.data.sanity import input_warnings

    for w in input_warnings(recs, frame):
        print(f"gaitedge: warning: {w}", file=sys.stderr)


def _cmd_mounting_estimate(args: argparse.Namespace) -> int:
    from gaitedge.data.mounting import estimate_mounting
    from gaitedge.data.spec import load_spec

    recs = load_spec(args.data, other_foot=not args.one_foot, lower_back=args.lower_back)
    mounting, per = estimate_mounting(recs)
    print(f"mounting estimated from {len(per)} recording(s) of {args.data}:")
    print(mounting.describe())
    if args.out:
        mounting.save(args.out)
        print(f"wrote {args.out} (use --mounting {args.out})")
    return 0


def _cmd_fetch(args: argparse.Namespace) -> int:
    from gaitedge.data.fetch import IPOL_URL, fetch_ipol

    if args.dataset != "ipol":
        raise GaitedgeError(f"unknown dataset {args.dataset!r}; available: ipol")
    last = [-1]

    def progress(done: int, total: int | None) -> None:
        mb = done >> 20
        if mb != last[0]:
            last[0] = mb
            tot = f" / {total >> 20} MB" if total else " MB"
            print(f"\r  {mb}{tot}", end="", file=sys.stderr, flush=True)

    dest = fetch_ipol(
        url=args.url or IPOL_URL,
        dest=Path(args.dest) if args.dest else None,
        sha256=args.sha256,
        force=args.force,
        progress=progress,
    )
    if last[0] >= 0:
        print(file=sys.stderr)
    print(f"IPOL gait data ready in {dest} (use --data ipol or ipol:{dest})")
    return 0


def _cmd_data_info(args: argparse.Namespace) -> int:
    import numpy as np

    from gaitedge.data.skips import skipped_of
    from gaitedge.data.spec import load_spec
    from gaitedge.data.splits import subjects_of
    from gaitedge.errors import DataError

    recs = load_spec(args.spec, other_foot=args.other_foot, strict=args.strict)
    skipped = skipped_of(recs)
    if not recs:
        raise DataError(f"{args.spec}: no recordings")
    print(f"{len(recs)} recordings, {len(subjects_of(recs))} subjects: {', '.join(subjects_of(recs))}")
    r = recs[0]
    print(f"channels: {', '.join(f'{c} [{u}]' for c, u in zip(r.channels, r.units))}")
    print(f"rate {r.rate_hz} Hz, total {sum(x.duration_s for x in recs) / 60:.1f} min")
    _print_frames(recs)
    lab = [x.labels for x in recs if x.labels is not None]
    if lab:
        counts = np.bincount(np.concatenate(lab)[np.concatenate(lab) >= 0], minlength=len(r.classes))
        print("labels: " + ", ".join(f"{c} {n}" for c, n in zip(r.classes, counts)))
        n_ev = {k: sum(len(x.events.get(k, [])) for x in recs) for k in ("toe_off", "heel_strike")}
        print("events: " + ", ".join(f"{k} {v}" for k, v in n_ev.items()))
    if skipped:
        print(f"skipped {len(skipped)} trial(s) it cannot use (--strict makes this an error):")
        for s in skipped:
            print(f"  {s.source}: {s.reason}")
    if args.spec.split("?")[0].split(":")[0] == "ipol":
        from gaitedge.data.ipol import list_trials, trial_issues

        root = Path(args.spec.split("?")[0].partition(":")[2] or _default_ipol_root())
        subs = {int(x.subject) for x in recs}
        flagged = []
        for s, t in list_trials(root):
            if s in subs:
                try:
                    flagged.append((s, t, trial_issues(root, s, t)))
                except DataError:
                    pass  # a trial that does not load is listed as skipped above
        flagged = [f for f in flagged if f[2]]
        print(f"annotation check: {len(flagged)} trial(s) with swings the signals contradict "
              "(left out by ?quality=checked)")
        for s, t, issues in flagged:
            print(f"  {s}-{t}: " + "; ".join(i.split(" ", 1)[1] for i in issues[:3])
                  + (f" (+{len(issues) - 3} more)" if len(issues) > 3 else ""))
    return 0


def _print_frames(recs: list) -> None:
    """The recordings' frames and, where a loader estimated them, their mountings per sensor."""
    import numpy as np

    frames = sorted({x.frame for x in recs})
    print("frame: " + ", ".join(frames))
    per: dict[str, list[dict]] = {}
    for x in recs:
        for sensor, d in x.meta.get("mounting", {}).items():
            if sensor == x.location.split("_")[0] or sensor == "back":
                per.setdefault(sensor, []).append(d)
    for sensor, ds in sorted(per.items()):
        ang = np.array([d["angles_deg"]["angle"] for d in ds])
        conf = np.array([d["confidence"] for d in ds])
        methods = ", ".join(sorted({d["method"] for d in ds}))
        print(f"mounting {sensor}: {methods} per recording ({len(ds)}): rotation into the canonical frame "
              f"median {np.median(ang):.0f}° (range {ang.min():.0f}-{ang.max():.0f}°), "
              f"confidence median {np.median(conf):.2f} (lowest {conf.min():.2f})")


def _default_ipol_root() -> Path:
    """The folder ``ipol`` without a path resolves to."""
    from gaitedge.data.spec import default_ipol_root

    return default_ipol_root()


def _cmd_export_onnx(args: argparse.Namespace) -> int:
    from gaitedge.checkpoint import load_checkpoint
    from gaitedge.export import export_onnx

    tm = load_checkpoint(args.run)
    run = Path(args.run) if Path(args.run).is_dir() else Path(args.run).parent
    paths = export_onnx(tm, Path(args.out) if args.out else run, opset=args.opset)
    print(f"exported {tm.model.family} ({len(tm.channels)} channels -> {', '.join(tm.classes)}, {tm.rate_hz:g} Hz)")
    print(f"  {paths.sequence}  (sequence: x [batch, time, channels] -> logits [batch, time, classes])")
    if paths.step is not None:
        print(f"  {paths.step}  (step: x [batch, channels] + state -> logits [batch, classes] + state)")
    else:
        print(f"  no step graph: {tm.model.family} is a whole-window (non-causal) model; run model.onnx over windows")
    return 0


def _parse_lsb(items: list[str] | None) -> dict[str, float] | None:
    if not items:
        return None
    out = {}
    for item in items:
        name, eq, val = item.partition("=")
        try:
            out[name.strip()] = float(val)
        except ValueError:
            raise GaitedgeError(f"--lsb {item!r}: expected CHANNEL=UNITS_PER_COUNT") from None
        if not eq or out[name.strip()] <= 0:
            raise GaitedgeError(f"--lsb {item!r}: expected CHANNEL=UNITS_PER_COUNT (> 0)")
    return out


def _cmd_quantize(args: argparse.Namespace) -> int:
    from gaitedge.quant.quantizer import saturation_summary
    from gaitedge.quant.workflow import QUANT_FILE, REPORT_FILE, format_comparison, load_quant, quantize_run

    if args.finetune < 0:
        raise GaitedgeError("--finetune must be >= 0 epochs")
    rep = quantize_run(args.run, out=args.out, finetune_epochs=args.finetune, lr=args.lr, calib=args.calib,
                       test=args.test, lsb=_parse_lsb(args.lsb), input_percentile=args.input_percentile,
                       steps_per_epoch=args.steps, force=args.force)
    qm = load_quant(rep["out"])
    print("\n".join(saturation_summary(qm)))
    table = format_comparison(rep)
    if table:
        print(table)
    out = Path(rep["out"])
    print(f"quantized model: {out / QUANT_FILE} (weights sha256 {rep['weights_sha256'][:16]}...)")
    print(f"report: {out / REPORT_FILE}" + (f"; fine-tuned checkpoint: {out / 'model.pt'}" if args.finetune else ""))
    return 0


def _cmd_export_c(args: argparse.Namespace) -> int:
    from gaitedge.checkpoint import load_checkpoint
    from gaitedge.export.c_export import export_c
    from gaitedge.quant.model import QuantModel
    from gaitedge.quant.quantizer import check_supported, quantize_model
    from gaitedge.quant.workflow import QUANT_FILE, load_training_data, run_dir_of

    run = run_dir_of(args.run)
    qpath = Path(args.quant) if args.quant else run / QUANT_FILE
    tm = load_checkpoint(args.run)
    check_supported(tm.model)
    if qpath.is_file():
        qm = QuantModel.load(qpath)
        if qm.float_weights_sha256 and qm.float_weights_sha256 != tm.weights_hash():
            raise GaitedgeError(f"{qpath} was made from other weights than {run / 'model.pt'}; quantize again")
    elif args.quant:
        raise GaitedgeError(f"{qpath}: no quantized model here")
    else:
        print(f"{qpath} not found: calibrating on the run's training data (see 'gaitedge quantize')")
        train, _ = load_training_data(tm)
        qm = quantize_model(tm, train, lsb=_parse_lsb(args.lsb))
    if not getattr(tm.model, "causal", True):
        from gaitedge.export.c_window import export_c_window, window_summary

        if args.layout == "library":
            raise GaitedgeError(f"{tm.model.family} is a whole-window model: its export has the flat layout only "
                                f"(leave out --layout library)")
        if not args.out:
            raise GaitedgeError("a whole-window model needs --out DIR")

        print(f"note: {tm.model.family} is a whole-window (non-causal) model, so it cannot stream through ge_step(); "
              f"exporting it for the window API (ge_window_run() in ge_window.h, arena for windows of up to "
              f"{args.window} samples)")
        res = export_c_window(qm, args.out, window=args.window, symbol=args.symbol, copy_runtime=not args.no_runtime)
        print(window_summary(res))
        print(f"wrote {len(res.files)} files to {res.out_dir}: model_data.h, model_data.c"
              + (" and the runtime sources" if res.report["runtime_copied"] else ""))
        return 0
    from gaitedge.export.c_library import library_name

    out = Path(args.out) if args.out else Path(library_name(qm))
    res = export_c(qm, out, symbol=args.symbol, copy_runtime=not args.no_runtime, layout=args.layout or "library")
    print(res.summary())
    if res.report["layout"] == "library":
        srcs = res.report["library_sources"]
        print(f"wrote the C library {res.report['name']} to {res.out_dir}: {len(res.files)} files; src/: "
              f"{len(srcs)} sources ({', '.join(srcs)}); CMakeLists.txt (target gaitedge::model), zephyr/, "
              f"library.properties, library.json, examples/main.c, README.md")
        print(f"build it:  cmake -S {res.out_dir} -B {res.out_dir}/build && cmake --build {res.out_dir}/build")
    else:
        print(f"wrote {len(res.files)} files to {res.out_dir}: model_data.h, model_data.c"
              + (", gaitedge_config.h and the runtime sources" if res.report["runtime_copied"] else ""))
    return 0


def _cmd_stream(args: argparse.Namespace) -> int:
    from gaitedge.stream.app import run_stream

    return run_stream(args)


def _cmd_imusim(args: argparse.Namespace) -> int:
    from gaitedge.stream.app import run_imusim

    return run_imusim(args)


def _cmd_models(args: argparse.Namespace) -> int:
    from gaitedge.models import available

    for name in available():
        print(name)
    return 0


_STRICT_HELP = ("fail on a trial or file of the data that cannot be used, instead of skipping it with a "
                "warning (same as strict=true in a data spec)")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser (exposed for documentation and tests)."""
    p = argparse.ArgumentParser(prog="gaitedge", description="Gait-phase recognition from IMUs, from training to the edge.")
    p.add_argument("--version", action="version", version=f"gaitedge {__version__}")
    sub = p.add_subparsers(dest="command", required=True)

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
    t.add_argument("--strict", action="store_true", help=_STRICT_HELP)
    t.set_defaults(func=_cmd_train)

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
    sw.set_defaults(func=_cmd_sweep)

    cv = sub.add_parser("cv", help="leave-subjects-out k-fold cross-validation of a config")
    cv.add_argument("config", help="TOML experiment config")
    cv.add_argument("--data", help="data spec whose subjects are split into folds (default: the config's train)")
    cv.add_argument("--folds", type=int, default=5, help="number of folds (default 5)")
    cv.add_argument("--seed", type=int, default=0, help="seed of the subject folds (default 0)")
    cv.add_argument("--epochs", type=int, help="maximum epochs per fold")
    cv.add_argument("--set", action="append", metavar="TABLE.KEY=VALUE", help="override a config value")
    cv.add_argument("--out", help="folder for the fold runs and cv.json (default runs/cv-<model>)")
    cv.add_argument("--force", action="store_true", help="reuse a folder that holds a cross-validation")
    cv.set_defaults(func=_cmd_cv)

    e = sub.add_parser("evaluate", help="metrics of a trained run on other data")
    e.add_argument("run", help="run directory (or its model.pt)")
    e.add_argument("--data", required=True, help="data spec, e.g. ipol?subjects=12-15")
    e.add_argument("--out", help="metrics JSON path (default RUN/eval-<data>.json)")
    e.add_argument("--mounting", help="sensor mounting of the data: auto (estimated per recording), a mounting "
                                      "file, an axis map x=..,y=..,z=.. or left=MAP,right=MAP (docs/frames.md)")
    e.add_argument("--events-out", metavar="EVENTS.csv",
                   help="also write the detected events as a gaitmap-style stride table (one per recording; "
                        "a recording that names no foot is written as the left)")
    e.add_argument("--strict", action="store_true", help=_STRICT_HELP)
    e.set_defaults(func=_cmd_evaluate)

    d = sub.add_parser("data", help="datasets: fetch, info")
    dsub = d.add_subparsers(dest="data_command", required=True)
    f = dsub.add_parser("fetch", help="download a public dataset into the cache")
    f.add_argument("dataset", help="dataset name: ipol")
    f.add_argument("--url", help="archive URL (https:// or file://)")
    f.add_argument("--sha256", help="expected SHA-256 of the archive")
    f.add_argument("--dest", help="target folder (default ~/.cache/gaitedge/ipol or $GAITEDGE_CACHE/ipol)")
    f.add_argument("--force", action="store_true", help="download again even if cached")
    f.set_defaults(func=_cmd_fetch)
    i = dsub.add_parser("info", help="summarise a data spec")
    i.add_argument("spec")
    i.add_argument("--other-foot", action="store_true", help="include the other foot's channels")
    i.add_argument("--strict", action="store_true", help=_STRICT_HELP)
    i.set_defaults(func=_cmd_data_info)

    mo = sub.add_parser("mounting", help="sensor mounting: the rotation into the canonical foot frame")
    mosub = mo.add_subparsers(dest="mounting_command", required=True)
    me = mosub.add_parser("estimate", help="estimate each sensor's mounting from recordings with standing and walking")
    me.add_argument("--data", required=True, help="data spec of recordings in the sensor's own frame "
                                                  "(e.g. csv:walk.csv?rate=100, gaitmap:IMU.csv, ipol?frame=sensor)")
    me.add_argument("--out", help="write the mounting here (.toml or .json) for --mounting FILE")
    me.add_argument("--one-foot", action="store_true", help="only each recording's own sensor (not other_*)")
    me.add_argument("--lower-back", action="store_true", help="also the lower-back sensor (IPOL)")
    me.set_defaults(func=_cmd_mounting_estimate)

    x = sub.add_parser("export", help="export a trained run for other runtimes")
    xsub = x.add_subparsers(dest="export_command", required=True)
    xo = xsub.add_parser("onnx", help="write model.onnx (sequence) and model_step.onnx (streaming step)")
    xo.add_argument("run", help="run directory (or its model.pt)")
    xo.add_argument("--out", help="output folder (default: the run directory)")
    xo.add_argument("--opset", type=int, default=17, help="ONNX opset, >= 17 (default 17)")
    xo.set_defaults(func=_cmd_export_onnx)

    xc = xsub.add_parser("c", help="write a C library of the model for the fixed-point runtime "
                                   "(CMake, Zephyr, Arduino, PlatformIO)")
    xc.add_argument("run", help="run directory (or its model.pt); uses RUN/quant.npz when present")
    xc.add_argument("--out", help="output folder (default: ./gaitedge_<family><hidden>)")
    xc.add_argument("--layout", choices=["library", "flat"],
                    help="library (default): include/ + src/ with only the kernels the model uses, a generated "
                         "gaitedge_config.h, CMakeLists.txt, Zephyr module, Arduino / PlatformIO metadata, "
                         "examples/main.c, README.md; flat: model_data.h/.c and every runtime file in one folder")
    xc.add_argument("--quant", help="quantized model file (default RUN/quant.npz)")
    xc.add_argument("--symbol", default="ge_model_data", help="C name of the model descriptor (default ge_model_data)")
    xc.add_argument("--lsb", action="append", metavar="CHANNEL=VALUE",
                    help="sensor resolution in channel units per count when quantizing here (repeatable)")
    xc.add_argument("--no-runtime", action="store_true", help="write only model_data.h/.c (into --out itself)")
    xc.add_argument("--window", type=int, default=256,
                    help="whole-window models: longest window in samples the window API's arena is sized for "
                         "(default 256)")
    xc.set_defaults(func=_cmd_export_c)

    q = sub.add_parser("quantize", help="int8/int16 fixed-point model for the C runtime (optionally fine-tuned)")
    q.add_argument("run", help="run directory (or its model.pt)")
    q.add_argument("--out", help="output folder (default: the run; with --finetune RUN-qat)")
    q.add_argument("--finetune", type=int, default=0, metavar="EPOCHS",
                   help="quantization-aware fine-tuning for this many epochs (default 0: post-training only)")
    q.add_argument("--lr", type=float, default=3e-4, help="fine-tuning learning rate (default 3e-4)")
    q.add_argument("--steps", type=int, help="fine-tuning steps per epoch (default: the run's config)")
    q.add_argument("--test", help="held-out data spec: compare float and quantized metrics")
    q.add_argument("--calib", help="calibration data spec (default: the run's training data and subjects)")
    q.add_argument("--lsb", action="append", metavar="CHANNEL=VALUE",
                   help="sensor resolution in channel units per count (default: +-16 g, +-2000 dps at 16 bit)")
    q.add_argument("--input-percentile", type=float, default=99.9,
                   help="input range = this percentile of |normalized input| on the calibration data "
                        "(default 99.9; 100 = the maximum)")
    q.add_argument("--force", action="store_true", help="overwrite a fine-tuned run folder")
    q.set_defaults(func=_cmd_quantize)

    st = sub.add_parser("stream", help="live gait phase, steps and events from a connected IMU or a replay")
    src = st.add_mutually_exclusive_group(required=True)
    src.add_argument("--port", help="pyserial URL of the IMU: /dev/ttyUSB0, socket://HOST:PORT, rfc2217://..., loop://")
    src.add_argument("--replay", help="replay a recording: a CSV file or a data spec")
    src.add_argument("--lsl", action="append", metavar="QUERY",
                     help="read a Lab Streaming Layer stream: name=NAME, type=IMU, key=value,... or an XPath "
                          "predicate; twice for one stream per foot (with two models); needs pylsl")
    st.add_argument("--model", action="append", metavar="[NAME=]RUN",
                    help="run folder, model_step.onnx or model.pt; twice for two feet (default names left, right); "
                         "optional with --backend device (checked against the board)")
    st.add_argument("--backend", choices=["onnx", "torch", "device"], default="onnx",
                    help="inference backend (default onnx; device: the board at --device)")
    st.add_argument("--device", metavar="URL",
                    help="with --backend device: the board's pyserial URL "
                         "(/dev/ttyACM0, or the socket:// URL of 'gaitedge device emulate')")
    st.add_argument("--format", choices=["text", "frames"], default="text",
                    help="--port input: text lines (default) or binary SAMPLES frames of int16 counts")
    st.add_argument("--columns", action="append", metavar="FIELDS",
                    help="name each field of an input line: model channels (or ax..gz), t / t_ms / t_us, seq[%%N], _ "
                         "(default t,<model channels>); once per model with two models")
    st.add_argument("--scale", help="factors into model units: a number, or acc=..,gyr=..,CHANNEL=.. "
                                    "(numbers or g, mg, deg, mdeg, e.g. acc=g,gyr=deg)")
    st.add_argument("--mounting", help="sensor mounting: auto (estimated from the first seconds of standing and "
                                       "walking; no labels until it locks), a mounting file, an axis map "
                                       "x=..,y=..,z=.. or left=MAP,right=MAP (docs/frames.md)")
    st.add_argument("--foot", choices=["left", "right"],
                    help="which foot a single model's own channels come from (for per-foot mountings; default: "
                         "the model's name, else left)")
    st.add_argument("--speed", type=float, help="replay speed-up (default 1 = real time; 0 = as fast as possible)")
    st.add_argument("--index", type=int, default=0, help="which recording of a multi-recording data spec (default 0)")
    st.add_argument("--baud", type=int, default=115200, help="baud rate for real serial ports (default 115200)")
    st.add_argument("--lsl-timeout", type=float, default=5.0,
                    help="seconds to wait for the --lsl stream(s) to answer (default 5)")
    st.add_argument("--lsl-out", metavar="NAME",
                    help="publish on LSL: the gait phase per sample (NAME-phase) and the events as markers "
                         "(NAME-events), stamped with the LSL time of their sample; needs pylsl")
    st.add_argument("--log", help="event log: events.jsonl or events.csv")
    st.add_argument("--events-table", metavar="EVENTS.csv",
                    help="at the end, write the detected events as a gaitmap-style stride table "
                         "(s_id, foot, start, end, ic, tc, min_vel; sample indices of the stream)")
    st.add_argument("--plot", action="store_true", help="live matplotlib plot")
    st.add_argument("--duration", type=float, help="stop after this many seconds")
    st.add_argument("--samples", type=int, help="stop after this many input samples")
    st.add_argument("--quiet", action="store_true", help="no live view; summary only")
    st.set_defaults(func=_cmd_stream)

    sim = sub.add_parser("imu-sim", help="a virtual IMU board serving a recording on a pty, a TCP port or LSL")
    sim.add_argument("--replay", required=True, help="the recording: a CSV file or a data spec")
    sim.add_argument("--listen", default="pty",
                     help="pty (prints the device path), tcp:PORT, or lsl:NAME (an LSL IMU stream; prints the "
                          "query for --lsl; needs pylsl) (default pty)")
    sim.add_argument("--speed", type=float, help="speed-up (default 1 = real time; 0 = as fast as read)")
    sim.add_argument("--loop", action="store_true", help="repeat the recording forever")
    sim.add_argument("--index", type=int, default=0, help="which recording of a multi-recording data spec (default 0)")
    sim.add_argument("--other-foot", action="store_true", help="include the other foot's channels (data specs)")
    sim.add_argument("--link", help="with pty: keep this symlink pointing at the device (survives --unplug)")
    sim.add_argument("--counter", action="store_true", help="prefix each line with a sample counter (seq)")
    sim.add_argument("--garbage", type=float, default=0.0, help="probability per line of an extra garbage line")
    sim.add_argument("--corrupt", type=float, default=0.0, help="probability per line of mangling it")
    sim.add_argument("--burst-every", type=float, help="every S seconds stall, then send --burst-size samples at once")
    sim.add_argument("--burst-size", type=int, help="samples per burst")
    sim.add_argument("--unplug", action="append", metavar="AT[:FOR]",
                     help="simulate unplugging at AT s for FOR s (default 1) of stream time; repeatable")
    sim.add_argument("--seed", type=int, default=0, help="seed of the fault injection")
    sim.add_argument("--format", choices=["text", "frames"], default="text",
                     help="text lines (default) or binary SAMPLES frames of int16 counts")
    sim.add_argument("--lsb", action="append", metavar="CHANNEL=VALUE",
                     help="frames: sensor resolution in channel units per count "
                          "(default: +-16 g, +-2000 dps at 16 bit)")
    sim.add_argument("--frame-samples", type=int, help="frames: at most this many samples per frame (default 1)")
    sim.set_defaults(func=_cmd_imusim)

    from gaitedge.device.commands import add_commands

    add_commands(sub)  # firmware build, device emulate / info, flash

    from gaitedge.memory.cli import add_commands as add_memory_commands

    add_memory_commands(sub)  # memory recall / capacity

    m = sub.add_parser("models", help="list model families")
    m.set_defaults(func=_cmd_models)
    return p


def _one_line_skips(show_other):  # noqa: ANN001, ANN202
    """A ``warnings.showwarning`` printing skipped trials as one ``gaitedge: warning:`` line on stderr."""

    def show(message, category, filename, lineno, file=None, line=None):  # noqa: ANN001, ANN202
        if issubclass(category, SkippedTrialWarning):
            print(f"gaitedge: warning: {message}", file=sys.stderr)
        else:
            show_other(message, category, filename, lineno, file, line)

    return show


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``gaitedge`` console script."""
    args = build_parser().parse_args(argv)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("always", SkippedTrialWarning)
            warnings.showwarning = _one_line_skips(warnings.showwarning)
            code = int(args.func(args) or 0)
    except GaitedgeError as exc:
        print(f"gaitedge: error: {exc}", file=sys.stderr)
        code = 2
    except KeyboardInterrupt:
        print("gaitedge: interrupted", file=sys.stderr)
        code = 130
    if int(os.environ.get("WORLD_SIZE", "1")) > 1 and argv is None:
        # A torchrun worker whose command has finished (run directory written, process
        # group destroyed): gloo's worker threads can outlive the process group and
        # abort the interpreter's teardown when they release their last tensors, so
        # the worker leaves without it.
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    return code


if __name__ == "__main__":
    raise SystemExit(main())
