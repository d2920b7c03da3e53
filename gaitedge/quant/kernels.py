"""Registry of the integer layer kernels: one entry per C kernel file.

Each :class:`Kernel` ties a layer kind (``QLayer.family``) to its ``GE_LAYER_*``
code in ``gaitedge_rt.h``, its integer step (the exact twin of ``ge_<kind>.c``),
the order in which its C file walks the packed weight groups and multipliers,
and the int32 scratch it needs (``ge_layer_scratch()`` in ``ge_layers.c``).
:class:`gaitedge.quant.model.Runner` and the C exporter dispatch through it.

A new kind registers itself from its own module (imported at the end of this
file) and adds the matching cases to ``gaitedge/csrc/runtime/src/ge_layers.c``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from gaitedge.errors import ModelError
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


KERNELS: dict[str, Kernel] = {}


def register_kernel(k: Kernel) -> Kernel:
    """Add a kernel (its code must be unique)."""
    for other in KERNELS.values():
        if other.code == k.code and other.kind != k.kind:
            raise ValueError(f"kernel code {k.code} used by both {other.kind} and {k.kind}")
    KERNELS[k.kind] = k
    return k


def kernel_for(kind: str) -> Kernel:
    """The kernel of a layer kind (ModelError naming the kinds that exist)."""
    if kind not in KERNELS:
        raise ModelError(f"layer kind {kind!r} has no C kernel; kernels: {', '.join(sorted(KERNELS))}")
    return KERNELS[kind]


# ---- the classic recurrent kinds --------------------------------------------------------


def _per_unit(gates: int) -> Callable[[object], list[int]]:
    return lambda lay: [g * lay.hidden + j for j in range(lay.hidden) for g in range(gates)]


def _lstm_groups(lay) -> list[tuple[list[int], int, int]]:
    hp, ncols = lay.hidden, lay.hidden + lay.in_size
    return [([j, hp + j, 2 * hp + j, 3 * hp + j], 0, ncols) for j in range(hp)]


def _elman_groups(lay) -> list[tuple[list[int], int, int]]:
    ncols = lay.hidden + lay.in_size
    return [(list(range(j, j + 4)), 0, ncols) for j in range(0, lay.hidden, 4)]


def _gru_groups(lay) -> list[tuple[list[int], int, int]]:
    hp, ncols = lay.hidden, lay.hidden + lay.in_size
    groups = []
    for j0 in range(0, hp, spec.BLOCK):
        nb = min(spec.BLOCK, hp - j0)
        for j in range(j0, j0 + nb, 2):
            groups.append(([j, hp + j, j + 1, hp + j + 1], 0, ncols))
        for j in range(j0, j0 + nb, 4):
            groups.append(([2 * hp + j + i for i in range(4)], 0, hp))
        for j in range(j0, j0 + nb, 4):
            groups.append(([3 * hp + j + i for i in range(4)], hp, lay.in_size))
    return groups


def _register_classic() -> None:
    from gaitedge.quant.elman import elman_step
    from gaitedge.quant.gru import gru_step
    from gaitedge.quant.lstm import lstm_step

    register_kernel(Kernel("lstm", 1, "GE_LAYER_LSTM", lambda lay, v, aux: lstm_step(lay, v, aux),
                           _lstm_groups, _per_unit(4)))
    register_kernel(Kernel("gru", 2, "GE_LAYER_GRU", lambda lay, v, aux: (gru_step(lay, v), aux),
                           _gru_groups, _per_unit(4)))
    register_kernel(Kernel("elman", 3, "GE_LAYER_ELMAN", lambda lay, v, aux: (elman_step(lay, v), aux),
                           _elman_groups, _per_unit(1)))


_register_classic()
# further kinds register themselves here (one import per kernel module):
from gaitedge.quant import reservoir as _reservoir  # noqa: E402,F401
from gaitedge.quant import jordan as _jordan  # noqa: E402,F401
from gaitedge.quant import peephole as _peephole  # noqa: E402,F401
from gaitedge.quant import tcn as _tcn  # noqa: E402,F401
from gaitedge.quant import ctrnn as _ctrnn, gactrnn as _gactrnn  # noqa: E402,F401
from gaitedge.quant import pcrnn as _pcrnn  # noqa: E402,F401
