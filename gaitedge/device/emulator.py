"""The emulated board: gaitedge firmware under QEMU ``mps2-an386`` or ``netduinoplus2``
(STM32F405), or the host build.

:class:`Emulator` starts the image with its UART on a loopback TCP port, waits for
the firmware's BOOT frame and gives the pyserial URL (``socket://127.0.0.1:PORT``)
for :class:`~gaitedge.device.DeviceClient` or any other pyserial program.

QEMU runs with ``-icount shift=0`` by default: virtual time then follows executed
instructions (1 ns each), so the board's 25 MHz SysTick advances once per 40
instructions and the tick counts the firmware reports in STATS measure
instructions (see ../shared/notes/EMULATOR.md).  The UART is
``tcp:127.0.0.1:PORT,server=on,wait=on,nodelay=on``: nothing runs until a client
connects, and when a client disconnects QEMU waits for the next one.

The QEMU machine follows from the image: an ELF whose entry point lies in the STM32F4
flash (0x0800_0000, ``--board stm32f405``) runs on ``-M netduinoplus2``, where the
first ``-serial`` is USART1 and SysTick counts QEMU's fixed 168 MHz SYSCLK (one tick
per 1/0.168 instructions under ``-icount shift=0``; :func:`instructions_per_tick`
takes the tick rate the firmware reports).
"""

from __future__ import annotations

import shutil
import socket
import struct
import subprocess
import tempfile
import time
from pathlib import Path

from gaitedge.errors import DeviceError
from gaitedge.protocol import messages as M
from gaitedge.protocol.framing import FrameDecoder
from gaitedge.protocol.messages import Info

QEMU = "qemu-system-arm"
MACHINE = "mps2-an386"
#: instructions per SysTick tick under -icount shift=0 on mps2-an386 (1 ns per instruction, 25 MHz)
INSTRUCTIONS_PER_TICK = 40


#: QEMU machine for an ARM image whose entry point lies in this address range
MACHINE_BY_FLASH = (("netduinoplus2", 0x08000000, 0x08100000),)


def instructions_per_tick(tick_hz: int) -> float:
    """Instructions per board tick under ``-icount shift=0`` (1 ns per instruction)."""
    return 1e9 / tick_hz


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def resolve_image(image: str | Path | None) -> Path:
    """An ELF, a host executable, or a folder holding one (a build folder, or RUN/firmware)."""
    if image is None:
        for cand in (Path("firmware.elf"), Path("gaitedge-fw-host")):
            if cand.is_file():
                return cand
        raise DeviceError("no IMAGE given and no firmware.elf here; build one with 'gaitedge firmware build RUN'")
    p = Path(image)
    if p.is_dir():
        for cand in (p / "firmware.elf", p / "firmware" / "firmware.elf", p / "gaitedge-fw-host",
                     p / "firmware" / "gaitedge-fw-host"):
            if cand.is_file():
                return cand
        raise DeviceError(f"{p}: no firmware.elf or gaitedge-fw-host in this folder")
    if not p.is_file():
        raise DeviceError(f"{p}: no such firmware image")
    return p


def _is_elf_for_arm(p: Path) -> bool:
    with open(p, "rb") as f:
        head = f.read(20)
    return head[:4] == b"\x7fELF" and head[18:20] == b"\x28\x00"  # e_machine EM_ARM


def machine_for_image(p: Path) -> str:
    """The QEMU machine an ARM firmware image is linked for (by its ELF entry point)."""
    with open(p, "rb") as f:
        head = f.read(28)
    entry = struct.unpack_from("<I", head, 24)[0] & ~1
    for machine, lo, hi in MACHINE_BY_FLASH:
        if lo <= entry < hi:
            return machine
    return MACHINE


