"""The packed weight layout the C runtime reads, and the weights blob that carries it.

Packing (mirror of ``ge_matvec.c``; QUANTIZATION.md "Weight packing"): int8 rows
are stored as groups of 4 rows, the 4 int32 biases then the weights interleaved for
two 16-bit SMLAD lanes (:func:`pack_group`); each layer's groups in the order its
kernel walks them (:func:`pack_layer`), the head's in groups of 4 classes
(:func:`pack_head`).  ``model_data.c``
(:mod:`gaitedge.export.c_export`), the firmware's blob binding
(:mod:`gaitedge.firmware.codegen`) and ``gaitedge flash`` (:mod:`gaitedge.device`)
all use these arrays.

Weights blob layout (little-endian; PROTOCOL.md "Weights blob")::

    header (64 bytes)
      0  magic "GEWB"            4  format version u16 (1)   6  header bytes u16 (64)
      8  architecture hash [32]  40 payload length u32       44 payload CRC-32 u32
      48 flags u32 (0)           52 reserved [8] (0)         60 header CRC-32 u32 (bytes 0..59)
    payload
      params (96 bytes): weights sha256 as 64 hex chars, 4 zero bytes, delay u16, min_run u16,
        swing i8, logit_frac u8, n_layers u8, 0, cell_frac[8], 12 zero bytes
      the weight arrays, int32/uint32 each, in :func:`blob_sections` order, exactly as
        ``model_data.c`` holds them

The firmware's architecture (layer kinds and sizes, inputs, classes, channels with
their units and sensor resolution, filter sections, rate) is fixed when it is built; the blob carries only the
numbers.  :func:`arch_hash` is computed here for both the firmware build (it is
compiled into ``fw_model.c``) and the blob, so a blob for another architecture is
refused before anything is written.
"""

from __future__ import annotations

import hashlib
import json
import struct
from dataclasses import dataclass
from pathlib import Path
from zlib import crc32

import numpy as np

from gaitedge.errors import DeviceError
from gaitedge.quant import spec
from gaitedge.quant.kernels import kernel_for
from gaitedge.quant.model import QLayer, QuantModel
from gaitedge.rundir import write_bytes


# ---------------------------------------------------------------------------------------
# packing (mirror of ge_matvec.c; the order of each kind is its kernel's)
# ---------------------------------------------------------------------------------------


def _word(b0: int, b1: int, b2: int, b3: int) -> int:
    return (b0 & 0xFF) | ((b1 & 0xFF) << 8) | ((b2 & 0xFF) << 16) | ((b3 & 0xFF) << 24)


def pack_group(w: np.ndarray, bias: np.ndarray | None = None) -> list[int]:
    """Pack 4 rows ``w [4, ncols]`` (int8 values, ncols even) into uint32 words.

    With ``bias`` (4 int32), the group starts with the four bias words, as the C
    runtime expects.
    """
    w = np.asarray(w, np.int64)
    if w.shape[0] != 4 or w.shape[1] % 2:
        raise ValueError("a group is 4 rows over an even number of columns")
    n = w.shape[1]
    out = [] if bias is None else [int(b) & 0xFFFFFFFF for b in bias]
    for k in range(0, n - n % 4, 4):
        for r in range(4):
            out.append(_word(w[r, k], w[r, k + 2], w[r, k + 1], w[r, k + 3]))
    if n % 4 == 2:
        k = n - 2
        for ra in (0, 2):
            out.append(_word(w[ra, k], w[ra + 1, k], w[ra, k + 1], w[ra + 1, k + 1]))
    return out


def pack_groups(weight: np.ndarray, bias: np.ndarray, groups: list[tuple[list[int], int, int]]) -> np.ndarray:
    """Concatenate :func:`pack_group` of each ``(row indices, first column, ncols)``."""
    words: list[int] = []
    for idx, c0, n in groups:
        words += pack_group(np.asarray(weight)[idx, c0 : c0 + n], np.asarray(bias)[idx])
    return np.asarray(words, np.uint64)


def layer_order(lay: QLayer) -> list[tuple[list[int], int, int]]:
    """Packing order of a layer: list of (row indices of a group, first column, ncols)."""
    return kernel_for(lay.kind).groups(lay)


