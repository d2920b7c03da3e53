"""``gaitedge firmware``, ``device`` and ``flash``: firmware images and boards.

    gaitedge firmware build RUN [--board mps2-an386|stm32f405|stm32f405-chip|host] [--out DIR]
    gaitedge device emulate [IMAGE] [--no-icount] [--flash FILE]
    gaitedge device info URL
    gaitedge device mounting --port URL [FILE | --identity] [--foot left|right]
    gaitedge flash RUN|BLOB --port URL        (weights over serial)
    gaitedge flash IMAGE.elf --probe [--target T]   (whole image through a debug probe, pyOCD)
"""

from __future__ import annotations

import argparse
import signal
import sys
import time
from pathlib import Path

from gaitedge.errors import DeviceError
from gaitedge.rundir import run_folder


def cmd_firmware_build(args: argparse.Namespace) -> int:
    from gaitedge.firmware import build_firmware
    from gaitedge.firmware.build import QEMU_MACHINES

    out = Path(args.out) if args.out else run_folder(args.run) / (
        "firmware" if args.board == "mps2-an386" else f"firmware-{args.board}")
    res = build_firmware(args.run, out, board=args.board, log=lambda m: print(m, file=sys.stderr))
    print(res.summary())
    if args.board in QEMU_MACHINES:
        print(f"\nrun it:   gaitedge device emulate {res.image}")
    return 0


