import numpy as np
import pytest
from scipy import signal

from gaitedge.data import Normalizer, Recording, causal_filter, design_lowpass, resample
from gaitedge.data.splits import kfold_subjects, parse_subjects, split_subjects
from gaitedge.errors import ConfigError, DataError


def _rec(n=400, rate=100.0, subject="a"):
    t = np.arange(n) / rate
    sig = np.stack([np.sin(2 * np.pi * 1.0 * t), np.cos(2 * np.pi * 2.0 * t)], axis=1)
    labels = (np.arange(n) // 50) % 3
    return Recording(sig, ["acc_x", "gyr_x"], ["m/s^2", "rad/s"], rate, labels=labels,
                     events={"toe_off": np.array([100, 250])}, subject=subject)


def test_resample_rate_labels_events():
    r = resample(_rec(), 50.0)
    assert r.rate_hz == 50.0 and len(r) == 200
    t = np.arange(200) / 50.0
    np.testing.assert_allclose(r.signals[20:-20, 0], np.sin(2 * np.pi * t[20:-20]), atol=0.02)
    assert r.labels[0] == 0 and r.labels[25] == 1 and r.labels[50] == 2
    assert r.events["toe_off"].tolist() == [50, 125]
    with pytest.raises(DataError, match="rational"):
        resample(_rec(), 100.0 * 1013 / 1009)


def test_causal_filter_is_causal_and_starts_in_steady_state():
    sos = design_lowpass(10.0, 100.0, order=2)
    x = np.zeros((200, 1), np.float32)
    x[100] = 1.0
    y = causal_filter(x, sos)
    assert np.all(y[:100] == 0) and y[100] > 0  # nothing before the impulse
    const = np.full((50, 2), 9.81, np.float32)
    np.testing.assert_allclose(causal_filter(const, sos), const, rtol=1e-5)  # no start-up transient
    ref = signal.sosfilt(sos, x[:, 0])
    np.testing.assert_allclose(y[:, 0], ref, atol=1e-6)
    assert causal_filter(x, None) is not None and design_lowpass(0, 100.0) is None
    with pytest.raises(DataError, match="Nyquist"):
        design_lowpass(60.0, 100.0)


def test_normalizer_uses_given_data_only():
    a = np.array([[1.0, 10.0], [3.0, 10.0]], np.float32)
    n = Normalizer.fit([a])
    np.testing.assert_allclose(n.mean, [2.0, 10.0])
    np.testing.assert_allclose(n.std, [1.0, 1.0])  # constant channel: std 1, not 0
    np.testing.assert_allclose(n(np.array([[4.0, 12.0]])), [[2.0, 2.0]])
    assert Normalizer.from_dict(n.to_dict()).mean.tolist() == n.mean.tolist()


def test_nan_is_named():
    r = _rec()
    r.signals[17, 1] = np.nan
    with pytest.raises(DataError, match="sample 17, channel gyr_x"):
        r.check_finite()


def test_subject_splits():
    recs = [_rec(subject=s) for s in ["1", "2", "3", "4", "5", "10"] for _ in range(2)]
    train, val = split_subjects(recs, val_fraction=0.34, seed=1)
    assert {r.subject for r in train}.isdisjoint({r.subject for r in val})
    assert len({r.subject for r in val}) == 2 and len(train) + len(val) == len(recs)
    _, v2 = split_subjects(recs, val_subjects=["10"])
    assert {r.subject for r in v2} == {"10"}
    folds = kfold_subjects(recs, 3, seed=0)
    assert sorted(s for f in folds for s in f) == ["1", "10", "2", "3", "4", "5"]
    assert all(len(f) == 2 for f in folds)
    assert parse_subjects("1-3,7") == ["1", "2", "3", "7"]
    with pytest.raises(ConfigError):
        kfold_subjects(recs, 7)
    with pytest.raises(ConfigError, match="not in the data"):
        split_subjects(recs, val_subjects=["99"])
