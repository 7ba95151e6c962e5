"""Export targets. Each target module (`golden`, `onnx`, `mcu`, `fpga`) provides:

- `emit(ctx: ExportContext) -> None`: write the target's files into `ctx.out` (a fresh temporary
  folder that the CLI renames into place only when everything succeeded);
- `verify(out, *, progress=True, build_dir=None, sim=None, board=None, vectors=None,
  synth=True) -> Report`: check an exported folder against its golden vectors
  (`out/vectors.npz`) with the real compilers/simulators.

verify's keywords:

- `build_dir`: every build product, simulator log and result file goes there, never into
  `out` (an export stays read-only once written); None -> `default_build_dir(out)`, a folder
  under the user's cache directory (see `resolve_build_dir`);
- `sim` (fpga only: "verilator" | "icarus" | "both"), `board` (mcu only: a QEMU board or
  "none" for the host checks only): None = the export-time default; a target given an option
  it does not understand raises ExportError naming it (`reject_options`);
- `vectors`: check only the first N golden vectors (None = all; N < 1 is an ExportError;
  `take_vectors`);
- `synth`: fpga runs synthesis / place-and-route only when True; other targets ignore it.

Outcomes and exit statuses of the CLIs (`exit_status`):

- 0: every check passed;
- 1: a mismatch (`Report.failed`) or a bug in a generated design -- a lint failure, a crashing
  simulator or compiler on generated code: record it as a case with status "error"
  (`Report.add_case`) or raise `DesignError`;
- 2: bad input a user can fix (a model the target cannot hold, a corrupt export): `ExportError`;
  a failing external tool that is not the generated design's fault is reported the same way;
- 3: a missing external tool or Python extra: `ttfs.codegen.tools.ToolMissing`.

Targets never write report files into `out`: the CLI writes `report.json` (`Report.to_json`)
into the build folder.
"""

from __future__ import annotations

import hashlib
import importlib
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType

from ttfs.sdk.golden import Divergence
from ttfs.sdk.ir import Network
from ttfs.sdk.vectors import Vectors

TARGETS = ("golden", "onnx", "mcu", "fpga")
#: Case statuses, worst last.
STATUSES = ("pass", "fail", "error")


class ExportError(ValueError):
    """A user-facing export or verification failure (one line, exit status 2)."""


class DesignError(RuntimeError):
    """A generated design is broken (lint failure, simulator or compiler crash on generated
    code): a bug of the generator, exit status 1, never blamed on the user's input."""


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
    """The outcome of a target's verification.

    `passed`/`failed` count vectors over all sub-checks; `cases` holds one dict per sub-check
    ({"name", "status": "pass"|"fail"|"error", "passed", "failed", "first_divergence",
    "message"}); `first_divergence` is the earliest divergence found (see `divergence_dict`);
    `tools` maps tool name -> version string; `timings` step name -> seconds.
    """

    target: str
    passed: int = 0
    failed: int = 0
    lines: list[str] = field(default_factory=list)
    data: dict = field(default_factory=dict)
    first_mismatch: str | None = None
    first_divergence: dict | None = None
    tools: dict[str, str] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)
    cases: list[dict] = field(default_factory=list)

    @property
    def errors(self) -> int:
        """Sub-checks that crashed (a bug in a generated design)."""
        return sum(case["status"] == "error" for case in self.cases)

    @property
    def ok(self) -> bool:
        return self.failed == 0 and self.passed > 0 and self.errors == 0

    @property
    def status(self) -> str:
        """"pass", "error" (some sub-check crashed) or "fail"."""
        if self.ok:
            return "pass"
        return "error" if self.errors else "fail"

    def add_case(self, name: str, status: str, *, passed: int = 0, failed: int = 0,
                 first_divergence: Divergence | dict | None = None, message: str = "",
                 count: bool = True) -> dict:
        """Record a sub-check; its counts are added to the report's unless `count` is False
        (for a second look at vectors already counted). The first divergence of the first
        failing case becomes the report's."""
        if status not in STATUSES:
            raise ValueError(f"case status must be one of {STATUSES}, got {status!r}")
        div = divergence_dict(first_divergence)
        case = {"name": name, "status": status, "passed": int(passed), "failed": int(failed),
                "first_divergence": div, "message": message}
        self.cases.append(case)
        if count:
            self.passed += int(passed)
            self.failed += int(failed)
        if div is not None and self.first_divergence is None:
            self.first_divergence = div
        if status != "pass" and self.first_mismatch is None and (message or div):
            self.first_mismatch = f"{name}: {message or format_divergence(div)}"
        return case

    @contextmanager
    def timed(self, step: str) -> Iterator[None]:
        """`with report.timed("verilator"): ...` adds the step's wall seconds to `timings`."""
        start = time.perf_counter()
        try:
            yield
        finally:
            self.timings[step] = self.timings.get(step, 0.0) + time.perf_counter() - start

    def to_json(self) -> dict:
        """The report as written to report.json: one top-level status, the same counts as the
        printed summary, cases, tool versions, timings and the target's own data."""
        return {"target": self.target, "status": self.status, "ok": self.ok,
                "passed": self.passed, "failed": self.failed, "errors": self.errors,
                "first_divergence": self.first_divergence,
                "first_mismatch": self.first_mismatch, "cases": self.cases,
                "tools": self.tools, "timings": {k: round(v, 3) for k, v in
                                                 self.timings.items()},
                "data": self.data, "lines": self.lines}


