"""The firmware as a host program (boards/host): protocol answers, weight slots in a file,
robustness against random requests under ASan/UBSan, and the firmware build itself."""

from __future__ import annotations

import os
import random
import socket
import subprocess
import time

import numpy as np
import pytest

from fwtools import FW, PROTO, RUNTIME, have, host_firmware, sanitizers_work, tiny_models, tmpdir
from gaitedge.device import DeviceClient, Emulator
from gaitedge.export.packing import HEADER_BYTES, arch_hash, build_blob, parse_blob
from gaitedge.device.client import DeviceNak, DeviceTimeout
from gaitedge.errors import DeviceError
from gaitedge.protocol import messages as M
from gaitedge.protocol.framing import FrameDecoder, encode_frame
from gaitedge.quant.model import Runner

pytestmark = pytest.mark.skipif(not have("gcc"), reason="no host C compiler")


def synthetic_counts(qm, n=400, seed=0):
    from gaitedge.data.spec import load_spec
    from gaitedge.quant.evaluate import recording_counts

    rec = load_spec(f"synthetic?n=1&trials=1&seed={seed}", other_foot=True)[0]
    return recording_counts(qm, rec)[:n]


@pytest.fixture(scope="module")
def models():
    return tiny_models()


@pytest.fixture(scope="module")
def host(models):
    return host_firmware()


def test_own_sources_compile_without_warnings(host):
    """The firmware's own C (app, slots, protocol, host board, generated binding) is -Werror clean."""
    inc = [f"-I{p}" for p in (RUNTIME / "include", host.out_dir / "model", host.out_dir / "gen", PROTO, FW)]
    srcs = [FW / "fw_app.c", FW / "fw_blob.c", PROTO / "ge_proto.c",
            host.out_dir / "gen/fw_model.c"]
    for src in srcs + [FW / "boards/host/board.c"]:
        std = "-std=gnu99" if "boards" in str(src) else "-std=c99"
        p = subprocess.run(["gcc", std, "-O2", "-Wall", "-Wextra", "-Werror", "-pedantic", "-Wshadow", *inc, "-c",
                            str(src), "-o", os.devnull], capture_output=True, text=True)
        assert p.returncode == 0, p.stderr
    if have("arm-none-eabi-gcc"):
        arm = ["-mcpu=cortex-m4", "-mthumb", "-mfloat-abi=soft", "-DGE_USE_DSP"]
        for src in srcs + [FW / "boards/mps2_an386/board.c", FW / "boards/mps2_an386/startup.c"]:
            p = subprocess.run(["arm-none-eabi-gcc", "-std=c99", "-O2", *arm, "-Wall", "-Wextra", "-Werror", *inc,
                                "-c", str(src), "-o", os.devnull], capture_output=True, text=True)
            assert p.returncode == 0, p.stderr


def test_host_firmware_answers_info_ping_samples_stats(models, host):
    run, qm = models["A"]
    counts = synthetic_counts(qm)
    ref = Runner(qm).run(counts)
    with Emulator(host.image) as emu, emu.client() as dev:
        assert emu.boot_info.model_hash == qm.weights_hash()
        info = dev.info()
        assert info.board == "host" and info.source == "built-in" and info.generation == 0
        assert info.model_hash == qm.weights_hash()
        assert info.arch_hash == arch_hash(qm).hex()
        assert info.channels == list(qm.channels) and info.classes == list(qm.classes)
        assert info.units == list(qm.units) and info.lsb == [float(v) for v in qm.pre.lsb]
        phys = np.random.default_rng(0).normal(0, 5, (50, qm.n_inputs))
        assert np.array_equal(info.to_counts(phys), qm.to_counts(phys))
        assert (info.n_inputs, info.n_classes, info.delay, info.min_run, info.swing) == (
            qm.n_inputs, qm.n_classes, qm.delay, qm.min_run, qm.swing)
        assert info.max_samples == M.max_samples_per_frame(qm.n_inputs, qm.n_classes)
        for payload in (b"", b"\x00", bytes(range(256)) * 4):
            assert dev.ping(payload) >= 0
        res = dev.samples(counts, batch=7)
        for k in ("label", "raw_label", "event", "event_sample", "logits"):
            assert np.array_equal(getattr(res, k), ref[k][0]), k
        assert res.first_step == 0
        st = dev.stats()
        assert st.steps == len(counts) and st.steps_timed == len(counts)
        assert st.crc_errors == st.framing_errors == st.oversize == st.overruns == st.naks == 0
        assert st.tick_hz == 1_000_000 and st.rx_bytes > len(counts) * qm.n_inputs * 2
        # RESET_STATE: the same samples give the same answers again
        dev.reset()
        assert dev.info().steps == 0
        again = dev.stream(counts, batch=11, window=3)
        assert np.array_equal(again.logits, ref["logits"][0])
        st = dev.stats(clear=True)
        assert st.frames_ok > 0
        assert dev.stats().frames_ok == 1  # counters were cleared after the previous reply


