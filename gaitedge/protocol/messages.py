"""Message types and payload codecs of the gaitedge wire protocol (PROTOCOL.md).

Every payload is little-endian.  A reply carries the request's type with bit 7 set
and the request's sequence number; a refused request is answered with ``NAK``.

The ``decode`` functions take a payload as received; one too short for what its
own counts announce raises :class:`MalformedPayload` (a
:class:`~gaitedge.errors.DeviceError`: the board answered wrongly), never a
lower-level error.
"""

from __future__ import annotations

import contextlib
import struct
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import cast

import numpy as np

from gaitedge.errors import DeviceError


class MalformedPayload(DeviceError):
    """A message payload that does not hold what its type and its own counts say."""


@contextlib.contextmanager
def _decoding(what: str, p: bytes) -> Iterator[None]:
    """Turn the errors of reading past a payload's end into :class:`MalformedPayload`."""
    try:
        yield
    except (struct.error, IndexError, ValueError) as exc:
        raise MalformedPayload(f"malformed {what} payload ({len(p)} bytes): {exc}") from None

# ---- message types --------------------------------------------------------------------
PING = 0x01
INFO = 0x02
SAMPLES = 0x03
RESET_STATE = 0x04
STATS = 0x05
FLASH_BEGIN = 0x10
FLASH_CHUNK = 0x11
FLASH_VERIFY = 0x12
FLASH_COMMIT = 0x13
FLASH_ABORT = 0x14
FLASH_STATUS = 0x15
REBOOT = 0x20
FACTORY_RESET = 0x21
SET_MOUNTING = 0x30
GET_MOUNTING = 0x31
BOOT = 0x7E
NAK = 0x7F
REPLY = 0x80

TYPE_NAMES = {
    PING: "PING", INFO: "INFO", SAMPLES: "SAMPLES", RESET_STATE: "RESET_STATE", STATS: "STATS",
    FLASH_BEGIN: "FLASH_BEGIN", FLASH_CHUNK: "FLASH_CHUNK", FLASH_VERIFY: "FLASH_VERIFY",
    FLASH_COMMIT: "FLASH_COMMIT", FLASH_ABORT: "FLASH_ABORT", FLASH_STATUS: "FLASH_STATUS",
    REBOOT: "REBOOT", FACTORY_RESET: "FACTORY_RESET", SET_MOUNTING: "SET_MOUNTING", GET_MOUNTING: "GET_MOUNTING",
    BOOT: "BOOT", NAK: "NAK",
}


def type_name(t: int) -> str:
    if t & REPLY and (t & 0x7F) in TYPE_NAMES:
        return TYPE_NAMES[t & 0x7F] + "_REPLY"
    return TYPE_NAMES.get(t, f"0x{t:02X}")


# ---- NAK codes ------------------------------------------------------------------------
E_VERSION = 1
E_TYPE = 2
E_LENGTH = 3
E_CHANNELS = 4
E_TOO_MANY = 5
E_BLOB_MAGIC = 10
E_BLOB_VERSION = 11
E_ARCH = 12
E_BLOB_SIZE = 13
E_HEADER_CRC = 14
E_STATE = 15
E_OFFSET = 16
E_VERIFY = 17
E_FLASH = 18
E_MODEL = 19
E_MOUNT_TRIADS = 20
E_MOUNT_INDEX = 21
E_MOUNT_ROTATION = 22

ERROR_NAMES = {
    E_VERSION: "unsupported protocol version", E_TYPE: "unknown message type",
    E_LENGTH: "bad payload length", E_CHANNELS: "wrong channel count",
    E_TOO_MANY: "too many samples in one frame", E_BLOB_MAGIC: "not a weights blob",
    E_BLOB_VERSION: "unsupported blob format version", E_ARCH: "blob is for another model architecture",
    E_BLOB_SIZE: "blob size does not fit this firmware", E_HEADER_CRC: "blob header CRC mismatch",
    E_STATE: "not valid in the current flash state", E_OFFSET: "unexpected chunk offset",
    E_VERIFY: "blob CRC mismatch after transfer", E_FLASH: "flash write failed",
    E_MODEL: "the runtime refused the model",
    E_MOUNT_TRIADS: "too many triads in the mounting", E_MOUNT_INDEX: "mounting channel index out of range or repeated",
    E_MOUNT_ROTATION: "mounting matrix is not a rotation",
}

