"""The C sources are package data: the wheel and the sdist carry all of them, and a missing
runtime is an error (never a partial export)."""

from __future__ import annotations

import shutil
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

from gaitedge import resources
from gaitedge.errors import GaitedgeError

sys.path.insert(0, str(Path(__file__).resolve().parent))
ROOT = Path(__file__).resolve().parents[1]


def _csrc_files() -> set[str]:
    base = resources.csrc_dir()
    return {f"gaitedge/csrc/{p.relative_to(base).as_posix()}" for p in base.rglob("*")
            if p.is_file() and "__pycache__" not in p.parts and p.suffix != ".pyc"}


def test_resources_are_inside_the_package():
    import gaitedge

    pkg = Path(gaitedge.__file__).resolve().parent
    for d in (resources.runtime_dir(), resources.firmware_dir(), resources.protocol_dir(), resources.host_dir(),
              resources.bench_dir()):
        assert d.resolve().is_relative_to(pkg)
    assert (resources.runtime_dir() / "include" / "gaitedge_rt.h").is_file()
    assert resources.doc_path("PROTOCOL.md").is_file()
    assert any(f.name == "ge_model.c" for f in resources.runtime_files())


@pytest.mark.skipif(not (ROOT / "pyproject.toml").is_file(), reason="not a source checkout")
def test_wheel_and_sdist_carry_every_c_source(tmp_path):
    """Build both from a copy of the tree (setuptools, no network) and list gaitedge/csrc in each."""
    src = tmp_path / "src"
    src.mkdir()
    for name in ("pyproject.toml", "MANIFEST.in", "README.md"):
        shutil.copy(ROOT / name, src / name)
    shutil.copytree(ROOT / "gaitedge", src / "gaitedge",
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info"))
    out = tmp_path / "dist"
    for cmd in ("sdist", "bdist_wheel"):
        p = subprocess.run([sys.executable, "-c", "from setuptools import setup; setup()", "-q", cmd, "-d", str(out)],
                           cwd=src, capture_output=True, text=True)
        assert p.returncode == 0, p.stderr[-2000:]
    want = _csrc_files()
    assert len(want) > 60 and "gaitedge/csrc/runtime/include/gaitedge_rt.h" in want
    (whl,) = out.glob("*.whl")
    in_wheel = {n for n in zipfile.ZipFile(whl).namelist() if n.startswith("gaitedge/csrc/")}
    assert in_wheel == want
    (sdist,) = out.glob("*.tar.gz")
    with tarfile.open(sdist) as tf:
        in_sdist = {n.split("/", 1)[1] for n in tf.getnames() if "/gaitedge/csrc/" in n}
    in_sdist = {n for n in in_sdist if (src / n).is_file()}
    assert in_sdist == want


def test_export_without_runtime_is_an_error_and_writes_nothing(tmp_path, monkeypatch):
    from gaitedge.data.spec import load_spec
    from gaitedge.export.c_export import export_c
    from gaitedge.firmware import build_firmware
    from gaitedge.quant import quantize_model
    from test_quant import make_tm

    recs = load_spec("synthetic?n=2&trials=1", other_foot=True)
    qm = quantize_model(make_tm(recs, hidden=8), recs)
    empty = tmp_path / "empty"
    empty.mkdir()
    monkeypatch.setattr(resources, "csrc_dir", lambda: empty)
    with pytest.raises(resources.MissingSourcesError, match="reinstall gaitedge"):
        export_c(qm, tmp_path / "out", measure_code=False)
    assert not (tmp_path / "out").exists()
    with pytest.raises(GaitedgeError, match="missing from this installation"):
        build_firmware(qm, tmp_path / "fw", board="host")
    assert not (tmp_path / "fw").exists()
