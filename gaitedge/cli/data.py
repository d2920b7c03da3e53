"""``gaitedge data fetch|info`` and ``gaitedge mounting estimate``: datasets and sensor mountings."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from gaitedge.cli.common import STRICT_HELP
from gaitedge.errors import GaitedgeError


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Add this group's commands to the ``gaitedge`` sub-command parser."""
    d = sub.add_parser("data", help="datasets: fetch, info")
    dsub = d.add_subparsers(dest="data_command", required=True)
    f = dsub.add_parser("fetch", help="download a public dataset into the cache")
    f.add_argument("dataset", help="dataset name: ipol")
    f.add_argument("--url", help="archive URL (https:// or file://)")
    f.add_argument("--sha256", help="expected SHA-256 of the archive")
    f.add_argument("--dest", help="target folder (default ~/.cache/gaitedge/ipol or $GAITEDGE_CACHE/ipol)")
    f.add_argument("--force", action="store_true", help="download again even if cached")
    f.set_defaults(func=cmd_fetch)
    i = dsub.add_parser("info", help="summarise a data spec")
    i.add_argument("spec")
    i.add_argument("--other-foot", action="store_true", help="include the other foot's channels")
    i.add_argument("--strict", action="store_true", help=STRICT_HELP)
    i.set_defaults(func=cmd_data_info)

    mo = sub.add_parser("mounting", help="sensor mounting: the rotation into the canonical foot frame")
    mosub = mo.add_subparsers(dest="mounting_command", required=True)
    me = mosub.add_parser("estimate", help="estimate each sensor's mounting from recordings with standing and walking")
    me.add_argument("--data", required=True, help="data spec of recordings in the sensor's own frame "
                                                  "(e.g. csv:walk.csv?rate=100, gaitmap:IMU.csv, ipol?frame=sensor)")
    me.add_argument("--out", help="write the mounting here (.toml or .json) for --mounting FILE")
    me.add_argument("--one-foot", action="store_true", help="only each recording's own sensor (not other_*)")
    me.add_argument("--lower-back", action="store_true", help="also the lower-back sensor (IPOL)")
    me.set_defaults(func=cmd_mounting_estimate)


def cmd_fetch(args: argparse.Namespace) -> int:
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


def cmd_data_info(args: argparse.Namespace) -> int:
    import numpy as np

    from gaitedge.data.skips import skipped_of
    from gaitedge.data.spec import load_spec
    from gaitedge.data.spec import default_ipol_root
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

        root = Path(args.spec.split("?")[0].partition(":")[2] or default_ipol_root())
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




def cmd_mounting_estimate(args: argparse.Namespace) -> int:
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
