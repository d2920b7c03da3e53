"""Live streaming through a gaitedge board, and the binary SAMPLES-frame source.

Tiny GRU (12 channels, 15 Hz low-pass, 30 ms output delay, debounce) trained on
synthetic gait -> quantized -> firmware -> the emulated Cortex-M4 board (QEMU
mps2-an386; the host build for the faster variants) -> ``gaitedge stream``
with the device backend, fed by ``imu-sim`` replaying a slice of a real IPOL
recording (subject 12): every label and event equals the Python integer
reference (``gaitedge.quant``) for the same samples.  Binary frames with
injected corruption are counted and the remaining samples processed; a board
restart mid-stream is a reported gap after which the board continues from a
fresh state; a board running another model is a clear error.
"""

from __future__ import annotations

import functools
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from fwtools import have, tmpdir
from gaitedge import cli
from gaitedge.data.recording import Recording
from gaitedge.errors import DataError, ModelError
from gaitedge.protocol import messages as M
from gaitedge.protocol.framing import encode_frame
from gaitedge.stream import (
    ColumnMap,
    DeviceBackend,
    ImuSim,
    Lane,
    OnnxBackend,
    PortSource,
    SamplesFrameDecoder,
    Session,
    read_log,
)

ROOT = Path(__file__).resolve().parents[1]
HAVE_QEMU = have("arm-none-eabi-gcc", "arm-none-eabi-size", "arm-none-eabi-objcopy", "qemu-system-arm")
HAVE_GCC = have("gcc")
qemu_only = pytest.mark.skipif(not HAVE_QEMU, reason="needs gcc-arm-none-eabi, libnewlib-arm-none-eabi and "
                                                     "qemu-system-arm (.ci/run installs them)")
host_only = pytest.mark.skipif(not HAVE_GCC, reason="needs gcc for the host build of the firmware")
#: the slice of the IPOL recording streamed (samples at 100 Hz): standing, then walking.
SLICE = (700, 1300)


# -- the model, the firmware, the recording ----------------------------------------------------


@functools.lru_cache(maxsize=None)
def _model():
    """(run folder, TrainedModel, QuantModel): a tiny GRU with a filter, an output delay and a debounce."""
    from gaitedge.config import Config
    from gaitedge.data.spec import load_spec
    from gaitedge.export import export_onnx
    from gaitedge.quant import calibration_recordings, quantize_model
    from gaitedge.training.train import train

    cfg = Config()
    cfg.data.train = "synthetic?n=5&trials=2"
    cfg.data.other_foot = True
    cfg.data.val_subjects = ["syn5"]
    cfg.data.lowpass_hz = 15.0
    cfg.events.delay_ms = 30.0
    cfg.model.name = "gru"
    cfg.model.hidden = 16
    cfg.train.seed = 0
    cfg.train.epochs = 3
    cfg.train.steps_per_epoch = 12
    cfg.train.batch_size = 16
    cfg.train.window_s = 2.5
    cfg.train.threads = 1
    tm, _, run = train(cfg, out_dir=tmpdir("stream-device") / "run", progress=False, force=True,
                       log=lambda *a, **k: None)
    qm = quantize_model(tm, calibration_recordings(tm, load_spec(cfg.data.train, other_foot=True)))
    qm.save(Path(run) / "quant.npz")
    export_onnx(tm, run)
    return Path(run), tm, qm


@pytest.fixture(scope="module")
def model():
    run, tm, qm = _model()
    assert qm.delay == 3 and qm.min_run > 1 and qm.pre.sos is not None
    return run, tm, qm


@pytest.fixture(scope="module")
def arm_image(model):
    from gaitedge.firmware import build_firmware

    return build_firmware(model[0], tmpdir("stream-device") / "mps2").image


@pytest.fixture(scope="module")
def host_image(model):
    from gaitedge.firmware import build_firmware

    return build_firmware(model[2], tmpdir("stream-device") / "host", board="host").image


