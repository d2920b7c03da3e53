"""Data specs: one string names a dataset for the CLI and the configs.

* ``synthetic`` or ``synthetic?n=10&trials=3&seed=0`` — the built-in generator
  (``n`` subjects ``syn1 .. synN``); ``subjects=1-8`` keeps only some of them.
* ``ipol`` — the IPOL gait dataset from ``$GAITEDGE_IPOL``, the download cache
  (``gaitedge data fetch ipol``) or ``../shared/data/ipol-gait``.
* ``ipol:PATH`` — the IPOL dataset at PATH; ``?subjects=1-11&feet=left``;
  ``quality=checked`` leaves out trials whose annotations the signals
  contradict (see ``gaitedge.data.ipol.trial_issues``); ``frame=sensor`` keeps
  the Xsens sensor frames (default: rotated into the canonical foot frame).
* ``csv:PATH`` — one CSV file or a folder of ``*.csv``; options ``rate``,
  ``columns`` (``a,b,c``), ``label``, ``time``, ``subject``.  A plain path ending
  in ``.csv`` works too.
* ``gaitmap:IMU.csv?events=EVENTS.csv&rate=204.8`` — a gaitmap-format IMU CSV
  (two header rows: sensor, axis; gyro in deg/s) with an optional stride-event
  table; one recording per foot, labelled within the listed strides (see
  ``gaitedge.data.gaitmap``).  Options ``events``, ``rate`` (Hz, default
  204.8), ``subject`` (default the file stem), ``subjects``.

Options after ``?`` are ``key=value`` pairs joined by ``&``.

A spec naming many trials or files (``ipol``, a CSV folder) leaves out one it
cannot use with a warning and lists it in the result's ``skipped`` (see
:mod:`gaitedge.data.skips`); ``strict=true`` (any spec) makes that an error.
A spec naming one file (``csv:FILE``, ``gaitmap:``) fails on a bad file.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from gaitedge.data.csvload import load_csv, load_csv_dir
from gaitedge.data.gaitmap import DEFAULT_RATE_HZ, load_gaitmap
from gaitedge.data.ipol import load_ipol
from gaitedge.data.skips import Recordings
from gaitedge.data.splits import by_subjects, parse_subjects
from gaitedge.data.synthetic import synth_dataset
from gaitedge.errors import DataError


def default_ipol_root() -> Path:
    """Where ``ipol`` without a path looks: env var, download cache, then ../shared."""
    from gaitedge.data.fetch import cache_dir

    env = os.environ.get("GAITEDGE_IPOL")
    cands = [Path(env)] if env else []
    cands.append(cache_dir() / "ipol")
    here = Path.cwd()
    cands += [here / "../shared/data/ipol-gait", Path(__file__).resolve().parents[3] / "shared/data/ipol-gait"]
    for c in cands:
        if (c / "GaitData").is_dir() or c.is_dir() and any(c.glob("*-*.json")):
            return c
    raise DataError(
        "IPOL dataset not found; run 'gaitedge data fetch ipol', set GAITEDGE_IPOL, or give ipol:PATH"
    )


def _parse(spec: str) -> tuple[str, str, dict[str, str]]:
    body, _, query = spec.partition("?")
    opts: dict[str, str] = {}
    for item in filter(None, query.split("&")):
        key, eq, val = item.partition("=")
        if not eq:
            raise DataError(f"data spec {spec!r}: option {item!r} is not key=value")
        opts[key.strip()] = val.strip()
    kind, colon, path = body.partition(":")
    if not colon:
        if body.lower().endswith(".csv") or Path(body).is_dir():
            return "csv", body, opts
        return body, "", opts
    return kind, path, opts


def _take(opts: dict[str, str], allowed: set[str], spec: str) -> None:
    unknown = sorted(set(opts) - allowed)
    if unknown:
        raise DataError(f"data spec {spec!r}: unknown option(s) {unknown}; allowed: {sorted(allowed | {'strict'})}")


_TRUE = ("true", "yes", "on", "1")
_FALSE = ("false", "no", "off", "0")


def _strict(opts: dict[str, str], spec: str) -> bool:
    val = opts.pop("strict", "false").lower()
    if val not in _TRUE + _FALSE:
        raise DataError(f"data spec {spec!r}: strict must be true or false, got {val!r}")
    return val in _TRUE


def load_spec(spec: str, other_foot: bool = False, lower_back: bool = False, strict: bool = False) -> Recordings:
    """Load the recordings a data spec names (see the module docstring).

    Returns a list of recordings whose ``skipped`` attribute lists the trials or
    files left out, each a :class:`~gaitedge.data.skips.Skipped` (source,
    reason), with one :class:`~gaitedge.errors.SkippedTrialWarning` each.
    ``strict`` (or ``strict=true`` in the spec) raises instead of leaving a
    trial out.
    """
    kind, path, opts = _parse(spec)
    strict = _strict(opts, spec) or strict
    subjects = parse_subjects(opts["subjects"]) if "subjects" in opts else None
    loader = _LOADERS.get(kind)
    if loader is None:
        raise DataError(
            f"unknown data spec {spec!r}; use synthetic, ipol[:PATH], csv:PATH or gaitmap:IMU.csv?events=EVENTS.csv"
        )
    return loader(spec, path, opts, subjects, other_foot, lower_back, strict)


_Loader = Callable[[str, str, dict[str, str], "list[str] | None", bool, bool, bool], Recordings]


def _synthetic(spec: str, path: str, opts: dict[str, str], subjects: list[str] | None, other_foot: bool,
              lower_back: bool, strict: bool) -> Recordings:
    """The built-in synthetic gait (``synthetic?n=..&trials=..&seed=..&rate=..``)."""
    _take(opts, {"n", "subjects", "trials", "seed", "rate"}, spec)
    try:
        n = int(opts.get("n", 10))
        if subjects is not None and all(s.isdigit() for s in subjects):
            n = max(n, max(int(s) for s in subjects))
        recs = synth_dataset(
            subjects=n,
            trials=int(opts.get("trials", 3)),
            seed=int(opts.get("seed", 0)),
            rate_hz=float(opts.get("rate", 100.0)),
            other_foot=other_foot,
        )
    except ValueError as exc:
        raise DataError(f"data spec {spec!r}: {exc}") from None
    if subjects is not None:
        recs = by_subjects(recs, [f"syn{s}" if s.isdigit() else s for s in subjects])
    return Recordings(recs)


def _ipol(spec: str, path: str, opts: dict[str, str], subjects: list[str] | None, other_foot: bool,
         lower_back: bool, strict: bool) -> Recordings:
    """The IPOL archive (``ipol[:PATH]?subjects=..&feet=..&quality=..&frame=..``)."""
    _take(opts, {"subjects", "feet", "quality", "frame"}, spec)
    root = Path(path) if path else default_ipol_root()
    feet = tuple(opts.get("feet", "left,right").split(","))
    subs = [int(s) for s in subjects] if subjects is not None else None
    if subs is not None and any(not s.isdigit() for s in subjects or []):
        raise DataError(f"data spec {spec!r}: IPOL subjects are numbers")
    return load_ipol(
        root,
        subjects=subs,
        feet=feet,
        other_foot=other_foot,
        lower_back=lower_back,
        quality=opts.get("quality", "all"),
        frame=opts.get("frame", "canonical"),
        strict=strict,
    )


def _csv(spec: str, path: str, opts: dict[str, str], subjects: list[str] | None, other_foot: bool,
        lower_back: bool, strict: bool) -> Recordings:
    """A CSV file or a folder of them (``csv:PATH?rate=..&columns=..&label=..&time=..``)."""
    _take(opts, {"rate", "columns", "label", "time", "subject", "subjects"}, spec)
    p = Path(path)
    try:
        rate = float(opts["rate"]) if "rate" in opts else None
    except ValueError:
        raise DataError(f"data spec {spec!r}: rate must be a number in Hz") from None
    kwargs = dict(
        columns=opts["columns"].split(",") if "columns" in opts else None,
        label_column=opts.get("label"),
        time_column=opts.get("time"),
        rate_hz=rate,
        subject=opts.get("subject"),
    )
    if p.is_dir():
        return load_csv_dir(p, subjects=subjects, strict=strict, **kwargs)
    recs = [load_csv(p, **kwargs)]
    return Recordings(by_subjects(recs, subjects) if subjects is not None else recs)


def _gaitmap(spec: str, path: str, opts: dict[str, str], subjects: list[str] | None, other_foot: bool,
            lower_back: bool, strict: bool) -> Recordings:
    """A gaitmap-format IMU table and its stride events (``gaitmap:IMU.csv?events=..&rate=..``)."""
    _take(opts, {"events", "rate", "subject", "subjects"}, spec)
    if lower_back:
        raise DataError(f"data spec {spec!r}: gaitmap foot data has no lower-back sensor (lower_back)")
    if not path:
        raise DataError(f"data spec {spec!r}: give the IMU file, gaitmap:IMU.csv?events=EVENTS.csv")
    try:
        rate = float(opts.get("rate", DEFAULT_RATE_HZ))
    except ValueError:
        raise DataError(f"data spec {spec!r}: rate must be a number in Hz") from None
    recs = load_gaitmap(
        path,
        events=opts.get("events") or None,
        rate_hz=rate,
        subject=opts.get("subject"),
        other_foot=other_foot,
    )
    return Recordings(by_subjects(recs, subjects) if subjects is not None else recs)


_LOADERS: dict[str, _Loader] = {"synthetic": _synthetic, "ipol": _ipol, "csv": _csv, "gaitmap": _gaitmap}

