"""Where live samples come from: a byte transport, a decoder, and recording replay.

The layering follows pyserial's ``serial.threaded``: the *transport* moves bytes
and knows nothing of their meaning, the *decoder* (pyserial's protocol) turns
bytes into samples and knows nothing of ports.

* :class:`~gaitedge.protocol.transport.SerialLink` (shared with the device
  client) opens any URL :func:`serial.serial_for_url` accepts (``/dev/ttyUSB0``,
  ``/dev/pts/3``, ``socket://host:port``, ``rfc2217://...``, ``loop://``), so
  real ports and network or virtual ones share one code path.
* :class:`TextLineDecoder` splits the byte stream into lines and hands each to
  a :class:`LineParser` (``t,ax,ay,az,gx,gy,gz``-style lines, as Arduino IMU
  sketches print them).  :class:`SamplesFrameDecoder` reads the binary
  SAMPLES frames of the wire protocol (``gaitedge/csrc/PROTOCOL.md``) instead;
  :class:`PortSource` takes either.
* :class:`ReplaySource` plays a :class:`~gaitedge.data.Recording` at its real
  rate, faster, or as fast as possible.

Every source yields :class:`Sample` objects holding *all* numeric fields of one
input sample; :class:`ColumnMap` says which of them feed which model channel,
which one is the timestamp and which a sample counter, and how each is scaled
into the model's units.
"""

from __future__ import annotations

import math
import re
import time
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np

from gaitedge.data.recording import Recording
from gaitedge.errors import DataError
from gaitedge.protocol.framing import Frame, FrameDecoder
from gaitedge.protocol.messages import SAMPLES
from gaitedge.protocol.transport import LinkError, LinkLost, SerialLink

#: standard gravity, m/s² per g.
GRAVITY = 9.80665
#: named scale factors accepted by ``--scale`` (value -> model unit).
NAMED_SCALES = {
    "g": GRAVITY,  # g -> m/s²
    "mg": GRAVITY / 1000.0,  # milli-g -> m/s²
    "deg": math.pi / 180.0,  # deg/s -> rad/s
    "mdeg": math.pi / 180000.0,  # milli-deg/s -> rad/s
    "rad": 1.0,
    "m": 1.0,
}
#: time column names and their factor to seconds.
TIME_FIELDS = {"t": 1.0, "time": 1.0, "t_s": 1.0, "t_ms": 1e-3, "t_us": 1e-6}
#: short names accepted in ``--columns`` for the usual IMU channel names.
ALIASES = {
    "ax": "acc_x", "ay": "acc_y", "az": "acc_z", "gx": "gyr_x", "gy": "gyr_y", "gz": "gyr_z",
}
IGNORE_FIELDS = {"_", "-", "skip"}
FLOAT32_MAX = float(np.finfo(np.float32).max)
#: longest line accepted (bytes); longer input without a newline is garbage.
MAX_LINE = 4096
#: SAMPLES frames from an IMU number their samples modulo this (the u16 sequence number).
SEQ_MODULO = 1 << 16


class SourceError(DataError):
    """A source cannot be opened (missing device, bad URL, unreadable file)."""


class SourceLost(Exception):
    """The transport went away while streaming (port unplugged, peer closed)."""


class EndOfStream(Exception):
    """A finite source (a replayed recording) has delivered its last sample."""


class CorruptLine(ValueError):
    """One line that is not a valid sample; the reason is the message."""


@dataclass(slots=True)
class Sample:
    """One input sample as it arrived.

    ``values`` holds every field of the sample (float32, in the order of the
    line's fields or the recording's channels, in the units of the source);
    ``t`` the device timestamp in s (NaN when the source has none); ``counter``
    the device sample counter (-1 when none); ``arrival`` the host time
    (``time.perf_counter()``, s) at which its bytes were read.
    """

    values: np.ndarray
    t: float
    counter: int
    arrival: float


# -- column maps -----------------------------------------------------------------------


