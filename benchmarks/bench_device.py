"""Firmware on the emulated board: instructions per step, image size, UART latency and throughput.

    python benchmarks/bench_device.py [--families gru lstm elman] [--hidden 64] [--steps 2000]
                                      [--pings 300] [--out BENCHMARKS.md]

For each model family: an untrained 12-channel, 3-class model (20 Hz 2nd-order
low-pass, 40 ms debounce; timing does not depend on the weight values) is quantized
(calibrated on synthetic gait), built into the mps2-an386 firmware
(gaitedge.firmware.build_firmware) and booted under QEMU with ``-icount shift=0``.

- instructions per step: the firmware times every ge_step() with SysTick (25 MHz core
  clock) and reports the ticks in STATS; under -icount shift=0 one instruction takes
  1 ns of virtual time, so one tick = 40 instructions (mean over all steps; ±40 per
  single step);
- flash / RAM: arm-none-eabi-size of the whole image (text + data / data + bss + the
  8 KB stack);
- round trip: one SAMPLES frame holding one sample -> its RESULTS frame, through
  pyserial ``socket://`` (p50 / p99 over --pings requests, after 20 warm-up requests);
- sustained: --steps samples streamed in frames of 1, 8 and the maximum per frame,
  stop-and-wait and with 2 frames in flight.

Writes (replaces) the "## Firmware on the emulated board" section of BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchlib import cpu_model, tool_version, write_section  # noqa: E402
from gaitedge.checkpoint import TrainedModel  # noqa: E402
from gaitedge.data.preprocess import Normalizer  # noqa: E402
from gaitedge.models import build_model  # noqa: E402

SECTION = "## Firmware on the emulated board"
CHANNELS = [f"{s}{a}_{x}" for s in ("", "other_") for a in ("acc", "gyr") for x in "xyz"]
UNITS = ["m/s^2", "m/s^2", "m/s^2", "rad/s", "rad/s", "rad/s"] * 2


def make_model(family: str, hidden: int, seed: int = 0) -> TrainedModel:
    torch.manual_seed(seed)
    model = build_model(family, len(CHANNELS), 3, hidden=hidden).eval()
    return TrainedModel(model=model, classes=("rest", "stance", "swing"), channels=list(CHANNELS),
                        units=list(UNITS), rate_hz=100.0,
                        normalizer=Normalizer(np.zeros(len(CHANNELS), np.float32), np.ones(len(CHANNELS), np.float32)),
                        lowpass_hz=20.0, filter_order=2, min_run=4, tolerance_ms=50.0)


def bench_one(family: str, hidden: int, steps: int, pings: int, work: Path, icount: bool = True,
              only_link: bool = False, fw=None) -> dict:
    from gaitedge.data.spec import load_spec
    from gaitedge.device import Emulator
    from gaitedge.device.emulator import INSTRUCTIONS_PER_TICK
    from gaitedge.firmware import build_firmware
    from gaitedge.quant import quantize_model
    from gaitedge.quant.evaluate import recording_counts
    from gaitedge.quant.model import Runner

    calib = load_spec("synthetic?n=4&trials=2", other_foot=True)
    if fw is None:
        tm = make_model(family, hidden)
        qm = quantize_model(tm, calib)
        fw = build_firmware(qm, work / family, board="mps2-an386")
    else:
        qm = fw._qm
    fw._qm = qm
    counts = np.concatenate([recording_counts(qm, r) for r in calib])[:steps]
    out = {"family": family, "hidden": hidden, "fw": fw, "icount": icount}
    with Emulator(fw.image, icount=icount) as emu, emu.client(timeout=10) as dev:
        info = dev.info()
        out["max_samples"] = info.max_samples
        if not only_link:
            dev.stats(clear=True)
            res = dev.samples(counts, batch=info.max_samples)
            st = dev.stats()
            ref = Runner(qm).run(counts)
            out["exact"] = bool(np.array_equal(res.logits, ref["logits"][0]))
            out["instr_per_step"] = st.ticks_per_step * INSTRUCTIONS_PER_TICK
            out["instr_min"] = st.step_ticks_min * INSTRUCTIONS_PER_TICK
            out["instr_max"] = st.step_ticks_max * INSTRUCTIONS_PER_TICK
            out["steps_timed"] = st.steps_timed
        one = counts[:1]
        for _ in range(20):
            dev.samples(one)
        rt = []
        for i in range(pings):
            t0 = time.perf_counter()
            dev.samples(counts[i % len(counts) : i % len(counts) + 1])
            rt.append(time.perf_counter() - t0)
        out["rtt_p50_ms"] = float(np.percentile(rt, 50) * 1e3)
        out["rtt_p99_ms"] = float(np.percentile(rt, 99) * 1e3)
        rates = {}
        for batch in (1, 8, info.max_samples):
            for window in (1, 2):
                n = min(len(counts), 400 if batch == 1 else len(counts))
                dev.reset()
                t0 = time.perf_counter()
                dev.stream(counts[:n], batch=batch, window=window)
                rates[(batch, window)] = n / (time.perf_counter() - t0)
        out["rates"] = rates
        st = dev.stats()
        out["errors"] = st.crc_errors + st.framing_errors + st.oversize + st.overruns
        # the link alone: 1 KB PING echo
        t0 = time.perf_counter()
        for _ in range(20):
            dev.ping(bytes(1000))
        out["ping1k_ms"] = (time.perf_counter() - t0) / 20 * 1e3
        # idle: the firmware sleeps on wfi; QEMU's CPU time while nothing arrives
        tck = os.sysconf("SC_CLK_TCK")

        def cpu_s() -> float:
            f = Path(f"/proc/{emu.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
            return (int(f[11]) + int(f[12])) / tck

        c0, t0 = cpu_s(), time.perf_counter()
        time.sleep(3.0)
        out["idle_cpu"] = 100 * (cpu_s() - c0) / (time.perf_counter() - t0)
    return out


def render(results: list[dict], realtime: dict | None, args, load: tuple[float, float], started: str) -> str:
    r0 = results[0]
    lines = [
        f"Command: `python benchmarks/bench_device.py --families {' '.join(args.families)} --hidden {args.hidden} "
        f"--steps {args.steps} --pings {args.pings}`",
        "",
        f"- machine: {cpu_model()}, {os.cpu_count()} logical cores; 1-min load average {load[0]:.1f} before, "
        f"{load[1]:.1f} after (other processes were running)",
        f"- date: {started}",
        f"- software: {tool_version(['arm-none-eabi-gcc', '--version'])}, newlib-nano; "
        f"{tool_version(['qemu-system-arm', '--version'])}; Python {platform.python_version()}, pyserial 3.5",
        "- board: QEMU `-M mps2-an386` (Cortex-M4F, 25 MHz SysTick) with `-icount shift=0`, UART0 on "
        "`tcp:127.0.0.1:PORT,server=on,wait=on,nodelay=on`, host side `gaitedge.device.DeviceClient` "
        "on `socket://` (pyserial)",
        "- firmware: `gaitedge firmware build RUN` = arm-none-eabi-gcc -O2 -mcpu=cortex-m4 -mthumb -mfloat-abi=soft "
        "-DGE_USE_DSP, --gc-sections, newlib-nano; sleeps on `wfi` between frames",
        f"- models: 1 layer, hidden {args.hidden}, 12 inputs (both feet), 3 classes, 20 Hz 2nd-order low-pass, "
        "40 ms debounce; untrained weights quantized on synthetic gait (timing does not depend on the values); "
        "the board's logits equal the Python integer reference for every step (checked)",
        "- instructions per step: measured by the firmware itself around each `ge_step()` with SysTick and "
        "reported in STATS: ticks x 40 (1 instruction = 1 ns of virtual time under -icount shift=0, SysTick "
        "at 25 MHz); mean over all steps, min/max of single steps have ±40 resolution; the SysTick reads "
        "themselves add ~20 instructions",
        "- flash / RAM: `arm-none-eabi-size` of the whole image: flash = text + data; RAM = data + bss + "
        "8 KB stack (bss: 4 KB receive ring, ~3 KB frame buffers, decoder, model state and arena)",
        "- round trip: one SAMPLES frame with one sample (40 bytes on the wire) -> RESULTS (~30 bytes), "
        f"p50/p99 over {args.pings} requests; sustained: {args.steps} samples (400 at 1 per frame), "
        "`DeviceClient.samples` (stop-and-wait) and `DeviceClient.stream(window=2)` (two frames in flight)",
        "",
        "| model | instructions / step (mean, min-max) | at 25 MHz | flash (B) | RAM (B) | weights (B) | "
        "arena (B) | exact |",
        "|---|---:|---:|---:|---:|---:|---:|:--:|",
    ]
    for r in results:
        fw = r["fw"]
        name = f"{r['family'].upper()}-{r['hidden']}"
        us = r["instr_per_step"] / 25.0
        lines.append(
            f"| {name} | {r['instr_per_step']:,.0f} ({r['instr_min']:,}-{r['instr_max']:,}) | {us:,.0f} µs "
            f"({100 * us / 10000:.1f} % of a 100 Hz period) | {fw.sizes['flash']:,} | {fw.sizes['ram']:,} | "
            f"{fw.report['weight_bytes']['total']:,} | {fw.report['arena_bytes']:,} | "
            f"{'yes' if r['exact'] else 'NO'} |")
    lines += ["", "UART link (host <-> emulated board):", "",
              "| model | QEMU | 1-sample round trip p50 / p99 (ms) | samples/s at 1 / 8 / " +
              f"{r0['max_samples']} per frame, stop-and-wait | same, 2 frames in flight | 1 KB PING echo (ms) |",
              "|---|---|---:|---:|---:|---:|"]
    for r in results + ([realtime] if realtime else []):
        name = f"{r['family'].upper()}-{r['hidden']}"
        rates = r["rates"]
        b = sorted({k[0] for k in rates})
        sw = " / ".join(f"{rates[(x, 1)]:,.0f}" for x in b)
        pw = " / ".join(f"{rates[(x, 2)]:,.0f}" for x in b)
        lines.append(f"| {name} | {'-icount shift=0' if r['icount'] else 'real time (no -icount)'} | "
                     f"{r['rtt_p50_ms']:.2f} / {r['rtt_p99_ms']:.2f} | {sw} | {pw} | {r['ping1k_ms']:.1f} |")
    best = max(max(r["rates"].values()) for r in results)
    lines += [
        "",
        f"- the 100 Hz model rate needs 100 samples/s: the emulated UART sustains up to {best:,.0f} samples/s "
        "with batching; one sample per frame costs a full round trip, so batch or pipeline when replaying "
        "recordings",
        "- the emulated UART is the bottleneck, not the model: QEMU moves host -> board one byte per event-loop "
        "pass (the CMSDK UART has a 1-byte receive register), so throughput and latency follow the host's load "
        "(noisy on 2 shared cores); on a real board at 921,600 baud a 12-channel sample (24 bytes + ~10 bytes "
        "framing) would take ~0.4 ms on the wire",
        f"- idle (no frames for 3 s, firmware in `wfi`): QEMU used "
        f"{max(r['idle_cpu'] for r in results):.1f} % of a core",
        f"- link errors during the runs (CRC, framing, oversize, overruns): "
        f"{sum(r['errors'] for r in results)}",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--families", nargs="+", default=["gru", "lstm", "elman"])
    ap.add_argument("--hidden", type=int, default=64)
    ap.add_argument("--steps", type=int, default=2000)
    ap.add_argument("--pings", type=int, default=300)
    ap.add_argument("--out", default=str(ROOT / "BENCHMARKS.md"))
    ap.add_argument("--no-write", action="store_true", help="print only")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    started = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    load0 = os.getloadavg()[0]
    results = []
    with tempfile.TemporaryDirectory() as td:
        for fam in args.families:
            print(f"{fam}: build + run ...", file=sys.stderr, flush=True)
            r = bench_one(fam, args.hidden, args.steps, args.pings, Path(td))
            print(f"  {r['instr_per_step']:,.0f} instructions/step, rtt p50 {r['rtt_p50_ms']:.2f} ms, "
                  f"rates {r['rates']}", file=sys.stderr)
            results.append(r)
        print("real-time QEMU (no -icount) ...", file=sys.stderr, flush=True)
        realtime = bench_one(results[0]["family"], args.hidden, args.steps, args.pings, Path(td), icount=False,
                             only_link=True, fw=results[0]["fw"])
    body = render(results, realtime, args, (load0, os.getloadavg()[0]), started)
    print(body)
    if not args.no_write:
        write_section(Path(args.out), SECTION, body)
        print(f"\nwrote the section to {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
