"""Live streaming: virtual IMU on a pty / TCP -> session -> events equal to offline prediction; faults; CLI."""

from __future__ import annotations

import io
import json
import math
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from gaitedge import cli
from gaitedge.checkpoint import TrainedModel, load_checkpoint
from gaitedge.config import Config
from gaitedge.data.recording import Recording
from gaitedge.data.spec import load_spec
from gaitedge.errors import DataError
from gaitedge.export import export_onnx
from gaitedge.stream import (
    ColumnMap,
    ImuSim,
    Lane,
    LineParser,
    OnnxBackend,
    PortSource,
    ReplaySource,
    Session,
    TextLineDecoder,
    TorchBackend,
    read_log,
)
from gaitedge.stream.session import GaitTracker
from gaitedge.stream.sources import CorruptLine, SourceError, parse_scale
from gaitedge.stream.view import EventLog, TerminalView, format_summary
from gaitedge.training.train import train
from streamtools import Lines

SPEED = 20.0
LEFT = ["acc_x", "acc_y", "acc_z", "gyr_x", "gyr_y", "gyr_z"]
OTHER = [f"other_{c}" for c in LEFT]


@pytest.fixture(scope="module")
def run() -> tuple[TrainedModel, Path]:
    """A tiny GRU (12 channels: both feet) with a low-pass, output delay and debounce, exported to ONNX."""
    torch.set_num_threads(1)
    cfg = Config()
    cfg.data.train = "synthetic?n=3&trials=1"
    cfg.data.lowpass_hz = 15.0
    cfg.model.hidden = 16
    cfg.train.epochs = 2
    cfg.train.steps_per_epoch = 15
    cfg.train.batch_size = 16
    cfg.train.window_s = 2.0
    cfg.train.lr = 0.02
    cfg.train.threads = 1
    cfg.events.delay_ms = 20.0
    import tempfile

    out = Path(tempfile.mkdtemp(prefix="gaitedge-stream-")) / "run"
    tm, _, out = train(cfg, out_dir=out, progress=False, log=lambda *a: None)
    export_onnx(tm, out)
    return load_checkpoint(out), out


@pytest.fixture(scope="module")
def recs() -> list[Recording]:
    """A held-out subject's left- and right-foot recordings, each with the other foot's channels."""
    return load_spec("synthetic?n=6&trials=1&subjects=6", other_foot=True)


@pytest.fixture(scope="module")
def offline(run, recs):
    """``TrainedModel.predict`` of the left-foot recording: (labels, [(kind, sample), ...])."""
    tm, _ = run
    _, _, labels, events = tm.predict(recs[0])
    return labels, _event_list(events)


def _event_list(events: dict) -> list[tuple[str, int]]:
    return sorted((k, int(s)) for k, v in events.items() for s in v)


def _onnx_lane(run_dir: Path, name: str = "foot", columns=None) -> Lane:
    be = OnnxBackend(run_dir)
    cmap = ColumnMap.parse(columns, be.channels, be.units) if columns else ColumnMap.default_line(be.channels, be.units)
    return Lane(name, be, cmap)


def _stream(source, lanes, n: int | None = None, timeout: float = 40.0, **kw):
    """Run a session; returns (summary, records, labels per lane as arrays over ``n`` samples)."""
    got: list[dict[int, int]] = [dict() for _ in lanes]

    def on_labels(k, start, labels):
        for j, lab in enumerate(labels):
            got[k][start + j] = int(lab)

    s = Session(source, lanes, on_labels=on_labels, **kw)
    summary = s.run(timeout=timeout)
    records = list(s.recent)
    size = n if n is not None else max((max(g) + 1 for g in got if g), default=0)
    arrays = []
    for g in got:
        a = np.full(size, -1, np.int64)
        for i, lab in g.items():
            if i < size:
                a[i] = lab
        arrays.append(a)
    return summary, records, arrays


def _events_of(records, foot: str = "foot") -> list[tuple[str, int]]:
    return sorted((r.kind, r.sample) for r in records if r.foot == foot)


# -- the exact comparison ---------------------------------------------------------------


