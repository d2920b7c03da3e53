"""Metrics of a quantized model on recordings, computed with the integer reference."""

from __future__ import annotations

import numpy as np

from gaitedge.data.preprocess import has_labels, resample
from gaitedge.data.recording import Recording
from gaitedge.errors import DataError
from gaitedge.events import debounce_labels, labels_to_events
from gaitedge.metrics import MetricAccumulator
from gaitedge.quant.model import QuantModel, Runner
from gaitedge.quant.mounting import Triad


def recording_counts(qm: QuantModel, rec: Recording) -> np.ndarray:
    """A recording's model channels at the model rate as int16 sensor counts ``(T, C)``."""
    r = rec.select_channels(qm.channels)
    r.check_finite()
    r = resample(r, qm.rate_hz)
    return qm.to_counts(r.signals)


def predict_counts(qm: QuantModel, counts: list[np.ndarray], batch: int = 64,
                   mounting: list[Triad] | None = None) -> list[np.ndarray]:
    """Raw argmax labels per sample (output delay removed) for each counts array.

    Streams are run side by side (``batch`` at a time); each stream is extended by
    ``delay`` copies of its last sample, as the float pipeline does.  ``mounting``:
    sensor triads rotated in every stream before the preprocessing
    (:mod:`gaitedge.quant.mounting`); None = identity.
    """
    out: list[np.ndarray] = [np.zeros(0, np.int64)] * len(counts)
    order = np.argsort([len(c) for c in counts])
    for s in range(0, len(order), batch):
        idx = order[s : s + batch]
        tmax = max(len(counts[i]) for i in idx) + qm.delay
        xb = np.zeros((len(idx), tmax, qm.n_inputs), np.int64)
        for b, i in enumerate(idx):
            c = counts[i]
            xb[b, : len(c)] = c
            xb[b, len(c) :] = c[-1]
        runner = Runner(qm, batch=len(idx), mounting=mounting)
        labels = np.zeros((len(idx), tmax), np.int64)
        for t in range(tmax):
            labels[:, t] = runner.step(xb[:, t]).raw_label
        for b, i in enumerate(idx):
            out[i] = labels[b, qm.delay : qm.delay + len(counts[i])]
    return out


def evaluate_quant(qm: QuantModel, recs: list[Recording], tolerance_ms: float = 50.0,
                   mounting: list[Triad] | None = None) -> dict:
    """Pooled metrics (as ``gaitedge.training.evaluate.evaluate_model``) of the integer pipeline.

    A whole-window model runs each recording as one window (``gaitedge.quant.window``).
    ``mounting``: sensor triads rotated on the raw counts of every recording, as the
    device does (:mod:`gaitedge.quant.mounting`); None = identity.
    """
    labelled = [r for r in recs if has_labels(r)]
    if not labelled:
        raise DataError("no labelled recordings to evaluate on")
    counts = [recording_counts(qm, r) for r in labelled]
    if qm.architecture == "window":
        from gaitedge.quant.window import predict_windows

        preds = predict_windows(qm, counts, mounting=mounting)
    else:
        preds = predict_counts(qm, counts, mounting=mounting)
    acc = MetricAccumulator(qm.classes, tolerance_ms=tolerance_ms)
    for rec, p in zip(labelled, preds):
        lab = debounce_labels(p, qm.min_run)
        ev = labels_to_events(lab, swing=qm.swing) if qm.swing >= 0 else {}
        ref = resample(rec, qm.rate_hz) if rec.rate_hz != qm.rate_hz else rec
        acc.add(ref.labels, lab, ref.events, ev, qm.rate_hz)
    m = acc.summary()
    m["n_recordings"] = len(labelled)
    m["subjects"] = sorted({r.subject for r in labelled})
    return m
