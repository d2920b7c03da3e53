"""Writes vectors.json, the shared test vectors of PROTOCOL.md (run once; the file is committed).

    python gaitedge/csrc/protocol/make_vectors.py

Known answers that do not come from this code (CRC check value, the COBS examples of
the COBS literature) are written in literally; frames and decoder verdicts are
computed with gaitedge.protocol and were checked by hand against PROTOCOL.md.  The
tests run both the Python and the C implementation on every vector.
"""

from __future__ import annotations

import json
import struct
from pathlib import Path

from gaitedge.protocol import messages as M
from gaitedge.protocol.framing import FrameDecoder, cobs_encode, crc32, encode_frame, raw_frame

OUT = Path(__file__).with_name("vectors.json")


def hx(b: bytes) -> str:
    return bytes(b).hex()


def verdicts(wire: bytes) -> tuple[list[str], list[int]]:
    d = FrameDecoder()
    out = []
    for v in d.feed(wire, verdicts=True):
        if isinstance(v, str):
            out.append(v)
        else:
            s = f"ok:{v.type:02x}:{v.seq:04x}:{hx(v.payload) or '-'}"
            if v.version != 1:
                s += f":v{v.version}"
            out.append(s)
    return out, [d.frames_ok, d.crc_errors, d.framing_errors, d.oversize]


def cobs_wrap(body: bytes) -> bytes:
    return b"\x00" + cobs_encode(body) + b"\x00"