def parse_scale(spec: str | None, channels: Sequence[str], units: Sequence[str]) -> np.ndarray | None:
    """Per-channel scale factors from a ``--scale`` spec, or None for none.

    ``spec`` is a number (every channel), or comma-separated ``key=value`` with
    key ``acc`` (channels in m/s²), ``gyr`` (channels in rad/s), ``all`` or a
    channel name (which wins over a group), and value a number or a named
    factor: ``g`` (g -> m/s²), ``mg``, ``deg`` (deg/s -> rad/s), ``mdeg``.
    Several factors multiply: ``acc=g*0.001`` (milli-g -> m/s²).
    """
    if spec is None or not spec.strip():
        return None

    def value(text: str) -> float:
        out = 1.0
        for part in text.split("*"):
            part = part.strip().lower()
            if part in NAMED_SCALES:
                out *= NAMED_SCALES[part]
                continue
            try:
                out *= float(part)
            except ValueError:
                raise DataError(
                    f"--scale {spec!r}: {part!r} is not a number or one of {', '.join(NAMED_SCALES)}"
                ) from None
        if not math.isfinite(out) or out == 0:
            raise DataError(f"--scale {spec!r}: factor {text!r} must be finite and non-zero")
        return out

    scale = np.ones(len(channels), np.float64)
    if "=" not in spec:
        return scale * value(spec)

    def group(c: str, u: str) -> str:
        if u in ("m/s^2", "m/s²") or "acc" in c:
            return "acc"
        if u == "rad/s" or "gyr" in c:
            return "gyr"
        return ""

    per_channel: dict[str, float] = {}
    for item in filter(None, (s.strip() for s in spec.split(","))):
        key, eq, val = item.partition("=")
        key = ALIASES.get(key.strip(), key.strip())
        if not eq:
            raise DataError(f"--scale {spec!r}: {item!r} is not key=value")
        f = value(val)
        if key == "all":
            scale[:] = f
        elif key in ("acc", "gyr"):
            hit = [i for i, (c, u) in enumerate(zip(channels, units)) if group(c, u) == key]
            if not hit:
                raise DataError(f"--scale {spec!r}: the model has no {key} channels")
            scale[hit] = f
        elif key in channels:
            per_channel[key] = f
        else:
            raise DataError(f"--scale {spec!r}: unknown key {key!r}; use acc, gyr, all or a channel name")
    for key, f in per_channel.items():
        scale[list(channels).index(key)] = f
    return None if np.all(scale == 1.0) else scale