SOURCES = {0: "built-in", 1: "slot A", 2: "slot B"}
FLASH_STATES = {0: "idle", 1: "receiving", 2: "verified", 3: "committed"}
EVENT_NAMES = {1: "toe_off", 2: "heel_strike"}


def _strings(buf: bytes, pos: int, count: int) -> tuple[list[str], int]:
    """``count`` length-prefixed strings from ``buf[pos:]`` and the position after them."""
    out = []
    for _ in range(count):
        n = buf[pos]
        if pos + 1 + n > len(buf):
            raise ValueError(f"string of {n} bytes at offset {pos} runs past the end")
        out.append(buf[pos + 1 : pos + 1 + n].decode("ascii", "replace"))
        pos += 1 + n
    return out, pos


def pack_strings(items) -> bytes:
    out = bytearray()
    for s in items:
        b = s.encode("ascii", "replace")[:255]
        out += bytes([len(b)]) + b
    return bytes(out)


# ---- INFO / BOOT ----------------------------------------------------------------------
_INFO = struct.Struct("<BBBBHHHHIBBHHbBIII32s64s")


@dataclass
class Info:
    proto_version: int
    fw_version: str
    max_payload: int
    max_samples: int
    rx_buffer: int
    max_chunk: int
    rate_hz: float
    n_inputs: int
    n_classes: int
    delay: int
    min_run: int
    swing: int
    source: str
    generation: int
    tick_hz: int
    steps: int
    arch_hash: str
    model_hash: str
    board: str
    family: str
    classes: list[str]
    channels: list[str]
    units: list[str] = field(default_factory=list)
    lsb: list[float] = field(default_factory=list)  # physical units per sensor count, per channel

    @classmethod
    def decode(cls, p: bytes) -> "Info":
        """An INFO reply or BOOT payload (:class:`MalformedPayload` if truncated)."""
        with _decoding("INFO", p):
            v = _INFO.unpack_from(p, 0)
            pos = _INFO.size
            (board, family), pos = _strings(p, pos, 2)
            classes, pos = _strings(p, pos, v[10])
            channels, pos = _strings(p, pos, v[9])
            units: list[str] = []
            lsb: list[float] = []
            if pos < len(p):
                units, pos = _strings(p, pos, v[9])
                lsb = list(struct.unpack_from(f"<{v[9]}d", p, pos))
        return cls(
            proto_version=v[0], fw_version=f"{v[1]}.{v[2]}.{v[3]}", max_payload=v[4], max_samples=v[5],
            rx_buffer=v[6], max_chunk=v[7], rate_hz=v[8] / 1000.0, n_inputs=v[9], n_classes=v[10],
            delay=v[11], min_run=v[12], swing=v[13], source=SOURCES.get(v[14], str(v[14])), generation=v[15],
            tick_hz=v[16], steps=v[17], arch_hash=v[18].hex(), model_hash=v[19].decode("ascii", "replace"),
            board=board, family=family, classes=classes, channels=channels, units=units, lsb=lsb,
        )

    def encode(self) -> bytes:
        """(Used by tests and the vectors generator.)"""
        maj, mi, pa = (int(x) for x in self.fw_version.split("."))
        src = {v: k for k, v in SOURCES.items()}[self.source]
        return _INFO.pack(self.proto_version, maj, mi, pa, self.max_payload, self.max_samples, self.rx_buffer,
                          self.max_chunk, int(round(self.rate_hz * 1000)), self.n_inputs, self.n_classes,
                          self.delay, self.min_run, self.swing, src, self.generation, self.tick_hz, self.steps,
                          bytes.fromhex(self.arch_hash), self.model_hash.encode()) + pack_strings(
            [self.board, self.family, *self.classes, *self.channels, *self.units]) + struct.pack(
            f"<{len(self.lsb)}d", *self.lsb)

    def to_counts(self, signals) -> np.ndarray:
        """Physical signals ``[n, channels]`` (the model's units) -> int16 counts, as the
        board's model expects them (``QuantModel.to_counts`` with the device's resolution)."""
        if not self.lsb:
            raise ValueError("this device does not report its channels' resolution")
        q = np.floor(np.asarray(signals, np.float64) / np.asarray(self.lsb)[None, :] + 0.5)
        return np.clip(q, -32768, 32767).astype(np.int16)


