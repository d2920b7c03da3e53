"""``gaitedge evaluate``: metrics of a trained run on other data."""

from __future__ import annotations

import argparse
from pathlib import Path

from gaitedge.cli.common import STRICT_HELP, slug, warn_input
from gaitedge.rundir import run_folder, write_json


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Add this group's commands to the ``gaitedge`` sub-command parser."""
    e = sub.add_parser("evaluate", help="metrics of a trained run on other data")
    e.add_argument("run", help="run directory (or its model.pt)")
    e.add_argument("--data", required=True, help="data spec, e.g. ipol?subjects=12-15")
    e.add_argument("--out", help="metrics JSON path (default RUN/eval-<data>.json)")
    e.add_argument("--mounting", help="sensor mounting of the data: auto (estimated per recording), a mounting "
                                      "file, an axis map x=..,y=..,z=.. or left=MAP,right=MAP (docs/frames.md)")
    e.add_argument("--events-out", metavar="EVENTS.csv",
                   help="also write the detected events as a gaitmap-style stride table (one per recording; "
                        "a recording that names no foot is written as the left)")
    e.add_argument("--strict", action="store_true", help=STRICT_HELP)
    e.set_defaults(func=cmd_evaluate)


def cmd_evaluate(args: argparse.Namespace) -> int:
    from gaitedge.checkpoint import load_checkpoint
    from gaitedge.data.spec import load_spec
    from gaitedge.training.evaluate import evaluate_model
    from gaitedge.metrics import format_summary
    from gaitedge.training.plots import plot_confusion

    from gaitedge.data.mounting import mount_all
    from gaitedge.data.skips import skipped_of

    tm = load_checkpoint(args.run)
    dcfg = tm.config.get("data", {})
    recs = load_spec(args.data, other_foot=dcfg.get("other_foot", False), lower_back=dcfg.get("lower_back", False),
                     strict=args.strict)
    skipped = skipped_of(recs)
    recs = mount_all(recs, args.mounting)
    warn_input(recs, tm.frame)
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
    run = run_folder(args.run)
    out = Path(args.out) if args.out else run / f"eval-{slug(args.data)}.json"
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
    return base.with_name(f"{base.stem}-{slug(Path(rec.source).stem + '-' + rec.location)}{base.suffix or '.csv'}")
