"""`gaitedge export c` as a library folder: CMake builds for the host and Cortex-M0+/M4/M33,
only the model's kernels compiled in, and the host build equal to the Python twin on IPOL."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from gaitedge.data.spec import load_spec
from gaitedge.export.c_export import export_c
from gaitedge.export.c_library import library_sources
from gaitedge.quant import quantize_model
from gaitedge.quant.evaluate import recording_counts

sys.path.insert(0, str(Path(__file__).resolve().parent))
from ctools import c_steps, py_steps  # noqa: E402
from test_quant import make_tm  # noqa: E402

CMAKE = shutil.which("cmake")
GCC = shutil.which("gcc")
ARM_GCC = shutil.which("arm-none-eabi-gcc")
WERROR = "-Wall -Wextra -Werror"
needs_cmake = pytest.mark.skipif(CMAKE is None or GCC is None, reason="cmake / gcc not installed")

#: a consumer project: the library through add_subdirectory() and a driver printing ge_step() rows
#: like the host harness ("raw label event event_sample logits...") for samples read from stdin.
CONSUMER_CMAKE = """cmake_minimum_required(VERSION 3.13)
project(consumer C)
add_subdirectory({lib} gaitedge)
add_executable(driver driver.c)
target_link_libraries(driver PRIVATE gaitedge::model)
"""
DRIVER_C = r"""#include <stdio.h>
#include "model_data.h"

static uint64_t arena[(GE_MODEL_DATA_ARENA_BYTES + 7u) / 8u];

