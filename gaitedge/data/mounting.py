"""Sensor mounting: the rotation from an IMU's own frame into the canonical foot frame.

The canonical foot frame (``docs/frames.md``) is gaitmap's foot sensor frame: x
toward the tip of the shoe, y to the left, z up, right-handed, the same for both
feet; acc in m/s², gyro in rad/s.  A *mounting* is one 3×3 matrix ``M`` per
physical sensor with ``v_canonical = M @ v_sensor`` for acc and gyro alike.  ``M``
is a rotation (det +1) or a rotation with one mirror (det -1, a left-handed
export).

Sensors are named ``left`` and ``right`` (the feet) and ``back`` (lower back);
in a recording that names no foot (a CSV file) its own sensor is ``foot`` and
the other foot's ``other``; ``*`` stands for every sensor.  In a recording of one foot, its own channels
(``acc_x`` ..) belong to that foot's sensor, ``other_*`` to the other foot's and
``back_*`` to the back sensor.

A mounting is declared (an axis map such as ``x=-y,y=x,z=z``: canonical x is
minus the sensor's y, ...; a 3×3 matrix in a file) or estimated from a recording
with some standing and some walking (:func:`estimate_sensor`): gravity while
still gives z; the dominant rotation axis while walking gives the medio-lateral
y axis; its sign comes from the gait itself: the foot leaves and regains its
flat mid-stance by turning toe-down (heel rise before toe off, the forefoot
coming down after heel strike), a positive rate about +y at both edges of every
quiet stance, while the swing in between turns it toe-up; x = y × z.
"""

from __future__ import annotations

import json
import math
import re
import tomllib
import warnings
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
from scipy import signal
from scipy.spatial.transform import Rotation

from gaitedge.data.recording import Recording
from gaitedge.errors import DataError
from gaitedge.rundir import write_text

#: Name of the canonical foot frame recorded in recordings and checkpoints.
CANONICAL = "foot-canonical"
#: Frame name of data whose frame is not known (the sensor's own).
SENSOR = "sensor"
#: Physical sensor names a mounting may name: the feet, the lower back, and for
#: recordings that name no foot (a CSV file), their own foot and the other one.
SENSORS = ("left", "right", "back", "foot", "other")
#: Standard gravity, m/s².
GRAVITY = 9.80665

_AXES = "xyz"
_PREFIXES = {"": None, "other_": "other", "back_": "back"}


def check_matrix(m: np.ndarray | list, what: str = "mounting matrix") -> np.ndarray:
    """Return ``m`` as a float64 3×3 array if it is orthogonal with det ±1, else DataError."""
    try:
        a = np.asarray(m, dtype=np.float64)
    except (TypeError, ValueError):
        raise DataError(f"{what}: not a 3×3 matrix of numbers") from None
    if a.shape != (3, 3) or not np.all(np.isfinite(a)):
        raise DataError(f"{what}: expected a 3×3 matrix of finite numbers, got shape {a.shape}")
    err = float(np.abs(a @ a.T - np.eye(3)).max())
    if err > 1e-3:
        raise DataError(
            f"{what}: not a rotation (rows must be orthonormal; |M Mᵀ - I| = {err:.3g}); "
            "give an axis map such as x=-y,y=x,z=z or a proper rotation matrix"
        )
    return a


def parse_axis_map(text: str) -> np.ndarray:
    """Matrix of an axis map ``x=-y,y=x,z=z`` (canonical axis = ± sensor axis).

    Each canonical axis x, y, z must be given once and each sensor axis used
    once; the result may be a rotation or a rotation with one mirror.
    """
    m = np.zeros((3, 3))
    seen: set[str] = set()
    used: set[str] = set()
    items = [s.strip() for s in text.split(",") if s.strip()]
    for item in items:
        mt = re.fullmatch(r"([xyz])\s*=\s*([+-]?)\s*([xyz])", item.lower())
        if not mt:
            raise DataError(f"axis map {text!r}: {item!r} is not of the form x=-y")
        dst, sign, src = mt.groups()
        if dst in seen:
            raise DataError(f"axis map {text!r}: canonical axis {dst} given twice")
        if src in used:
            raise DataError(f"axis map {text!r}: sensor axis {src} used twice (each must appear once)")
        seen.add(dst)
        used.add(src)
        m[_AXES.index(dst), _AXES.index(src)] = -1.0 if sign == "-" else 1.0
    if seen != set(_AXES):
        raise DataError(f"axis map {text!r}: needs x=, y= and z= (missing {', '.join(sorted(set(_AXES) - seen))})")
    return m


