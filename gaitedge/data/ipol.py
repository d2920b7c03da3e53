"""Loader for the IPOL healthy-gait IMU reference dataset (feet and lower back, 100 Hz).

Layout of ``GaitData/`` for trial ``S-T`` (subject S, trial T):

* ``S-T_lf.txt`` / ``S-T_rf.txt`` / ``S-T_lb.txt``: left foot, right foot and lower
  back IMU.  Line 1 ``Acquisition frequency: 100 Hz``, line 2 a tab-separated header
  ``PacketCounter Acc_X Acc_Y Acc_Z Gyr_X Gyr_Y Gyr_Z Mag_X Mag_Y Mag_Z``, then one
  sample per line (acc in m/s², gyro in rad/s).
* ``S-T.json``: ``TrialBoundaries`` [start, end] and ``LeftFootEvents`` /
  ``RightFootEvents`` as ``[toe_off, heel_strike]`` pairs bounding each swing.

The Xsens frames sit tilted on the feet (about 30°) and differ between
recordings; by default (``frame="canonical"``) the loader estimates each
sensor's mounting from the recording itself (standing, then walking; see
:mod:`gaitedge.data.mounting`) and rotates acc and gyro into the canonical foot
frame (x toward the toes, y left, z up).  The estimates are kept in each
recording's ``meta["mounting"]``.  ``frame="sensor"`` keeps the raw frames.

Per foot the loader yields one :class:`Recording` with that foot's six channels
(``acc_x .. gyr_z``) labelled rest / stance / swing.  With ``other_foot=True`` the
other foot's channels follow as ``other_acc_x .. other_gyr_z``; with
``lower_back=True`` the lower-back IMU follows as ``back_acc_x .. back_gyr_z``.
"""

from __future__ import annotations

import json
import math
import re
from functools import lru_cache
from pathlib import Path

import numpy as np

from gaitedge.data.mounting import CANONICAL, SENSOR, SensorMounting, estimate_sensor, rotate_signals
from gaitedge.data.recording import Recording, labels_from_swings
from gaitedge.data.skips import Recordings, check_not_all_skipped, skip_trial
from gaitedge.errors import DataError

IMU_COLUMNS = ("Acc_X", "Acc_Y", "Acc_Z", "Gyr_X", "Gyr_Y", "Gyr_Z")
CHANNELS = ("acc_x", "acc_y", "acc_z", "gyr_x", "gyr_y", "gyr_z")
UNITS = ("m/s^2", "m/s^2", "m/s^2", "rad/s", "rad/s", "rad/s")
FEET = {"left": ("lf", "LeftFootEvents"), "right": ("rf", "RightFootEvents")}
#: sensor names (``gaitedge.data.mounting``) of the file codes
SENSOR_OF = {"lf": "left", "rf": "right", "lb": "back"}
FRAMES = ("canonical", "sensor")


def _canonical_imu(sig: np.ndarray, rate: float, code: str, where: str) -> tuple[np.ndarray, SensorMounting]:
    """One sensor's (T, 6) samples rotated into the canonical frame, with its estimated mounting."""
    est = estimate_sensor(sig[:, :3], sig[:, 3:6], rate, where=where, foot=code != "lb").to_sensor()
    rots = [([0, 1, 2], est.matrix), ([3, 4, 5], est.matrix)]
    return rotate_signals(sig, rots), est
_TRIAL_RE = re.compile(r"^(\d+)-(\d+)\.json$")


def find_data_dir(root: str | Path) -> Path:
    """Return the folder holding the ``S-T.json`` files (``root`` or ``root/GaitData``)."""
    root = Path(root).expanduser()
    for cand in (root / "GaitData", root):
        if cand.is_dir() and any(_TRIAL_RE.match(p.name) for p in cand.iterdir()):
            return cand
    if not root.exists():
        raise DataError(f"{root}: no such directory (IPOL gait dataset expected)")
    raise DataError(f"{root}: no IPOL trial files (S-T.json) found here or in {root / 'GaitData'}")