def test_asynchronous_send_and_poll(models, host):
    run, qm = models["A"]
    counts = synthetic_counts(qm, 90)
    ref = Runner(qm).run(counts)
    with Emulator(host.image) as emu, emu.client() as dev:
        seqs = [dev.send_samples(counts[i : i + 10]) for i in range(0, 90, 10)]
        got: dict[int, M.Results] = {}
        deadline = time.monotonic() + 10
        while dev.in_flight and time.monotonic() < deadline:
            for seq, res in dev.poll_results(timeout=0.5):
                got[seq] = res
        assert sorted(got) == sorted(seqs)
        labels = np.concatenate([got[s].label for s in seqs])
        assert np.array_equal(labels, ref["label"][0])
        assert [got[s].first_step for s in seqs] == list(range(0, 90, 10))
        assert dev.poll_results() == []
        assert dev.ping() >= 0  # request/response still works after the pipeline


def test_refusals_are_naks_with_reasons(models, host):
    run, qm = models["A"]
    with Emulator(host.image) as emu, emu.client() as dev:
        with pytest.raises(DeviceNak) as e:
            dev.request(M.SAMPLES, M.encode_samples(np.zeros((2, qm.n_inputs - 1), np.int16)))
        assert e.value.nak.code == M.E_CHANNELS and e.value.nak.detail == qm.n_inputs
        with pytest.raises(DeviceNak) as e:
            dev.request(M.SAMPLES, M.encode_samples(np.zeros((2, qm.n_inputs), np.int16))[:-1])
        assert e.value.nak.code == M.E_LENGTH
        with pytest.raises(DeviceNak) as e:
            dev.request(M.SAMPLES, M.encode_samples(np.zeros((60, qm.n_inputs), np.int16))[:1020])
        assert e.value.nak.code in (M.E_TOO_MANY, M.E_LENGTH)
        with pytest.raises(DeviceNak) as e:
            dev.request(0x55)
        assert e.value.nak.code == M.E_TYPE
        with pytest.raises(DeviceNak) as e:
            dev.flash_chunk(0, b"12345678")
        assert e.value.nak.code == M.E_STATE
        with pytest.raises(DeviceNak) as e:
            dev.flash_begin(b"GEWB" + bytes(60))
        assert e.value.nak.code in (M.E_BLOB_VERSION, M.E_HEADER_CRC)
        with pytest.raises(DeviceError, match="channels"):
            dev.samples(np.zeros((3, 5), np.int16))
        # another protocol version: NAK 1
        dev._write(encode_frame(M.PING, 77, b"", version=2))
        f = dev._await(77, time.monotonic() + 2)
        assert f is not None and f.type == M.NAK and M.Nak.decode(f.payload).code == M.E_VERSION
        assert dev.stats().naks == 7