@dataclass
class ColumnMap:
    """How the fields of one input sample feed one model.

    Built from a ``--columns`` spec (:meth:`parse`): one name per field, in
    order.  A name is a model channel (or an alias ``ax ay az gx gy gz``), a
    time field (``t``/``time`` in s, ``t_ms``, ``t_us``), a sample counter
    (``seq``, or ``seq%N`` for one that wraps at N), or ``_`` for a field to
    ignore.  Every model channel must be named exactly once.
    """

    #: field names as given.
    fields: tuple[str, ...]
    #: model channels in model order.
    channels: tuple[str, ...]
    #: position of each model channel among the fields.
    index: np.ndarray
    #: per-channel factor into model units (None = 1).
    scale: np.ndarray | None = None
    #: position of the time field (-1: none) and its factor to s.
    time_index: int = -1
    time_scale: float = 1.0
    #: position of the counter field (-1: none) and its wrap modulus (0: none).
    counter_index: int = -1
    counter_modulo: int = 0
    _identity: bool = field(init=False, repr=False, default=False)

    def __post_init__(self) -> None:
        self.index = np.asarray(self.index, dtype=np.intp)
        self._identity = len(self.fields) == len(self.channels) and bool(
            np.array_equal(self.index, np.arange(len(self.channels)))
        )

    @property
    def n_fields(self) -> int:
        """Number of fields in one input sample."""
        return len(self.fields)

    @classmethod
    def parse(
        cls,
        spec: str | Sequence[str],
        channels: Sequence[str],
        units: Sequence[str] | None = None,
        scale: str | None = None,
        allow_time: bool = True,
    ) -> "ColumnMap":
        """Parse a ``--columns`` spec against a model's channels (DataError naming the problem)."""
        names = [s.strip() for s in spec.split(",")] if isinstance(spec, str) else [str(s).strip() for s in spec]
        text = ",".join(names)
        channels = tuple(channels)
        pos: dict[str, int] = {}
        t_idx, t_scale, c_idx, c_mod = -1, 1.0, -1, 0
        for i, raw in enumerate(names):
            name = ALIASES.get(raw, raw)
            if raw.startswith("other_") and raw[6:] in ALIASES:
                name = "other_" + ALIASES[raw[6:]]
            if name in IGNORE_FIELDS or name == "":
                continue
            if name in TIME_FIELDS:
                if not allow_time:
                    raise DataError(f"--columns {text!r}: a replayed recording has no time field ({raw!r})")
                if t_idx >= 0:
                    raise DataError(f"--columns {text!r}: more than one time field")
                t_idx, t_scale = i, TIME_FIELDS[name]
                continue
            m = re.fullmatch(r"(seq|counter)(?:%(\d+))?", name)
            if m:
                if c_idx >= 0:
                    raise DataError(f"--columns {text!r}: more than one counter field")
                c_idx, c_mod = i, int(m.group(2) or 0)
                continue
            if name not in channels:
                shown = ", ".join(channels)
                raise DataError(
                    f"--columns {text!r}: field {raw!r} is not a channel of the model ({shown}), "
                    f"a time field (t, t_ms, t_us), a counter (seq) or _"
                )
            if name in pos:
                raise DataError(f"--columns {text!r}: channel {name!r} named twice")
            pos[name] = i
        missing = [c for c in channels if c not in pos]
        if missing:
            raise DataError(
                f"--columns {text!r} names {len(names)} fields but lacks model channel(s) {', '.join(missing)}; "
                f"the model needs {len(channels)} channels: {', '.join(channels)}"
            )
        sc = parse_scale(scale, channels, units if units is not None else [""] * len(channels))
        return cls(
            fields=tuple(names),
            channels=channels,
            index=np.array([pos[c] for c in channels]),
            scale=sc,
            time_index=t_idx,
            time_scale=t_scale,
            counter_index=c_idx,
            counter_modulo=c_mod,
        )

    @classmethod
    def default_line(cls, channels: Sequence[str], units: Sequence[str] | None = None, scale: str | None = None) -> "ColumnMap":
        """The layout ``gaitedge imu-sim`` writes: ``t`` then the model channels."""
        return cls.parse(["t", *channels], channels, units, scale)

    @classmethod
    def for_frames(
        cls,
        channels: Sequence[str],
        units: Sequence[str] | None = None,
        spec: str | Sequence[str] | None = None,
        scale: str | None = None,
    ) -> "ColumnMap":
        """The layout of binary SAMPLES frames: one field per frame channel, no time field.

        ``spec`` names the frame's channels in order (default: the model's
        channels).  The sample counter comes from the frame's sequence number,
        so the map's ``counter_modulo`` is :data:`SEQ_MODULO`.
        """
        cmap = cls.parse(list(channels) if spec is None else spec, channels, units, scale)
        if cmap.time_index >= 0 or cmap.counter_index >= 0:
            raise DataError(
                f"--columns {','.join(cmap.fields)!r}: binary frames carry no time or counter field "
                "(the frame's sequence number is the sample counter); name the frame's channels only"
            )
        cmap.counter_modulo = SEQ_MODULO
        return cmap

    def __call__(self, values: np.ndarray) -> np.ndarray:
        """The model input ``(C,)`` float32 from one sample's fields."""
        x = values if self._identity else values[self.index]
        if self.scale is not None:
            x = (x * self.scale).astype(np.float32)
        return x


# -- text lines ------------------------------------------------------------------------


