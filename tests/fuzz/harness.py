"""Plumbing shared by the fuzz targets in this folder.

Each ``fuzz_<name>.py`` module defines ``TestOneInput(data: bytes)``, which
feeds ``data`` to one parser of gaitedge and lets every exception escape that a
user could not be shown as a clean error: only :class:`gaitedge.errors.GaitedgeError`
(or an exception the parser documents) may be caught inside it.  Run as a
script, a module hands ``TestOneInput`` to atheris (libFuzzer); imported, its
``TestOneInput`` can replay inputs without atheris (the regression tests do).

The modules import gaitedge inside :func:`instrumented`, so atheris measures
the coverage of gaitedge's own code (and nothing else).
"""

from __future__ import annotations

import contextlib
import sys
import tempfile
from pathlib import Path
from typing import Callable, ContextManager

try:
    import atheris
except ImportError:  # replaying inputs needs no atheris; fuzzing does
    atheris = None

#: the seed corpora, one folder per target.
CORPUS = Path(__file__).resolve().parent / "corpus"


def instrumented() -> ContextManager:
    """Context for importing gaitedge: coverage-instrumented under atheris, plain otherwise."""
    if atheris is None:
        return contextlib.nullcontext()
    return atheris.instrument_imports(include=["gaitedge"])


def main(test_one_input: Callable[[bytes], None]) -> None:
    """Fuzz ``test_one_input`` with libFuzzer options from the command line."""
    if atheris is None:
        sys.exit("atheris is not installed (pip install atheris)")
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()


class Scratch:
    """A private temporary folder for targets that need their input as a file."""

    def __init__(self) -> None:
        self._dir = tempfile.TemporaryDirectory(prefix="gaitedge-fuzz-")
        self.path = Path(self._dir.name)

    def write(self, name: str, data: bytes) -> Path:
        """Write ``data`` to ``name`` in the folder (replacing it) and return its path."""
        p = self.path / name
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data)
        return p


def split_fields(data: bytes, count: int, sep: bytes = b"\n") -> list[bytes]:
    """``data`` cut at the first ``count - 1`` separators; missing parts are empty."""
    parts = data.split(sep, count - 1)
    return parts + [b""] * (count - len(parts))


def selector(data: bytes, choices: int) -> tuple[int, bytes]:
    """The first byte of ``data`` modulo ``choices`` (0 for empty input) and the rest."""
    if not data:
        return 0, b""
    return data[0] % choices, data[1:]
