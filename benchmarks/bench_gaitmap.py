"""gaitedge's causal models against gaitmap's offline stride pipeline, on IPOL.

gaitmap (``BarthDtw`` stride segmentation, then ``RamppEventDetection``) is the
usual offline way to find heel strikes and toe offs in foot-mounted IMU data.
This script runs it and trained gaitedge models on the same IPOL test subjects
and scores both with ``gaitedge.metrics`` (events only: gaitmap gives events,
no per-sample labels).

* gaitmap's input: each foot as gaitedge's IPOL loader gives it (canonical foot
  frame: x toward the toes, y left, z up, acc m/s², gyro rad/s), gyro turned
  into deg/s, the feet named ``left_sensor`` / ``right_sensor`` and converted to
  gaitmap's foot body frame with gaitmap's own ``convert_to_fbf``.  No other
  rotation: the run also checks that the canonical frame is gaitmap's foot
  sensor frame.  As a control the same pipeline runs on the data with x and y
  negated (a 180° turn about z); if the frames agree, that variant should find
  few strides.
* gaitmap's defaults, ``sampling_rate_hz=100`` (its 204.8 Hz template is
  resampled by gaitmap).  Per stride ``ic`` is a heel strike, ``tc`` a toe off.
* The gaitedge models (``--run``; default ``bench_out/mount/before`` and
  ``bench_out/mount/after``) label the same recordings with
  ``TrainedModel.predict``; their events come from the debounced labels.  A run
  folder without ``model.pt`` yet is polled once a minute (``--wait-min``).
* Scoring: ``MetricAccumulator`` (one-to-one matching within ±tolerance, 50 ms
  by default), pooled over all recordings, and by walking phase with the phases
  of ``benchmarks/event_regions.py`` (start, straight, U-turn, stop).  An
  unmatched detection at an unlabelled sample is not counted (IPOL labels every
  sample, so none is left out here).

gaitmap and gaitmap-mad are not gaitedge dependencies (gaitmap-mad is AGPL);
install them for this benchmark only::

    pip install gaitmap==2.6.0 gaitmap-mad==2.6.0      # or: pip install -e '.[bench-gaitmap]'
    python benchmarks/bench_gaitmap.py

Writes ``benchmarks/results/bench_gaitmap.json`` and the section "Against
gaitmap" of BENCHMARKS.md (``--no-md``: print only).
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import time
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from benchlib import cpu_model, write_section  # noqa: E402
from event_regions import PHASES, f1, phase_of, trial_meta  # noqa: E402
from gaitedge.checkpoint import check_input, load_checkpoint  # noqa: E402
from gaitedge.data import load_spec  # noqa: E402
from gaitedge.metrics import EVENT_KINDS, MetricAccumulator, match_events  # noqa: E402

HEADING = "## Against gaitmap"
AXES = ("acc_x", "acc_y", "acc_z", "gyr_x", "gyr_y", "gyr_z")
#: the control variant: x and y negated (acc and gyro), i.e. a 180° turn about z
FLIP_XY = np.array([-1, -1, 1, -1, -1, 1], dtype=np.float64)
SHORT = {"heel_strike": "HS", "toe_off": "TO"}
INSTALL_HINT = (
    "bench_gaitmap.py needs gaitmap and gaitmap-mad (not gaitedge dependencies; gaitmap-mad is AGPL). "
    "Install them for this benchmark only: pip install gaitmap==2.6.0 gaitmap-mad==2.6.0 "
    "(or pip install -e '.[bench-gaitmap]')."
)


def import_gaitmap():
    """(BarthDtw, RamppEventDetection, convert_to_fbf, pandas), or exit with one clear message."""
    try:
        import pandas as pd
        from gaitmap.event_detection import RamppEventDetection
        from gaitmap.stride_segmentation import BarthDtw
        from gaitmap.utils.coordinate_conversion import convert_to_fbf
    except ImportError as exc:
        raise SystemExit(f"{INSTALL_HINT}\n(import failed: {exc})") from None
    return BarthDtw, RamppEventDetection, convert_to_fbf, pd


def trials(recs: list) -> dict[str, dict[str, object]]:
    """Recordings grouped by trial: {``S-T``: {"left": rec, "right": rec}}."""
    out: dict[str, dict[str, object]] = defaultdict(dict)
    for r in recs:
        out[Path(r.source).name.rsplit("_", 1)[0]][r.location.split("_")[0]] = r
    return dict(out)


def run_gaitmap(grouped: dict, sign: np.ndarray) -> tuple[dict, dict, float]:
    """gaitmap's events and segmented strides per recording source, and the seconds it took.

    ``sign`` multiplies the six canonical-frame axes before anything else
    (all ones = the data as gaitedge loads it).
    """
    BarthDtw, RamppEventDetection, convert_to_fbf, pd = import_gaitmap()
    events: dict[str, dict[str, np.ndarray]] = {}
    strides: dict[str, np.ndarray] = {}
    t0 = time.perf_counter()
    for _stem, feet in sorted(grouped.items()):
        data = {}
        for foot, rec in feet.items():
            x = rec.signals[:, [rec.channels.index(a) for a in AXES]].astype(np.float64) * sign
            x[:, 3:] = np.rad2deg(x[:, 3:])  # gaitmap wants deg/s
            data[f"{foot}_sensor"] = pd.DataFrame(x, columns=list(AXES))
        rate = feet["left"].rate_hz
        fbf = convert_to_fbf(data, left_like="left_", right_like="right_")
        seg = BarthDtw().segment(fbf, sampling_rate_hz=rate)
        det = RamppEventDetection().detect(fbf, seg.stride_list_, sampling_rate_hz=rate)
        for foot, rec in feet.items():
            sl = seg.stride_list_[f"{foot}_sensor"]
            ev = det.annotated_original_event_list_[f"{foot}_sensor"]
            strides[rec.source] = sl[["start", "end"]].to_numpy(np.int64).reshape(-1, 2)
            events[rec.source] = {
                kind: np.unique(ev[col].dropna().to_numpy().astype(np.int64))
                for kind, col in (("heel_strike", "ic"), ("toe_off", "tc"))
            }
    return events, strides, time.perf_counter() - t0


def wait_for(run: Path, minutes: float) -> Path:
    """``run/model.pt`` (or ``run`` if it is a file), polling once a minute for up to ``minutes``."""
    path = run if run.suffix == ".pt" else run / "model.pt"
    deadline = time.monotonic() + minutes * 60.0
    while not path.is_file():
        if time.monotonic() >= deadline:
            raise SystemExit(f"{path}: no checkpoint after waiting {minutes:g} min")
        print(f"waiting for {path} ...", flush=True)
        time.sleep(60.0)
    return path


def model_events(path: Path, recs: list) -> tuple[dict, str, float]:
    """A gaitedge model's events per recording source, a short name, and the seconds it took."""
    tm = load_checkpoint(path)
    cfg = tm.config
    tr = cfg.get("train", {})
    where = path.parent if path.name == "model.pt" else path
    where = where.resolve().relative_to(ROOT) if where.resolve().is_relative_to(ROOT) else where
    name = (f"gaitedge {cfg.get('model', {}).get('name', tm.model.family).upper()}-"
            f"{cfg.get('model', {}).get('hidden', '?')} (`{where}`; "
            f"rotation ±{tr.get('augment_rotation_deg', 0):g}°{', mirror' if tr.get('augment_mirror') else ''})")
    out = {}
    t0 = time.perf_counter()
    for rec in recs:
        if rec.rate_hz != tm.rate_hz:
            raise SystemExit(f"{path}: model rate {tm.rate_hz} Hz, data {rec.rate_hz} Hz; this benchmark needs them equal")
        if tm.frame != rec.frame:
            raise SystemExit(f"{path}: model expects the {tm.frame!r} frame, the data is in {rec.frame!r}")
        check_input(tm, rec)
        _, _, _, ev = tm.predict(rec)
        out[rec.source] = ev
    return out, name, time.perf_counter() - t0