def mult_order(lay: QLayer) -> list[int]:
    """Row order of a layer's multiplier array (per unit: LSTM i f g o, GRU r z nh nx, Elman h)."""
    return kernel_for(lay.kind).mult_order(lay)


def pack_layer(lay: QLayer) -> tuple[np.ndarray, np.ndarray]:
    """(packed uint32 weight words with biases, multipliers) of a layer, in the runtime's order."""
    return pack_groups(lay.weight, lay.bias, layer_order(lay)), lay.mult[mult_order(lay)]


def pack_head(qm: QuantModel, cols: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(packed uint32 words with biases, multipliers) of the dense head, classes padded to groups of 4.

    ``cols``: pack only the first ``cols`` columns (default: all).
    """
    k, hp = qm.head_weight.shape
    hp = hp if cols is None else cols
    kp = -(-k // 4) * 4
    w = np.zeros((kp, hp), np.int64)
    w[:k] = qm.head_weight[:, :hp]
    b = np.zeros(kp, np.int64)
    b[:k] = qm.head_bias
    words: list[int] = []
    for g in range(0, kp, 4):
        words += pack_group(w[g : g + 4], b[g : g + 4])
    return np.asarray(words, np.uint64), qm.head_mult.copy()


# ---------------------------------------------------------------------------------------
# the weights blob
# ---------------------------------------------------------------------------------------

BLOB_MAGIC = b"GEWB"
BLOB_VERSION = 1
HEADER_BYTES = 64
PARAMS_BYTES = 96
MAX_LAYERS = 8
_HEADER = struct.Struct("<4sHH32sIII8s")  # 60 bytes, then the header CRC


@dataclass
class Section:
    """One weight array of the blob: where it goes in the ``ge_model`` descriptor."""

    field: str  # C lvalue relative to the model (e.g. "pre.norm_mult", "layers[0].weights")
    ctype: str  # "int32_t" or "uint32_t"
    values: np.ndarray

    def tobytes(self) -> bytes:
        """The values as little-endian 32-bit words (ValueError when one is out of the type's range)."""
        v = np.asarray(self.values, np.int64).ravel()
        if self.ctype == "uint32_t":
            if v.size and (v.min() < 0 or v.max() > 0xFFFFFFFF):
                raise ValueError(f"{self.field}: value out of uint32 range")
            return v.astype("<u4").tobytes()
        if v.size and (v.min() < -(1 << 31) or v.max() > (1 << 31) - 1):
            raise ValueError(f"{self.field}: value out of int32 range")
        return v.astype("<i4").tobytes()


def arch_descriptor(qm) -> dict:
    """Everything the firmware fixes at build time (hashed into the architecture hash)."""
    out = {
        "blob_format": BLOB_VERSION,
        "spec": spec.SPEC_VERSION,
        "family": qm.family,
        "layers": [[lay.kind, int(lay.in_size), int(lay.hidden)]
                   + ([int(lay.aux), 0 if lay.extra is None else int(np.asarray(lay.extra).size)]
                      if lay.kind not in ("lstm", "gru", "elman") else [])
                   for lay in qm.layers],
        "n_inputs": int(qm.pre.n_inputs),
        "in_pad": int(qm.pre.in_pad),
        "n_sections": 0 if qm.pre.sos is None else int(len(qm.pre.sos)),
        "n_classes": int(qm.n_classes),
        "classes": list(qm.classes),
        "channels": list(qm.channels),
        "units": list(qm.units),
        "lsb": [float(v) for v in qm.pre.lsb],
        "rate_mhz": int(round(qm.rate_hz * 1000)),
    }
    if qm.head_cols != qm.layers[-1].hidden:
        out["head_cols"] = int(qm.head_cols)
    return out


def arch_hash(qm) -> bytes:
    """SHA-256 of the canonical JSON of :func:`arch_descriptor` (sorted keys, no spaces)."""
    text = json.dumps(arch_descriptor(qm), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).digest()


def blob_sections(qm) -> list[Section]:
    """The weight arrays in blob order, with their place in the descriptor."""
    out = [Section("pre.norm_mult", "int32_t", qm.pre.norm_mult),
           Section("pre.norm_bias", "int32_t", qm.pre.norm_bias)]
    if qm.pre.sos is not None:
        out += [Section("pre.sos", "int32_t", qm.pre.sos), Section("pre.zi", "int32_t", qm.pre.zi)]
    for k, lay in enumerate(qm.layers):
        w, m = pack_layer(lay)
        out += [Section(f"layers[{k}].weights", "uint32_t", w), Section(f"layers[{k}].mult", "int32_t", m)]
        if lay.extra is not None:
            out.append(Section(f"layers[{k}].extra", "int32_t", np.asarray(lay.extra)))
    hw, hm = pack_head(qm)
    out += [Section("head.weights", "uint32_t", hw), Section("head.mult", "int32_t", hm)]
    return out


def params_block(qm) -> bytes:
    """The payload's 96-byte parameter block (weights hash, delay, min_run, swing, logit_frac, cell_frac)."""
    if len(qm.layers) > MAX_LAYERS:
        raise DeviceError(f"a weights blob holds at most {MAX_LAYERS} layers")
    h = qm.weights_hash().encode("ascii")
    cells = bytes([int(lay.cell_frac) & 0xFF for lay in qm.layers]).ljust(MAX_LAYERS, b"\0")
    p = h.ljust(64, b"\0")[:64] + b"\0" * 4 + struct.pack(
        "<HHbBBB", int(qm.delay), int(qm.min_run), int(qm.swing), int(qm.logit_frac), len(qm.layers), 0) + cells
    return p.ljust(PARAMS_BYTES, b"\0")


def payload_layout(qm) -> list[tuple[Section, int, int]]:
    """(section, byte offset in the payload, element count)."""
    pos, out = PARAMS_BYTES, []
    for s in blob_sections(qm):
        n = int(np.asarray(s.values).size)
        out.append((s, pos, n))
        pos += 4 * n
    return out


def build_payload(qm) -> bytes:
    """The blob payload: the parameter block, then every array of :func:`blob_sections`."""
    return params_block(qm) + b"".join(s.tobytes() for s in blob_sections(qm))


def build_header(arch: bytes, payload: bytes, version: int = BLOB_VERSION) -> bytes:
    """The 64-byte blob header over ``payload`` for architecture hash ``arch`` (with both CRC-32s)."""
    h = _HEADER.pack(BLOB_MAGIC, version, HEADER_BYTES, arch, len(payload), crc32(payload), 0, b"\0" * 8)
    return h + struct.pack("<I", crc32(h))


def build_blob(qm) -> bytes:
    """The complete blob (header + payload) of a quantized model."""
    payload = build_payload(qm)
    return build_header(arch_hash(qm), payload) + payload


@dataclass
class BlobHeader:
    """What :func:`parse_blob` reads from a blob's header (and the weights hash at the payload's start)."""

    version: int
    arch_hash: bytes
    payload_len: int
    payload_crc: int
    model_hash: str


def parse_blob(data: bytes, source: str = "blob") -> BlobHeader:
    """Check a blob's header and payload CRC; :class:`DeviceError` names what is wrong."""
    if len(data) < HEADER_BYTES:
        raise DeviceError(f"{source}: too short for a weights blob ({len(data)} bytes)")
    magic, version, hbytes, arch, plen, pcrc, _flags, _res = _HEADER.unpack_from(data, 0)
    if magic != BLOB_MAGIC:
        raise DeviceError(f"{source}: not a gaitedge weights blob (magic {magic!r})")
    if version != BLOB_VERSION or hbytes != HEADER_BYTES:
        raise DeviceError(f"{source}: blob format version {version} is not supported (this gaitedge writes "
                          f"{BLOB_VERSION})")
    (hcrc,) = struct.unpack_from("<I", data, 60)
    if hcrc != crc32(data[:60]):
        raise DeviceError(f"{source}: blob header CRC mismatch (file damaged)")
    payload = data[HEADER_BYTES:]
    if len(payload) != plen:
        raise DeviceError(f"{source}: payload is {len(payload)} bytes, the header says {plen} (truncated?)")
    if crc32(payload) != pcrc:
        raise DeviceError(f"{source}: payload CRC mismatch (file damaged)")
    model_hash = payload[:64].decode("ascii", "replace") if plen >= 64 else ""
    return BlobHeader(version, arch, plen, pcrc, model_hash)


def write_blob(qm, path: str | Path) -> Path:
    """Write the blob of ``qm`` to ``path`` (whole or not at all); returns the path."""
    path = Path(path)
    write_bytes(path, build_blob(qm))
    return path