def axis_map_of(m: np.ndarray) -> str | None:
    """The axis-map text of a signed permutation matrix, or None for other matrices."""
    parts = []
    for i in range(3):
        j = int(np.argmax(np.abs(m[i])))
        if abs(abs(m[i, j]) - 1) > 1e-9 or np.abs(m[i]).sum() - 1 > 1e-9:
            return None
        parts.append(f"{_AXES[i]}={'-' if m[i, j] < 0 else ''}{_AXES[j]}")
    return ",".join(parts)


def angles_deg(m: np.ndarray) -> dict[str, float]:
    """Angle of ``m`` (degrees, about one axis) and its z-y-x Euler angles (yaw, pitch, roll).

    A mirrored matrix is described by its rotation part (times the mirror of y).
    """
    r = m if np.linalg.det(m) > 0 else m @ np.diag([1.0, -1.0, 1.0])
    rot = Rotation.from_matrix(r)
    with warnings.catch_warnings():
        # at ±90° pitch yaw and roll are not separable; scipy then sets roll to 0 (and says so)
        warnings.simplefilter("ignore", UserWarning)
        yaw, pitch, roll = rot.as_euler("ZYX", degrees=True)
    return {
        "angle": float(np.degrees(rot.magnitude())),
        "yaw": float(yaw),
        "pitch": float(pitch),
        "roll": float(roll),
    }


@dataclass
class SensorMounting:
    """The mounting of one sensor: matrix, how it was obtained, and its confidence (0..1)."""

    matrix: np.ndarray
    method: str = "declared"
    confidence: float = 1.0
    details: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        d = {
            "matrix": [[round(float(v), 6) for v in row] for row in self.matrix],
            "method": self.method,
            "confidence": round(float(self.confidence), 3),
            "angles_deg": {k: round(v, 2) for k, v in angles_deg(self.matrix).items()},
            "mirrored": bool(np.linalg.det(self.matrix) < 0),
        }
        amap = axis_map_of(self.matrix)
        if amap:
            d["axis_map"] = amap
        if self.details:
            d["details"] = self.details
        return d


@dataclass
class Mounting:
    """Mountings by sensor name (``left``, ``right``, ``back`` or ``*`` for all)."""

    sensors: dict[str, SensorMounting] = field(default_factory=dict)
    source: str = ""

    def matrix_for(self, sensor: str) -> np.ndarray | None:
        """The matrix of ``sensor`` (or of ``*``); None if the mounting does not name it."""
        sm = self.sensors.get(sensor) or self.sensors.get("*")
        return None if sm is None else sm.matrix

    def to_dict(self) -> dict:
        return {"frame": CANONICAL, "sensors": {k: v.to_dict() for k, v in self.sensors.items()}}

    def save(self, path: str | Path) -> None:
        """Write as JSON (``.json``) or TOML (any other suffix), atomically."""
        path = Path(path)
        d = self.to_dict()
        if path.suffix.lower() == ".json":
            text = json.dumps(d, indent=2) + "\n"
        else:
            lines = [f'frame = "{CANONICAL}"', ""]
            for name, s in d["sensors"].items():
                key = '"*"' if name == "*" else name
                lines.append(f"[sensors.{key}]")
                lines.append("matrix = [" + ", ".join("[" + ", ".join(repr(v) for v in row) + "]" for row in s["matrix"]) + "]")
                lines.append(f'method = "{s["method"]}"')
                lines.append(f"confidence = {s['confidence']}")
                if "axis_map" in s:
                    lines.append(f'axis_map = "{s["axis_map"]}"')
                lines.append("angles_deg = {" + ", ".join(f"{k} = {v}" for k, v in s["angles_deg"].items()) + "}")
                lines.append("")
            text = "\n".join(lines)
        path.parent.mkdir(parents=True, exist_ok=True)
        write_text(path, text)

    def describe(self) -> str:
        """Human-readable lines: per sensor the matrix, the angles and the confidence."""
        out = []
        for name, s in self.sensors.items():
            a = angles_deg(s.matrix)
            amap = axis_map_of(s.matrix)
            head = f"{name}: {s.method}"
            if s.method == "estimated":
                head += f", confidence {s.confidence:.2f}"
            if np.linalg.det(s.matrix) < 0:
                head += ", mirrored (left-handed sensor frame)"
            out.append(head)
            if amap:
                out.append(f"  axis map {amap}")
            out.append(
                f"  rotation {a['angle']:.1f}° (yaw {a['yaw']:.1f}°, pitch {a['pitch']:.1f}°, roll {a['roll']:.1f}°)"
            )
            for row in s.matrix:
                out.append("  [" + ", ".join(f"{v:+.4f}" for v in row) + "]")
        return "\n".join(out)


