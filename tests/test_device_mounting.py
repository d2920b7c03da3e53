"""Sensor mounting on the device: SET_MOUNTING / GET_MOUNTING over a real link (TCP, pty),
the flash record (reboot, torn write), the CLI, and the emulated Cortex-M4 board.

The host build of the firmware (boards/host, flash in a file) and the mps2-an386 image
under QEMU run a small 12-channel GRU; every output is compared with the Python
integer twin ``Runner(qm, mounting=...)``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from fwtools import FW, PROTO, RUNTIME, SANITIZE, have, sanitizers_work, tmpdir
from gaitedge.data.spec import load_spec
from gaitedge.device import DeviceClient, Emulator
from gaitedge.export.packing import build_blob
from gaitedge.device.client import DeviceNak
from gaitedge.device.mounting import read_mounting_file, triads_for_channels
from gaitedge.errors import DataError
from gaitedge.protocol import messages as M
from gaitedge.quant import Runner, quantize_model
from gaitedge.quant.evaluate import recording_counts
from gaitedge.quant.mounting import Triad, rotation_q14

sys.path.insert(0, str(Path(__file__).resolve().parent))
from test_quant import make_tm  # noqa: E402

pytestmark = pytest.mark.skipif(not have("gcc"), reason="no host C compiler")
ROOT = Path(__file__).resolve().parents[1]
RECORD = 128  # FW_MOUNT_RECORD_BYTES
SLOTS = 2 * 512 * 1024  # the host board's weight slots precede the two 4 KB settings pages
CFG = 4096


@pytest.fixture(scope="module")
def models():
    """Two quantized 12-channel GRUs of the same architecture (different weights) and recordings."""
    recs = load_spec("synthetic?n=2&trials=1", other_foot=True)
    qa = quantize_model(make_tm(recs, family="gru", hidden=8, lowpass=12.0, min_run=2, seed=0), recs)
    qb = quantize_model(make_tm(recs, family="gru", hidden=8, lowpass=12.0, min_run=2, seed=1), recs)
    return qa, qb, recs


@pytest.fixture(scope="module")
def host(models):
    from gaitedge.firmware import build_firmware

    qa = models[0]
    flags = SANITIZE if sanitizers_work() else None
    return build_firmware(qa, tmpdir("mount-host"), board="host", extra_cflags=flags)


def rotations(seed: int) -> list[np.ndarray]:
    r = Rotation.random(3, random_state=seed).as_matrix()
    r[1] = r[1] @ np.diag([1.0, 1.0, -1.0])  # one mirrored sensor
    return list(r)


def foot_triads(seed: int, n: int = 4) -> list[Triad]:
    """acc, gyr of the worn foot (one matrix), then the other foot's (another matrix)."""
    a, b, _ = rotations(seed)
    qa, qb = rotation_q14(a), rotation_q14(b)
    return [Triad((0, 1, 2), qa), Triad((3, 4, 5), qa), Triad((6, 7, 8), qb), Triad((9, 10, 11), qb)][:n]


def twin(qm, counts, triads):
    return Runner(qm, mounting=triads).run(counts)


def assert_same(res, ref):
    for k in ("label", "raw_label", "event", "event_sample", "logits"):
        assert np.array_equal(getattr(res, k), ref[k][0]), k