@pytest.mark.parametrize("listen", ["pty", "tcp:0"])
def test_virtual_imu_stream_equals_offline(run, recs, offline, listen):
    _, run_dir = run
    rec = recs[0]
    sim = ImuSim(rec, listen=listen, speed=SPEED)
    url = sim.start()
    assert url.startswith("/dev/") if listen == "pty" else url.startswith("socket://127.0.0.1:")
    try:
        lane = _onnx_lane(run_dir)
        source = PortSource.text_lines(url, lane.columns)
        summary, records, (labels,) = _stream(source, [lane], n=len(rec), max_samples=len(rec))
    finally:
        sim.close()
    ref_labels, ref_events = offline
    assert summary.samples == len(rec) and summary.pushed == len(rec)
    assert summary.corrupt == summary.dropped == summary.lost == summary.gaps == 0
    assert len(ref_events) >= 4
    assert _events_of(records) == ref_events
    np.testing.assert_array_equal(labels, ref_labels)
    # stream time on the log is the device clock: sample / 100 Hz
    for r in records:
        assert r.t_s == pytest.approx(r.sample / rec.rate_hz, abs=1e-6)
    assert summary.latency_n == len(rec) and 0 < summary.latency_p50_ms <= summary.latency_p99_ms < 1000
    assert summary.steps == 2 * summary.lanes[0].heel_strikes


def test_torch_backend_agrees_with_onnx(run, recs, offline):
    tm, run_dir = run
    rec = recs[0]
    onnx_lane = Lane("foot", OnnxBackend(run_dir), ColumnMap.parse(rec.channels, tm.channels))
    torch_lane = Lane("torch", TorchBackend(tm), ColumnMap.parse(rec.channels, tm.channels))
    _, records, (a, b) = _stream(ReplaySource(rec, speed=0), [onnx_lane, torch_lane], n=len(rec))
    np.testing.assert_array_equal(a, b)
    assert _events_of(records, "foot") == _events_of(records, "torch") == offline[1]
    np.testing.assert_array_equal(a, offline[0])


def test_two_feet_from_one_line(run, recs):
    """One 12-field line (left IMU, right IMU): one model per foot, each with its own column map."""
    tm, run_dir = run
    left, right = recs[0], recs[1]
    np.testing.assert_array_equal(left.signals[:, 6:], right.signals[:, :6])
    lanes = [
        Lane("left", OnnxBackend(run_dir), ColumnMap.parse(LEFT + OTHER, tm.channels)),
        Lane("right", OnnxBackend(run_dir), ColumnMap.parse(OTHER + LEFT, tm.channels)),
    ]
    summary, records, _ = _stream(ReplaySource(left, speed=0), lanes, n=len(left))
    for foot, rec in (("left", left), ("right", right)):
        _, _, _, ev = tm.predict(rec)
        assert _events_of(records, foot) == _event_list(ev)
    assert summary.steps == sum(ln.heel_strikes for ln in summary.lanes)


# -- fault injection ---------------------------------------------------------------------


def test_garbage_lines_are_skipped_and_counted(run, recs, offline):
    _, run_dir = run
    rec = recs[0]
    sim = ImuSim(rec, listen="pty", speed=SPEED, garbage=0.05, seed=3)
    url = sim.start()
    try:
        lane = _onnx_lane(run_dir)
        summary, records, (labels,) = _stream(PortSource.text_lines(url, lane.columns), [lane], n=len(rec),
                                              max_samples=len(rec))
    finally:
        sim.close()
    assert sim.stats.garbage > 20
    assert summary.corrupt == sim.stats.garbage
    assert summary.samples == len(rec) and summary.lost == 0
    assert _events_of(records) == offline[1]
    np.testing.assert_array_equal(labels, offline[0])


def test_corrupted_lines_become_filled_gaps(run, recs):
    _, run_dir = run
    rec = recs[0]
    sim = ImuSim(rec, listen="tcp:0", speed=SPEED, corrupt=0.02, seed=5)
    url = sim.start()
    try:
        lane = _onnx_lane(run_dir)
        summary, records, (labels,) = _stream(PortSource.text_lines(url, lane.columns), [lane], reconnect=False)
        assert sim.join(5)
    finally:
        sim.close()
    n_bad = sim.stats.corrupted
    assert n_bad > 10
    assert summary.corrupt == n_bad
    assert summary.samples == len(rec) - n_bad
    assert summary.lost == summary.filled == n_bad
    assert summary.pushed == len(rec)
    gaps = [r for r in records if r.kind == "gap"]
    assert len(gaps) == summary.gaps >= 1 and all("filled" in r.detail for r in gaps)
    assert (labels >= 0).all()


