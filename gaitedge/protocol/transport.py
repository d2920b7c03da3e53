"""The byte link to a board or an IMU: one way to open, read, write and lose a serial port.

Following pyserial's ``serial.threaded``, the *transport* moves bytes and knows
nothing of their meaning; decoders (text lines, SAMPLES frames, protocol
frames) sit on top.  :class:`SerialLink` is the transport of both the
streaming sources (:class:`gaitedge.stream.sources.PortSource`) and the device
client (:class:`gaitedge.device.client.DeviceClient`).

It opens any URL :func:`serial.serial_for_url` accepts (``/dev/ttyUSB0``,
``/dev/pts/3``, ``socket://host:port``, ``rfc2217://...``, ``loop://``), or
takes a port object that is already open (anything with pyserial's ``read``,
``write``, ``timeout`` and ``close``).  Failures are two errors naming the
port: :class:`LinkError` when it cannot be opened, :class:`LinkLost` when an
open link goes away (unplugged, reset, peer closed).
"""

from __future__ import annotations

import re
import select
from pathlib import Path
from typing import Any

from gaitedge.errors import DeviceError

#: seconds a write may block before the link counts as lost
WRITE_TIMEOUT_S = 10.0
#: bytes taken in one read when data is waiting
READ_CHUNK = 1 << 16


class LinkError(DeviceError):
    """A port cannot be opened (missing device, bad URL, busy or forbidden port)."""


class LinkLost(DeviceError):
    """An open port went away; ``reason`` is the system's word for it, without the port name."""

    def __init__(self, url: str, reason: str) -> None:
        super().__init__(f"{url}: {reason}")
        self.url = url
        self.reason = reason


class SerialLink:
    """A byte pipe by pyserial URL (or around an open port object).

    :meth:`read` waits up to ``timeout`` s for data and returns everything that
    has arrived (ports with a file descriptor, POSIX serial and ``socket://``,
    by ``select``; others by a read of one byte with that timeout, then the rest).
    """

    def __init__(self, port: str | Path | Any, baudrate: int = 115200) -> None:
        if isinstance(port, (str, Path)):
            self.url, self._given = str(port), None
        else:
            self.url, self._given = str(getattr(port, "portstr", repr(port))), port
        self.baudrate = int(baudrate)
        self._ser: Any = None
        self._fd: int | None = None

    @property
    def is_open(self) -> bool:
        """Whether :meth:`open` succeeded and :meth:`close` has not been called since."""
        return self._ser is not None

    def open(self) -> None:
        """Open the port (no-op when open); :class:`LinkError` naming the port and the reason."""
        if self._ser is not None:
            return
        if self._given is not None:
            ser = self._given
        else:
            import serial

            try:
                ser = serial.serial_for_url(self.url, baudrate=self.baudrate, timeout=0,
                                            write_timeout=WRITE_TIMEOUT_S)
            except (serial.SerialException, ValueError, OSError) as exc:
                reason = re.sub(r"(?i)(could not open port \S+: |\[Errno -?\d+\] )", "", str(exc)).strip()
                raise LinkError(f"cannot open port {self.url}: {reason or type(exc).__name__}") from None
        fd = None
        try:
            fd = ser.fileno()
        except Exception:  # handlers without a descriptor (loop://, rfc2217://) raise various types
            fd = None
        self._ser, self._fd = ser, fd

    def read(self, timeout: float = 0.1) -> bytes:
        """Bytes received within ``timeout`` s (b'' if none; with ``timeout`` 0, what is already there)."""
        ser = self._ser
        if ser is None:
            raise LinkLost(self.url, "port is closed")
        try:
            if self._fd is not None:
                ready, _, _ = select.select([self._fd], [], [], max(timeout, 0.0))
                if not ready:
                    return b""
                ser.timeout = 0
                return bytes(ser.read(READ_CHUNK))
            ser.timeout = max(timeout, 0.0)
            data = ser.read(1 if timeout > 0 else READ_CHUNK)
            if data and timeout > 0:
                ser.timeout = 0
                data += ser.read(READ_CHUNK)
            return bytes(data)
        except Exception as exc:  # noqa: BLE001  (pyserial handlers raise SerialException, OSError, ValueError, TypeError)
            raise LinkLost(self.url, str(exc).strip() or type(exc).__name__) from None

    def write(self, data: bytes) -> None:
        """Send ``data`` whole; :class:`LinkLost` when the port is gone or blocks past the write timeout."""
        if self._ser is None:
            raise LinkLost(self.url, "port is closed")
        try:
            self._ser.write(data)
        except Exception as exc:  # noqa: BLE001  (as in read)
            raise LinkLost(self.url, f"write failed: {str(exc).strip() or type(exc).__name__}") from None

    def close(self) -> None:
        """Close the port (idempotent; a port that vanished may fail to close, which is ignored)."""
        ser, self._ser, self._fd = self._ser, None, None
        if ser is not None:
            try:
                ser.close()
            except Exception:  # noqa: BLE001  (closing a vanished port fails in handler-specific ways)
                pass
