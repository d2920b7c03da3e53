"""Power cut at every unit of a weight update: the host firmware never ends up with a mixture.

    python benchmarks/bench_power_cut.py [--hidden 16 32] [--history 2 1] [--sample N] [--md FILE]

The host build of the firmware (``boards/host``, weight slots in a file) gets one full
update of a new model while the power fails at flash unit k (``--power-cut k``: one unit
per programmed byte, one per erase; an erase cut short leaves the first half of the slot
erased and the rest with its old bytes), for every k from 0 (during the slot erase) to
U (no cut at all), U being the units of one full update.  After each cut the board
restarts on that flash file and runs a fixed input; its INFO and results must be
exactly the old model's or exactly the new model's, old before the commit record is
complete in flash and new from there on.  The setup and the check are
``benchmarks/powercut.py`` (shared with ``tests/test_power_cut.py``).

Scenarios (``--history``): 2, the flash holds a stale model (generation 1, slot A)
and the old one (generation 2, slot B), so the update erases and rewrites a slot with
committed weights; 1, the flash holds only the old model (slot A) and the update goes
into the erased slot B.  Per model size and scenario the table gives the units of one
update (erase + header + payload + commit record bytes), the cut points tried, the
outcomes old / new / other (other must be 0), the transition point and the time.
``--sample N`` tries every operation boundary, every commit-record byte and N random
other units instead of all.  Exit status 1 when any outcome is "other" or the
transition is not where the commit record completes.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
from benchlib import cpu_model, load_avg, write_section  # noqa: E402
import powercut as pc  # noqa: E402

SECTION = "## Power cut during a weight update"


def run_scenario(image, models, hidden: int, history: int, sample: int | None, seed: int, work: Path,
                 log=print) -> dict:
    """All (or a sample of the) cut points of one update; a row of the table."""
    setup = pc.prepare(image, work / f"h{hidden}-{history}", models, pc.sample_counts(models[0]), history=history)
    points = setup.cut_points(sample or 0, seed=seed, every=sample is None)
    log(f"hidden {hidden}, history {history}: {setup.units} units ({len(setup.blob_new)}-byte blob, "
        f"{len(setup.marks) - 3} chunks), {len(points)} cut points")
    t0 = time.perf_counter()
    outcomes = []
    for i, k in enumerate(points):
        o = pc.run_cut(setup, k)
        outcomes.append(o)
        if o.kind == "other":
            log(f"  k={k}: {o.detail}")
        if (i + 1) % 500 == 0:
            log(f"  {i + 1}/{len(points)} ({time.perf_counter() - t0:.0f} s)")
    seconds = time.perf_counter() - t0
    n = {kind: sum(o.kind == kind for o in outcomes) for kind in ("old", "new", "other")}
    wrong = [o.k for o in outcomes if o.kind != "other" and o.kind != ("new" if o.k >= setup.transition else "old")]
    return {
        "hidden": hidden, "history": history, "blob": len(setup.blob_new), "chunks": len(setup.marks) - 3,
        "units": setup.units, "record_start": setup.record_start, "points": len(points), **n,
        "transition": pc.transition_of(outcomes), "expected": setup.transition, "misplaced": len(wrong),
        "seconds": seconds, "ms_per_cut": 1000 * seconds / len(points),
        "exhaustive": sample is None,
    }


def section(rows: list[dict], command: str, total: float) -> str:
    """The BENCHMARKS.md section."""
    lines = [
        SECTION, "",
        f"Command: `{command}` ({dt.date.today().isoformat()}, {cpu_model()}, {os.cpu_count()} cores shared with "
        f"other jobs, load {load_avg()}; {total:.0f} s in all).", "",
        "The host firmware (`gaitedge-fw-host --flash FILE --power-cut k`) loses power at flash unit k of one "
        "full weight update (a unit: one programmed byte, or one erase; an erase cut short leaves the first half "
        "of the slot erased, the rest old), then restarts on that file without the cut and runs a fixed input.  "
        "History 2: the update rewrites slot A, which holds a stale committed model (generation 1), while the "
        "old model (generation 2) runs from slot B; history 1: the update goes into the erased slot B.  "
        "Outcomes: exactly the old model's INFO and results, exactly the new model's, or other (a mixture, "
        "another model, no boot).  Transition: the first k that gives the new model (k = units: no cut); the "
        "commit record's units are the last 32.", "",
        "| GRU hidden | history | blob bytes | chunks | units U | cut points | old | new | other | transition "
        "| ms / cut | time |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        tr = "none" if r["transition"] is None else f"{r['transition']}"
        if r["transition"] is not None and r["transition"] == r["expected"]:
            last = r["transition"] - r["record_start"] - 1
            tr += f" (commit-record byte {last} of 0..31 written)"
        lines.append(f"| {r['hidden']} | {r['history']} | {r['blob']} | {r['chunks']} | {r['units']} | "
                     f"{r['points']}{'' if r['exhaustive'] else ' (sample)'} | {r['old']} | {r['new']} | "
                     f"{r['other']} | {tr} | {r['ms_per_cut']:.1f} | {r['seconds']:.0f} s |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--hidden", type=int, nargs="+", default=[16, 32], help="GRU sizes (default 16 32)")
    ap.add_argument("--history", type=int, nargs="+", default=[2, 1], choices=[1, 2],
                    help="updates done before (default 2 1)")
    ap.add_argument("--sample", type=int, default=None,
                    help="boundaries + commit record + N random units instead of every unit")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--md", default="", help="write the section into this Markdown file (default: print only)")
    args = ap.parse_args(argv)

    from gaitedge.firmware import build_firmware

    t0 = time.perf_counter()
    rows = []
    with tempfile.TemporaryDirectory(prefix="gaitedge-powercut-") as tmp:
        work = Path(tmp)
        for hidden in args.hidden:
            models = pc.make_models(hidden=hidden)
            image = build_firmware(models[0], work / f"fw{hidden}", board="host").image
            for history in args.history:
                rows.append(run_scenario(image, models, hidden, history, args.sample, args.seed, work))
    total = time.perf_counter() - t0
    command = "python benchmarks/bench_power_cut.py" + (" " + " ".join(argv if argv is not None else sys.argv[1:])
                                                         if (argv if argv is not None else sys.argv[1:]) else "")
    text = section(rows, command.strip(), total)
    print(text)
    if args.md:
        write_section(args.md, SECTION, text)
    ok = all(r["other"] == 0 and r["misplaced"] == 0 and r["transition"] == r["expected"] for r in rows)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
