"""Live streaming from IMUs: sources, inference backends, the pipeline, its view, a virtual board.

* :mod:`~gaitedge.stream.sources` — byte transport (any pyserial URL), decoders
  (text lines, binary SAMPLES frames), column maps, recording replay.
* :mod:`~gaitedge.stream.backends` — ONNX Runtime and torch step backends, and
  a gaitedge board over its serial link.
* :mod:`~gaitedge.stream.session` — reader -> inference -> writer threads with
  bounded queues, gap detection, reconnects, statistics.
* :mod:`~gaitedge.stream.view` — terminal view, event log, live plot, summary.
* :mod:`~gaitedge.stream.imusim` — a virtual IMU board on a pty or TCP port.
* :mod:`~gaitedge.stream.lsl` — Lab Streaming Layer: IMU streams in, gait phase
  and event markers out, a recording served as an LSL stream (needs pylsl,
  imported only when used).

This package may import the runtime, checkpoint and data packages; nothing in
export or model code imports it.
"""

from gaitedge.stream.backends import Backend, Decisions, DeviceBackend, OnnxBackend, TorchBackend, load_backend
from gaitedge.stream.imusim import ImuSim, SimStats
from gaitedge.stream.session import Lane, Record, Session, Summary
from gaitedge.stream.sources import (
    ColumnMap,
    Decoder,
    LineParser,
    PortSource,
    ReplaySource,
    Sample,
    SamplesFrameDecoder,
    Source,
    SourceError,
    SourceLost,
    TextLineDecoder,
    load_replay,
)
from gaitedge.stream.view import EventLog, TerminalView, format_summary, read_log

__all__ = [
    "Backend", "ColumnMap", "Decisions", "Decoder", "DeviceBackend", "EventLog", "ImuSim", "Lane", "LineParser",
    "OnnxBackend", "PortSource", "Record", "ReplaySource", "Sample", "SamplesFrameDecoder",
    "Session", "SimStats", "Source", "SourceError", "SourceLost", "Summary", "TerminalView", "TextLineDecoder",
    "TorchBackend", "format_summary", "load_backend", "load_replay", "read_log",
]
