"""The gaitedge wire protocol (gaitedge/csrc/PROTOCOL.md): framing and message codecs.

Transport-agnostic: :class:`FrameDecoder` eats bytes from anything (a pyserial
port, a socket, a file) and :func:`encode_frame` produces bytes to write.
``gaitedge.device.DeviceClient`` builds a request/response client on top.
"""

from gaitedge.protocol import messages
from gaitedge.protocol.framing import (
    CRC,
    FRAMING,
    MAX_PAYLOAD,
    OK,
    OVERSIZE,
    VERSION,
    Frame,
    FrameDecoder,
    cobs_decode,
    cobs_encode,
    crc32,
    encode_frame,
    raw_frame,
)
from gaitedge.protocol.messages import FlashStatus, Info, Nak, Results, Stats

__all__ = [
    "CRC", "FRAMING", "MAX_PAYLOAD", "OK", "OVERSIZE", "VERSION", "Frame", "FrameDecoder", "FlashStatus", "Info",
    "Nak", "Results", "Stats", "cobs_decode", "cobs_encode", "crc32", "encode_frame", "messages", "raw_frame",
]
