"""Sensor mounting on the integer side: C ``ge_mounting.c`` against its twin ``gaitedge.quant.mounting``.

The C runtime is built with host gcc and ``-fsanitize=address,undefined`` (portable
and DSP-emulated variants, tests/ctools.py); the harness takes the mounting as
``-m i0,i1,i2,r00,..,r22`` options.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from gaitedge.data.spec import load_spec
from gaitedge.errors import DataError
from gaitedge.quant import Runner, quantize_model
from gaitedge.quant.evaluate import recording_counts
from gaitedge.quant.mounting import MOUNT_ONE, Triad, check_triads, rotate_counts, rotation_q14

sys.path.insert(0, str(Path(__file__).resolve().parent))
from ctools import GCC, build, c_steps, py_steps, runtime_objects  # noqa: E402
from test_quant import make_tm  # noqa: E402

pytestmark = pytest.mark.skipif(GCC is None, reason="no host C compiler (gcc)")

#: acc, gyr of the worn foot, acc, gyr of the other foot (the synthetic recordings' order)
TRIAD_CHANNELS = [(0, 1, 2), (3, 4, 5), (6, 7, 8), (9, 10, 11)]


def mount_args(triads: list[Triad]) -> list[str]:
    """Harness options for a mounting."""
    out: list[str] = []
    for t in triads:
        out += ["-m", ",".join(str(int(v)) for v in (*t.channels, *t.rot.ravel()))]
    return out


def random_triads(seed: int, mirror_one: bool = True) -> list[Triad]:
    """Four triads with random rotations; the third one mirrored (det -1) when ``mirror_one``."""
    rots = Rotation.random(4, random_state=seed).as_matrix()
    if mirror_one:
        rots[2] = rots[2] @ np.diag([1.0, -1.0, 1.0])
    return [Triad(ch, rotation_q14(m)) for ch, m in zip(TRIAD_CHANNELS, rots)]


def extreme_counts(n: int, channels: int, seed: int) -> np.ndarray:
    """Random int16 counts, a third of them at +-32767 / -32768 (saturation of the rotation)."""
    rng = np.random.default_rng(seed)
    c = rng.integers(-32768, 32768, size=(n, channels))
    pick = rng.random((n, channels))
    c[pick < 0.15] = 32767
    c[(pick >= 0.15) & (pick < 0.3)] = -32767
    c[(pick >= 0.3) & (pick < 0.35)] = -32768
    return c.astype(np.int16)


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    """A 12-channel GRU with a low-pass filter, and the harness for both C variants."""
    recs = load_spec("synthetic?n=2&trials=1", other_foot=True)
    tm = make_tm(recs, family="gru", hidden=8, lowpass=12.0, min_run=2)
    qm = quantize_model(tm, recs[:2])
    exes = build(qm, runtime_objects(), tmp_path_factory.mktemp("mount"))
    return qm, recs, exes


def run_c(exe: Path, counts: np.ndarray, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(exe), *args], input=np.asarray(counts, "<i2").tobytes(), capture_output=True)


def test_rotate_kernel_bit_exact_with_saturation(model):
    qm, _, exes = model
    counts = extreme_counts(3000, qm.n_inputs, seed=1)
    for seed in range(3):
        triads = random_triads(seed)
        ref = rotate_counts(counts, triads)
        assert (np.abs(ref) == 32767).mean() > 0.05 and (ref == -32768).any(), "saturation must be exercised"
        for variant, exe in exes.items():
            r = run_c(exe, counts, *mount_args(triads), "rotate")
            assert r.returncode == 0, r.stderr.decode()
            got = np.array([list(map(int, ln.split())) for ln in r.stdout.decode().splitlines()])
            bad = np.argwhere(got != ref)
            assert len(bad) == 0, f"{variant} seed {seed}: sample {bad[0][0]}: C {got[bad[0][0]]} vs {ref[bad[0][0]]}"


def test_model_steps_with_mounting_bit_exact(model):
    qm, recs, exes = model
    counts = recording_counts(qm, recs[-1])[:600]
    counts[::97] = extreme_counts(len(counts[::97]), qm.n_inputs, seed=5)
    triads = random_triads(7)
    runner = Runner(qm, mounting=triads)
    ref = np.array([[o.raw_label[0], o.label[0], o.event[0], o.event_sample[0], *o.logits[0]]
                    for o in (runner.step(c[None]) for c in counts)])
    assert not np.array_equal(ref, py_steps(qm, counts)), "the mounting should change the outputs"
    for variant, exe in exes.items():
        got = c_steps(exe, counts, *mount_args(triads), "step")
        assert np.array_equal(got, ref), variant
        # ge_reset keeps the mounting (the twin's reset too)
        runner = Runner(qm, mounting=triads)
        ref_reset = []
        for t, c in enumerate(counts):
            if t == 250:
                runner.reset()
            o = runner.step(c[None])
            ref_reset.append([o.raw_label[0], o.label[0], o.event[0], o.event_sample[0], *o.logits[0]])
        assert np.array_equal(c_steps(exe, counts, *mount_args(triads), "reset", "250"), np.array(ref_reset))


def test_identity_equals_no_mounting(model):
    qm, recs, exes = model
    counts = recording_counts(qm, recs[0])[:400]
    ident = [Triad(ch, rotation_q14(np.eye(3))) for ch in TRIAD_CHANNELS]
    assert np.array_equal(rotate_counts(counts, ident), counts.astype(np.int64))
    assert np.array_equal(rotate_counts(counts, []), counts.astype(np.int64))
    ref = py_steps(qm, counts)
    assert Runner(qm, mounting=ident).mounting == []  # identity triads are dropped (no cost), as in C
    out = Runner(qm, mounting=ident).run(counts)
    assert np.array_equal(out["logits"][0], ref[:, 4:])
    for exe in exes.values():
        assert np.array_equal(c_steps(exe, counts), ref)
        assert np.array_equal(c_steps(exe, counts, *mount_args(ident), "step"), ref)


def test_bad_triads_refused(model):
    qm, _, exes = model
    good = random_triads(3)
    bad_sets = {
        "index out of range": [Triad((0, 1, qm.n_inputs), good[0].rot)],
        "channel repeated in a triad": [Triad((0, 1, 1), good[0].rot)],
        "channel in two triads": [good[0], Triad((2, 3, 4), good[1].rot)],
        "entry beyond 2^14": [Triad((0, 1, 2), np.full((3, 3), MOUNT_ONE + 1))],
    }
    for what, triads in bad_sets.items():
        with pytest.raises(DataError):
            check_triads(triads, qm.n_inputs)
        with pytest.raises(DataError):
            Runner(qm, mounting=triads)
        for exe in exes.values():
            r = run_c(exe, [], *mount_args(triads), "mount")
            assert r.stdout.decode().split() == ["-6"], what  # GE_ERR_MOUNTING
            r = run_c(exe, np.zeros((2, qm.n_inputs)), *mount_args(triads), "step")
            assert r.returncode == 6 and r.stdout.decode().strip() == "status -6", what
    with pytest.raises(DataError, match="at most 4"):
        check_triads(good + [good[0]], qm.n_inputs)
    # a refused mounting leaves the previous one in force (twin and C selftest)
    runner = Runner(qm, mounting=good)
    with pytest.raises(DataError):
        runner.set_mounting(bad_sets["index out of range"])
    assert runner.mounting == good
    for exe in exes.values():
        assert run_c(exe, [], *mount_args(good), "mount").stdout.decode().split() == ["0"]
        r = subprocess.run([str(exe), "selftest"], capture_output=True, text=True)
        assert r.returncode == 0 and r.stdout.strip() == "ok", r.stdout + r.stderr


def test_rotation_q14():
    m = Rotation.from_euler("zyx", [30, -20, 10], degrees=True).as_matrix()
    q = rotation_q14(m)
    assert q.dtype == np.int16 and q.shape == (3, 3)
    assert np.array_equal(q, np.sign(m) * np.floor(np.abs(m) * 16384 + 0.5))
    assert np.array_equal(rotation_q14(np.eye(3)), 16384 * np.eye(3))
    mirror = np.diag([1.0, -1.0, 1.0]) @ m
    assert np.linalg.det(mirror) < 0 and rotation_q14(mirror).shape == (3, 3)
    assert rotation_q14(-np.eye(3)).min() == -16384
    with pytest.raises(DataError, match="not a rotation"):
        rotation_q14(np.diag([1.0, 2.0, 1.0]))
    with pytest.raises(DataError, match="not a rotation"):
        rotation_q14(np.ones((3, 3)) / np.sqrt(3))
    with pytest.raises(DataError, match="3×3"):
        rotation_q14(np.eye(2))
    with pytest.raises(DataError, match="3×3"):
        rotation_q14([[1, 0, 0], [0, np.nan, 0], [0, 0, 1]])


def test_window_api_with_mounting_bit_exact(tmp_path):
    """ge_window_run_mounted == window_run(..., mounting=...) (a small bidirectional GRU)."""
    from gaitedge.quant.window import window_run
    from windowtools import build_harness, make_window_tm

    recs = load_spec("synthetic?n=2&trials=1", other_foot=True)
    tm = make_window_tm(recs, "bigru", hidden=8, lowpass=12.0, delay=1)
    qm = quantize_model(tm, recs[:2])
    exe = build_harness(qm, tmp_path, window=160)
    win = recording_counts(qm, recs[-1])[:160]
    win[::31] = extreme_counts(len(win[::31]), qm.n_inputs, seed=2)
    triads = random_triads(11)
    out = window_run(qm, win, mounting=triads)
    ref = np.column_stack([out["label"][0], out["logits"][0]])
    plain = window_run(qm, win)
    assert not np.array_equal(out["logits"], plain["logits"])
    r = run_c(exe, win, *mount_args(triads), "run", str(len(win)))
    assert r.returncode == 0, r.stdout.decode() + r.stderr.decode()
    got = np.array([list(map(int, ln.split())) for ln in r.stdout.decode().splitlines()])
    assert np.array_equal(got, ref)
    r = run_c(exe, win, *mount_args([Triad((0, 0, 1), triads[0].rot)]), "run", str(len(win)))
    assert r.returncode == 5 and r.stdout.decode().strip() == "status -6"
    assert subprocess.run([str(exe), "selftest"], capture_output=True, text=True).stdout.strip() == "ok"


def test_evaluate_quant_with_mounting(model):
    """The integer evaluation path takes the mounting too (predict_counts == Runner with it)."""
    from gaitedge.quant.evaluate import predict_counts

    qm, recs, _ = model
    counts = [recording_counts(qm, r)[:300] for r in recs]
    triads = random_triads(12)
    a = predict_counts(qm, counts, mounting=triads)
    runner = Runner(qm, batch=1, mounting=triads)
    ref = runner.run(np.concatenate([counts[0], np.repeat(counts[0][-1:], qm.delay, 0)]))["raw_label"][0]
    assert np.array_equal(a[0], ref[qm.delay : qm.delay + len(counts[0])])
    assert not all(np.array_equal(x, y) for x, y in zip(a, predict_counts(qm, counts)))