def divergence_dict(div: Divergence | dict | None) -> dict | None:
    """`ttfs.sdk.golden.Divergence` as {"layer", "sample", "neuron", "time", "expected", "got"}
    ("time": the first time step where the spike times differ, None for scores/classes)."""
    if div is None or isinstance(div, dict):
        return div
    return div.to_dict()


def format_divergence(div: dict | None) -> str:
    """One line naming the first divergence's layer, sample, neuron and values."""
    if not div:
        return ""
    return (f"first divergence at layer '{div['layer']}', sample {div['sample']}, neuron "
            f"{div['neuron']}: expected {div['expected']}, got {div['got']}")


def take_vectors(vectors: Vectors, n: int | None) -> Vectors:
    """The first `n` golden vectors (all when n is None or larger than the set)."""
    if n is None:
        return vectors
    check_vector_count(n)
    return vectors.head(n)


def check_vector_count(n: int | None) -> None:
    """ExportError unless n is None or >= 1 (`--vectors N`)."""
    if n is not None and (isinstance(n, bool) or not isinstance(n, int) or n < 1):
        raise ExportError(f"--vectors: expected a count N >= 1, got {n!r}")


def reject_options(target: str, **given) -> None:
    """ExportError naming the first option given (not None) that `target` does not take,
    e.g. `reject_options("mcu", sim=sim)`."""
    for key, value in given.items():
        if value is not None:
            raise ExportError(f"--{key}: the {target} target has no {key} option "
                              f"(got {value!r})")


def cache_home() -> Path:
    """$XDG_CACHE_HOME/ttfs-sdk (default ~/.cache/ttfs-sdk); TTFS_CACHE_DIR overrides it."""
    if os.environ.get("TTFS_CACHE_DIR"):
        return Path(os.environ["TTFS_CACHE_DIR"])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "ttfs-sdk"


def default_build_dir(out: Path) -> Path:
    """Where verify builds an export by default: `<cache_home>/build/<name>-<hash of the
    absolute path of out>` (outside the export, stable per export folder)."""
    out = Path(out).absolute()
    digest = hashlib.sha256(str(out).encode()).hexdigest()[:16]
    return cache_home() / "build" / f"{out.name}-{digest}"


def resolve_build_dir(out: Path, build_dir: Path | None) -> Path:
    """`build_dir` (or `default_build_dir(out)`) as an absolute path, created; ExportError
    when it lies inside `out` (the export stays read-only)."""
    build = (Path(build_dir) if build_dir is not None else default_build_dir(out)).absolute()
    a, b = Path(out).resolve(), build.resolve()
    if b == a or a in b.parents:
        raise ExportError(f"--build-dir {build}: must lie outside the export folder {out}")
    build.mkdir(parents=True, exist_ok=True)
    return build


def exit_status(report: Report) -> int:
    """0 when every check passed, else 1 (mismatch or a broken generated design)."""
    return 0 if report.ok else 1


def get(name: str) -> ModuleType:
    """The target module `ttfs.codegen.targets.<name>`."""
    if name not in TARGETS:
        raise ExportError(f"--target: unknown target {name!r}; expected one of {TARGETS}")
    return importlib.import_module(f"ttfs.codegen.targets.{name}")
