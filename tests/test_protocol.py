"""The wire protocol (gaitedge/csrc/PROTOCOL.md) in Python and C, held to the shared vectors.

The C framing (ge_proto.c) is compiled for the host, with ASan/UBSan where the
compiler supports them, and run on the same vectors, on random streams against the
Python decoder, and on a long seeded run of mutated frames.
"""

from __future__ import annotations

import json
import random
import subprocess

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fwtools import FW, PROTO, RUNTIME, compile_host, have
from gaitedge.protocol import messages as M
from gaitedge.protocol.framing import (
    MAX_FRAME,
    MAX_PAYLOAD,
    Frame,
    FrameDecoder,
    cobs_decode,
    cobs_encode,
    crc32,
    encode_frame,
    raw_frame,
)

VECTORS = json.loads((PROTO / "vectors.json").read_text())
needs_gcc = pytest.mark.skipif(not have("gcc"), reason="no host C compiler")


def verdict_strings(wire: bytes) -> tuple[list[str], list[int]]:
    d = FrameDecoder()
    out = []
    for v in d.feed(wire, verdicts=True):
        if isinstance(v, str):
            out.append(v)
        else:
            s = f"ok:{v.type:02x}:{v.seq:04x}:{v.payload.hex() or '-'}"
            out.append(s + (f":v{v.version}" if v.version != 1 else ""))
    return out, [d.frames_ok, d.crc_errors, d.framing_errors, d.oversize]


# ---- Python against the vectors ------------------------------------------------------------
def test_crc32_check_value_and_vectors():
    assert crc32(b"123456789") == 0xCBF43926
    for v in VECTORS["crc32"]:
        assert f"{crc32(bytes.fromhex(v['data'])):08x}" == v["crc"]


def test_cobs_vectors():
    for v in VECTORS["cobs"]:
        dec, enc = bytes.fromhex(v["decoded"]), bytes.fromhex(v["encoded"])
        assert cobs_encode(dec) == enc
        assert cobs_decode(enc) == dec


def test_frame_vectors_encode_and_decode():
    for v in VECTORS["frames"]:
        payload = bytes.fromhex(v["payload"])
        wire = encode_frame(v["type"], v["seq"], payload)
        assert wire.hex() == v["wire"], v["name"]
        (f,) = FrameDecoder().feed(wire)
        assert (f.type, f.seq, f.payload) == (v["type"], v["seq"], payload)


def test_stream_vectors_verdicts_and_counters():
    for v in VECTORS["streams"]:
        got, counters = verdict_strings(bytes.fromhex(v["wire"]))
        assert got == v["verdicts"], v["name"]
        assert counters == v["counters"], v["name"]
        # the same stream cut into arbitrary pieces gives the same verdicts
        wire = bytes.fromhex(v["wire"])
        d = FrameDecoder()
        pieces, pos = [], 0
        rng = random.Random(len(wire))
        while pos < len(wire):
            k = rng.randint(1, 50)
            pieces += d.feed(wire[pos : pos + k], verdicts=True)
            pos += k
        assert [p if isinstance(p, str) else "ok" for p in pieces] == [
            "ok" if s.startswith("ok") else s for s in v["verdicts"]]


def test_message_vectors():
    for v in VECTORS["messages"]:
        p = bytes.fromhex(v["payload"])
        d = v["decoded"]
        if v["type"] == M.SAMPLES:
            assert M.decode_samples(p).tolist() == d["counts"]
            assert M.encode_samples(np.array(d["counts"])) == p
        elif v["type"] == M.SAMPLES | M.REPLY:
            r = M.Results.decode(p)
            assert r.first_step == d["first_step"]
            for k in ("label", "raw_label", "event", "event_sample", "logits"):
                assert getattr(r, k).tolist() == d[k], k
        elif v["type"] == M.INFO | M.REPLY:
            info = M.Info.decode(p)
            assert info.__dict__ == d
            assert info.encode() == p
        elif v["type"] == M.STATS | M.REPLY:
            assert M.Stats.decode(p).as_dict() == d
        elif v["type"] == M.SET_MOUNTING:
            m = M.MountingState.decode(p)
            assert [[list(c), list(r)] for c, r in m.triads] == d["triads"]
            assert M.MountingState.of(m.triads).encode() == p
        elif v["type"] == M.GET_MOUNTING | M.REPLY:
            m = M.MountingState.decode_reply(p)
            assert m.generation == d["generation"] and [[list(c), list(r)] for c, r in m.triads] == d["triads"]
            assert m.encode_reply() == p
        elif v["type"] == M.NAK:
            n = M.Nak.decode(p)
            assert (n.request, n.code, n.detail, n.message) == (d["request"], d["code"], d["detail"], d["message"])
            assert "FLASH_BEGIN refused" in n.describe()


