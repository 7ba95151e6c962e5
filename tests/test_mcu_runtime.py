"""The hand-written C runtime (firmware/runtime/ttfs.h) on its own: hand-checked C cases and a
conv sweep against the definition (tests/firmware/test_runtime.c) with strict warnings and under
ASan/UBSan, for packed weights of 2, 3, 4, 5, 8 (the default) and 16 bits, with uint16_t (the
default) and uint8_t spike times (what models with T <= 255 use); the header also compiles as C++
and for a Cortex-M0 and an RV32EC core without warnings."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from ttfs.codegen.mcu_check import HOST_BUILDS, STRICT
from tests.conftest import need_tool

ROOT = Path(__file__).resolve().parent.parent
RUNTIME = ROOT / "firmware" / "runtime"
CASES = Path(__file__).resolve().parent / "firmware" / "test_runtime.c"


@pytest.mark.parametrize("flavour", sorted(HOST_BUILDS))
@pytest.mark.parametrize("types", [("8", "uint16_t", "0"), ("16", "uint8_t", "0"),
                                   ("5", "uint8_t", "0"), ("4", "uint16_t", "0"),
                                   ("3", "uint8_t", "1"), ("2", "uint16_t", "1")],
                         ids="-".join)
def test_runtime_cases(tmp_path, flavour, types):
    """(weight bits, spike-time type, TTFS_MUL_TABLE): the product tables of cores without a
    multiplier are checked on the host too."""
    gcc = need_tool("gcc")
    exe = tmp_path / "test_runtime"
    bits, time, table = types
    subprocess.run([gcc, *HOST_BUILDS[flavour], f"-DTTFS_WEIGHT_BITS={bits}U",
                    f"-DTTFS_MUL_TABLE={table}",
                    f"-DTTFS_TIME_T={time}",
                    "-I", str(RUNTIME), "-o", str(exe), str(CASES)], check=True)
    proc = subprocess.run([str(exe)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    tables = ", product tables" if table == "1" else ""
    assert f"0 failures ({bits}-bit weights{tables})" in proc.stdout


def test_runtime_header_compiles_as_cxx_and_for_cortex_m0_and_rv32ec(tmp_path):
    source = tmp_path / "use.c"
    source.write_text('#include "ttfs.h"\nint use(void);\n'
                      "int use(void) { return (int)sizeof(struct ttfs_stats); }\n")
    gxx = need_tool("g++")
    subprocess.run([gxx, "-x", "c++", "-std=c++11", "-Wall", "-Wextra", "-Werror",
                    "-fsyntax-only", "-I", str(RUNTIME), str(source)], check=True)
    arm = need_tool("arm-none-eabi-gcc")
    subprocess.run([arm, "-mcpu=cortex-m0", "-mthumb", *STRICT, "-O2", "-c", "-I", str(RUNTIME),
                    "-o", str(tmp_path / "use.o"), str(source)], check=True)
    riscv = need_tool("riscv64-unknown-elf-gcc")
    subprocess.run([riscv, "-march=rv32ec", "-mabi=ilp32e", "--specs=picolibc.specs", *STRICT,
                    "-O2", "-c", "-I",
                    str(RUNTIME), "-o", str(tmp_path / "use-rv.o"), str(source)], check=True)
