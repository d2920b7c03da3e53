"""The C fuzz targets (tests/fuzz/c/, built by benchmarks/fuzz.py with clang's libFuzzer,
ASan and UBSan) replay their seed corpora and every crash input they found.

Skipped when clang cannot build a libFuzzer program here.  The crash inputs kept in
``tests/fuzz/regressions/c_<target>/`` were signed-integer overflows of the runtime on
weights and normalization constants that no exported model has (a weights blob in a
flash slot, a mutated descriptor):

- ``ge_preproc.c``: ``counts * norm_mult + norm_bias`` beyond int32 — ``ge_check_model``
  now refuses constants that break the exporter's bound (|norm_mult| 2^15 + |norm_bias| < 2^31);
- ``ge_matvec.c``: a row's bias plus products beyond int32 — the portable kernel now wraps
  modulo 2^32 as the DSP paths (SMLAD) do; exported models never reach that;
- ``ge_ctrnn.c`` (``ge_shl32`` of a drive beyond 2^23) and ``ge_jordan.c`` (the sum of the
  input and feedback accumulators): both wrap modulo 2^32 now (``ge_shl32``, ``ge_add32``),
  as LSL and ADD do on the board.
"""

from __future__ import annotations

import functools
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FUZZ = ROOT / "tests" / "fuzz"
sys.path.insert(0, str(ROOT / "benchmarks"))
import fuzz  # noqa: E402

sys.path.remove(str(ROOT / "benchmarks"))

NAMES = [spec.name for spec in fuzz.C_SPECS]
CORPUS = {spec.name: spec.corpus or spec.name for spec in fuzz.C_SPECS}


@functools.lru_cache(maxsize=None)
def _libfuzzer_works(tmp: str) -> bool:
    clang = shutil.which("clang")
    if clang is None:
        return False
    src = Path(tmp) / "t.c"
    src.write_text("#include <stddef.h>\n#include <stdint.h>\n"
                   "int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n) { (void)d; (void)n; return 0; }\n")
    p = subprocess.run([clang, "-fsanitize=fuzzer,address,undefined", str(src), "-o", str(Path(tmp) / "t")],
                       capture_output=True)
    return p.returncode == 0


@pytest.fixture(scope="module")
def binaries(tmp_path_factory) -> dict[str, Path]:
    out = tmp_path_factory.mktemp("cfuzz")
    if not _libfuzzer_works(str(out)):
        pytest.skip("clang with libFuzzer (apt-get install clang libclang-rt-14-dev) is not available")
    built = {}
    for t in fuzz.c_targets(out_dir=out):
        for step in (t.prepare, t.build):
            if step:
                p = subprocess.run(step, cwd=ROOT, capture_output=True, text=True)
                assert p.returncode == 0, f"{t.name}: {(p.stderr or p.stdout)[-2000:]}"
        built[t.name] = Path(t.run[0])
    return built


def _replay(binary: Path, inputs: list[Path]) -> subprocess.CompletedProcess:
    """Run the target once on each input (libFuzzer's replay mode)."""
    return subprocess.run([str(binary), *map(str, inputs)], capture_output=True, text=True, timeout=600)


@pytest.mark.parametrize("name", NAMES)
def test_seed_corpus_replays_cleanly(binaries, name):
    seeds = sorted((FUZZ / "corpus" / CORPUS[name]).glob("seed-*"))
    assert seeds, f"no seeds for {name}"
    p = _replay(binaries[name], seeds)
    assert p.returncode == 0, p.stderr[-3000:]


REGRESSIONS = sorted(p for name in NAMES for p in (FUZZ / "regressions" / name).glob("crash-*"))


@pytest.mark.parametrize("crash", REGRESSIONS, ids=[f"{p.parent.name}-{p.name[6:14]}" for p in REGRESSIONS])
def test_crash_input_replays_cleanly(binaries, crash):
    p = _replay(binaries[crash.parent.name], [crash])
    assert p.returncode == 0, p.stderr[-3000:]
    assert "runtime error" not in p.stderr