def _sensor_name(name: str, where: str) -> str:
    name = name.strip().lower()
    if name not in SENSORS and name != "*":
        raise DataError(f"{where}: unknown sensor {name!r}; use left, right, back, foot, other (or * for all)")
    return name


def mounting_from_dict(d: dict, source: str) -> Mounting:
    """Build a Mounting from the plain data of a mounting file."""
    sensors = d.get("sensors") if isinstance(d, dict) else None
    if not isinstance(sensors, dict) or not sensors:
        raise DataError(f"{source}: a mounting file needs a [sensors] table with one entry per sensor")
    frame = d.get("frame", CANONICAL)
    if frame != CANONICAL:
        raise DataError(f"{source}: frame {frame!r} is not {CANONICAL!r}")
    out = Mounting(source=source)
    for name, body in sensors.items():
        key = _sensor_name(str(name), source)
        if isinstance(body, str):
            out.sensors[key] = SensorMounting(parse_axis_map(body))
            continue
        if not isinstance(body, dict):
            raise DataError(f"{source}: sensor {name!r} must be an axis map or a table with 'matrix' or 'axis_map'")
        if "matrix" in body:
            m = check_matrix(body["matrix"], f"{source}: sensor {name}")
        elif "axis_map" in body:
            m = parse_axis_map(str(body["axis_map"]))
        else:
            raise DataError(f"{source}: sensor {name!r} has neither 'matrix' nor 'axis_map'")
        conf = body.get("confidence", 1.0)
        if isinstance(conf, bool) or not isinstance(conf, (int, float)) or not 0.0 <= conf <= 1.0:
            raise DataError(f"{source}: sensor {name!r}: confidence {conf!r} is not a number from 0 to 1")
        out.sensors[key] = SensorMounting(m, method=str(body.get("method", "declared")), confidence=float(conf))
    return out


def _is_file(path: Path) -> bool:
    """``path.is_file()``, False for a name the system refuses (too long, ...) too."""
    try:
        return path.is_file()
    except OSError:
        return False


def load_mounting_file(path: str | Path) -> Mounting:
    """Read a mounting file (TOML, or JSON by suffix) as written by ``gaitedge mounting estimate``."""
    path = Path(path)
    if not _is_file(path):
        raise DataError(f"{path}: mounting file not found")
    text = path.read_text(encoding="utf-8", errors="replace")
    try:
        d = json.loads(text) if path.suffix.lower() == ".json" else tomllib.loads(text)
    except (json.JSONDecodeError, tomllib.TOMLDecodeError) as exc:
        raise DataError(f"{path}: not a valid mounting file ({exc})") from None
    except RecursionError:
        raise DataError(f"{path}: not a valid mounting file (nested too deeply)") from None
    return mounting_from_dict(d, str(path))


def parse_mounting(text: str) -> Mounting | str:
    """Parse a ``--mounting`` value: ``auto``, a file, ``left=MAP,right=MAP``, or one ``MAP`` for all.

    Returns the string ``"auto"`` for ``auto``; a :class:`Mounting` otherwise.
    In ``left=x=-y,y=x,z=z,right=x=y,y=-x,z=z`` each sensor's axis map runs to the
    next sensor name.
    """
    text = text.strip()
    if not text:
        raise DataError("--mounting: empty value")
    if text.lower() == "auto":
        return "auto"
    p = Path(text)
    if p.suffix.lower() in (".toml", ".json") or _is_file(p):
        return load_mounting_file(p)
    out = Mounting(source=text)
    current: str | None = None
    maps: dict[str, list[str]] = {}
    for item in [s.strip() for s in text.split(",") if s.strip()]:
        head, eq, rest = item.partition("=")
        if eq and head.strip().lower() not in _AXES:
            current = _sensor_name(head, f"--mounting {text!r}")
            if current in maps:
                raise DataError(f"--mounting {text!r}: sensor {current} given twice")
            maps[current] = [rest]
        else:
            maps.setdefault(current or "*", []).append(item)
    if "*" in maps and len(maps) > 1:
        raise DataError(f"--mounting {text!r}: start every axis map with a sensor name (left=..., right=...)")
    for name, parts in maps.items():
        out.sensors[name] = SensorMounting(parse_axis_map(",".join(parts)))
    return out


