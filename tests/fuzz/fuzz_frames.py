"""Fuzz target: the wire protocol's deframer and the SAMPLES frame decoder of the stream.

Input: byte 0 picks the piece size and the decoder's set-up, the rest is the
byte stream from a port.  :class:`~gaitedge.protocol.framing.FrameDecoder` must
never raise and must account for every candidate frame;
:class:`~gaitedge.stream.sources.SamplesFrameDecoder` may raise only its
documented DataError (a device whose channel count does not match);
:func:`~gaitedge.protocol.framing.cobs_decode` only ValueError.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness import instrumented, main, selector  # noqa: E402

with instrumented():
    from gaitedge.errors import DataError
    from gaitedge.protocol.framing import Frame, FrameDecoder, cobs_decode, cobs_encode, encode_frame
    from gaitedge.stream.sources import SamplesFrameDecoder

LSB = (0.01, 0.01, 0.01, 0.001, 0.001, 0.001)


def _deframe(stream: bytes, step: int) -> None:
    dec = FrameDecoder()
    verdicts = []
    for i in range(0, len(stream), step):
        verdicts += dec.feed(stream[i : i + step], verdicts=True)
    frames = [v for v in verdicts if isinstance(v, Frame)]
    assert dec.frames_ok == len(frames) and dec.errors == len(verdicts) - len(frames)
    for f in frames:
        again = FrameDecoder().feed(encode_frame(f.type, f.seq, f.payload, f.version))
        assert again == [f], (f, again)


def _samples(stream: bytes, step: int, setup: int) -> None:
    channels = (None, 6, 3)[setup % 3]
    lsb = LSB if setup & 4 and channels == 6 else None
    dec = SamplesFrameDecoder(channels=channels, lsb=lsb, startup_frames=2)
    try:
        for i in range(0, len(stream), step):
            for s in dec.feed(stream[i : i + step], 0.0):
                assert 0 <= s.counter < 1 << 16
                assert channels is None or s.values.shape == (channels,)
    except DataError:
        pass


def TestOneInput(data: bytes) -> None:
    """Deframe, decode SAMPLES, and COBS-decode the stream."""
    setup, stream = selector(data, 256)
    step = 1 + (setup >> 3) * 13
    _deframe(stream, step)
    _samples(stream, step, setup)
    try:
        raw = cobs_decode(stream)
    except ValueError:
        return
    assert cobs_decode(cobs_encode(raw)) == raw


if __name__ == "__main__":
    main(TestOneInput)