def test_burst_is_handled_without_loss(run, recs, offline):
    _, run_dir = run
    rec = recs[0]
    sim = ImuSim(rec, listen="pty", speed=SPEED, burst_every_s=4.0, burst_size=250)
    url = sim.start()
    try:
        lane = _onnx_lane(run_dir)
        summary, records, (labels,) = _stream(PortSource.text_lines(url, lane.columns), [lane], n=len(rec),
                                              max_samples=len(rec), queue_samples=1024)
    finally:
        sim.close()
    assert sim.stats.bursts >= 3
    assert summary.samples == len(rec)
    assert summary.dropped == summary.lost == summary.corrupt == 0
    assert _events_of(records) == offline[1]
    np.testing.assert_array_equal(labels, offline[0])


@pytest.mark.parametrize("listen", ["tcp:0", "pty"])
def test_unplug_and_replug_is_survived(run, recs, tmp_path, listen):
    tm, run_dir = run
    rec = recs[0]
    at, dur = 6.0, 1.5
    sim = ImuSim(rec, listen=listen, speed=10.0, unplugs=[(at, dur)], link=tmp_path / "imu0" if listen == "pty" else None)
    url = sim.start()
    try:
        lane = _onnx_lane(run_dir)
        session = Session(PortSource.text_lines(url, lane.columns), [lane], backoff_s=(0.02, 0.1),
                          log=EventLog(tmp_path / "events.jsonl"))
        session.start()
        assert sim.join(30)
        time.sleep(0.3)
        session.stop()
        assert session.wait(10)
    finally:
        sim.close()
    s = session.summary()
    kinds = [r["kind"] for r in read_log(tmp_path / "events.jsonl")]
    assert s.disconnects >= 2 and s.reconnects >= 1  # the unplug, then the end of the recording
    assert kinds.count("reconnect") >= 1 and "disconnect" in kinds
    gaps = [r for r in read_log(tmp_path / "events.jsonl") if r["kind"] == "gap"]
    assert len(gaps) == 1 and "model restarted" in gaps[0]["detail"]
    assert gaps[0]["sample"] <= int(at * rec.rate_hz) + 1
    # every sample is accounted for: received or reported missing
    assert s.samples + s.lost == len(rec)
    assert s.lost >= int(dur * rec.rate_hz)
    if listen.startswith("tcp"):
        assert s.lost == sim.stats.lost
    # each segment is classified exactly like the offline prediction of that stretch
    first = gaps[0]["sample"]
    resume = first + int(gaps[0]["detail"].split()[0])
    ev = [(r["kind"], r["sample"]) for r in read_log(tmp_path / "events.jsonl") if r["foot"] == "foot"]
    for lo, hi in ((0, first), (resume, len(rec))):
        part = Recording(rec.signals[lo:hi], rec.channels, rec.units, rec.rate_hz)
        _, _, _, ref = tm.predict(part)
        assert sorted(e for e in ev if lo <= e[1] < hi) == [(k, s + lo) for k, s in _event_list(ref)]


def test_counter_gaps_and_duplicates():
    """Gap detection by counter (wrapping) and by timestamp, without a device."""
    from gaitedge.stream.backends import Backend, Decisions

    class Echo(Backend):
        kind = "echo"
        channels, units, classes = ("a",), ("",), ("rest", "stance", "swing")
        rate_hz, delay, min_run = 100.0, 0, 1

        def __init__(self):
            self.pushed = []

        def push(self, x):
            self.pushed.append(float(x[0]))
            return Decisions(0, (), [])

        def flush(self):
            return Decisions(0, (), [])

        def reset(self):
            pass

    lines = b"".join(f"{c % 8},{v}\n".encode() for c, v in [(6, 1), (7, 2), (8, 3), (8, 3), (11, 4), (12, 5)])
    be = Echo()
    cmap = ColumnMap.parse("seq%8,a", ["a"])
    summary, records, _ = _stream(Lines(lines, cmap), [Lane("x", be, cmap)])
    assert be.pushed == [1, 2, 3, 3, 3, 4, 5]  # two missing samples held at the last value
    assert summary.duplicates == 1 and summary.gaps == 1 and summary.lost == 2 and summary.filled == 2


# -- parsing and mapping -----------------------------------------------------------------