def foot_of(location: str) -> str | None:
    """``left`` / ``right`` for a ``left_foot`` / ``right_foot`` location, else None."""
    for f in ("left", "right"):
        if location.startswith(f):
            return f
    return None


def sensor_of_prefix(prefix: str, location: str) -> str:
    """The physical sensor whose triads carry ``prefix`` in a recording of ``location``."""
    foot = foot_of(location)
    if prefix == "back_":
        return "back"
    if prefix == "other_":
        return {"left": "right", "right": "left"}.get(foot or "", "other")
    return foot or "foot"


def imu_prefixes(channels: list[str]) -> list[str]:
    """Channel-name prefixes (``""``, ``other_``, ``back_``, ...) that have an acc or gyr triad."""
    out: list[str] = []
    for qty in ("acc", "gyr"):
        for name in channels:
            if name.endswith(f"{qty}_x"):
                pre = name[: -len(f"{qty}_x")]
                if all(f"{pre}{qty}_{a}" in channels for a in _AXES) and pre not in out:
                    out.append(pre)
    return out


def triads_of(channels: list[str], prefix: str) -> list[list[int]]:
    """Index triads ``[x, y, z]`` of ``prefix``'s acc and gyr (those complete in ``channels``)."""
    out = []
    for qty in ("acc", "gyr"):
        names = [f"{prefix}{qty}_{a}" for a in _AXES]
        if all(n in channels for n in names):
            out.append([channels.index(n) for n in names])
    return out


def rotations_for(channels: list[str], location: str, mounting: Mounting) -> list[tuple[list[int], np.ndarray]]:
    """``(triad indices, matrix)`` pairs that apply ``mounting`` to channels of a ``location`` recording.

    Raises DataError if a sensor present in the channels is not named by the mounting.
    """
    out = []
    for pre in imu_prefixes(channels):
        sensor = sensor_of_prefix(pre, location)
        m = mounting.matrix_for(sensor)
        if m is None:
            named = ", ".join(mounting.sensors) or "none"
            hint = " (the recording's location does not name a foot; give one axis map for all sensors)" \
                if sensor in ("foot", "other") else ""
            raise DataError(
                f"mounting {mounting.source or ''}: no mounting for sensor {sensor!r} "
                f"(channels {pre or ''}acc_*/{pre or ''}gyr_*); it names {named}{hint}"
            )
        for tri in triads_of(channels, pre):
            out.append((tri, m))
    return out


def rotate_signals(x: np.ndarray, rotations: list[tuple[list[int], np.ndarray]]) -> np.ndarray:
    """Apply ``(triad, M)`` rotations to ``(T, C)`` samples (``v' = M v``); other channels unchanged."""
    if not rotations:
        return x
    y = np.array(x, dtype=np.float64, copy=True)
    for tri, m in rotations:
        y[:, tri] = np.asarray(x, np.float64)[:, tri] @ np.asarray(m, np.float64).T
    return y.astype(np.float32)


def apply_mounting(rec: Recording, mounting: Mounting) -> Recording:
    """The recording in the canonical frame: every IMU triad rotated by its sensor's mounting."""
    rots = rotations_for(rec.channels, rec.location, mounting)
    meta = dict(rec.meta)
    meta["mounting"] = {
        sensor_of_prefix(p, rec.location): (mounting.sensors.get(sensor_of_prefix(p, rec.location))
                                            or mounting.sensors["*"]).to_dict()
        for p in imu_prefixes(rec.channels)
    }
    return replace(rec, signals=rotate_signals(rec.signals, rots), frame=CANONICAL, meta=meta)


# --------------------------------------------------------------------------- estimation

#: Still: smoothed gyro norm below this (rad/s) ...
STILL_GYRO_RAD_S = 0.3
#: ... and the acc norm within this of gravity (m/s²), for at least STILL_MIN_S.
STILL_ACC_TOL = 1.0
STILL_MIN_S = 0.3
#: Minimum total standing time (s) and number of swings an estimate needs.
MIN_STANDING_S = 1.0
MIN_SWINGS = 5
#: A swing: a peak of the low-passed gyro norm above this (rad/s).
SWING_PEAK_RAD_S = 2.0


