"""The sensor mounting for a device: a mounting file -> the triads SET_MOUNTING sends.

A mounting file gives one 3×3 matrix per physical sensor, ``v_canonical = M @
v_sensor`` (a rotation, or a rotation with one mirror), as JSON or TOML::

    {"frame": "foot-canonical",
     "sensors": {"left":  {"matrix": [[1, 0, 0], [0, 1, 0], [0, 0, 1]]},
                 "right": {"matrix": [[...], [...], [...]]},
                 "back":  {"matrix": [[...], [...], [...]]}}}

(``"*"`` stands for every sensor not named.)  The device's channels are mapped to
sensors by name: ``acc_*`` / ``gyr_*`` belong to the foot the board is worn on
(``foot``), ``other_acc_*`` / ``other_gyr_*`` to the other foot, ``back_acc_*`` /
``back_gyr_*`` to ``back``; each complete x/y/z group is one triad, quantized with
:func:`gaitedge.quant.mounting.rotation_q14`.  Sensors without a matrix are not
rotated.

:func:`read_mounting_file` is the one place that reads the file; it returns plain
matrices so that it can be replaced by the float side's loader
(``gaitedge.data.mounting``) without touching the mapping or the device code.
"""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

import numpy as np

from gaitedge.errors import DataError
from gaitedge.quant.mounting import MAX_TRIADS, Triad, rotation_q14

#: physical sensor names a mounting file may name (and "*")
SENSORS = ("left", "right", "back")
#: channel-name prefixes of the IMU groups, per the board's foot: prefix -> sensor
_OTHER = {"left": "right", "right": "left"}


def read_mounting_file(path: str | Path) -> dict[str, np.ndarray]:
    """Sensor name (``left``, ``right``, ``back`` or ``*``) -> float64 3×3 matrix, from a JSON
    or TOML mounting file (by suffix; other suffixes are tried as JSON, then TOML).

    Raises :class:`gaitedge.errors.DataError` for a missing or unreadable file, an
    unknown sensor name, or an entry without a 3×3 numeric ``matrix``.  Orthogonality is
    checked later (:func:`gaitedge.quant.mounting.rotation_q14`).
    """
    p = Path(path)
    if not p.is_file():
        raise DataError(f"{p}: no such mounting file")
    text = p.read_text(encoding="utf-8", errors="replace")
    doc = None
    errors = []
    order = ("toml", "json") if p.suffix.lower() == ".toml" else ("json", "toml")
    for kind in order:
        try:
            doc = json.loads(text) if kind == "json" else tomllib.loads(text)
            break
        except (json.JSONDecodeError, tomllib.TOMLDecodeError) as exc:
            errors.append(f"{kind.upper()}: {exc}")
    if doc is None:
        raise DataError(f"{p}: not a JSON or TOML mounting file ({'; '.join(errors)})")
    sensors = doc.get("sensors") if isinstance(doc, dict) else None
    if not isinstance(sensors, dict) or not sensors:
        raise DataError(f'{p}: expected a table "sensors" with entries such as '
                        f'left = {{matrix = [[...], [...], [...]]}}')
    out: dict[str, np.ndarray] = {}
    for name, entry in sensors.items():
        if name not in (*SENSORS, "*"):
            raise DataError(f"{p}: unknown sensor {name!r} (known: {', '.join(SENSORS)}, or '*' for all)")
        mat = entry.get("matrix") if isinstance(entry, dict) else entry
        try:
            a = np.asarray(mat, dtype=np.float64)
        except (TypeError, ValueError):
            a = np.zeros(0)
        if a.shape != (3, 3) or not np.all(np.isfinite(a)):
            raise DataError(f"{p}: sensor {name!r}: 'matrix' must be a 3×3 array of numbers")
        out[name] = a
    return out


def sensor_of_channel_prefix(prefix: str, foot: str) -> str:
    """The physical sensor of a channel group (``""``, ``"other_"``, ``"back_"``) on a board worn on ``foot``."""
    return {"": foot, "other_": _OTHER[foot], "back_": "back"}[prefix]


def triads_for_channels(channels: list[str], sensors: dict[str, np.ndarray],
                        foot: str = "left") -> tuple[list[Triad], list[str]]:
    """The triads of a device with these input ``channels`` (its order) for the sensor matrices.

    Returns ``(triads, descriptions)``: one triad per complete ``{prefix}{acc|gyr}_{x,y,z}``
    group whose sensor has a matrix (or ``"*"``), and one line of text per triad.  Raises
    :class:`gaitedge.errors.DataError` when ``foot`` is not left/right, a matrix is not a
    rotation, or more than 4 triads would result.
    """
    if foot not in _OTHER:
        raise DataError(f"--foot must be left or right, not {foot!r}")
    triads: list[Triad] = []
    text: list[str] = []
    quantized: dict[str, np.ndarray] = {}
    for prefix in ("", "other_", "back_"):
        sensor = sensor_of_channel_prefix(prefix, foot)
        mat = sensors.get(sensor, sensors.get("*"))
        if mat is None:
            continue
        for kind in ("acc", "gyr"):
            names = [f"{prefix}{kind}_{a}" for a in "xyz"]
            if not all(n in channels for n in names):
                continue
            if sensor not in quantized:
                try:
                    quantized[sensor] = rotation_q14(mat)
                except DataError as exc:
                    raise DataError(f"sensor {sensor!r}: {exc}") from None
            triads.append(Triad(tuple(channels.index(n) for n in names), quantized[sensor]))
            text.append(f"{sensor} {kind}: {', '.join(names)}")
    if len(triads) > MAX_TRIADS:
        raise DataError(f"the mounting maps to {len(triads)} sensor triads; the device takes at most {MAX_TRIADS}")
    return triads, text
