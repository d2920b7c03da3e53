"""Fuzz target: CSV recordings (``load_csv``, and ``load_replay`` of the stream).

Input: byte 0 picks the loader's options, the rest is the file.  A malformed
file must give a :class:`~gaitedge.errors.DataError`, never another exception;
a file that loads must give a consistent recording.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness import Scratch, instrumented, main, selector  # noqa: E402

with instrumented():
    from gaitedge.data.csvload import load_csv
    from gaitedge.errors import DataError
    from gaitedge.stream.sources import load_replay

OPTIONS = (
    {"time_column": "time", "label_column": "label"},
    {"rate_hz": 100.0},
    {"columns": ["acc_x", "gyr_z"], "rate_hz": 50.0, "label_column": "label"},
    {"time_column": "t", "delimiter": ";"},
    None,  # load_replay: sniffs the time and label columns itself
)
SCRATCH = Scratch()


def TestOneInput(data: bytes) -> None:
    """Write the file and load it with the chosen options."""
    which, body = selector(data, len(OPTIONS))
    path = SCRATCH.write("rec.csv", body)
    try:
        rec = load_replay(str(path)) if OPTIONS[which] is None else load_csv(path, **OPTIONS[which])
    except DataError:
        return
    assert rec.signals.ndim == 2 and rec.signals.shape[1] == len(rec.channels) == len(rec.units)
    assert rec.rate_hz > 0
    assert rec.labels is None or rec.labels.shape == (len(rec),)


if __name__ == "__main__":
    main(TestOneInput)
