"""Echo state networks on IPOL: reservoir size, spectral radius and leak rate against accuracy.

Three one-dimensional sweeps around a base leaky ESN (``hidden`` 200, density
0.05, spectral radius 0.9, leak 0.5, the default input scaling, bias and ridge
grid): reservoir size, spectral radius, leak rate.  Every point builds the
reservoir (seed 0), fits the ridge readout in closed form (penalty chosen by
cross-validation over the training subjects) and reports the per-sample
validation macro-F1 on held-out subjects.

Data: ``configs/ipol_gru.toml``'s recipe (both feet, 12 channels, 100 Hz, 50 ms
output delay), IPOL subjects 1-8 for fitting and 9-11 for validation, checked
trials only, at most ``--trials`` trials per subject (a subset, to keep the study
to a few minutes of one core).

Writes ``benchmarks/figures/esn_study.png`` and the section ``## Echo state
networks: reservoir study`` of BENCHMARKS.md (``benchlib.write_section``).

Usage::

    python benchmarks/bench_esn.py [--trials 3] [--out BENCHMARKS.md]
    python benchmarks/bench_esn.py --render     # redraw and rewrite from the stored results
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from benchlib import cpu_model, load_avg, write_section  # noqa: E402

SECTION = "## Echo state networks: reservoir study"
FIGURE = ROOT / "benchmarks" / "figures" / "esn_study.png"
RESULTS = ROOT / "benchmarks" / "results" / "esn_study.json"
BASE = {"hidden": 200, "density": 0.05, "spectral_radius": 0.9, "leak": 0.5}
SWEEPS = {
    "hidden": [25, 50, 100, 200, 300, 400],
    "spectral_radius": [0.1, 0.3, 0.6, 0.8, 0.9, 0.99],
    "leak": [0.05, 0.1, 0.2, 0.35, 0.5, 0.75, 1.0],
}
LABELS = {"hidden": "reservoir units", "spectral_radius": "spectral radius", "leak": "leak rate a"}


def load(trials: int):
    """Normalized (x, loss targets, labels, subject) of fitting and validation recordings."""
    import torch

    from gaitedge.config import load_config
    from gaitedge.data.preprocess import Normalizer
    from gaitedge.data.spec import load_spec
    from gaitedge.data.windows import loss_labels
    from gaitedge.training.train import prepare_data

    torch.set_num_threads(1)
    cfg = load_config(ROOT / "configs" / "ipol_gru.toml")
    cfg.data.val_subjects = ["9", "10", "11"]
    recs = load_spec("ipol?subjects=1-11&quality=checked", other_foot=True)
    kept, seen = [], {}
    for r in recs:
        seen[r.subject] = seen.get(r.subject, 0) + 1
        if seen[r.subject] <= trials:
            kept.append(r)
    data = prepare_data(cfg, kept)
    norm = Normalizer.fit([r.signals for r in data.train])
    delay = int(round(cfg.events.delay_ms * cfg.data.rate_hz / 1000.0))

    def pack(rs):
        return [(norm(r.signals).astype(np.float32), loss_labels(r.labels, 0, delay), np.asarray(r.labels),
                 str(r.subject)) for r in rs]

    return pack(data.train), pack(data.val), delay, len(data.channels), len(data.classes)


def macro_f1(model, val, delay: int, k: int) -> float:
    import torch

    from gaitedge.metrics import confusion, f1_from_confusion

    cm = np.zeros((k, k), np.int64)
    with torch.no_grad():
        for x, _, lab, _ in val:
            pred = model(torch.from_numpy(x)[None])[0][0].argmax(-1).numpy()
            p, y = pred[delay:], lab[: len(lab) - delay]
            keep = y >= 0
            cm += confusion(y[keep], p[keep], k)
    return float(np.mean(f1_from_confusion(cm)))


def point(settings: dict, train, val, delay: int, c: int, k: int) -> dict:
    from gaitedge.models import build_model

    t0 = time.time()
    fam = "esn" if settings["leak"] == 1.0 else "leaky_esn"
    opts = {key: v for key, v in settings.items() if key != "hidden" and not (fam == "esn" and key == "leak")}
    model = build_model(fam, c, k, hidden=settings["hidden"], **opts)
    rep = model.fit_closed_form([t[0] for t in train], [t[1] for t in train], [t[3] for t in train],
                                lambda *a: None)
    model.eval()
    return {**settings, "val_macro_f1": macro_f1(model, val, delay, k), "ridge": rep["ridge"],
            "recurrent_nonzeros": rep["reservoir"]["recurrent_nonzeros"], "seconds": time.time() - t0}


def plot(rows: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(12, 3.6), sharey=True)
    for ax, (key, vals) in zip(axes, SWEEPS.items()):
        pts = [r for r in rows if r["sweep"] == key]
        ax.plot([r[key] for r in pts], [r["val_macro_f1"] for r in pts], "o-")
        ax.axvline(BASE[key], color="0.7", ls="--", lw=1)
        ax.set_xlabel(LABELS[key])
        if key == "hidden":
            ax.set_xscale("log")
            ax.set_xticks(vals, [str(v) for v in vals], minor=False)
            ax.set_xticks([], minor=True)
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("validation macro-F1")
    fig.suptitle("Leaky ESN on IPOL (fit: subjects 1-8, validation: 9-11); dashed: the base setting", fontsize=10)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def render(rows: list[dict], meta: dict) -> str:
    lines = []
    for key in SWEEPS:
        for r in (r for r in rows if r["sweep"] == key):
            lines.append(f"| {LABELS[key]} | {r['hidden']} | {r['spectral_radius']:g} | {r['leak']:g} "
                         f"| {r['recurrent_nonzeros']:,} | {r['ridge']:g} | {r['val_macro_f1']:.3f} "
                         f"| {r['seconds']:.0f} |")
    best = max(rows, key=lambda r: r["val_macro_f1"])
    return (
        f"{SECTION}\n\n"
        "Leaky echo state networks (`leaky_esn`; leak 1 is the plain `esn`) with the readout fitted in closed "
        "form, three one-dimensional sweeps around the base setting "
        f"(hidden {BASE['hidden']}, density {BASE['density']}, spectral radius {BASE['spectral_radius']}, "
        f"leak {BASE['leak']}; reservoir seed 0; ridge penalty cross-validated over the fitting subjects). "
        "Data: `configs/ipol_gru.toml`'s recipe (both feet, 12 channels, 50 ms output delay), IPOL checked "
        f"trials, at most {meta['trials']} per subject: {meta['n_train']} recordings of subjects 1-8 to fit, "
        f"{meta['n_val']} of subjects 9-11 to validate. Metric: per-sample macro-F1 of the raw (not debounced) "
        "labels on the validation subjects. One reservoir draw (seed 0) per point; the spread over seeds was "
        "not measured, so read differences below ~0.01 with care. *fit s*: building the reservoir, its "
        "states over the fitting data and the cross-validated ridge fit, on a loaded machine.\n\n"
        f"Command: `python benchmarks/bench_esn.py --trials {meta['trials']}`. Machine: {cpu_model()}, one "
        f"thread; load average at the start {meta['load']}. Measured {meta['date']} ({meta['total_s']:.0f} s in "
        "all).\n\n"
        "![ESN study](benchmarks/figures/esn_study.png)\n\n"
        "| sweep | units | spectral radius | leak | recurrent nonzeros | ridge | val macro-F1 | fit s |\n"
        "|---|---|---|---|---|---|---|---|\n" + "\n".join(lines) + "\n\n"
        f"Best point: {best['hidden']} units, spectral radius {best['spectral_radius']:g}, leak "
        f"{best['leak']:g} (macro-F1 {best['val_macro_f1']:.3f}).\n"
    )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--trials", type=int, default=3, help="trials per subject (a subset keeps it short)")
    ap.add_argument("--out", default=str(ROOT / "BENCHMARKS.md"))
    ap.add_argument("--render", action="store_true", help=f"only redraw and rewrite the section from {RESULTS.name}")
    args = ap.parse_args(argv)
    if args.render:
        saved = json.loads(RESULTS.read_text())
        plot(saved["rows"], FIGURE)
        write_section(args.out, SECTION, render(saved["rows"], saved["meta"]))
        return 0
    t0 = time.time()
    load0 = load_avg()
    train, val, delay, c, k = load(args.trials)
    rows = []
    for key, vals in SWEEPS.items():
        for v in vals:
            settings = {**BASE, key: v}
            r = point(settings, train, val, delay, c, k)
            r["sweep"] = key
            rows.append(r)
            print(json.dumps(r), flush=True)
    meta = {"trials": args.trials, "n_train": len(train), "n_val": len(val), "load": load0,
            "date": datetime.now(timezone.utc).strftime("%Y-%m-%d"), "total_s": time.time() - t0}
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps({"meta": meta, "rows": rows}, indent=1))
    plot(rows, FIGURE)
    write_section(args.out, SECTION, render(rows, meta))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
