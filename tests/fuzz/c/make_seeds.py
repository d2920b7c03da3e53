"""Write the seed corpora of the C fuzz targets (``tests/fuzz/corpus/c_<target>/``).

    python tests/fuzz/c/make_seeds.py

Seeds come from the shared protocol vectors (``gaitedge/csrc/protocol/vectors.json``)
and the weights blob of the tiny model the firmware targets are built with
(``make_model.py``).  The output is deterministic; the folders are replaced whole.
"""

from __future__ import annotations

import json
import shutil
import struct
import sys
import tempfile
import zlib
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[2]
CORPUS = HERE.parent / "corpus"
VECTORS = ROOT / "gaitedge" / "csrc" / "protocol" / "vectors.json"
sys.path.insert(0, str(HERE))

import make_model  # noqa: E402
import numpy as np  # noqa: E402

# message types (PROTOCOL.md)
PING, INFO, SAMPLES, RESET_STATE, STATS = 0x01, 0x02, 0x03, 0x04, 0x05
FLASH_BEGIN, FLASH_CHUNK, FLASH_VERIFY, FLASH_COMMIT, FLASH_ABORT, FLASH_STATUS = 0x10, 0x11, 0x12, 0x13, 0x14, 0x15
REBOOT, FACTORY_RESET, SET_MOUNTING, GET_MOUNTING = 0x20, 0x21, 0x30, 0x31
N_INPUTS = 6
SLOT = 4096  # fake_board.h FAKE_SLOT_SIZE


def crc(b: bytes) -> int:
    return zlib.crc32(b) & 0xFFFFFFFF


def rec(t: int, payload: bytes = b"", flags: int = 0) -> bytes:
    """One record of fuzz_fw_requests.c."""
    return struct.pack("<BBH", t, flags, len(payload)) + payload


def samples(n: int, k: int = 0) -> bytes:
    counts = [((i * 7919 + c * 104729 + k) % 4001) - 2000 for i in range(n) for c in range(N_INPUTS)]
    return struct.pack(f"<HBB{n * N_INPUTS}h", n, N_INPUTS, 0, *counts)


def mounting_6() -> bytes:
    """A valid SET_MOUNTING payload for six channels: acc and gyr triads, x <- y, y <- -x."""
    rot = [0, 16384, 0, -16384, 0, 0, 0, 0, 16384]
    triad = lambda i: bytes([i, i + 1, i + 2, 0]) + struct.pack("<9h", *rot)  # noqa: E731
    return bytes([2, 0, 0, 0]) + triad(0) + triad(3)


def seeds_deframer(vec: dict) -> dict[str, bytes]:
    out = {f"frame-{i}": bytes.fromhex(f["wire"]) for i, f in enumerate(vec["frames"])}
    out.update({f"stream-{i}": bytes.fromhex(s["wire"]) for i, s in enumerate(vec["streams"])})
    return out


def seeds_fw_requests(vec: dict, blob: bytes) -> dict[str, bytes]:
    hdr, payload = blob[:64], blob[64:]
    chunks = [rec(FLASH_CHUNK, struct.pack("<I", off) + payload[off:off + 512]) for off in range(0, len(payload), 512)]
    update = (rec(FLASH_BEGIN, hdr) + b"".join(chunks) + rec(FLASH_VERIFY) + rec(FLASH_COMMIT)
              + rec(FLASH_COMMIT, flags=2))
    out = {
        "session": b"".join([rec(INFO), rec(PING, b"abc"), rec(SAMPLES, samples(3)), rec(SAMPLES, samples(3), 2),
                             rec(SAMPLES, samples(5, 1)), rec(STATS, b"\x01"), rec(STATS), rec(RESET_STATE),
                             rec(FLASH_STATUS), rec(GET_MOUNTING), rec(0x55, b"?")]),
        "mounting": b"".join([rec(SET_MOUNTING, mounting_6()), rec(SET_MOUNTING, mounting_6()), rec(GET_MOUNTING),
                              rec(SAMPLES, samples(2)), rec(REBOOT), rec(GET_MOUNTING), rec(SET_MOUNTING, b"\0\0\0\0"),
                              rec(FACTORY_RESET), rec(GET_MOUNTING)]),
        "update": update + rec(INFO) + rec(FLASH_STATUS) + rec(SAMPLES, samples(4)) + rec(REBOOT) + rec(INFO),
        "update-twice": update + update + rec(FLASH_ABORT) + rec(FACTORY_RESET) + rec(INFO),
        "update-bad": rec(FLASH_BEGIN, hdr[:60] + b"\0\0\0\0", 4) + chunks[0] + rec(FLASH_VERIFY) + rec(FLASH_ABORT),
        "noise": rec(0, bytes.fromhex(vec["streams"][-1]["wire"]), 1) + rec(PING, b"\0\0\0"),
    }
    for i, m in enumerate(vec["messages"]):
        if m["type"] < 0x80:
            out[f"message-{i}"] = rec(m["type"], bytes.fromhex(m["payload"]))
    for i, m in enumerate(vec["mounting"]):
        out[f"mounting-{i}"] = rec(SET_MOUNTING, bytes.fromhex(m["payload"]))
    return out


