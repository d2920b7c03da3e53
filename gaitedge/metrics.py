"""Gait-phase metrics: per-sample classification and event detection.

* Per sample: accuracy, per-class F1 and macro-F1 over labelled samples.
* Events (heel strike, toe off): a predicted event and a true event match if they
  are within ``tolerance_ms``; matching is one-to-one and minimises the total
  timing error among maximum matchings (assignment problem, scipy).  Precision,
  recall, F1 from the matches; median and mean absolute timing error (ms) over
  matched pairs.  A predicted event that matches no true event is a false
  positive only where the reference is labelled: at a sample whose true label is
  unlabelled (-1), e.g. outside the annotated strides of a partly annotated
  recording, it is left out of the counts.  Fully labelled references are scored
  exactly as before.

Results are accumulated over recordings with :class:`MetricAccumulator` (counts
are pooled, not averaged per recording).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy.optimize import linear_sum_assignment

EVENT_KINDS = ("heel_strike", "toe_off")


def confusion(y_true: np.ndarray, y_pred: np.ndarray, n_classes: int) -> np.ndarray:
    """``[n_classes, n_classes]`` counts, rows = true class; unlabelled (< 0) skipped."""
    y_true = np.asarray(y_true)
    y_pred = np.asarray(y_pred)
    keep = y_true >= 0
    idx = y_true[keep] * n_classes + y_pred[keep]
    return np.bincount(idx, minlength=n_classes * n_classes).reshape(n_classes, n_classes)


def f1_from_confusion(cm: np.ndarray) -> np.ndarray:
    """Per-class F1; a class absent from both truth and prediction gets NaN."""
    tp = np.diag(cm).astype(np.float64)
    fp = cm.sum(axis=0) - tp
    fn = cm.sum(axis=1) - tp
    denom = 2 * tp + fp + fn
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(denom > 0, 2 * tp / np.maximum(denom, 1), np.nan)


def match_events(true_idx: np.ndarray, pred_idx: np.ndarray, tolerance: float) -> list[tuple[int, int]]:
    """One-to-one matches ``(i_true, j_pred)`` with ``|t - p| <= tolerance`` samples.

    Maximises the number of matches, then minimises the summed absolute error.
    """
    t = np.asarray(true_idx, dtype=np.float64)
    p = np.asarray(pred_idx, dtype=np.float64)
    if len(t) == 0 or len(p) == 0:
        return []
    d = np.abs(t[:, None] - p[None, :])
    ok = d <= tolerance
    # Big constant for forbidden pairs: any allowed matching beats leaving one out.
    big = (tolerance + 1.0) * (min(len(t), len(p)) + 1)
    cost = np.where(ok, d, big)
    rows, cols = linear_sum_assignment(cost)
    return [(int(r), int(c)) for r, c in zip(rows, cols) if ok[r, c]]


def unscored_predictions(y_true: np.ndarray, pred_idx: np.ndarray, matched: list[int]) -> int:
    """How many unmatched predicted events lie at unlabelled reference samples.

    Such predictions are neither right nor wrong: the reference says nothing
    there (label ``-1``).  Indices outside ``0 .. len(y_true) - 1`` are not
    counted here (they stay false positives).
    """
    y = np.asarray(y_true)
    p = np.asarray(pred_idx, dtype=np.int64)
    if len(p) == 0 or not (y < 0).any():
        return 0
    free = np.ones(len(p), dtype=bool)
    free[list(matched)] = False
    inside = (p >= 0) & (p < len(y))
    cand = p[free & inside]
    return int(np.count_nonzero(y[cand] < 0))


@dataclass
class EventCounts:
    """Pooled event-matching counts and timing errors (in samples) of one event kind."""

    tp: int = 0
    n_true: int = 0
    n_pred: int = 0
    errors_ms: list[float] = field(default_factory=list)

    def summary(self) -> dict:
        prec = self.tp / self.n_pred if self.n_pred else float("nan")
        rec = self.tp / self.n_true if self.n_true else float("nan")
        f1 = 2 * self.tp / (self.n_true + self.n_pred) if (self.n_true + self.n_pred) else float("nan")
        err = np.asarray(self.errors_ms)
        return {
            "precision": prec,
            "recall": rec,
            "f1": f1,
            "n_true": self.n_true,
            "n_pred": self.n_pred,
            "matched": self.tp,
            "median_abs_error_ms": float(np.median(err)) if len(err) else float("nan"),
            "mean_abs_error_ms": float(np.mean(err)) if len(err) else float("nan"),
        }


class MetricAccumulator:
    """Accumulates per-sample and event metrics over many recordings."""

    def __init__(self, classes: tuple[str, ...], tolerance_ms: float = 50.0) -> None:
        self.classes = tuple(classes)
        self.tolerance_ms = tolerance_ms
        self.cm = np.zeros((len(classes), len(classes)), dtype=np.int64)
        self.events = {k: EventCounts() for k in EVENT_KINDS}

    def add(
        self,
        y_true: np.ndarray,
        y_pred: np.ndarray,
        true_events: dict[str, np.ndarray],
        pred_events: dict[str, np.ndarray],
        rate_hz: float,
    ) -> None:
        """Add one recording (labels as class codes, events as sample indices).

        Unmatched predicted events at samples whose true label is unlabelled
        (< 0) are not counted as predictions (see the module docstring).
        """
        self.cm += confusion(y_true, y_pred, len(self.classes))
        tol = self.tolerance_ms * rate_hz / 1000.0
        for kind in EVENT_KINDS:
            if kind not in true_events:
                continue
            t = np.asarray(true_events[kind])
            p = np.asarray(pred_events.get(kind, np.zeros(0, np.int64)))
            m = match_events(t, p, tol)
            c = self.events[kind]
            c.tp += len(m)
            c.n_true += len(t)
            c.n_pred += len(p) - unscored_predictions(y_true, p, [j for _, j in m])
            c.errors_ms.extend(abs(float(t[i] - p[j])) * 1000.0 / rate_hz for i, j in m)

    def summary(self) -> dict:
        """All metrics as plain data (floats, ints, lists)."""
        f1 = f1_from_confusion(self.cm)
        n = self.cm.sum()
        out: dict = {
            "n_samples": int(n),
            "accuracy": float(np.trace(self.cm) / n) if n else float("nan"),
            "macro_f1": float(np.nanmean(f1)) if np.isfinite(f1).any() else float("nan"),
            "f1": {c: float(v) for c, v in zip(self.classes, f1)},
            "confusion": self.cm.tolist(),
            "classes": list(self.classes),
            "tolerance_ms": self.tolerance_ms,
        }
        ev = {k: c.summary() for k, c in self.events.items()}
        out["events"] = ev
        all_c = EventCounts(
            tp=sum(c.tp for c in self.events.values()),
            n_true=sum(c.n_true for c in self.events.values()),
            n_pred=sum(c.n_pred for c in self.events.values()),
            errors_ms=[e for c in self.events.values() for e in c.errors_ms],
        )
        s = all_c.summary()
        out["event_f1"] = s["f1"]
        out["event_median_abs_error_ms"] = s["median_abs_error_ms"]
        out["event_mean_abs_error_ms"] = s["mean_abs_error_ms"]
        return out


def format_summary(m: dict) -> str:
    """A short human-readable table of a metrics summary."""
    lines = [
        f"samples {m['n_samples']}   accuracy {m['accuracy']:.4f}   macro-F1 {m['macro_f1']:.4f}",
        "per-class F1: " + "  ".join(f"{c} {v:.4f}" for c, v in m["f1"].items()),
    ]
    for kind, e in m.get("events", {}).items():
        lines.append(
            f"{kind:<12} P {e['precision']:.4f}  R {e['recall']:.4f}  F1 {e['f1']:.4f}  "
            f"(true {e['n_true']}, pred {e['n_pred']})  |err| median {e['median_abs_error_ms']:.1f} ms, "
            f"mean {e['mean_abs_error_ms']:.1f} ms"
        )
    if "event_f1" in m:
        lines.append(f"all events   F1 {m['event_f1']:.4f}  |err| median {m['event_median_abs_error_ms']:.1f} ms")
    return "\n".join(lines)
