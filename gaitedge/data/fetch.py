"""Download the public IPOL gait archive into a cache, with an integrity check.

The archive is streamed to a temporary file in the cache folder, its SHA-256 is
computed (and compared with ``sha256`` when given), every zip member's CRC is
checked, the expected layout is checked (trial JSON files each with their three
IMU files), and only then is it unpacked and moved into place in one rename.  A
``manifest.json`` records the URL, the archive's SHA-256 and every file's size,
so a later call can verify the cache without downloading again.  An interrupted
or corrupt download never leaves a half-written dataset behind.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import tempfile
import urllib.error
import urllib.request
import zipfile
import zlib
from pathlib import Path
from typing import Callable

from gaitedge.errors import DataError

#: Public archive of the IPOL healthy-gait dataset (article 497); ``--url`` overrides it.
IPOL_URL = "https://www.ipol.im/pub/art/2023/497/GaitData.zip"
_TRIAL_RE = re.compile(r"(?:^|/)(\d+-\d+)\.json$")


def cache_dir() -> Path:
    """The download cache: ``$GAITEDGE_CACHE`` or ``~/.cache/gaitedge``."""
    env = os.environ.get("GAITEDGE_CACHE")
    return Path(env) if env else Path.home() / ".cache" / "gaitedge"


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _check_layout(zf: zipfile.ZipFile, url: str) -> str:
    names = zf.namelist()
    trials = {m.group(1): n for n in names if (m := _TRIAL_RE.search(n))}
    if not trials:
        raise DataError(f"{url}: archive holds no IPOL trial files (S-T.json)")
    nameset = set(names)
    for stem, jpath in trials.items():
        prefix = jpath[: -len(f"{stem}.json")]
        for code in ("lf", "rf", "lb"):
            if f"{prefix}{stem}_{code}.txt" not in nameset:
                raise DataError(f"{url}: archive lacks {prefix}{stem}_{code}.txt")
    bad = zf.testzip()
    if bad is not None:
        raise DataError(f"{url}: archive member {bad} is corrupt (CRC mismatch)")
    first = next(iter(trials.values()))
    return first[: first.rfind("/") + 1] if "/" in first else ""


def verify_cache(dest: Path) -> dict:
    """Check a cached dataset against its manifest; return the manifest."""
    man_path = dest / "manifest.json"
    if not man_path.is_file():
        raise DataError(f"{dest}: no manifest.json; fetch again with --force")
    manifest = json.loads(man_path.read_text())
    for rel, size in manifest["files"].items():
        p = dest / rel
        if not p.is_file() or p.stat().st_size != size:
            raise DataError(f"{dest}: cached file {rel} is missing or altered; fetch again with --force")
    return manifest


def fetch_ipol(
    url: str = IPOL_URL,
    dest: Path | None = None,
    sha256: str | None = None,
    force: bool = False,
    progress: Callable[[int, int | None], None] | None = None,
    timeout_s: float = 60.0,
) -> Path:
    """Download, verify and unpack the IPOL archive; return the dataset folder.

    Args:
        url: archive URL (``https://`` or ``file://``).
        dest: target folder; default ``cache_dir()/ipol``.
        sha256: expected archive SHA-256 (hex); mismatch -> DataError, nothing kept.
        force: download again even if a verified copy is cached.
        progress: called with (bytes so far, total bytes or None).
        timeout_s: network timeout in seconds.
    """
    dest = Path(dest) if dest is not None else cache_dir() / "ipol"
    if dest.exists() and not force:
        manifest = verify_cache(dest)
        if sha256 and manifest["sha256"] != sha256.lower():
            raise DataError(f"{dest}: cached archive SHA-256 {manifest['sha256']} differs from {sha256}; use --force")
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=dest.parent, prefix=".fetch-") as tmp:
        tmp_path = Path(tmp)
        archive = tmp_path / "archive.zip"
        try:
            with urllib.request.urlopen(url, timeout=timeout_s) as resp, archive.open("wb") as out:
                total = resp.headers.get("Content-Length")
                total_n = int(total) if total and total.isdigit() else None
                done = 0
                while block := resp.read(1 << 16):
                    out.write(block)
                    done += len(block)
                    if progress:
                        progress(done, total_n)
        except (urllib.error.URLError, OSError, ValueError) as exc:
            raise DataError(f"{url}: download failed ({getattr(exc, 'reason', exc)})") from None
        digest = _sha256(archive)
        if sha256 and digest != sha256.lower():
            raise DataError(f"{url}: SHA-256 {digest} does not match the expected {sha256}; nothing was kept")
        try:
            with zipfile.ZipFile(archive) as zf:
                prefix = _check_layout(zf, url)
                unpack = tmp_path / "unpacked"
                zf.extractall(unpack)
        except zipfile.BadZipFile:
            raise DataError(f"{url}: not a zip archive (or truncated); nothing was kept") from None
        except (zlib.error, EOFError, OSError) as exc:
            raise DataError(f"{url}: archive is corrupt ({exc}); nothing was kept") from None
        root = unpack / prefix if prefix else unpack
        staged = tmp_path / "staged"
        (staged / "GaitData").parent.mkdir(parents=True, exist_ok=True)
        shutil.move(str(root), str(staged / "GaitData"))
        files = {
            str(p.relative_to(staged)): p.stat().st_size for p in sorted((staged / "GaitData").rglob("*")) if p.is_file()
        }
        manifest = {"url": url, "sha256": digest, "files": files}
        (staged / "manifest.json").write_text(json.dumps(manifest, indent=1))
        if dest.exists():
            old = tmp_path / "old"
            dest.rename(old)
        staged.rename(dest)
    return dest
