"""Sweep throughput (trials per hour, 1 and 2 worker processes) and what median pruning saves.

* ``--part throughput``: ``gaitedge sweep`` over an 8-point learning-rate grid of a
  tiny config (synthetic gait, GRU-8, 2 epochs of 3 steps), once with
  ``--workers 1`` and once with ``--workers 2``; trials per hour of wall time
  (process start-up, data loading, training, validation and the study's
  database included).
* ``--part pruning``: the same random search of ``configs/ipol_gru.toml``
  (``--random N`` over learning rate and hidden size, seed 0, so both runs draw
  the same trials) with ``--pruner none`` and ``--pruner median``; pruned
  trials, epochs not trained, wall time, and whether the best trial is the same.

Results go to ``benchmarks/results/bench_sweep.json`` and a Markdown summary is
printed.  Run from the repository root: ``python benchmarks/bench_sweep.py``.
"""

from __future__ import annotations

import argparse
import csv
import json
import shlex
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from benchlib import cpu_model, load_avg  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
TINY = """[data]
train = "synthetic?n=5&trials=2"
val_subjects = ["syn5"]
[model]
hidden = 8
[train]
epochs = 2
steps_per_epoch = 3
batch_size = 8
window_s = 2.0
"""
LRS = "0.002,0.003,0.005,0.007,0.01,0.015,0.02,0.03"


def sweep(args: list[str]) -> tuple[float, list[dict]]:
    """Run ``gaitedge sweep ARGS``; (wall seconds, rows of its trials.csv)."""
    out = Path(args[args.index("--out") + 1])
    t0 = time.time()
    r = subprocess.run([sys.executable, "-m", "gaitedge", "sweep", *args], cwd=ROOT, capture_output=True, text=True)
    wall = time.time() - t0
    if r.returncode not in (0, 1):
        raise SystemExit(f"sweep failed:\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}")
    return wall, list(csv.DictReader(open(out / "trials.csv")))


def _command(args: list[str]) -> str:
    """The command line as run, paths relative to the repository root."""
    return shlex.join(["gaitedge", "sweep", *args]).replace(str(ROOT) + "/", "")


def part_throughput(out: Path) -> dict:
    out.mkdir(parents=True, exist_ok=True)
    base = out / "tiny.toml"
    base.write_text(TINY)
    res: dict = {"config": TINY, "grid": f"train.lr={LRS}", "runs": []}
    for workers in (1, 2):
        load = load_avg()
        args = [str(base), "--grid", f"train.lr={LRS}", "--workers", str(workers), "--out", str(out / f"w{workers}"),
                "--force"]
        wall, rows = sweep(args)
        n = sum(r["status"] == "ok" for r in rows)
        res["runs"].append({"workers": workers, "trials": n, "wall_s": wall, "trials_per_hour": n / wall * 3600,
                            "load_before": load, "load_after": load_avg(),
                            "command": _command(args)})
    return res


def part_pruning(out: Path, n: int, workers: int) -> dict:
    res: dict = {"runs": []}
    for pruner in ("none", "median"):
        load = load_avg()
        args = ["configs/ipol_gru.toml", "--random", str(n), "--seed", "0",
                "--space", "train.lr=1e-4:1e-1:log", "--space", "model.hidden=16:64",
                "--epochs", "4", "--set", "train.steps_per_epoch=10", "--data", "ipol?subjects=1-6",
                "--pruner", pruner, "--workers", str(workers), "--out", str(out / f"prune-{pruner}"), "--force"]
        wall, rows = sweep(args)
        epochs = sum(int(r["epochs_run"] or 0) for r in rows)
        ok = [r for r in rows if r["status"] == "ok"]
        best = max(ok, key=lambda r: float(r["score"])) if ok else None
        res["runs"].append({
            "pruner": pruner, "wall_s": wall, "trials": len(rows),
            "pruned": sum(r["status"] == "pruned" for r in rows), "epochs_trained": epochs, "epochs_planned": 4 * n,
            "best_trial": best and int(best["trial"]), "best_score": best and float(best["score"]),
            "rows": rows, "load_before": load, "load_after": load_avg(),
            "command": _command(args)})
    return res


def render(results: dict) -> str:
    lines = [f"machine: {cpu_model()}; date {results['date']}"]
    if "throughput" in results:
        lines += ["", "| workers | trials | wall s | trials per hour | load before / after |", "|---|---|---|---|---|"]
        for r in results["throughput"]["runs"]:
            lines.append(f"| {r['workers']} | {r['trials']} | {r['wall_s']:.1f} | {r['trials_per_hour']:.0f} | "
                         f"{r['load_before']} / {r['load_after']} |")
    if "pruning" in results:
        lines += ["", "| pruner | trials | pruned | epochs trained / planned | wall s | best trial (val score) |",
                  "|---|---|---|---|---|---|"]
        for r in results["pruning"]["runs"]:
            lines.append(f"| {r['pruner']} | {r['trials']} | {r['pruned']} | {r['epochs_trained']} / "
                         f"{r['epochs_planned']} | {r['wall_s']:.0f} | {r['best_trial']} ({r['best_score']:.4f}) |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--part", choices=["throughput", "pruning", "all"], default="all")
    ap.add_argument("--out", default="bench_out/sweep", help="sweep folders (default bench_out/sweep)")
    ap.add_argument("--trials", type=int, default=8, help="trials of the pruning comparison (default 8)")
    ap.add_argument("--workers", type=int, default=2, help="workers of the pruning comparison (default 2)")
    args = ap.parse_args()
    out = (ROOT / args.out).resolve()
    path = ROOT / "benchmarks/results/bench_sweep.json"
    results = json.loads(path.read_text()) if path.exists() else {}
    results["date"] = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    if args.part in ("throughput", "all"):
        results["throughput"] = part_throughput(out / "throughput")
    if args.part in ("pruning", "all"):
        results["pruning"] = part_pruning(out / "pruning", args.trials, args.workers)
    path.write_text(json.dumps(results, indent=1))
    print(render(results))


if __name__ == "__main__":
    main()