def main() -> None:
    seq_254 = bytes(range(1, 255))
    cobs_known = [  # (decoded, encoded): the examples of the COBS literature / Wikipedia
        ("00", "0101"),
        ("0000", "010101"),
        ("001100", "01021101"),
        ("11220033", "0311220233"),
        ("11223344", "0511223344"),
        ("11000000", "0211010101"),
        (hx(seq_254), "ff" + hx(seq_254)),
        ("00" + hx(seq_254), "01ff" + hx(seq_254)),
        (hx(bytes(range(1, 256))), "ff" + hx(seq_254) + "02ff"),
        (hx(bytes(range(2, 256)) + b"\x00"), "ff" + hx(bytes(range(2, 256))) + "0101"),
        (hx(bytes(range(3, 256)) + b"\x00\x01"), "fe" + hx(bytes(range(3, 256))) + "0201"),
        ("", "01"),
    ]
    for dec, enc in cobs_known:
        assert hx(cobs_encode(bytes.fromhex(dec))) == enc, dec

    crcs = [("313233343536373839", "cbf43926"), ("", "00000000"), ("00", "d202ef8d"),
            ("ffffffff", "ffffffff")]
    for d, c in crcs:
        assert f"{crc32(bytes.fromhex(d)):08x}" == c, d

    frames = []
    for name, t, s, p in [
        ("PING seq 1, empty", M.PING, 1, b""),
        ("PING seq 0x1234, zeros in payload", M.PING, 0x1234, b"\x00\x01\x00\x00\xff"),
        ("INFO request", M.INFO, 65535, b""),
        ("SAMPLES 2 samples x 3 channels", M.SAMPLES, 7, M.encode_samples([[1, -1, 0], [32767, -32768, 256]])),
        ("FLASH_CHUNK offset 8", M.FLASH_CHUNK, 300, struct.pack("<I", 8) + bytes(range(16))),
        ("254 non-zero bytes (one full COBS block)", M.PING, 2, bytes(range(1, 249))),
        ("largest payload", M.PING, 3, bytes((i * 7) & 0xFF for i in range(1024))),
        ("NAK reply", M.NAK, 9, M.Nak(M.SAMPLES, M.E_CHANNELS, 12, "channel count").encode()),
    ]:
        frames.append({"name": name, "type": t, "seq": s, "payload": hx(p), "wire": hx(encode_frame(t, s, p))})

    good = encode_frame(M.PING, 5, b"abc")
    good2 = encode_frame(M.INFO, 6, b"")
    body = raw_frame(M.PING, 5, b"abc")
    flipped = bytearray(good)
    flipped[bytes(good).index(b"abc") + 1] ^= 0x01  # a payload byte
    streams_src = [
        ("one frame", good),
        ("extra delimiters are ignored", b"\x00\x00" + good + b"\x00\x00\x00" + good2),
        ("garbage before a frame", b"\x13\x37\xca\xfe" + good),
        ("garbage with zeros between frames", good + b"\x55\x00\xaa\xbb\x00\x01" + good2),
        ("corrupted payload byte -> crc, next frame fine", bytes(flipped) + good2),
        ("dropped byte -> framing", good[:5] + good[6:] + good2),
        ("truncated frame, then a frame", good[: len(good) - 4] + good2),
        ("missing closing delimiter: the next frame's leading zero ends it", good[:-1] + good2),
        ("too short (3 bytes)", b"\x00\x04\x01\x02\x03\x00" + good2),
        ("COBS code points past the end -> framing", b"\x00\x09\x01\x02\x00" + good2),
        ("length field larger than the bytes, CRC right -> framing",
         cobs_wrap(raw_frame(M.PING, 5, b"abc")[:4] + struct.pack("<H", 4) + b"abc"
                   + struct.pack("<I", crc32(raw_frame(M.PING, 5, b"abc")[:4] + struct.pack("<H", 4) + b"abc")))
         + good2),
        ("length field over the maximum, CRC right -> oversize",
         cobs_wrap(body[:4] + struct.pack("<H", 2000) + b"abc"
                   + struct.pack("<I", crc32(body[:4] + struct.pack("<H", 2000) + b"abc"))) + good2),
        ("1100 non-zero bytes without a delimiter -> oversize, then resync",
         b"\x00" + bytes((i % 255) + 1 for i in range(1100)) + b"\x00" + good2),
        ("frame of protocol version 2 passes framing (refused later by the message layer)",
         encode_frame(M.PING, 8, b"x", version=2)),
        ("CRC bytes corrupted", good[:-3] + bytes([good[-3] ^ 0xFF]) + good[-2:] + good2),
        ("largest frame is accepted", encode_frame(M.PING, 3, bytes(1024))),
        ("one byte over the largest frame -> oversize",
         cobs_wrap(raw_frame(M.PING, 3, bytes(1024)) + b"\x01") + good2),
    ]
    streams = []
    for name, wire in streams_src:
        v, c = verdicts(wire)
        streams.append({"name": name, "wire": hx(wire), "verdicts": v, "counters": c})

    info = M.Info(1, "1.0.0", 1024, 42, 4096, 512, 100.0, 12, 3, 0, 4, 2, "slot A", 3, 25000000, 17,
                  "ab" * 32, "0123456789abcdef" * 4, "mps2-an386", "gru", ["rest", "stance", "swing"],
                  [f"ch{i}" for i in range(12)], ["m/s^2"] * 3 + ["rad/s"] * 3 + ["m/s^2"] * 3 + ["rad/s"] * 3,
                  [16 * 9.80665 / 32768] * 3 + [0.0010652644360316954] * 3 + [16 * 9.80665 / 32768] * 3
                  + [0.0010652644360316954] * 3)
    stats = M.Stats(10, 1, 2, 3, 4, 5, 6, 700, 700, 123456789012, 70, 90, 75, 25000000, 5000, 4000, 120, 300)
    results = M.encode_results(5, [0, -1], [0, 2], [0, 1], [-1, 4], [[1, -2, 300], [-32768, 32767, 0]])
    messages = [
        {"name": "SAMPLES payload", "type": M.SAMPLES,
         "payload": hx(M.encode_samples([[1, -1, 0], [32767, -32768, 256]])),
         "decoded": {"counts": [[1, -1, 0], [32767, -32768, 256]]}},
        {"name": "RESULTS payload", "type": M.SAMPLES | M.REPLY, "payload": hx(results),
         "decoded": {"first_step": 5, "label": [0, -1], "raw_label": [0, 2], "event": [0, 1],
                     "event_sample": [-1, 4], "logits": [[1, -2, 300], [-32768, 32767, 0]]}},
        {"name": "INFO payload", "type": M.INFO | M.REPLY, "payload": hx(info.encode()),
         "decoded": info.__dict__},
        {"name": "STATS payload", "type": M.STATS | M.REPLY, "payload": hx(stats.encode()),
         "decoded": stats.as_dict()},
        {"name": "NAK payload", "type": M.NAK, "payload": hx(M.Nak(M.FLASH_BEGIN, M.E_ARCH, 0xDEADBEEF,
                                                                    "other architecture").encode()),
         "decoded": {"request": M.FLASH_BEGIN, "code": M.E_ARCH, "detail": 0xDEADBEEF,
                     "message": "other architecture"}},
    ]
    # a quarter turn about z, and round(2^14 R) of the rotation with z-y-x angles 30, 20, 10 degrees
    mount2 = M.MountingState([((0, 1, 2), (0, -16384, 0, 16384, 0, 0, 0, 0, 16384)),
                              ((6, 7, 8), (13333, -7225, 6202, 7698, 14460, 295, -5604, 2673, 15162))])
    eye = (16384, 0, 0, 0, 16384, 0, 0, 0, 16384)
    messages += [
        {"name": "SET_MOUNTING payload (2 triads)", "type": M.SET_MOUNTING, "payload": hx(mount2.encode()),
         "decoded": {"triads": [[list(c), list(r)] for c, r in mount2.triads]}},
        {"name": "SET_MOUNTING payload (identity: no triads)", "type": M.SET_MOUNTING,
         "payload": hx(M.MountingState([]).encode()), "decoded": {"triads": []}},
        {"name": "GET_MOUNTING reply", "type": M.GET_MOUNTING | M.REPLY,
         "payload": hx(M.MountingState(mount2.triads, 7).encode_reply()),
         "decoded": {"generation": 7, "triads": [[list(c), list(r)] for c, r in mount2.triads]}},
    ]
    four = [((3 * k, 3 * k + 1, 3 * k + 2), eye) for k in range(4)]
    mount_src = [  # (name, n_inputs, payload): the device's verdict comes from gaitedge.protocol.check_mounting
        ("2 triads, 12 channels", 12, mount2.encode()),
        ("identity (no triads)", 6, M.MountingState([]).encode()),
        ("4 triads (the maximum)", 12, M.MountingState(four).encode()),
        ("a mirror (det -1) is accepted", 3, M.MountingState([((2, 1, 0), (16384, 0, 0, 0, -16384, 0, 0, 0,
                                                                           16384))]).encode()),
        ("5 triads", 15, M.MountingState(four + [((12, 13, 14), eye)]).encode()),
        ("empty payload", 12, b""),
        ("length is not 4 + 22 n", 12, mount2.encode() + b"\x00"),
        ("index = n_inputs", 12, M.MountingState([((0, 12, 1), eye)]).encode()),
        ("index repeated within a triad", 12, M.MountingState([((4, 5, 4), eye)]).encode()),
        ("index repeated across triads", 12, M.MountingState([((0, 1, 2), eye), ((3, 2, 5), eye)]).encode()),
        ("row not unit (0.9)", 12, M.MountingState([((0, 1, 2), eye), ((3, 4, 5), (14746, 0, 0, 0, 16384, 0, 0, 0,
                                                                                   16384))]).encode()),
        ("rows not orthogonal (5 degrees)", 12, M.MountingState([((0, 1, 2), (16384, 0, 0, 1428, 16322, 0, 0, 0,
                                                                              16384))]).encode()),
        ("entry beyond 2^14", 12, M.MountingState([((0, 1, 2), (16385, 0, 0, 0, 16384, 0, 0, 0, 16384))]).encode()),
        ("largest Q1.14 rounding error is accepted", 12,
         M.MountingState([((0, 1, 2), (11585, 11585, 0, -11585, 11585, 0, 0, 0, 16384))]).encode()),
    ]
    mounting = []
    for name, n_in, payload in mount_src:
        code, detail = M.check_mounting(payload, n_in)
        enc = hx(M.MountingState.decode(payload).encode()) if code == 0 else "-"
        mounting.append({"name": name, "n_inputs": n_in, "payload": hx(payload), "code": code, "detail": detail,
                         "encoded": enc})
    doc = {
        "about": "Shared test vectors of gaitedge/csrc/PROTOCOL.md; used by tests/test_protocol.py for the "
                 "Python (gaitedge.protocol) and the C (ge_proto.c) implementation. Hex strings; verdicts "
                 "'ok:TT:SSSS:payload' ('-' = empty payload), 'crc', 'framing', 'oversize'; counters "
                 "[frames_ok, crc_errors, framing_errors, oversize]. 'mounting': SET_MOUNTING payloads with "
                 "the device's verdict for a model of n_inputs channels (code 0 = accepted, else the NAK code "
                 "and detail) and the payload re-encoded from the decoded mounting.",
        "crc32": [{"data": d, "crc": c} for d, c in crcs],
        "cobs": [{"decoded": d, "encoded": e} for d, e in cobs_known],
        "frames": frames,
        "streams": streams,
        "messages": messages,
        "mounting": mounting,
    }
    OUT.write_text(json.dumps(doc, indent=1) + "\n")
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
