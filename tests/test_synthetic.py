import numpy as np

from gaitedge.data import GAIT_CLASSES, synth_dataset
from gaitedge.events import labels_to_events


def test_deterministic_and_seeded():
    a = synth_dataset(subjects=2, trials=1, seed=3)
    b = synth_dataset(subjects=2, trials=1, seed=3)
    c = synth_dataset(subjects=2, trials=1, seed=4)
    np.testing.assert_array_equal(a[0].signals, b[0].signals)
    assert not np.array_equal(a[0].signals[:100], c[0].signals[:100])


def test_structure_matches_the_real_task():
    recs = synth_dataset(subjects=6, trials=2, seed=0, other_foot=True)
    assert len(recs) == 24 and {r.subject for r in recs} == {f"syn{i}" for i in range(1, 7)}
    rest, stance, swing = (GAIT_CLASSES.index(c) for c in ("rest", "stance", "swing"))
    cadences = []
    for r in recs:
        assert r.signals.shape[1] == 12 and r.signals.dtype == np.float32
        assert r.labels[0] == rest and r.labels[-1] == rest
        assert {stance, swing} <= set(np.unique(r.labels))
        ev = labels_to_events(r.labels)
        assert ev["toe_off"].tolist() == r.events["toe_off"].tolist()
        assert ev["heel_strike"].tolist() == r.events["heel_strike"].tolist()
        to = r.events["toe_off"]
        cadences.append(r.rate_hz / np.median(np.diff(to)))
        # heel-strike impact: vertical acceleration jumps right after heel strike
        hs = r.events["heel_strike"]
        jump = np.abs(np.diff(r.signals[:, 2]))
        assert np.median(jump[hs]) > 5 * np.median(jump)
        # canonical frame: the foot turns toe-up in swing (gyr_y far below its stance value)
        assert r.signals[r.labels == swing, 4].mean() < r.signals[r.labels == stance, 4].mean() - 1.5
        assert r.frame == "foot-canonical"
    assert 0.75 <= min(cadences) and max(cadences) <= 1.3
    assert np.std(cadences) > 0.03  # subjects differ
