"""Firmware images for IMU boards: the C runtime + an exported model + the wire protocol.

:func:`build_firmware` compiles ``gaitedge/csrc/firmware`` for a board
(``mps2-an386`` under QEMU, or ``host``) with a model compiled in; the weights can
later be replaced over serial (``gaitedge.device.DeviceClient.flash``).  The model
comes from :func:`gaitedge.quant.workflow.load_quant_model`.
"""

from gaitedge.firmware.build import BOARDS, BuildError, BuildResult, build_firmware, toolchain_missing

__all__ = ["BOARDS", "BuildError", "BuildResult", "build_firmware", "toolchain_missing"]
