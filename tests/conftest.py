"""Shared fixtures: the reference dataset path and small synthetic data."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED_IPOL = ROOT.parent / "shared" / "data" / "ipol-gait"


@pytest.fixture(scope="session")
def ipol_root() -> Path:
    """The shared IPOL dataset; tests using it skip only where ../shared is absent."""
    if not (SHARED_IPOL / "GaitData").is_dir():
        pytest.skip("../shared/data/ipol-gait not present")
    return SHARED_IPOL


def write_ipol_trial(folder: Path, subject: int, trial: int, n: int = 600, seed: int = 0) -> None:
    """Write one small trial in the IPOL file format (for crafted-file tests)."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    header = "PacketCounter\tAcc_X\tAcc_Y\tAcc_Z\tGyr_X\tGyr_Y\tGyr_Z\tMag_X\tMag_Y\tMag_Z\n"
    for code in ("lf", "rf", "lb"):
        data = rng.normal(size=(n, 9))
        lines = [f"{i}.0\t" + "\t".join(f"{v:.6f}" for v in row) for i, row in enumerate(data)]
        (folder / f"{subject}-{trial}_{code}.txt").write_text(
            "Acquisition frequency: 100 Hz\n" + header + "\n".join(lines) + "\n"
        )
    meta = {
        "Subject": subject,
        "Trial": trial,
        "TrialBoundaries": [100, 500],
        "UTurnBoundaries": [250, 300],
        "LeftFootEvents": [[100, 140], [220, 260], [340, 380]],
        "RightFootEvents": [[160, 200], [280, 320], [460, 500]],
    }
    (folder / f"{subject}-{trial}.json").write_text(json.dumps(meta))
