"""A request/response client for gaitedge firmware on any pyserial port.

Works on anything ``serial.serial_for_url`` opens (``/dev/ttyACM0``,
``socket://127.0.0.1:PORT``, ``rfc2217://...``, ``loop://``) or on an already open
pyserial object.  Every request carries a sequence number; the device echoes it,
so late or stray replies are recognised and dropped.  A request without an answer
within ``timeout`` is sent again (``retries`` times): SAMPLES is safe to repeat
because the device answers a repeated frame from its cache instead of stepping the
model twice.

Typical use::

    with DeviceClient("socket://127.0.0.1:4321") as dev:
        print(dev.info().model_hash)
        res = dev.samples(counts)          # counts [n, channels] int16 -> Results
        res.label, res.event, res.logits
"""

from __future__ import annotations

import random
import struct
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from gaitedge.errors import DeviceError
from gaitedge.protocol import messages as M
from gaitedge.protocol.framing import Frame, FrameDecoder, encode_frame
from gaitedge.protocol.messages import FlashStatus, Info, Nak, Results, Stats
from gaitedge.protocol.transport import LinkLost, SerialLink


class DeviceTimeout(DeviceError):
    """The device did not answer in time (unplugged, wrong port, crashed, busy)."""


class DeviceRestarted(DeviceError):
    """The device started again (BOOT frame) while samples were being processed: its model
    state restarted from zero.  ``results`` holds what was computed before."""

    def __init__(self, msg: str, results=None):
        super().__init__(msg)
        self.results = results


class DeviceNak(DeviceError):
    """The device refused a request; ``nak`` holds its reason."""

    def __init__(self, nak: Nak):
        super().__init__(nak.describe())
        self.nak = nak


@dataclass
class FlashResult:
    slot: str
    generation: int
    model_hash: str
    bytes: int
    seconds: float


