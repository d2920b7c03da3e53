"""The C runtime on 32-bit RISC-V (rv32imac, picolibc) under qemu-system-riscv32 -M virt:
-Werror clean, and every step on an IPOL recording equal to the Python integer twin."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from gaitedge.data.spec import load_spec
from gaitedge.export.c_common import kind_cflags
from gaitedge.export.c_export import export_c
from gaitedge.firmware import mcu
from gaitedge.quant import quantize_model
from gaitedge.quant.evaluate import recording_counts

sys.path.insert(0, str(Path(__file__).resolve().parent))
from ctools import py_steps  # noqa: E402
from test_quant import make_tm  # noqa: E402

MISSING = mcu.riscv_toolchain_missing()
pytestmark = pytest.mark.skipif(bool(MISSING), reason=f"RISC-V toolchain not installed: {', '.join(MISSING)} "
                                "(apt-get install gcc-riscv64-unknown-elf picolibc-riscv64-unknown-elf "
                                "qemu-system-misc)")


def _rows(stdout: str) -> np.ndarray:
    return np.array([list(map(int, ln.split())) for ln in stdout.splitlines() if ln and ln[0] in "-0123456789"])


@pytest.mark.parametrize("family,kw", [("gru", dict(hidden=16, min_run=4)),
                                       ("lstm", dict(hidden=12, layers=2, delay=3, lowpass=12.0))])
def test_rv32_equals_python_twin_on_ipol(ipol_root, tmp_path, family, kw):
    train = load_spec(f"ipol:{ipol_root}?subjects=1", other_foot=True)[:2]
    rec = load_spec(f"ipol:{ipol_root}?subjects=13", other_foot=True)[0]
    qm = quantize_model(make_tm(train, family, **kw), train)
    export_c(qm, tmp_path / "m", copy_runtime=False, measure_code=False)
    c = recording_counts(qm, rec)
    counts = c[len(c) // 2 : len(c) // 2 + 400]  # walking
    mcu.write_bench_input(tmp_path / "bench_input.h", counts)
    fw = mcu.build_riscv_firmware(tmp_path / "m", tmp_path, extra=kind_cflags(qm))
    run = mcu.run_qemu_riscv(fw.elf, timeout=120)
    assert run.rc == 0, run.stdout[-2000:]
    got = _rows(run.stdout)
    ref = py_steps(qm, counts)
    assert got.shape == ref.shape and np.array_equal(got, ref)
    assert len(set(ref[:, 0].tolist())) > 1


def test_rv32_instruction_counts_are_exact_and_repeatable(tmp_path):
    recs = load_spec("synthetic?n=2&trials=1", other_foot=True)
    qm = quantize_model(make_tm(recs, "gru", hidden=16), recs)
    export_c(qm, tmp_path / "m", copy_runtime=False, measure_code=False)
    counts = recording_counts(qm, recs[-1])[:20]
    mcu.write_bench_input(tmp_path / "bench_input.h", counts)
    fw = mcu.build_riscv_firmware(tmp_path / "m", tmp_path, print_steps=False, extra=kind_cflags(qm))
    plugin = mcu.build_plugin(tmp_path)
    a, b = (mcu.run_qemu_riscv(fw.elf, plugin).icounts for _ in range(2))
    assert a == b and len(a) == 3 + len(counts) + 5
    assert min(a[3:23]) > 10 * max(a[:3])
