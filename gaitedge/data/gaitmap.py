"""gaitmap-format foot IMU data and stride-event tables.

**IMU CSV.**  Two header rows: row 1 names the sensor of each column, row 2 its
axis.  Sensor names are ``left_sensor`` / ``right_sensor`` (also ``left``,
``right``, ``left_foot``, ``right_foot``), either repeated over all of a
sensor's columns or written once at the first column of the group (the cells
after it left empty).  Axis names are ``acc_x, acc_y, acc_z`` (m/s²) and
``gyr_x, gyr_y, gyr_z`` (deg/s; converted to rad/s here); other axes are
ignored.  A leading index column (first cells empty or naming the header
levels) is allowed and ignored, and so is a third header row that names only
the index (as pandas writes it).  The signals are expected in gaitmap's foot
sensor frame, which is gaitedge's canonical foot frame (x toward the toe, y to
the left, z up, the same for both feet; see ``docs/frames.md``), so only the
gyroscope unit changes.

**Stride-event table CSV.**  Columns ``s_id, foot, start, end, ic, tc, min_vel``
(more may follow, a leading unnamed index column may precede them), one row per
stride.  Values are sample indices at the IMU rate (``494.0`` is read as 494);
``foot`` is ``left`` or ``right``; ``ic`` (initial contact) is a heel strike,
``tc`` (terminal contact) a toe off.  A stride runs from one mid-stance
(``min_vel``) to the next: ``start < tc < ic <= end``, and a foot's strides do
not overlap (one may end where the next starts).

**Labels.**  Per foot, the samples ``start .. end`` (inclusive) of every listed
stride are labelled: ``swing`` on ``[tc, ic)``, ``stance`` elsewhere.  Samples
outside every listed stride (before the first, after the last, and in gaps
between strides that do not touch) are unlabelled (-1); metrics ignore them and
do not count predicted events there as false positives.  The recording's events
are exactly the listed ``tc`` (``toe_off``) and ``ic`` (``heel_strike``).
"""

from __future__ import annotations

import csv
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from gaitedge.data.csvload import table_numbers
from gaitedge.data.mounting import CANONICAL
from gaitedge.data.recording import GAIT_CLASSES, UNLABELED, Recording
from gaitedge.errors import DataError
from gaitedge.rundir import atomic_path

#: Default sampling rate of gaitmap example data, Hz.
DEFAULT_RATE_HZ = 204.8
AXES = ("acc_x", "acc_y", "acc_z", "gyr_x", "gyr_y", "gyr_z")
CHANNELS = AXES
UNITS = ("m/s^2", "m/s^2", "m/s^2", "rad/s", "rad/s", "rad/s")
#: Accepted sensor names (lower case) and the foot each one means.
SENSOR_NAMES = {
    "left_sensor": "left",
    "left": "left",
    "left_foot": "left",
    "right_sensor": "right",
    "right": "right",
    "right_foot": "right",
}
FEET = ("left", "right")
EVENT_COLUMNS = ("s_id", "foot", "start", "end", "ic", "tc", "min_vel")
_INDEX_COLUMNS = ("start", "end", "ic", "tc", "min_vel")


@dataclass(frozen=True)
class Strides:
    """One foot's strides from a stride-event table (sample indices, int64 arrays).

    Attributes:
        s_id: stride ids as written in the table.
        start, end: the stride's first and last sample (both mid-stance).
        tc: toe off (terminal contact) inside ``(start, end]``.
        ic: heel strike (initial contact), after ``tc``, inside ``(start, end]``.
        min_vel: the mid-stance sample given in the table.
    """

    s_id: tuple[str, ...]
    start: np.ndarray
    end: np.ndarray
    tc: np.ndarray
    ic: np.ndarray
    min_vel: np.ndarray

    def __len__(self) -> int:
        return len(self.start)

    def events(self) -> dict[str, np.ndarray]:
        """``{"toe_off": tc, "heel_strike": ic}``, ascending sample indices."""
        return {"toe_off": np.sort(self.tc), "heel_strike": np.sort(self.ic)}

    def labels(self, n: int) -> np.ndarray:
        """Per-sample labels for ``n`` samples: stance/swing inside strides, else -1."""
        stance, swing = GAIT_CLASSES.index("stance"), GAIT_CLASSES.index("swing")
        lab = np.full(n, UNLABELED, dtype=np.int64)
        for s, e in zip(self.start, self.end):
            lab[s : e + 1] = stance
        for to, hs in zip(self.tc, self.ic):
            lab[to:hs] = swing
        return lab


