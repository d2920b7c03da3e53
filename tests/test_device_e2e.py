"""End to end on the emulated Cortex-M4 board (QEMU mps2-an386 running the real firmware image).

Tiny model trained on synthetic gait (12 channels) -> C export -> firmware build ->
boot under QEMU -> a real IPOL recording streamed through pyserial: the board's
output for every sample equals the Python integer reference.  Then new weights over
serial, a corrupted chunk, a blob for another architecture, a disconnect and a reset
in the middle of an update: the previously committed model always keeps answering.
"""

from __future__ import annotations

import socket
import time

import numpy as np
import pytest

from fwtools import arm_firmware, have, tiny_models
from gaitedge.device import Emulator
from gaitedge.export.packing import HEADER_BYTES, build_blob
from gaitedge.device.client import DeviceNak
from gaitedge.device.emulator import INSTRUCTIONS_PER_TICK
from gaitedge.errors import DeviceError
from gaitedge.protocol import messages as M
from gaitedge.protocol.framing import encode_frame
from gaitedge.quant.model import Runner

pytestmark = pytest.mark.skipif(
    not have("arm-none-eabi-gcc", "arm-none-eabi-size", "arm-none-eabi-objcopy", "qemu-system-arm"),
    reason="needs gcc-arm-none-eabi, libnewlib-arm-none-eabi and qemu-system-arm (.ci/run installs them)")


@pytest.fixture(scope="module")
def models():
    return tiny_models()


@pytest.fixture(scope="module")
def fw(models):
    return arm_firmware()


@pytest.fixture(scope="module")
def ipol_counts(ipol_root, models):
    """One real IPOL trial of a test subject (12-15), both feet, as the model's raw int16 counts."""
    from gaitedge.data.spec import load_spec
    from gaitedge.quant.evaluate import recording_counts

    _, qa = models["A"]
    rec = load_spec(f"ipol:{ipol_root}?subjects=12&feet=left", other_foot=True)[0]
    counts = recording_counts(qa, rec)  # the conversion gaitedge.quant uses for the integer reference
    assert counts.dtype == np.int16 and counts.shape[1] == 12 and len(counts) > 1000
    return counts


def labels_of(qm, counts):
    return Runner(qm).run(counts)


def test_board_output_equals_integer_reference_for_a_real_recording(models, fw, ipol_counts):
    _, qa = models["A"]
    ref = labels_of(qa, ipol_counts)
    assert fw.sizes["flash"] > 0 and fw.sizes["ram"] > 0 and fw.bin.stat().st_size > 0
    with Emulator(fw.image) as emu, emu.client(timeout=5) as dev:
        info = emu.boot_info
        assert (info.board, info.source, info.model_hash) == ("mps2-an386", "built-in", qa.weights_hash())
        res = dev.stream(ipol_counts, window=2)
        for k in ("label", "raw_label", "event", "event_sample", "logits"):
            assert np.array_equal(getattr(res, k), ref[k][0]), k
        assert len(set(res.label.tolist())) >= 2  # the recording exercises more than one class
        st = dev.stats()
        assert st.steps == len(ipol_counts)
        assert st.crc_errors == st.framing_errors == st.oversize == st.overruns == st.naks == 0
        # instructions per step from the firmware's own SysTick under -icount (40 per tick)
        instr = st.ticks_per_step * INSTRUCTIONS_PER_TICK
        assert 200 < instr < 200_000
    assert "Lockup" not in emu.log()


def test_flash_new_weights_then_a_corrupted_chunk_is_refused(models, fw, ipol_counts):
    _, qa = models["A"]
    _, qb = models["B"]
    part = ipol_counts[:400]
    ref_a, ref_b = labels_of(qa, part), labels_of(qb, part)
    assert not np.array_equal(ref_a["logits"], ref_b["logits"])
    with Emulator(fw.image) as emu, emu.client(timeout=3) as dev:
        assert np.array_equal(dev.samples(part).label, ref_a["label"][0])
        res = dev.flash(build_blob(qb))
        assert (res.slot, res.generation, res.model_hash) == ("slot A", 1, qb.weights_hash())
        info = dev.info()
        assert (info.source, info.steps) == ("slot A", 0)
        got = dev.samples(part)
        assert np.array_equal(got.label, ref_b["label"][0]) and np.array_equal(got.logits, ref_b["logits"][0])

        # corrupt one chunk on its way (frame CRC right, content wrong): VERIFY and COMMIT refuse
        blob = build_blob(qa)
        dev.flash_begin(blob[:HEADER_BYTES])
        payload = bytearray(blob[HEADER_BYTES:])
        payload[700] ^= 0x5A
        for off in range(0, len(payload), 512):
            dev.flash_chunk(off, bytes(payload[off : off + 512]))
        with pytest.raises(DeviceNak) as e:
            dev.flash_verify()
        assert e.value.nak.code == M.E_VERIFY and "CRC" in str(e.value)
        with pytest.raises(DeviceNak) as e:
            dev.flash_commit()
        assert e.value.nak.code == M.E_STATE
        dev.reset()
        assert dev.info().model_hash == qb.weights_hash()
        assert np.array_equal(dev.samples(part).label, ref_b["label"][0])
        fs = dev.flash_status()
        assert fs.slots[0].valid and not fs.slots[1].valid

        # a chunk corrupted on the wire (frame CRC wrong) is dropped and simply sent again
        dev.flash_begin(blob[:HEADER_BYTES])
        bad = bytearray(encode_frame(M.FLASH_CHUNK, 4242, (0).to_bytes(4, "little") + blob[HEADER_BYTES:][:512]))
        bad[100] ^= 0x01
        dev._write(bytes(bad))
        assert dev._await(4242, time.monotonic() + 1.0) is None
        assert dev.flash_status().received == 0
        res = dev.flash(blob)  # now the whole update of A goes through: it lands in slot B
        assert (res.slot, res.generation) == ("slot B", 2)
        st = dev.stats()
        assert st.crc_errors + st.framing_errors >= 1  # the flipped bit hit data (CRC) or a COBS code
        dev.reset()
        assert np.array_equal(dev.samples(part).label, ref_a["label"][0])
    assert "Lockup" not in emu.log()