def test_column_map_aliases_scale_and_errors():
    ch, units = LEFT + OTHER, ["m/s^2"] * 3 + ["rad/s"] * 3 + ["m/s^2"] * 3 + ["rad/s"] * 3
    m = ColumnMap.parse("t_ms,ax,ay,az,gx,gy,gz," + ",".join(OTHER) + ",_", ch, units, scale="acc=g,gyr=deg")
    assert m.n_fields == 14 and m.time_index == 0 and m.time_scale == 1e-3
    vals = np.arange(14, dtype=np.float32)
    x = m(vals)
    assert x.dtype == np.float32 and x.shape == (12,)
    assert x[0] == pytest.approx(1 * 9.80665) and x[3] == pytest.approx(4 * math.pi / 180)
    assert x[6] == pytest.approx(7 * 9.80665)
    assert parse_scale("0.5", ["a", "b"], ["", ""]).tolist() == [0.5, 0.5]
    assert parse_scale("acc=mg,gyr_z=2", LEFT, units[:6]).tolist()[2:] == pytest.approx([0.00980665, 1, 1, 2])
    with pytest.raises(DataError, match="lacks model channel"):
        ColumnMap.parse("t,ax,ay,az,gx,gy,gz", ch, units)
    with pytest.raises(DataError, match="not a channel"):
        ColumnMap.parse("t,foo," + ",".join(ch), ch, units)
    with pytest.raises(DataError, match="named twice"):
        ColumnMap.parse("t,ax,acc_x," + ",".join(ch[1:]), ch, units)
    with pytest.raises(DataError, match="--scale"):
        parse_scale("acc=lots", LEFT, units[:6])


def test_line_parser_and_decoder():
    p = LineParser(4, time_index=0)
    s = p.parse(b"0.5 1 2 3", 0.0)
    assert s.t == 0.5 and s.values.tolist() == [0.5, 1, 2, 3] and s.counter == -1
    for bad in (b"1,2,3", b"1,2,x,4", b"1,2,nan,4", b"1,2,3,1e40"):
        with pytest.raises(CorruptLine):
            p.parse(bad, 0.0)
    dec = TextLineDecoder(p)
    out = dec.feed(b"2,3\n0.01,1,2,3\r\n# comment\n\n0.02,1,", 1.0)  # partial first line, CRLF, comment, split line
    out += dec.feed(b"2,3\n\xff\xfe garbage\n0.03,1,2,3\n", 2.0)
    assert [s.t for s in out] == [0.01, 0.02, 0.03]
    assert out[1].arrival == 2.0
    assert dec.stats.corrupt == 1 and dec.stats.skipped == 2
    dec.feed(b"x" * 5000, 3.0)
    assert dec.stats.corrupt == 2
    # a device whose lines never match the layout is a user error, not endless garbage
    dec = TextLineDecoder(LineParser(13, 0), source="dev")
    with pytest.raises(DataError, match="lines have 7 fields"):
        dec.feed(b"".join(b"0.1,1,2,3,4,5,6\n" for _ in range(12)), 0.0)


def test_gait_tracker_cadence_and_phases():
    tr = GaitTracker(("rest", "stance", "swing"), 100.0)
    for k in range(5):  # strides of 1.0 s: toe off at +60, heel strike at +100
        tr.on_event("toe_off", 100 * k + 60)
        tr.on_event("heel_strike", 100 * k + 100)
    assert tr.strides == 5
    assert tr.cadence() == pytest.approx(120.0)
    st, sw = tr.stance_swing()
    assert st == pytest.approx(60.0) and sw == pytest.approx(40.0)
    assert math.isnan(tr.cadence(now_sample=1000))  # stopped walking


def test_views_and_plot_render(run, recs, tmp_path, monkeypatch):
    tm, run_dir = run
    monkeypatch.setenv("MPLBACKEND", "Agg")
    rec = recs[0]
    lane = Lane("foot", OnnxBackend(run_dir), ColumnMap.parse(rec.channels, tm.channels))
    session = Session(ReplaySource(rec, speed=SPEED), [lane], history_s=5.0, log=EventLog(tmp_path / "ev.csv"))
    from gaitedge.stream.view import LivePlot

    plot = LivePlot(session)
    buf_live, buf_plain = io.StringIO(), io.StringIO()
    live = TerminalView(session, out=buf_live, live=True)
    plain = TerminalView(session, out=buf_plain, live=False, status_every=0.0)
    session.start()
    while not session.wait(0.05):
        plot.update()
        live.update()
        plain.update()
    plot.update()
    plot.close()
    live.update()
    live.update(final=True)
    plain.update(final=True)
    assert "\x1b[" in buf_live.getvalue() and "latency p50" in buf_live.getvalue()
    assert "heel_strike" in buf_plain.getvalue() and "\x1b[" not in buf_plain.getvalue()
    rows = read_log(tmp_path / "ev.csv")
    assert rows and {r["kind"] for r in rows} <= {"heel_strike", "toe_off"}
    assert "stream ended" in format_summary(session.summary())


