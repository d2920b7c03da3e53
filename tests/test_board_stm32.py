"""The firmware on a second board: STM32F405 as QEMU emulates it (``-M netduinoplus2``).

The same application, protocol and runtime as on mps2-an386, with the board layer of
``boards/stm32f405_netduino`` (USART1, SysTick at QEMU's fixed 168 MHz, weight slots in a
RAM-backed region because QEMU ignores flash writes on this machine).  Through the existing
DeviceClient: INFO, SAMPLES -> RESULTS equal to the Python integer twin, STATS, and a
weight update into the RAM-backed slot that survives REBOOT.  The real-chip build
(``stm32f405-chip``: PLL, flash driver, slots in flash sectors 10-11) is compiled and its
memory layout checked; the flash driver's logic is tested on the host in
test_stm32f4_flash.py.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import pytest

from fwtools import have, tiny_models, tmpdir
from gaitedge.device import Emulator
from gaitedge.export.packing import build_blob
from gaitedge.device.emulator import instructions_per_tick, machine_for_image
from gaitedge.quant.model import Runner

pytestmark = pytest.mark.skipif(
    not have("arm-none-eabi-gcc", "arm-none-eabi-size", "arm-none-eabi-objcopy", "arm-none-eabi-nm",
             "qemu-system-arm"),
    reason="needs gcc-arm-none-eabi, libnewlib-arm-none-eabi and qemu-system-arm (.ci/run installs them)")


@pytest.fixture(scope="module")
def models():
    return tiny_models()


@pytest.fixture(scope="module")
def fw(models):
    from gaitedge.firmware import build_firmware

    run, _ = models["A"]
    return build_firmware(run, tmpdir("stm32f405"), board="stm32f405")


@pytest.fixture(scope="module")
def counts(models):
    from gaitedge.data.spec import load_spec
    from gaitedge.quant.evaluate import recording_counts

    _, qa = models["A"]
    rec = load_spec("synthetic?n=1&trials=1&seed=3", other_foot=True)[0]
    c = recording_counts(qa, rec)[:600]
    assert c.dtype == np.int16 and c.shape == (600, 12)
    return c


def symbols(elf: Path) -> dict[str, int]:
    out = subprocess.run(["arm-none-eabi-nm", str(elf)], check=True, capture_output=True, text=True).stdout
    return {p[2]: int(p[0], 16) for p in (ln.split() for ln in out.splitlines()) if len(p) == 3}


def test_stm32f405_answers_info_samples_stats_like_the_python_twin(models, fw, counts):
    _, qa = models["A"]
    ref = Runner(qa).run(counts)
    assert machine_for_image(fw.image) == "netduinoplus2"
    assert symbols(fw.image)["fw_vectors"] == 0x08000000
    assert 0 < fw.sizes["ram"] <= 64 * 1024  # the upper 64 KB of SRAM hold the slots
    with Emulator(fw.image) as emu, emu.client(timeout=5) as dev:
        assert emu.machine == "netduinoplus2"
        info = dev.info()
        assert (info.board, info.source, info.generation) == ("stm32f405-qemu", "built-in", 0)
        assert (info.model_hash, info.tick_hz) == (qa.weights_hash(), 168_000_000)
        res = dev.stream(counts, window=2)
        for k in ("label", "raw_label", "event", "event_sample", "logits"):
            assert np.array_equal(getattr(res, k), ref[k][0]), k
        st = dev.stats()
        assert st.steps == len(counts) and st.tick_hz == 168_000_000
        assert st.crc_errors == st.framing_errors == st.oversize == st.overruns == st.naks == 0
        instr = st.ticks_per_step * instructions_per_tick(st.tick_hz)  # SysTick at 168 MHz under -icount
        assert 200 < instr < 200_000
    assert "Lockup" not in emu.log()


def test_stm32f405_weight_update_lands_in_the_ram_backed_slot_and_survives_reboot(models, fw, counts):
    _, qa = models["A"]
    _, qb = models["B"]
    part = counts[:300]
    ref_b = Runner(qb).run(part)
    with Emulator(fw.image) as emu, emu.client(timeout=5) as dev:
        res = dev.flash(build_blob(qb))
        assert (res.slot, res.generation, res.model_hash) == ("slot A", 1, qb.weights_hash())
        got = dev.samples(part)
        assert np.array_equal(got.label, ref_b["label"][0]) and np.array_equal(got.logits, ref_b["logits"][0])
        dev.reset()  # SYSRESETREQ: QEMU reloads the image, the slots (outside it) stay
        info = dev.info()
        assert (info.source, info.model_hash) == ("slot A", qb.weights_hash())
        assert np.array_equal(dev.samples(part).label, ref_b["label"][0])
        fs = dev.flash_status()
        assert fs.slots[0].valid and not fs.slots[1].valid
    assert "Lockup" not in emu.log()


def test_stm32f405_chip_build_keeps_slots_and_settings_out_of_the_image(models):
    from gaitedge.firmware import build_firmware

    run, _ = models["A"]
    res = build_firmware(run, tmpdir("stm32f405-chip"), board="stm32f405-chip")
    sym = symbols(res.image)
    assert sym["fw_vectors"] == 0x08000000
    for name in ("stm32f4_flash_erase_range", "stm32f4_flash_program", "stm32f4_flash_init"):
        assert name in sym, name  # the flash driver is linked in (board_slot_* / board_cfg_* call it)
    out = subprocess.run(["arm-none-eabi-objdump", "-h", str(res.image)], check=True, capture_output=True,
                         text=True).stdout
    for line in out.splitlines():
        p = line.split()
        if len(p) >= 6 and p[1].startswith(".") and p[1] not in (".bss", ".stack") and not p[1].startswith(
                (".ARM.attributes", ".comment", ".debug")):
            lo, size = int(p[4], 16), int(p[2], 16)  # load address (LMA)
            if size == 0:
                continue
            hi = lo + size
            assert 0x08000000 <= lo and hi <= 0x080C0000, (p[1], hex(lo))  # below the slots (sectors 10-11)
            assert hi <= 0x08008000 or lo >= 0x08010000, (p[1], hex(lo))  # not in sectors 2-3 (settings)
    assert res.report["slot_bytes"] == 128 * 1024


def test_cli_builds_for_stm32f405_and_points_at_the_emulator(models, tmp_path):
    import contextlib
    import io

    from gaitedge.cli import main

    run, qa = models["A"]
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(["firmware", "build", str(run), "--board", "stm32f405", "--out", str(tmp_path / "fw")])
    assert code == 0, err.getvalue()
    text = out.getvalue()
    assert "firmware for stm32f405" in text and "fits a 28 KB slot" in text
    assert f"gaitedge device emulate {tmp_path / 'fw' / 'firmware.elf'}" in text
    with Emulator(tmp_path / "fw") as emu:  # the folder, as `gaitedge device emulate DIR` takes it
        assert (emu.machine, emu.boot_info.board, emu.boot_info.model_hash) == (
            "netduinoplus2", "stm32f405-qemu", qa.weights_hash())
