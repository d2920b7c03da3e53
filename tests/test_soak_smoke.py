"""A few seconds of the long faulty-stream benchmark (``benchmarks/bench_soak.py``), so it cannot rot.

A small model, 40 s of gait at 10x real time through a pty with corrupted
bytes, garbage lines and two unplugs: the faults are detected and no label
outside the exclusion windows differs from the clean run.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def bench():
    path = ROOT / "benchmarks" / "bench_soak.py"
    spec = importlib.util.spec_from_file_location("bench_soak", path)
    mod = importlib.util.module_from_spec(spec)
    sys.modules["bench_soak"] = mod
    spec.loader.exec_module(mod)
    return mod


def test_short_faulty_stream_accepts_no_wrong_label(bench, tmp_path):
    from gaitedge.stream import OnnxBackend

    run = bench.make_model(tmp_path / "model", device=False, epochs=1, log=lambda *a: None)
    sig, _, _, _ = bench.load_gait(40.0 / 3600)
    assert len(sig) == 4000
    ref = OnnxBackend(run)
    clean = bench.push_all(ref, sig)
    assert (clean >= 0).all()
    w, times = bench.rewarm_window(ref, sig[:2400], clean[:2400], 5.0)
    window = max(50, w + 1)
    r = bench.soak(run, sig, clean, window, speed=10.0, corrupt=0.0003, garbage=0.02, unplug_every_s=15.0,
                   unplug_for_s=1.0, seed=1, slice_s=20.0, tmp=tmp_path / "soak", log=lambda *a: None)
    assert r.error == ""
    # faults were injected and detected
    assert r.unplugs == 2 and r.reconnects >= 2 and r.disconnects >= 2
    assert r.damaged_lines >= 20 and r.garbage_lines >= 20
    assert r.corrupt_lines >= r.garbage_lines and r.gaps >= 10 and r.lost >= r.never_written // 2
    # every label is on its own sample, and none outside the windows differs from the clean run
    assert r.misplaced == 0 and r.labelled_twice == 0
    assert r.compared >= 300, r
    assert r.wrong == 0, (r.wrong_at, r.wrong_context)
    assert r.labelled >= r.written - 10
    assert np.isfinite([s["rss_mb"] for s in r.slices]).all()