@pytest.fixture(scope="module")
def walk(ipol_root) -> Recording:
    """Six seconds of IPOL subject 12 (left foot, with the right foot's channels): standing, then walking."""
    from gaitedge.data.spec import load_spec

    rec = load_spec(f"ipol:{ipol_root}?subjects=12&feet=left", other_foot=True)[0]
    a, b = SLICE
    return Recording(rec.signals[a:b].copy(), list(rec.channels), list(rec.units), rec.rate_hz,
                     source=f"{rec.source}[{a}:{b}]")


# -- the integer reference --------------------------------------------------------------------------


def reference(qm, counts: np.ndarray, pad: bool = True) -> tuple[np.ndarray, list[tuple[str, int]], int]:
    """What a backend reports for ``counts [n, C]`` streamed then flushed, by the integer reference:
    (label of every sample, events, label at the last step).

    ``Runner`` steps the counts (plus ``delay`` copies of the last one at a flush, ``pad``); the label
    it gives at step ``s`` is that of sample ``s - label_lag``, and the samples after the last of
    those take the last label (as every backend's flush does)."""
    from gaitedge.quant.model import Runner

    lag = qm.delay + max(1, qm.min_run) - 1
    steps = np.concatenate([counts, np.repeat(counts[-1:], qm.delay, 0)]) if pad else counts
    out = Runner(qm).run(steps)
    lab = out["label"][0]
    n = len(counts)
    labels = np.array([lab[j + lag] if j + lag < len(lab) else lab[-1] for j in range(n)], np.int64)
    events = [(M.EVENT_NAMES[int(e)], int(s)) for e, s in zip(out["event"][0], out["event_sample"][0]) if e]
    return labels, events, int(lab[-1])


def counts_of(qm, rec: Recording) -> np.ndarray:
    from gaitedge.quant.evaluate import recording_counts

    return recording_counts(qm, rec)


def stream(source, lanes, n: int, timeout: float = 60.0, until=None, **kw):
    """Run a session (to its end, or until ``until()`` returns, then stop it); (summary, records, labels
    of samples 0..n-1 (-9: none), the session)."""
    got = np.full(n, -9, np.int64)

    def on_labels(k, start, labels):
        for j, lab in enumerate(labels):
            if start + j < n:
                assert got[start + j] == -9, f"sample {start + j} labelled twice"
                got[start + j] = lab

    s = Session(source, lanes, on_labels=on_labels, **kw)
    if until is None:
        summary = s.run(timeout=timeout)
    else:
        s.start()
        until()
        s.stop()
        assert s.wait(timeout)
        summary = s.summary()
    return summary, list(s.recent), got, s


def events_of(records, foot: str = "foot") -> list[tuple[str, int]]:
    return [(r.kind, r.sample) for r in records if r.foot == foot]


def with_fills(counts: np.ndarray, records) -> np.ndarray:
    """The samples the session pushed: ``counts`` with each filled gap holding the sample before it."""
    out = counts.copy()
    for r in records:
        if r.kind == "gap" and r.foot == "" and "filled" in r.detail:
            k = int(r.detail.split()[0])
            out[r.sample : r.sample + k] = out[r.sample - 1]
    return out


# -- the binary frame source (no board) ----------------------------------------------------------


