"""Helpers shared by the benchmark scripts: machine facts and BENCHMARKS.md sections."""

from __future__ import annotations

import os
import platform
import re
import subprocess
from pathlib import Path


def cpu_model() -> str:
    """The CPU's model name (from /proc/cpuinfo where available)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown CPU"


def tool_version(cmd: list[str]) -> str:
    """First line a tool prints for its version command, or ``n/a``."""
    try:
        return subprocess.run(cmd, capture_output=True, text=True).stdout.splitlines()[0].strip()
    except (OSError, IndexError):
        return "n/a"


def load_avg() -> str:
    """The 1-minute load average, formatted, or ``n/a``."""
    try:
        return f"{os.getloadavg()[0]:.1f}"
    except OSError:
        return "n/a"


def write_section(path: str | Path, heading: str, body: str) -> None:
    """Replace (or append) the ``heading`` section of a Markdown file, keeping the rest.

    ``heading`` is the full heading line (``## ...``); ``body`` may start with it.
    The file is rewritten atomically.
    """
    path = Path(path)
    body = body.strip()
    if body.startswith(heading):
        body = body[len(heading):].strip()
    block = f"{heading}\n\n{body}\n"
    text = path.read_text() if path.exists() else "# Benchmarks\n"
    pattern = re.compile(rf"^{re.escape(heading)}\n.*?(?=^## |\Z)", re.S | re.M)
    if pattern.search(text):
        text = pattern.sub(lambda _: block + "\n", text, count=1).rstrip() + "\n"
    else:
        text = text.rstrip() + "\n\n" + block
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(text)
    tmp.replace(path)
