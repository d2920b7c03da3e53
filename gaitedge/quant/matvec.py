"""Twin of ``ge_matvec.c``: int32 accumulators ``acc = bias + W v`` (int8 W, int16 v).

The C kernel walks packed 4-row groups (see ``gaitedge.export.packing.pack_groups``)
with SMLAD on the DSP path or plain multiply-adds in portable C; integer addition
is exact and the spec bounds every sum below 2^31, so the order does not matter.
"""

from __future__ import annotations

import numpy as np


def matvec(weight: np.ndarray, bias: np.ndarray, v: np.ndarray) -> np.ndarray:
    """``bias + v @ weight.T`` for a batch ``v [B, cols]``; returns int64 ``[B, rows]``.

    Computed in float64, which is exact here (|terms| < 2^22, |sums| < 2^31 < 2^53).
    """
    acc = np.asarray(v, np.float64) @ np.asarray(weight, np.float64).T
    return acc.astype(np.int64) + np.asarray(bias, np.int64)[None, :]
