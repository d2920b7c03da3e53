"""Write the seed corpora of the fuzz targets (``tests/fuzz/corpus/<target>/``).

    python tests/fuzz/make_corpus.py

Seeds are small valid inputs made by gaitedge's own writers (``save_csv``,
``write_event_table``, ``Mounting.save``, the protocol encoders, a tiny
checkpoint) and the frames of the shared protocol vectors, each prefixed with
the selector byte its target reads first.  The output is deterministic; the
folders are replaced whole.
"""

from __future__ import annotations

import io
import json
import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(ROOT))

from gaitedge.data.csvload import save_csv  # noqa: E402
from gaitedge.data.gaitmap import write_event_table  # noqa: E402
from gaitedge.data.mounting import Mounting, SensorMounting, parse_axis_map  # noqa: E402
from gaitedge.data.recording import Recording, labels_from_swings  # noqa: E402
from gaitedge.protocol import messages as M  # noqa: E402
from gaitedge.protocol.framing import encode_frame  # noqa: E402

#: where the shared protocol vectors live (the first that exists).
VECTORS = [ROOT / "gaitedge" / "csrc" / "protocol" / "vectors.json",
           ROOT / "firmware_export" / "protocol" / "vectors.json"]
#: codec index in fuzz_messages.CODECS by message type.
CODEC_OF_TYPE = {M.INFO | M.REPLY: 0, M.BOOT: 0, M.SAMPLES: 1, M.SAMPLES | M.REPLY: 2, M.STATS | M.REPLY: 3,
                 M.NAK: 4, M.FLASH_STATUS | M.REPLY: 5, M.SET_MOUNTING: 6, M.GET_MOUNTING | M.REPLY: 7,
                 M.SET_MOUNTING | M.REPLY: 7}
CHECK_MOUNTING = 8


def vectors() -> dict:
    """The shared protocol vectors (empty lists if none are found)."""
    for p in VECTORS:
        if p.is_file():
            return json.loads(p.read_text())
    return {"frames": [], "streams": [], "messages": [], "mounting": []}


def tiny_recording(n: int = 24) -> Recording:
    """A short labelled six-channel recording with deterministic values."""
    t = np.arange(n)[:, None]
    sig = np.sin(t * 0.3 + np.arange(6)[None, :]) * np.array([2.0, 2.0, 9.8, 1.0, 3.0, 1.0])
    labels = labels_from_swings(n, 2, n - 2, [(6, 10), (15, 19)])
    return Recording(sig, ["acc_x", "acc_y", "acc_z", "gyr_x", "gyr_y", "gyr_z"], ["m/s^2"] * 3 + ["rad/s"] * 3,
                     100.0, labels=labels, subject="s1")


def seeds_textline() -> dict[str, bytes]:
    rec = tiny_recording(12)
    plain = "".join(f"{i / 100:.2f}," + ",".join(f"{v:.3f}" for v in row) + "\n" for i, row in enumerate(rec.signals))
    counted = "".join(f"{i * 10} {i} " + " ".join(f"{v * 1000:.0f}" for v in row) + "\r\n"
                      for i, row in enumerate(rec.signals))
    return {
        "default": ("t,ax,ay,az,gx,gy,gz\n\n# IMU\n" + plain).encode(),
        "scaled": ("t_ms,seq%65536,ax,ay,az,gx,gy,gz\nacc=mg,gyr=mdeg\n" + counted).encode(),
        "ignored": ("_,acc_x,acc_y,acc_z,gyr_x,gyr_y,gyr_z,t_us\n2\n" + plain.replace("\n", ",7\n")).encode(),
    }


def seeds_frames() -> dict[str, bytes]:
    vec = vectors()
    out = {}
    for i, f in enumerate(vec["frames"][:6]):
        out[f"vector-frame-{i}"] = bytes([i * 8]) + bytes.fromhex(f["wire"])
    for i, s in enumerate(vec["streams"][:8]):
        out[f"vector-stream-{i}"] = bytes([i * 9 % 256]) + bytes.fromhex(s["wire"])
    counts = (tiny_recording(6).signals * 100).astype(np.int16)
    wire = b"".join(encode_frame(M.SAMPLES, k * 2, M.encode_samples(counts[2 * k : 2 * k + 2])) for k in range(3))
    out["samples-6ch"] = bytes([1]) + wire
    out["samples-6ch-lsb"] = bytes([4 | 1]) + wire
    out["samples-3ch"] = bytes([2]) + encode_frame(M.SAMPLES, 9, M.encode_samples(counts[:, :3]))
    return out


