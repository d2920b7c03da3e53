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
    update = rec(FLASH_BEGIN, hdr) + b"".join(chunks) + rec(FLASH_VERIFY) + rec(FLASH_COMMIT) + rec(FLASH_COMMIT, flags=2)
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


def model_seed(blob: bytes, kind_index: int = 1, cell_frac: int | None = None, aux: int = 0) -> bytes:
    """fuzz_model.c's input for the tiny GRU (6 inputs, hidden 8, 3 classes) with its blob's numbers."""
    p = blob[64:]
    delay, min_run, swing, logit_frac = struct.unpack_from("<HHbB", p, 68)
    cf = p[76] if cell_frac is None else cell_frac
    head = struct.pack("<BBBHBBHBHbH", 0, 1, 3, delay, N_INPUTS, 0, 8, logit_frac, min_run, swing, 48)
    layer = struct.pack("<BBHHHHHH", kind_index, cf, N_INPUTS, 8, aux, 0, 464, 128)
    counts = struct.pack("<24h", *[(i * 977) % 3000 - 1500 for i in range(24)])
    return head + layer + p[96:796] + bytes([1]) + bytes([0, 1, 2]) + bytes(9) + struct.pack("<9h", 0, 16384, 0, -16384, 0, 0, 0, 0, 16384) + bytes(54) + counts


def seeds_model(blob: bytes) -> dict[str, bytes]:
    return {
        "gru": model_seed(blob),
        "lstm": model_seed(blob, 0, 10, 8),
        "elman": model_seed(blob, 2),
        "peephole": model_seed(blob, 7, 10, 8),
        "refused-magic": b"\x01\x47\x45\x4d\x30" + model_seed(blob)[1:],
    }


def main() -> None:
    vec = json.loads(VECTORS.read_text())
    with tempfile.TemporaryDirectory() as tmp:
        make_model.main(Path(tmp))
        blob = (Path(tmp) / "weights.blob").read_bytes()
    for name, seeds in (("c_deframer", seeds_deframer(vec)), ("c_fw_requests", seeds_fw_requests(vec, blob)),
                        ("c_fw_flash", seeds_fw_flash(blob)), ("c_model", seeds_model(blob))):
        d = CORPUS / name
        shutil.rmtree(d, ignore_errors=True)
        d.mkdir(parents=True)
        for k, v in seeds.items():
            (d / f"seed-{k}").write_bytes(v)
        print(f"{d.relative_to(ROOT)}: {len(seeds)} seeds, {sum(map(len, seeds.values()))} bytes")


if __name__ == "__main__":
    main()