def test_set_get_refuse_and_outputs_equal_twin(models, host):
    qa, _, recs = models
    counts = recording_counts(qa, recs[-1])[:300]
    t4 = foot_triads(1)
    with Emulator(host.image) as emu, emu.client() as dev:
        first = dev.mounting()
        assert (first.generation, first.triads) == (0, [])
        assert_same(dev.samples(counts), twin(qa, counts, []))
        got = dev.set_mounting(t4)
        assert got.generation == 1 and got == M.MountingState.of(t4, 1)
        assert dev.info().steps == 0  # SET_MOUNTING restarts the stream
        ref = twin(qa, counts, t4)
        assert not np.array_equal(ref["logits"], twin(qa, counts, [])["logits"])
        assert_same(dev.stream(counts, batch=13), ref)
        # refused: the previous mounting stays in force
        good = M.MountingState.of(t4).encode()
        bad = {
            "5 triads": (M.MountingState.of(t4 + t4[:1]).encode(), M.E_MOUNT_TRIADS, 4),
            "length": (good[:-1], M.E_LENGTH, len(good)),
            "short": (b"\x01", M.E_LENGTH, 4),
            "index 12": (M.MountingState.of([Triad((0, 1, 12), t4[0].rot)]).encode(), M.E_MOUNT_INDEX, 2),
            "repeated": (M.MountingState.of([t4[0], Triad((5, 2, 6), t4[0].rot)]).encode(), M.E_MOUNT_INDEX, 4),
            "not a rotation": (M.MountingState.of([t4[0], Triad((3, 4, 5), np.diag([16384, 16384, 15000]))]).encode(),
                               M.E_MOUNT_ROTATION, 1),
            "entry beyond 2^14": (M.MountingState.of([Triad((0, 1, 2), np.diag([16500, 16384, 16384]))]).encode(),
                                  M.E_MOUNT_ROTATION, 0),
        }
        for what, (payload, code, detail) in bad.items():
            assert M.check_mounting(payload, qa.n_inputs) == (code, detail), what
            with pytest.raises(DeviceNak) as e:
                dev.request(M.SET_MOUNTING, payload)
            assert (e.value.nak.code, e.value.nak.detail) == (code, detail), what
            assert e.value.nak.message, what
        assert dev.mounting() == M.MountingState.of(t4, 1)
        dev.reset()
        assert_same(dev.samples(counts), ref)
        # the same mounting again writes nothing (generation unchanged); identity triads cost nothing
        assert dev.set_mounting(t4).generation == 1
        eye = [Triad(t.channels, rotation_q14(np.eye(3))) for t in t4]
        got = dev.set_mounting(eye)
        assert got.generation == 2 and got.identity
        assert_same(dev.samples(counts), twin(qa, counts, []))
        assert dev.set_mounting([]).triads == []
        st = dev.stats()
        assert st.naks == len(bad) and st.crc_errors == st.framing_errors == 0
    assert "runtime error" not in emu.log() and "AddressSanitizer" not in emu.log()


def _page_of_generation(flash: Path, gen: int) -> int:
    data = flash.read_bytes()
    for k in range(2):
        rec = data[SLOTS + k * CFG : SLOTS + k * CFG + RECORD]
        if rec[:4] == b"GEMT" and int.from_bytes(rec[4:8], "little") == gen:
            return k
    raise AssertionError(f"no record of generation {gen}")


def _patch(flash: Path, offset: int, data: bytes) -> None:
    with open(flash, "r+b") as f:
        f.seek(offset)
        f.write(data)


def test_mounting_survives_restarts_weight_updates_and_torn_writes(models, host):
    qa, qb, recs = models
    counts = recording_counts(qa, recs[0])[:200]
    m1, m2, m3 = foot_triads(2), foot_triads(3, 2), foot_triads(4, 3)
    flash = tmpdir("mount-flash") / "flash.bin"
    if flash.exists():
        flash.unlink()
    with Emulator(host.image, flash_file=flash) as emu, emu.client() as dev:
        assert dev.set_mounting(m1).generation == 1
        assert dev.set_mounting(m2).generation == 2
    p1, p2 = _page_of_generation(flash, 1), _page_of_generation(flash, 2)
    assert p1 != p2
    # restart (power cycle): the newest record is in force, and the weight update keeps it
    with Emulator(host.image, flash_file=flash) as emu, emu.client() as dev:
        assert dev.mounting() == M.MountingState.of(m2, 2)
        assert_same(dev.samples(counts), twin(qa, counts, m2))
        dev.flash(build_blob(qb))
        assert dev.mounting() == M.MountingState.of(m2, 2)
        assert_same(dev.samples(counts), twin(qb, counts, m2))
    # a write torn in the middle of the newest record (its second half never programmed): the previous one runs
    _patch(flash, SLOTS + p2 * CFG + 60, b"\xff" * (RECORD - 60))
    with Emulator(host.image, flash_file=flash) as emu, emu.client() as dev:
        assert dev.mounting() == M.MountingState.of(m1, 1)
        assert_same(dev.samples(counts), twin(qb, counts, m1))
        # the next one goes to the page of the torn record; the page of m1 is not touched
        before = flash.read_bytes()[SLOTS + p1 * CFG : SLOTS + (p1 + 1) * CFG]
        assert dev.set_mounting(m3).generation == 2
        assert _page_of_generation(flash, 2) == p2
        assert flash.read_bytes()[SLOTS + p1 * CFG : SLOTS + (p1 + 1) * CFG] == before
    # a flipped bit (CRC) in the newest record: the previous one again
    data = flash.read_bytes()
    _patch(flash, SLOTS + p2 * CFG + 30, bytes([data[SLOTS + p2 * CFG + 30] ^ 0x04]))
    with Emulator(host.image, flash_file=flash) as emu, emu.client() as dev:
        assert dev.mounting() == M.MountingState.of(m1, 1)
        dev.factory_reset()  # weights and mounting
        assert dev.mounting().triads == [] and dev.info().source == "built-in"
        assert_same(dev.samples(counts), twin(qa, counts, []))
    with Emulator(host.image, flash_file=flash) as emu, emu.client() as dev:
        assert dev.mounting().generation == 0


