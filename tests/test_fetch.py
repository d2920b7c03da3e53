"""`gaitedge data fetch ipol` against local file:// archives (tests never reach the internet)."""

import hashlib
import subprocess
import sys
import zipfile

import pytest

from gaitedge.data import load_ipol
from gaitedge.data.fetch import fetch_ipol, verify_cache
from gaitedge.errors import DataError
from tests.conftest import write_ipol_trial


@pytest.fixture()
def archive(tmp_path):
    src = tmp_path / "src" / "GaitData"
    write_ipol_trial(src, 1, 1, seed=1)
    write_ipol_trial(src, 2, 1, seed=2)
    z = tmp_path / "GaitData.zip"
    with zipfile.ZipFile(z, "w", zipfile.ZIP_DEFLATED) as zf:
        for p in sorted(src.iterdir()):
            zf.write(p, f"GaitData/{p.name}")
    return z


def test_fetch_verify_and_cache(archive, tmp_path):
    dest = tmp_path / "cache" / "ipol"
    digest = hashlib.sha256(archive.read_bytes()).hexdigest()
    out = fetch_ipol(archive.as_uri(), dest=dest, sha256=digest)
    assert out == dest and (dest / "GaitData" / "1-1.json").is_file()
    recs = load_ipol(dest, frame="sensor")  # crafted noise: no gait to find a mounting in
    assert {r.subject for r in recs} == {"1", "2"}
    assert verify_cache(dest)["sha256"] == digest
    # cached: no download needed even if the archive is gone
    archive.unlink()
    assert fetch_ipol(archive.as_uri(), dest=dest) == dest
    # tampering with the cache is detected
    (dest / "GaitData" / "2-1_lf.txt").write_text("x")
    with pytest.raises(DataError, match="altered"):
        fetch_ipol(archive.as_uri(), dest=dest)


def test_wrong_hash_and_corrupt_archive_keep_nothing(archive, tmp_path):
    dest = tmp_path / "c" / "ipol"
    with pytest.raises(DataError, match="does not match"):
        fetch_ipol(archive.as_uri(), dest=dest, sha256="0" * 64)
    assert not dest.exists()
    data = bytearray(archive.read_bytes())
    data[len(data) // 3] ^= 0xFF  # flip a byte inside compressed member data
    bad = tmp_path / "bad.zip"
    bad.write_bytes(bytes(data))
    with pytest.raises(DataError, match="corrupt|not a zip"):
        fetch_ipol(bad.as_uri(), dest=dest)
    (tmp_path / "trunc.zip").write_bytes(archive.read_bytes()[:500])
    with pytest.raises(DataError, match="not a zip"):
        fetch_ipol((tmp_path / "trunc.zip").as_uri(), dest=dest)
    assert not dest.exists()
    assert [p.name for p in dest.parent.iterdir()] == []  # no temp leftovers


def test_archive_without_the_dataset(tmp_path):
    z = tmp_path / "other.zip"
    with zipfile.ZipFile(z, "w") as zf:
        zf.writestr("readme.txt", "hello")
    with pytest.raises(DataError, match="no IPOL trial files"):
        fetch_ipol(z.as_uri(), dest=tmp_path / "d")


def test_cli_fetch(archive, tmp_path):
    dest = tmp_path / "cli"
    r = subprocess.run([sys.executable, "-m", "gaitedge", "data", "fetch", "ipol", "--url", archive.as_uri(),
                        "--dest", str(dest)], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert "ready" in r.stdout and (dest / "manifest.json").is_file()