class LineParser:
    """Parse one text line into a :class:`Sample` (no I/O).

    Fields are separated by commas, or by whitespace when the line has no comma.
    ``n_fields`` fields are expected; ``time_index``/``counter_index`` name the
    timestamp and counter fields (-1: none).  Raises :class:`CorruptLine` for a
    wrong field count, a non-numeric or non-finite field, or a non-integer
    counter.
    """

    def __init__(self, n_fields: int, time_index: int = -1, time_scale: float = 1.0, counter_index: int = -1) -> None:
        self.n_fields = int(n_fields)
        self.time_index = time_index
        self.time_scale = time_scale
        self.counter_index = counter_index

    @classmethod
    def for_columns(cls, cmap: ColumnMap) -> "LineParser":
        """The parser for the line layout a :class:`ColumnMap` describes."""
        return cls(cmap.n_fields, cmap.time_index, cmap.time_scale, cmap.counter_index)

    def split(self, line: bytes) -> list[bytes]:
        """The fields of a line (comma-separated, else whitespace-separated)."""
        return line.split(b",") if b"," in line else line.split()

    def parse(self, line: bytes, arrival: float) -> Sample:
        parts = self.split(line)
        if len(parts) != self.n_fields:
            raise CorruptLine(f"{len(parts)} fields, expected {self.n_fields}")
        try:
            vals = [float(p) for p in parts]
        except ValueError:
            raise CorruptLine("non-numeric field") from None
        arr = np.array(vals, dtype=np.float64)
        if not (np.abs(arr) <= FLOAT32_MAX).all():
            raise CorruptLine("non-finite or out-of-range value")
        arr = arr.astype(np.float32)
        t = vals[self.time_index] * self.time_scale if self.time_index >= 0 else math.nan
        c = -1
        if self.counter_index >= 0:
            cv = vals[self.counter_index]
            if cv != int(cv) or cv < 0:
                raise CorruptLine("counter is not a non-negative integer")
            c = int(cv)
        return Sample(arr, t, c, arrival)


@dataclass
class DecodeStats:
    """Counters of a decoder (monotonic over reconnects)."""

    #: bytes received.
    bytes: int = 0
    #: well-formed samples decoded.
    samples: int = 0
    #: lines or frames that were not valid samples (skipped).
    corrupt: int = 0
    #: comment lines (``#...``) and the partial first line after a (re)connect.
    skipped: int = 0
    #: up to a few examples of corrupt input, for messages.
    examples: list[str] = field(default_factory=list)


class Decoder(ABC):
    """Bytes in, samples out; no I/O (pyserial's ``Protocol``).

    ``feed`` may keep an incomplete line or frame for the next call; ``reset``
    drops it (called after a reconnect).  Garbage is counted in :attr:`stats`,
    never raised, except a :class:`DataError` when the very first input shows
    that the configured layout cannot be right (e.g. every line has the wrong
    number of fields).
    """

    def __init__(self) -> None:
        self.stats = DecodeStats()

    @abstractmethod
    def feed(self, data: bytes, arrival: float) -> list[Sample]:
        """Decode a chunk of bytes received at ``arrival`` (``time.perf_counter()``, s)."""

    @abstractmethod
    def reset(self) -> None:
        """Forget partial input (the stream restarts mid-line after a reconnect)."""


