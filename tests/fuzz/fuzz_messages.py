"""Fuzz target: the payload codecs of every message type of the wire protocol.

Input: byte 0 picks the codec, the rest is the payload as a board (or a host)
could send it.  A malformed payload must give
:class:`~gaitedge.protocol.messages.MalformedPayload` (a DeviceError), never
another exception; :func:`~gaitedge.protocol.messages.check_mounting` gives a
verdict for every payload and never raises.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness import instrumented, main, selector  # noqa: E402

with instrumented():
    from gaitedge.errors import DeviceError
    from gaitedge.protocol import messages as M

CODECS = (
    M.Info.decode,
    M.decode_samples,
    M.Results.decode,
    M.Stats.decode,
    M.Nak.decode,
    M.FlashStatus.decode,
    M.MountingState.decode,
    M.MountingState.decode_reply,
)


def TestOneInput(data: bytes) -> None:
    """Decode the payload with the chosen codec; check a mounting payload."""
    which, payload = selector(data, len(CODECS) + 1)
    if which == len(CODECS):
        code, detail = M.check_mounting(payload, 6 + 6 * (len(payload) % 3))
        assert code in (0, *M.ERROR_NAMES), code
        return
    try:
        out = CODECS[which](payload)
    except DeviceError:
        return
    if isinstance(out, M.Results):
        assert len(out.raw_label) == len(out.event) == len(out.event_sample) == len(out.logits) == len(out)
    elif isinstance(out, M.Nak):
        out.describe()
    elif isinstance(out, M.MountingState):
        assert all(len(ch) == 3 and len(rot) == 9 for ch, rot in out.triads)
        M.MountingState(out.triads).encode()


if __name__ == "__main__":
    main(TestOneInput)
