"""Stream faults found by the long faulty-stream benchmark (``benchmarks/bench_soak.py``).

A text line whose timestamp (or counter) is damaged in transit but still
parses must not restart the model or move the sample grid: the session holds a
sample that seems to follow a gap until the next one shows whether the gap is
real, and drops the sample when its neighbours agree without it.
"""

from __future__ import annotations

from gaitedge.stream import ColumnMap, Lane, Session
from gaitedge.stream.backends import Backend, Decisions
from streamtools import Lines


class Echo(Backend):
    """Labels every sample with its own value (as an int) at once; remembers resets."""

    kind = "echo"
    channels, units, classes = ("a",), ("",), ("rest", "stance", "swing")
    rate_hz, delay, min_run = 100.0, 0, 1

    def __init__(self) -> None:
        self.n = 0
        self.flushes = 0

    def push(self, x):
        self.n += 1
        return Decisions(self.n - 1, (int(x[0]),), [])

    def flush(self):
        self.flushes += 1
        self.n = 0
        return Decisions(0, (), [])

    def reset(self):
        self.n = 0


def _run(rows: list[tuple[str, int]], spec: str = "t,a") -> tuple[dict[int, int], Session, Echo]:
    """Stream ``(time or counter field, value)`` lines; returns ({sample: label}, session, backend)."""
    cmap = ColumnMap.parse(spec, ["a"])
    data = b"".join(f"{t},{v}\n".encode() for t, v in rows)
    be = Echo()
    got: dict[int, int] = {}

    def on_labels(k, start, labels):
        for j, lab in enumerate(labels):
            assert start + j not in got
            got[start + j] = int(lab)

    s = Session(Lines(data, cmap), [Lane("x", be, cmap)], on_labels=on_labels)
    s.run(timeout=20)
    assert s.error is None
    return got, s, be


def _t(i: int) -> str:
    return f"{i / 100:.6f}"


def test_damaged_timestamps_keep_the_grid_and_the_model_state():
    rows = [(_t(i), i) for i in range(60)]
    rows[10] = ("9" + _t(10), 10)  # a digit more: 9000 s ahead
    rows[20] = ("0.000000", 20)  # back to the start
    rows[30] = (f"{30 / 100 + 0.007:.6f}", 30)  # 7 ms late: would look like one missing sample
    rows[40] = (f"{40 / 100 + 0.05:.6f}", 40)  # 50 ms late: a fillable gap
    rows[50] = (f"{50 / 100 - 0.04:.6f}", 50)  # 40 ms early: the next line follows both
    got, s, be = _run(rows)
    summ = s.summary()
    assert summ.outliers == 5 and summ.restarts == 0 and be.flushes == 1  # the flush at the end only
    assert summ.gaps == 5 and summ.lost == summ.filled == 5
    # every sample on its own line's slot; a dropped one's slot holds the sample before it
    expected = {i: (i - 1 if i in (10, 20, 30, 40, 50) else i) for i in range(60)}
    assert got == expected


def test_real_gaps_and_clock_resets_still_count():
    rows = [(_t(i), i) for i in range(20)]
    rows += [(_t(i), i) for i in range(23, 40)]  # three lines lost: filled
    rows += [(_t(i), i) for i in range(80, 100)]  # 0.4 s lost: the model restarts
    rows += [(_t(i), i) for i in range(0, 10)]  # the board's clock starts again: the model restarts
    got, s, _ = _run(rows)
    summ = s.summary()
    assert summ.outliers == 0 and summ.gaps == 2 and summ.filled == 3 and summ.restarts == 2
    assert summ.lost == 3 + 40
    assert [got[i] for i in range(20, 23)] == [19, 19, 19] and got[80] == 80 and got[99] == 99
    assert [got[100 + i] for i in range(10)] == list(range(10))
    # a gap right before the end: the held sample is processed when the stream ends
    got, s, _ = _run([(_t(i), i) for i in range(10)] + [(_t(15), 15)])
    assert got[15] == 15 and s.summary().filled == 5


def test_damaged_counter_is_dropped_too():
    rows = [(str(i % 256), i) for i in range(30)]
    rows[12] = ("200", 12)  # a damaged counter
    got, s, _ = _run(rows, spec="seq%256,a")
    summ = s.summary()
    assert summ.outliers == 1 and summ.restarts == 0 and summ.filled == 1
    assert got == {i: (11 if i == 12 else i) for i in range(30)}


def test_slightly_wrong_timestamps_do_not_move_the_grid():
    """A timestamp a little early or late (its third decimal damaged) is within the same sample slot or
    next to it; the samples after it must stay on their own slots."""
    rows = [(_t(i), i) for i in range(80)]
    rows[10] = (f"{10 / 100 - 0.006:.6f}", 10)  # 6 ms early
    rows[20] = (f"{20 / 100 - 0.009:.6f}", 20)  # 9 ms early
    rows[30] = (f"{30 / 100 + 0.004:.6f}", 30)  # 4 ms late
    rows[40] = (f"{40 / 100 + 0.009:.6f}", 40)  # 9 ms late
    rows[50] = (f"{50 / 100 - 0.006:.6f}", 50)  # 6 ms early, and the next line lost
    del rows[51]
    got, s, _ = _run(rows)
    summ = s.summary()
    assert summ.restarts == 0 and summ.duplicates == 0
    assert all(got[i] == i for i in range(80) if i not in (40, 51))
    assert got[40] == 39 and got[51] == 50  # the late one dropped, the lost one filled


def test_damaged_timestamp_before_a_long_loss_or_at_the_end():
    """Nothing confirms a damaged timestamp that a long loss or the end of the stream follows: dropped."""
    rows = [(_t(i), i) for i in range(10)] + [("9" + _t(10), 10)]
    rows += [(_t(i), i) for i in range(25, 40)]  # 14 lines lost after the damaged one
    rows += [("8" + _t(40), 40)]  # the last line damaged too
    got, s, _ = _run(rows)
    summ = s.summary()
    assert summ.outliers == 2 and summ.restarts == 1 and summ.lost == 15
    assert got == {i: i for i in [*range(10), *range(25, 40)]}