def list_trials(root: str | Path) -> list[tuple[int, int]]:
    """All ``(subject, trial)`` pairs present, sorted."""
    d = find_data_dir(root)
    out = []
    for p in d.iterdir():
        m = _TRIAL_RE.match(p.name)
        if m:
            out.append((int(m.group(1)), int(m.group(2))))
    return sorted(out)


@lru_cache(maxsize=512)
def _read_imu_cached(path: str, mtime: float) -> tuple[float, np.ndarray]:
    return _read_imu(Path(path))


def read_imu_file(path: str | Path) -> tuple[float, np.ndarray]:
    """Read one IMU text file; return (rate in Hz, ``(T, 6)`` acc+gyro float32 array)."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: file not found")
    return _read_imu_cached(str(path), path.stat().st_mtime)


def _read_imu(path: Path) -> tuple[float, np.ndarray]:
    with path.open("r", encoding="utf-8", errors="replace") as fh:
        first = fh.readline()
        header = fh.readline()
        m = re.search(r"([0-9]+(?:\.[0-9]*)?|\.[0-9]+)\s*Hz", first)
        rate = float(m.group(1)) if m else 0.0
        if not m or not (math.isfinite(rate) and rate > 0):
            raise DataError(f"{path}: line 1 should read 'Acquisition frequency: <rate> Hz' with a rate above "
                            f"0 Hz, got {first.strip()!r}")
        cols = header.strip().split("\t")
        missing = [c for c in IMU_COLUMNS if c not in cols]
        if missing:
            raise DataError(f"{path}: header lacks column(s) {', '.join(missing)}; found {', '.join(cols)}")
        idx = [cols.index(c) for c in IMU_COLUMNS]
        try:
            data = np.loadtxt(fh, delimiter="\t", dtype=np.float64, ndmin=2)
        except ValueError as exc:
            raise DataError(f"{path}: malformed sample line ({exc})") from None
    if data.shape[0] == 0:
        raise DataError(f"{path}: no samples")
    if data.shape[1] != len(cols):
        raise DataError(f"{path}: {data.shape[1]} values per line but {len(cols)} header columns")
    sig = data[:, idx].astype(np.float32)
    bad = ~np.isfinite(sig)
    if bad.any():
        t, c = np.argwhere(bad)[0]
        raise DataError(f"{path}: non-finite value at sample {t}, column {IMU_COLUMNS[c]}")
    return rate, sig


def read_meta(path: str | Path) -> dict:
    """Read and validate a trial's JSON metadata."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: file not found")
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise DataError(f"{path}: not valid JSON ({exc})") from None
    except RecursionError:
        raise DataError(f"{path}: not valid JSON (nested too deeply)") from None
    if not isinstance(meta, dict):
        raise DataError(f"{path}: expected a JSON object with TrialBoundaries and foot events")
    for key in ("TrialBoundaries", "LeftFootEvents", "RightFootEvents"):
        if key not in meta:
            raise DataError(f"{path}: missing key {key!r}")
    try:
        tb = [int(v) for v in meta["TrialBoundaries"]]
        if len(tb) != 2 or tb[0] > tb[1]:
            raise ValueError
        for key in ("LeftFootEvents", "RightFootEvents"):
            for pair in meta[key]:
                if len(pair) != 2 or int(pair[0]) >= int(pair[1]):
                    raise ValueError
    except (TypeError, ValueError, OverflowError):
        raise DataError(f"{path}: TrialBoundaries / foot events are not [start, end] pairs of sample indices") from None
    return meta


#: An annotated swing during which the foot's gyro norm never exceeds this
#: (rad/s) shows a motionless foot: the annotation does not fit the signal.
QUIET_SWING_RAD_S = 0.5