# ---- SAMPLES / RESULTS ----------------------------------------------------------------
def encode_samples(counts: np.ndarray) -> bytes:
    """SAMPLES payload for ``counts [n, channels]`` (int16 sensor counts)."""
    c = np.asarray(counts)
    if c.ndim == 1:
        c = c[None, :]
    if c.ndim != 2 or c.shape[0] < 1:
        raise ValueError("counts must be [n, channels] with n >= 1")
    if np.any(c < -32768) or np.any(c > 32767):
        raise ValueError("counts must fit int16")
    return struct.pack("<HBB", c.shape[0], c.shape[1], 0) + np.ascontiguousarray(c, "<i2").tobytes()


def decode_samples(p: bytes) -> np.ndarray:
    """The counts ``[n, channels]`` (int16) of a SAMPLES payload (:class:`MalformedPayload` if truncated)."""
    with _decoding("SAMPLES", p):
        n, ch, _ = struct.unpack_from("<HBB", p, 0)
        return np.frombuffer(p, "<i2", n * ch, 4).reshape(n, ch)


RESULT_RECORD = 8  # + 2 * n_classes


@dataclass
class Results:
    """Per-sample outputs of a SAMPLES request (arrays of length n)."""

    first_step: int
    label: np.ndarray  # debounced label of sample (step - delay); -1 during warm-up
    raw_label: np.ndarray  # argmax of the logits
    event: np.ndarray  # 0 none, 1 toe off, 2 heel strike
    event_sample: np.ndarray  # sample index where the new phase began, -1 if no event
    logits: np.ndarray  # [n, K] int16, Q(logit_frac)

    def __len__(self) -> int:
        return len(self.label)

    @classmethod
    def decode(cls, p: bytes) -> "Results":
        """A SAMPLES reply payload (:class:`MalformedPayload` if truncated)."""
        with _decoding("SAMPLES reply", p):
            first, n, k, _ = struct.unpack_from("<IHBB", p, 0)
            dt = np.dtype([("label", "i1"), ("raw", "i1"), ("event", "u1"), ("pad", "u1"), ("ev_s", "<i4"),
                           ("logits", "<i2", (k,))])
            rec = np.frombuffer(p, dt, n, 8)
        return cls(first, rec["label"].astype(np.int64), rec["raw"].astype(np.int64),
                   rec["event"].astype(np.int64), rec["ev_s"].astype(np.int64),
                   rec["logits"].astype(np.int64).reshape(n, k))

    @classmethod
    def concat(cls, parts: list["Results"], k: int = 0) -> "Results":
        if not parts:
            empty = np.zeros(0, np.int64)
            return cls(0, empty, empty.copy(), empty.copy(), empty.copy(), np.zeros((0, k), np.int64))
        cat = {f: np.concatenate([getattr(r, f) for r in parts])
               for f in ("label", "raw_label", "event", "event_sample", "logits")}
        return cls(parts[0].first_step, **cat)

    def events(self, delay: int = 0) -> list[tuple[str, int]]:
        """``[(kind, sample)]`` of the events reported in these results."""
        idx = np.nonzero(self.event)[0]
        return [(EVENT_NAMES.get(int(self.event[i]), str(int(self.event[i]))), int(self.event_sample[i])) for i in idx]


def encode_results(first_step: int, label, raw, event, event_sample, logits) -> bytes:
    logits = np.asarray(logits, np.int64)
    n, k = logits.shape
    out = bytearray(struct.pack("<IHBB", first_step, n, k, 0))
    for i in range(n):
        out += struct.pack("<bbBBi", int(label[i]), int(raw[i]), int(event[i]), 0, int(event_sample[i]))
        out += np.asarray(logits[i], "<i2").tobytes()
    return bytes(out)