def test_pty_link_and_reboot(models, host):
    qa, _, recs = models
    counts = recording_counts(qa, recs[1])[:150]
    t2 = foot_triads(5, 2)
    p = subprocess.Popen([str(host.image), "--pty"], stdout=subprocess.PIPE, stdin=subprocess.DEVNULL)
    try:
        line = p.stdout.readline().decode().split()
        with DeviceClient(line[1]) as dev:
            dev.set_mounting(t2)
            boot = dev.reboot()
            assert boot is not None and boot.steps == 0
            assert dev.mounting() == M.MountingState.of(t2, 1)
            assert_same(dev.samples(counts), twin(qa, counts, t2))
    finally:
        p.kill()
        p.wait()


def write_file(path: Path, matrices: dict[str, np.ndarray]) -> Path:
    if path.suffix == ".toml":
        lines = ['frame = "foot-canonical"']
        for name, m in matrices.items():
            rows = ", ".join("[" + ", ".join(repr(float(v)) for v in row) + "]" for row in m)
            lines.append(f'[sensors.{name}]\nmatrix = [{rows}]')
        path.write_text("\n".join(lines) + "\n")
    else:
        path.write_text(json.dumps({"frame": "foot-canonical",
                                    "sensors": {k: {"matrix": np.asarray(m).tolist()} for k, m in matrices.items()}}))
    return path


def test_mounting_file_to_triads(tmp_path):
    left, right, back = rotations(6)
    channels = ["acc_x", "acc_y", "acc_z", "gyr_x", "gyr_y", "gyr_z", "other_acc_x", "other_acc_y", "other_acc_z",
                "other_gyr_x", "other_gyr_y", "other_gyr_z", "back_acc_x", "back_acc_y", "back_acc_z"]
    for suffix in (".json", ".toml"):
        sensors = read_mounting_file(write_file(tmp_path / f"m{suffix}", {"left": left, "right": right}))
        assert np.allclose(sensors["left"], left) and np.allclose(sensors["right"], right)
        triads, text = triads_for_channels(channels[:12], sensors, "right")
        assert [t.channels for t in triads] == [(0, 1, 2), (3, 4, 5), (6, 7, 8), (9, 10, 11)]
        assert np.array_equal(triads[0].rot, rotation_q14(right)) and np.array_equal(triads[2].rot, rotation_q14(left))
        assert text[0].startswith("right acc")
    sensors = read_mounting_file(write_file(tmp_path / "b.json", {"back": back, "left": left}))
    triads, _ = triads_for_channels(channels, sensors, "left")
    assert [t.channels for t in triads] == [(0, 1, 2), (3, 4, 5), (12, 13, 14)]
    with pytest.raises(DataError, match="at most 4"):
        triads_for_channels(channels[:6] + channels[6:12] + channels[12:] + ["back_gyr_x", "back_gyr_y", "back_gyr_z"],
                            read_mounting_file(write_file(tmp_path / "s.json", {"*": left})), "left")
    with pytest.raises(DataError, match="not a rotation"):
        read_mounting_file(write_file(tmp_path / "n.json", {"left": 2 * left}))
    # axis maps work as well as files
    amap = read_mounting_file("left=x=-y,y=x,z=z,right=x=y,y=-x,z=z")
    assert np.array_equal(amap["left"], [[0, -1, 0], [1, 0, 0], [0, 0, 1]])
    with pytest.raises(DataError, match="mounting file not found"):
        read_mounting_file(tmp_path / "missing.json")
    (tmp_path / "bad.json").write_text('{"sensors": {"nose": {"matrix": [[1,0,0],[0,1,0],[0,0,1]]}}}')
    with pytest.raises(DataError, match="unknown sensor"):
        read_mounting_file(tmp_path / "bad.json")
    (tmp_path / "bad.toml").write_text("sensors = 3\n[[x")
    with pytest.raises(DataError, match="not a valid mounting file"):
        read_mounting_file(tmp_path / "bad.toml")


