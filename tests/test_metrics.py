import math

import numpy as np

from gaitedge.events import debounce_labels, labels_to_events
from gaitedge.metrics import MetricAccumulator, confusion, f1_from_confusion, match_events


def test_confusion_and_f1_by_hand():
    y = np.array([0, 0, 1, 1, 1, 2, -1])
    p = np.array([0, 1, 1, 1, 2, 2, 0])
    cm = confusion(y, p, 3)
    assert cm.tolist() == [[1, 1, 0], [0, 2, 1], [0, 0, 1]]
    f1 = f1_from_confusion(cm)
    # class 0: tp 1, fp 0, fn 1 -> 2/3; class 1: tp 2, fp 1, fn 1 -> 4/6; class 2: tp 1, fp 1, fn 0 -> 2/3
    np.testing.assert_allclose(f1, [2 / 3, 2 / 3, 2 / 3])


def test_event_matching_is_one_to_one_within_tolerance():
    # two predictions near one true event: only one may match
    assert match_events(np.array([100]), np.array([98, 103]), 5) == [(0, 0)]
    # greedy nearest would pair 10<->14 and leave 18 unmatched; optimum matches both
    m = match_events(np.array([10, 18]), np.array([14, 23]), 5)
    assert sorted(m) == [(0, 0), (1, 1)]
    assert match_events(np.array([10]), np.array([16]), 5) == []
    assert match_events(np.array([]), np.array([1]), 5) == []


def test_accumulator_by_hand():
    acc = MetricAccumulator(("rest", "stance", "swing"), tolerance_ms=50)
    y = np.array([0, 0, 1, 1, 2, 2, 1, 1])
    p = np.array([0, 0, 1, 2, 2, 2, 1, 1])
    true_ev = {"toe_off": np.array([4, 40]), "heel_strike": np.array([6])}
    pred_ev = {"toe_off": np.array([3, 90]), "heel_strike": np.array([6, 7, 8])}
    acc.add(y, p, true_ev, pred_ev, rate_hz=100.0)  # 50 ms = 5 samples
    m = acc.summary()
    assert m["accuracy"] == 7 / 8
    to = m["events"]["toe_off"]
    assert (to["matched"], to["precision"], to["recall"]) == (1, 0.5, 0.5)
    assert to["median_abs_error_ms"] == 10.0
    hs = m["events"]["heel_strike"]
    assert hs["matched"] == 1 and hs["precision"] == 1 / 3 and hs["recall"] == 1.0
    assert hs["median_abs_error_ms"] == 0.0
    # all events: tp 2 of 3 true and 5 predicted -> F1 = 4/8
    assert m["event_f1"] == 0.5
    assert m["event_median_abs_error_ms"] == 5.0


def test_empty_event_lists_are_nan_not_crash():
    acc = MetricAccumulator(("rest", "stance", "swing"))
    acc.add(np.zeros(5, int), np.zeros(5, int), {"toe_off": np.zeros(0)}, {}, 100.0)
    assert math.isnan(acc.summary()["events"]["toe_off"]["f1"])


def test_transition_detector_and_debounce():
    lab = np.array([0, 0, 2, 2, 2, 1, 1, 2, 1, 1, 1, 2, 2, 2, 0])
    ev = labels_to_events(lab)
    assert ev["toe_off"].tolist() == [2, 7, 11] and ev["heel_strike"].tolist() == [5, 8, 14]
    d = debounce_labels(lab, 3)
    # the one-sample swing at 7 is removed; runs of >= 3 are kept from their first sample
    assert d.tolist() == [0, 0, 2, 2, 2, 2, 2, 2, 1, 1, 1, 2, 2, 2, 2]
    assert labels_to_events(d)["toe_off"].tolist() == [2, 11]
    assert debounce_labels(lab, 1).tolist() == lab.tolist()


def test_unmatched_predictions_at_unlabelled_samples_are_not_false_positives():
    y = np.array([-1, -1, -1, 1, 1, 2, 2, 1, 1, -1, -1, -1])
    p = np.array([2, 2, 1, 1, 1, 2, 2, 1, 1, 2, 2, 1])
    true_ev = {"toe_off": np.array([5]), "heel_strike": np.array([7])}
    # toe off 0 and 9 and heel strike 2 and 11 lie where the reference is unlabelled
    pred_ev = {"toe_off": np.array([0, 5, 9]), "heel_strike": np.array([2, 7, 11])}
    acc = MetricAccumulator(("rest", "stance", "swing"), tolerance_ms=10)
    acc.add(y, p, true_ev, pred_ev, rate_hz=100.0)
    m = acc.summary()
    for kind in ("toe_off", "heel_strike"):
        assert (m["events"][kind]["n_pred"], m["events"][kind]["precision"]) == (1, 1.0)
    # a prediction inside the labelled part that matches nothing still counts
    acc = MetricAccumulator(("rest", "stance", "swing"), tolerance_ms=10)
    acc.add(y, p, true_ev, {"toe_off": np.array([3, 5, 9])}, rate_hz=100.0)
    assert acc.summary()["events"]["toe_off"]["n_pred"] == 2
    # an unlabelled prediction that matches a true event is counted and matched
    y2 = y.copy()
    y2[5] = -1
    acc = MetricAccumulator(("rest", "stance", "swing"), tolerance_ms=10)
    acc.add(y2, p, true_ev, {"toe_off": np.array([5])}, rate_hz=100.0)
    assert acc.summary()["events"]["toe_off"]["matched"] == 1