def test_duplicate_samples_frame_is_answered_without_stepping_twice(models, host):
    run, qm = models["A"]
    counts = synthetic_counts(qm, 20)
    with Emulator(host.image) as emu, emu.client() as dev:
        frame = encode_frame(M.SAMPLES, 900, M.encode_samples(counts[:5]))
        dev._write(frame + frame)  # the reply to the first was "lost": the host repeats it
        a = dev._await(900, time.monotonic() + 2)
        b = dev._await(900, time.monotonic() + 2)
        assert a is not None and b is not None and a.payload == b.payload
        st = dev.stats()
        assert st.steps == 5 and st.duplicates == 1


def test_a_restart_during_samples_is_reported(models, host):
    from gaitedge.device.client import DeviceRestarted

    run, qm = models["A"]
    counts = synthetic_counts(qm, 30)
    with Emulator(host.image) as emu, emu.client() as dev:
        dev.info()
        dev._write(encode_frame(M.REBOOT, 5))  # someone pressed reset
        with pytest.raises(DeviceRestarted, match="restarted") as e:
            dev.samples(counts, batch=10)
        assert len(e.value.results) >= 10 and len(dev.boots) == 1
        dev.reset()
        assert np.array_equal(dev.samples(counts).label, Runner(qm).run(counts)["label"][0])