# ---------------------------------------------------------------------------
# reading


def _rows(path: Path) -> list[list[str]]:
    if not path.is_file():
        raise DataError(f"{path}: file not found")
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError:
        raise DataError(f"{path}: not a UTF-8 text (CSV) file") from None
    lines = [ln for ln in text.splitlines() if ln.strip()]
    if not lines:
        raise DataError(f"{path}: empty file")
    delimiter = max((",", ";", "\t"), key=lines[0].count)
    return [[c.strip() for c in row] for row in csv.reader(lines, delimiter=delimiter)]


def _is_number(cell: str) -> bool:
    try:
        float(cell)
    except ValueError:
        return False
    return True


def read_imu_table(path: str | Path) -> dict[str, np.ndarray]:
    """Read a gaitmap IMU CSV (see the module docstring).

    Returns:
        per foot present (``"left"`` / ``"right"``, in file order) a ``(T, 6)``
        float32 array ``acc_x, acc_y, acc_z`` (m/s²), ``gyr_x, gyr_y, gyr_z``
        (rad/s; the file's deg/s converted).
    """
    path = Path(path)
    rows = _rows(path)
    cols, width, first = _imu_columns(path, rows)
    body_start = 2
    # pandas writes a third header row holding only the index name(s)
    if len(rows) > 2 and first == 1 and rows[2][0] and not _is_number(rows[2][0]) and not any(rows[2][1:]):
        body_start = 3
    body = rows[body_start:]
    if not body:
        raise DataError(f"{path}: no samples after the header rows")
    return {foot: _foot_signals(path, body, [axis_cols[a] for a in AXES], foot, width, body_start)
            for foot, axis_cols in cols.items()}


def _imu_columns(path: Path, rows: list[list[str]]) -> tuple[dict[str, dict[str, int]], int, int]:
    """From the two header rows: the column of each axis per foot, the header width, the first data column."""
    head_hint = "row 1 the sensor names (e.g. left_sensor) and row 2 the axis names (acc_x .. gyr_z)"
    if all(c == "" or _is_number(c) for c in rows[0]):
        raise DataError(f"{path}: no header rows; gaitmap IMU CSVs have two: {head_hint}")
    if len(rows) < 2 or all(c == "" or _is_number(c) for c in rows[1]):
        raise DataError(f"{path}: only one header row; gaitmap IMU CSVs have two: {head_hint}")
    sensors_row, axes_row = rows[0], rows[1]
    width = max(len(sensors_row), len(axes_row))
    sensors_row = sensors_row + [""] * (width - len(sensors_row))
    axes_row = axes_row + [""] * (width - len(axes_row))
    first = 0 if axes_row[0].lower() in AXES else 1
    if first == 1 and SENSOR_NAMES.get(sensors_row[0].lower()) and axes_row[0] == "":
        raise DataError(f"{path}: column 1 names sensor {sensors_row[0]!r} but no axis in header row 2")
    # sensor names: repeated per column, or given once per group (forward fill)
    sensor_of: list[str] = []
    current = ""
    for j in range(first, width):
        if sensors_row[j]:
            current = sensors_row[j]
        if not current:
            raise DataError(f"{path}: header row 1 names no sensor for column {j + 1} ({axes_row[j] or 'empty'})")
        sensor_of.append(current)
    names = list(dict.fromkeys(sensor_of))
    if not names:
        raise DataError(f"{path}: no sensor columns; gaitmap IMU CSVs have two header rows: {head_hint}")
    unknown = [s for s in names if s.lower() not in SENSOR_NAMES]
    if any(s.lower() in AXES for s in names):
        raise DataError(f"{path}: header row 1 holds axis names; {head_hint}")
    if unknown:
        raise DataError(
            f"{path}: unknown sensor name(s) {', '.join(map(repr, unknown))} in header row 1 "
            f"(found {', '.join(map(repr, names))}); accepted: {', '.join(SENSOR_NAMES)}"
        )
    foot_of = {s: SENSOR_NAMES[s.lower()] for s in names}
    for foot in FEET:
        same = [s for s in names if foot_of[s] == foot]
        if len(same) > 1:
            raise DataError(f"{path}: sensors {', '.join(map(repr, same))} all name the {foot} foot")
    cols: dict[str, dict[str, int]] = {foot_of[s]: {} for s in names}
    for j, sensor in zip(range(first, width), sensor_of):
        axis = axes_row[j].lower()
        if axis in AXES:
            if axis in cols[foot_of[sensor]]:
                raise DataError(f"{path}: sensor {sensor!r} has axis {axis!r} twice")
            cols[foot_of[sensor]][axis] = j
    for sensor in names:
        missing = [a for a in AXES if a not in cols[foot_of[sensor]]]
        if missing:
            raise DataError(
                f"{path}: sensor {sensor!r} lacks axis column(s) {', '.join(missing)} in header row 2 "
                f"(needs {', '.join(AXES)})"
            )
    return cols, width, first


