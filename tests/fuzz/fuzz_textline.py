"""Fuzz target: the stream's text-line decoder with its column map and scales.

Input: line 1 is a ``--columns`` spec, line 2 a ``--scale`` spec (empty: none),
the rest the bytes arriving from a port.  A spec that does not parse must give
a :class:`~gaitedge.errors.DataError` (the stream then runs with the default
``t,<channels>`` layout); the decoder must skip every bad line, raising at most
the documented DataError for a layout that does not match the device, and each
decoded sample must map onto the model's channels.
"""

from __future__ import annotations

import math
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness import instrumented, main, split_fields  # noqa: E402

with instrumented():
    from gaitedge.errors import DataError
    from gaitedge.stream.sources import ColumnMap, LineParser, TextLineDecoder

CHANNELS = ("acc_x", "acc_y", "acc_z", "gyr_x", "gyr_y", "gyr_z")
UNITS = ("m/s^2",) * 3 + ("rad/s",) * 3


def _column_map(spec: str, scale: str | None) -> ColumnMap:
    try:
        ColumnMap.for_frames(CHANNELS, UNITS, spec, scale)
    except DataError:
        pass
    try:
        return ColumnMap.parse(spec, CHANNELS, UNITS, scale)
    except DataError:
        return ColumnMap.default_line(CHANNELS, UNITS)


def TestOneInput(data: bytes) -> None:
    """Parse the specs, then decode the stream in pieces (reconnecting half way)."""
    spec, scale, stream = split_fields(data, 3)
    cmap = _column_map(spec.decode("utf-8", "replace"), scale.decode("utf-8", "replace") or None)
    dec = TextLineDecoder(LineParser.for_columns(cmap), startup_lines=3)
    step = 1 + len(stream) % 61
    try:
        for i in range(0, len(stream), step):
            if i and i == step * 7:
                dec.reset()
            for s in dec.feed(stream[i : i + step], 0.0):
                assert s.values.shape == (cmap.n_fields,), s.values.shape
                assert (s.counter >= 0) == (cmap.counter_index >= 0), s
                assert math.isnan(s.t) == (cmap.time_index < 0), s
                assert cmap(s.values).shape == (len(CHANNELS),)
    except DataError:
        return  # the documented verdict on a layout that does not match the device
    st = dec.stats
    assert st.bytes == len(stream) and st.samples >= 0 and len(st.examples) <= 5


if __name__ == "__main__":
    main(TestOneInput)
