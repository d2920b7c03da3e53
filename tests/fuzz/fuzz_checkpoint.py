"""Fuzz target: ``load_checkpoint`` on a file of fuzzed bytes.

A checkpoint from elsewhere is untrusted input: whatever its bytes, loading it
must give a :class:`~gaitedge.errors.ModelError` (or DataError), never another
exception.
"""

from __future__ import annotations

import sys
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness import Scratch, instrumented, main  # noqa: E402

with instrumented():
    from gaitedge.checkpoint import load_checkpoint
    from gaitedge.errors import DataError, ModelError

SCRATCH = Scratch()


def TestOneInput(data: bytes) -> None:
    """Write the bytes as ``model.pt`` and load them."""
    path = SCRATCH.write("model.pt", data)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            load_checkpoint(path)
        except (ModelError, DataError):
            pass


if __name__ == "__main__":
    main(TestOneInput)
