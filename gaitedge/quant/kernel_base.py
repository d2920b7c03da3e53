"""What a layer kernel is: the :class:`Kernel` record and the weight-group orders it shares.

Each kernel module (``gaitedge.quant.<kind>``, the twin of ``ge_<kind>.c``) defines
one ``KERNEL`` of this type; :mod:`gaitedge.quant.kernels` lists them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from gaitedge.quant import spec

#: ``step(layer, seg, aux) -> (h, aux)``: ``seg [B, hidden + in_size]`` is the layer's
#: h followed by its input (int64 holding int16), ``aux [B, layer.aux]`` or None.
StepFn = Callable[[object, np.ndarray, "np.ndarray | None"], tuple[np.ndarray, "np.ndarray | None"]]


@dataclass(frozen=True)
class Kernel:
    """One layer kind of the streaming stack."""

    kind: str
    code: int
    c_name: str
    step: StepFn
    #: ``groups(layer) -> [(row indices of a 4-row group, first column, ncols), ...]`` in C order
    groups: Callable[[object], list[tuple[list[int], int, int]]]
    #: ``mult_order(layer) -> row indices`` of the multiplier array in C order
    mult_order: Callable[[object], list[int]]
    #: ``scratch(layer) -> int32 words`` (mirror of ``ge_layer_scratch``)
    scratch: Callable[[object], int] = lambda lay: 4 * min(lay.hidden, spec.BLOCK)


def per_unit(gates: int) -> Callable[[object], list[int]]:
    """Multiplier order of ``gates`` gate blocks interleaved unit by unit (``g * hidden + j``)."""
    return lambda lay: [g * lay.hidden + j for j in range(lay.hidden) for g in range(gates)]


def lstm_groups(lay) -> list[tuple[list[int], int, int]]:
    """One group per unit: its four gate rows (i, f, g, o) over ``[h; input]``."""
    hp, ncols = lay.hidden, lay.hidden + lay.in_size
    return [([j, hp + j, 2 * hp + j, 3 * hp + j], 0, ncols) for j in range(hp)]


def unit_quads(lay) -> list[tuple[list[int], int, int]]:
    """One group per four consecutive units (one row each) over ``[h; input]``."""
    ncols = lay.hidden + lay.in_size
    return [(list(range(j, j + 4)), 0, ncols) for j in range(0, lay.hidden, 4)]