def test_frame_decoder_samples_counters_and_corrupt_frames():
    rng = np.random.default_rng(0)
    c = rng.integers(-32768, 32767, size=(10, 3)).astype(np.int16)
    frames = [encode_frame(M.SAMPLES, 65534 + i, M.encode_samples(c[i : i + 1])) for i in range(4)]
    frames.append(encode_frame(M.SAMPLES, 2, M.encode_samples(c[4:7])))  # three samples in one frame
    bad = bytearray(encode_frame(M.SAMPLES, 5, M.encode_samples(c[7:8])))
    bad[9] ^= 0x40  # one byte flipped: CRC error
    frames.append(bytes(bad))
    frames.append(b"\x01\x02garbage\x03")  # noise between frames: one framing error
    frames.append(encode_frame(M.BOOT, 0, b"not samples"))  # another type: skipped
    frames.append(encode_frame(M.SAMPLES, 7, M.encode_samples(c[8:10, :2])))  # wrong channel count
    frames.append(encode_frame(M.SAMPLES, 8, M.encode_samples(c[8:10])))
    wire = b"".join(frames)
    dec = SamplesFrameDecoder(3, source="imu")
    out = []
    for i in range(0, len(wire), 7):  # frames split across reads
        out += dec.feed(wire[i : i + 7], float(i))
    assert [s.counter for s in out] == [65534, 65535, 0, 1, 2, 3, 4, 8, 9]
    np.testing.assert_array_equal(np.stack([s.values for s in out]), np.concatenate([c[:7], c[8:10]]))
    assert all(s.values.dtype == np.float32 and np.isnan(s.t) for s in out)
    assert dec.stats.samples == 9 and dec.stats.corrupt == 3 and dec.stats.skipped == 1
    assert ColumnMap.for_frames(["a", "b", "c"]).counter_modulo == 1 << 16
    # physical units with a resolution per channel; a cut first frame after a (re)connect is not corrupt
    lsb = np.array([0.5, 0.25, 2.0])
    dec = SamplesFrameDecoder(3, lsb=lsb)
    got = dec.feed(frames[0][5:] + frames[1], 0.0)
    assert len(got) == 1 and dec.stats.corrupt == 0 and dec.stats.skipped == 1
    np.testing.assert_array_equal(got[0].values, (c[1] * lsb).astype(np.float32))
    # a device whose frames never match the layout is a user error, not endless corruption
    dec = SamplesFrameDecoder(12, source="imu")
    with pytest.raises(DataError, match="frames carry 3 channels but the layout expects 12"):
        dec.feed(b"".join(encode_frame(M.SAMPLES, i, M.encode_samples(c[i : i + 1])) for i in range(10)), 0.0)
    with pytest.raises(DataError, match="no time or counter field"):
        ColumnMap.for_frames(["a", "b"], spec="t,a,b")


def test_imusim_frames_through_onnx_backend_equal_offline(model, walk):
    """imu-sim serving int16 frames -> SamplesFrameDecoder (counts x the run's resolution) -> ONNX backend:
    the labels and events of ``TrainedModel.predict`` on the same dequantized samples."""
    run, tm, qm = model
    sim = ImuSim(walk, listen="tcp:0", speed=0, format="frames", frame_samples=5)
    url = sim.start()
    try:
        be = OnnxBackend(run)
        cmap = ColumnMap.for_frames(be.channels, be.units)
        source = PortSource.samples_frames(url, cmap, lsb=qm.pre.lsb)
        summary, records, labels, _ = stream(source, [Lane("foot", be, cmap)], len(walk), max_samples=len(walk))
    finally:
        sim.close()
    counts = counts_of(qm, walk)
    assert sim.stats.frames < len(walk) / 4
    phys = Recording((counts * qm.pre.lsb).astype(np.float32), list(walk.channels), list(walk.units), walk.rate_hz)
    _, _, ref_labels, ref_events = tm.predict(phys)
    assert summary.samples == len(walk) and summary.corrupt == summary.lost == 0
    np.testing.assert_array_equal(labels, ref_labels)
    assert sorted(events_of(records)) == sorted((k, int(s)) for k, v in ref_events.items() for s in v)


# -- through the emulated board --------------------------------------------------------------------


def _check_exact(qm, counts, labels, records) -> list[tuple[str, int]]:
    ref_labels, ref_events, _ = reference(qm, counts)
    np.testing.assert_array_equal(labels, ref_labels)
    assert events_of(records) == ref_events
    return ref_events


