"""``gaitedge memory``: gait-template recall and the Hopfield capacity experiment."""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

from gaitedge.errors import GaitedgeError


def cmd_recall(args: argparse.Namespace) -> int:
    import numpy as np

    from gaitedge.data.spec import load_spec
    from gaitedge.data.splits import parse_subjects
    from gaitedge.memory.templates import GaitTemplateMemory, holdout_last, key_function

    recs = load_spec(args.data)
    present = sorted({r.subject for r in recs}, key=lambda s: (len(s), s))
    store = parse_subjects(args.store_subjects) if args.store_subjects else present
    probe = parse_subjects(args.probe_subject) if args.probe_subject else store
    for opt, subs in (("--store-subjects", store), ("--probe-subject", probe)):
        absent = [s for s in subs if s not in present]
        if absent:
            raise GaitedgeError(f"{opt}: subject(s) {', '.join(absent)} not in {args.data} "
                                f"(present: {', '.join(present)})")
    channels = [c.strip() for c in args.channels.split(",") if c.strip()]
    keep, held = holdout_last([r for r in recs if r.subject in store], "subject")
    probes = [r for r in held if r.subject in probe] + [r for r in recs if r.subject in probe and r.subject not in store]
    if not probes:
        raise GaitedgeError("no probe recordings: a stored subject needs at least two trials (its last one is "
                            "held out for probing), or name a --probe-subject that is not stored")
    mem = GaitTemplateMemory.fit(keep, key=args.by, channels=channels, bins=args.bins, mode=args.mode,
                                 max_iter=args.max_iter)
    m, n = mem.templates.shape
    print(f"{m} templates by {args.by} ({', '.join(mem.labels)}) of {n} bits "
          f"({args.bins} phase bins x {len(channels)} channels), load m/n = {m / n:.3f}, {args.mode} updates")
    fn = key_function(args.by)
    rng = np.random.default_rng(args.seed)
    total = right = spurious = 0
    for r in probes:
        truth = fn(r)
        for s, tr in mem.recall(r, args.noise, args.partial, rng):
            total += 1
            right += tr.label == truth
            spurious += tr.label is None
            if not args.quiet:
                got = tr.label
                if tr.label is None:
                    what = f"reversed template {tr.negation_of}" if tr.kind == "reversed" else "spurious state"
                    got = f"{what} (nearest template {tr.nearest}, overlap {tr.overlap:.2f})"
                print(f"{r.name} [{s.start}, {s.end}) {truth} -> {got}; {tr.outcome} after {tr.steps} "
                      f"step(s), E = {tr.energy:g}")
    if not total:
        raise GaitedgeError("the probe recordings hold no strides (heel strikes at least two strides apart)")
    known = sum(1 for r in probes if fn(r) in mem.labels)
    line = f"{total} probe strides: {right} recalled their own template ({right / total:.1%}), "
    line += f"{spurious} settled in a spurious state ({spurious / total:.1%})"
    if known:
        line += f"; chance {1 / m:.1%}"
    print(line)
    if args.export_c:
        for p in mem.export_c(args.export_c):
            print(f"wrote {p}")
    return 0


def cmd_capacity(args: argparse.Namespace) -> int:
    from gaitedge.memory.capacity import capacity_experiment, plot_capacity

    res = capacity_experiment(n=args.n, trials=args.trials, noise=args.noise, mode=args.mode, seed=args.seed)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    rows = res.rows()
    with (out / "capacity.csv").open("w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    png = plot_capacity(res, out / "capacity.png")
    print(f"n = {res.n}, {res.trials} networks per load, {res.noise:.0%} of probe bits flipped, {res.mode} updates")
    print("   m  load  recalled  stable")
    for row in rows:
        print(f"{row['m']:4d}  {row['load']:.2f}  {row['recall']:8.3f}  {row['stable']:6.3f}")
    print(f"wrote {out / 'capacity.csv'} and {png}")
    return 0


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register ``memory recall`` and ``memory capacity`` on the top-level subparsers."""
    from gaitedge.memory.templates import DEFAULT_BINS, DEFAULT_CHANNELS

    mp = sub.add_parser("memory", help="associative memories: gait-template recall, Hopfield capacity")
    msub = mp.add_subparsers(dest="memory_command", required=True)
    r = msub.add_parser("recall", help="store stride templates, then report which one each probe stride recalls")
    r.add_argument("--data", required=True, help="data spec with heel-strike events, e.g. ipol?feet=left")
    r.add_argument("--by", choices=["subject", "location"], default="subject", help="one template per (default subject)")
    r.add_argument("--store-subjects", metavar="LIST", help="subjects whose strides build templates (default all); "
                                                            "each one's last trial is held out as probes")
    r.add_argument("--probe-subject", metavar="LIST", help="subjects whose strides are probed (default the stored ones)")
    r.add_argument("--channels", default=",".join(DEFAULT_CHANNELS), help="channels to binarize (comma-separated)")
    r.add_argument("--bins", type=int, default=DEFAULT_BINS, help=f"phase bins per stride (default {DEFAULT_BINS})")
    r.add_argument("--mode", choices=["async", "sync"], default="async", help="update schedule (default async)")
    r.add_argument("--max-iter", type=int, default=100, help="most steps per recall (default 100)")
    r.add_argument("--noise", type=float, default=0.0, help="fraction of probe bits flipped (default 0)")
    r.add_argument("--partial", type=float, default=0.0, help="fraction of each stride's end unseen (default 0)")
    r.add_argument("--seed", type=int, default=0, help="seed of --noise / --partial (default 0)")
    r.add_argument("--export-c", metavar="DIR", help="also write hopfield_data.h/.c (int8) there")
    r.add_argument("--quiet", action="store_true", help="summary only")
    r.set_defaults(func=cmd_recall)
    c = msub.add_parser("capacity", help="recall rate against load m/n for random patterns, with a plot")
    c.add_argument("--n", type=int, default=100, help="units (default 100)")
    c.add_argument("--trials", type=int, default=200, help="networks per load (default 200)")
    c.add_argument("--noise", type=float, default=0.1, help="fraction of probe bits flipped (default 0.1)")
    c.add_argument("--mode", choices=["async", "sync"], default="async", help="update schedule (default async)")
    c.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    c.add_argument("--out", required=True, help="folder for capacity.png and capacity.csv")
    c.set_defaults(func=cmd_capacity)
