"""The STM32F4 flash driver (boards/stm32f405_netduino/stm32f4_flash.c) on the host.

QEMU does not emulate flash writes on the STM32F405, so the driver's logic (unlock,
sector erase, program at the parallelism of the supply voltage, BSY, error flags, cache
flush, lock) runs against a simulated flash controller in a host C harness
(``test/flash_sim_test.c``, ASan/UBSan when available).  The chip build of the driver
and of the board layer is also compiled for Cortex-M4, warning-free.
"""

from __future__ import annotations

import os
import subprocess

import pytest

from fwtools import FW, PROTO, RUNTIME, compile_host, have

BOARD = FW / "boards" / "stm32f405_netduino"


@pytest.mark.skipif(not have("gcc"), reason="needs a host C compiler")
def test_flash_driver_logic_against_a_simulated_controller():
    exe = compile_host("stm32f4_flash_sim", [BOARD / "stm32f4_flash.c", BOARD / "test" / "flash_sim_test.c"],
                       includes=(BOARD,), extra=["-DSTM32F4_FLASH_SIM", "-DSTM32F4_FLASH_BSY_POLLS=1000",
                                                 "-pedantic"])
    p = subprocess.run([str(exe)], capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    assert p.stdout.startswith("ok ") and int(p.stdout.split()[1]) > 150


@pytest.mark.skipif(not have("arm-none-eabi-gcc"), reason="needs gcc-arm-none-eabi")
@pytest.mark.parametrize("variant", [[], ["-DSTM32F405_CHIP"]], ids=["emulated", "chip"])
def test_board_layer_compiles_warning_free_for_cortex_m4(variant):
    arm = ["-mcpu=cortex-m4", "-mthumb", "-mfloat-abi=soft"]
    inc = [f"-I{p}" for p in (RUNTIME / "include", PROTO, FW, BOARD)]
    for src in (BOARD / "board.c", BOARD / "startup.c", BOARD / "stm32f4_flash.c"):
        p = subprocess.run(["arm-none-eabi-gcc", "-std=c99", "-O2", *arm, "-Wall", "-Wextra", "-Werror", "-Wshadow",
                            *variant, *inc, "-c", str(src), "-o", os.devnull], capture_output=True, text=True)
        assert p.returncode == 0, (src.name, p.stderr)