class Emulator:
    """Start / stop one emulated board.

    ``image``: ``firmware.elf`` (QEMU mps2-an386, or netduinoplus2 for an STM32F405
    image) or ``gaitedge-fw-host`` (the host build, run directly).  ``machine``: the
    QEMU machine (default: from the image, :func:`machine_for_image`).  ``flash_file``:
    host build only, the file holding its weight slots (kept across restarts).  Use as a
    context manager or call
    :meth:`start` / :meth:`stop`.
    """

    def __init__(self, image=None, icount: bool = True, flash_file: str | Path | None = None,
                 qemu: str = QEMU, machine: str | None = None, boot_timeout: float = 20.0) -> None:
        self.image = resolve_image(image)
        self.kind = "qemu" if _is_elf_for_arm(self.image) else "host"
        if flash_file and self.kind == "qemu":
            raise DeviceError("a flash file applies to the host build only; under QEMU the weight slots live in the "
                              "emulated flash and survive REBOOT (SYSRESETREQ), not a restart of QEMU")
        self.icount = icount
        self.flash_file = Path(flash_file) if flash_file else None
        self.qemu = qemu
        self.machine = machine or (machine_for_image(self.image) if self.kind == "qemu" else MACHINE)
        self.boot_timeout = boot_timeout
        self.proc: subprocess.Popen | None = None
        self.port: int | None = None
        self.url: str | None = None
        self.boot_info: Info | None = None
        self._log = None

    # ---- lifecycle ---------------------------------------------------------------------
    def command(self, port: int) -> list[str]:
        if self.kind == "host":
            cmd = [str(self.image), "--tcp", str(port)]
            if self.flash_file:
                cmd += ["--flash", str(self.flash_file)]
            return cmd
        cmd = [self.qemu, "-M", self.machine, "-display", "none", "-monitor", "none",
               "-serial", f"tcp:127.0.0.1:{port},server=on,wait=on,nodelay=on", "-kernel", str(self.image)]
        if self.icount:
            cmd += ["-icount", "shift=0"]
        return cmd

    def start(self) -> str:
        """Launch, wait for the BOOT frame; returns the pyserial URL."""
        if self.kind == "qemu" and shutil.which(self.qemu) is None:
            raise DeviceError(f"{self.qemu} not found (apt-get install qemu-system-arm)")
        last = None
        for _ in range(3):  # a port taken between free_port() and bind: try another
            port = free_port() if self.kind == "qemu" else 0
            self._log = tempfile.TemporaryFile()
            self.proc = subprocess.Popen(self.command(port), stdout=subprocess.PIPE if self.kind == "host"
                                         else self._log, stderr=self._log, stdin=subprocess.DEVNULL)
            try:
                if self.kind == "host":
                    port = self._host_port()
                self.port = port
                self.boot_info = self._await_boot(port)
                self.url = f"socket://127.0.0.1:{port}"
                return self.url
            except DeviceError as exc:
                last = exc
                self.stop()
                if "in use" not in str(exc):
                    break
        raise last  # type: ignore[misc]

    def _host_port(self) -> int:
        line = self.proc.stdout.readline().decode(errors="replace").strip()
        if not line.startswith("serial socket://"):
            self.proc.wait(timeout=5)
            raise DeviceError(f"host firmware did not start: {line or self.log()}")
        return int(line.rsplit(":", 1)[1])

    def _await_boot(self, port: int) -> Info:
        """Connect once (which releases QEMU's wait=on), read the BOOT frame, disconnect."""
        until = time.monotonic() + self.boot_timeout
        sock = None
        while sock is None:
            if self.proc.poll() is not None:
                raise DeviceError(f"emulator exited with status {self.proc.returncode}: {self.log()}")
            try:
                sock = socket.create_connection(("127.0.0.1", port), timeout=0.5)
            except OSError:
                if time.monotonic() > until:
                    raise DeviceError(f"emulator did not open port {port}: {self.log()}") from None
                time.sleep(0.05)
        dec = FrameDecoder()
        try:
            sock.settimeout(0.2)
            while time.monotonic() < until:
                try:
                    data = sock.recv(4096)
                except socket.timeout:
                    if self.proc.poll() is not None:
                        break
                    continue
                if not data:
                    break
                for f in dec.feed(data):
                    if f.type == M.BOOT:
                        return Info.decode(f.payload)
        finally:
            sock.close()
        raise DeviceError(f"no BOOT frame from the firmware within {self.boot_timeout:g} s: {self.log()}")

    def log(self) -> str:
        """What the emulator printed (stderr; QEMU reports crashes such as 'Lockup' here)."""
        if self._log is None:
            return ""
        try:
            self._log.seek(0)
            text = self._log.read().decode(errors="replace").strip()
        except (OSError, ValueError):
            return ""
        return text[-2000:] or "(no output)"

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self) -> None:
        p = self.proc
        if p is not None and p.poll() is None:
            p.terminate()
            try:
                p.wait(timeout=5)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(timeout=5)
        if p is not None and p.stdout:
            p.stdout.close()

    def kill(self) -> None:
        """Hard stop (power cut): no chance for the firmware to finish anything."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=5)
        self.stop()

    def client(self, **kw):
        from gaitedge.device.client import DeviceClient

        if self.url is None:
            raise DeviceError("emulator not started")
        return DeviceClient(self.url, **kw)

    def __enter__(self) -> "Emulator":
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


def emulator_missing() -> list[str]:
    return [t for t in (QEMU,) if shutil.which(t) is None]


__all__ = ["Emulator", "INSTRUCTIONS_PER_TICK", "free_port", "instructions_per_tick", "machine_for_image",
           "resolve_image", "emulator_missing"]