class DeviceClient:
    """Client for one device.  ``port``: pyserial URL or an open pyserial object."""

    def __init__(self, port, timeout: float = 2.0, retries: int = 2, baudrate: int = 115200) -> None:
        self.link = SerialLink(port, baudrate)
        self.url = self.link.url
        self.link.open()
        self.timeout = float(timeout)
        self.retries = int(retries)
        self.decoder = FrameDecoder()
        self._seq = random.randint(1, 0xFFFE)
        self._pending: list[Frame] = []
        self._info: Info | None = None
        #: INFO payloads of BOOT frames seen (the device restarted)
        self.boots: list[Info] = []
        self.stale_replies = 0
        self._outstanding: set[int] = set()

    # ---- plumbing ------------------------------------------------------------------------
    def close(self) -> None:
        self.link.close()

    def __enter__(self) -> "DeviceClient":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _next_seq(self) -> int:
        self._seq = self._seq % 0xFFFF + 1  # 1..65535; 0 is for unsolicited frames
        return self._seq

    def _write(self, data: bytes) -> None:
        self.link.write(data)

    def _read_frames(self, until: float) -> list[Frame]:
        """Frames decoded from what arrives before ``until`` (returns as soon as there is one;
        with ``until`` in the past, whatever is already there)."""
        out: list[Frame] = []
        first = True
        while not out:
            left = until - time.monotonic()
            if left <= 0 and not first:
                break
            try:
                data = self.link.read(min(max(left, 0.0), 0.2))
            except LinkLost as exc:
                raise DeviceError(f"{exc} (device reset, crashed or unplugged?)") from None
            first = False
            if data:
                for f in self.decoder.feed(data):
                    if f.type == M.BOOT and f.seq == 0:
                        try:
                            self.boots.append(Info.decode(f.payload))
                        except Exception:
                            pass
                        self._info = None
                        continue
                    out.append(f)
        return out

    def _await(self, seq: int, until: float) -> Frame | None:
        while True:
            for i, f in enumerate(self._pending):
                if f.seq == seq:
                    self._pending.pop(i)
                    return f
            frames = self._read_frames(until)
            if not frames:
                return None
            for f in frames:
                self._pending.append(f)
            # drop replies nobody waits for any more (older requests)
            keep = []
            for f in self._pending:
                if f.seq == seq or self._is_outstanding(f.seq):
                    keep.append(f)
                else:
                    self.stale_replies += 1
            self._pending = keep

    def _is_outstanding(self, seq: int) -> bool:
        return seq in self._outstanding

    def _check(self, req: int, f: Frame) -> bytes:
        if f.type == M.NAK:
            raise DeviceNak(Nak.decode(f.payload))
        if f.type != (req | M.REPLY):
            raise DeviceError(f"{self.url}: {M.type_name(req)} answered with {M.type_name(f.type)}")
        return f.payload

    def request(self, req: int, payload: bytes = b"", timeout: float | None = None,
                retries: int | None = None) -> bytes:
        """Send one request and return the reply payload (retrying on silence)."""
        seq = self._next_seq()
        frame = encode_frame(req, seq, payload)
        tries = 1 + (self.retries if retries is None else retries)
        wait = self.timeout if timeout is None else timeout
        for _ in range(tries):
            self._write(frame)
            f = self._await(seq, time.monotonic() + wait)
            if f is not None:
                return self._check(req, f)
        raise DeviceTimeout(f"{self.url}: no answer to {M.type_name(req)} after {tries} tries "
                            f"({wait:g} s each): is the device connected and running gaitedge firmware?")

    # ---- requests ------------------------------------------------------------------------
    def info(self, refresh: bool = True) -> Info:
        if refresh or self._info is None:
            self._info = Info.decode(self.request(M.INFO))
        return self._info

    def ping(self, data: bytes = b"") -> float:
        """Round-trip time in seconds of a PING carrying ``data`` (echo checked)."""
        t0 = time.perf_counter()
        got = self.request(M.PING, data)
        dt = time.perf_counter() - t0
        if got != data:
            raise DeviceError(f"{self.url}: PING echo differs from what was sent")
        return dt

    def reset(self) -> None:
        """RESET_STATE: zero the model's recurrent state, filter and event detector."""
        self.request(M.RESET_STATE)

    def stats(self, clear: bool = False) -> Stats:
        return Stats.decode(self.request(M.STATS, b"\x01" if clear else b""))

    def reboot(self, wait: float = 5.0) -> Info | None:
        """REBOOT the device; returns the INFO of its BOOT frame (None if none was seen)."""
        n = len(self.boots)
        self.request(M.REBOOT)
        until = time.monotonic() + wait
        while len(self.boots) == n and time.monotonic() < until:
            self._pending += self._read_frames(min(until, time.monotonic() + 0.2))
        self._pending.clear()
        return self.boots[-1] if len(self.boots) > n else None

    def factory_reset(self) -> None:
        """Erase both weight slots and the mounting; the built-in model runs again, unrotated."""
        self.request(M.FACTORY_RESET, timeout=max(self.timeout, 5.0))

    def set_mounting(self, triads) -> M.MountingState:
        """SET_MOUNTING: the device checks, stores (flash) and applies the sensor mounting.

        ``triads``: :class:`gaitedge.quant.mounting.Triad` objects (or ``(channels, rot)``
        pairs: 3 input-channel indices, 9 Q1.14 entries); ``[]`` clears it (identity).  The
        model state restarts, as after :meth:`reset`.  Returns the mounting now in force and
        its flash generation; a refused mounting raises :class:`DeviceNak` (codes
        ``E_MOUNT_*``) and the previous one stays.
        """
        payload = M.MountingState.of(triads).encode()
        return M.MountingState.decode_reply(self.request(M.SET_MOUNTING, payload, timeout=max(self.timeout, 5.0)))

    def mounting(self) -> M.MountingState:
        """GET_MOUNTING: the sensor mounting in force (generation 0: never set, identity)."""
        return M.MountingState.decode_reply(self.request(M.GET_MOUNTING))

    def _frame_samples(self, counts: np.ndarray, batch: int | None) -> tuple[np.ndarray, int]:
        info = self.info(refresh=False)
        c = np.asarray(counts)
        if c.ndim == 1:
            c = c[None, :]
        if c.ndim != 2 or c.shape[1] != info.n_inputs:
            raise DeviceError(f"the device's model takes {info.n_inputs} channels; got samples of shape "
                              f"{tuple(np.shape(counts))}")
        if np.issubdtype(c.dtype, np.floating):
            raise DeviceError("samples must be integer sensor counts (int16), not floats")
        per = info.max_samples if batch is None else max(1, min(int(batch), info.max_samples))
        return c, per

    def samples(self, counts, batch: int | None = None) -> Results:
        """Run ``counts [n, channels]`` (int16 sensor counts) on the device, frame by frame.

        Returns per-sample :class:`~gaitedge.protocol.Results` (label, raw label,
        event, event sample, logits) in order; ``batch`` caps samples per frame.
        """
        c, per = self._frame_samples(counts, batch)
        k = self.info(refresh=False).n_classes
        boots = len(self.boots)
        parts = []
        for s in range(0, len(c), per):
            parts.append(Results.decode(self.request(M.SAMPLES, M.encode_samples(c[s : s + per]))))
            self._check_boots(boots, parts, k)
        return Results.concat(parts, k)

    def _check_boots(self, boots: int, parts: list, k: int) -> None:
        if len(self.boots) != boots:
            raise DeviceRestarted(f"{self.url}: the device restarted while samples were being processed "
                                  f"(model state reset after {sum(len(p) for p in parts)} samples)",
                                  Results.concat(parts, k))

    def stream(self, counts, batch: int | None = None, window: int = 2) -> Results:
        """Like :meth:`samples` with up to ``window`` frames in flight (higher throughput).

        The frames in flight never exceed the device's receive buffer.  A lost reply
        raises :class:`DeviceTimeout` (the device's state is then unknown: reset it).
        """
        info = self.info(refresh=False)
        c, per = self._frame_samples(counts, batch)
        frames = [M.encode_samples(c[s : s + per]) for s in range(0, len(c), per)]
        max_bytes = max(info.rx_buffer - 64, 1)
        results: list[Results] = []
        boots = len(self.boots)
        inflight: list[tuple[int, int]] = []  # (seq, encoded size)
        self._outstanding = set()
        nxt = 0
        try:
            while nxt < len(frames) or inflight:
                while nxt < len(frames) and len(inflight) < max(1, window):
                    seq = self._next_seq()
                    data = encode_frame(M.SAMPLES, seq, frames[nxt])
                    if inflight and sum(n for _, n in inflight) + len(data) > max_bytes:
                        self._seq = (self._seq - 2) % 0xFFFF + 1  # give the number back
                        break
                    self._write(data)
                    inflight.append((seq, len(data)))
                    self._outstanding.add(seq)
                    nxt += 1
                seq, _ = inflight[0]
                f = self._await(seq, time.monotonic() + self.timeout)
                if f is None:
                    raise DeviceTimeout(f"{self.url}: no RESULTS for a SAMPLES frame within {self.timeout:g} s "
                                        f"({sum(len(r) for r in results)} of {len(c)} samples done)")
                inflight.pop(0)
                self._outstanding.discard(seq)
                results.append(Results.decode(self._check(M.SAMPLES, f)))
                self._check_boots(boots, results, info.n_classes)
        finally:
            self._outstanding = set()
        return Results.concat(results, info.n_classes)

    # ---- asynchronous samples (for live pipelines) -----------------------------------------
    def send_samples(self, counts) -> int:
        """Send one SAMPLES frame (at most ``info().max_samples`` samples) without waiting;
        returns its sequence number.  Collect the answers with :meth:`poll_results`.
        Keep the bytes in flight below ``info().rx_buffer``."""
        c, per = self._frame_samples(counts, None)
        if len(c) > per:
            raise DeviceError(f"at most {per} samples per frame (got {len(c)})")
        seq = self._next_seq()
        self._write(encode_frame(M.SAMPLES, seq, M.encode_samples(c)))
        self._outstanding.add(seq)
        return seq

    def poll_results(self, timeout: float = 0.0) -> list[tuple[int, Results]]:
        """``[(seq, Results)]`` of sent SAMPLES frames answered so far, in arrival order
        (waits up to ``timeout`` s for the first one).  A refused frame raises DeviceNak."""
        frames = [f for f in self._pending if f.seq in self._outstanding]
        self._pending = [f for f in self._pending if f.seq not in self._outstanding]
        if not frames:
            frames = self._read_frames(time.monotonic() + timeout)
        out = []
        for f in frames:
            if f.seq not in self._outstanding:
                self.stale_replies += 1
                continue
            self._outstanding.discard(f.seq)
            out.append((f.seq, Results.decode(self._check(M.SAMPLES, f))))
        return out

    @property
    def in_flight(self) -> int:
        """SAMPLES frames sent with :meth:`send_samples` and not answered yet."""
        return len(self._outstanding)

    # ---- weight update -------------------------------------------------------------------
    def flash_status(self) -> FlashStatus:
        return FlashStatus.decode(self.request(M.FLASH_STATUS, timeout=max(self.timeout, 5.0)))

    def flash_begin(self, header: bytes) -> tuple[int, int]:
        """FLASH_BEGIN: (target slot, largest chunk)."""
        p = self.request(M.FLASH_BEGIN, header, timeout=max(self.timeout, 5.0))
        slot, _, max_chunk, _plen = struct.unpack_from("<BBHI", p, 0)
        return slot, max_chunk

    def flash_chunk(self, offset: int, data: bytes) -> int:
        """FLASH_CHUNK: bytes received so far."""
        return struct.unpack_from("<I", self.request(M.FLASH_CHUNK, struct.pack("<I", offset) + bytes(data)))[0]

    def flash_verify(self) -> int:
        return struct.unpack_from("<I", self.request(M.FLASH_VERIFY, timeout=max(self.timeout, 5.0)))[0]

    def flash_commit(self) -> tuple[int, int, str]:
        """FLASH_COMMIT: (slot, generation, model hash)."""
        p = self.request(M.FLASH_COMMIT, timeout=max(self.timeout, 5.0))
        slot, gen, h = struct.unpack_from("<B3xI64s", p, 0)
        return slot, gen, h.decode("ascii", "replace")

    def flash_abort(self) -> None:
        self.request(M.FLASH_ABORT)

    def flash(self, blob, chunk: int | None = None, check_arch: bool = True, progress=None,
              name: str | None = None) -> FlashResult:
        """Send a weights blob (bytes or a file) into the inactive slot, verify it, commit it.

        Any failure before the commit leaves the previously committed weights running
        (the slot written to has no commit record).  ``check_arch=False`` leaves the
        architecture check to the device only.
        """
        from gaitedge.export.packing import HEADER_BYTES, parse_blob

        source = name or "the weights blob"
        if isinstance(blob, (str, Path)):
            source = str(blob)
            try:
                blob = Path(blob).read_bytes()
            except OSError as exc:
                raise DeviceError(f"cannot read {source}: {exc.strerror}") from None
        blob = bytes(blob)
        hdr = parse_blob(blob, source)
        info = self.info()
        if check_arch and hdr.arch_hash.hex() != info.arch_hash:
            raise DeviceError(
                f"{source} is for another model architecture (architecture hash "
                f"{hdr.arch_hash.hex()[:16]}...) than the firmware on {self.url} runs "
                f"({info.arch_hash[:16]}...: {info.family}, {info.n_inputs} inputs, {info.n_classes} classes); "
                "rebuild the firmware for this model with 'gaitedge firmware build'")
        t0 = time.perf_counter()
        payload = blob[HEADER_BYTES:]
        try:
            _slot, max_chunk = self.flash_begin(blob[:HEADER_BYTES])
            step = min(chunk or max_chunk or 512, max_chunk or 512)
            step -= step % 8
            off = 0
            while off < len(payload):
                try:
                    got = self.flash_chunk(off, payload[off : off + step])
                except DeviceNak as exc:
                    if exc.nak.code == M.E_OFFSET and exc.nak.detail < off and exc.nak.detail % 8 == 0:
                        off = exc.nak.detail  # the device lost chunks: resume where it is
                        continue
                    raise
                off = got
                if progress:
                    progress(off, len(payload))
            self.flash_verify()
            slot, gen, h = self.flash_commit()
        except DeviceNak:
            self._try_abort()
            raise
        except DeviceTimeout:
            raise
        if h != hdr.model_hash:
            raise DeviceError(f"after the commit the device reports weights {h[:16]}..., expected "
                              f"{hdr.model_hash[:16]}...")
        self._info = None
        return FlashResult(M.SOURCES.get(slot + 1, str(slot)), gen, h, len(blob), time.perf_counter() - t0)

    def _try_abort(self) -> None:
        try:
            self.request(M.FLASH_ABORT, retries=0, timeout=min(self.timeout, 1.0))
        except DeviceError:
            pass
