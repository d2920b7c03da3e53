"""Weight packing of the C runtime (mirror of ``ge_matvec.c``; QUANTIZATION.md "Weight packing").

A layer's int8 rows are stored as groups of 4 rows: the 4 int32 biases, then the
weights interleaved for two 16-bit SMLAD lanes.  Kernels list their groups in the
order their C file walks them (:func:`gaitedge.quant.kernels.Kernel.groups`).
"""

from __future__ import annotations

import numpy as np


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
