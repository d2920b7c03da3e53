"""Fixed-point quantization and the integer reference of the C runtime.

One module per C kernel, each the exact twin of its C file in
``gaitedge/csrc/runtime/src`` (``ge_<name>.c`` <-> ``gaitedge.quant.<name>``):
the shared ``matvec``, ``dense``, ``argmax``, ``events``, ``preproc``; the layer
kinds ``lstm``, ``gru``, ``elman``, ``ctrnn``, ``gactrnn``, ``pcrnn``, ``jordan``,
``peephole``, ``tcn``, ``reservoir`` (listed in ``kernels``); ``model`` (the
streaming step, ``ge_model.c``), ``window`` (``ge_window.c``), and the associative
memories ``hopfield`` and ``bam``.  ``spec`` holds the constants and the primitive
operations (``ge_math.c``, ``ge_lut.c``).  ``quantizer`` turns a float checkpoint
into a :class:`QuantModel` through the family quantizers in ``families``; ``qat``
fine-tunes LSTM / GRU / Elman with fake quantization.  The arithmetic is specified
in ``gaitedge/csrc/QUANTIZATION.md``.
"""

from gaitedge.quant.model import QLayer, QPreproc, QuantModel, Runner, StepOutput
from gaitedge.quant.quantizer import (
    DEFAULT_LSB,
    calibration_recordings,
    check_supported,
    quantize_model,
    saturation_summary,
)

__all__ = [
    "DEFAULT_LSB",
    "QLayer",
    "QPreproc",
    "QuantModel",
    "Runner",
    "StepOutput",
    "calibration_recordings",
    "check_supported",
    "quantize_model",
    "saturation_summary",
]
