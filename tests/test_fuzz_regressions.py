"""Inputs the fuzz targets (tests/fuzz/) found crashing, each with the error it must give now.

Every test feeds the exact bytes of one crash input to the parser that failed
on it and expects the documented :class:`~gaitedge.errors.GaitedgeError`.  The
last tests replay every seed corpus through its target (no atheris needed).
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

import pytest

from gaitedge.data import gaitmap, ipol
from gaitedge.data.mounting import load_mounting_file, parse_mounting
from gaitedge.errors import DataError, DeviceError
from gaitedge.protocol import messages as M

FUZZ = Path(__file__).resolve().parent / "fuzz"


def _file(tmp_path: Path, name: str, data: bytes) -> Path:
    p = tmp_path / name
    p.write_bytes(data)
    return p


# ---- messages: a payload shorter than its type or its own counts say ---------------------------
@pytest.mark.parametrize("codec", [M.Info.decode, M.decode_samples, M.Results.decode, M.Stats.decode,
                                   M.FlashStatus.decode, M.MountingState.decode, M.MountingState.decode_reply])
def test_empty_payload_is_malformed_not_struct_error(codec):
    # crash-da39a3ee5e6b4b0d3255bfef95601890afd80709: the empty input, Info.decode -> struct.error
    with pytest.raises(M.MalformedPayload) as exc:
        codec(b"")
    assert isinstance(exc.value, DeviceError)


def test_truncated_payloads_are_malformed():
    info = bytes(M._INFO.size) + b"\x03ab"  # the board name announces 3 bytes, 2 follow
    samples = b"\x05\x00\x06\x00" + bytes(10)  # 5 x 6 counts announced, 5 given
    results = b"\x00\x00\x00\x00\x02\x00\x03\x00" + bytes(14)  # 2 records of 14 bytes announced
    flash = bytes([0, 0xFF, 0, 2]) + bytes(8) + bytes(72)  # 2 slots announced, 1 given
    mounting = b"\x02\x00\x00\x00" + bytes(22)  # 2 triads announced, 1 given
    for codec, p in ((M.Info.decode, info), (M.decode_samples, samples), (M.Results.decode, results),
                     (M.FlashStatus.decode, flash), (M.MountingState.decode, mounting),
                     (M.MountingState.decode_reply, b"\x01\x00\x00\x00" + mounting)):
        with pytest.raises(M.MalformedPayload):
            codec(p)
    assert M.Nak.decode(b"\x01").message == "malformed NAK"


# ---- IPOL: a trial's JSON that is valid JSON but no object ------------------------------------
@pytest.mark.parametrize("crash", [b"22", b"10", b"z9", b"\x051"])
def test_ipol_meta_that_is_not_an_object(tmp_path, crash):
    # the fuzz target's first byte picked read_meta; the rest ("2", "0", "9", "1") is the file
    body = crash[1:]
    with pytest.raises(DataError, match="JSON object"):
        ipol.read_meta(_file(tmp_path, "1-1.json", body))


@pytest.mark.parametrize("body", [b"[[[" * 20000, b'{"TrialBoundaries": [0, 1e400], "LeftFootEvents": [], '
                                  b'"RightFootEvents": []}'])
def test_ipol_meta_nested_too_deeply_or_infinite(tmp_path, body):
    with pytest.raises(DataError):
        ipol.read_meta(_file(tmp_path, "1-1.json", body))


# ---- gaitmap: an IMU CSV with header rows but no sensor column ----------------------------------
def test_gaitmap_imu_table_without_sensor_columns(tmp_path):
    # crash-08e828fe9c9ebd0603262ba0e79ccfb1f5a7d654: load_gaitmap -> StopIteration on an empty table
    crash = b"?\x00\x00\n\x01\x10\nz\x00!\nn,o/left"
    imu = _file(tmp_path, "imu.csv", crash[1:])
    with pytest.raises(DataError, match="no sensor columns"):
        gaitmap.read_imu_table(imu)
    with pytest.raises(DataError, match="no sensor columns"):
        gaitmap.load_gaitmap(imu)


# ---- mounting: an option too long to be a file name --------------------------------------------
MOUNTING_CRASH = b"\x02x=z," + b"\xff" * 87 + b"y=y,z=-x"  # crash-3ae8dc66b9cbd27a3b1cadfdc18e9f479363b351


def test_mounting_option_too_long_for_a_file_name():
    text = MOUNTING_CRASH[1:].decode("utf-8", "replace")
    with pytest.raises(DataError, match="unknown sensor"):
        parse_mounting(text)  # was OSError (File name too long) from Path.is_file
    with pytest.raises(DataError, match="not found"):
        load_mounting_file("m" * 5000 + ".toml")


# ---- every seed corpus replays through its target -------------------------------------------
def _targets() -> list[str]:
    return sorted(p.stem[len("fuzz_"):] for p in FUZZ.glob("fuzz_*.py"))


@pytest.mark.parametrize("name", _targets())
def test_seed_corpus_replays_cleanly(name):
    sys.path.insert(0, str(FUZZ))
    try:
        mod = importlib.import_module(f"fuzz_{name}")
    finally:
        sys.path.remove(str(FUZZ))
    seeds = sorted((FUZZ / "corpus" / name).glob("*"))
    assert seeds, f"no seeds for {name}"
    for seed in seeds:
        mod.TestOneInput(seed.read_bytes())


# ---- checkpoints: a dict that says it is one but is not whole ----------------------------------
def _checkpoint_dict() -> dict:
    import numpy as np
    import torch

    from gaitedge.checkpoint import TrainedModel
    from gaitedge.data.preprocess import Normalizer
    from gaitedge.models import build_model

    torch.manual_seed(0)
    tm = TrainedModel(build_model("elman", 2, 3, hidden=2), ("rest", "stance", "swing"), ["acc_x", "gyr_y"],
                      ["m/s^2", "rad/s"], 100.0, Normalizer(np.zeros(2, np.float32), np.ones(2, np.float32)),
                      0.0, 2, 3, 50.0)
    return tm.to_dict()


@pytest.mark.parametrize("change", [
    {"family": None}, {"classes": "rest"}, {"input_size": 7}, {"rate_hz": float("nan")}, {"hparams": {"hidden": -2}},
    {"hparams": {"hidden": 1 << 40}}, {"normalizer": {"mean": [0.0]}}, {"state_dict": {"w": 1}},
    {"format_version": "1"}, {"min_run": 1.5},
])
def test_incomplete_checkpoint_gives_model_error(tmp_path, change):
    import torch

    from gaitedge.checkpoint import load_checkpoint
    from gaitedge.errors import ModelError

    d = _checkpoint_dict() | change
    torch.save(d, tmp_path / "model.pt")
    with pytest.raises(ModelError):  # was KeyError / TypeError / RuntimeError, or a huge allocation
        load_checkpoint(tmp_path)
    d = _checkpoint_dict()
    del d["units"]
    torch.save(d, tmp_path / "model.pt")
    with pytest.raises(ModelError, match="units"):
        load_checkpoint(tmp_path)


CHECKPOINT_CRASHES = sorted((FUZZ / "regressions" / "checkpoint").glob("crash-*"))


@pytest.mark.parametrize("crash", CHECKPOINT_CRASHES, ids=[p.name[:14] for p in CHECKPOINT_CRASHES])
def test_fuzzed_checkpoint_gives_model_error(tmp_path, crash):
    # legacy-format (pickle) checkpoints with a field renamed by the fuzzer: was KeyError
    # ('classes', 'filter_order', 'input_size', 'mean', 'state_dict', 'tolerance_ms')
    from gaitedge.checkpoint import load_checkpoint
    from gaitedge.errors import ModelError

    with pytest.raises(ModelError, match="checkpoint field"):
        load_checkpoint(_file(tmp_path, "model.pt", crash.read_bytes()))


@pytest.mark.parametrize("name", _targets())
def test_saved_crash_inputs_replay_cleanly(name):
    """Every crash input kept in tests/fuzz/regressions/<target>/ passes its target now."""
    sys.path.insert(0, str(FUZZ))
    try:
        mod = importlib.import_module(f"fuzz_{name}")
    finally:
        sys.path.remove(str(FUZZ))
    for crash in sorted((FUZZ / "regressions" / name).glob("crash-*")):
        mod.TestOneInput(crash.read_bytes())


def test_mounting_file_with_a_confidence_that_is_no_number(tmp_path):
    # crash-003e3d8b0ae54343fbc1ea53d99e7159b1cbe68b: "confidence .0 =9" is the dotted key
    # confidence."0" = 9, a table: float() raised TypeError
    crash = (FUZZ / "regressions" / "mounting" / "crash-003e3d8b0ae54343fbc1ea53d99e7159b1cbe68b").read_bytes()
    with pytest.raises(DataError, match="confidence"):
        load_mounting_file(_file(tmp_path, "mount.toml", crash[1:]))
    with pytest.raises(DataError, match="nested too deeply"):
        load_mounting_file(_file(tmp_path, "mount.json", b"[" * 100000))


@pytest.mark.parametrize("line", ["Acquisition frequency: . Hz", "Acquisition frequency: 0 Hz",
                                  "Acquisition frequency: 0.0 Hz"])
def test_ipol_rate_that_is_no_number_or_zero(tmp_path, line):
    """Found by the ipol target: a rate of '.' raised ValueError; 0 Hz would make a recording of no rate."""
    from gaitedge.data.ipol import read_imu_file
    from gaitedge.errors import DataError

    p = tmp_path / "1-1_lf.txt"
    p.write_text(line + "\nPacketCounter\tAcc_X\tAcc_Y\tAcc_Z\tGyr_X\tGyr_Y\tGyr_Z\n0\t1\t2\t3\t4\t5\t6\n")
    with pytest.raises(DataError, match="line 1 should read"):
        read_imu_file(p)
