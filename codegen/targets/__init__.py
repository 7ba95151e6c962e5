"""Export targets. Each target module (`onnx`, `mcu`, `fpga`) provides:

- `emit(ctx: ExportContext) -> None`: write the target's files into `ctx.out` (a fresh temporary
  folder that the CLI renames into place only when everything succeeded);
- `verify(out: Path, *, progress: bool = True) -> Report`: check an exported folder against its
  golden vectors (`out/vectors.npz`) with the real compilers/simulators.

Problems a user can fix (a model the target cannot hold, a missing tool) raise `ExportError`;
the CLIs print its message as one line and exit with status 2.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType

from sdk.ir import Network
from sdk.vectors import Vectors

TARGETS = ("onnx", "mcu", "fpga")


class ExportError(ValueError):
    """A user-facing export or verification failure (one line, exit status 2)."""


@dataclass(frozen=True)
class ExportContext:
    """What a target needs to emit its files."""

    net: Network
    vectors: Vectors
    out: Path
    name: str
    run_dir: Path | None = None
    options: dict = field(default_factory=dict)


@dataclass
class Report:
    """The outcome of a target's verification: pass/fail counts, a table, numbers."""

    target: str
    passed: int = 0
    failed: int = 0
    lines: list[str] = field(default_factory=list)
    data: dict = field(default_factory=dict)
    first_mismatch: str | None = None

    @property
    def ok(self) -> bool:
        return self.failed == 0 and self.passed > 0


def get(name: str) -> ModuleType:
    """The target module `codegen.targets.<name>`."""
    if name not in TARGETS:
        raise ExportError(f"--target: unknown target {name!r}; expected one of {TARGETS}")
    return importlib.import_module(f"codegen.targets.{name}")