def test_blob_for_another_architecture_is_refused(models, fw, ipol_counts):
    _, qa = models["A"]
    _, qc = models["C"]  # hidden 24 instead of 16
    part = ipol_counts[:200]
    ref_a = labels_of(qa, part)
    with Emulator(fw.image) as emu, emu.client(timeout=3) as dev:
        with pytest.raises(DeviceError, match="another model architecture"):
            dev.flash(build_blob(qc))  # refused by the client before sending anything
        with pytest.raises(DeviceNak, match="another model architecture") as e:
            dev.flash(build_blob(qc), check_arch=False)  # refused by the firmware at FLASH_BEGIN
        assert e.value.nak.code == M.E_ARCH
        assert dev.flash_status().state == "idle"
        assert dev.info().source == "built-in"
        assert np.array_equal(dev.samples(part).label, ref_a["label"][0])


def test_disconnect_and_reset_mid_flash_keep_the_old_model(models, fw, ipol_counts):
    _, qa = models["A"]
    _, qb = models["B"]
    part = ipol_counts[:300]
    ref_a, ref_b = labels_of(qa, part)["label"][0], labels_of(qb, part)["label"][0]
    blob_a = build_blob(qa)
    with Emulator(fw.image) as emu:
        with emu.client(timeout=3) as dev:
            dev.flash(build_blob(qb))  # committed: B in slot A
            dev.flash_begin(blob_a[:HEADER_BYTES])
            dev.flash_chunk(0, blob_a[HEADER_BYTES : HEADER_BYTES + 512])
            # half a frame, then the cable is pulled
            dev._write(encode_frame(M.FLASH_CHUNK, 999, (512).to_bytes(4, "little") + blob_a[HEADER_BYTES + 512:][:512])
                       [:300])
        # reconnect (a new host process): the board still runs B
        with emu.client(timeout=3) as dev:
            info = dev.info()
            assert (info.source, info.model_hash) == ("slot A", qb.weights_hash())
            dev.reset()
            assert np.array_equal(dev.samples(part).label, ref_b)
            assert dev.flash_status().state == "receiving"  # nothing was committed
            # reset in the middle of an update (REBOOT = SYSRESETREQ, like the reset button)
            dev.flash_begin(blob_a[:HEADER_BYTES])
            dev.flash_chunk(0, blob_a[HEADER_BYTES : HEADER_BYTES + 512])
            dev.flash_chunk(512, blob_a[HEADER_BYTES + 512 : HEADER_BYTES + 1024])
            boot = dev.reboot()
            assert boot is not None, "no BOOT frame after the reset"
            assert (boot.source, boot.model_hash, boot.steps) == ("slot A", qb.weights_hash(), 0)
            assert np.array_equal(dev.samples(part).label, ref_b)
            fs = dev.flash_status()
            assert fs.state == "idle" and fs.slots[0].valid and not fs.slots[1].valid
            # and the update still works afterwards
            assert dev.flash(blob_a).slot == "slot B"
            dev.reset()
            assert np.array_equal(dev.samples(part).label, ref_a)
            # reset right after the commit: the new weights are the ones that boot
            boot = dev.reboot()
            assert (boot.source, boot.model_hash) == ("slot B", qa.weights_hash())
    assert "Lockup" not in emu.log()


def test_a_crash_on_the_board_is_visible(fw):
    """The M4 image on the M3 variant of the board (no DSP instructions) faults in the first
    ge_step(); the fault handler's BKPT stops QEMU ("Lockup") and the client gets an error
    instead of hanging."""
    emu = Emulator(fw.image, machine="mps2-an385", boot_timeout=10)
    emu.start()
    try:
        with emu.client(timeout=1, retries=0) as dev:
            with pytest.raises(DeviceError):
                dev.samples(np.zeros((2, 12), np.int16))
        deadline = time.monotonic() + 5
        while emu.alive() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not emu.alive() and "Lockup" in emu.log()
    finally:
        emu.stop()


def test_board_ignores_a_client_that_vanishes_mid_frame(models, fw):
    _, qa = models["A"]
    with Emulator(fw.image) as emu:
        s = socket.create_connection(("127.0.0.1", emu.port))
        s.sendall(encode_frame(M.PING, 5, bytes(800))[:400])
        s.close()
        with emu.client(timeout=3) as dev:
            assert dev.ping(b"after") > 0
            assert dev.stats().framing_errors + dev.stats().crc_errors >= 1
