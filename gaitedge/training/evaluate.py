"""Evaluate a trained model on recordings: labels, events, metrics."""

from __future__ import annotations

import numpy as np

from gaitedge.checkpoint import TrainedModel, check_input, pad_for_delay
from gaitedge.data.preprocess import has_labels, resample
from gaitedge.data.recording import Recording
from gaitedge.errors import DataError
from gaitedge.metrics import MetricAccumulator


def evaluate_model(
    tm: TrainedModel, recs: list[Recording], detected: list[tuple[Recording, dict[str, np.ndarray]]] | None = None
) -> dict:
    """Pooled metrics of ``tm`` over labelled recordings (at the model's rate).

    Adds ``n_recordings`` and ``subjects`` to the summary.  ``detected``, if
    given, receives each recording with its detected events (sample indices at
    the model rate).
    """
    labelled = [r for r in recs if has_labels(r)]
    if not labelled:
        raise DataError("no labelled recordings to evaluate on")
    acc = MetricAccumulator(tm.classes, tolerance_ms=tm.tolerance_ms)
    for rec in labelled:
        if tuple(rec.classes) != tuple(tm.classes):
            raise DataError(f"{rec.source}: classes {rec.classes} differ from the model's {tm.classes}")
        check_input(tm, rec)
        prep, _, labels, events = tm.predict(rec)
        ref = resample(rec, tm.rate_hz) if rec.rate_hz != tm.rate_hz else rec
        acc.add(ref.labels, labels, ref.events, events, tm.rate_hz)
        if detected is not None:
            detected.append((rec, events))
    out = acc.summary()
    out["n_recordings"] = len(labelled)
    out["subjects"] = sorted({r.subject for r in labelled})
    return out


def predict_arrays(
    tm: TrainedModel, xs: list[np.ndarray]
) -> list[np.ndarray]:
    """Raw argmax labels (delay removed) for filtered, un-normalized arrays, batched."""
    import torch

    if not xs:
        return []
    lens = [len(x) for x in xs]
    xs = [pad_for_delay(x, tm.delay) for x in xs]
    order = np.argsort(lens)
    out: list[np.ndarray] = [np.zeros(0)] * len(xs)
    tm.model.eval()
    # a whole-window model must not see another recording's padding (its backward pass would)
    per = 64 if getattr(tm.model, "causal", True) else 1
    with torch.no_grad():
        for start in range(0, len(xs), per):
            idx = order[start : start + per]
            tmax = max(len(xs[i]) for i in idx)
            batch = np.zeros((len(idx), tmax, xs[idx[0]].shape[1]), np.float32)
            for b, i in enumerate(idx):
                batch[b, : len(xs[i])] = tm.normalizer(xs[i])
            logits, _ = tm.model(torch.from_numpy(batch))
            pred = logits.argmax(-1).numpy()
            for b, i in enumerate(idx):
                out[i] = pred[b, tm.delay : tm.delay + lens[i]]
    return out