# -- the command line ----------------------------------------------------------------------


def test_cli_stream_sigint_ends_with_summary_and_flushed_log(run, recs, tmp_path):
    _, run_dir = run
    sim = ImuSim(recs[0], listen="pty", speed=5.0, loop=True)
    url = sim.start()
    log = tmp_path / "events.jsonl"
    proc = subprocess.Popen(
        [sys.executable, "-m", "gaitedge", "stream", "--port", url, "--model", str(run_dir), "--log", str(log)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        deadline = time.monotonic() + 40
        while time.monotonic() < deadline and proc.poll() is None:
            if log.is_file() and log.read_text().count("\n") >= 4:
                break
            time.sleep(0.1)
        assert proc.poll() is None, proc.communicate()
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
        sim.close()
    assert proc.returncode == 0, err
    assert "stream ended after" in out and "latency sample -> label p50" in out and "dropped 0" in out
    rows = [json.loads(line) for line in log.read_text().splitlines()]
    assert len(rows) >= 4 and all({"kind", "sample", "t_s", "foot", "wall_time"} <= set(r) for r in rows)
    assert f"({len(rows)} records)" in out
    assert log.read_text().endswith("\n")


def test_cli_user_errors(run, recs, tmp_path, capsys):
    _, run_dir = run

    def err(*args) -> str:
        assert cli.main(list(args)) == 2
        e = capsys.readouterr().err
        assert e.startswith("gaitedge: error: ") and e.count("\n") == 1, e
        return e

    assert "cannot open port /dev/gaitedge-no-such-imu" in err("stream", "--port", "/dev/gaitedge-no-such-imu",
                                                                 "--model", str(run_dir))
    assert "cannot open port bogus://x" in err("stream", "--port", "bogus://x", "--model", str(run_dir))
    fake = tmp_path / "model_step.onnx"
    fake.write_bytes(b"not an onnx file")
    assert "not a loadable ONNX model" in err("stream", "--port", "loop://", "--model", str(fake))
    assert "lacks model channel" in err("stream", "--port", "loop://", "--model", str(run_dir), "--columns", "t,ax")
    assert "file not found" in err("stream", "--replay", str(tmp_path / "none.csv"), "--model", str(run_dir))
    # a board printing 7 fields to a 12-channel model: named once the first lines arrive
    six = load_spec("synthetic?n=6&trials=1&subjects=6")[0]
    sim = ImuSim(six, listen="pty", speed=SPEED)
    url = sim.start()
    try:
        assert "lines have 7 fields" in err("stream", "--port", url, "--model", str(run_dir), "--quiet")
    finally:
        sim.close()
    with pytest.raises(SourceError):
        PortSource.text_lines("/dev/gaitedge-no-such-imu", ColumnMap.parse("a", ["a"])).open()


def test_cli_replay_and_imusim_commands(run, recs, tmp_path, capsys):
    """``gaitedge stream --replay`` of a CSV, and ``gaitedge imu-sim`` (a subprocess) over TCP."""
    from gaitedge.data import save_csv

    _, run_dir = run
    n = len(recs[0])
    csv_path = tmp_path / "walk.csv"
    save_csv(recs[0], csv_path)
    assert cli.main(["stream", "--replay", str(csv_path), "--speed", "0", "--model", str(run_dir),
                     "--log", str(tmp_path / "a.csv"), "--quiet"]) == 0
    assert f"{n} samples received" in capsys.readouterr().out
    sim = subprocess.Popen(
        [sys.executable, "-m", "gaitedge", "imu-sim", "--replay", str(csv_path), "--listen", "tcp:0",
         "--speed", str(SPEED)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        url = sim.stdout.readline().strip()
        assert url.startswith("socket://127.0.0.1:"), sim.stderr.read()
        assert cli.main(["stream", "--port", url, "--model", str(run_dir), "--samples", str(n),
                         "--log", str(tmp_path / "b.jsonl"), "--quiet"]) == 0
        sim.wait(timeout=30)
    finally:
        if sim.poll() is None:
            sim.kill()
    a = [(x["kind"], x["sample"]) for x in read_log(tmp_path / "a.csv")]
    b = [(x["kind"], x["sample"]) for x in read_log(tmp_path / "b.jsonl")]
    assert a == b and len(a) >= 4
    assert sim.returncode == 0 and f"{n} lines sent" in sim.stderr.read()
