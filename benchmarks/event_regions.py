"""Where the gait-event errors are: event F1 by walking phase on IPOL.

Takes finished leave-subjects-out cross-validations (folders written by
``gaitedge cv``, each holding ``cv.json`` and one run per fold, or
``bench_out/cv_ipol.json:ipol_gru`` for a config of ``cv_ipol.py``), labels every
fold's test subjects with that fold's model and sorts each true and each
predicted event by where in the trial it falls, using the trial's JSON:

* *start*: before ``TrialBoundaries[0] + 1.5 s`` (setting off);
* *U-turn*: within ``UTurnBoundaries`` widened by 0.3 s on each side;
* *stop*: after ``TrialBoundaries[1] - 1.5 s`` (the last steps and standing);
* *straight*: the rest (straight walking).

A matched pair counts in the true event's phase, an unmatched true or predicted
event in its own.  Events match one-to-one within ±50 ms (``gaitedge.metrics``).
Each cross-validation is scored with its models' own debounce and, re-applied
offline to the same outputs, with longer minimum phase durations
(``events.min_phase_ms``; the debounce is post-processing, so no retraining).

    python benchmarks/event_regions.py runs/cv-gru96 runs/cv-tcnlstm --min-phase-ms 60 100
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections import Counter
from datetime import date
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchlib import cpu_model, write_section  # noqa: E402
from gaitedge.checkpoint import load_checkpoint  # noqa: E402
from gaitedge.config import load_config  # noqa: E402
from gaitedge.data import load_spec  # noqa: E402
from gaitedge.data.ipol import read_meta  # noqa: E402
from gaitedge.events import debounce_labels, labels_to_events  # noqa: E402
from gaitedge.metrics import EVENT_KINDS, MetricAccumulator, match_events  # noqa: E402

PHASES = ("start", "straight", "U-turn", "stop")
EDGE_S = 1.5
TURN_MARGIN_S = 0.3


def phase_of(i: int, meta: dict, rate_hz: float) -> str:
    """The walking phase of sample ``i`` of a trial (see the module docstring)."""
    tb = meta["TrialBoundaries"]
    ub = meta.get("UTurnBoundaries")
    if ub and ub[0] - TURN_MARGIN_S * rate_hz <= i <= ub[1] + TURN_MARGIN_S * rate_hz:
        return "U-turn"
    if i < tb[0] + EDGE_S * rate_hz:
        return "start"
    if i > tb[1] - EDGE_S * rate_hz:
        return "stop"
    return "straight"


def trial_meta(source: str) -> dict:
    """The JSON metadata of the IPOL trial a foot file belongs to."""
    p = Path(source)
    m = re.match(r"(\d+)-(\d+)_", p.name)
    if not m:
        raise SystemExit(f"{source}: not an IPOL foot file")
    return read_meta(p.parent / f"{m.group(1)}-{m.group(2)}.json")


def load_cv(name: str) -> dict:
    """A cross-validation record: ``DIR`` (its ``cv.json``) or ``FILE.json:KEY`` (``benchmarks/cv_ipol.py``'s results)."""
    path, colon, key = name.rpartition(":")
    if colon and path.endswith(".json"):
        data = json.loads(Path(path).read_text())
        if key not in data:
            raise SystemExit(f"{path}: no cross-validation {key!r} (has {sorted(data)})")
        return data[key]
    return json.loads((Path(name) / "cv.json").read_text())


def config_diff(cfg: dict, base: dict) -> str:
    """``table.key=value`` for every setting of ``cfg`` that differs from ``base`` (threads and test data ignored)."""
    out = []
    for table, values in cfg.items():
        for key, val in values.items() if isinstance(values, dict) else []:
            if (table, key) in (("train", "threads"), ("data", "test")):
                continue
            if base.get(table, {}).get(key) != val:
                out.append(f"{table}.{key}={val}")
    return ", ".join(out) or "none"


def fold_outputs(name: str, data: str, quality: str) -> tuple[dict, list]:
    """(cv record, [(fold, recording, class probabilities, model's min_run, rate Hz)]) over every fold's test subjects."""
    cv = load_cv(name)
    out = []
    for k, fold in enumerate(cv["folds"]):
        run = Path(fold["run"])
        tm = load_checkpoint(run / "model.pt" if run.is_dir() else run)
        subs = ",".join(str(s) for s in fold["test_subjects"])
        spec = f"{data}?subjects={subs}" + ("&quality=checked" if quality == "checked" else "")
        lower_back = bool(tm.config.get("data", {}).get("lower_back", False))
        other_foot = bool(tm.config.get("data", {}).get("other_foot", True))
        for rec in load_spec(spec, other_foot=other_foot, lower_back=lower_back):
            prep = tm.preprocess(rec)
            out.append((k, rec, tm.predict_signals(prep.signals), tm.min_run, tm.rate_hz))
    return cv, out


def ensemble(runs: list[list]) -> list:
    """Mean class probabilities of several cross-validations, recording by recording.

    Only recordings that every cross-validation tested in the same fold are
    kept (a model with the lower-back sensor leaves out trials where that
    sensor stops early); recordings are cut to their shortest version.
    """
    by_source = [{(o[0], o[1].source): o for o in outs} for outs in runs]
    keys = set(by_source[0]).intersection(*by_source[1:])
    if not keys:
        raise SystemExit("--ensemble: the cross-validations share no recording in the same fold")
    out = []
    for key in sorted(keys):
        parts = [b[key] for b in by_source]
        n = min(len(o[2]) for o in parts)
        rec = next(o[1] for o in parts if len(o[1].labels) == n)
        out.append((key[0], rec, np.mean([o[2][:n] for o in parts], axis=0), parts[0][3], parts[0][4]))
    return out


def pooled(outputs: list, min_run: int | None) -> dict:
    """Pooled ``gaitedge.metrics`` summary of the debounced labels."""
    acc = None
    for _, rec, probs, own_run, rate in outputs:
        acc = acc or MetricAccumulator(rec.classes)
        labels = debounce_labels(probs.argmax(axis=1), own_run if min_run is None else min_run)
        acc.add(rec.labels, labels, rec.events, labels_to_events(labels, swing=rec.classes.index("swing")), rate)
    return acc.summary()


def moving_stance(data: str, quality: str, rad_s: float = 2.0, min_ms: float = 150.0) -> Counter:
    """Annotated stance and rest phases per walking phase, and those in which the foot moves.

    A phase (longer than 300 ms; its first and last 100 ms left out, where the
    foot rolls) counts as *moving* if the foot's gyro norm stays above ``rad_s``
    for at least ``min_ms``: the foot turns or steps while the annotation says
    it stands.  Keys (phase, class, "all" | "moving"); class "stance" or "rest".
    """
    c: Counter = Counter()
    for rec in load_spec(data + ("?quality=checked" if quality == "checked" else "")):
        meta = trial_meta(rec.source)
        rate = rec.rate_hz
        gyro = np.linalg.norm(rec.signals[:, [rec.channels.index(f"gyr_{a}") for a in "xyz"]], axis=1)
        edge, need = int(0.1 * rate), int(round(min_ms * rate / 1000.0))
        change = np.flatnonzero(np.diff(rec.labels)) + 1
        for a, b in zip(np.r_[0, change], np.r_[change, len(rec.labels)]):
            cls = rec.classes[rec.labels[a]] if rec.labels[a] >= 0 else ""
            if cls not in ("stance", "rest") or b - a <= 3 * edge:
                continue
            hot = np.r_[0, (gyro[a + edge : b - edge] > rad_s).astype(np.int8), 0]
            d = np.diff(hot)
            longest = (np.flatnonzero(d == -1) - np.flatnonzero(d == 1)).max(initial=0)
            phase = phase_of((a + b) // 2, meta, rate)
            c[(phase, cls, "all")] += 1
            c[(phase, cls, "moving")] += int(longest >= need)
    return c


def count_by_phase(outputs: list, min_run: int | None, tol_ms: float = 50.0) -> Counter:
    """Counts keyed (kind, phase, tp|fn|fp); ``min_run`` None = each model's own debounce."""
    c: Counter = Counter()
    for _, rec, probs, own_run, rate in outputs:
        labels = debounce_labels(probs.argmax(axis=1), own_run if min_run is None else min_run)
        pred = labels_to_events(labels, swing=rec.classes.index("swing"))
        meta = trial_meta(rec.source)
        for kind in EVENT_KINDS:
            t, p = np.asarray(rec.events[kind]), pred[kind]
            pairs = match_events(t, p, tol_ms * rate / 1000.0)
            mt, mp = {a for a, _ in pairs}, {b for _, b in pairs}
            for i, ti in enumerate(t):
                c[(kind, phase_of(int(ti), meta, rate), "tp" if i in mt else "fn")] += 1
            for j, pj in enumerate(p):
                if j not in mp:
                    c[(kind, phase_of(int(pj), meta, rate), "fp")] += 1
    return c


def f1(c: Counter, kind: str, phases: tuple[str, ...]) -> tuple[float, int]:
    tp = sum(c[(kind, g, "tp")] for g in phases)
    fn = sum(c[(kind, g, "fn")] for g in phases)
    fp = sum(c[(kind, g, "fp")] for g in phases)
    return (2 * tp / (2 * tp + fn + fp) if tp + fn + fp else float("nan")), tp + fn


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("cv_dirs", nargs="+", help="folders written by 'gaitedge cv', or FILE.json:KEY of benchmarks/cv_ipol.py")
    ap.add_argument("--data", default=f"ipol:{ROOT.parent / 'shared/data/ipol-gait'}", help="IPOL spec (no options)")
    ap.add_argument("--quality", choices=("checked", "all"), default="checked", help="test trials")
    ap.add_argument("--min-phase-ms", type=float, nargs="*", default=[], help="extra debounce settings to score")
    ap.add_argument("--base", default="configs/ipol_gru.toml", help="config the runs are compared with")
    ap.add_argument("--ensemble", action="store_true", help="also score the mean probability of all cross-validations")
    ap.add_argument("--md", default=str(ROOT / "BENCHMARKS.md"))
    ap.add_argument("--no-md", action="store_true", help="print only")
    args = ap.parse_args()

    head = ("| cross-validation | debounce ms | event | " + " | ".join(f"{p} F1 (n)" for p in PHASES)
            + " | start + straight | all | macro-F1 (pooled) |")
    rows = [head, "|" + "---|" * (len(PHASES) + 6)]
    runs = []
    base = load_config(args.base).to_dict()
    recipes = []

    def add_rows(name: str, outputs: list) -> None:
        rate = outputs[0][4]
        own = outputs[0][3] * 1000.0 / rate
        for ms in [None] + args.min_phase_ms:
            run = None if ms is None else max(1, int(round(ms * rate / 1000.0)))
            c = count_by_phase(outputs, run)
            macro = pooled(outputs, run)["macro_f1"]
            for kind in EVENT_KINDS:
                cells = []
                for p in PHASES:
                    v, n = f1(c, kind, (p,))
                    cells.append(f"{v:.3f} ({n})")
                core, _ = f1(c, kind, ("start", "straight"))
                total, _ = f1(c, kind, PHASES)
                label = f"{own:.0f} (model's)" if ms is None else f"{ms:.0f}"
                rows.append(f"| {name} | {label} | {kind.replace('_', ' ')} | " + " | ".join(cells)
                            + f" | {core:.3f} | {total:.3f} | {macro:.3f} |")
            print("\n".join(rows[-2:]), flush=True)

    for d in args.cv_dirs:
        cv, outputs = fold_outputs(d, args.data, args.quality)
        runs.append(outputs)
        model = cv["config"].get("model", {})
        add_rows(f"`{d}` ({model.get('name', '?')}-{model.get('hidden', '?')})", outputs)
        recipes.append(f"- `{d}`: {len(cv['folds'])} folds of `{cv.get('data', 'ipol?quality=checked')}`; "
                       f"differs from `{args.base}` in: {config_diff(cv['config'], base)}")
    if args.ensemble and len(runs) > 1:
        mixed = ensemble(runs)
        add_rows(f"mean probability of the {len(runs)} above ({len(mixed)} recordings)", mixed)
    mv = moving_stance(args.data, args.quality)
    moving = ("Annotated phases in which the foot moves (gyro norm above 2 rad/s for at least 150 ms, "
              "the first and last 100 ms of the phase left out), all 15 subjects, " + args.quality + " trials:\n\n"
              "| | " + " | ".join(PHASES) + " |\n|---|" + "---|" * len(PHASES) + "\n"
              + "".join(f"| moving / all {cls} phases | "
                        + " | ".join(f"{mv[(p, cls, 'moving')]} / {mv[(p, cls, 'all')]}" for p in PHASES) + " |\n"
                        for cls in ("stance", "rest")))
    body = (
        "## Gait events by walking phase (IPOL, cross-validated)\n\n"
        f"Command: `python benchmarks/event_regions.py {' '.join(args.cv_dirs)}"
        + (f" --min-phase-ms {' '.join(f'{m:g}' for m in args.min_phase_ms)}" if args.min_phase_ms else "")
        + (" --ensemble" if args.ensemble else "")
        + f"`  \nMachine: {cpu_model()}, 2 cores. Date: {date.today().isoformat()}.  \n"
        f"Each fold's model labels its own test subjects ({args.quality} trials); every true and predicted "
        "event is put in a phase of the trial by its JSON: *start* (up to 1.5 s after walking starts), "
        "*U-turn* (`UTurnBoundaries` ± 0.3 s), *stop* (from 1.5 s before walking ends), *straight* (the rest). "
        "F1 within ±50 ms, one-to-one; (n) = true events. *debounce ms*: minimum phase duration applied to the "
        "same model outputs. *macro-F1 (pooled)*: per-sample macro-F1 over all test recordings pooled (the "
        "cross-validation tables give the mean over folds). *mean probability*: the class probabilities of the "
        "cross-validations' models for the same fold averaged sample by sample, then debounced.\n\n"
        + "\n".join(recipes) + "\n\n" + "\n".join(rows) + "\n\n" + moving
    )
    if not args.no_md:
        write_section(args.md, "## Gait events by walking phase (IPOL, cross-validated)", body)
    print(body)


if __name__ == "__main__":
    main()
