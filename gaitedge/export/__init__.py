"""Export of trained models for runtimes outside torch.

Depends on the models and checkpoints only (nothing about devices or links).
:func:`export_onnx` writes the ONNX sequence and step graphs of a trained model.
"""

from gaitedge.export.onnx_export import (
    FORMAT,
    FORMAT_VERSION,
    SEQUENCE_FILE,
    STEP_FILE,
    OnnxPaths,
    check_graph,
    export_onnx,
    onnx_metadata,
)
from gaitedge.export.c_common import CExport  # noqa: F401  (C export, fixed-point runtime)
from gaitedge.export.c_export import export_c  # noqa: F401

__all__ = [
    "FORMAT",
    "FORMAT_VERSION",
    "SEQUENCE_FILE",
    "STEP_FILE",
    "OnnxPaths",
    "check_graph",
    "export_onnx",
    "onnx_metadata",
]