@dataclass
class Estimate:
    """An estimated mounting of one sensor with what it rests on."""

    matrix: np.ndarray
    confidence: float
    standing_s: float
    swings: int
    gravity_spread_deg: float
    planarity: float
    #: fraction (0.5..1) of quiet-stance edges that turn toe-down about the chosen +y
    sign_margin: float
    #: fraction of heel rises pushing along the chosen +x (the handedness check); NaN if none
    forward_agreement: float = float("nan")

    def to_sensor(self) -> SensorMounting:
        return SensorMounting(
            self.matrix,
            method="estimated",
            confidence=self.confidence,
            details={
                "standing_s": round(self.standing_s, 2),
                "swings": self.swings,
                "gravity_spread_deg": round(self.gravity_spread_deg, 2),
                "planarity": round(self.planarity, 3),
                "sign_margin": round(self.sign_margin, 3),
                "forward_agreement": None if math.isnan(self.forward_agreement) else round(self.forward_agreement, 3),
            },
        )


def _moving(x: np.ndarray, n: int) -> np.ndarray:
    """Centered moving mean of ``x`` (1-D) over ``n`` samples."""
    n = max(int(n), 1)
    return np.convolve(x, np.ones(n) / n, mode="same")


def still_mask(acc: np.ndarray, gyr: np.ndarray, rate_hz: float) -> np.ndarray:
    """Samples in still periods of at least ``STILL_MIN_S`` (gyro quiet, acc ≈ gravity)."""
    gn = _moving(np.linalg.norm(gyr, axis=1), 0.1 * rate_hz)
    an = _moving(np.linalg.norm(acc, axis=1), 0.1 * rate_hz)
    quiet = (gn < STILL_GYRO_RAD_S) & (np.abs(an - GRAVITY) < STILL_ACC_TOL)
    out = np.zeros_like(quiet)
    n_min = max(int(round(STILL_MIN_S * rate_hz)), 1)
    edges = np.flatnonzero(np.diff(np.concatenate([[0], quiet.astype(np.int8), [0]])))
    for a, b in zip(edges[::2], edges[1::2]):
        if b - a >= n_min:
            out[a:b] = True
    return out


def swing_peaks(gyr: np.ndarray, rate_hz: float) -> np.ndarray:
    """Sample indices of swing peaks: maxima of the 3 Hz low-passed gyro norm above 2 rad/s."""
    sos = signal.butter(2, min(3.0, 0.4 * rate_hz), fs=rate_hz, output="sos")
    g = signal.sosfiltfilt(sos, np.linalg.norm(gyr, axis=1)) if len(gyr) > 15 else np.linalg.norm(gyr, axis=1)
    peaks, _ = signal.find_peaks(g, height=SWING_PEAK_RAD_S, distance=max(int(0.5 * rate_hz), 1))
    return peaks


def _quiet_stances(gyr: np.ndarray, rate_hz: float) -> list[tuple[int, int]]:
    """Quiet stances while walking: stretches of 0.08..1.5 s with an angular rate below 1 rad/s,
    at least 0.1 s from both ends of the recording."""
    gn = _moving(np.linalg.norm(gyr, axis=1), 0.05 * rate_hz)
    quiet = gn < 1.0
    edges = np.flatnonzero(np.diff(np.concatenate([[0], quiet.astype(np.int8), [0]])))
    w = max(int(round(0.1 * rate_hz)), 1)
    return [(int(a), int(b)) for a, b in zip(edges[::2], edges[1::2])
            if 0.08 * rate_hz <= b - a <= 1.5 * rate_hz and a >= w and b + w <= len(gyr)]


def _edge_votes(stances: list[tuple[int, int]], rate_y: np.ndarray, rate_hz: float) -> np.ndarray:
    """Mean rate about y over 0.1 s before and after each quiet stance."""
    w = max(int(round(0.1 * rate_hz)), 1)
    votes = []
    for a, b in stances:
        votes += [float(rate_y[a - w : a].mean()), float(rate_y[b : b + w].mean())]
    return np.asarray(votes)