@qemu_only
@pytest.mark.parametrize("fmt", ["text", "frames"])
def test_stream_through_emulated_board_equals_integer_reference(model, arm_image, walk, fmt):
    """imu-sim (text lines on a pty at 5x real time, or binary frames as fast as read) -> session ->
    device backend -> QEMU board: every label and event is the integer reference's."""
    from gaitedge.device import Emulator

    run, _, qm = model
    if fmt == "text":
        sim = ImuSim(walk, listen="pty", speed=5.0)
    else:
        sim = ImuSim(walk, listen="tcp:0", speed=0, format="frames", frame_samples=4)
    with Emulator(arm_image) as emu:
        be = DeviceBackend(emu.url, model=run, counts=fmt == "frames")
        assert (be.channels, be.classes, be.delay) == (tuple(qm.channels), qm.classes, qm.delay)
        url = sim.start()
        try:
            if fmt == "text":
                cmap = ColumnMap.default_line(be.channels, be.units)
                source = PortSource.text_lines(url, cmap)
            else:
                cmap = ColumnMap.for_frames(be.channels, be.units)
                source = PortSource.samples_frames(url, cmap)
            summary, records, labels, _ = stream(source, [Lane("foot", be, cmap)], len(walk),
                                                 max_samples=len(walk))
        finally:
            sim.close()
        st = be.client.stats()
        be.close()
    assert "Lockup" not in emu.log()
    assert summary.samples == len(walk) and summary.corrupt == summary.lost == summary.dropped == 0
    assert summary.error == ""
    events = _check_exact(qm, counts_of(qm, walk), labels, records)
    assert len(events) >= 6 and len(set(labels.tolist())) >= 2
    assert be.restarts == 0 and be.samples_sent == len(walk) + qm.delay
    if fmt == "frames":  # samples queued while frames were in flight went out together
        assert be.frames_sent < len(walk) / 2
    assert st.crc_errors == st.framing_errors == st.overruns == st.naks == 0


