"""Scale-out training: shards, split batches, 2 gloo processes vs 1, kill and resume."""

import json
import os
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import torch

from gaitedge.checkpoint import load_checkpoint
from gaitedge.config import Config
from gaitedge.data.preprocess import Normalizer
from gaitedge.training.distributed import resolve_device, shard_recordings
from gaitedge.errors import ConfigError
from gaitedge.rundir import STATE_FILE
from gaitedge.data.windows import WindowSampler
from gaitedge.data.augment import imu_triads, warp_offsets
from gaitedge.training.train import train
from tiny import TINY_TRAIN
from tiny import tiny_config as base_config

TINY = [
    *TINY_TRAIN,
    "--set", "train.augment_rotation_deg=10.0",
    "--set", "train.augment_time_warp=0.1",
    "--epochs", "4",
    "--no-progress",
]

# 1 vs 2 processes: both compute the gradient of the same global batch (same windows, same augmentation);
# only the floating-point summation order differs (two partial sums + all-reduce, smaller matmuls), so
# weights agree to float32 rounding (observed ~1e-7) and metrics to at most a few flipped samples / events.
WEIGHT_TOL = 1e-4
MACRO_F1_TOL = 0.005
EVENT_F1_TOL = 0.03


def tiny_config() -> Config:
    return base_config(augment_rotation_deg=10.0, augment_time_warp=0.1, epochs=4)


def cli(*args, env=None, **kw):
    return subprocess.run([sys.executable, "-m", "gaitedge", *args], capture_output=True, text=True, timeout=300,
                          env=env, **kw)


def clean_env() -> dict:
    env = dict(os.environ)
    for var in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        env.pop(var, None)
    return env


def max_weight_diff(a, b) -> float:
    sa, sb = a.model.state_dict(), b.model.state_dict()
    return max(float((sa[k] - sb[k]).abs().max()) for k in sa)


def curve(out) -> list[tuple]:
    hist = json.loads((out / "metrics.json").read_text())["history"]
    return [tuple(v for k, v in sorted(row.items()) if k != "elapsed_s") for row in hist]


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """The uninterrupted single-process run of the TINY config."""
    out = tmp_path_factory.mktemp("ref") / "run"
    tm, metrics, _ = train(tiny_config(), out_dir=out, progress=False, log=lambda *_: None)
    return out, tm, metrics


def test_shards_partition_recordings_balanced_by_samples():
    rng = np.random.default_rng(1)
    lengths = rng.integers(500, 5000, size=37)
    for world in (1, 2, 3, 8):
        owner = shard_recordings(lengths, world)
        assert owner.shape == (37,) and set(owner) <= set(range(world))
        load = np.bincount(owner, weights=lengths, minlength=world)
        assert load.sum() == lengths.sum()
        assert load.max() - load.min() <= lengths.max()
    np.testing.assert_array_equal(shard_recordings(lengths, 3), shard_recordings(lengths, 3))


def sampler(seed=0):
    rng = np.random.default_rng(5)
    xs = [rng.normal(size=(n, 12)).astype(np.float32) for n in (180, 400, 650, 90)]
    ys = [rng.integers(0, 3, size=len(x)).astype(np.int64) for x in xs]
    chans = [f"{p}{q}_{a}" for p in ("", "other_") for q in ("acc", "gyr") for a in "xyz"]
    return WindowSampler(xs, ys, 200, 10, seed, Normalizer.fit(xs), imu_triads(chans))


def test_a_batch_cut_in_parts_equals_the_whole_batch():
    s = sampler()
    plan = s.plan(24, gain=0.1, noise=0.05, rotation_deg=20.0, time_warp=0.15)
    x, y = s.materialize(plan, np.arange(24))
    owner = shard_recordings(s.lens, 2)
    parts = [np.flatnonzero(owner[plan.rec] == r) for r in (0, 1)]
    assert all(len(p) for p in parts)
    for p in parts:
        xp, yp = s.materialize(plan, p)
        assert np.array_equal(xp, x[p]) and np.array_equal(yp, y[p])
    # samplers with the same seed draw the same plans: what lets ranks agree on the global batch
    plan2 = sampler().plan(24, gain=0.1, noise=0.05, rotation_deg=20.0, time_warp=0.15)
    np.testing.assert_array_equal(plan.rec, plan2.rec)
    np.testing.assert_array_equal(plan.start, plan2.start)
    assert (y[:, :10] == -1).all()  # burn-in


