"""Fuzz target: IPOL trial files (``read_imu_file``, ``read_meta``, ``load_trial``).

Input: byte 0 picks what the rest is: an IMU text file, a trial's JSON, or one
file of an otherwise valid trial folder (its JSON, or its left-foot IMU file)
that ``load_trial`` then loads (``frame="sensor"``).  A malformed file must give
a :class:`~gaitedge.errors.DataError`, never another exception.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness import Scratch, instrumented, main, selector  # noqa: E402

with instrumented():
    from gaitedge.data import ipol
    from gaitedge.errors import DataError

HEADER = "PacketCounter\tAcc_X\tAcc_Y\tAcc_Z\tGyr_X\tGyr_Y\tGyr_Z\tMag_X\tMag_Y\tMag_Z\n"
N = 120


def imu_text(n: int = N, seed: int = 0) -> str:
    """A valid IMU file of ``n`` samples (deterministic values)."""
    rows = []
    for i in range(n):
        vals = [((i * 37 + k * 11 + seed) % 200 - 100) / 17.0 for k in range(9)]
        rows.append(f"{i}\t" + "\t".join(f"{v:.2f}" for v in vals))
    return "Acquisition frequency: 100 Hz\n" + HEADER + "\n".join(rows) + "\n"


META = {
    "TrialBoundaries": [10, 110],
    "LeftFootEvents": [[20, 35], [60, 75]],
    "RightFootEvents": [[40, 55], [80, 95]],
}
SCRATCH = Scratch()


def _trial(fuzzed: str, body: bytes) -> None:
    for code, seed in (("lf", 0), ("rf", 1)):
        SCRATCH.write(f"1-1_{code}.txt", imu_text(seed=seed).encode())
    SCRATCH.write("1-1.json", json.dumps(META).encode())
    SCRATCH.write(fuzzed, body)
    recs = ipol.load_trial(SCRATCH.path, 1, 1, frame="sensor")
    for rec in recs:
        assert rec.labels is not None and rec.labels.shape == (len(rec),)
        assert rec.signals.shape[1] == 6


def TestOneInput(data: bytes) -> None:
    """Read or load the fuzzed file as the first byte says."""
    which, body = selector(data, 4)
    ipol._read_imu_cached.cache_clear()
    try:
        if which == 0:
            rate, sig = ipol.read_imu_file(SCRATCH.write("imu.txt", body))
            assert sig.ndim == 2 and sig.shape[1] == 6 and len(sig) > 0
        elif which == 1:
            ipol.read_meta(SCRATCH.write("meta.json", body))
        elif which == 2:
            _trial("1-1.json", body)
        else:
            _trial("1-1_lf.txt", body)
    except DataError:
        pass


if __name__ == "__main__":
    main(TestOneInput)
