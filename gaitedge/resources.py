"""Where the C sources shipped with gaitedge are: the one place that locates package data.

The C runtime, the firmware (application, board files), the wire-protocol sources,
the host test harnesses and the benchmark firmware are package data under
``gaitedge/csrc`` and are found here with :mod:`importlib.resources`, in a source
checkout and in an installed wheel alike::

    csrc/runtime/{include,src}    the fixed-point inference runtime (gaitedge_rt.h)
    csrc/firmware/                the device application, boards/<board>/
    csrc/protocol/                ge_proto.[ch], vectors.json
    csrc/host/                    host harnesses of the tests
    csrc/bench/                   Cortex-M benchmark firmware, TCG icount plugin
    csrc/*.md                     PROTOCOL.md, QUANTIZATION.md, PORTING.md

Every function returns a real filesystem path (compilers need one); a folder that
is missing from the installation raises :class:`MissingSourcesError`.
"""

from __future__ import annotations

import atexit
import contextlib
import functools
from importlib import resources
from pathlib import Path

from gaitedge.errors import GaitedgeError

__all__ = ["MissingSourcesError", "bench_dir", "csrc_dir", "doc_path", "firmware_dir", "host_dir", "protocol_dir",
           "runtime_dir", "runtime_files"]

#: a file each folder must hold, proving the installation is complete.
_MARKERS = {
    "runtime": "include/gaitedge_rt.h",
    "firmware": "fw_app.c",
    "protocol": "ge_proto.c",
    "host": "ge_harness.c",
    "bench": "bench_main.c",
}


class MissingSourcesError(GaitedgeError):
    """The C sources that ship with gaitedge are not in this installation."""


@functools.lru_cache(maxsize=1)
def csrc_dir() -> Path:
    """The folder holding gaitedge's C sources (``gaitedge/csrc``) as a filesystem path."""
    root = resources.files("gaitedge") / "csrc"
    if isinstance(root, Path):
        return root
    # an installation that is not a plain folder (e.g. a zip): extract once for this process
    stack = contextlib.ExitStack()
    atexit.register(stack.close)
    return Path(stack.enter_context(resources.as_file(root)))


def _part(name: str) -> Path:
    d = csrc_dir() / name
    if not (d / _MARKERS[name]).is_file():
        raise MissingSourcesError(f"{d}: the gaitedge C {name} sources are missing from this installation "
                                  f"(reinstall gaitedge)")
    return d


def runtime_dir() -> Path:
    """The C runtime: ``include/`` (``gaitedge_rt.h``, ``ge_*.h``) and ``src/`` (``ge_*.c``)."""
    return _part("runtime")


def firmware_dir() -> Path:
    """The device firmware: ``fw_*.c/.h``, ``board.h`` and ``boards/<board>/``."""
    return _part("firmware")


def protocol_dir() -> Path:
    """The wire protocol's C framing (``ge_proto.c/.h``) and its test vectors (``vectors.json``)."""
    return _part("protocol")


def host_dir() -> Path:
    """Host harnesses that run an exported model from stdin (used by the tests)."""
    return _part("host")


def bench_dir() -> Path:
    """Benchmark firmware for QEMU ``mps2-an386`` (mains, startup, linker script, icount plugin)."""
    return _part("bench")


def doc_path(name: str) -> Path:
    """One of the C-side documents: ``PROTOCOL.md``, ``QUANTIZATION.md`` or ``PORTING.md``."""
    p = csrc_dir() / name
    if not p.is_file():
        raise MissingSourcesError(f"{p}: missing from this installation (reinstall gaitedge)")
    return p


def runtime_files() -> list[Path]:
    """Every runtime header and source: ``include/*.h`` then ``src/*.c``, sorted by name."""
    rt = runtime_dir()
    files = sorted((rt / "include").glob("*.h")) + sorted((rt / "src").glob("*.c"))
    if not any(f.suffix == ".c" for f in files):
        raise MissingSourcesError(f"{rt / 'src'}: no C runtime sources in this installation (reinstall gaitedge)")
    return files
