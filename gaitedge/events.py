"""Gait events from gait-phase labels: the transition detector.

A toe off is any transition into ``swing``; a heel strike any transition out of
it.  Optionally a label change is only accepted once the new label has persisted
for ``min_run`` samples (a debounce).  The detector is causal: it confirms a change
``min_run - 1`` samples after it happened, and reports the event at the sample
where the new label began, so debouncing costs latency but not timing accuracy.
The C runtime implements the same state machine.
"""

from __future__ import annotations

import numpy as np

SWING = 2  # code of "swing" in GAIT_CLASSES


def debounce_labels(labels: np.ndarray, min_run: int) -> np.ndarray:
    """Apply the causal debounce to a label sequence (offline equivalent).

    The confirmed label starts as ``labels[0]``.  A run of a different label is
    adopted (from its first sample) only if it lasts at least ``min_run``
    samples; shorter runs are replaced by the confirmed label.  ``min_run <= 1``
    returns a copy of ``labels``.
    """
    labels = np.asarray(labels, dtype=np.int64)
    out = labels.copy()
    if min_run <= 1 or len(labels) == 0:
        return out
    confirmed = labels[0]
    i = 0
    n = len(labels)
    while i < n:
        j = i
        while j < n and labels[j] == labels[i]:
            j += 1
        if labels[i] != confirmed:
            if j - i >= min_run:
                confirmed = labels[i]
            else:
                out[i:j] = confirmed
        i = j
    return out


def labels_to_events(labels: np.ndarray, swing: int = SWING) -> dict[str, np.ndarray]:
    """Event sample indices from a label sequence.

    ``toe_off``: first sample of every swing run; ``heel_strike``: first sample
    after every swing run (only if the recording continues past it).
    """
    labels = np.asarray(labels)
    is_swing = labels == swing
    d = np.diff(is_swing.astype(np.int8))
    to = np.flatnonzero(d == 1) + 1
    hs = np.flatnonzero(d == -1) + 1
    return {"toe_off": to.astype(np.int64), "heel_strike": hs.astype(np.int64)}
