"""The run folder: the names of the files a run writes, and how they are written.

A run folder is what ``gaitedge train`` creates and every later command reads
(``quantize``, ``export``, ``evaluate``, ``stream``, ``device flash``)::

    runs/NAME/
      model.pt            MODEL_FILE       checkpoint (weights, config, classes, frame)
      config.toml         CONFIG_FILE      the resolved configuration
      metrics.json        METRICS_FILE     final metrics (validation and test)
      train_state.pt      STATE_FILE       resume state, removed when a run completes
      curves.png          CURVES_FILE      loss / score curves
      confusion.png       CONFUSION_FILE   confusion matrix
      quant.npz           QUANT_FILE       fixed-point model (``gaitedge quantize``)
      quant.json          QUANT_REPORT_FILE  its report
      model.onnx          ONNX_SEQUENCE_FILE sequence graph (``gaitedge export onnx``)
      model_step.onnx     ONNX_STEP_FILE   one-step graph with explicit state

Every file is written whole or not at all: through a temporary file in the same
folder, then :func:`os.replace` (atomic on POSIX and Windows), so a crash or a
full disk never leaves a half-written file where a reader expects a finished one.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

import numpy as np

MODEL_FILE = "model.pt"
CONFIG_FILE = "config.toml"
METRICS_FILE = "metrics.json"
STATE_FILE = "train_state.pt"
CURVES_FILE = "curves.png"
CONFUSION_FILE = "confusion.png"
QUANT_FILE = "quant.npz"
QUANT_REPORT_FILE = "quant.json"
ONNX_SEQUENCE_FILE = "model.onnx"
ONNX_STEP_FILE = "model_step.onnx"
CV_FILE = "cv.json"
SWEEP_FILE = "sweep.json"

#: what ``gaitedge train`` leaves in a finished run folder (besides the plots when matplotlib is present)
RUN_FILES = (MODEL_FILE, CONFIG_FILE, METRICS_FILE)


def run_folder(path: str | Path) -> Path:
    """The run folder named by ``path``: the folder itself, or the folder of a file in it.

    ``runs/x`` and ``runs/x/model.pt`` (or ``runs/x/quant.npz``) both name ``runs/x``.
    """
    p = Path(path)
    return p if p.is_dir() else p.parent


def file_in_run(path: str | Path, name: str) -> Path:
    """``path`` itself when it is a file, else the file ``name`` in the run folder ``path``."""
    p = Path(path)
    return p / name if p.is_dir() else p


@contextmanager
def atomic_path(path: str | Path, suffix: str = "") -> Iterator[Path]:
    """A temporary path beside ``path`` to write to; it replaces ``path`` when the block ends.

    When the block raises, the temporary file is removed and ``path`` is left as it
    was.  ``suffix`` is appended to the temporary name for writers that choose their
    format by extension (``np.savez`` wants ``.npz``).
    """
    path = Path(path)
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp" + suffix, dir=path.parent)
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


@contextmanager
def atomic_open(path: str | Path, mode: str = "w", encoding: str | None = "utf-8") -> Iterator[IO[Any]]:
    """Open a temporary file beside ``path`` for writing; it replaces ``path`` when the block ends."""
    with atomic_path(path) as tmp:
        with open(tmp, mode, encoding=None if "b" in mode else encoding) as f:
            yield f


def write_text(path: str | Path, text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    with atomic_open(path) as f:
        f.write(text)


def write_bytes(path: str | Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically."""
    with atomic_open(path, "wb") as f:
        f.write(data)


def json_default(o: Any) -> Any:
    """``json.dumps`` ``default=`` hook for numpy scalars and arrays."""
    if isinstance(o, np.integer):
        return int(o)
    if isinstance(o, np.floating):
        return float(o)
    if isinstance(o, np.bool_):
        return bool(o)
    if isinstance(o, np.ndarray):
        return o.tolist()
    raise TypeError(f"{type(o).__name__} is not JSON serializable")


def to_plain(obj: Any) -> Any:
    """A copy of ``obj`` made of plain Python values only (numpy scalars and arrays converted), as JSON keeps it."""
    return json.loads(json.dumps(obj, default=json_default, allow_nan=True))


def to_json(obj: Any, indent: int | None = 1) -> str:
    """``obj`` as JSON text (numpy values converted; NaN and infinity kept as JSON extensions)."""
    return json.dumps(obj, indent=indent, default=json_default, allow_nan=True)


def write_json(path: str | Path, obj: Any, indent: int | None = 1) -> None:
    """Write ``obj`` as JSON to ``path`` atomically (see :func:`to_json`)."""
    write_text(path, to_json(obj, indent) + ("\n" if indent is not None else ""))