def _forward_votes(stances: list[tuple[int, int]], acc_x: np.ndarray, rate_hz: float) -> np.ndarray:
    """Change of the acceleration along x from each quiet stance to the 0.1 s after it (m/s²).

    As the heel rises the foot is pushed forward: positive along the true +x.
    """
    w = max(int(round(0.1 * rate_hz)), 1)
    return np.asarray([float(acc_x[b : b + w].mean() - acc_x[a:b].mean()) for a, b in stances])


#: Fraction of heel rises that must push along -x before a sensor frame is taken as mirrored ...
MIRROR_EVIDENCE = 0.8
#: ... with a median push of at least this (m/s²; IPOL heel rises: median 1.4 m/s² along +x).
MIRROR_PUSH_M_S2 = 0.7


def estimate_sensor(acc: np.ndarray, gyr: np.ndarray, rate_hz: float, where: str = "recording",
                    foot: bool = True) -> Estimate:
    """Estimate one sensor's mounting from acc (m/s²) and gyro (rad/s) samples at ``rate_hz``.

    Needs at least ``MIN_STANDING_S`` of standing and ``MIN_SWINGS`` swings; raises
    DataError naming what is missing otherwise.  The sensor frame is taken as
    right-handed unless at least ``MIRROR_EVIDENCE`` of the heel rises push
    along the computed -x, by a median of ``MIRROR_PUSH_M_S2`` or more (then the
    estimate is a mirrored matrix, det -1).
    ``foot=False`` (a trunk sensor) aligns gravity only and keeps the sensor's
    heading.

    Confidence (0..1) is the product of three factors: how tightly the still
    periods agree on gravity, how planar the walking rotation is, and how
    consistently the edges of the quiet stances turn toe-down (the sign of y).
    """
    acc = np.asarray(acc, np.float64)
    gyr = np.asarray(gyr, np.float64)
    if acc.shape != gyr.shape or acc.ndim != 2 or acc.shape[1] != 3:
        raise DataError(f"{where}: mounting estimate needs (T, 3) acc and gyro arrays")
    if not (np.isfinite(acc).all() and np.isfinite(gyr).all()):
        raise DataError(f"{where}: non-finite samples; cannot estimate the mounting")
    z, spread, standing_s = _gravity(acc, gyr, rate_hz, where)
    peaks = swing_peaks(gyr, rate_hz)
    if foot and len(peaks) < MIN_SWINGS:
        raise DataError(
            f"{where}: only {len(peaks)} swing(s) found (gyro peaks above {SWING_PEAK_RAD_S} rad/s; "
            f"at least {MIN_SWINGS} needed to find the walking direction); record at least "
            "ten steps of straight walking, or declare the mounting"
        )
    if not foot:
        # gravity only: the smallest rotation taking z onto the canonical z
        rot, _ = Rotation.align_vectors([[0.0, 0.0, 1.0]], [z])
        m = rot.as_matrix()
        conf = float(np.exp(-spread / 10.0))
        return Estimate(m, conf, standing_s, len(peaks), spread, 0.0, 0.0, float("nan"))
    walking = _moving(np.linalg.norm(gyr, axis=1), 0.1 * rate_hz) > 1.0
    gh = gyr[walking] - np.outer(gyr[walking] @ z, z)
    w, v = np.linalg.eigh(gh.T @ gh)
    y = v[:, -1]
    total = float(np.sum(gyr[walking] ** 2))
    planarity = float(w[-1] / total) if total > 0 else 0.0
    # Sign: in the canonical frame the swing turns the foot toe-up (negative
    # rate about +y), and the foot leaves and regains its flat mid-stance by
    # turning toe-down (heel rise before toe off, the forefoot coming down after
    # heel strike): positive rate about +y at both edges of each quiet stance.
    stances = _quiet_stances(gyr, rate_hz)
    y, sign_factor, sign_margin = _sign_of_y(y, gyr, walking, stances, rate_hz)
    y -= (y @ z) * z
    y /= np.linalg.norm(y)
    x = np.cross(y, z)
    # Handedness: z (gravity) and y (the gait's turning) are physical, so a
    # left-handed (mirrored) sensor frame shows as x = y × z pointing backward:
    # the heel rises push along -x.  Only strong evidence flips it.
    fwd = _forward_votes(stances, acc @ x, rate_hz)
    mirrored = (len(fwd) >= 4 and float(np.mean(fwd < 0)) >= MIRROR_EVIDENCE
                and float(np.median(fwd)) <= -MIRROR_PUSH_M_S2)
    forward_agreement = float(np.mean(fwd > 0)) if len(fwd) else float("nan")
    if mirrored:
        x = -x
        forward_agreement = 1.0 - forward_agreement
    m = np.stack([x, y, z])
    conf = float(np.exp(-spread / 10.0) * min(1.0, planarity / 0.6) * sign_factor)
    return Estimate(m, conf, standing_s, len(peaks), spread, planarity, sign_margin, forward_agreement)


