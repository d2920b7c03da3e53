"""Generic CSV loader: pick IMU columns by name, optional label and time columns."""

from __future__ import annotations

import csv
import re
from pathlib import Path
from typing import Any

import numpy as np

from gaitedge.data.recording import GAIT_CLASSES, UNLABELED, Recording
from gaitedge.data.skips import Recordings, check_not_all_skipped, skip_trial
from gaitedge.errors import DataError
from gaitedge.events import labels_to_events
from gaitedge.rundir import atomic_path


def _guess_unit(name: str) -> str:
    """m/s² for accelerometer-like names (acc_x, ax), rad/s for gyro-like (gyr_x, gz)."""
    n = name.lower()
    if "acc" in n or re.fullmatch(r"a_?[xyz]", n):
        return "m/s^2"
    if "gyr" in n or re.fullmatch(r"g_?[xyz]", n):
        return "rad/s"
    return ""


def load_csv(
    path: str | Path,
    columns: list[str] | None = None,
    label_column: str | None = None,
    time_column: str | None = None,
    rate_hz: float | None = None,
    units: list[str] | None = None,
    subject: str | None = None,
    location: str = "unknown",
    classes: tuple[str, ...] = GAIT_CLASSES,
    delimiter: str | None = None,
) -> Recording:
    """Load one recording from a CSV file with a header row.

    Args:
        path: the CSV file.
        columns: signal columns, by header name, in model order.  Default: every
            column that is neither the label nor the time column.
        label_column: optional column of class names (e.g. ``stance``) or codes.
            Empty cells are unlabelled.
        time_column: optional column of timestamps in seconds; the sampling rate
            is then read from its median spacing (and must be steady).
        rate_hz: sampling rate in Hz; required unless ``time_column`` is given.
        units: one unit per column; default guessed from names (acc -> m/s²,
            gyr -> rad/s).
        subject: subject id; default the file stem.
        classes: class names of the label column.
        delimiter: field separator; default sniffed from ``,``, ``;``, tab.
    """
    path = Path(path)
    header, body = _read_table(path, delimiter)
    for name in [label_column, time_column]:
        if name is not None and name not in header:
            raise DataError(f"{path}: no column {name!r}; header has {', '.join(header)}")
    if columns is None:
        columns = [h for h in header if h not in (label_column, time_column)]
    missing = [c for c in columns if c not in header]
    if missing:
        raise DataError(f"{path}: missing column(s) {', '.join(missing)}; header has {', '.join(header)}")
    if not columns:
        raise DataError(f"{path}: no signal columns selected")
    sig = _signals(path, header, body, columns)
    if time_column is not None:
        rate_hz = _rate_from_times(path, body, header.index(time_column), time_column)
    if rate_hz is None:
        raise DataError(f"{path}: give the sampling rate (rate_hz) or a time column")
    labels = None
    events: dict[str, np.ndarray] = {}
    if label_column is not None:
        labels = _labels(path, body, header.index(label_column), classes)
        if "swing" in classes:
            events = labels_to_events(labels, swing=classes.index("swing"))
    return Recording(
        signals=sig.astype(np.float32),
        channels=list(columns),
        units=list(units) if units is not None else [_guess_unit(c) for c in columns],
        rate_hz=float(rate_hz),
        labels=labels,
        classes=tuple(classes),
        events=events,
        subject=subject if subject is not None else path.stem,
        location=location,
        source=str(path),
    )


def _read_table(path: Path, delimiter: str | None) -> tuple[list[str], list[list[str]]]:
    """(header, data rows) of a CSV file; comment (``#``) and blank lines left out."""
    if not path.is_file():
        raise DataError(f"{path}: file not found")
    text = path.read_text(encoding="utf-8", errors="replace")
    lines = [ln for ln in text.splitlines() if ln.strip() and not ln.lstrip().startswith("#")]
    if len(lines) < 2:
        raise DataError(f"{path}: needs a header row and at least one data row")
    if delimiter is None:
        delimiter = max((",", ";", "\t"), key=lines[0].count)
    rows = list(csv.reader(lines, delimiter=delimiter))
    header = [h.strip() for h in rows[0]]
    return header, rows[1:]


def _signals(path: Path, header: list[str], body: list[list[str]], columns: list[str]) -> np.ndarray:
    """The ``columns`` as numbers ``[n, len(columns)]``; DataError naming the line of a bad field or NaN."""
    return table_numbers(path, body, [header.index(c) for c in columns], [f"column {c!r}" for c in columns],
                         first_line=2, width=len(header), exact=True)