def trial_issues(root: str | Path, subject: int, trial: int, lower_back: bool = False) -> list[str]:
    """Annotation problems of one trial that the signals themselves reveal.

    A swing of a foot is a problem if it ends past the recording or if the
    foot's angular rate stays below ``QUIET_SWING_RAD_S`` throughout it (the foot
    never moved).  In the IPOL set such swings appear where the annotation
    drifts away from the signals, typically towards the end of a trial.  With
    ``lower_back`` a lower-back recording that stops before the trial ends is
    a problem too (that sensor cannot label the whole trial).
    """
    d = find_data_dir(root)
    stem = f"{subject}-{trial}"
    meta = read_meta(d / f"{stem}.json")
    issues = []
    if lower_back:
        _, back = read_imu_file(d / f"{stem}_lb.txt")
        end = int(meta["TrialBoundaries"][1])
        if end > len(back):
            issues.append(f"{stem} lower back: {len(back)} samples recorded, the trial ends at sample {end}")
    for foot, (code, key) in FEET.items():
        _, sig = read_imu_file(d / f"{stem}_{code}.txt")
        g = np.linalg.norm(sig[:, 3:6], axis=1)
        for a, b in meta[key]:
            a, b = int(a), int(b)
            if b > len(sig):
                issues.append(f"{stem} {foot} swing [{a}, {b}) ends past the {len(sig)} recorded samples")
            elif g[a:b].max() < QUIET_SWING_RAD_S:
                issues.append(f"{stem} {foot} swing [{a}, {b}): foot motionless (gyro < {QUIET_SWING_RAD_S} rad/s)")
    return issues


def load_trial(
    root: str | Path,
    subject: int,
    trial: int,
    feet: tuple[str, ...] = ("left", "right"),
    other_foot: bool = False,
    lower_back: bool = False,
    frame: str = "canonical",
) -> list[Recording]:
    """Load one trial as one labelled recording per requested foot.

    ``frame="canonical"`` rotates every sensor into the canonical foot frame
    with a mounting estimated from this trial (kept in ``meta["mounting"]``);
    ``frame="sensor"`` keeps the Xsens frames.

    Raises :class:`DataError` for a trial that cannot be used whole: a missing,
    truncated or malformed file, non-finite samples, ``TrialBoundaries`` or a
    swing starting inside them that end past the recorded samples, or (in the
    canonical frame) a mounting that cannot be estimated.  Swings after the
    trial's end that run past the recording are dropped.
    """
    if frame not in FRAMES:
        raise DataError(f"IPOL frame must be one of {', '.join(FRAMES)}, got {frame!r}")
    d = find_data_dir(root)
    stem = f"{subject}-{trial}"
    meta = read_meta(d / f"{stem}.json")
    rate, imu = _read_sensors(d, stem, lower_back)
    n = min(len(s) for s in imu.values())
    start, end = _check_annotations(d / f"{stem}.json", meta, n)
    mountings: dict[str, dict] = {}
    if frame == "canonical":
        for code in list(imu):
            imu[code], est = _canonical_imu(imu[code], float(rate), code, f"{d / f'{stem}_{code}.txt'}")
            mountings[SENSOR_OF[code]] = est.to_dict()
    out = []
    for foot in feet:
        if foot not in FEET:
            raise DataError(f"unknown foot {foot!r}; use left or right")
        code, key = FEET[foot]
        signals, channels, units = _assemble(imu, code, n, other_foot, lower_back)
        # A few trials list swings after the trial's end that run past the
        # recorded signal; those cannot be observed and are dropped.
        swings = [(int(a), int(b)) for a, b in meta[key] if int(b) <= n]
        labels = labels_from_swings(n, start, end, swings)
        events = {
            "toe_off": np.array(sorted(a for a, _ in swings), dtype=np.int64),
            "heel_strike": np.array(sorted(b for _, b in swings), dtype=np.int64),
        }
        out.append(
            Recording(
                signals=signals,
                channels=channels,
                units=units,
                rate_hz=float(rate),
                labels=labels,
                events=events,
                subject=str(subject),
                location=f"{foot}_foot",
                source=str(d / f"{stem}_{code}.txt"),
                frame=CANONICAL if frame == "canonical" else SENSOR,
                meta={"mounting": {k: v for k, v in mountings.items()
                                   if k == foot or (other_foot and k != "back") or (lower_back and k == "back")}}
                if mountings else {},
            )
        )
    return out


