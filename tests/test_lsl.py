"""Lab Streaming Layer: imu-sim publishing over LSL -> stream --lsl -> phase and event outlets, on loopback.

Real pylsl (its wheel carries liblsl) over this host's loopback; no mocks.
Stream names carry a random suffix so that runs on one network do not meet.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
import time
import uuid
from pathlib import Path

import numpy as np
import pytest

pylsl = pytest.importorskip("pylsl", reason="pylsl (Lab Streaming Layer) is not installed: pip install pylsl")

from gaitedge import cli  # noqa: E402
from gaitedge.checkpoint import TrainedModel, load_checkpoint  # noqa: E402
from gaitedge.config import Config  # noqa: E402
from gaitedge.data.recording import Recording  # noqa: E402
from gaitedge.data.spec import load_spec  # noqa: E402
from gaitedge.errors import DataError  # noqa: E402
from gaitedge.stream import OnnxBackend, Session, read_log  # noqa: E402
from gaitedge.stream.lsl import (  # noqa: E402
    LslImuSim,
    LslOutlets,
    LslSource,
    describe_channels,
    import_pylsl,
    lsl_lanes,
    lsl_predicate,
    unit_factor,
)
from gaitedge.stream.view import EventLog  # noqa: E402
from pylsl.util import LostError  # noqa: E402

import_pylsl()  # liblsl's own log quiet, as in the command line

SPEED = 10.0
LEFT = ["acc_x", "acc_y", "acc_z", "gyr_x", "gyr_y", "gyr_z"]


def _name(tag: str) -> str:
    return f"gaitedge-test-{tag}-{uuid.uuid4().hex[:8]}"


@pytest.fixture(scope="module")
def run() -> tuple[TrainedModel, Path]:
    """A tiny GRU (12 channels: both feet) with a low-pass, output delay and debounce, exported to ONNX."""
    import tempfile

    import torch

    from gaitedge.export import export_onnx
    from gaitedge.training.train import train

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
    out = Path(tempfile.mkdtemp(prefix="gaitedge-lsl-")) / "run"
    tm, _, out = train(cfg, out_dir=out, progress=False, log=lambda *a: None)
    export_onnx(tm, out)
    return load_checkpoint(out), out


@pytest.fixture(scope="module")
def recs() -> list[Recording]:
    """A held-out subject's left- and right-foot recordings, each with the other foot's channels."""
    return load_spec("synthetic?n=6&trials=1&subjects=6", other_foot=True)


def _event_list(events: dict) -> list[tuple[str, int]]:
    return sorted((k, int(s)) for k, v in events.items() for s in v)


def _inlet(name: str, timeout: float = 30.0):
    found = pylsl.resolve_bypred(f"name='{name}'", 1, timeout)
    assert found, f"LSL stream {name} not found"
    inlet = pylsl.StreamInlet(found[0], recover=False)
    inlet.open_stream(10.0)
    return inlet


def _drain(inlet, rows: list, stamps: list, timeout: float = 0.05) -> bool:
    """Pull what is there; False once the outlet has gone and everything was taken."""
    try:
        data, ts = inlet.pull_chunk(timeout=timeout, max_samples=4096)
    except LostError:
        return False
    rows.extend(data)
    stamps.extend(ts)
    return True


# -- the exact comparison, through the command line ----------------------------------------


def test_lsl_stream_equals_offline_and_publishes_phase_and_events(run, recs, tmp_path):
    """imu-sim over LSL -> ``gaitedge stream --lsl --lsl-out`` (ONNX) -> labels and events as predict;
    a plain pylsl inlet gets the phase per sample and the event markers on the source's clock."""
    tm, run_dir = run
    rec = Recording(recs[0].signals, recs[0].channels, recs[0].units, recs[0].rate_hz, source="walk")
    _, probs_ref, ref_labels, ref_events = tm.predict(rec)
    ref_events = _event_list(ref_events)
    imu, out = _name("imu"), _name("gait")
    log = tmp_path / "events.jsonl"
    proc = subprocess.Popen(
        [sys.executable, "-m", "gaitedge", "stream", "--lsl", f"name={imu}", "--lsl-timeout", "60",
         "--lsl-out", out, "--model", str(run_dir), "--samples", str(len(rec)), "--log", str(log), "--quiet"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    sim = None
    try:
        phase, events = _inlet(out + "-phase"), _inlet(out + "-events")
        info = phase.info(5.0)
        assert info.channel_count() == 1 + len(tm.classes)
        import xml.etree.ElementTree as ET

        from gaitedge import __version__

        desc = ET.fromstring(info.as_xml()).find("desc")
        assert desc.findtext("software/name") == "gaitedge" and desc.findtext("software/version") == __version__
        assert desc.findtext("model/name") == run_dir.name and desc.findtext("model/backend") == "onnx"
        assert [c.findtext("label") for c in desc.findall("channels/channel")] == (
            ["phase"] + [f"p_{c}" for c in tm.classes])
        sim = LslImuSim(rec, imu, speed=SPEED)
        sim.start()
        prow, pts, erow, ets = [], [], [], []
        p_ok = e_ok = True
        deadline = time.monotonic() + 90
        while (p_ok or e_ok) and time.monotonic() < deadline:
            p_ok = p_ok and _drain(phase, prow, pts)
            e_ok = e_ok and _drain(events, erow, ets)
        stdout, stderr = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
        if sim is not None:
            sim.close()
    assert proc.returncode == 0, stderr
    assert f"{len(rec)} samples received" in stdout and "LSL outlets:" in stdout
    rate = rec.rate_hz
    # the event log holds exactly the offline events
    got = sorted((r["kind"], r["sample"]) for r in read_log(log) if r["kind"] in ("heel_strike", "toe_off"))
    assert len(ref_events) >= 4 and got == ref_events
    # the phase stream: one row per sample, on the source's time grid, labels and probabilities as predict
    idx = np.rint((np.asarray(pts) - sim.t0) * rate).astype(int)
    assert np.abs(np.asarray(pts) - (sim.t0 + idx / rate)).max() < 1e-3
    assert sorted(idx.tolist()) == list(range(len(rec)))
    rows = np.asarray(prow, np.float64)
    labels = np.full(len(rec), -1)
    labels[idx] = rows[:, 0]
    np.testing.assert_array_equal(labels, ref_labels)
    probs = np.zeros((len(rec), len(tm.classes)))
    probs[idx] = rows[:, 1:]
    np.testing.assert_allclose(probs, probs_ref, atol=1e-4)
    # the markers: the offline events, each stamped with the source timestamp of its sample
    marks = [(json.loads(m[0]), t) for m, t in zip(erow, ets)]
    gait = [(m, t) for m, t in marks if m["event"] in ("heel_strike", "toe_off")]
    assert sorted((m["event"], m["sample"]) for m, _ in gait) == ref_events
    assert all(m["foot"] == "foot" for m, _ in gait)
    phase_t = dict(zip(idx.tolist(), pts))
    for m, t in gait:
        assert t == pytest.approx(sim.t0 + m["sample"] / rate, abs=1e-3)
        assert t == phase_t[m["sample"]]  # the very timestamp the phase stream gives that sample


# -- faults and several streams ---------------------------------------------------------------


def test_lsl_outlet_vanishing_is_survived(run, recs, tmp_path):
    tm, run_dir = run
    rec = recs[0]
    at, dur = 4.0, 1.5
    # The publisher is `gaitedge imu-sim --listen lsl:NAME` in its own process, as in a lab (an outlet
    # destroyed in the process that also pulls from it can take liblsl down). In real time:
    # re-resolving and settling the clock offset take a second or more of wall time (more on a loaded
    # machine), during which the publisher's clock runs on; about 10 s of recording are left then.
    name = _name("unplug")
    sim = subprocess.Popen(
        [sys.executable, "-m", "gaitedge", "imu-sim", "--replay", "synthetic?n=6&trials=1&subjects=6",
         "--other-foot", "--index", "0", "--listen", f"lsl:{name}", "--speed", "1", "--unplug", f"{at}:{dur}"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        query = sim.stdout.readline().strip()
        assert name in query, query
        source = LslSource([query], rec.rate_hz, timeout=30.0)
        be = OnnxBackend(run_dir)
        lanes = lsl_lanes(source, [("foot", be)], [], None)
        session = Session(source, lanes, backoff_s=(0.02, 0.1), log=EventLog(tmp_path / "events.jsonl"))
        session.start()
        _, err = sim.communicate(timeout=90)
        assert sim.returncode == 0, err
        deadline = time.monotonic() + 10
        while session.stats.disconnects < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        session.stop()
        assert session.wait(10)
    finally:
        if sim.poll() is None:
            sim.kill()
            sim.wait()
    import re

    m = re.search(r"(\d+) samples sent in .*?(\d+) samples lost, (\d+) unplugs", err)
    assert m, err
    sim_lost, sim_unplugs = int(m.group(2)), int(m.group(3))
    s = session.summary()
    log = read_log(tmp_path / "events.jsonl")
    kinds = [r["kind"] for r in log]
    assert sim_unplugs == 1
    assert s.disconnects >= 2 and s.reconnects >= 1  # the unplug, then the end of the recording
    assert "disconnect" in kinds and "reconnect" in kinds
    gaps = [r for r in log if r["kind"] == "gap"]
    assert len(gaps) == 1 and "model restarted" in gaps[0]["detail"]
    # every sample is accounted for: received, or missing by the LSL timestamps
    assert s.samples + s.lost == len(rec)
    # what the outlet did not send is lost; samples pushed while the inlet was reconnecting may be lost too
    assert s.lost >= sim_lost >= int(dur * rec.rate_hz)
    first = gaps[0]["sample"]
    resume = first + int(gaps[0]["detail"].split()[0])
    ev = [(r["kind"], r["sample"]) for r in log if r["foot"] == "foot"]
    for lo, hi in ((0, first), (resume, len(rec))):
        part = Recording(rec.signals[lo:hi], rec.channels, rec.units, rec.rate_hz)
        _, _, _, ref = tm.predict(part)
        assert sorted(e for e in ev if lo <= e[1] < hi) == [(k, x + lo) for k, x in _event_list(ref)]


def test_two_lsl_streams_feed_two_models(run, recs):
    """One LSL stream per foot (6 channels each), aligned by timestamp into the two-model setup."""
    tm, run_dir = run
    left, right = recs[0], recs[1]
    units = left.units[:6]
    start = pylsl.local_clock() + 2.0
    sims = [
        LslImuSim(Recording(r.signals[:, :6], LEFT, units, r.rate_hz), _name(tag), speed=SPEED, start_at=start)
        for tag, r in (("left", left), ("right", right))
    ]
    for s in sims:
        s.start()
    try:
        source = LslSource([s.query for s in sims], left.rate_hz, timeout=10.0)
        lanes = lsl_lanes(source, [("left", OnnxBackend(run_dir)), ("right", OnnxBackend(run_dir))], [], None)
        session = Session(source, lanes, max_samples=len(left))
        summary = session.run(timeout=60)
    finally:
        for s in sims:
            s.close()
    assert summary.samples == len(left) and summary.lost == 0 and summary.skipped == 0
    records = list(session.recent)
    for foot, rec in (("left", left), ("right", right)):
        _, _, _, ev = tm.predict(rec)
        assert sorted((r.kind, r.sample) for r in records if r.foot == foot) == _event_list(ev)


# -- small pieces and user errors ----------------------------------------------------------------


def test_queries_channels_and_units():
    assert lsl_predicate("name=FootIMU") == "name='FootIMU'"
    assert lsl_predicate("type=IMU, hostname=lab1") == "type='IMU' and hostname='lab1'"
    assert lsl_predicate("starts-with(name,'Foot')") == "starts-with(name,'Foot')"
    with pytest.raises(DataError, match="empty query"):
        lsl_predicate(" ")
    xml = ("<info><desc><channels><channel><label>ax</label><unit>g</unit><type>Acc</type></channel>"
           "<channel><label>gx</label><unit>deg/s</unit></channel></channels></desc></info>")
    chans = describe_channels(xml, 2)
    assert [(c.label, c.unit, c.type) for c in chans] == [("ax", "g", "Acc"), ("gx", "deg/s", "")]
    assert [c.label for c in describe_channels(xml, 3)] == ["", "", ""]  # does not match the channel count
    assert unit_factor("g", "m/s^2") == pytest.approx(9.80665)
    assert unit_factor("deg/s", "rad/s") == pytest.approx(math.pi / 180)
    assert unit_factor("", "rad/s") == unit_factor("rad/s", "rad/s") == 1.0
    assert unit_factor("furlong", "rad/s") is None
    assert import_pylsl() is pylsl


def test_lsl_channel_labels_and_units_from_metadata(run, recs):
    """A stream declaring g and deg/s feeds the model in m/s² and rad/s; unlabelled needs --columns."""
    _, run_dir = run
    rec = recs[0]
    name = _name("units")
    info = pylsl.StreamInfo(name, "IMU", 13, rec.rate_hz, pylsl.cf_float32, name)
    chans = info.desc().append_child("channels")
    labels = ["temp", "ax", "ay", "az", "gx", "gy", "gz"] + [f"other_{c}" for c in LEFT]
    unit = ["degC", "g", "g", "g", "deg/s", "deg/s", "deg/s"] + ["m/s^2"] * 3 + ["rad/s"] * 3
    for lab, u in zip(labels, unit):
        c = chans.append_child("channel")
        c.append_child_value("label", lab)
        c.append_child_value("unit", u)
    outlet = pylsl.StreamOutlet(info)
    bare_name = _name("bare")
    bare = pylsl.StreamOutlet(pylsl.StreamInfo(bare_name, "IMU", 12, rec.rate_hz, pylsl.cf_float32, bare_name))
    be = OnnxBackend(run_dir)
    (lane,) = lsl_lanes(LslSource([f"name={name}"], rec.rate_hz, timeout=10.0), [("foot", be)], [], None)
    x = lane.columns(np.arange(13, dtype=np.float32))
    assert x[0] == pytest.approx(1 * 9.80665) and x[3] == pytest.approx(4 * math.pi / 180) and x[6] == 7
    with pytest.raises(DataError, match="describes no channel labels"):
        lsl_lanes(LslSource([f"name={bare_name}"], rec.rate_hz, timeout=10.0), [("foot", be)], [], None)
    (lane,) = lsl_lanes(LslSource([f"name={bare_name}"], rec.rate_hz, timeout=10.0), [("foot", be)],
                        [",".join(LEFT + [f"other_{c}" for c in LEFT])], None)
    assert lane.columns.n_fields == 12
    del outlet, bare


def test_lsl_user_errors(run, recs, tmp_path, capsys):
    _, run_dir = run

    def err(*args) -> str:
        assert cli.main(list(args)) == 2
        e = capsys.readouterr().err
        assert e.startswith("gaitedge: error: ") and e.count("\n") == 1, e
        return e

    t0 = time.monotonic()
    e = err("stream", "--lsl", f"name={_name('nobody')}", "--lsl-timeout", "1", "--model", str(run_dir), "--quiet")
    assert "no LSL stream matching" in e and "within 1 s" in e
    assert time.monotonic() - t0 >= 1.0
    assert "--lsl-timeout must be > 0" in err("stream", "--lsl", "name=x", "--lsl-timeout", "0",
                                              "--model", str(run_dir))
    assert "applies to --listen pty or tcp:PORT" in err("imu-sim", "--replay", "synthetic?n=1&trials=1",
                                                        "--listen", "lsl:x", "--garbage", "0.1")


def test_outlets_stamp_replayed_samples_on_the_lsl_clock(run, recs):
    """With a non-LSL source the markers carry the samples' arrival on this host's LSL clock."""
    from gaitedge.stream import ColumnMap, Lane, ReplaySource

    tm, run_dir = run
    rec = recs[0]
    name = _name("replay")
    be = OnnxBackend(run_dir)
    lane = Lane("foot", be, ColumnMap.parse(rec.channels, tm.channels))
    outlets = LslOutlets(name, [lane])
    events = _inlet(name + "-events")
    session = Session(ReplaySource(rec, speed=0), [lane])
    outlets.attach(session)
    before = pylsl.local_clock()
    session.run(timeout=60)
    after = pylsl.local_clock()
    rows, stamps = [], []
    for _ in range(20):
        _drain(events, rows, stamps)
    outlets.close(0.0)
    marks = [json.loads(r[0]) for r in rows]
    _, _, _, ref = tm.predict(rec)
    assert sorted((m["event"], m["sample"]) for m in marks if "foot" in m) == _event_list(ref)
    assert all(before <= t <= after for t in stamps)
    assert len(outlets.latencies) == len(_event_list(ref)) and min(outlets.latencies) >= 0


def test_lsl_options_without_pylsl_name_the_package(run):
    """gaitedge imports pylsl only for the LSL options; without it they end with one error line."""
    _, run_dir = run
    cases = [["stream", "--lsl", "name=x", "--model", str(run_dir)],
             ["stream", "--replay", "synthetic?n=1&trials=1", "--model", str(run_dir), "--lsl-out", "x"],
             ["imu-sim", "--replay", "synthetic?n=1&trials=1", "--listen", "lsl:x"]]
    code = ("import contextlib, io, json, sys\n"
            "sys.modules['pylsl'] = None\n"
            "from gaitedge import cli\n"
            "out = []\n"
            "for args in json.loads(sys.argv[1]):\n"
            "    err = io.StringIO()\n"
            "    with contextlib.redirect_stderr(err):\n"
            "        code = cli.main(args)\n"
            "    out.append([code, err.getvalue()])\n"
            "print(json.dumps(out))\n")
    p = subprocess.run([sys.executable, "-c", code, json.dumps(cases)], capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    for code, err in json.loads(p.stdout.splitlines()[-1]):
        assert code == 2, err
        assert err.startswith("gaitedge: error: ") and err.count("\n") == 1, err
        assert "pip install pylsl" in err
