"""Fuzz target: mounting files and ``--mounting`` values.

Input: byte 0 picks what the rest is: a TOML mounting file, a JSON one, or the
text of a ``--mounting`` option (``parse_mounting``).  Anything malformed must
give a :class:`~gaitedge.errors.DataError`, never another exception; a mounting
that loads holds only orthogonal 3×3 matrices.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness import Scratch, instrumented, main, selector  # noqa: E402

with instrumented():
    from gaitedge.data.mounting import Mounting, load_mounting_file, parse_mounting
    from gaitedge.errors import DataError

SCRATCH = Scratch()


def TestOneInput(data: bytes) -> None:
    """Load the fuzzed file, or parse the fuzzed option text, as the first byte says."""
    which, body = selector(data, 3)
    try:
        if which == 0:
            m = load_mounting_file(SCRATCH.write("mount.toml", body))
        elif which == 1:
            m = load_mounting_file(SCRATCH.write("mount.json", body))
        else:
            text = body.decode("utf-8", "replace").replace("\x00", "")
            if "/" in text or text.startswith("~"):
                return  # a path names some other file on this machine
            m = parse_mounting(text)
    except DataError:
        return
    if isinstance(m, Mounting):
        for s in m.sensors.values():
            assert s.matrix.shape == (3, 3)
            assert np.abs(s.matrix @ s.matrix.T - np.eye(3)).max() <= 1e-3
        m.describe()
        m.to_dict()


if __name__ == "__main__":
    main(TestOneInput)