def test_garbage_and_corruption_on_the_link_are_counted_and_survived(models, host):
    run, qm = models["A"]
    counts = synthetic_counts(qm, 50)
    ref = Runner(qm).run(counts)
    rng = random.Random(5)
    with Emulator(host.image) as emu, emu.client(timeout=0.5, retries=3) as dev:
        dev._write(bytes(rng.randrange(256) for _ in range(3000)))  # line noise
        dev._write(bytes(rng.randrange(1, 256) for _ in range(5000)) + b"\x00")  # oversized
        good = encode_frame(M.PING, 1, b"abc")
        bad = bytearray(good)
        bad[len(bad) // 2] ^= 0x10
        dev._write(bytes(bad))  # CRC error: no reply
        assert dev._await(1, time.monotonic() + 0.5) is None
        res = dev.samples(counts)  # still in sync
        assert np.array_equal(res.label, ref["label"][0])
        st = dev.stats()
        assert st.crc_errors + st.framing_errors >= 2 and st.oversize >= 1
        assert st.overruns == 0


def test_flash_file_keeps_committed_weights_across_restarts(models, host):
    run, qa = models["A"]
    _, qb = models["B"]
    counts = synthetic_counts(qa, 200)
    ref_b = Runner(qb).run(counts)["label"][0]
    ref_a = Runner(qa).run(counts)["label"][0]
    flash_file = tmpdir("flashfile") / "slots.bin"
    with Emulator(host.image, flash_file=flash_file) as emu, emu.client() as dev:
        res = dev.flash(build_blob(qb))
        assert res.slot == "slot A" and res.generation == 1
        assert np.array_equal(dev.samples(counts).label, ref_b)
    # power cut in the middle of the next update
    emu = Emulator(host.image, flash_file=flash_file)
    emu.start()
    try:
        with emu.client() as dev:
            assert dev.info().model_hash == qb.weights_hash()
            blob = build_blob(qa)
            dev.flash_begin(blob[:HEADER_BYTES])
            dev.flash_chunk(0, blob[HEADER_BYTES : HEADER_BYTES + 512])
            assert dev.flash_status().state == "receiving"
    finally:
        emu.kill()
    with Emulator(host.image, flash_file=flash_file) as emu, emu.client() as dev:
        info = dev.info()
        assert (info.source, info.generation, info.model_hash) == ("slot A", 1, qb.weights_hash())
        assert np.array_equal(dev.samples(counts).label, ref_b)
        fs = dev.flash_status()
        assert fs.state == "idle" and fs.slots[0].valid and not fs.slots[1].valid
        # complete an update, restart: the newer generation wins
        res = dev.flash(build_blob(qa))
        assert (res.slot, res.generation) == ("slot B", 2)
    with Emulator(host.image, flash_file=flash_file) as emu, emu.client() as dev:
        assert dev.info().source == "slot B"
        assert np.array_equal(dev.samples(counts).label, ref_a)
        dev.factory_reset()
        assert dev.info().source == "built-in"


def test_pty_serial(models, host):
    run, qm = models["A"]
    p = subprocess.Popen([str(host.image), "--pty"], stdout=subprocess.PIPE, stdin=subprocess.DEVNULL)
    try:
        line = p.stdout.readline().decode().split()
        assert line[0] == "serial" and line[1].startswith("/dev/")
        with DeviceClient(line[1]) as dev:
            assert dev.info().model_hash == qm.weights_hash()
            assert dev.ping(b"pty") > 0
    finally:
        p.kill()
        p.wait()


@pytest.mark.skipif(not sanitizers_work(), reason="no ASan/UBSan here")
def test_random_requests_under_sanitizers(models):
    """Thousands of well-framed requests with random types and payloads: every one is
    answered (reply or NAK), the sanitized firmware never crashes, and afterwards it
    still computes the reference labels."""
    run, qm = models["A"]
    _, qb = models["B"]
    fw = host_firmware(sanitize=True)
    rng = random.Random(11)
    counts = synthetic_counts(qm, 60)
    types = [M.PING, M.INFO, M.SAMPLES, M.RESET_STATE, M.STATS, M.FLASH_BEGIN, M.FLASH_CHUNK, M.FLASH_VERIFY,
             M.FLASH_COMMIT, M.FLASH_ABORT, M.FLASH_STATUS, M.FACTORY_RESET, M.REBOOT, M.NAK, M.BOOT, 0x00, 0xFF]
    blob_b = build_blob(qb)
    with Emulator(fw.image) as emu:
        sock = socket.create_connection(("127.0.0.1", emu.port))
        sock.settimeout(10)
        dec = FrameDecoder()
        answered = 0
        for i in range(1, 2501):
            t = rng.choice(types) if rng.random() < 0.9 else rng.randrange(256)
            kind = rng.random()
            if t == M.FLASH_BEGIN and kind < 0.3:
                payload = blob_b[:HEADER_BYTES]
            elif t == M.FLASH_CHUNK and kind < 0.5:
                off = rng.choice([0, 8, 512, 2000, 4096, 1 << 31])
                payload = off.to_bytes(4, "little") + blob_b[HEADER_BYTES + off % 4096:][: rng.randrange(0, 600)]
            elif t == M.SAMPLES and kind < 0.5:
                n = rng.randrange(1, 30)
                payload = M.encode_samples(np.asarray([[rng.randrange(-32768, 32768) for _ in range(qm.n_inputs)]
                                                       for _ in range(n)]))
            else:
                payload = bytes(rng.randrange(256) for _ in range(rng.choice([0, 1, 4, 8, 64, 300, 1024])))
            sock.sendall(encode_frame(t, i, payload))
            got = None
            while got is None:
                data = sock.recv(65536)
                assert data, f"firmware closed the link after request {i} (type {t:#x}): {emu.log()}"
                for f in dec.feed(data):
                    if f.seq == i:
                        got = f
            answered += 1
        sock.close()
        assert emu.alive(), emu.log()
        with emu.client() as dev:
            dev.factory_reset()
            dev.reset()
            ref = Runner(qm).run(counts)
            assert np.array_equal(dev.samples(counts).logits, ref["logits"][0])
    assert answered == 2500
    assert "runtime error" not in emu.log() and "AddressSanitizer" not in emu.log()


def test_blob_checks_on_the_host_side(models):
    _, qa = models["A"]
    _, qc = models["C"]
    blob = build_blob(qa)
    hdr = parse_blob(blob)
    assert hdr.model_hash == qa.weights_hash() and hdr.arch_hash == arch_hash(qa)
    assert arch_hash(qc) != arch_hash(qa)
    with pytest.raises(DeviceError, match="magic"):
        parse_blob(b"XXXX" + blob[4:])
    with pytest.raises(DeviceError, match="header CRC"):
        parse_blob(blob[:10] + bytes([blob[10] ^ 1]) + blob[11:])
    with pytest.raises(DeviceError, match="payload CRC"):
        parse_blob(blob[:-1] + bytes([blob[-1] ^ 1]))
    with pytest.raises(DeviceError, match="truncated"):
        parse_blob(blob[:-8])


def test_cli_firmware_build_and_errors(models, tmp_path):
    import sys

    run, qm = models["A"]
    p = subprocess.run([sys.executable, "-m", "gaitedge", "firmware", "build", str(run), "--board", "host", "--out",
                        str(tmp_path / "fw")], capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr
    assert "weights blob" in p.stdout and (tmp_path / "fw" / "gaitedge-fw-host").is_file()
    p = subprocess.run([sys.executable, "-m", "gaitedge", "firmware", "build", str(tmp_path / "nope")],
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 2 and p.stderr.startswith("gaitedge: error:") and "Traceback" not in p.stderr
    p = subprocess.run([sys.executable, "-m", "gaitedge", "device", "info", "socket://127.0.0.1:1"],
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 2 and "cannot open" in p.stderr
    p = subprocess.run([sys.executable, "-m", "gaitedge", "flash", str(run)], capture_output=True, text=True,
                       timeout=60)
    assert p.returncode == 2 and "--port" in p.stderr
    with Emulator(tmp_path / "fw" / "gaitedge-fw-host") as emu:
        _, qb = models["B"]
        p = subprocess.run([sys.executable, "-m", "gaitedge", "flash", str(models["B"][0]), "--port", emu.url],
                           capture_output=True, text=True, timeout=120)
        assert p.returncode == 0, p.stderr
        assert qb.weights_hash()[:16] in p.stdout
        p = subprocess.run([sys.executable, "-m", "gaitedge", "flash", str(models["C"][0]), "--port", emu.url],
                           capture_output=True, text=True, timeout=120)
        assert p.returncode == 2 and "another model architecture" in p.stderr
        p = subprocess.run([sys.executable, "-m", "gaitedge", "device", "info", emu.url], capture_output=True,
                           text=True, timeout=60)
        assert p.returncode == 0 and "slot A (generation 1)" in p.stdout


def test_cli_device_emulate_prints_the_url_and_stops_on_ctrl_c(models, host):
    import signal
    import sys

    p = subprocess.Popen([sys.executable, "-m", "gaitedge", "device", "emulate", str(host.image)],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        url = None
        deadline = time.monotonic() + 60
        while url is None and time.monotonic() < deadline:
            line = p.stdout.readline()
            assert line, p.stderr.read()
            if "serial port (pyserial URL):" in line:
                url = line.split()[-1]
        with DeviceClient(url) as dev:
            assert dev.info().model_hash == models["A"][1].weights_hash()
        p.send_signal(signal.SIGINT)
        assert p.wait(timeout=90) == 0  # generous: a loaded CI machine shuts down slowly
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()


def test_cli_probe_without_pyocd_says_what_is_missing(host):
    import importlib.util
    import sys

    if importlib.util.find_spec("pyocd") is not None:
        pytest.skip("pyOCD is installed here (a probe test needs hardware)")
    p = subprocess.run([sys.executable, "-m", "gaitedge", "flash", str(host.image), "--probe"], capture_output=True,
                       text=True, timeout=60)
    assert p.returncode == 2 and "pyOCD" in p.stderr and "Traceback" not in p.stderr


def test_client_times_out_clearly_when_nothing_answers():
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(1)
    url = f"socket://127.0.0.1:{srv.getsockname()[1]}"
    try:
        with DeviceClient(url, timeout=0.2, retries=1) as dev:
            with pytest.raises(DeviceTimeout, match="no answer to INFO after 2 tries"):
                dev.info()
    finally:
        srv.close()
