"""Golden target: the integer model and its golden vectors only (`model.ttfs`, `vectors.npz`).

`emit` adds nothing to what ttfs-export writes for every target. `verify` runs the golden
simulator (`ttfs.sdk.golden.run`) again on the vectors' inputs and compares the whole trace with the
stored one, `ttfs.sdk.golden.first_divergence(stored, recomputed)`: it catches a model file or a
simulator that changed since the vectors were written. `compare(net, vectors)` does the same
for any vectors, e.g. a regression baseline kept from an earlier export (ttfs-regress's
`reference`).
"""

from __future__ import annotations

from pathlib import Path

from ttfs.codegen.targets import (ExportContext, ExportError, Report, reject_options,
                             resolve_build_dir, take_vectors)
from ttfs.sdk import __version__, golden, ir
from ttfs.sdk import vectors as vectors_mod


def emit(ctx: ExportContext) -> None:
    """Nothing beyond model.ttfs, vectors.npz and export.json (written by ttfs-export)."""


def compare(net: ir.Network, expected: vectors_mod.Vectors, report: Report, name: str) -> None:
    """Add a case `name` to `report`: the golden trace of `expected.inputs` against
    `expected.trace` (per sample: pass when its whole trace is equal)."""
    with report.timed(name):
        got = golden.run(net, golden.as_images(net, expected.inputs))
    try:
        div = golden.first_divergence(expected.trace, got)
    except ValueError as exc:
        raise ExportError(f"{name}: the vectors do not fit the model ({exc})") from None
    bad = _differing_samples(expected.trace, got)
    report.add_case(name, "pass" if div is None else "fail", passed=len(got) - bad,
                    failed=bad, first_divergence=div)
    report.lines.append(f"{name}: {len(got) - bad}/{len(got)} vectors equal"
                        + ("" if div is None else f"; {div}"))


def verify(out: Path, *, progress: bool = True, build_dir: Path | None = None,
           sim: str | None = None, board: str | None = None, vectors: int | None = None,
           synth: bool = True) -> Report:
    """Re-run the golden simulator on the first `vectors` golden vectors of OUT
    (`sim` and `board` are refused, nothing is built)."""
    reject_options("golden", sim=sim, board=board)
    out = Path(out)
    resolve_build_dir(out, build_dir)
    for name in ("model.ttfs", "vectors.npz"):
        if not (out / name).is_file():
            raise ExportError(f"{out / name}: missing; is {out} a ttfs-export folder?")
    net = ir.load(out / "model.ttfs")
    report = Report("golden", tools={"ttfs-sdk": __version__})
    compare(net, take_vectors(vectors_mod.load(out / "vectors.npz"), vectors), report, "golden")
    return report


def _differing_samples(a: golden.Trace, b: golden.Trace) -> int:
    """The number of samples whose traces differ anywhere."""
    n = len(a)
    differ = (a.scores.reshape(n, -1) != b.scores.reshape(n, -1)).any(axis=1)
    differ |= a.classes != b.classes
    for x, y in zip(a.times, b.times):
        differ |= (x.reshape(n, -1) != y.reshape(n, -1)).any(axis=1)
    if a.input_times is not None:
        differ |= (a.input_times.reshape(n, -1) != b.input_times.reshape(n, -1)).any(axis=1)
    return int(differ.sum())