def cmd_device_emulate(args: argparse.Namespace) -> int:
    from gaitedge.device.emulator import Emulator

    emu = Emulator(args.image, icount=not args.no_icount, flash_file=args.flash)
    url = emu.start()
    info = emu.boot_info
    print(f"{'QEMU ' + emu.machine if emu.kind == 'qemu' else 'host build'} running {emu.image}")
    print(f"  firmware {info.fw_version}, {info.family} {info.n_inputs} inputs -> {', '.join(info.classes)}, "
          f"weights {info.source} {info.model_hash[:16]}...")
    print(f"serial port (pyserial URL): {url}")
    print(f"  e.g.  gaitedge device info {url}")
    print("Ctrl-C stops the board.", flush=True)
    # Ctrl-C stops the board even when this process was started with SIGINT ignored
    # (a background job of a non-interactive shell), as `gaitedge stream` does
    old_handler = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        while emu.alive():
            time.sleep(0.5)
        print(f"gaitedge: error: the emulator stopped: {emu.log()}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("stopping", file=sys.stderr)
        return 0
    finally:
        signal.signal(signal.SIGINT, old_handler)
        emu.stop()


def cmd_device_info(args: argparse.Namespace) -> int:
    from gaitedge.device.client import DeviceClient

    with DeviceClient(args.url, timeout=args.timeout) as dev:
        info = dev.info()
        rtt = dev.ping(b"gaitedge")
        st = dev.stats()
        fs = dev.flash_status()
        mount = _query_mounting(dev)
    print(f"board {info.board}, firmware {info.fw_version}, protocol {info.proto_version}")
    print(f"model {info.family}: {info.n_inputs} channels ({', '.join(info.channels)}) -> "
          f"{', '.join(info.classes)}; {info.rate_hz:g} Hz, delay {info.delay}, debounce {info.min_run}")
    print(f"weights {info.source}" + (f" (generation {info.generation})" if info.generation else "")
          + f", sha256 {info.model_hash}")
    print(f"architecture {info.arch_hash}")
    for k, s in enumerate(fs.slots):
        print(f"  slot {'AB'[k]}: " + (f"generation {s.generation}, {s.model_hash[:16]}..." if s.valid else "empty"))
    for line in _mounting_lines(mount, info.channels):
        print(line)
    print(f"limits: {info.max_samples} samples per frame, payload {info.max_payload} B, receive buffer "
          f"{info.rx_buffer} B, flash chunk {info.max_chunk} B")
    print(f"ping {rtt * 1e3:.1f} ms; frames ok {st.frames_ok}, CRC errors {st.crc_errors}, framing errors "
          f"{st.framing_errors}, oversize {st.oversize}, overruns {st.overruns}, steps {st.steps}"
          + (f", {st.ticks_per_step:.1f} ticks/step at {st.tick_hz} Hz" if st.steps_timed else ""))
    return 0


def _query_mounting(dev):
    """The device's mounting, or None when its firmware has no GET_MOUNTING."""
    from gaitedge.device.client import DeviceNak
    from gaitedge.protocol import messages as M

    try:
        return dev.mounting()
    except DeviceNak as exc:
        if exc.nak.code == M.E_TYPE:
            return None
        raise


def _mounting_lines(mount, channels: list[str]) -> list[str]:
    """``mounting ...`` lines of ``device info`` / ``device mounting``."""
    if mount is None:
        return ["mounting: not supported by this firmware"]
    if not mount.triads or mount.identity:
        what = "none (sensor frame used as is)"
        return [f"mounting: {what}" + (f", generation {mount.generation}" if mount.generation else "")]
    lines = [f"mounting (generation {mount.generation}): {len(mount.triads)} triads, Q1.14"]
    for ch, rot in mount.triads:
        names = ", ".join(channels[c] if c < len(channels) else str(c) for c in ch)
        rows = "; ".join(" ".join(f"{v / 16384:+.4f}" for v in rot[3 * i : 3 * i + 3]) for i in range(3))
        lines.append(f"  {names}: [{rows}]")
    return lines


def cmd_device_mounting(args: argparse.Namespace) -> int:
    from gaitedge.device.client import DeviceClient
    from gaitedge.device.mounting import read_mounting_file, triads_for_channels

    if args.file and args.identity:
        raise DeviceError("give a mounting FILE or --identity, not both")
    if args.file and args.file.strip().lower() == "auto":
        # estimated from a recording of the board's own sensors, before the port is opened
        from gaitedge.data.mounting import estimate_mounting
        from gaitedge.data.spec import load_spec

        if not args.data:
            raise DeviceError("auto needs --data SPEC: a recording of these sensors with standing and walking")
        mounting, per = estimate_mounting(load_spec(args.data, other_foot=True))
        print(f"mounting estimated from {len(per)} recording(s) of {args.data}:")
        print(mounting.describe())
        sensors = {name: sm.matrix for name, sm in mounting.sensors.items()}
    else:
        sensors = read_mounting_file(args.file) if args.file else None  # errors before the port is opened
    with DeviceClient(args.port, timeout=args.timeout) as dev:
        info = dev.info()
        if sensors is not None:
            triads, text = triads_for_channels(list(info.channels), sensors, args.foot)
            if not triads:
                raise DeviceError(f"{args.file}: no sensor of the file matches the device's channels "
                                  f"({', '.join(info.channels)}) with the board on the {args.foot} foot")
            mount = dev.set_mounting(triads)
            print(f"set the mounting of {args.file} on {info.board} (board on the {args.foot} foot): "
                  + "; ".join(text))
        elif args.identity:
            mount = dev.set_mounting([])
            print(f"cleared the mounting of {info.board}")
        else:
            mount = _query_mounting(dev)
    for line in _mounting_lines(mount, list(info.channels)):
        print(line)
    return 0


def _flash_probe(args: argparse.Namespace) -> int:
    path = Path(args.source)
    if not path.is_file():
        raise DeviceError(f"{path}: no such image (build one with 'gaitedge firmware build RUN')")
    try:
        from pyocd.core.helpers import ConnectHelper
        from pyocd.flash.file_programmer import FileProgrammer
    except ImportError:
        raise DeviceError("--probe needs pyOCD (pip install pyocd) and a debug probe (CMSIS-DAP, ST-Link, "
                          "J-Link) connected to the board") from None
    opts = {"target_override": args.target} if args.target else {}
    session = ConnectHelper.session_with_chosen_probe(blocking=False, **opts)
    if session is None:
        raise DeviceError("no debug probe found (pyOCD lists none)")
    with session:
        FileProgrammer(session).program(str(path))
        session.board.target.reset()
    print(f"programmed {path} through {session.probe.description}")
    return 0


def cmd_flash(args: argparse.Namespace) -> int:
    from gaitedge.export.packing import BLOB_MAGIC, build_blob
    from gaitedge.device.client import DeviceClient
    from gaitedge.quant.workflow import load_quant_model

    if args.probe:
        return _flash_probe(args)
    if not args.port:
        raise DeviceError("--port URL is needed (e.g. /dev/ttyACM0 or socket://127.0.0.1:PORT), or --probe "
                          "to program an ELF through a debug probe")
    src = Path(args.source)
    if src.is_file() and src.read_bytes()[:4] == BLOB_MAGIC:
        blob, what = src.read_bytes(), str(src)
    elif src.is_file() and src.read_bytes()[:4] == b"\x7fELF":
        raise DeviceError(f"{src} is a firmware image: over serial only weights are flashed (give RUN or a "
                          ".blob); a whole image needs --probe (pyOCD and a debug probe)")
    else:
        qm = load_quant_model(src, log=lambda m: print(m, file=sys.stderr))
        blob, what = build_blob(qm), f"{src} (weights {qm.weights_hash()[:16]}...)"
    last = [-1]

    def progress(done: int, total: int) -> None:
        pct = 100 * done // max(total, 1)
        if pct // 10 != last[0]:
            last[0] = pct // 10
            print(f"\r  {done}/{total} bytes", end="", file=sys.stderr, flush=True)

    with DeviceClient(args.port, timeout=args.timeout) as dev:
        res = dev.flash(blob, chunk=args.chunk, progress=progress, name=what)
    print(file=sys.stderr)
    print(f"flashed {what}: {res.bytes} B into {res.slot} (generation {res.generation}) in {res.seconds:.2f} s; "
          f"the board now runs weights {res.model_hash[:16]}...")
    return 0


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register ``firmware``, ``device`` and ``flash`` on the top-level subparsers."""
    fw = sub.add_parser("firmware", help="firmware images with a model compiled in")
    fsub = fw.add_subparsers(dest="firmware_command", required=True)
    b = fsub.add_parser("build", help="build firmware (ELF + BIN, or the host program) for a run's model")
    b.add_argument("run", help="run directory (quant.npz is used if present), model.pt or quant.npz")
    b.add_argument("--board", choices=["mps2-an386", "stm32f405", "stm32f405-chip", "host"], default="mps2-an386",
                   help="mps2-an386 (Cortex-M4, QEMU), stm32f405 (QEMU netduinoplus2, weight slots in RAM), "
                        "stm32f405-chip (a real STM32F405, slots in flash) or host (POSIX test build); "
                        "default mps2-an386")
    b.add_argument("--out", help="output folder (default RUN/firmware)")
    b.set_defaults(func=cmd_firmware_build)

    dv = sub.add_parser("device", help="emulated board and device queries")
    dsub = dv.add_subparsers(dest="device_command", required=True)
    em = dsub.add_parser("emulate", help="run firmware on the emulated board (QEMU mps2-an386, or netduinoplus2 for "
                                             "an stm32f405 image) and print its URL")
    em.add_argument("image", nargs="?", help="firmware.elf, the host build, or a folder holding one "
                                             "(default: ./firmware.elf)")
    em.add_argument("--no-icount", action="store_true", help="real-time QEMU instead of -icount shift=0")
    em.add_argument("--flash", help="host build only: file that keeps the weight slots across restarts")
    em.set_defaults(func=cmd_device_emulate)
    di = dsub.add_parser("info", help="identity, model, slots and counters of a device")
    di.add_argument("url", help="pyserial URL: /dev/ttyACM0, socket://127.0.0.1:PORT, ...")
    di.add_argument("--timeout", type=float, default=2.0, help="seconds per request (default 2)")
    di.set_defaults(func=cmd_device_info)
    dm = dsub.add_parser("mounting", help="set, clear or show the sensor mounting of a device (kept in its flash)")
    dm.add_argument("file", nargs="?", help="mounting file (from 'gaitedge mounting estimate'), axis maps "
                                            "(x=-y,y=x,z=z or left=MAP,right=MAP), or auto (estimated from "
                                            "--data); without FILE and --identity: show the current one")
    dm.add_argument("--data", help="with auto: data spec of a recording of these sensors (standing, then walking)")
    dm.add_argument("--port", required=True, help="pyserial URL of the board")
    dm.add_argument("--foot", choices=["left", "right"], default="left",
                    help="foot the board is worn on: its acc_*/gyr_* channels take that sensor's matrix, "
                         "other_* the other foot's (default left)")
    dm.add_argument("--identity", action="store_true", help="clear the mounting (channels used as they come)")
    dm.add_argument("--timeout", type=float, default=2.0, help="seconds per request (default 2)")
    dm.set_defaults(func=cmd_device_mounting)

    fl = sub.add_parser("flash", help="send new weights to a board over serial (or an image with --probe)")
    fl.add_argument("source", help="run directory / quant.npz / weights .blob (serial), or an ELF with --probe")
    fl.add_argument("--port", help="pyserial URL of the board")
    fl.add_argument("--chunk", type=int, help="bytes per FLASH_CHUNK (default: the device's maximum)")
    fl.add_argument("--timeout", type=float, default=2.0, help="seconds per request (default 2)")
    fl.add_argument("--probe", action="store_true", help="program an ELF through a debug probe with pyOCD")
    fl.add_argument("--target", help="pyOCD target type with --probe (e.g. stm32f407vg, nrf52840)")
    fl.set_defaults(func=cmd_flash)
