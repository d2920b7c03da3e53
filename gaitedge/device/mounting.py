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

:func:`read_mounting_file` reads it with the float side's parser
(:func:`gaitedge.data.mounting.parse_mounting`, which also takes axis maps).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from gaitedge.data.mounting import parse_mounting, sensor_of_prefix
from gaitedge.errors import DataError
from gaitedge.quant.mounting import MAX_TRIADS, Triad, rotation_q14

#: channel-name prefixes of the IMU groups, per the board's foot: prefix -> sensor
_OTHER = {"left": "right", "right": "left"}


def read_mounting_file(path: str | Path) -> dict[str, np.ndarray]:
    """Sensor name (``left``, ``right``, ``back`` or ``*``) -> float64 3×3 matrix.

    ``path`` is a mounting file (TOML or JSON, as ``gaitedge mounting estimate``
    writes it) or axis maps (``x=-y,y=x,z=z``, ``left=...,right=...``), read by
    :func:`gaitedge.data.mounting.parse_mounting`; its errors are DataErrors
    naming the file and the problem.
    """
    m = parse_mounting(str(path))
    if isinstance(m, str):
        raise DataError("a device mounting is a file or axis maps here; estimate one first with "
                        "'gaitedge mounting estimate --data SPEC --out FILE' (or give --data SPEC with auto)")
    return {name: sm.matrix for name, sm in m.sensors.items()}


def sensor_of_channel_prefix(prefix: str, foot: str) -> str:
    """The physical sensor of a channel group (``""``, ``"other_"``, ``"back_"``) on a board worn on ``foot``."""
    return sensor_of_prefix(prefix, f"{foot}_foot")


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
