"""Twin of ``ge_argmax.c``: index of the largest logit, lowest index on ties."""

from __future__ import annotations

import numpy as np


def argmax(logits: np.ndarray) -> np.ndarray:
    """``[B, K] -> [B]`` (numpy's argmax also returns the first maximum)."""
    return np.argmax(np.asarray(logits), axis=-1).astype(np.int64)