class TextLineDecoder(Decoder):
    """Newline-terminated text samples (``\\r\\n`` accepted), parsed by a :class:`LineParser`.

    Empty lines are ignored, ``#`` lines are comments (counted as skipped).  The
    first line after :meth:`reset` may be the tail of a line cut by the
    connect; if it does not parse it is counted as skipped, not corrupt.  If the
    first ``startup_lines`` numeric lines of a stream all have the same wrong
    number of fields, :meth:`feed` raises :class:`DataError` (the ``--columns``
    layout does not match the device).
    """

    def __init__(self, parser: LineParser, source: str = "input", startup_lines: int = 10) -> None:
        super().__init__()
        self.parser = parser
        self.source = source
        self.startup_lines = startup_lines
        self._buf = b""
        self._first = True
        self._ever_ok = False
        self._bad_counts: list[int] = []
        self._bad_example = ""

    def reset(self) -> None:
        self._buf = b""
        self._first = True

    def _note_bad(self, line: bytes, exc: CorruptLine) -> None:
        st = self.stats
        st.corrupt += 1
        if len(st.examples) < 5:
            st.examples.append(f"{line[:60]!r}: {exc}")
        if self._ever_ok:
            return
        parts = self.parser.split(line)
        try:
            [float(p) for p in parts]
        except ValueError:
            return
        self._bad_counts.append(len(parts))
        self._bad_example = line[:80].decode("ascii", "replace")
        if len(self._bad_counts) >= self.startup_lines and len(set(self._bad_counts)) == 1:
            raise DataError(
                f"{self.source}: lines have {self._bad_counts[0]} fields (e.g. {self._bad_example!r}) but the column "
                f"layout expects {self.parser.n_fields}; give --columns naming each field"
            )

    def feed(self, data: bytes, arrival: float) -> list[Sample]:
        st = self.stats
        st.bytes += len(data)
        buf = self._buf + data if self._buf else data
        lines = buf.split(b"\n")
        self._buf = lines.pop()
        if len(self._buf) > MAX_LINE:
            self._note_bad(self._buf[:MAX_LINE], CorruptLine(f"no newline within {MAX_LINE} bytes"))
            self._buf = b""
        out: list[Sample] = []
        parse = self.parser.parse
        for line in lines:
            line = line.strip()
            if not line:
                continue
            if line[:1] == b"#":
                st.skipped += 1
                continue
            try:
                s = parse(line, arrival)
            except CorruptLine as exc:
                if self._first:
                    st.skipped += 1
                    self._first = False
                else:
                    self._note_bad(line, exc)
                continue
            self._first = False
            self._ever_ok = True
            out.append(s)
        st.samples += len(out)
        return out


class SamplesFrameDecoder(Decoder):
    """Binary SAMPLES frames of the wire protocol, as an IMU streams them (no I/O).

    A frame is ``0x00 COBS(header | payload | crc32) 0x00``
    (``gaitedge/csrc/PROTOCOL.md``, sections 1 and 3.2); a SAMPLES payload
    holds ``n`` samples of ``channels`` int16 sensor counts.  The frame's
    sequence number counts samples: it is the index of the frame's first sample
    modulo :data:`SEQ_MODULO` (with one sample per frame: the frame number), so
    sample ``i`` of a frame gets ``counter = (seq + i) % SEQ_MODULO`` and the
    session finds lost and repeated frames by it.  ``t`` is NaN.

    ``lsb`` (physical units per count, one per channel, e.g. m/s² and rad/s)
    turns the counts into physical values (float32 of ``counts * lsb``);
    without it the values are the counts themselves (float32 holds every int16
    exactly), which is what the device backend forwards to a board.

    A frame with a bad CRC or COBS framing, or a SAMPLES payload whose length
    does not match its header, is counted in ``stats.corrupt`` and skipped;
    frames of other types (a board's BOOT, replies) are counted as skipped.
    The first broken frame after :meth:`reset` counts as skipped (the connect
    may cut a frame).  Nothing is raised, except a DataError when the first
    ``startup_frames`` SAMPLES frames all carry the same wrong number of
    channels (the layout does not match the device).
    """

    def __init__(
        self,
        channels: int | None = None,
        lsb: Sequence[float] | np.ndarray | None = None,
        source: str = "input",
        startup_frames: int = 10,
    ) -> None:
        super().__init__()
        self.channels = None if channels is None else int(channels)
        self.lsb = None if lsb is None else np.asarray(lsb, np.float64)
        if self.lsb is not None:
            if self.channels is not None and self.lsb.shape != (self.channels,):
                raise DataError(f"{len(self.lsb)} resolutions (lsb) for {self.channels} channels")
            if not (np.isfinite(self.lsb).all() and (self.lsb > 0).all()):
                raise DataError("sensor resolutions (lsb) must be finite and > 0")
        self.source = source
        self.startup_frames = startup_frames
        self.frames = FrameDecoder()
        self._first = True
        self._ever_ok = False
        self._bad_channels: list[int] = []

    def reset(self) -> None:
        self.frames = FrameDecoder()
        self._first = True

    def _note_bad(self, reason: str) -> None:
        st = self.stats
        if self._first:
            st.skipped += 1
            self._first = False
            return
        st.corrupt += 1
        if len(st.examples) < 5:
            st.examples.append(reason)

    def _note_channels(self, ch: int) -> None:
        self._note_bad(f"SAMPLES frame with {ch} channels, expected {self.channels}")
        if self._ever_ok:
            return
        self._bad_channels.append(ch)
        if len(self._bad_channels) >= self.startup_frames and len(set(self._bad_channels)) == 1:
            raise DataError(
                f"{self.source}: SAMPLES frames carry {ch} channels but the layout expects {self.channels}; "
                "give --columns naming each of the frame's channels"
            )

    def feed(self, data: bytes, arrival: float) -> list[Sample]:
        st = self.stats
        st.bytes += len(data)
        out: list[Sample] = []
        nan = math.nan
        for v in self.frames.feed(data, verdicts=True):
            if not isinstance(v, Frame):
                self._note_bad(f"{v} error")
                continue
            if v.type != SAMPLES:
                st.skipped += 1
                self._first = False
                continue
            p = v.payload
            if len(p) < 4:
                self._note_bad(f"SAMPLES payload of {len(p)} bytes")
                continue
            n, ch = p[0] | (p[1] << 8), p[2]
            if n == 0 or len(p) != 4 + 2 * n * ch:
                self._note_bad(f"SAMPLES payload of {len(p)} bytes for {n} x {ch} counts")
                continue
            if self.channels is not None and ch != self.channels:
                self._note_channels(ch)
                continue
            counts = np.frombuffer(p, "<i2", n * ch, 4).reshape(n, ch)
            if self.lsb is None:
                vals = counts.astype(np.float32)
            elif len(self.lsb) != ch:
                self._note_bad(f"SAMPLES frame with {ch} channels, {len(self.lsb)} resolutions given")
                continue
            else:
                vals = (counts * self.lsb).astype(np.float32)
            seq = v.seq
            out.extend(Sample(vals[i], nan, (seq + i) % SEQ_MODULO, arrival) for i in range(n))
            self._first = False
            self._ever_ok = True
        st.samples += len(out)
        return out