int main(void)
{
    ge_state st;
    ge_output o;
    int16_t counts[GE_MODEL_DATA_N_INPUTS];
    int k;
    if (ge_init(&st, &ge_model_data, arena, sizeof arena) != GE_OK) return 2;
    while (fread(counts, sizeof counts, 1, stdin) == 1) {
        if (ge_step(&st, counts, &o) != GE_OK) return 3;
        printf("%d %d %d %ld", o.raw_label, o.label, o.event, (long)o.event_sample);
        for (k = 0; k < GE_MODEL_DATA_N_CLASSES; k++) printf(" %d", o.logits[k]);
        printf("\n");
    }
    return 0;
}
"""


def _run(cmd: list[str], cwd: Path | None = None) -> str:
    p = subprocess.run(cmd, capture_output=True, text=True, cwd=cwd)
    assert p.returncode == 0, f"{' '.join(map(str, cmd))}\n{p.stdout[-3000:]}\n{p.stderr[-3000:]}"
    return p.stdout + p.stderr


def _cmake_build(src: Path, build: Path, *defs: str) -> str:
    out = _run([CMAKE, "-S", str(src), "-B", str(build), "-DCMAKE_BUILD_TYPE=Release", f"-DCMAKE_C_FLAGS={WERROR}",
                *defs])
    return out + _run([CMAKE, "--build", str(build), "-j", "2"])


@pytest.fixture(scope="module")
def syn():
    return load_spec("synthetic?n=2&trials=1", other_foot=True)


@pytest.fixture(scope="module")
def gru_lib(syn, tmp_path_factory):
    qm = quantize_model(make_tm(syn, "gru", hidden=8), syn)
    lib = tmp_path_factory.mktemp("lib") / "gaitedge_gru8"
    export_c(qm, lib, measure_code=False)
    return qm, lib


def test_library_holds_only_the_model_kernels(gru_lib):
    qm, lib = gru_lib
    srcs = sorted(p.name for p in (lib / "src").glob("*.c"))
    assert srcs == sorted(library_sources(qm) + ["model_data.c"])
    assert "ge_gru.c" in srcs and not {"ge_lstm.c", "ge_elman.c", "ge_hopfield.c", "ge_bam.c", "ge_window.c",
                                       "ge_reservoir.c", "ge_math.c"} & set(srcs)
    headers = {p.name for p in (lib / "include").glob("*.h")}
    assert {"gaitedge_rt.h", "gaitedge_config.h", "model_data.h", "ge_gru.h"} <= headers
    assert not {"ge_lstm.h", "ge_hopfield.h", "ge_window.h"} & headers
    cfg = (lib / "include" / "gaitedge_config.h").read_text()
    assert "#define GE_WITH_ALL_KINDS 0" in cfg and "#define GE_WITH_GRU 1" in cfg and "GE_WITH_LSTM" not in cfg
    for rel in ("CMakeLists.txt", "cmake/arm-none-eabi.cmake", "zephyr/module.yml", "zephyr/CMakeLists.txt",
                "zephyr/Kconfig", "library.properties", "library.json", "src/gaitedge_model.h", "examples/main.c",
                "README.md"):
        assert (lib / rel).is_file(), rel
    main_c = (lib / "examples" / "main.c").read_text()
    assert 30 <= len(main_c.splitlines()) <= 50
    assert all(s in main_c for s in ("imu_read(", "ge_init(", "ge_step(", "on_event("))
    readme = (lib / "README.md").read_text()
    assert all(c in readme for c in qm.channels) and "Hz" in readme and "ARENA_BYTES" in readme
    assert "gaitedge::model" in (lib / "CMakeLists.txt").read_text()
    # no -D flags named anywhere as a requirement: every source includes its headers by relative path
    assert '#include "../include/ge_gru.h"' in (lib / "src" / "ge_gru.c").read_text()


def test_reexport_of_another_kind_removes_the_old_kernel(syn, tmp_path):
    export_c(quantize_model(make_tm(syn, "lstm", hidden=8), syn), tmp_path / "lib", measure_code=False)
    assert (tmp_path / "lib" / "src" / "ge_lstm.c").is_file()
    (tmp_path / "lib" / "src" / "app.c").write_text("/* the user's own file */\n")
    export_c(quantize_model(make_tm(syn, "elman", hidden=8), syn), tmp_path / "lib", measure_code=False)
    assert not (tmp_path / "lib" / "src" / "ge_lstm.c").exists() and not (tmp_path / "lib" / "include" / "ge_lstm.h").exists()
    assert (tmp_path / "lib" / "src" / "ge_elman.c").is_file() and (tmp_path / "lib" / "src" / "app.c").is_file()


def _defined(nm_out: str) -> dict[str, set[str]]:
    """{archive member: its defined global symbols} from ``nm`` of a static library."""
    members: dict[str, set[str]] = {}
    cur = None
    for line in nm_out.splitlines():
        if line.endswith(":") and line.strip():
            cur = line[:-1]
            members[cur] = set()
        elif cur is not None:
            parts = line.split()
            if len(parts) == 3 and parts[1] in "TDRB":
                members[cur].add(parts[2])
    return members


@needs_cmake
def test_host_cmake_build_links_every_object_and_runs_the_example(gru_lib, tmp_path):
    qm, lib = gru_lib
    _cmake_build(lib, tmp_path / "b")
    exe = tmp_path / "b" / "gaitedge_gru8_example"
    out = _run([str(exe)])
    assert "last label" in out
    archive = next((tmp_path / "b").glob("libgaitedge_gru8.a"))
    members = _defined(_run(["nm", str(archive)]))
    assert len(members) == len(library_sources(qm)) + 1
    linked = set(_run(["nm", str(exe)]).split())
    unused = [m for m, syms in members.items() if not syms & linked]
    assert not unused, f"compiled in but not linked by the example: {unused}"


@needs_cmake
@pytest.mark.skipif(ARM_GCC is None, reason="arm-none-eabi-gcc not installed")
@pytest.mark.parametrize("cpu,dsp,smlad", [("cortex-m0plus", "OFF", False), ("cortex-m4", "ON", True),
                                           ("cortex-m33", "AUTO", True)])
def test_cortex_m_cmake_builds(gru_lib, tmp_path, cpu, dsp, smlad):
    _, lib = gru_lib
    _cmake_build(lib, tmp_path / "b", f"-DCMAKE_TOOLCHAIN_FILE={lib / 'cmake' / 'arm-none-eabi.cmake'}",
                 f"-DGAITEDGE_CPU={cpu}", f"-DGAITEDGE_DSP={dsp}")
    elf = tmp_path / "b" / "gaitedge_gru8_example"
    assert elf.is_file()
    attrs = _run(["arm-none-eabi-readelf", "-A", str(elf)])
    assert {"cortex-m0plus": "v6S-M", "cortex-m4": "v7E-M", "cortex-m33": "v8-M.mainline"}[cpu] in attrs
    dis = _run(["arm-none-eabi-objdump", "-d", str(next((tmp_path / "b").glob("libgaitedge_gru8.a")))])
    assert ("smlad" in dis) == smlad


@needs_cmake
def test_add_subdirectory_host_build_equals_python_twin_on_ipol(ipol_root, tmp_path):
    train = load_spec(f"ipol:{ipol_root}?subjects=1", other_foot=True)[:2]
    test = load_spec(f"ipol:{ipol_root}?subjects=12", other_foot=True)[:1]
    qm = quantize_model(make_tm(train, "lstm", hidden=12, delay=3, min_run=6, lowpass=12.0), train)
    export_c(qm, tmp_path / "lib", measure_code=False)
    app = tmp_path / "app"
    app.mkdir()
    (app / "CMakeLists.txt").write_text(CONSUMER_CMAKE.format(lib=(tmp_path / "lib").as_posix()))
    (app / "driver.c").write_text(DRIVER_C)
    _cmake_build(app, tmp_path / "b")
    assert not list((tmp_path / "b" / "gaitedge").glob("lib_example*"))  # examples: top level only
    counts = recording_counts(qm, test[0])
    got = c_steps(tmp_path / "b" / "driver", counts)
    ref = py_steps(qm, counts)
    assert len(got) == len(counts) > 1000
    assert np.array_equal(got, ref)
    assert (ref[:, 2] > 0).any()
