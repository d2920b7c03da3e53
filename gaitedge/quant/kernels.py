"""Table of the integer layer kernels: one entry per C kernel file.

Each :class:`~gaitedge.quant.kernel_base.Kernel` ties a layer kind (``QLayer.kind``)
to its ``GE_LAYER_*`` code in ``gaitedge_rt.h``, its integer step (the exact twin of
``ge_<kind>.c``), the order in which its C file walks the packed weight groups and
multipliers, and the int32 scratch it needs (``ge_layer_scratch()`` in ``ge_layers.c``).
:class:`gaitedge.quant.model.Runner` and the C exporter dispatch through it.

A new kind defines ``KERNEL`` in its own module, gets one entry in ``_KERNEL_LIST``
below, and adds the matching cases to ``gaitedge/csrc/runtime/src/ge_layers.c``.
"""

from __future__ import annotations

from gaitedge.errors import ModelError
from gaitedge.quant import ctrnn, elman, gactrnn, gru, jordan, lstm, pcrnn, peephole, reservoir, tcn
from gaitedge.quant.kernel_base import Kernel, StepFn

__all__ = ["KERNELS", "Kernel", "StepFn", "kernel_for"]

_KERNEL_LIST: tuple[Kernel, ...] = (
    lstm.KERNEL,
    gru.KERNEL,
    elman.KERNEL,
    reservoir.KERNEL,
    jordan.KERNEL,
    peephole.KERNEL,
    tcn.KERNEL,
    ctrnn.KERNEL,
    gactrnn.KERNEL,
    pcrnn.KERNEL,
)


def _table(kernels: tuple[Kernel, ...]) -> dict[str, Kernel]:
    """The kernels by kind (ValueError when two kinds share a ``GE_LAYER_*`` code or a name)."""
    table: dict[str, Kernel] = {}
    codes: dict[int, str] = {}
    for k in kernels:
        if k.kind in table:
            raise ValueError(f"kernel kind {k.kind} listed twice")
        if k.code in codes:
            raise ValueError(f"kernel code {k.code} used by both {codes[k.code]} and {k.kind}")
        table[k.kind] = k
        codes[k.code] = k.kind
    return table


#: layer kind -> kernel
KERNELS: dict[str, Kernel] = _table(_KERNEL_LIST)


def kernel_for(kind: str) -> Kernel:
    """The kernel of a layer kind (ModelError naming the kinds that exist)."""
    if kind not in KERNELS:
        raise ModelError(f"layer kind {kind!r} has no C kernel; kernels: {', '.join(sorted(KERNELS))}")
    return KERNELS[kind]