def commit_record(gen: int, blob: bytes) -> bytes:
    r = struct.pack("<IIIII", 0x52434547, gen, struct.unpack_from("<I", blob, 44)[0],
                    struct.unpack_from("<I", blob, 60)[0], len(blob) - 64) + b"\xff" * 8
    return r + struct.pack("<I", crc(r))


def mount_record(gen: int, arch: bytes, mounting: bytes) -> bytes:
    body = struct.pack("<II", 0x544D4547, gen) + arch[:8] + struct.pack("<HH", len(mounting), 0) + mounting
    body = body + b"\xff" * (124 - len(body))
    return body + struct.pack("<I", crc(body))


def seeds_fw_flash(blob: bytes) -> dict[str, bytes]:
    arch = blob[8:40]
    good = commit_record(1, blob)
    cfg = mount_record(1, arch, mounting_6())
    return {
        "committed": b"\x00\x00" + good + cfg + blob,
        "committed-two": b"\x20\x11" + good + cfg + blob,
        "committed-fixed": b"\x3f\x05" + good + cfg + blob,
        "no-mounting": b"\x00\x00" + good + b"\xff" * 128 + blob,
        "erased": b"\x00\x00" + b"\xff" * (32 + 128 + 64),
    }


KIND_INDEX = {"lstm": 0, "gru": 1, "elman": 2, "reservoir": 3, "ctrnn": 4, "gactrnn": 5, "jordan": 6, "peephole": 7,
              "tcn": 8, "pcrnn": 9}  # fuzz_model.c kinds[]


def model_seed(qm) -> bytes:
    """fuzz_model.c's input for an exported model: its sizes and settings, then its arrays in the harness' order."""
    from gaitedge.export.packing import pack_head, pack_layer

    i32 = lambda a: np.asarray(a, np.int64).ravel().astype("<i4").tobytes()  # noqa: E731
    u32 = lambda a: np.asarray(a, np.int64).ravel().astype("<u4").tobytes()  # noqa: E731
    pre = qm.pre
    n_sec = 0 if pre.sos is None else len(pre.sos)
    hw, hm = pack_head(qm)
    head = struct.pack("<BBBHBBHBHbH", 0, len(qm.layers), len(qm.classes), int(qm.delay), pre.n_inputs, n_sec,
                       int(qm.head_weight.shape[1]), int(qm.logit_frac), int(qm.min_run), int(qm.swing), 4 * len(hw))
    content = i32(pre.norm_mult) + i32(pre.norm_bias) + (i32(pre.sos) + i32(pre.zi) if n_sec else b"")
    for lay in qm.layers:
        w, m = pack_layer(lay)
        extra = b"" if lay.extra is None else i32(lay.extra)
        head += struct.pack("<BBHHHHHH", KIND_INDEX[lay.kind], int(lay.cell_frac), lay.in_size, lay.hidden,
                            int(lay.aux), len(extra) // 4, 4 * len(w), 4 * len(m))
        content += extra + u32(w) + i32(m)
    content += u32(hw) + i32(hm)
    mount = bytes([1]) + bytes([0, 1, 2]) + bytes(9) + struct.pack("<9h", 0, 16384, 0, -16384, 0, 0, 0, 0, 16384)
    counts = struct.pack(f"<{4 * pre.n_inputs}h", *[(i * 977) % 3000 - 1500 for i in range(4 * pre.n_inputs)])
    return head + content + mount + bytes(54) + counts


#: families of the c_model seeds (hyperparameters besides hidden 8)
MODEL_FAMILIES = {"gru": {}, "lstm": {}, "elman": {}, "esn": {}, "ctrnn": {}, "gactrnn": {}, "jordan": {},
                  "peephole": {}, "pcrnn": {}, "deep_gru": {}, "tcn": {}}


def seeds_model() -> dict[str, bytes]:
    out = {}
    for fam, hp in MODEL_FAMILIES.items():
        out[fam] = model_seed(make_model.tiny_quant_model(fam, **hp))
    out["refused-magic"] = b"\x01\x47\x45\x4d\x30" + out["gru"][1:]
    return out


def main() -> None:
    vec = json.loads(VECTORS.read_text())
    with tempfile.TemporaryDirectory() as tmp:
        make_model.main(Path(tmp))
        blob = (Path(tmp) / "weights.blob").read_bytes()
    for name, seeds in (("c_deframer", seeds_deframer(vec)), ("c_fw_requests", seeds_fw_requests(vec, blob)),
                        ("c_fw_flash", seeds_fw_flash(blob)), ("c_model", seeds_model())):
        d = CORPUS / name
        shutil.rmtree(d, ignore_errors=True)
        d.mkdir(parents=True)
        for k, v in seeds.items():
            (d / f"seed-{k}").write_bytes(v)
        print(f"{d.relative_to(ROOT)}: {len(seeds)} seeds, {sum(map(len, seeds.values()))} bytes")


if __name__ == "__main__":
    main()
