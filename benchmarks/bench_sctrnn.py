"""S-CTRNN: next-sample prediction NLL and the anomaly score on perturbed gait (IPOL).

Uses the S-CTRNN the model table trained (``benchmarks/bench_models.py --rows sctrnn``:
IPOL subjects 1-11, class head + 0.1 x next-sample NLL; trained here the same way if
the run is missing) and measures on the test subjects 12-15:

1. the next-sample Gaussian NLL ``1/2 [log(2 pi sigma^2) + (x_{t+1} - mu)^2 / sigma^2]``
   in nats, normalized signal units, averaged per sample and channel (and summed over
   the channels per sample), with two references: a fixed N(0, 1) per channel (the
   normalized signal's own distribution) and persistence (``x_{t+1} ~ N(x_t, s_c^2)``,
   ``s_c`` the RMS sample-to-sample change on the training subjects);
2. the anomaly score (mean surprise per sample over a 1 s window, about one stride)
   of normal windows against the same windows perturbed three ways: time-reversed,
   with 10 spikes of +-3 (normalized units), and with its 10-sample pieces shuffled.
   Every window is scored after 3 s of its own recording as context.  Reported: mean
   score normal vs perturbed and the ROC AUC (probability that a perturbed window
   scores higher than a normal one).

Usage: ``python benchmarks/bench_sctrnn.py [--runs-dir runs/bench_models] [--epochs 20]``;
writes the section ``## S-CTRNN: next-sample prediction and anomaly score`` of BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import torch

from benchlib import cpu_model, write_section

ROOT = Path(__file__).resolve().parents[1]
SECTION = "## S-CTRNN: next-sample prediction and anomaly score"
WINDOW = 100
CONTEXT = 300


def auc(neg: np.ndarray, pos: np.ndarray) -> float:
    """ROC AUC = P(pos > neg) + P(pos = neg) / 2 (Mann-Whitney)."""
    neg, pos = np.asarray(neg), np.asarray(pos)
    gt = (pos[:, None] > neg[None, :]).mean()
    eq = (pos[:, None] == neg[None, :]).mean()
    return float(gt + 0.5 * eq)


def perturb(win: np.ndarray, how: str, rng: np.random.Generator) -> np.ndarray:
    w = win.copy()
    if how == "time-reversed":
        return w[::-1].copy()
    if how == "spikes":
        idx = rng.choice(len(w), 10, replace=False)
        w[idx] += rng.choice([-3.0, 3.0], size=(10, w.shape[1]))
        return w
    if how == "shuffled":
        pieces = w.reshape(-1, 10, w.shape[1])
        return pieces[rng.permutation(len(pieces))].reshape(w.shape)
    raise ValueError(how)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs-dir", default="runs/bench_models")
    ap.add_argument("--epochs", type=int, default=20)
    ap.add_argument("--out", default=str(ROOT / "BENCHMARKS.md"))
    args = ap.parse_args(argv)
    sys.path.insert(0, str(ROOT))
    torch.set_num_threads(1)
    from bench_models import TEST_SPEC, TRAIN_SPEC, parse_row, train_row

    from gaitedge.checkpoint import load_checkpoint
    from gaitedge.data.spec import load_spec

    t0 = time.time()
    name, family, opts = parse_row("sctrnn")
    run = train_row(name, family, opts, Path(args.runs_dir), args.epochs, False, print)
    tm = load_checkpoint(run)
    metrics = json.loads((run / "metrics.json").read_text())
    model = tm.model.eval()
    other = tm.config["data"]["other_foot"]

    def signals(spec: str) -> list[np.ndarray]:
        return [np.asarray(tm.normalizer(tm.preprocess(r).signals), np.float32)
                for r in load_spec(spec, other_foot=other)]

    train = signals(TRAIN_SPEC)
    test = signals(TEST_SPEC)
    s_c = np.sqrt(np.mean(np.concatenate([np.diff(x, axis=0) ** 2 for x in train]), axis=0))

    # ---- next-sample NLL ----------------------------------------------------------------
    nll_sum = base_sum = pers_sum = 0.0
    n = 0
    for x in test:
        with torch.no_grad():
            xt = torch.from_numpy(x)[None]
            y, _ = model._top(xt, None)
            nll = model.sequence_nll(xt, y)[0].numpy()  # [T-1, C]
        nll_sum += float(nll.sum())
        base_sum += float((0.5 * (np.log(2 * np.pi) + x[1:] ** 2)).sum())
        pers_sum += float((0.5 * (np.log(2 * np.pi * s_c**2) + (x[1:] - x[:-1]) ** 2 / s_c**2)).sum())
        n += nll.shape[0]
    c = test[0].shape[1]
    per = {k: v / (n * c) for k, v in (("sctrnn", nll_sum), ("n01", base_sum), ("persist", pers_sum))}

    # ---- anomaly score --------------------------------------------------------------------
    rng = np.random.default_rng(0)
    kinds = ("time-reversed", "spikes", "shuffled")
    snippets = {k: [] for k in ("normal", *kinds)}
    for x in test:
        for start in range(CONTEXT, len(x) - WINDOW, 4 * WINDOW):
            ctx, win = x[start - CONTEXT : start], x[start : start + WINDOW]
            snippets["normal"].append(np.concatenate([ctx, win]))
            for k in kinds:
                snippets[k].append(np.concatenate([ctx, perturb(win, k, rng)]))
    scores = {}
    for k, lst in snippets.items():
        batch = np.stack(lst)
        out = []
        for i in range(0, len(batch), 64):
            out.append(model.anomaly_score(batch[i : i + 64])[:, CONTEXT:].mean(1))
        scores[k] = np.concatenate(out)
    n_win = len(scores["normal"])
    rows = [f"| {k} | {scores[k].mean():.2f} | {auc(scores['normal'], scores[k]):.3f} |" for k in kinds]

    date = datetime.now(timezone.utc).strftime("%Y-%m-%d")
    body = (
        f"{SECTION}\n\n"
        "The S-CTRNN of the model table (`sctrnn` row: IPOL subjects 1-11, cross-entropy + 0.1 x next-sample "
        f"NLL, {tm.model.hidden} units, {metrics['epochs_run']} epochs) predicts every next sample "
        "of the test subjects 12-15 (all trials) as a Gaussian per channel. NLL in nats per sample and channel, "
        "normalized signal units (lower is better):\n\n"
        "| predictor | NLL per sample and channel | per sample (sum of channels) |\n|---|---|---|\n"
        f"| S-CTRNN (mu, sigma = exp(beta) from y_t) | {per['sctrnn']:.3f} | {per['sctrnn'] * c:.2f} |\n"
        f"| persistence, N(x_t, s_c^2) (s_c from training subjects) | {per['persist']:.3f} | "
        f"{per['persist'] * c:.2f} |\n"
        f"| fixed N(0, 1) per channel | {per['n01']:.3f} | {per['n01'] * c:.2f} |\n\n"
        f"Anomaly score: mean surprise per sample (nats, {c} channels) over 1 s windows ({n_win} windows, one "
        f"every 4 s of every test recording, each after {CONTEXT / 100:g} s of its own recording as context), "
        "normal against the same windows perturbed; AUC = probability that the perturbed window scores higher "
        f"than a normal one. Normal windows: mean score {scores['normal'].mean():.2f}.\n\n"
        "| perturbation | mean score | ROC AUC vs normal |\n|---|---|---|\n" + "\n".join(rows) + "\n\n"
        f"Command: `python benchmarks/bench_sctrnn.py`. Machine: {cpu_model()}, one thread. Measured {date} "
        f"({time.time() - t0:.0f} s).\n"
    )
    write_section(args.out, SECTION, body)
    print(body)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