def _read_sensors(d: Path, stem: str, lower_back: bool) -> tuple[float, dict[str, np.ndarray]]:
    """(rate in Hz, signals by sensor code) of a trial's IMU files; the sensors must share one rate."""
    imu: dict[str, np.ndarray] = {}
    rate = None
    for code in ("lf", "rf", "lb"):
        if code == "lb" and not lower_back:
            continue
        r, sig = read_imu_file(d / f"{stem}_{code}.txt")
        if rate is not None and r != rate:
            raise DataError(f"{d / f'{stem}_{code}.txt'}: rate {r} Hz differs from the other sensors ({rate} Hz)")
        rate = r
        imu[code] = sig
    assert rate is not None
    return rate, imu


def _check_annotations(path: Path, meta: dict, n: int) -> tuple[int, int]:
    """The trial's (start, end) samples; DataError when they or a swing inside them run past ``n`` samples."""
    start, end = (int(v) for v in meta["TrialBoundaries"])
    if end > n:
        raise DataError(f"{path}: TrialBoundaries end {end} beyond the {n} samples recorded")
    for foot in FEET:
        for a, b in meta[FEET[foot][1]]:
            if int(a) < end and int(b) > n:
                raise DataError(f"{path}: {foot} swing [{int(a)}, {int(b)}) of the trial ends past the {n} "
                                "samples recorded")
    return start, end


def _assemble(imu: dict[str, np.ndarray], code: str, n: int, other_foot: bool,
              lower_back: bool) -> tuple[np.ndarray, list[str], list[str]]:
    """A foot's input: its own sensor, then the other foot's and the lower back's when asked for."""
    other = "rf" if code == "lf" else "lf"
    parts = [imu[code][:n]]
    channels, units = list(CHANNELS), list(UNITS)
    for wanted, sensor, prefix in ((other_foot, other, "other_"), (lower_back, "lb", "back_")):
        if wanted:
            parts.append(imu[sensor][:n])
            channels += [f"{prefix}{c}" for c in CHANNELS]
            units += list(UNITS)
    return np.concatenate(parts, axis=1), channels, units


def load_ipol(
    root: str | Path,
    subjects: list[int] | None = None,
    feet: tuple[str, ...] = ("left", "right"),
    other_foot: bool = False,
    lower_back: bool = False,
    quality: str = "all",
    frame: str = "canonical",
    strict: bool = False,
) -> Recordings:
    """Load every trial (optionally only ``subjects``) as per-foot recordings.

    ``quality="checked"`` leaves out trials for which :func:`trial_issues`
    reports an annotation that the signals contradict (or, with
    ``lower_back``, a lower-back recording shorter than the trial).

    A trial that cannot be loaded (see :mod:`gaitedge.data.skips`: annotations
    past the end of its recording, non-finite samples, a truncated or
    malformed file, a missing file, a mounting that cannot be estimated) is
    left out whole with one :class:`~gaitedge.errors.SkippedTrialWarning` and
    listed in the result's ``skipped``; ``strict=True`` raises its
    :class:`DataError` instead.  If every trial is left out, that is an error.
    """
    if quality not in ("all", "checked"):
        raise DataError(f"quality must be 'all' or 'checked', got {quality!r}")
    if frame not in FRAMES:
        raise DataError(f"IPOL frame must be one of {', '.join(FRAMES)}, got {frame!r}")
    for foot in feet:
        if foot not in FEET:
            raise DataError(f"unknown foot {foot!r}; use left or right")
    d = find_data_dir(root)
    trials = list_trials(root)
    if subjects is not None:
        wanted = set(subjects)
        present = {s for s, _ in trials}
        absent = sorted(wanted - present)
        if absent:
            raise DataError(f"{root}: subject(s) {absent} not in the dataset (present: {sorted(present)})")
        trials = [(s, t) for s, t in trials if s in wanted]
    recs = Recordings()
    for s, t in trials:
        try:
            if quality == "checked" and trial_issues(root, s, t, lower_back=lower_back):
                continue
            recs.extend(load_trial(root, s, t, feet=feet, other_foot=other_foot, lower_back=lower_back, frame=frame))
        except DataError as exc:
            files = [d / f"{s}-{t}.json"] + [d / f"{s}-{t}_{c}.txt" for c in ("lf", "rf", "lb")]
            skip_trial(recs.skipped, exc, files, strict=strict)
    check_not_all_skipped(len(recs), recs.skipped, root)
    return recs