def _foot_signals(path: Path, body: list[list[str]], idx: list[int], foot: str, width: int,
                  body_start: int) -> np.ndarray:
    """One foot's ``(T, 6)`` float32 signals (gyro deg/s -> rad/s); DataError naming a bad line."""
    sig = table_numbers(path, body, idx, [f"{foot} {a}" for a in AXES], first_line=body_start + 1, width=width,
                        exact=False)
    sig[:, 3:6] = np.deg2rad(sig[:, 3:6])
    return sig.astype(np.float32)


def read_event_table(path: str | Path, n_samples: int | None = None) -> dict[str, Strides]:
    """Read and check a gaitmap stride-event table (see the module docstring).

    Args:
        path: the CSV file.
        n_samples: length of the recording the indices refer to; if given, every
            index must lie in ``0 .. n_samples - 1``.

    Returns:
        per foot listed (``"left"`` / ``"right"``) its strides, sorted by start.
    """
    path = Path(path)
    rows = _rows(path)
    header = rows[0]
    missing = [c for c in EVENT_COLUMNS if c not in header]
    if missing:
        raise DataError(
            f"{path}: event table lacks column(s) {', '.join(missing)}; "
            f"needs {', '.join(EVENT_COLUMNS)}, found {', '.join(h or '(unnamed)' for h in header)}"
        )
    at = {c: header.index(c) for c in EVENT_COLUMNS}
    per_foot: dict[str, list[tuple[int, ...]]] = {}
    ids: dict[str, list[str]] = {}
    for r, row in enumerate(rows[1:]):
        line = r + 2
        if len(row) < len(header):
            raise DataError(f"{path}: line {line} has {len(row)} fields, the header has {len(header)}")
        foot = row[at["foot"]].lower()
        if foot not in FEET:
            raise DataError(f"{path}: line {line}: foot {row[at['foot']]!r} is not left or right")
        vals = []
        for c in _INDEX_COLUMNS:
            cell = row[at[c]]
            try:
                v = float(cell)
            except ValueError:
                raise DataError(f"{path}: line {line}, column {c!r}: not a number: {cell!r}") from None
            if not math.isfinite(v) or abs(v - round(v)) > 1e-6:
                raise DataError(f"{path}: line {line}, column {c!r}: {cell!r} is not a whole sample index")
            vals.append(int(round(v)))
        start, end, ic, tc, mv = vals
        where = f"{path}: line {line} ({foot} stride {row[at['s_id']]!r})"
        low = min(vals)
        if low < 0 or (n_samples is not None and max(vals) >= n_samples):
            rng = f"0 .. {n_samples - 1}" if n_samples is not None else "0 or more"
            raise DataError(f"{where}: event outside the recording (sample indices must be {rng}): {vals}")
        if not tc < ic:
            raise DataError(f"{where}: tc {tc} is not before ic {ic} (toe off must precede heel strike)")
        if not (start < tc and ic <= end):
            raise DataError(f"{where}: tc {tc} and ic {ic} must lie inside the stride (start {start}, end {end}]")
        if not start <= mv <= end:
            raise DataError(f"{where}: min_vel {mv} outside the stride [{start}, {end}]")
        per_foot.setdefault(foot, []).append((start, end, tc, ic, mv))
        ids.setdefault(foot, []).append(row[at["s_id"]])
    out: dict[str, Strides] = {}
    for foot, strides in per_foot.items():
        order = sorted(range(len(strides)), key=lambda i: strides[i][:2])
        arr = np.array([strides[i] for i in order], dtype=np.int64).reshape(-1, 5)
        for k in range(1, len(arr)):
            if arr[k, 0] < arr[k - 1, 1]:
                a, b = ids[foot][order[k - 1]], ids[foot][order[k]]
                raise DataError(
                    f"{path}: {foot} strides {a!r} [{arr[k - 1, 0]}, {arr[k - 1, 1]}] and "
                    f"{b!r} [{arr[k, 0]}, {arr[k, 1]}] overlap"
                )
        out[foot] = Strides(
            s_id=tuple(ids[foot][i] for i in order),
            start=arr[:, 0],
            end=arr[:, 1],
            tc=arr[:, 2],
            ic=arr[:, 3],
            min_vel=arr[:, 4],
        )
    return out