def max_samples_per_frame(n_inputs: int, n_classes: int, max_payload: int = 1024) -> int:
    return max(1, min((max_payload - 4) // (2 * n_inputs), (max_payload - 8) // (RESULT_RECORD + 2 * n_classes)))


# ---- STATS ----------------------------------------------------------------------------
_STATS = struct.Struct("<IIIIIIIIIQIIIIIIII")
STATS_FIELDS = ("frames_ok", "crc_errors", "framing_errors", "oversize", "overruns", "naks", "duplicates",
                "steps", "steps_timed", "step_ticks_total", "step_ticks_min", "step_ticks_max", "step_ticks_last",
                "tick_hz", "rx_bytes", "tx_bytes", "rx_high_water", "frame_ticks_last")


@dataclass
class Stats:
    frames_ok: int
    crc_errors: int
    framing_errors: int
    oversize: int
    overruns: int
    naks: int
    duplicates: int
    steps: int
    steps_timed: int
    step_ticks_total: int
    step_ticks_min: int
    step_ticks_max: int
    step_ticks_last: int
    tick_hz: int
    rx_bytes: int
    tx_bytes: int
    rx_high_water: int
    frame_ticks_last: int

    @classmethod
    def decode(cls, p: bytes) -> "Stats":
        """A STATS reply payload (:class:`MalformedPayload` if truncated)."""
        with _decoding("STATS", p):
            return cls(*_STATS.unpack_from(p, 0))

    def encode(self) -> bytes:
        return _STATS.pack(*(getattr(self, f) for f in STATS_FIELDS))

    @property
    def ticks_per_step(self) -> float:
        return self.step_ticks_total / self.steps_timed if self.steps_timed else float("nan")

    def as_dict(self) -> dict:
        return {f: getattr(self, f) for f in STATS_FIELDS}


# ---- NAK ------------------------------------------------------------------------------
@dataclass
class Nak:
    request: int
    code: int
    detail: int
    message: str

    @classmethod
    def decode(cls, p: bytes) -> "Nak":
        if len(p) < 8:
            return cls(0, 0, 0, "malformed NAK")
        req, _, code, detail = struct.unpack_from("<BBHI", p, 0)
        return cls(req, code, detail, p[8:].decode("ascii", "replace"))

    def encode(self) -> bytes:
        return struct.pack("<BBHI", self.request, 0, self.code, self.detail) + self.message.encode("ascii")

    def describe(self) -> str:
        text = self.message or ERROR_NAMES.get(self.code, f"error {self.code}")
        return f"{type_name(self.request)} refused: {text}"


# ---- flash ----------------------------------------------------------------------------
@dataclass
class SlotInfo:
    valid: bool
    generation: int
    model_hash: str


@dataclass
class FlashStatus:
    state: str
    target: int | None
    source: str
    received: int
    payload_len: int
    slots: list[SlotInfo] = field(default_factory=list)

    @classmethod
    def decode(cls, p: bytes) -> "FlashStatus":
        """A FLASH_STATUS reply payload (:class:`MalformedPayload` if truncated)."""
        with _decoding("FLASH_STATUS", p):
            st, tgt, src, ns, rec, plen = struct.unpack_from("<BBBBII", p, 0)
            slots = []
            for k in range(ns):
                valid, gen, h = struct.unpack_from("<B3xI64s", p, 12 + 72 * k)
                slots.append(SlotInfo(bool(valid), gen, h.decode("ascii", "replace").rstrip("\x00")))
        return cls(FLASH_STATES.get(st, str(st)), None if tgt == 0xFF else tgt, SOURCES.get(src, str(src)), rec,
                   plen, slots)


# ---- sensor mounting (SET_MOUNTING / GET_MOUNTING) ---------------------------------------
#: most triads in one mounting (GE_MAX_TRIADS)
MOUNT_MAX_TRIADS = 4
MOUNT_HEAD = 4
MOUNT_TRIAD = 22
#: rows of a Q1.14 matrix must be orthonormal within this, in Q28: |r_i . r_k - [i == k] 2^28| <= 2^20
MOUNT_ORTHO_TOL = 1 << 20
_MOUNT_ONE = 1 << 14


@dataclass
class MountingState:
    """A mounting as on the wire: per triad ``(channels (3 ints), rot (9 ints, Q1.14, row-major))``.

    ``generation``: of the device's flash record (0: never set; only in replies).
    """

    triads: list[tuple[tuple[int, int, int], tuple[int, ...]]] = field(default_factory=list)
    generation: int = 0

    @classmethod
    def of(cls, triads, generation: int = 0) -> "MountingState":
        """From objects with ``channels`` and ``rot`` (e.g. :class:`gaitedge.quant.mounting.Triad`) or pairs."""
        out: list[tuple[tuple[int, int, int], tuple[int, ...]]] = []
        for t in triads:
            ch, rot = (t.channels, t.rot) if hasattr(t, "channels") else t
            chans = cast("tuple[int, int, int]", tuple(int(c) for c in ch))  # length checked by encode()
            out.append((chans, tuple(int(v) for v in np.asarray(rot).ravel())))
        return cls(out, generation)

    def encode(self) -> bytes:
        """SET_MOUNTING request payload: ``u8 n, 3 x u8 0``, per triad ``u8 idx[3], u8 0, i16 rot[9]``."""
        if len(self.triads) > 255:
            raise ValueError("too many triads")
        out = bytearray(struct.pack("<B3x", len(self.triads)))
        for ch, rot in self.triads:
            if len(ch) != 3 or len(rot) != 9:
                raise ValueError("a triad is 3 channel indices and 9 matrix entries")
            out += struct.pack("<3Bx9h", *ch, *rot)
        return bytes(out)

    def encode_reply(self) -> bytes:
        """SET_MOUNTING / GET_MOUNTING reply payload: ``u32 generation`` + the mounting."""
        return struct.pack("<I", self.generation) + self.encode()

    @classmethod
    def decode(cls, p: bytes, generation: int = 0) -> "MountingState":
        """A SET_MOUNTING request payload (:class:`MalformedPayload` if truncated)."""
        with _decoding("mounting", p):
            n = p[0]
            triads = []
            for t in range(n):
                v = struct.unpack_from("<3Bx9h", p, MOUNT_HEAD + MOUNT_TRIAD * t)
                triads.append((tuple(v[:3]), tuple(v[3:])))
        return cls(triads, generation)

    @classmethod
    def decode_reply(cls, p: bytes) -> "MountingState":
        """A SET_MOUNTING / GET_MOUNTING reply payload (:class:`MalformedPayload` if truncated)."""
        with _decoding("mounting reply", p):
            (gen,) = struct.unpack_from("<I", p, 0)
        return cls.decode(p[4:], gen)

    @property
    def identity(self) -> bool:
        """True when no triad rotates anything."""
        eye = (_MOUNT_ONE, 0, 0, 0, _MOUNT_ONE, 0, 0, 0, _MOUNT_ONE)
        return all(tuple(rot) == eye for _, rot in self.triads)


def check_mounting(p: bytes, n_inputs: int) -> tuple[int, int]:
    """The device's verdict on a SET_MOUNTING payload for a model with ``n_inputs`` channels:
    ``(0, 0)`` when accepted, else ``(NAK code, detail)`` exactly as ``fw_mount_decode``."""
    if len(p) < MOUNT_HEAD:
        return E_LENGTH, MOUNT_HEAD
    n = p[0]
    if n > MOUNT_MAX_TRIADS:
        return E_MOUNT_TRIADS, MOUNT_MAX_TRIADS
    if len(p) != MOUNT_HEAD + MOUNT_TRIAD * n:
        return E_LENGTH, MOUNT_HEAD + MOUNT_TRIAD * n
    m = MountingState.decode(p)
    idx = [c for ch, _ in m.triads for c in ch]
    for k, c in enumerate(idx):
        if c >= n_inputs or c in idx[:k]:
            return E_MOUNT_INDEX, k
    for t, (_, rot) in enumerate(m.triads):
        r = np.asarray(rot, np.int64).reshape(3, 3)
        if np.abs(r).max() > _MOUNT_ONE or np.abs(r @ r.T - (_MOUNT_ONE ** 2) * np.eye(3, dtype=np.int64)).max() \
                > MOUNT_ORTHO_TOL:
            return E_MOUNT_ROTATION, t
    return 0, 0
