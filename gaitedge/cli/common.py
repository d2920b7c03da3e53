"""Parsing helpers the command groups share; the error and warning conventions of the CLI."""

from __future__ import annotations

import argparse
import sys

from gaitedge.config import Config, apply_override
from gaitedge.errors import GaitedgeError, SkippedTrialWarning

STRICT_HELP = ("fail on a trial or file of the data that cannot be used, instead of skipping it with a "
               "warning (same as strict=true in a data spec)")


def apply_config_options(cfg: Config, args: argparse.Namespace, data: bool = True) -> Config:
    """Apply ``--data`` (unless ``data`` is False), ``--test``, ``--epochs`` and ``--set`` to ``cfg``.

    Options the command does not have are passed over.
    """
    if data and getattr(args, "data", None):
        cfg.data.train = args.data
    if getattr(args, "test", None) is not None:
        cfg.data.test = args.test
    if getattr(args, "epochs", None) is not None:
        cfg.train.epochs = args.epochs
    for item in getattr(args, "set", None) or []:
        apply_override(cfg, item)
    return cfg


def parse_lsb(items: list[str] | None) -> dict[str, float] | None:
    """``CHANNEL=UNITS_PER_COUNT`` items (``--lsb``) as a dict; None when there are none."""
    if not items:
        return None
    out = {}
    for item in items:
        name, eq, val = item.partition("=")
        try:
            out[name.strip()] = float(val)
        except ValueError:
            raise GaitedgeError(f"--lsb {item!r}: expected CHANNEL=UNITS_PER_COUNT") from None
        if not eq or out[name.strip()] <= 0:
            raise GaitedgeError(f"--lsb {item!r}: expected CHANNEL=UNITS_PER_COUNT (> 0)")
    return out


def slug(text: str) -> str:
    """``text`` as a short file-name part (letters, digits, ``-_.``)."""
    keep = "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in text)
    return keep.strip("_")[:60] or "data"


def warn_input(recs: list, frame: str) -> None:
    """Print input-sanity warnings (units, frame) once each, on stderr."""
    from gaitedge.data.sanity import input_warnings

    for w in input_warnings(recs, frame):
        print(f"gaitedge: warning: {w}", file=sys.stderr)


def one_line_skips(show_other):  # noqa: ANN001, ANN202
    """A ``warnings.showwarning`` printing skipped trials as one ``gaitedge: warning:`` line on stderr."""

    def show(message, category, filename, lineno, file=None, line=None):  # noqa: ANN001, ANN202
        if issubclass(category, SkippedTrialWarning):
            print(f"gaitedge: warning: {message}", file=sys.stderr)
        else:
            show_other(message, category, filename, lineno, file, line)

    return show
