"""Input sanity: does an IMU signal look like what a model in the canonical foot frame expects?

Each check returns plain-language warnings that say what looks wrong and how to
fix it.  The checks look at the raw signals (before filter and normalization):

* units: gyro peaks far beyond what a foot does in rad/s (suggesting deg/s),
  accelerations near 1 at rest (suggesting g instead of m/s²);
* frame: gravity during standing not along +z, or the dominant rotation axis
  while walking far from the medio-lateral y axis (the mounting is not applied);
* rate: the rate measured from timestamps differs from the declared one.
"""

from __future__ import annotations

import numpy as np

from gaitedge.data.mounting import CANONICAL, GRAVITY, imu_prefixes, still_mask, triads_of
from gaitedge.data.recording import Recording

#: A foot turns at most ~20 rad/s; a gyro 99.9th percentile above this is deg/s.
GYRO_DEG_S_SUSPECT = 40.0
#: Gravity farther than this from +z during standing (degrees) is a frame mismatch.
GRAVITY_OFF_DEG = 25.0
#: The dominant walking rotation axis farther than this from ±y (degrees).
AXIS_OFF_DEG = 35.0

_FIX_MOUNTING = ("use --mounting auto, or estimate it once with 'gaitedge mounting estimate --data ... "
                 "--out mounting.toml' and pass --mounting mounting.toml")


def _triads(rec: Recording, prefix: str) -> tuple[np.ndarray | None, np.ndarray | None]:
    acc = gyr = None
    for tri in triads_of(rec.channels, prefix):
        if rec.channels[tri[0]].endswith("acc_x"):
            acc = rec.signals[:, tri].astype(np.float64)
        else:
            gyr = rec.signals[:, tri].astype(np.float64)
    return acc, gyr


def unit_warnings(rec: Recording) -> list[str]:
    """Warnings for gyro values that look like deg/s and accelerations that look like g."""
    out = []
    for pre in imu_prefixes(rec.channels):
        acc, gyr = _triads(rec, pre)
        if gyr is not None and len(gyr):
            peak = float(np.percentile(np.linalg.norm(gyr, axis=1), 99.9))
            if peak > GYRO_DEG_S_SUSPECT:
                out.append(
                    f"{rec.name}: {pre}gyr_* peaks at {peak:.0f} per second, far beyond a foot's ~20 rad/s; "
                    "the gyro looks like deg/s where rad/s is expected: scale it by π/180 "
                    "(stream: --scale gyr=deg; CSV: convert the columns)"
                )
        if acc is not None and len(acc):
            med = float(np.median(np.linalg.norm(acc, axis=1)))
            if 0.5 < med < 2.0:
                out.append(
                    f"{rec.name}: {pre}acc_* has a median magnitude of {med:.2f}, about 1: it looks like g "
                    f"where m/s² is expected: scale it by {GRAVITY} (stream: --scale acc=g)"
                )
    return out


def frame_warnings(rec: Recording) -> list[str]:
    """Warnings when gravity at rest or the walking rotation axis are off the canonical frame."""
    out = []
    for pre in imu_prefixes(rec.channels):
        acc, gyr = _triads(rec, pre)
        if acc is None or gyr is None or len(acc) < 10:
            continue
        still = still_mask(acc, gyr, rec.rate_hz)
        if still.sum() >= 0.5 * rec.rate_hz:
            g = acc[still].mean(axis=0)
            off = float(np.degrees(np.arccos(np.clip(g[2] / max(np.linalg.norm(g), 1e-9), -1, 1))))
            if off > GRAVITY_OFF_DEG:
                out.append(
                    f"{rec.name}: during standing, gravity in {pre}acc_* points {off:.0f}° away from +z, "
                    f"where the canonical foot frame puts it; the sensor's mounting is not applied: {_FIX_MOUNTING}"
                )
                continue
        moving = np.linalg.norm(gyr, axis=1) > 1.0
        if moving.sum() >= rec.rate_hz and pre != "back_":
            w, v = np.linalg.eigh(gyr[moving].T @ gyr[moving])
            off = float(np.degrees(np.arccos(min(1.0, abs(v[1, -1])))))
            if off > AXIS_OFF_DEG:
                out.append(
                    f"{rec.name}: while walking, {pre}gyr_* turns mostly about an axis {off:.0f}° from the "
                    f"medio-lateral y axis of the canonical foot frame; the mounting is off: {_FIX_MOUNTING}"
                )
    return out


def input_warnings(recs: list[Recording], model_frame: str) -> list[str]:
    """Every warning for recordings about to feed a model in ``model_frame``, each kind once.

    A warning that holds for several recordings is given for the first one with
    the count.  Frame checks apply when the model expects the canonical foot frame.
    """
    first: dict[str, str] = {}
    count: dict[str, int] = {}
    for rec in recs:
        items = unit_warnings(rec)
        if model_frame == CANONICAL:
            items += frame_warnings(rec)
        for w in items:
            # kind: the message without the recording's name and its numbers
            kind = "".join(ch for ch in w.split(": ", 1)[1] if not ch.isdigit())
            first.setdefault(kind, w)
            count[kind] = count.get(kind, 0) + 1
    return [w + (f" ({count[k]} of {len(recs)} recordings)" if len(recs) > 1 else "") for k, w in first.items()]
