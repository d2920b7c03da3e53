"""Runtimes that execute exported models outside torch.

:class:`OnnxGaitClassifier` streams raw samples through a gaitedge
``model_step.onnx`` on ONNX Runtime (filter, normalization, model, debounce,
events).  Needs onnxruntime, numpy and scipy; not torch.
"""

from gaitedge.runtime.onnx_runtime import (
    FlushResult,
    GaitEvent,
    OnnxGaitClassifier,
    OnnxModelInfo,
    PushResult,
    parse_metadata,
)
from gaitedge.runtime.postprocess import CausalFilter, Debouncer

__all__ = ["CausalFilter", "Debouncer", "FlushResult", "GaitEvent", "OnnxGaitClassifier", "OnnxModelInfo",
           "PushResult", "parse_metadata"]