def _cli_process(*args: str) -> subprocess.CompletedProcess:
    """``python -m gaitedge ARGS`` as a separate process."""
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.run([sys.executable, "-m", "gaitedge", *args], capture_output=True, text=True, env=env,
                          timeout=60)


def _cli(*args: str) -> subprocess.CompletedProcess:
    """``gaitedge ARGS`` in this process (``gaitedge.cli.main``): return code, stdout, stderr.
    An exception other than a GaitedgeError (a traceback for the user) fails the test."""
    import contextlib
    import io

    from gaitedge.cli import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(list(args))
    return subprocess.CompletedProcess(list(args), code, out.getvalue(), err.getvalue())


def test_cli_device_mounting_and_info(models, host, tmp_path):
    qa, _, recs = models
    left, right, _ = rotations(7)
    f = write_file(tmp_path / "mount.toml", {"left": left, "right": right})
    counts = recording_counts(qa, recs[0])[:120]
    with Emulator(host.image) as emu:
        r = _cli("device", "mounting", "--port", emu.url, str(f), "--foot", "right")
        assert r.returncode == 0, r.stderr
        assert "right acc: acc_x, acc_y, acc_z" in r.stdout and "generation 1" in r.stdout
        r = _cli("device", "info", emu.url)
        assert r.returncode == 0, r.stderr
        assert "mounting (generation 1): 4 triads" in r.stdout and "acc_x, acc_y, acc_z: [" in r.stdout
        with emu.client() as dev:
            want = triads_for_channels(list(qa.channels), read_mounting_file(f), "right")[0]
            assert dev.mounting() == M.MountingState.of(want, 1)
            assert_same(dev.samples(counts), twin(qa, counts, want))
        r = _cli("device", "mounting", "--port", emu.url, "--identity")
        assert r.returncode == 0 and "mounting: none" in r.stdout, r.stderr
        # errors: one line, no traceback, nothing changed on the board
        write_file(tmp_path / "skew.json", {"left": np.eye(3) + 0.1})
        for args, text in [((str(tmp_path / "nope.json"),), "mounting file not found"),
                           ((str(tmp_path / "skew.json"),), "not a rotation"),
                           ((str(f), "--identity"), "not both"),
                           (("auto",), "auto needs --data")]:
            r = _cli("device", "mounting", "--port", emu.url, *args)
            assert r.returncode != 0 and "Traceback" not in r.stderr, r.stderr
            lines = r.stderr.strip().splitlines()
            assert len(lines) == 1 and lines[0].startswith("gaitedge: error:") and text in lines[0], r.stderr
        with emu.client() as dev:
            assert dev.mounting().generation == 2
    r = _cli_process("device", "mounting", "--port", "socket://127.0.0.1:9", str(f), "--timeout", "0.3")
    lines = r.stderr.strip().splitlines()
    assert r.returncode != 0 and len(lines) == 1 and lines[0].startswith("gaitedge: error:"), r.stderr


@pytest.mark.skipif(not have("arm-none-eabi-gcc", "arm-none-eabi-size", "arm-none-eabi-objcopy", "qemu-system-arm"),
                    reason="needs gcc-arm-none-eabi, libnewlib-arm-none-eabi and qemu-system-arm")
def test_emulated_cortex_m4_board(models):
    """The real firmware image on QEMU mps2-an386: set, outputs == twin, REBOOT keeps it."""
    from gaitedge.firmware import build_firmware

    qa, _, recs = models
    fw = build_firmware(qa, tmpdir("mount-mps2"), board="mps2-an386")
    counts = recording_counts(qa, recs[1])[:250]
    t4 = foot_triads(8)
    with Emulator(fw.image) as emu:
        with emu.client(timeout=5) as dev:
            assert dev.mounting().generation == 0
            assert dev.set_mounting(t4) == M.MountingState.of(t4, 1)
            ref = twin(qa, counts, t4)
            assert_same(dev.stream(counts), ref)
            with pytest.raises(DeviceNak) as e:
                dev.request(M.SET_MOUNTING,
                            M.MountingState.of([Triad((0, 1, 2), np.diag([16384, 16384, 0]))]).encode())
            assert e.value.nak.code == M.E_MOUNT_ROTATION
            boot = dev.reboot()
            assert boot is not None and boot.board == "mps2-an386"
            assert dev.mounting() == M.MountingState.of(t4, 1)
            assert_same(dev.stream(counts), ref)
        r = _cli("device", "info", emu.url)  # the board serves one client at a time
        assert r.returncode == 0 and "mounting (generation 1): 4 triads" in r.stdout, r.stderr
    assert "Lockup" not in emu.log()


