"""Fuzz target: gaitmap files (``read_imu_table``, ``read_event_table``, ``load_gaitmap``).

Input: byte 0 picks what the rest is: an IMU CSV, a stride-event table (with or
without a recording length), or one of the two files given to ``load_gaitmap``
next to a valid partner.  A malformed file must give a
:class:`~gaitedge.errors.DataError`, never another exception.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness import Scratch, instrumented, main, selector  # noqa: E402

with instrumented():
    from gaitedge.data import gaitmap
    from gaitedge.errors import DataError

N = 60


def imu_csv(n: int = N) -> str:
    """A valid two-foot gaitmap IMU CSV of ``n`` samples."""
    head1 = "," + ",".join(["left_sensor"] * 6 + ["right_sensor"] * 6)
    head2 = "," + ",".join(list(gaitmap.AXES) * 2)
    rows = [f"{i}," + ",".join(f"{((i * 7 + k * 3) % 50 - 25) / 5.0:.2f}" for k in range(12)) for i in range(n)]
    return "\n".join([head1, head2, *rows]) + "\n"


EVENTS = "s_id,foot,start,end,ic,tc,min_vel\n0,left,5,25,20,10,5\n1,left,25,45,40,30,25\n2,right,10,30,26,15,10\n"
SCRATCH = Scratch()


def TestOneInput(data: bytes) -> None:
    """Read or load the fuzzed file as the first byte says."""
    which, body = selector(data, 5)
    try:
        if which == 0:
            for foot, sig in gaitmap.read_imu_table(SCRATCH.write("imu.csv", body)).items():
                assert foot in gaitmap.FEET and sig.shape[1] == 6
        elif which in (1, 2):
            strides = gaitmap.read_event_table(SCRATCH.write("ev.csv", body), n_samples=N if which == 2 else None)
            for s in strides.values():
                s.labels(N + 5)
                s.events()
        else:
            imu = SCRATCH.write("imu.csv", body if which == 3 else imu_csv().encode())
            ev = SCRATCH.write("ev.csv", body if which == 4 else EVENTS.encode())
            for rec in gaitmap.load_gaitmap(imu, events=ev):
                assert rec.labels is None or rec.labels.shape == (len(rec),)
    except DataError:
        pass


if __name__ == "__main__":
    main(TestOneInput)