def seeds_messages() -> dict[str, bytes]:
    vec = vectors()
    out = {}
    for i, m in enumerate(vec["messages"]):
        if m["type"] in CODEC_OF_TYPE:
            out[f"vector-message-{i}"] = bytes([CODEC_OF_TYPE[m["type"]]]) + bytes.fromhex(m["payload"])
    for i, m in enumerate(vec["mounting"][:6]):
        out[f"vector-mounting-{i}"] = bytes([CHECK_MOUNTING]) + bytes.fromhex(m["payload"])
    stats = M.Stats(*range(1, len(M.STATS_FIELDS) + 1))
    out["stats"] = bytes([3]) + stats.encode()
    out["nak"] = bytes([4]) + M.Nak(M.SAMPLES, M.E_CHANNELS, 6, "wrong channel count").encode()
    out["results"] = bytes([2]) + M.encode_results(7, [0, 1], [0, 2], [0, 1], [-1, 8], [[1, 2, 3], [4, 5, 6]])
    rot = (1 << 14, 0, 0, 0, 1 << 14, 0, 0, 0, 1 << 14)
    out["mounting-reply"] = bytes([7]) + M.MountingState([((0, 1, 2), rot)], generation=3).encode_reply()
    slots = b"".join(bytes([1, 0, 0, 0]) + (5).to_bytes(4, "little") + b"abc".ljust(64, b"\0") for _ in range(2))
    out["flash-status"] = bytes([5]) + bytes([2, 1, 1, 2]) + (100).to_bytes(4, "little") * 2 + slots
    return out


def seeds_csv() -> dict[str, bytes]:
    with tempfile.TemporaryDirectory() as d:
        p = Path(d) / "rec.csv"
        save_csv(tiny_recording(), p)
        text = p.read_bytes()
    short = b"t;acc_x;gyr_z\n0.00;1.5;0.1\n0.01;1.6;0.2\n0.02;1.4;0.3\n"
    return {f"save_csv-{k}": bytes([k]) + text for k in (0, 1, 2, 4)} | {"semicolon": bytes([3]) + short}


def seeds_ipol() -> dict[str, bytes]:
    from fuzz_ipol import META, imu_text

    imu = imu_text(n=16).encode()
    meta = json.dumps(META).encode()
    return {"imu": bytes([0]) + imu, "meta": bytes([1]) + meta, "trial-json": bytes([2]) + meta,
            "trial-imu": bytes([3]) + imu_text().encode()}


def seeds_gaitmap() -> dict[str, bytes]:
    from fuzz_gaitmap import EVENTS, imu_csv

    with tempfile.TemporaryDirectory() as d:
        p = Path(d) / "ev.csv"
        write_event_table(p, {"left": {"toe_off": [10, 30, 50], "heel_strike": [5, 20, 40, 55]},
                              "right": {"toe_off": [15, 35], "heel_strike": [8, 25, 45]}}, 100.0)
        written = p.read_bytes()
    imu = imu_csv(n=8).encode()
    return {"imu": bytes([0]) + imu, "events-written": bytes([1]) + written, "events": bytes([2]) + EVENTS.encode(),
            "load-imu": bytes([3]) + imu_csv().encode(), "load-events": bytes([4]) + EVENTS.encode()}


def seeds_mounting() -> dict[str, bytes]:
    m = Mounting({"left": SensorMounting(parse_axis_map("x=-y,y=x,z=z")),
                  "right": SensorMounting(np.array([[0.0, 0.6, 0.8], [1.0, 0.0, 0.0], [0.0, 0.8, -0.6]]),
                                          method="estimated", confidence=0.9)})
    out = {}
    with tempfile.TemporaryDirectory() as d:
        for which, name in ((0, "m.toml"), (1, "m.json")):
            p = Path(d) / name
            m.save(p)
            out[f"saved-{name}"] = bytes([which]) + p.read_bytes()
    out["option"] = bytes([2]) + b"left=x=-y,y=x,z=z,right=x=y,y=-x,z=z"
    out["option-all"] = bytes([2]) + b"x=z,y=y,z=-x"
    return out


def seeds_checkpoint() -> dict[str, bytes]:
    import torch

    from gaitedge.checkpoint import TrainedModel
    from gaitedge.data.preprocess import Normalizer
    from gaitedge.models import build_model

    torch.manual_seed(0)
    model = build_model("elman", 2, 3, hidden=2)
    norm = Normalizer(np.zeros(2, np.float32), np.ones(2, np.float32))
    tm = TrainedModel(model, ("rest", "stance", "swing"), ["acc_x", "gyr_y"], ["m/s^2", "rad/s"], 100.0, norm,
                      0.0, 2, 3, 50.0)
    out = {}
    for legacy in (False, True):
        buf = io.BytesIO()
        torch.save(tm.to_dict(), buf, _use_new_zipfile_serialization=not legacy)
        out["tiny-legacy" if legacy else "tiny"] = buf.getvalue()
    return out


SEEDS = {
    "textline": seeds_textline, "frames": seeds_frames, "messages": seeds_messages, "csv": seeds_csv,
    "ipol": seeds_ipol, "gaitmap": seeds_gaitmap, "mounting": seeds_mounting, "checkpoint": seeds_checkpoint,
}


def main() -> None:
    """Write every target's seeds, replacing its corpus folder."""
    for name, make in SEEDS.items():
        folder = HERE / "corpus" / name
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
        seeds = make()
        for label, data in seeds.items():
            (folder / f"seed-{label}").write_bytes(data)
        print(f"{name}: {len(seeds)} seeds, {sum(map(len, seeds.values()))} bytes")


if __name__ == "__main__":
    main()