def _gravity(acc: np.ndarray, gyr: np.ndarray, rate_hz: float, where: str) -> tuple[np.ndarray, float, float]:
    """(unit up vector in the sensor frame, spread of the still samples around it in deg, standing s).

    DataError when there is too little standing still, naming g or deg/s when the data looks like it.
    """
    still = still_mask(acc, gyr, rate_hz)
    standing_s = float(still.sum() / rate_hz)
    if standing_s < MIN_STANDING_S:
        med_acc = float(np.median(np.linalg.norm(acc, axis=1))) if len(acc) else 0.0
        gyr_peak = float(np.percentile(np.linalg.norm(gyr, axis=1), 99.9)) if len(gyr) else 0.0
        hint = ""
        if 0.5 < med_acc < 2.0:
            hint = f" (the acceleration's median magnitude is {med_acc:.2f}: in g, not m/s²?)"
        elif gyr_peak > 40.0:
            hint = f" (the gyro peaks at {gyr_peak:.0f}: in deg/s, not rad/s?)"
        raise DataError(
            f"{where}: only {standing_s:.1f} s of standing still (at least {MIN_STANDING_S:.0f} s needed "
            f"to find gravity){hint}; record a few seconds of quiet standing before walking, "
            "or declare the mounting (--mounting x=..,y=..,z=..)"
        )
    up_samples = acc[still] / np.linalg.norm(acc[still], axis=1, keepdims=True)
    z = up_samples.mean(axis=0)
    z /= np.linalg.norm(z)
    spread = float(np.degrees(np.arccos(np.clip(up_samples @ z, -1, 1))).mean())
    return z, spread, standing_s


def _sign_of_y(y: np.ndarray, gyr: np.ndarray, walking: np.ndarray, stances: list,
               rate_hz: float) -> tuple[np.ndarray, float, float]:
    """``y`` turned so that the quiet stances' edges turn toe-down; (y, sign factor, sign margin).

    With fewer than four voting edges, the side on which the rate about ``y``
    peaks higher is taken as positive (the push-off is the fastest turn of a stride).
    """
    votes = _edge_votes(stances, gyr @ y, rate_hz)
    if len(votes) >= 4:
        frac = float(np.mean(votes > 0))
        if frac < 0.5:
            y = -y
            frac = 1.0 - frac
        return y, min(1.0, (2.0 * frac - 1.0) / 0.5), frac
    rate = gyr[walking] @ y
    lo, hi = (abs(float(v)) for v in np.percentile(rate, [1, 99]))
    if lo > hi:
        y = -y
        lo, hi = hi, lo
    return y, min(1.0, (hi / max(lo, 1e-9) - 1.0) / 0.3), 0.5 + 0.5 * min(1.0, hi / max(lo, 1e-9) - 1.0)


def estimate_recording(rec: Recording) -> Mounting:
    """Estimate the mounting of every IMU in one recording (sensor names from its location)."""
    out = Mounting(source=f"estimated from {rec.source or rec.name}")
    for pre in imu_prefixes(rec.channels):
        idx = [rec.channels.index(f"{pre}{q}_{a}") for q in ("acc", "gyr") for a in _AXES
               if f"{pre}{q}_{a}" in rec.channels]
        if len(idx) != 6:
            continue
        _check_units(rec, idx)
        sensor = sensor_of_prefix(pre, rec.location)
        est = estimate_sensor(rec.signals[:, idx[:3]], rec.signals[:, idx[3:]], rec.rate_hz,
                              where=f"{rec.name} {sensor} sensor", foot=sensor != "back")
        out.sensors[sensor] = est.to_sensor()
    if not out.sensors:
        raise DataError(f"{rec.name}: no complete acc + gyr triads to estimate a mounting from")
    return out