def _resolve_events_path(events: str | Path, imu_path: Path) -> Path:
    p = Path(events).expanduser()
    if not p.is_absolute() and not p.exists() and (imu_path.parent / p).exists():
        return imu_path.parent / p
    return p


def load_gaitmap(
    path: str | Path,
    events: str | Path | None = None,
    rate_hz: float = DEFAULT_RATE_HZ,
    subject: str | None = None,
    other_foot: bool = False,
) -> list[Recording]:
    """Load a gaitmap IMU CSV (and its stride-event table) as one recording per foot.

    Args:
        path: the IMU CSV (acc in m/s², gyro in deg/s; see the module docstring).
        events: optional stride-event table; a relative path not found from the
            working directory is looked up next to the IMU file.  Without it
            the recordings are unlabelled.
        rate_hz: sampling rate of the IMU file in Hz.
        subject: subject id; default the IMU file's stem.
        other_foot: append the other foot's channels as ``other_acc_x ..
            other_gyr_z`` (needs both feet in the file).

    Returns:
        per foot present (left first) a recording with channels ``acc_x ..
        gyr_z`` (m/s², rad/s), location ``left_foot`` / ``right_foot``, in the
        canonical foot frame (gaitmap's foot sensor frame).
    """
    path = Path(path).expanduser()
    if not (isinstance(rate_hz, (int, float)) and math.isfinite(rate_hz) and rate_hz > 0):
        raise DataError(f"{path}: sampling rate must be a number > 0 Hz, got {rate_hz!r}")
    imu = read_imu_table(path)
    n = len(next(iter(imu.values())))
    if other_foot and len(imu) < 2:
        raise DataError(f"{path}: other_foot needs both feet, the file has only the {next(iter(imu))} foot sensor")
    strides: dict[str, Strides] | None = None
    events_path = None
    if events is not None:
        events_path = _resolve_events_path(events, path)
        strides = read_event_table(events_path, n_samples=n)
        absent = [f for f in strides if f not in imu]
        if absent:
            raise DataError(
                f"{events_path}: strides of the {' and '.join(absent)} foot, but {path} has no such sensor "
                f"(it has {', '.join(imu)})"
            )
    out = []
    for foot in [f for f in FEET if f in imu]:
        parts = [imu[foot]]
        channels = list(CHANNELS)
        units = list(UNITS)
        if other_foot:
            parts.append(imu["right" if foot == "left" else "left"])
            channels += [f"other_{c}" for c in CHANNELS]
            units += list(UNITS)
        labels = None
        ev: dict[str, np.ndarray] = {}
        if strides is not None and foot in strides:
            labels = strides[foot].labels(n)
            ev = strides[foot].events()
        out.append(
            Recording(
                signals=np.concatenate(parts, axis=1),
                channels=channels,
                units=units,
                rate_hz=float(rate_hz),
                labels=labels,
                events=ev,
                subject=subject if subject is not None else path.stem,
                location=f"{foot}_foot",
                source=str(path),
                frame=CANONICAL,
            )
        )
    return out


# ---------------------------------------------------------------------------
# writing


