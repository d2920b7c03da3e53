"""Talking to gaitedge firmware over a serial link (real board, QEMU or the host build).

- :class:`DeviceClient` — request/response client on any pyserial URL
  (``/dev/ttyACM0``, ``socket://127.0.0.1:PORT``, ...): ``info()``, ``ping()``,
  ``samples(counts)``, ``stream(counts)``, ``reset()``, ``stats()``, ``flash(blob)``,
  ``set_mounting(triads)`` / ``mounting()`` (the sensor mounting, kept in the board's flash).
- :mod:`gaitedge.device.mounting` — a mounting file -> the device's triads.
- :class:`Emulator` — the ``mps2-an386`` board under QEMU, or the host build, on a
  loopback TCP port.
- weights blobs (what ``flash`` sends) are built by :mod:`gaitedge.export.packing`.
"""

from gaitedge.device.client import DeviceClient, FlashResult
from gaitedge.device.emulator import Emulator

__all__ = ["DeviceClient", "Emulator", "FlashResult"]
