"""Twin of ``ge_events.c``: the streaming debounce and transition detector.

State per stream: confirmed label, candidate label, candidate start (sample
index), candidate run length.  The first label of a stream is confirmed as is.
A candidate that differs from the confirmed label and reaches ``min_run``
consecutive samples becomes confirmed; the event is reported at the sample where
the candidate began: toe off when the new label is swing, heel strike when the
old one was.  Equivalent to ``gaitedge.events.debounce_labels`` followed by
``labels_to_events`` (tests check this).
"""

from __future__ import annotations

import numpy as np

from gaitedge.quant.spec import EVENT_HEEL_STRIKE, EVENT_NONE, EVENT_TOE_OFF


class EventState:
    """Detector state of ``B`` streams."""

    def __init__(self, batch: int) -> None:
        self.confirmed = np.full(batch, -1, np.int64)
        self.cand = np.full(batch, -1, np.int64)
        self.start = np.zeros(batch, np.int64)
        self.run = np.zeros(batch, np.int64)


def events_step(st: EventState, label: np.ndarray, sample: int, min_run: int, swing: int):
    """Feed the raw label of ``sample`` for each stream.

    Returns (confirmed labels ``[B]``, event codes ``[B]``, event samples ``[B]``, -1 where none).
    """
    label = np.asarray(label, np.int64)
    first = st.confirmed < 0
    st.confirmed = np.where(first, label, st.confirmed)
    same = (label == st.cand) & ~first
    st.run = np.where(same, np.minimum(st.run + 1, max(min_run, 1)), 1)
    st.start = np.where(same, st.start, sample)
    st.cand = label
    confirm = (st.cand != st.confirmed) & (st.run >= min_run)
    old = st.confirmed
    st.confirmed = np.where(confirm, st.cand, st.confirmed)
    ev = np.full(label.shape, EVENT_NONE, np.int64)
    ev = np.where(confirm & (st.cand == swing), EVENT_TOE_OFF, ev)
    ev = np.where(confirm & (old == swing), EVENT_HEEL_STRIKE, ev)
    ev_sample = np.where(ev != EVENT_NONE, st.start, -1)
    return st.confirmed.copy(), ev, ev_sample