def strides_from_events(toe_off: Sequence[int], heel_strike: Sequence[int]) -> list[tuple[int, int, int, int]]:
    """Strides ``(start, end, tc, ic)`` from one foot's detected events (samples).

    The events are merged in time; every run heel strike, toe off, heel strike,
    toe off (``ic0 < tc < ic < tc1``) with no other event between gives one
    stride: ``tc`` and ``ic`` are its toe off and heel strike, and it runs from
    the mid-stance before them, ``start = (ic0 + tc) // 2``, to the one after,
    ``end = (ic + tc1) // 2``.  Consecutive strides share their boundary sample.
    The first swing of a walk (no heel strike before it), the last one (no toe
    off after it) and events out of order (two toe offs in a row, ...) give
    no stride.
    """
    merged = sorted([(int(i), 0) for i in toe_off] + [(int(i), 1) for i in heel_strike])
    out = []
    for k in range(1, len(merged) - 2):
        (ic0, a), (tc, b), (ic, c), (tc1, d) = merged[k - 1 : k + 3]
        if (a, b, c, d) == (1, 0, 1, 0) and ic0 < tc < ic < tc1:
            out.append(((ic0 + tc) // 2, (ic + tc1) // 2, tc, ic))
    return out


def write_event_table(
    path: str | Path,
    events_by_foot: Mapping[str, Mapping[str, Sequence[int]]],
    rate_hz: float,
    timestamps_by_foot: Mapping[str, Mapping[str, Sequence[float]]] | None = None,
    max_stride_s: float | None = None,
) -> int:
    """Write detected events as a gaitmap-style stride-event table (atomically).

    One row per detected stride, columns ``s_id, foot, start, end, ic, tc,
    min_vel, tc_s, ic_s``.  A stride runs from one mid-stance to the next and
    holds exactly one toe off ``tc`` then one heel strike ``ic``
    (``start < tc < ic <= end``); see :func:`strides_from_events` for which
    events form strides.  No foot velocity is available here, so the
    mid-stance (gaitmap's minimum-velocity sample) is taken as the midpoint
    between a heel strike and the following toe off: ``min_vel = start``.
    ``tc_s`` / ``ic_s`` are the events' times in seconds: the given timestamps,
    else ``index / rate_hz``.  Rows are ordered by foot (left, right) then
    start; ``s_id`` counts from 0 over the table.  The file is written to a
    temporary file next to ``path`` and renamed over it.

    Args:
        path: the CSV file to write.
        events_by_foot: per foot (``left`` / ``right``, or ``left_foot`` /
            ``right_foot``) a mapping with ``toe_off`` and ``heel_strike``
            sample indices (at ``rate_hz``).
        rate_hz: sampling rate of the indices in Hz.
        timestamps_by_foot: optional, same shape as ``events_by_foot``: each
            event's time in seconds (e.g. the stream's clock).
        max_stride_s: if given, strides longer than this many seconds (e.g.
            spanning a pause) are left out.

    Returns:
        the number of strides written.
    """
    path = Path(path)
    if not (isinstance(rate_hz, (int, float)) and math.isfinite(rate_hz) and rate_hz > 0):
        raise DataError(f"{path}: sampling rate must be a number > 0 Hz, got {rate_hz!r}")
    rows: list[list[str]] = []
    by_foot: dict[str, Mapping[str, Sequence[int]]] = {}
    times_by: dict[str, Mapping[str, Sequence[float]]] = {}
    for key, ev in events_by_foot.items():
        foot = SENSOR_NAMES.get(str(key).lower())
        if foot is None or foot in by_foot:
            raise DataError(f"{path}: events for foot {key!r}; give each of left / right at most once")
        by_foot[foot] = ev
        if timestamps_by_foot is not None and key in timestamps_by_foot:
            times_by[foot] = timestamps_by_foot[key]
    for foot in [f for f in FEET if f in by_foot]:
        ev = by_foot[foot]
        idx: dict[str, np.ndarray] = {}
        for kind in ("toe_off", "heel_strike"):
            a = np.asarray(ev.get(kind, []), dtype=np.float64).reshape(-1)
            if len(a) and (not np.all(np.isfinite(a)) or np.any(a < 0) or np.any(a != np.round(a))):
                raise DataError(f"{path}: {foot} {kind} indices must be whole sample indices >= 0")
            idx[kind] = a.astype(np.int64)
        when: dict[tuple[str, int], float] = {}
        if foot in times_by:
            for kind in ("toe_off", "heel_strike"):
                ts = np.asarray(times_by[foot].get(kind, []), dtype=np.float64).reshape(-1)
                if len(ts) != len(idx[kind]):
                    raise DataError(
                        f"{path}: {foot} {kind}: {len(ts)} timestamps for {len(idx[kind])} events"
                    )
                when.update({(kind, int(i)): float(t) for i, t in zip(idx[kind], ts)})
        for start, end, tc, ic in strides_from_events(idx["toe_off"], idx["heel_strike"]):
            if max_stride_s is not None and (end - start) / rate_hz > max_stride_s:
                continue
            tc_s = when.get(("toe_off", tc), tc / rate_hz)
            ic_s = when.get(("heel_strike", ic), ic / rate_hz)
            rows.append([foot, str(start), str(end), str(ic), str(tc), str(start), f"{tc_s:.6f}", f"{ic_s:.6f}"])
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp, tmp.open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow([*EVENT_COLUMNS, "tc_s", "ic_s"])
        for s_id, row in enumerate(rows):
            w.writerow([str(s_id), *row])
    return len(rows)