def test_mounting_vectors():
    """SET_MOUNTING payloads: the device's verdict (NAK code, detail) and the re-encoded mounting."""
    assert {v["code"] for v in VECTORS["mounting"]} == {0, M.E_LENGTH, M.E_MOUNT_TRIADS, M.E_MOUNT_INDEX,
                                                        M.E_MOUNT_ROTATION}
    for v in VECTORS["mounting"]:
        p = bytes.fromhex(v["payload"])
        assert M.check_mounting(p, v["n_inputs"]) == (v["code"], v["detail"]), v["name"]
        if v["code"] == 0:
            assert M.MountingState.decode(p).encode().hex() == v["encoded"], v["name"]


def test_encode_frame_refuses_oversized_payload():
    with pytest.raises(ValueError):
        encode_frame(M.PING, 1, bytes(MAX_PAYLOAD + 1))


# ---- C against the vectors -------------------------------------------------------------------
@pytest.fixture(scope="module")
def c_vectors():
    fw, rt = FW, RUNTIME
    exe = compile_host("proto_vectors", [PROTO / "ge_proto.c", PROTO / "tests" / "proto_vectors.c", fw / "fw_mount.c",
                                         rt / "src" / "ge_mounting.c"], includes=(fw, rt / "include"))

    def run(lines: list[str]) -> list[str]:
        p = subprocess.run([str(exe)], input="\n".join(lines) + "\n", capture_output=True, text=True, timeout=120)
        assert p.returncode == 0, p.stderr
        return p.stdout.splitlines()

    return run


def _parse_c_decode(line: str) -> tuple[list[str], list[int]]:
    left, right = line.split("|")
    return left.split(), [int(x) for x in right.split()]


@needs_gcc
def test_c_implementation_matches_vectors(c_vectors):
    cmds, expect = [], []
    for v in VECTORS["crc32"]:
        cmds.append(f"C {v['data'] or '-'}")
        expect.append(("crc", v["crc"]))
    for v in VECTORS["cobs"]:
        cmds.append(f"B {v['decoded'] or '-'}")
        expect.append(("cobs", v["encoded"]))
    for v in VECTORS["frames"]:
        cmds.append(f"E {v['type']} {v['seq']} {v['payload'] or '-'}")
        expect.append(("frame", v["wire"]))
        cmds.append(f"D {v['wire']}")
        expect.append(("decode", ([f"ok:{v['type']:02x}:{v['seq']:04x}:{v['payload'] or '-'}"], [1, 0, 0, 0])))
    for v in VECTORS["streams"]:
        cmds.append(f"D {v['wire']}")
        expect.append(("decode", (v["verdicts"], v["counters"])))
    for v in VECTORS["mounting"]:
        cmds.append(f"M {v['n_inputs']} {v['payload'] or '-'}")
        expect.append(("mounting", f"{v['code']} {v['detail']} {v['encoded']}"))
    out = c_vectors(cmds)
    assert len(out) == len(cmds)
    for cmd, line, (kind, want) in zip(cmds, out, expect):
        if kind == "decode":
            assert _parse_c_decode(line) == want, cmd[:80]
        else:
            assert line == want, cmd[:80]


