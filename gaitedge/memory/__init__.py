"""Associative memories: Hopfield network and bidirectional associative memory (BAM),
and a gait-template memory built on them.

* :mod:`gaitedge.memory.hopfield` — :class:`HopfieldNetwork` (Hebbian storage,
  synchronous / asynchronous updates, energy, run to a fixed point or cycle).
* :mod:`gaitedge.memory.bam` — :class:`BAM` (Hebbian pairs, alternating recall).
* :mod:`gaitedge.memory.templates` — :class:`GaitTemplateMemory`: strides cut at heel
  strikes, resampled, binarized and stored as templates; a probe stride recalls one.
* :mod:`gaitedge.memory.capacity` — recall rate against load m/n, and its plot.

The int8 fixed-point versions for microcontrollers are ``gaitedge.quant.hopfield`` /
``gaitedge.quant.bam`` and ``gaitedge/csrc/runtime/src/ge_hopfield.c`` /
``ge_bam.c``.  This package may use ``gaitedge.data``; nothing in ``gaitedge.data``
or ``gaitedge.models`` imports it.
"""

from gaitedge.memory.bam import BAM, BAMRecall
from gaitedge.memory.capacity import CapacityResult, capacity_experiment, plot_capacity
from gaitedge.memory.hopfield import HopfieldNetwork, Recall, as_bipolar, hebbian, sign_keep
from gaitedge.memory.templates import (
    GaitTemplateMemory,
    MemoryScore,
    Stride,
    StrideEncoder,
    TemplateRecall,
    corrupt,
    extract_strides,
    holdout_last,
    resample_stride,
    segment_strides,
)

__all__ = [
    "BAM",
    "BAMRecall",
    "CapacityResult",
    "GaitTemplateMemory",
    "HopfieldNetwork",
    "MemoryScore",
    "Recall",
    "Stride",
    "StrideEncoder",
    "TemplateRecall",
    "as_bipolar",
    "capacity_experiment",
    "corrupt",
    "extract_strides",
    "hebbian",
    "holdout_last",
    "plot_capacity",
    "resample_stride",
    "segment_strides",
    "sign_keep",
]