@qemu_only
def test_cli_corrupted_frames_are_counted_and_the_rest_classified(model, arm_image, walk, tmp_path):
    """``gaitedge imu-sim --format frames --corrupt --garbage`` -> ``gaitedge stream --format frames
    --backend device`` (two processes) -> QEMU board: broken frames are counted, the samples they
    carried are filled as short gaps, and the events equal the integer reference of what was pushed."""
    from gaitedge.data import save_csv
    from gaitedge.device import Emulator
    from gaitedge.stream.sources import load_replay

    run, _, qm = model
    csv = tmp_path / "walk.csv"
    save_csv(walk, csv)
    log = tmp_path / "events.jsonl"
    with Emulator(arm_image) as emu:
        sim = subprocess.Popen(
            [sys.executable, "-m", "gaitedge", "imu-sim", "--replay", str(csv), "--listen", "tcp:0", "--speed", "5",
             "--format", "frames", "--corrupt", "0.03", "--garbage", "0.02", "--seed", "2"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT)
        proc = None
        try:
            url = sim.stdout.readline().strip()
            assert url.startswith("socket://"), sim.stderr.read()
            proc = subprocess.Popen(
                [sys.executable, "-m", "gaitedge", "stream", "--port", url, "--format", "frames", "--backend", "device",
                 "--device", emu.url, "--model", str(run), "--log", str(log), "--quiet"],
                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT)
            sim.wait(timeout=40)
            time.sleep(1.0)
            proc.send_signal(signal.SIGINT)
            out, err = proc.communicate(timeout=30)
        finally:
            for p in (sim, proc):
                if p is not None and p.poll() is None:
                    p.kill()
        sim_err = sim.stderr.read()
    assert proc.returncode == 0, err
    m = re.search(r"(\d+) samples in (\d+) frames sent .* (\d+) garbage runs, (\d+) corrupted", sim_err)
    assert m, sim_err
    sent, _, garbage, corrupted = map(int, m.groups())
    assert sent == len(walk) and corrupted >= 5 and garbage >= 3
    s = re.search(r"(\d+) samples received.*lost (\d+) in (\d+) gaps \(filled (\d+)\), corrupt (\d+)", out, re.S)
    assert s, out
    received, lost, _, filled, corrupt = map(int, s.groups())
    assert corrupt == corrupted + garbage  # every broken frame and every run of noise, counted once
    assert received == len(walk) - corrupted and lost == filled == corrupted
    assert "board mps2-an386" in out and "0 restart(s)" in out
    rows = read_log(log)
    records = [SimpleNamespace(kind=r["kind"], foot=r["foot"], sample=r["sample"], detail=r.get("detail", ""))
               for r in rows]
    pushed = with_fills(counts_of(qm, load_replay(str(csv))), records)
    _, ref_events, _ = reference(qm, pushed)
    assert events_of(records) == ref_events and len(ref_events) >= 6


# -- faster variants on the host build ----------------------------------------------------------------


@host_only
def test_host_build_corrupt_frames_labels_equal_reference(model, host_image, walk):
    """The same with the library session on the host build: every label of the pushed samples too."""
    from gaitedge.device import Emulator

    run, _, qm = model
    sim = ImuSim(walk, listen="tcp:0", speed=10.0, format="frames", corrupt=0.04, garbage=0.02, seed=4)
    with Emulator(host_image) as emu:
        be = DeviceBackend(emu.url, counts=True)
        cmap = ColumnMap.for_frames(be.channels, be.units)
        url = sim.start()
        try:
            summary, records, labels, _ = stream(PortSource.samples_frames(url, cmap), [Lane("foot", be, cmap)],
                                                 len(walk), reconnect=False)
            assert sim.join(10)
        finally:
            sim.close()
        be.close()
    assert sim.stats.corrupted >= 5 and summary.corrupt == sim.stats.corrupted + sim.stats.garbage
    assert summary.lost == summary.filled == sim.stats.corrupted
    pushed = with_fills(counts_of(qm, walk), records)
    n = summary.pushed
    ref_labels, ref_events, _ = reference(qm, pushed[:n])
    np.testing.assert_array_equal(labels[:n], ref_labels)
    assert events_of(records) == ref_events


@pytest.mark.parametrize("board,wait", [
    pytest.param("host", None, marks=host_only), pytest.param("host", True, marks=host_only),
    pytest.param("host", False, marks=host_only), pytest.param("qemu", None, marks=qemu_only),
])
def test_board_restart_mid_stream_is_a_gap_then_a_fresh_segment(model, walk, request, board, wait):
    """The board restarts (REBOOT) while samples are in flight: the backend reports a gap at the first
    sample without a result, resets the board, sends those samples again; the old segment keeps its
    decided labels (its undecided tail the last label), the new one equals the reference from there."""
    from gaitedge.device import Emulator

    _, _, qm = model
    image = request.getfixturevalue("host_image" if board == "host" else "arm_image")
    counts = counts_of(qm, walk)
    n, lag = len(counts), qm.delay + qm.min_run - 1
    got = np.full(n, -9, np.int64)
    events: list[tuple[str, int]] = []

    def take(d):
        for k, lab in enumerate(d.labels):
            assert got[d.start + k] == -9
            got[d.start + k] = lab
        events.extend((e.kind, e.sample) for e in d.events)

    with Emulator(image) as emu:
        be = DeviceBackend(emu.url, counts=True, wait=wait)
        for i in range(n):
            if i == 250:
                be.client.request(M.REBOOT)
            take(be.push(counts[i].astype(np.float32)))
        take(be.flush())
        be.close()
    gaps = [s for k, s in events if k == "gap"]
    assert len(gaps) == 1 and be.restarts == 1 and "restarted" in be.incidents[0]
    at = gaps[0]
    assert lag < at <= 250
    old_labels, old_events, old_last = reference(qm, counts[:at], pad=False)
    new_labels, new_events, _ = reference(qm, counts[at:])
    expected = np.concatenate([old_labels[: at - lag], [old_last] * lag, new_labels])
    np.testing.assert_array_equal(got, expected)
    assert events == old_events + [("gap", at)] + [(k, s + at) for k, s in new_events]


@host_only
def test_model_mismatch_and_option_errors_are_clear(model, host_image, tmp_path, capsys):
    from gaitedge.device import Emulator
    from gaitedge.quant.model import QuantModel

    run, _, qm = model
    other = tmp_path / "other"
    other.mkdir()
    q = QuantModel.load(run / "quant.npz")
    q.channels = list(reversed(q.channels))
    q.rate_hz = 50.0
    q.save(other / "quant.npz")
    retrained = tmp_path / "retrained"
    retrained.mkdir()
    q = QuantModel.load(run / "quant.npz")
    q.head_bias = q.head_bias + 1
    q.save(retrained / "quant.npz")
    with Emulator(host_image) as emu:
        with pytest.raises(ModelError, match=r"runs another model .*channels .*rate 100 Hz on the board, 50 Hz"):
            DeviceBackend(emu.url, model=other)
        with pytest.raises(ModelError, match="gaitedge flash"):
            DeviceBackend(emu.url, model=retrained)

        def err(*args: str) -> str:
            assert cli.main(list(args)) == 2
            e = capsys.readouterr().err
            assert e.startswith("gaitedge: error: ") and e.count("\n") == 1, e
            return e

        assert "runs another model" in err("stream", "--port", "loop://", "--backend", "device", "--device", emu.url,
                                           "--model", str(other))
        assert "--scale does not apply" in err("stream", "--port", "loop://", "--backend", "device", "--device",
                                               emu.url, "--format", "frames", "--scale", "2")
    assert "needs --device URL" in err("stream", "--port", "loop://", "--backend", "device")
    assert "--device applies to --backend device" in err("stream", "--port", "loop://", "--model", str(run),
                                                         "--device", "socket://127.0.0.1:1")
    assert "--format frames applies to --port" in err("stream", "--replay", "x.csv", "--model", str(run),
                                                      "--format", "frames")
    assert "cannot open" in err("stream", "--port", "loop://", "--backend", "device", "--device",
                                "socket://127.0.0.1:1")


@host_only
def test_unplugged_imu_long_gap_flushes_the_board_then_starts_afresh(model, host_image, walk):
    """An IMU sending frames is unplugged for 1 s: the session flushes the board at the gap (the sample
    counter says how many are missing) and starts a new segment; both equal the integer reference."""
    from gaitedge.device import Emulator

    _, _, qm = model
    counts = counts_of(qm, walk)
    sim = ImuSim(walk, listen="tcp:0", speed=2.0, format="frames", unplugs=[(2.0, 1.0)], settle_s=0.05)

    def sim_done() -> None:
        assert sim.join(20)
        time.sleep(0.3)

    with Emulator(host_image) as emu:
        be = DeviceBackend(emu.url, counts=True)
        cmap = ColumnMap.for_frames(be.channels, be.units)
        url = sim.start()
        try:
            summary, records, labels, _ = stream(PortSource.samples_frames(url, cmap), [Lane("foot", be, cmap)],
                                                 len(walk), until=sim_done, backoff_s=(0.02, 0.1))
        finally:
            sim.close()
        be.close()
    gaps = [r for r in records if r.kind == "gap"]
    assert len(gaps) == 1 and "model restarted" in gaps[0].detail and sim.stats.unplugs == 1
    first = gaps[0].sample
    resume = first + int(gaps[0].detail.split()[0])
    assert first == 200 and resume < len(walk) - 100
    assert summary.samples + summary.lost == len(walk) and summary.lost == sim.stats.lost
    end = len(walk)
    for lo, hi in ((0, first), (resume, end)):
        ref_labels, ref_events, _ = reference(qm, counts[lo:hi])
        np.testing.assert_array_equal(labels[lo:hi], ref_labels)
        assert [e for e in events_of(records) if lo <= e[1] < hi] == [(k, s + lo) for k, s in ref_events]
    assert (labels[first:resume] == -9).all() and be.restarts == 0