def test_time_warp_is_a_smooth_bounded_stretch():
    knots = np.random.default_rng(0).uniform(-1, 1, size=(50, 4))
    off = warp_offsets(knots, 300, 0.2)
    step = np.diff(off, axis=1)
    assert off[:, 0].tolist() == [0.0] * 50
    assert step.min() >= 0.8 - 1e-9 and step.max() <= 1.2 + 1e-9
    assert np.abs(np.diff(step, axis=1)).max() < 0.2 * 2 / 99 + 1e-9  # speed changes gradually
    np.testing.assert_allclose(warp_offsets(knots, 300, 0.0), np.tile(np.arange(300.0), (50, 1)))
    s = sampler()
    s.xs = [np.tile(np.arange(len(x), dtype=np.float32)[:, None], (1, 12)) for x in s.xs]
    s.ys = [np.arange(len(x)) for x in s.xs]
    s.norm = Normalizer(np.zeros(12, np.float32), np.ones(12, np.float32))
    plan = s.plan(8, gain=0.0, noise=0.0, time_warp=0.2)
    x, y = s.materialize(plan, np.arange(8))
    for b in range(8):
        n = int((y[b, 10:] >= 0).sum()) + 10
        pos = plan.start[b] + plan.warp[b, :n]
        np.testing.assert_allclose(x[b, :n, 0], pos, atol=1e-3)  # linear interpolation
        np.testing.assert_array_equal(y[b, 10:n], np.rint(pos[10:]))  # labels of the nearest sample


def test_two_gloo_processes_match_one(reference, tmp_path):
    ref_out, ref_tm, ref_m = reference
    out = tmp_path / "ddp"
    r = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
         "-m", "gaitedge", "train", *TINY, "--out", str(out)],
        capture_output=True, text=True, timeout=300, env=clean_env(),
    )
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    m = json.loads((out / "metrics.json").read_text())
    assert m["world_size"] == 2 and m["batch_size"] == ref_m["batch_size"] == 16
    assert m["epochs_run"] == ref_m["epochs_run"] == 4
    tm = load_checkpoint(out)
    assert max_weight_diff(tm, ref_tm) <= WEIGHT_TOL
    assert abs(m["val"]["macro_f1"] - ref_m["val"]["macro_f1"]) <= MACRO_F1_TOL
    assert abs(m["val"]["event_f1"] - ref_m["val"]["event_f1"]) <= EVENT_F1_TOL
    for a, b in zip(m["history"], ref_m["history"]):
        assert a["train_loss"] == pytest.approx(b["train_loss"], rel=1e-4)
    # rank 0 alone logs and reports
    assert r.stdout.count("epoch   3 ") == 1 and r.stdout.count("run directory:") == 1
    assert sorted(p.name for p in out.iterdir()) == sorted(
        ["model.pt", "config.toml", "metrics.json", "curves.png", "confusion.png", STATE_FILE])


def test_killed_run_resumes_to_the_same_result(reference, tmp_path):
    ref_out, ref_tm, _ = reference
    out = tmp_path / "killed"
    proc = subprocess.Popen([sys.executable, "-m", "gaitedge", "train", *TINY, "--out", str(out)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=clean_env())
    epoch, t_end = 0, time.time() + 240
    try:
        while time.time() < t_end and proc.poll() is None:
            if (out / STATE_FILE).is_file():
                try:
                    epoch = torch.load(out / STATE_FILE, weights_only=True)["epoch"]
                except Exception:  # being replaced right now
                    epoch = 0
                if epoch >= 2:
                    proc.send_signal(signal.SIGKILL)
                    break
            time.sleep(0.01)
    finally:
        proc.kill()
        proc.wait()
    assert 2 <= epoch < 4 and not (out / "model.pt").exists(), "the run must be killed mid-way"
    shutil.copytree(out, tmp_path / "killed2")

    r = cli("train", "--resume", str(out), "--no-progress", env=clean_env())
    assert r.returncode == 0, r.stderr
    assert f"after epoch {epoch} of 4" in r.stdout
    tm = load_checkpoint(out)
    assert tm.weights_hash() == ref_tm.weights_hash()  # bit-identical to the uninterrupted run
    assert curve(out) == curve(ref_out)
    m = json.loads((out / "metrics.json").read_text())
    assert m["resumed_after_epoch"] == epoch and m["epochs_run"] == 4

    # the same state resumed by 2 processes: same result within the 1-vs-2-process tolerance
    r = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
         "-m", "gaitedge", "train", "--resume", str(tmp_path / "killed2"), "--no-progress"],
        capture_output=True, text=True, timeout=300, env=clean_env(),
    )
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    assert max_weight_diff(load_checkpoint(tmp_path / "killed2"), ref_tm) <= WEIGHT_TOL

    r = cli("train", "--resume", str(out), env=clean_env())
    assert r.returncode == 2 and "already finished" in r.stderr


def test_resume_and_device_errors(tmp_path):
    r = cli("train", "--resume", str(tmp_path), env=clean_env())
    assert r.returncode == 2 and "no config.toml" in r.stderr and "Traceback" not in r.stderr
    r = cli("train", "--resume", str(tmp_path), "--epochs", "3", env=clean_env())
    assert r.returncode == 2 and "drop --epochs" in r.stderr
    (tmp_path / "config.toml").write_text("[train]\nepochs = 2\n")
    with pytest.raises(ConfigError, match="no train_state.pt"):
        train(Config(), out_dir=tmp_path, resume=True, recs=None, progress=False)
    if not torch.cuda.is_available():
        with pytest.raises(ConfigError, match="no CUDA GPU"):
            resolve_device("cuda")
    with pytest.raises(ConfigError, match="expected cpu, cuda"):
        resolve_device("tpu")
    assert resolve_device("cpu").type == "cpu"