@needs_gcc
def test_c_and_python_agree_on_random_mounting_payloads(c_vectors):
    """fw_mount_decode and check_mounting give the same verdict on random payloads near the limits."""
    rng = np.random.default_rng(5)
    eye = np.eye(3) * 16384
    cmds, want = [], []
    for _ in range(400):
        n = int(rng.integers(0, 6))
        n_in = int(rng.integers(1, 16)) if rng.random() < 0.3 else 15
        perm = rng.permutation(16) if rng.random() < 0.8 else rng.integers(0, 16, 16)
        triads = []
        for k in range(n):
            q, _ = np.linalg.qr(rng.normal(size=(3, 3)))
            rot = np.round(q * 16384) if rng.random() < 0.7 else eye
            rot = rot + rng.integers(-70, 71, (3, 3)) * (rng.random() < 0.3)  # near the tolerance
            rot = np.clip(rot, -32768, 32767).astype(int)
            triads.append((tuple(int(c) for c in perm[3 * k : 3 * k + 3]), tuple(rot.ravel().tolist())))
        p = M.MountingState(triads).encode()
        if rng.random() < 0.1:
            p = p[: int(rng.integers(0, len(p) + 1))]
        code, detail = M.check_mounting(p, n_in)
        cmds.append(f"M {n_in} {p.hex() or '-'}")
        want.append(f"{code} {detail} {M.MountingState.decode(p).encode().hex() if code == 0 else '-'}")
    out = c_vectors(cmds)
    assert out == want
    for code in (0, M.E_LENGTH, M.E_MOUNT_TRIADS, M.E_MOUNT_INDEX, M.E_MOUNT_ROTATION):
        assert sum(w.startswith(f"{code} ") for w in want) >= 10, code


@needs_gcc
def test_c_and_python_decoders_agree_on_random_streams(c_vectors):
    rng = random.Random(1234)
    streams = []
    for _ in range(300):
        parts = []
        for _ in range(rng.randint(1, 6)):
            payload = bytes(rng.choice([0, rng.randrange(256)]) for _ in range(rng.choice([0, 3, 40, 300])))
            w = bytearray(encode_frame(rng.randrange(256), rng.randrange(65536), payload))
            r = rng.random()
            if r < 0.2 and len(w) > 2:
                w[rng.randrange(len(w))] ^= 1 << rng.randrange(8)
            elif r < 0.35 and len(w) > 2:
                del w[rng.randrange(len(w))]
            elif r < 0.5:
                w[rng.randrange(len(w)):rng.randrange(len(w))] = bytes(rng.randrange(256) for _ in range(5))
            elif r < 0.55:
                w = bytearray(rng.randrange(1, 256) for _ in range(rng.randint(1030, 1600)))
            parts.append(bytes(w))
        streams.append(b"".join(parts))
    out = c_vectors([f"D {s.hex()}" for s in streams])
    for s, line in zip(streams, out):
        assert _parse_c_decode(line) == verdict_strings(s)