def _check_units(rec: Recording, idx: list[int]) -> None:
    for i in idx:
        u = rec.units[i]
        want = "m/s^2" if rec.channels[i].split("_")[-2].endswith("acc") else "rad/s"
        if u and u != want:
            raise DataError(f"{rec.name}: channel {rec.channels[i]} is in {u}; the mounting estimate needs {want}")


def combine(mountings: list[Mounting], source: str = "") -> Mounting:
    """One mounting per sensor from several estimates: the confidence-weighted mean rotation.

    Estimates disagreeing on the handedness are settled by a confidence-weighted
    vote; the mean is taken over the estimates of the winning handedness.
    """
    out = Mounting(source=source)
    mirror = np.diag([1.0, -1.0, 1.0])
    names = sorted({n for m in mountings for n in m.sensors})
    for name in names:
        items = [m.sensors[name] for m in mountings if name in m.sensors]
        wts = np.array([max(s.confidence, 1e-3) for s in items])
        left = np.array([np.linalg.det(s.matrix) < 0 for s in items])
        mirrored = float(wts[left].sum()) > float(wts[~left].sum())
        keep = left == mirrored
        mats = np.stack([s.matrix @ mirror if mirrored else s.matrix for s, k in zip(items, keep) if k])
        rot = Rotation.from_matrix(mats)
        mean = rot.mean(weights=wts[keep])
        spread = np.degrees((mean.inv() * rot).magnitude())
        details = {"recordings": len(items), "spread_deg_median": round(float(np.median(spread)), 2)}
        if (~keep).any():
            details["other_handedness"] = int((~keep).sum())
        conf = float(np.average([s.confidence for s, k in zip(items, keep) if k], weights=wts[keep]))
        conf *= math.exp(-float(np.median(spread)) / 10) * float(keep.mean())
        m = mean.as_matrix() @ mirror if mirrored else mean.as_matrix()
        out.sensors[name] = SensorMounting(m, method="estimated", confidence=conf, details=details)
    return out


def angular_error_deg(a: np.ndarray, b: np.ndarray) -> float:
    """Angle (degrees) of the rotation between two mountings (inf if one is mirrored and the other not)."""
    if np.linalg.det(a) * np.linalg.det(b) < 0:
        return float("inf")
    d = np.asarray(a) @ np.asarray(b).T
    return float(np.degrees(np.arccos(np.clip((np.trace(d) - 1) / 2, -1.0, 1.0))))


def mount_all(recs: list[Recording], mounting: "str | Mounting | None", what: str = "--mounting") -> list[Recording]:
    """Bring recordings into the canonical frame with a mounting spec.

    ``mounting``: None or ``""`` (leave as they are), ``"auto"`` (estimate per
    recording, see :func:`estimate_recording`), an axis map / per-sensor maps /
    a file (see :func:`parse_mounting`), or a :class:`Mounting`.  Recordings a
    loader already put into the canonical frame are not rotated again when the
    mounting is ``auto``; a declared mounting on them is an error.
    """
    if mounting is None or (isinstance(mounting, str) and not mounting.strip()):
        return recs
    m = parse_mounting(mounting) if isinstance(mounting, str) else mounting
    out = []
    for r in recs:
        if m == "auto":
            out.append(r if r.frame == CANONICAL else apply_mounting(r, estimate_recording(r)))
            continue
        if r.frame == CANONICAL:
            raise DataError(
                f"{what}: {r.name} is already in the canonical foot frame (its loader rotated it); "
                "a declared mounting applies to data in the sensor's own frame"
            )
        out.append(apply_mounting(r, m))
    return out


def estimate_mounting(recs: list[Recording]) -> tuple[Mounting, list[Mounting]]:
    """One mounting per sensor over several recordings, and the per-recording estimates.

    Each recording is estimated on its own (:func:`estimate_recording`); the
    sensor's mounting is their confidence-weighted mean rotation.  A recording
    that cannot be estimated (no standing, too few steps) is an error naming it.
    """
    if not recs:
        raise DataError("no recordings to estimate a mounting from")
    canon = [r.name for r in recs if r.frame == CANONICAL]
    if canon:
        raise DataError(
            f"{canon[0]}: already in the canonical frame (its loader rotated it); estimate from the sensor's "
            "own frame (for IPOL: ipol?frame=sensor)"
        )
    per = [estimate_recording(r) for r in recs]
    return combine(per, source=f"estimated from {len(recs)} recording(s)"), per
