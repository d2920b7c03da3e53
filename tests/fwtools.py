"""Helpers shared by the protocol / firmware / device tests (not a test module)."""

from __future__ import annotations

import atexit
import functools
import shutil
import subprocess
import tempfile
from pathlib import Path

from gaitedge import resources

ROOT = Path(__file__).resolve().parents[1]
PROTO = resources.protocol_dir()
FW = resources.firmware_dir()
RUNTIME = resources.runtime_dir()
SANITIZE = ["-fsanitize=address,undefined", "-fno-sanitize-recover=all", "-fno-omit-frame-pointer"]


def have(*tools: str) -> bool:
    return all(shutil.which(t) for t in tools)


@functools.lru_cache(maxsize=None)
def sanitizers_work() -> bool:
    """Whether the host gcc can build and run an ASan/UBSan program here."""
    if not have("gcc"):
        return False
    d = Path(_tmp()) / "san"
    d.mkdir(exist_ok=True)
    (d / "t.c").write_text("int main(void){return 0;}\n")
    p = subprocess.run(["gcc", *SANITIZE, str(d / "t.c"), "-o", str(d / "t")], capture_output=True)
    return p.returncode == 0 and subprocess.run([str(d / "t")], capture_output=True).returncode == 0


@functools.lru_cache(maxsize=None)
def _tmp() -> str:
    d = tempfile.mkdtemp(prefix="gaitedge-fwtests-")
    atexit.register(shutil.rmtree, d, True)
    return d


def compile_host(name: str, sources: list[Path], sanitize: bool = True, includes: tuple[Path, ...] = (),
                 extra: list[str] | None = None) -> Path:
    """Compile a host C test program (with ASan/UBSan when available); returns the binary.

    ``includes``: header folders besides the protocol's; ``extra``: more compiler flags."""
    out = Path(_tmp()) / name
    flags = ["-std=c99", "-O1", "-g", "-Wall", "-Wextra", "-Werror", f"-I{PROTO}", *(f"-I{p}" for p in includes),
             *(extra or [])]
    if sanitize and sanitizers_work():
        flags += SANITIZE
    subprocess.run(["gcc", *flags, *map(str, sources), "-o", str(out)], check=True, capture_output=True, text=True)
    return out


def _train(out: Path, hidden: int, seed: int, epochs: int = 3):
    from gaitedge.config import Config
    from gaitedge.data.spec import load_spec
    from gaitedge.quant import calibration_recordings, quantize_model
    from gaitedge.training.train import train

    cfg = Config()
    cfg.data.train = "synthetic?n=5&trials=2"
    cfg.data.other_foot = True
    cfg.data.val_subjects = ["syn5"]
    cfg.model.name = "gru"
    cfg.model.hidden = hidden
    cfg.train.seed = seed
    cfg.train.epochs = epochs
    cfg.train.steps_per_epoch = 12
    cfg.train.batch_size = 16
    cfg.train.window_s = 2.5
    cfg.train.threads = 1
    tm, _, run = train(cfg, out_dir=out, progress=False, force=True, log=lambda *a, **k: None)
    recs = load_spec(cfg.data.train, other_foot=True)
    qm = quantize_model(tm, calibration_recordings(tm, recs))
    qm.save(Path(run) / "quant.npz")
    return Path(run), qm


@functools.lru_cache(maxsize=None)
def tiny_models() -> dict:
    """Three tiny 12-channel GRUs on synthetic gait: A and B (same architecture, different
    weights) and C (another hidden size).  {name: (run_dir, QuantModel)}; trained once."""
    base = Path(_tmp()) / "runs"
    return {
        "A": _train(base / "A", hidden=16, seed=0),
        "B": _train(base / "B", hidden=16, seed=1),
        "C": _train(base / "C", hidden=24, seed=0, epochs=1),
    }


@functools.lru_cache(maxsize=None)
def host_firmware(sanitize: bool = False):
    """The host build of the firmware with model A (ASan/UBSan with sanitize=True)."""
    from gaitedge.firmware import build_firmware

    run, qm = tiny_models()["A"]
    flags = SANITIZE if sanitize else None
    return build_firmware(qm, Path(_tmp()) / ("host-san" if sanitize else "host"), board="host", extra_cflags=flags)


@functools.lru_cache(maxsize=None)
def arm_firmware():
    from gaitedge.firmware import build_firmware

    run, qm = tiny_models()["A"]
    return build_firmware(run, Path(_tmp()) / "mps2")


def tmpdir(name: str) -> Path:
    d = Path(_tmp()) / name
    d.mkdir(parents=True, exist_ok=True)
    return d
