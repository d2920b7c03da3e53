"""A virtual IMU board: serves a recording as text lines or binary frames on a pty or a TCP port.

``gaitedge imu-sim --replay FILE --listen pty`` opens a pseudo-terminal
(:func:`os.openpty`) and prints the path of its slave side, which any serial
program (``gaitedge stream --port /dev/pts/N``) opens like a USB serial board;
``--listen tcp:PORT`` listens on 127.0.0.1:PORT instead (``--port
socket://127.0.0.1:PORT``).  The first line on stdout is always the URL to
give ``--port``.

Each sample goes out as one line ``t,<channels>`` (``seq,t,<channels>`` with
``counter``): ``t`` in s with 6 decimals, values with 9 significant digits so
that float32 samples arrive bit-exact.  With ``format="frames"`` the board
sends binary SAMPLES frames of the wire protocol instead
(``gaitedge/csrc/PROTOCOL.md``): int16 sensor counts
(``floor(value / lsb + 0.5)``, saturated, as ``QuantModel.to_counts``), up to
``frame_samples`` samples per frame, the frame's sequence number being the
index of its first sample modulo 65536 (read them with
:class:`~gaitedge.stream.sources.SamplesFrameDecoder`).  The board behaves
like real hardware:

* its clock starts when the first client connects (after ``settle_s``, so the
  port's open-time input flush cannot eat the first line); while no client is
  connected the clock runs on and those samples are lost;
* ``speed`` scales its rate (``speed <= 0``: as fast as the reader takes them);
  ``loop`` repeats the recording with the clock running on;
* fault injection: ``garbage`` (probability per line or frame of an extra
  garbage line or run of garbage bytes, no sample lost), ``corrupt``
  (probability per line or frame of mangling one of its bytes, its samples
  lost; a mangled frame fails its CRC or framing check), bursts (every
  ``burst_every_s`` s of stream time the board stalls for ``burst_size``
  samples, then sends them in one write), and ``unplugs``
  (``(at_s, for_s)`` in stream time: the port disappears, so a pty's master and
  ``link`` are removed or a TCP listener closed, and comes back ``for_s``
  stream seconds later; samples meanwhile are lost).

With a pty, ``link`` keeps a symbolic link pointing at the current slave, the
stable path a reader reconnects to after a simulated unplug (like
``/dev/serial/by-id/...`` for real USB boards).
"""

from __future__ import annotations

import fcntl
import math
import os
import random
import select
import socket
import struct
import termios
import threading
import time
import tty
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from gaitedge.data.recording import Recording
from gaitedge.errors import DataError
from gaitedge.protocol.framing import MAX_PAYLOAD, encode_frame
from gaitedge.protocol.messages import SAMPLES, encode_samples

GARBAGE_CHARS = b"ZQ?!@$%^&*()[]{}<>|~abcdefghijk XYZ;:\xff\xfe\x80\x01\x7f"
MANGLE_CHARS = b"?Zx!\xff"


@dataclass
class SimStats:
    """What the virtual board did."""

    #: samples written (as lines or in frames).
    sent: int = 0
    #: SAMPLES frames written (``format="frames"``).
    frames: int = 0
    #: extra garbage lines (or runs of garbage bytes between frames) written.
    garbage: int = 0
    #: sample lines or frames written mangled (their samples are lost).
    corrupted: int = 0
    #: samples never written (no client, unplugged).
    lost: int = 0
    bursts: int = 0
    unplugs: int = 0
    connections: int = 0


