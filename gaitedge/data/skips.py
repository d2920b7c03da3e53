"""Trials a loader leaves out, and the one place that reports them.

A dataset of many trials (an IPOL folder, a folder of CSV files) degrades
instead of failing: a trial that cannot be used (annotations past the end of
its recording, non-finite samples, a truncated or malformed file, a missing
foot file, a mounting that cannot be estimated) is left out whole, with one
:class:`~gaitedge.errors.SkippedTrialWarning`, and the loader returns a
:class:`Recordings` list whose ``skipped`` attribute names each left-out trial
and why.  With ``strict`` the first such trial raises its
:class:`~gaitedge.errors.DataError` instead.  A dataset whose every trial is
left out is an error naming the reasons.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from gaitedge.data.recording import Recording
from gaitedge.errors import DataError, SkippedTrialWarning

__all__ = ["Recordings", "Skipped", "SkippedTrialWarning", "check_not_all_skipped", "skip_trial", "skipped_of"]


@dataclass(frozen=True)
class Skipped:
    """One trial or file a loader left out.

    Attributes:
        source: the file at fault (for an IPOL trial the IMU or JSON file the
            problem is in).
        reason: what is wrong with it, without the file name.
    """

    source: str
    reason: str

    def to_dict(self) -> dict[str, str]:
        """``{"source": ..., "reason": ...}`` for metrics JSON."""
        return {"source": self.source, "reason": self.reason}

    def __str__(self) -> str:
        return f"{self.source}: {self.reason}"


class Recordings(list):
    """A ``list`` of :class:`Recording` that also names the trials left out.

    ``skipped`` holds one :class:`Skipped` per trial or file the loader could not
    use (empty when everything loaded).  It behaves as a plain list otherwise;
    slices and concatenations are plain lists without ``skipped``.
    """

    skipped: list[Skipped]

    def __init__(self, recs: Iterable[Recording] = (), skipped: Iterable[Skipped] = ()) -> None:
        super().__init__(recs)
        self.skipped = list(skipped)


def skipped_of(recs: Sequence[Recording]) -> list[Skipped]:
    """The trials left out while loading ``recs`` (empty for a plain list)."""
    return list(getattr(recs, "skipped", []))


def skip_trial(
    skipped: list[Skipped],
    exc: DataError,
    files: Iterable[str | Path] = (),
    strict: bool = False,
) -> Skipped:
    """Record that a trial was left out because of ``exc``, and warn once.

    ``files`` are the trial's files: the one the message starts with becomes the
    record's ``source`` and the rest of the message its ``reason`` (else the
    first of ``files`` is the source and the whole message the reason).  With
    ``strict`` the error is raised instead.
    """
    if strict:
        raise exc
    msg = str(exc)
    names = [str(f) for f in files]
    source, reason = (names[0] if names else ""), msg
    for name in sorted(names, key=len, reverse=True):
        if msg.startswith(name + ": "):
            source, reason = name, msg[len(name) + 2 :]
            break
    rec = Skipped(source, reason)
    skipped.append(rec)
    warnings.warn(SkippedTrialWarning(f"skipped {rec}"), stacklevel=3)
    return rec


def check_not_all_skipped(n_loaded: int, skipped: Sequence[Skipped], what: str | Path, show: int = 5) -> None:
    """Raise a :class:`DataError` naming the reasons when trials were left out and none loaded."""
    if n_loaded or not skipped:
        return
    listed = "; ".join(str(s) for s in skipped[:show])
    more = f" (+{len(skipped) - show} more)" if len(skipped) > show else ""
    raise DataError(f"{what}: no usable trial, all {len(skipped)} skipped: {listed}{more}")