def score(recs: list, pred: dict, tolerance_ms: float, strides: dict | None = None) -> dict:
    """Event metrics of one method: pooled, by walking phase, signed offsets, events outside strides."""
    acc = MetricAccumulator(recs[0].classes, tolerance_ms=tolerance_ms)
    phases: Counter = Counter()
    signed: dict[str, list[float]] = {k: [] for k in EVENT_KINDS}
    outside = Counter()
    for rec in recs:
        p = pred[rec.source]
        # events only: the true labels stand in for predicted ones, and the per-sample part is dropped below
        acc.add(rec.labels, rec.labels, rec.events, p, rec.rate_hz)
        meta = trial_meta(rec.source)
        tol = tolerance_ms * rec.rate_hz / 1000.0
        for kind in EVENT_KINDS:
            t, q = np.asarray(rec.events[kind]), np.asarray(p[kind])
            pairs = match_events(t, q, tol)
            signed[kind] += [(q[j] - t[i]) * 1000.0 / rec.rate_hz for i, j in pairs]
            mt, mp = {a for a, _ in pairs}, {b for _, b in pairs}
            for i, ti in enumerate(t):
                phases[(kind, phase_of(int(ti), meta, rec.rate_hz), "tp" if i in mt else "fn")] += 1
            for j, pj in enumerate(q):
                if j not in mp:
                    phases[(kind, phase_of(int(pj), meta, rec.rate_hz), "fp")] += 1
            if strides is not None:
                se = strides[rec.source]
                inside = ((t[:, None] >= se[None, :, 0]) & (t[:, None] <= se[None, :, 1])).any(axis=1) \
                    if len(se) else np.zeros(len(t), bool)
                outside[kind] += int((~inside).sum())
                for ti in t[~inside]:
                    outside[(kind, phase_of(int(ti), meta, rec.rate_hz))] += 1
    s = acc.summary()
    out = {"events": s["events"], "event_f1": s["event_f1"],
           "event_median_abs_error_ms": s["event_median_abs_error_ms"],
           "tolerance_ms": tolerance_ms,
           "signed_median_error_ms": {k: float(np.median(v)) if v else float("nan") for k, v in signed.items()},
           "by_phase": {kind: {ph: dict(zip(("f1", "n_true"), f1(phases, kind, (ph,)))) for ph in PHASES}
                        for kind in EVENT_KINDS}}
    if strides is not None:
        out["strides_detected"] = int(sum(len(strides[r.source]) for r in recs))
        out["per_recording"] = {Path(r.source).stem: {"strides": len(strides[r.source]),
                                                      "annotated_swings": len(r.events["heel_strike"])}
                                for r in recs}
        out["true_events_outside_strides"] = {k: outside[k] for k in EVENT_KINDS}
        out["true_events_outside_strides_by_phase"] = {k: {ph: outside[(k, ph)] for ph in PHASES}
                                                       for k in EVENT_KINDS}
    return out


