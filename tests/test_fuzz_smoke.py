"""A short coverage-guided run of every Python fuzz target through ``benchmarks/fuzz.py``.

Each target fuzzes for a few seconds from its seed corpus and must report no
crash.  Skipped where atheris is not installed (``pip install atheris``).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
TARGETS = sorted(p.stem[len("fuzz_"):] for p in (ROOT / "tests" / "fuzz").glob("fuzz_*.py"))

try:
    import atheris  # noqa: F401

    HAVE_ATHERIS = True
except ImportError:
    HAVE_ATHERIS = False

pytestmark = pytest.mark.skipif(not HAVE_ATHERIS, reason="atheris is not installed (pip install atheris)")


@pytest.mark.parametrize("name", TARGETS)
def test_fuzz_target_finds_no_crash_in_a_short_run(tmp_path, name):
    out = tmp_path / "results.json"
    p = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "fuzz.py"), "--seconds", "3", "--only", name,
         "--json", str(out), "--out", str(tmp_path / "fuzz")],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
    )
    (res,) = json.loads(out.read_text())
    assert res["name"] == name
    assert res["crashes"] == 0 and not res["error"], p.stdout + p.stderr
    assert res["executions"] > 0 and res["cov"] > 0, p.stdout + p.stderr
    assert p.returncode == 0, p.stdout + p.stderr