def table_numbers(path: Path, body: list[list[str]], idx: list[int], names: list[str], first_line: int,
                  width: int, exact: bool) -> np.ndarray:
    """Fields ``idx`` of every row of a text table as float64 ``[rows, len(idx)]``, finite.

    ``names[j]`` names field ``idx[j]`` in messages; row ``r`` is line ``first_line + r``
    of the file.  A row with other than ``width`` fields (fewer, when not ``exact``), a
    field that is not a number, or NaN / inf is a DataError naming the file and line.
    """
    sig = np.empty((len(body), len(idx)), dtype=np.float64)
    for r, row in enumerate(body):
        line = r + first_line
        if (len(row) != width) if exact else (len(row) < width):
            raise DataError(f"{path}: line {line} has {len(row)} fields, the header has {width}")
        for j, i in enumerate(idx):
            try:
                sig[r, j] = float(row[i])
            except ValueError:
                raise DataError(f"{path}: line {line}, {names[j]}: not a number: {row[i]!r}") from None
    bad = ~np.isfinite(sig)
    if bad.any():
        t, c = np.argwhere(bad)[0]
        raise DataError(f"{path}: NaN or inf at line {t + first_line}, {names[c]} ({int(bad.sum())} in total)")
    return sig


def _rate_from_times(path: Path, body: list[list[str]], ti: int, name: str) -> float:
    """The sampling rate in Hz from a column of timestamps in s (strictly increasing, evenly spaced)."""
    try:
        t = np.array([float(row[ti]) for row in body])
    except ValueError:
        raise DataError(f"{path}: time column {name!r} holds a non-number") from None
    dt = np.diff(t)
    if len(dt) == 0 or not np.all(dt > 0):
        raise DataError(f"{path}: time column {name!r} must increase strictly")
    step = float(np.median(dt))
    if np.max(np.abs(dt - step)) > 0.5 * step:
        raise DataError(f"{path}: time column {name!r} is not evenly spaced (gaps); resample first")
    return 1.0 / step


def _labels(path: Path, body: list[list[str]], li: int, classes: tuple[str, ...]) -> np.ndarray:
    """Class codes from a column of class names or codes; empty cells are UNLABELED."""
    labels = np.full(len(body), UNLABELED, dtype=np.int64)
    for r, row in enumerate(body):
        v = row[li].strip()
        if v == "":
            continue
        if v in classes:
            labels[r] = classes.index(v)
            continue
        try:
            code = int(v)
        except ValueError:
            code = -2
        if not 0 <= code < len(classes):
            raise DataError(f"{path}: line {r + 2}: unknown label {v!r}; expected one of {', '.join(classes)}")
        labels[r] = code
    return labels


def load_csv_dir(
    folder: str | Path,
    subjects: list[str] | None = None,
    strict: bool = False,
    **kwargs: Any,
) -> Recordings:
    """Load every ``*.csv`` in ``folder`` (sorted by name) with :func:`load_csv`.

    ``kwargs`` go to :func:`load_csv` for each file.  ``subjects`` keeps only the
    files of those subjects (the ``subject`` option, else the file stem).  A
    file that cannot be loaded is left out with one
    :class:`~gaitedge.errors.SkippedTrialWarning` and listed in the result's
    ``skipped``; ``strict=True`` raises its :class:`DataError` instead.  If
    every file is left out, that is an error naming the reasons.
    """
    folder = Path(folder)
    files = sorted(folder.glob("*.csv"))
    if not files:
        raise DataError(f"{folder}: no .csv files in this folder")
    if subjects is not None:
        wanted = {str(x) for x in subjects}
        files = [f for f in files if (kwargs.get("subject") or f.stem) in wanted]
    recs = Recordings()
    for f in files:
        try:
            recs.append(load_csv(f, **kwargs))
        except DataError as exc:
            skip_trial(recs.skipped, exc, [f], strict=strict)
    check_not_all_skipped(len(recs), recs.skipped, folder)
    return recs


def save_csv(rec: Recording, path: str | Path) -> None:
    """Write a recording as CSV (``time`` in s, the channels, and ``label`` if any)."""
    path = Path(path)
    with atomic_path(path) as tmp, tmp.open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["time", *rec.channels] + (["label"] if rec.labels is not None else []))
        for t in range(len(rec)):
            row = [f"{t / rec.rate_hz:.6f}", *(f"{v:.6g}" for v in rec.signals[t])]
            if rec.labels is not None:
                row.append(rec.classes[rec.labels[t]] if rec.labels[t] >= 0 else "")
            w.writerow(row)