class PtyPort:
    """The board side of a pseudo-terminal, optionally behind a stable symbolic link ``link``.

    :meth:`unplug` closes the master and removes the link (the device vanishes
    for its reader); :meth:`plug` opens a new pty and points the link at it.
    """

    def __init__(self, link: str | Path | None) -> None:
        self.link = Path(link) if link else None
        self.master = -1
        self.path = ""
        self.plug()

    @property
    def url(self) -> str:
        return str(self.link) if self.link else self.path

    def plug(self) -> None:
        m, s = os.openpty()
        tty.setraw(s)
        self.path = os.ttyname(s)
        os.close(s)
        self.master = m
        if self.link is not None:
            tmp = self.link.with_name(self.link.name + ".tmp")
            try:
                tmp.unlink()
            except FileNotFoundError:
                pass
            os.symlink(self.path, tmp)
            os.replace(tmp, self.link)

    def unplug(self) -> None:
        if self.link is not None:
            try:
                self.link.unlink()
            except FileNotFoundError:
                pass
        if self.master >= 0:
            os.close(self.master)
            self.master = -1

    def client_present(self) -> bool:
        if self.master < 0:
            return False
        p = select.poll()
        p.register(self.master, select.POLLHUP)
        return not any(ev & select.POLLHUP for _, ev in p.poll(0))

    def wait_client(self, timeout: float) -> bool:
        end = time.monotonic() + timeout
        while True:
            if self.client_present():
                return True
            if time.monotonic() >= end:
                return False
            time.sleep(0.01)

    def send(self, data: bytes) -> bool:
        """Write ``data`` whole when a reader is there; False when none is or the pty is gone."""
        if not self.client_present():
            return False
        return self.write_all(data)

    def write_all(self, data: bytes) -> bool:
        """Write ``data`` whole, reader or not; False when the pty is gone."""
        view = memoryview(data)
        try:
            while view:
                n = os.write(self.master, view)
                view = view[n:]
        except OSError:
            return False
        return True

    def drain(self, timeout: float = 2.0) -> None:
        """Wait until the reader has taken everything written (pending input dies with the master)."""
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)
        except OSError:
            return
        try:
            end = time.monotonic() + timeout
            empty = 0
            while time.monotonic() < end and self.client_present() and empty < 3:
                time.sleep(0.02)
                n = struct.unpack("I", fcntl.ioctl(fd, termios.FIONREAD, b"\0\0\0\0"))[0]
                empty = empty + 1 if n == 0 else 0
        finally:
            os.close(fd)

    def close(self) -> None:
        self.unplug()


class _TcpPort:
    """A TCP listener on 127.0.0.1 serving one client at a time."""

    def __init__(self, port: int) -> None:
        self.port = int(port)
        self.listener: socket.socket | None = None
        self.conn: socket.socket | None = None
        self.plug()

    @property
    def url(self) -> str:
        return f"socket://127.0.0.1:{self.port}"

    def plug(self) -> None:
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", self.port))
        except OSError as exc:
            s.close()
            raise DataError(f"imu-sim: cannot listen on 127.0.0.1:{self.port} ({exc.strerror or exc})") from None
        s.listen(1)
        self.port = s.getsockname()[1]
        self.listener = s

    def _drop(self) -> None:
        if self.conn is not None:
            try:
                self.conn.close()
            except OSError:
                pass
            self.conn = None

    def unplug(self) -> None:
        self._drop()
        if self.listener is not None:
            self.listener.close()
            self.listener = None

    def client_present(self) -> bool:
        c = self.conn
        if c is None:
            return False
        try:
            r, _, _ = select.select([c], [], [], 0)
            if r and not c.recv(4096):
                self._drop()
                return False
        except OSError:
            self._drop()
            return False
        return True

    def wait_client(self, timeout: float) -> bool:
        if self.client_present():
            return True
        if self.listener is None:
            return False
        r, _, _ = select.select([self.listener], [], [], timeout)
        if not r:
            return False
        conn, _ = self.listener.accept()
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.conn = conn
        return True

    def send(self, data: bytes) -> bool:
        if self.conn is None:
            return False
        try:
            self.conn.sendall(data)
        except OSError:
            self._drop()
            return False
        return True

    def drain(self, timeout: float = 2.0) -> None:
        if self.conn is not None:
            try:
                self.conn.shutdown(socket.SHUT_WR)
                self.conn.settimeout(timeout)
                while self.conn.recv(4096):
                    pass
            except OSError:
                pass

    def close(self) -> None:
        self.unplug()


class ThreadedServer:
    """The lifecycle of a simulator that serves from a background thread.

    A subclass provides :meth:`open` (create the port or outlet; returns what a
    reader connects to), :meth:`serve` (runs until the end or :meth:`stop`) and
    :meth:`_release` (free the port or outlet once serving has ended).
    """

    #: name of the serving thread
    thread_name = "imu-sim"

    def __init__(self) -> None:
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def open(self) -> str:
        raise NotImplementedError

    def serve(self) -> None:
        raise NotImplementedError

    def _release(self) -> None:
        """Free what :meth:`open` created."""

    def start(self) -> str:
        """Open and serve in a background thread; returns what :meth:`open` returns."""
        where = self.open()
        self._thread = threading.Thread(target=self.serve, name=self.thread_name, daemon=True)
        self._thread.start()
        return where

    def stop(self) -> None:
        """Ask :meth:`serve` to end (returns at once)."""
        self._stop.set()

    def join(self, timeout: float | None = None) -> bool:
        """Wait for the serving thread; True when it has ended."""
        if self._thread is None:
            return True
        self._thread.join(timeout)
        return not self._thread.is_alive()

    def close(self) -> None:
        """Stop, wait up to 5 s for the thread, release the port or outlet."""
        self.stop()
        self.join(5.0)
        self._release()


