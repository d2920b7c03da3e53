"""Twin of ``ge_dense.c``: the dense head, int8 weights, Q0.15 input, Q(logit_frac) logits."""

from __future__ import annotations

import numpy as np

from gaitedge.quant.matvec import matvec
from gaitedge.quant.spec import mulhr, sat16


def dense_step(weight: np.ndarray, bias: np.ndarray, mult: np.ndarray, h: np.ndarray) -> np.ndarray:
    """``logits_k = sat16(mulhr(bias_k + sum_j w_kj h_j, mult_k))`` for ``h [B, H]``."""
    return sat16(mulhr(matvec(weight, bias, h), np.asarray(mult, np.int64)[None, :]))