@needs_gcc
@pytest.mark.parametrize("seed", [1, 2])
def test_c_decoder_long_random_run_under_sanitizers(seed):
    exe = compile_host("proto_fuzz", [PROTO / "ge_proto.c", PROTO / "tests" / "proto_fuzz.c"])
    p = subprocess.run([str(exe), str(seed), "200000"], capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stdout + p.stderr
    assert "failures 0" in p.stdout


# ---- hypothesis on the Python decoder --------------------------------------------------------
frames_st = st.lists(st.tuples(st.integers(0, 255), st.integers(0, 65535),
                               st.binary(max_size=300) | st.sampled_from([b"", b"\x00" * 50, bytes(1024)])),
                     min_size=1, max_size=6)
mutation_st = st.sampled_from(["none", "none", "flip", "drop", "insert", "truncate", "garbage", "oversize",
                               "lying_len"])


def _mutate(data: st.DataObject, wire: bytes, kind: str, frame: tuple) -> bytes:
    w = bytearray(wire)
    if kind == "flip":
        i = data.draw(st.integers(0, len(w) - 1))
        w[i] ^= 1 << data.draw(st.integers(0, 7))
    elif kind == "drop":
        del w[data.draw(st.integers(0, len(w) - 1))]
    elif kind == "insert":
        i = data.draw(st.integers(0, len(w)))
        w[i:i] = data.draw(st.binary(min_size=1, max_size=30))
    elif kind == "truncate":
        w = w[: data.draw(st.integers(0, len(w) - 1))]
    elif kind == "garbage":
        w = bytearray(data.draw(st.binary(min_size=1, max_size=80))) + w
    elif kind == "oversize":
        w = bytearray(data.draw(st.integers(1, 255)) for _ in range(1)) * data.draw(st.integers(1040, 3000))
    elif kind == "lying_len":
        t, s, p = frame
        body = bytearray(raw_frame(t, s, p))
        body[4:6] = data.draw(st.integers(0, 65535)).to_bytes(2, "little")
        body[-4:] = crc32(bytes(body[:-4])).to_bytes(4, "little")
        w = bytearray(b"\x00" + cobs_encode(bytes(body)) + b"\x00")
    return bytes(w)


@settings(max_examples=300, deadline=2000, suppress_health_check=[HealthCheck.too_slow])
@given(frames=frames_st, data=st.data())
def test_decoder_resynchronises_after_any_corruption(frames, data):
    """Random corruption, drops, truncation, garbage, oversized input and lying length
    fields: the decoder never raises, keeps bounded memory, counts one verdict per
    candidate, and decodes every intact frame exactly and in order."""
    dec = FrameDecoder()
    wire, intact = bytearray(), []
    for t, s, p in frames:
        kind = data.draw(mutation_st)
        w = encode_frame(t, s, p)
        if kind == "none":
            intact.append(Frame(t, s, p))
        else:
            w = _mutate(data, w, kind, (t, s, p))
        wire += w
    got: list = []
    pos = 0
    while pos < len(wire):  # random piece sizes, as a serial port delivers them
        k = data.draw(st.integers(1, 700))
        got += dec.feed(bytes(wire[pos : pos + k]), verdicts=True)
        assert len(dec._buf) <= MAX_FRAME
        pos += k
    decoded = [g for g in got if isinstance(g, Frame)]
    it = iter(decoded)
    assert all(any(f == g for g in it) for f in intact), "an intact frame was lost"
    errors = [g for g in got if isinstance(g, str)]
    assert dec.frames_ok == len(decoded)
    assert dec.errors == len(errors)


@settings(max_examples=200, deadline=2000)
@given(garbage=st.binary(max_size=4000), t=st.integers(0, 255), s=st.integers(0, 65535), p=st.binary(max_size=200))
def test_decoder_survives_arbitrary_bytes_then_syncs(garbage, t, s, p):
    dec = FrameDecoder()
    dec.feed(garbage)
    assert len(dec._buf) <= MAX_FRAME
    assert dec.feed(encode_frame(t, s, p)) == [Frame(t, s, p)]


@settings(max_examples=300, deadline=1000)
@given(t=st.integers(0, 255), s=st.integers(0, 65535), p=st.binary(max_size=MAX_PAYLOAD))
def test_frame_round_trip(t, s, p):
    w = encode_frame(t, s, p)
    assert w[0] == 0 and w[-1] == 0 and 0 not in w[1:-1]
    assert FrameDecoder().feed(w) == [Frame(t, s, p)]


@settings(max_examples=300, deadline=1000)
@given(d=st.binary(max_size=2000))
def test_cobs_round_trip(d):
    e = cobs_encode(d)
    assert 0 not in e and len(e) <= len(d) + len(d) // 254 + 1
    assert cobs_decode(e) == d


def test_samples_and_results_codec_round_trip():
    c = np.array([[1, 2, 3], [-4, -5, 32767]], np.int16)
    assert (M.decode_samples(M.encode_samples(c)) == c).all()
    with pytest.raises(ValueError):
        M.encode_samples(np.array([[40000]]))
    r = M.Results.decode(M.encode_results(3, [1], [1], [2], [0], [[5, 6]]))
    assert r.events() == [("heel_strike", 0)]
    assert M.max_samples_per_frame(12, 3) == 42