class ImuSim(ThreadedServer):
    """Serve ``rec`` like an IMU board on ``listen`` (``pty`` or ``tcp:PORT``; PORT 0 picks a free one).

    See the module docstring for the behaviour and the options; times are in
    s of stream time unless named wall time.  :meth:`open` creates the port and
    returns the URL for ``--port``; :meth:`serve` runs the board until the
    recording ends (not with ``loop``; the board then switches off: the port
    closes once the reader has taken every line) or :meth:`stop`; :meth:`start`
    does both in a thread.
    """

    def __init__(
        self,
        rec: Recording,
        listen: str = "pty",
        speed: float = 1.0,
        loop: bool = False,
        link: str | Path | None = None,
        counter: bool = False,
        garbage: float = 0.0,
        corrupt: float = 0.0,
        burst_every_s: float = 0.0,
        burst_size: int = 0,
        unplugs: Sequence[tuple[float, float]] = (),
        seed: int = 0,
        settle_s: float = 0.5,
        format: str = "text",
        lsb: Sequence[float] | dict[str, float] | None = None,
        frame_samples: int = 1,
    ) -> None:
        if len(rec) == 0:
            raise DataError(f"{rec.source}: nothing to replay (0 samples)")
        if listen != "pty" and not listen.startswith("tcp:"):
            raise DataError(f"--listen {listen!r}: use pty or tcp:PORT")
        if listen.startswith("tcp:"):
            try:
                port = int(listen[4:])
            except ValueError:
                raise DataError(f"--listen {listen!r}: PORT must be a number") from None
            if not 0 <= port < 65536:
                raise DataError(f"--listen {listen!r}: PORT must be 0..65535")
        for p, name in ((garbage, "garbage"), (corrupt, "corrupt")):
            if not 0.0 <= p <= 1.0:
                raise DataError(f"--{name} must be a probability in 0..1, got {p}")
        if listen == "pty" and unplugs and link is None:
            raise DataError("a simulated unplug on a pty needs --link PATH (the stable path a reader reopens)")
        if format not in ("text", "frames"):
            raise DataError(f"--format {format!r}: use text or frames")
        if counter and format == "frames":
            raise DataError("--counter applies to text lines; frames carry their sample counter as the sequence number")
        max_fs = (MAX_PAYLOAD - 4) // (2 * rec.signals.shape[1])
        if not 1 <= frame_samples <= max_fs:
            raise DataError(f"--frame-samples must be 1..{max_fs} for {rec.signals.shape[1]} channels, "
                            f"got {frame_samples}")
        self.rec = rec
        self.listen = listen
        self.speed = float(speed)
        self.loop = loop
        self.link = link
        self.counter = counter
        self.garbage = float(garbage)
        self.corrupt = float(corrupt)
        self.burst_every = max(0, int(round(burst_every_s * rec.rate_hz))) if burst_size > 0 else 0
        self.burst_size = int(burst_size)
        self.unplugs = sorted((int(round(a * rec.rate_hz)), max(0.0, float(d))) for a, d in unplugs)
        self.settle_s = settle_s
        self.stats = SimStats()
        self._rng = random.Random(seed)
        super().__init__()
        self._port: PtyPort | _TcpPort | None = None
        self.url = ""
        self.format = format
        self.frame_samples = int(frame_samples)
        self.lsb: np.ndarray | None = None
        self._counts: np.ndarray | None = None
        self._body: list[bytes] = []
        if format == "frames":
            self.lsb = sensor_lsb(rec.channels, rec.units, lsb)
            q = np.floor(np.asarray(rec.signals, np.float64) / self.lsb[None, :] + 0.5)
            self._counts = np.clip(q, -32768, 32767).astype(np.int16)
        else:
            self._body = [
                b"," + b",".join(f"{float(v):.9g}".encode() for v in row) + b"\n" for row in rec.signals
            ]

    # -- lifecycle -------------------------------------------------------------------------

    def open(self) -> str:
        """Create the port; returns the URL a reader opens."""
        if self._port is None:
            self._port = PtyPort(self.link) if self.listen == "pty" else _TcpPort(int(self.listen[4:]))
            self.url = self._port.url
        return self.url

    def _release(self) -> None:
        if self._port is not None:
            self._port.close()

    # -- lines -----------------------------------------------------------------------------

    def _line(self, i: int) -> bytes:
        n = len(self.rec)
        t = f"{i / self.rec.rate_hz:.6f}".encode()
        head = f"{i},".encode() + t if self.counter else t
        return head + self._body[i % n]

    def _garbage_line(self) -> bytes:
        rng = self._rng
        k = rng.randint(4, 60)
        body = bytes(rng.choice(GARBAGE_CHARS) for _ in range(k))
        return b"Z" + body.replace(b"\n", b"?").replace(b"\r", b"?") + b"\n"

    def _mangle(self, line: bytes) -> bytes:
        rng = self._rng
        body = line[:-1]
        if rng.random() < 0.5 and body.count(b",") >= 1:
            cut = body.rfind(b",")
            return body[: rng.randint(1, cut)] + b"\n"
        pos = rng.randint(1, len(body) - 1)
        return body[:pos] + bytes([rng.choice(MANGLE_CHARS)]) + body[pos + 1 :] + b"\n"

    def _garbage_bytes(self) -> bytes:
        rng = self._rng
        return bytes(rng.randint(1, 255) for _ in range(rng.randint(4, 60)))

    def _mangle_frame(self, frame: bytes) -> bytes:
        rng = self._rng
        pos = rng.randint(1, len(frame) - 2)
        new = rng.choice([b for b in range(1, 256) if b != frame[pos]])
        return frame[:pos] + bytes([new]) + frame[pos + 1 :]

    def _frames(self, start: int, stop: int, first: bool) -> bytes:
        counts = self._counts
        assert counts is not None
        n = len(counts)
        parts = []
        st = self.stats
        rng = self._rng
        for s0 in range(start, stop, self.frame_samples):
            s1 = min(stop, s0 + self.frame_samples)
            block = counts[s0 % n : s0 % n + (s1 - s0)] if s0 % n + (s1 - s0) <= n else counts[np.arange(s0, s1) % n]
            frame = encode_frame(SAMPLES, s0 % 65536, encode_samples(block))
            if not (first and s0 == start):
                if self.garbage and rng.random() < self.garbage:
                    parts.append(self._garbage_bytes())
                    st.garbage += 1
                if self.corrupt and rng.random() < self.corrupt:
                    frame = self._mangle_frame(frame)
                    st.corrupted += 1
            parts.append(frame)
            st.frames += 1
        st.sent += stop - start
        return b"".join(parts)

    def _chunk(self, start: int, stop: int, first: bool) -> bytes:
        if self.format == "frames":
            return self._frames(start, stop, first)
        parts = []
        st = self.stats
        rng = self._rng
        for i in range(start, stop):
            line = self._line(i)
            if not (first and i == start):
                if self.garbage and rng.random() < self.garbage:
                    parts.append(self._garbage_line())
                    st.garbage += 1
                if self.corrupt and rng.random() < self.corrupt:
                    line = self._mangle(line)
                    st.corrupted += 1
            parts.append(line)
        st.sent += stop - start
        return b"".join(parts)

    # -- the board ---------------------------------------------------------------------------

    def _wait_for_client(self) -> bool:
        port = self._port
        assert port is not None
        while not self._stop.is_set():
            if port.wait_client(0.05):
                self.stats.connections += 1
                if self._stop.wait(self.settle_s):
                    return False
                return True
        return False

    def serve(self) -> SimStats:
        """Run the board (blocking) until the recording ends or :meth:`stop`; returns the counters."""
        self.open()
        port = self._port
        assert port is not None
        st = self.stats
        rate = self.rec.rate_hz
        n = len(self.rec)
        end = math.inf if self.loop else n
        fast = not (self.speed > 0 and math.isfinite(self.speed))
        period = 0.0 if fast else 1.0 / (rate * self.speed)
        unplugs = list(self.unplugs)
        next_burst = self.burst_every if self.burst_every else math.inf
        if not self._wait_for_client():
            return st
        t0 = time.perf_counter()
        i = 0
        first = True

        def due_now() -> int:
            if fast:
                return i + 512
            return int((time.perf_counter() - t0) / period) + 1

        while not self._stop.is_set():
            if i >= end:
                port.drain()
                port.unplug()
                break
            due = min(due_now(), end)
            if unplugs and due > unplugs[0][0]:
                due = max(i, unplugs[0][0])
            if i >= next_burst:
                hold_end = min(next_burst + self.burst_size, end)
                if fast:
                    due = max(due, hold_end)
                elif due < hold_end:
                    time.sleep(min(period * (hold_end - due), 0.01))
                    continue
                st.bursts += 1
                next_burst += self.burst_every
            elif due > next_burst:
                due = next_burst
            if due <= i:
                if unplugs and i >= unplugs[0][0]:
                    at, dur = unplugs.pop(0)
                    i = self._unplug(at, dur, due_now)
                    first = True
                    continue
                time.sleep(min(period, 0.005))
                continue
            if port.send(self._chunk(i, int(due), first)):
                first = False
                i = int(due)
                continue
            # the client went away: the board keeps sampling, the samples are lost
            st.sent -= int(due) - i
            if not self._wait_for_client():
                break
            new_i = max(i, min(due_now(), end)) if not fast else i
            st.lost += new_i - i
            i = new_i
            first = True
        return st

    def _unplug(self, at: int, dur: float, due_now) -> int:
        """Simulate pulling the cable at sample ``at`` for ``dur`` s of stream time; returns the next sample."""
        port = self._port
        assert port is not None
        st = self.stats
        st.unplugs += 1
        port.unplug()
        wall = dur / self.speed if self.speed > 0 and math.isfinite(self.speed) else dur
        if self._stop.wait(wall):
            return at
        port.plug()
        if not self._wait_for_client():
            return at
        skip = int(round(dur * self.rec.rate_hz))
        nxt = max(at + skip, due_now())
        if not self.loop:
            nxt = min(nxt, len(self.rec))
        st.lost += nxt - at
        return nxt