def test_mounting_sources_compile_without_warnings(host):
    """fw_mount.c and fw_mount_store.c are -Werror -pedantic clean for the host and the Cortex-M4."""
    fwd = FW
    inc = [f"-I{p}" for p in (RUNTIME / "include", host.out_dir / "model", host.out_dir / "gen", PROTO, fwd)]
    for src in (fwd / "fw_mount.c", fwd / "fw_mount_store.c", fwd / "fw_app.c"):
        p = subprocess.run(["gcc", "-std=c99", "-O2", "-Wall", "-Wextra", "-Werror", "-pedantic", "-Wshadow", *inc,
                            "-c", str(src), "-o", os.devnull], capture_output=True, text=True)
        assert p.returncode == 0, p.stderr
        if have("arm-none-eabi-gcc"):
            p = subprocess.run(["arm-none-eabi-gcc", "-std=c99", "-O2", "-mcpu=cortex-m4", "-mthumb",
                                "-mfloat-abi=soft", "-DGE_USE_DSP", "-Wall", "-Wextra", "-Werror", "-pedantic", *inc,
                                "-c", str(src), "-o", os.devnull], capture_output=True, text=True)
            assert p.returncode == 0, p.stderr


def test_device_verdicts_equal_python_on_random_payloads(models, host):
    """Random SET_MOUNTING payloads over the link (sanitized host build): the board's NAK code and
    detail, or the mounting it reports, equal gaitedge.protocol's check_mounting."""
    qa = models[0]
    rng = np.random.default_rng(9)
    with Emulator(host.image) as emu, emu.client() as dev:
        accepted = 0
        for _ in range(150):
            n = int(rng.integers(0, 6))
            perm = rng.permutation(16)
            triads = []
            for k in range(n):
                q = np.round(Rotation.random(random_state=int(rng.integers(1 << 30))).as_matrix() * 16384)
                q = q + rng.integers(-40, 41, (3, 3)) * (rng.random() < 0.4)
                triads.append((tuple(int(c) for c in perm[3 * k : 3 * k + 3]), tuple(int(v) for v in q.ravel())))
            payload = M.MountingState(triads).encode()
            if rng.random() < 0.1:
                payload = payload[: int(rng.integers(0, len(payload) + 1))]
            code, detail = M.check_mounting(payload, qa.n_inputs)
            if code:
                with pytest.raises(DeviceNak) as e:
                    dev.request(M.SET_MOUNTING, payload)
                assert (e.value.nak.code, e.value.nak.detail) == (code, detail)
            else:
                got = M.MountingState.decode_reply(dev.request(M.SET_MOUNTING, payload))
                assert got.triads == M.MountingState.decode(payload).triads
                accepted += 1
        assert accepted >= 10
        assert dev.mounting().triads == got.triads or accepted == 0
    assert "runtime error" not in emu.log() and "AddressSanitizer" not in emu.log()


def test_flash_file_of_the_slots_only_size_gets_settings_pages(models, host):
    """A flash file written by a firmware without settings pages keeps its slots and gains the pages."""
    qa, qb, recs = models
    flash = tmpdir("mount-oldfile") / "flash.bin"
    flash.write_bytes(b"\xff" * SLOTS)
    with Emulator(host.image, flash_file=flash) as emu, emu.client() as dev:
        dev.flash(build_blob(qb))
    flash.write_bytes(flash.read_bytes()[:SLOTS])  # as the older firmware left it
    t2 = foot_triads(10, 2)
    with Emulator(host.image, flash_file=flash) as emu, emu.client() as dev:
        assert dev.info().model_hash == qb.weights_hash() and dev.mounting().generation == 0
        dev.set_mounting(t2)
    assert flash.stat().st_size == SLOTS + 2 * CFG
    counts = recording_counts(qa, recs[0])[:100]
    with Emulator(host.image, flash_file=flash) as emu, emu.client() as dev:
        assert dev.mounting() == M.MountingState.of(t2, 1)
        assert_same(dev.samples(counts), twin(qb, counts, t2))