# -- sources ---------------------------------------------------------------------------


class Source(ABC):
    """What a streaming session reads samples from.

    :meth:`open` is called once before streaming and again after a
    :class:`SourceLost` (reconnect); :meth:`read` returns the samples received
    within about ``timeout`` s; :meth:`close` releases the source.  ``live``
    sources (ports) cannot be paused, so a session drops samples rather than
    block them; replay sources can wait.
    """

    #: short description for messages (URL, file).
    description: str = ""
    #: True for a device that keeps sampling whether or not it is read.
    live: bool = True

    def __init__(self) -> None:
        self.stats = DecodeStats()

    @abstractmethod
    def open(self) -> None:
        """Connect; raises :class:`SourceError` when that is impossible now."""

    @abstractmethod
    def read(self, timeout: float) -> list[Sample]:
        """Samples received within ``timeout`` s; raises :class:`SourceLost` or :class:`EndOfStream`."""

    def close(self) -> None:  # noqa: B027  (nothing to release by default)
        """Disconnect (idempotent)."""


class PortSource(Source):
    """A device on a pyserial URL: a :class:`~gaitedge.protocol.transport.SerialLink` plus a :class:`Decoder`.

    With a :class:`TextLineDecoder` this reads text lines, with a
    :class:`SamplesFrameDecoder` binary SAMPLES frames.
    """

    live = True

    def __init__(self, url: str, decoder: Decoder, baudrate: int = 115200) -> None:
        super().__init__()
        self.transport = SerialLink(url, baudrate)
        self.decoder = decoder
        self.stats = decoder.stats
        self.description = url

    @classmethod
    def text_lines(cls, url: str, cmap: ColumnMap, baudrate: int = 115200) -> "PortSource":
        """A text-line source whose layout a :class:`ColumnMap` describes."""
        return cls(url, TextLineDecoder(LineParser.for_columns(cmap), source=url), baudrate)

    @classmethod
    def samples_frames(
        cls, url: str, cmap: ColumnMap, lsb: Sequence[float] | np.ndarray | None = None, baudrate: int = 115200
    ) -> "PortSource":
        """A source of binary SAMPLES frames whose channels a :class:`ColumnMap` names
        (:meth:`ColumnMap.for_frames`); ``lsb`` as in :class:`SamplesFrameDecoder`."""
        return cls(url, SamplesFrameDecoder(cmap.n_fields, lsb, source=url), baudrate)

    def open(self) -> None:
        try:
            self.transport.open()
        except LinkError as exc:
            raise SourceError(str(exc)) from None
        self.decoder.reset()

    def read(self, timeout: float) -> list[Sample]:
        try:
            data = self.transport.read(timeout)
        except LinkLost as exc:
            raise SourceLost(exc.reason) from None
        if not data:
            return []
        return self.decoder.feed(data, time.perf_counter())

    def close(self) -> None:
        self.transport.close()