def sensor_lsb(
    channels: Sequence[str], units: Sequence[str], lsb: Sequence[float] | dict[str, float] | None = None
) -> np.ndarray:
    """Sensor resolution per channel (physical units per count) for sending counts.

    ``lsb``: one value per channel, or a ``{channel: value}`` mapping for some of
    them; the others get the default resolution of their unit (the quantizer's
    ``DEFAULT_LSB``: ±16 g accelerometer, ±2000 dps gyroscope at 16 bit).
    """
    if lsb is not None and not isinstance(lsb, dict):
        out = np.asarray(lsb, np.float64)
        if out.shape != (len(channels),):
            raise DataError(f"{len(out)} sensor resolutions for {len(channels)} channels")
    else:
        given = dict(lsb or {})
        unknown = [c for c in given if c not in channels]
        if unknown:
            raise DataError(f"--lsb names unknown channel(s) {', '.join(unknown)}; channels: {', '.join(channels)}")
        missing = [c for c, u in zip(channels, units) if c not in given]
        defaults: dict[str, float] = {}
        if missing:
            from gaitedge.quant.quantizer import DEFAULT_LSB

            defaults = DEFAULT_LSB
        vals = []
        for c, u in zip(channels, units):
            if c in given:
                vals.append(float(given[c]))
            elif u in defaults:
                vals.append(float(defaults[u]))
            else:
                raise DataError(f"channel {c} has unit {u!r} without a default sensor resolution; "
                                f"give --lsb {c}=UNITS_PER_COUNT")
        out = np.array(vals, np.float64)
    if not (np.isfinite(out).all() and (out > 0).all()):
        raise DataError("sensor resolutions (lsb) must be finite and > 0")
    return out


def parse_unplug(text: str) -> tuple[float, float]:
    """``AT[:FOR]`` (s of stream time; FOR defaults to 1 s) -> (at, for)."""
    at, _, dur = text.partition(":")
    try:
        a = float(at)
        d = float(dur) if dur else 1.0
    except ValueError:
        raise DataError(f"--unplug {text!r}: expected AT[:FOR] in seconds") from None
    if a < 0 or d < 0:
        raise DataError(f"--unplug {text!r}: times must be >= 0")
    return a, d


__all__ = ["ImuSim", "SimStats", "parse_unplug", "sensor_lsb"]
