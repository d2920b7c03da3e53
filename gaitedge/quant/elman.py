"""Twin of ``ge_elman.c``: ``h' = tanh_lut(usat16(mulhr(acc, M)))``."""

from __future__ import annotations

import numpy as np

from gaitedge.quant.kernel_base import Kernel, per_unit, unit_quads
from gaitedge.quant.matvec import matvec
from gaitedge.quant.spec import mulhr, tanh_q, usat16


def elman_step(layer, v: np.ndarray) -> np.ndarray:
    """``v [B, Hp + in]`` (h then input) -> new ``h [B, Hp]``."""
    acc = matvec(layer.weight, layer.bias, v)
    u = usat16(mulhr(acc, layer.mult[None, :]))
    return tanh_q(u)


KERNEL = Kernel("elman", 3, "GE_LAYER_ELMAN", lambda lay, v, aux: (elman_step(lay, v), aux), unit_quads,
                per_unit(1))