class ReplaySource(Source):
    """Replay a recording's samples at ``speed`` times its rate (``speed <= 0``: as fast as possible).

    Sample ``i`` carries ``t = i / rate_hz`` and counter ``i``; its fields are
    the recording's channels.  The clock starts at :meth:`open`.  ``chunk``
    bounds the samples returned by one :meth:`read`.
    """

    live = False

    def __init__(self, rec: Recording, speed: float = 1.0, chunk: int = 256) -> None:
        super().__init__()
        if not (math.isfinite(speed) or speed == math.inf):
            raise DataError(f"--speed must be a number, got {speed}")
        self.rec = rec
        self.speed = float(speed)
        self.chunk = max(1, int(chunk))
        self.description = rec.source or rec.name
        self.field_names = tuple(rec.channels)
        self._i = 0
        self._t0: float | None = None

    @property
    def rate_hz(self) -> float:
        return self.rec.rate_hz

    def open(self) -> None:
        if self._t0 is None:
            self._t0 = time.perf_counter()

    def read(self, timeout: float) -> list[Sample]:
        n = len(self.rec)
        if self._i >= n:
            raise EndOfStream()
        if self._t0 is None:
            self.open()
        now = time.perf_counter()
        if self.speed <= 0 or self.speed == math.inf:
            stop = min(n, self._i + self.chunk)
        else:
            step = 1.0 / (self.rec.rate_hz * self.speed)
            due = int((now - self._t0) / step) + 1
            if due <= self._i:
                wait = self._t0 + self._i * step - now
                time.sleep(max(0.0, min(wait, timeout)))
                return []
            stop = min(n, due, self._i + self.chunk)
        sig = self.rec.signals
        rate = self.rec.rate_hz
        out = [Sample(sig[i], i / rate, i, now) for i in range(self._i, stop)]
        self._i = stop
        self.stats.samples += len(out)
        return out


def load_replay(spec: str, index: int = 0, other_foot: bool = False) -> Recording:
    """One recording to replay: a CSV file (``time``/``t`` and ``label`` columns used if
    present) or any data spec :func:`gaitedge.data.load_spec` understands
    (recording ``index`` of those it yields)."""
    from gaitedge.data.csvload import load_csv
    from gaitedge.data.spec import load_spec

    p = Path(spec)
    if p.suffix.lower() == ".csv" and "?" not in spec and not spec.startswith("csv:"):
        if not p.is_file():
            raise SourceError(f"{p}: file not found")
        head = ""
        with p.open(encoding="utf-8", errors="replace") as fh:
            for line in fh:
                if line.strip() and not line.lstrip().startswith("#"):
                    head = line
                    break
        delim = max((",", ";", "\t"), key=head.count)
        cols = [h.strip() for h in head.split(delim)]
        tcol = next((c for c in ("time", "t", "timestamp", "t_s") if c in cols), None)
        lcol = "label" if "label" in cols else None
        return load_csv(p, time_column=tcol, label_column=lcol)
    recs = load_spec(spec, other_foot=other_foot)
    if not recs:
        raise SourceError(f"{spec}: no recordings")
    if not 0 <= index < len(recs):
        raise SourceError(f"{spec}: recording index {index} out of range (it has {len(recs)})")
    return recs[index]