def fmt(v: float, nd: int = 3) -> str:
    return "n/a" if v != v else f"{v:.{nd}f}"


def table(results: dict) -> str:
    first = next(iter(results.values()))["by_phase"]
    n = {p: f"{first['heel_strike'][p]['n_true']} / {first['toe_off'][p]['n_true']}" for p in PHASES}
    head = ("| method | HS F1 | TO F1 | HS P / R | TO P / R | HS / TO median timing error ms | "
            + " | ".join(f"{p} F1 HS / TO (n {n[p]})" for p in PHASES) + " |")
    rows = [head, "|" + "---|" * (6 + len(PHASES))]
    for name, r in results.items():
        e = r["events"]
        hs, to = e["heel_strike"], e["toe_off"]
        cells = [fmt(hs["f1"]), fmt(to["f1"]),
                 f"{fmt(hs['precision'])} / {fmt(hs['recall'])}", f"{fmt(to['precision'])} / {fmt(to['recall'])}",
                 f"{fmt(hs['median_abs_error_ms'], 0)} / {fmt(to['median_abs_error_ms'], 0)}"]
        cells += [f"{fmt(r['by_phase']['heel_strike'][p]['f1'])} / {fmt(r['by_phase']['toe_off'][p]['f1'])}"
                  for p in PHASES]
        rows.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(rows)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default=f"ipol:{ROOT.parent / 'shared/data/ipol-gait'}", help="IPOL spec (no options)")
    ap.add_argument("--subjects", default="12-15", help="IPOL test subjects")
    ap.add_argument("--run", action="append", type=Path, default=None,
                    help="gaitedge run folder or model.pt (repeatable; default bench_out/mount/before and .../after)")
    ap.add_argument("--wait-min", type=float, default=20.0, help="how long to wait for a run's model.pt")
    ap.add_argument("--tolerance-ms", type=float, default=50.0, help="event matching tolerance")
    ap.add_argument("--wide-tolerance-ms", type=float, default=100.0, help="also scored at this tolerance")
    ap.add_argument("--json", default=str(ROOT / "benchmarks/results/bench_gaitmap.json"))
    ap.add_argument("--md", default=str(ROOT / "BENCHMARKS.md"))
    ap.add_argument("--no-md", action="store_true", help="print only")
    args = ap.parse_args()
    import_gaitmap()  # fail early, before any waiting
    import gaitmap

    runs = args.run or [ROOT / "bench_out/mount/before", ROOT / "bench_out/mount/after"]
    spec = f"{args.data}?subjects={args.subjects}"
    recs = load_spec(spec, other_foot=True)
    grouped = trials(recs)
    n_true = {k: int(sum(len(r.events[k]) for r in recs)) for k in EVENT_KINDS}
    print(f"{len(recs)} recordings ({len(grouped)} trials) of {spec}; true events {n_true}", flush=True)

    preds: dict[str, tuple[dict, dict | None]] = {}
    seconds: dict[str, float] = {}
    gm_name = "gaitmap BarthDtw + RamppEventDetection (offline)"
    ev, st, seconds[gm_name] = run_gaitmap(grouped, np.ones(6))
    preds[gm_name] = (ev, st)
    flip_name = "control: gaitmap on the data with x, y negated"
    ev, st, seconds[flip_name] = run_gaitmap(grouped, FLIP_XY)
    preds[flip_name] = (ev, st)
    for run in runs:
        ev, name, seconds[name] = model_events(wait_for(run, args.wait_min), recs)
        preds[name] = (ev, None)

    results = {name: score(recs, ev, args.tolerance_ms, st) for name, (ev, st) in preds.items()}
    wide = {name: score(recs, ev, args.wide_tolerance_ms, st) for name, (ev, st) in preds.items()}
    main_names = [n for n in results if n != flip_name]
    tab = table({n: results[n] for n in main_names})
    print(tab)

    def gm_facts(name: str) -> str:
        r = results[name]
        out = r["true_events_outside_strides"]
        few = [f"{k} {v['strides']}/{v['annotated_swings']}" for k, v in r["per_recording"].items()
               if v["strides"] < 0.7 * v["annotated_swings"]]
        feet = {f: sum(v["strides"] for k, v in r["per_recording"].items() if k.endswith(f)) for f in ("lf", "rf")}
        return (f"{r['strides_detected']} strides segmented for {n_true['heel_strike']} annotated swings "
                f"(left feet {feet['lf']}, right feet {feet['rf']}; recordings with fewer than 70 % of their "
                f"swings segmented: {', '.join(few) if len(few) <= 10 else f'{len(few)} of {len(recs)}'}); "
                f"annotated events outside every segmented stride: HS {out['heel_strike']}, TO {out['toe_off']} "
                "(" + ", ".join(f"{ph} {r['true_events_outside_strides_by_phase']['heel_strike'][ph]} / "
                                f"{r['true_events_outside_strides_by_phase']['toe_off'][ph]}" for ph in PHASES)
                + "); "
                f"HS F1 {fmt(r['events']['heel_strike']['f1'])}, TO F1 {fmt(r['events']['toe_off']['f1'])}")

    extra = ["| method | HS / TO F1 at ±{:g} ms | HS / TO signed median offset ms (detected − annotated, ±{:g} ms) |"
             .format(args.wide_tolerance_ms, args.wide_tolerance_ms), "|---|---|---|"]
    for n in results:
        w = wide[n]
        extra.append(f"| {n} | {fmt(w['events']['heel_strike']['f1'])} / {fmt(w['events']['toe_off']['f1'])} | "
                     f"{fmt(w['signed_median_error_ms']['heel_strike'], 0)} / "
                     f"{fmt(w['signed_median_error_ms']['toe_off'], 0)} |")
    nproc = subprocess.run(["nproc"], capture_output=True, text=True).stdout.strip()
    when = subprocess.run(["date"], capture_output=True, text=True).stdout.strip()
    cmd = "python benchmarks/bench_gaitmap.py" + "".join(f" --run {r}" for r in (args.run or []))
    body = (
        f"{HEADING}\n\n"
        f"Command: `{cmd}` (gaitmap {gaitmap.__version__} and gaitmap-mad installed for this benchmark only: "
        "`pip install -e '.[bench-gaitmap]'`)  \n"
        f"Machine: {cpu_model()}, `nproc` {nproc}. Date: {when}.  \n"
        f"Data: IPOL subjects {args.subjects}, all trials, both feet ({len(recs)} recordings, "
        f"{n_true['heel_strike']} heel strikes, {n_true['toe_off']} toe offs annotated). gaitmap gets each foot "
        "in gaitedge's canonical foot frame with the gyro in deg/s, as `left_sensor` / `right_sensor`, through "
        "gaitmap's `convert_to_fbf`, default `BarthDtw()` and `RamppEventDetection()` at "
        "`sampling_rate_hz=100`; `ic` = heel strike, `tc` = toe off. The gaitedge models label the same "
        "recordings causally (their own debounce). Both are scored by `gaitedge.metrics`: events matched "
        f"one-to-one within ±{args.tolerance_ms:g} ms, pooled; phases as in \"Gait events by walking phase\" "
        "(start: first 1.5 s of walking, U-turn: `UTurnBoundaries` ± 0.3 s, stop: last 1.5 s, straight: the "
        "rest).\n\n"
        + tab + "\n\n"
        "Same detections at a wider tolerance, and their systematic offset:\n\n" + "\n".join(extra) + "\n\n"
        f"gaitmap: {gm_facts(gm_name)}.  \n"
        f"Frame check (control, x and y negated before the same pipeline): {gm_facts(flip_name)}.  \n"
        "Time for all recordings (machine shared with other jobs): "
        + "; ".join(f"{n.split(' (`')[0].split(' (o')[0]}{' ' + n.split('`')[1] if '`' in n else ''} {s:.1f} s"
                    for n, s in seconds.items())
        + " (gaitmap includes its first-call compilation).\n"
    )
    # a hand-written reading of the numbers, kept across re-runs
    if Path(args.md).exists():
        old = re.search(rf"^{re.escape(HEADING)}\n.*?(?=^## |\Z)", Path(args.md).read_text(), re.S | re.M)
        notes = re.search(r"^\*\*What it shows\.\*\*.*?(?=\n\n|\Z)", old.group(0), re.S | re.M) if old else None
        if notes:
            body += "\n" + notes.group(0).strip() + "\n"
    out = {"data": spec, "n_recordings": len(recs), "n_trials": len(grouped), "n_true_events": n_true,
           "tolerance_ms": args.tolerance_ms, "wide_tolerance_ms": args.wide_tolerance_ms,
           "gaitmap_version": gaitmap.__version__, "machine": {"cpu": cpu_model(), "nproc": nproc}, "date": when,
           "seconds": seconds, "methods": results, "wide": wide}
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(out, indent=1) + "\n")
    if not args.no_md:
        write_section(args.md, HEADING, body)
    print(body)


if __name__ == "__main__":
    main()
