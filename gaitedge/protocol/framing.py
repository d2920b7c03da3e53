"""Framing of the gaitedge wire protocol: COBS + 0x00 delimiter, CRC-32, header.

The single Python implementation of ``gaitedge/csrc/PROTOCOL.md`` (sections
"Framing" and "Decoder"); ``gaitedge/csrc/protocol/ge_proto.c`` is its C twin and
both are held to ``gaitedge/csrc/protocol/vectors.json``.

On the wire a frame is ``0x00  COBS(header | payload | crc32)  0x00`` with the
header ``version u8, type u8, seq u16, len u16`` (little-endian) and the CRC-32 of
header + payload (zlib's ``crc32``, check value ``0xCBF43926``).

:class:`FrameDecoder` consumes any byte stream (including garbage, dropped and
corrupted bytes) and never raises: each delimiter ends one candidate frame, which
is either a :class:`Frame` or counted as one error.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass

VERSION = 1
HEADER_BYTES = 6
CRC_BYTES = 4
MAX_PAYLOAD = 1024
MAX_FRAME = HEADER_BYTES + MAX_PAYLOAD + CRC_BYTES
MAX_ENCODED = MAX_FRAME + MAX_FRAME // 254 + 1 + 2

#: decoder verdicts (the same names as in vectors.json and the C ``GP_*`` codes)
OK, CRC, FRAMING, OVERSIZE = "ok", "crc", "framing", "oversize"

_HDR = struct.Struct("<BBHH")


def crc32(data: bytes, crc: int = 0) -> int:
    """CRC-32/ISO-HDLC (zlib): ``crc32(b"123456789") == 0xCBF43926``."""
    return zlib.crc32(data, crc) & 0xFFFFFFFF


def cobs_encode(data: bytes) -> bytes:
    """Consistent Overhead Byte Stuffing (no delimiter); the output holds no 0x00."""
    out = bytearray(b"\x00")
    code_at, code = 0, 1
    n = len(data)
    for i, b in enumerate(data):
        if b:
            out.append(b)
            code += 1
        if not b or code == 0xFF:
            out[code_at] = code
            code = 1
            code_at = len(out)
            if not b or i + 1 < n:
                out.append(0)
    if code_at < len(out):
        out[code_at] = code
    return bytes(out)


def cobs_decode(data: bytes) -> bytes:
    """Inverse of :func:`cobs_encode`; ``ValueError`` on malformed input."""
    out = bytearray()
    pos, zero = 0, False
    while pos < len(data):
        code = data[pos]
        if code == 0:
            raise ValueError("zero byte inside COBS data")
        pos += 1
        if zero:
            out.append(0)
        block = data[pos : pos + code - 1]
        if len(block) < code - 1 or 0 in block:
            raise ValueError("truncated COBS block")
        out += block
        pos += code - 1
        zero = code != 0xFF
    return bytes(out)


def encode_frame(type_: int, seq: int, payload: bytes = b"", version: int = VERSION) -> bytes:
    """A complete wire frame: ``0x00 COBS(header payload crc) 0x00``."""
    payload = bytes(payload)
    if len(payload) > MAX_PAYLOAD:
        raise ValueError(f"payload of {len(payload)} bytes exceeds the maximum of {MAX_PAYLOAD}")
    body = _HDR.pack(version & 0xFF, type_ & 0xFF, seq & 0xFFFF, len(payload)) + payload
    body += struct.pack("<I", crc32(body))
    return b"\x00" + cobs_encode(body) + b"\x00"


def raw_frame(type_: int, seq: int, payload: bytes = b"", version: int = VERSION) -> bytes:
    """Header + payload + CRC without COBS (for tests that craft broken frames)."""
    body = _HDR.pack(version & 0xFF, type_ & 0xFF, seq & 0xFFFF, len(payload) & 0xFFFF) + bytes(payload)
    return body + struct.pack("<I", crc32(body))


@dataclass(frozen=True)
class Frame:
    """One decoded frame (CRC and length already checked)."""

    type: int
    seq: int
    payload: bytes
    version: int = VERSION


class FrameDecoder:
    """Streaming decoder; the exact twin of ``gp_decoder_push`` in ge_proto.c.

    ``feed(data)`` returns the frames completed by ``data``; with
    ``verdicts=True`` it returns, per delimiter that ended a non-empty candidate,
    either the :class:`Frame` or one of ``"crc"``, ``"framing"``, ``"oversize"``.
    Counters: ``frames_ok``, ``crc_errors``, ``framing_errors``, ``oversize``.
    Memory is bounded by ``MAX_FRAME`` whatever arrives.
    """

    def __init__(self) -> None:
        self.frames_ok = 0
        self.crc_errors = 0
        self.framing_errors = 0
        self.oversize = 0
        self._restart()

    def _restart(self) -> None:
        self._buf = bytearray()
        self._code = 0
        self._zero = False
        self._overflow = False
        self._started = False

    @property
    def errors(self) -> int:
        return self.crc_errors + self.framing_errors + self.oversize

    def counters(self) -> dict[str, int]:
        return {"frames_ok": self.frames_ok, "crc_errors": self.crc_errors,
                "framing_errors": self.framing_errors, "oversize": self.oversize}

    @property
    def idle(self) -> bool:
        """True between frames (no partial candidate buffered)."""
        return not self._started

    def feed(self, data: bytes, verdicts: bool = False) -> list:
        out: list = []
        buf = self._buf
        code, zero, overflow, started = self._code, self._zero, self._overflow, self._started
        mv = memoryview(bytes(data))
        i, n = 0, len(mv)
        while i < n:
            b = mv[i]
            if b == 0:
                i += 1
                if not started:
                    continue
                self._buf, self._code, self._zero, self._overflow = buf, code, zero, overflow
                res = self._finish()
                if isinstance(res, Frame) or verdicts:
                    out.append(res)
                self._restart()
                buf, code, zero, overflow, started = self._buf, 0, False, False, False
                continue
            started = True
            if overflow:
                i += 1
                continue
            if code == 0:
                if zero:
                    if len(buf) >= MAX_FRAME:
                        overflow = True
                    else:
                        buf.append(0)
                code = b - 1
                zero = b != 0xFF
                i += 1
            else:
                # copy a run of data bytes of the current block at once
                take = min(code, n - i)
                chunk = mv[i : i + take]
                z = bytes(chunk).find(0)
                if z >= 0:
                    take = z
                    chunk = mv[i : i + take]
                room = MAX_FRAME - len(buf)
                if take > room:
                    buf += chunk[:room]
                    overflow = True
                else:
                    buf += chunk
                code -= take
                i += take
        self._buf, self._code, self._zero, self._overflow, self._started = buf, code, zero, overflow, started
        return out

    def _finish(self):
        buf = self._buf
        if self._overflow:
            self.oversize += 1
            return OVERSIZE
        if self._code != 0 or len(buf) < HEADER_BYTES + CRC_BYTES:
            self.framing_errors += 1
            return FRAMING
        version, type_, seq, length = _HDR.unpack_from(buf, 0)
        if length > MAX_PAYLOAD:
            self.oversize += 1
            return OVERSIZE
        if length + HEADER_BYTES + CRC_BYTES != len(buf):
            self.framing_errors += 1
            return FRAMING
        (crc,) = struct.unpack_from("<I", buf, HEADER_BYTES + length)
        if crc != crc32(bytes(buf[: HEADER_BYTES + length])):
            self.crc_errors += 1
            return CRC
        self.frames_ok += 1
        return Frame(type_, seq, bytes(buf[HEADER_BYTES : HEADER_BYTES + length]), version)
