"""`ttfs-verify OUT`: re-run the checks of an exported folder (its export.json names the target).

The target builds and simulates in a build folder outside OUT (`--build-dir`, default
`ttfs.codegen.targets.default_build_dir(OUT)`) and this CLI writes `report.json` there afresh on
every run (before the checks start, the old one is deleted, so a crash never leaves a stale
report): one top-level `status` ("pass" | "fail" | "error"), the counts printed on stdout,
cases, first divergence, tool versions, timings and the model hash. `--json FILE` writes the
same report elsewhere, `--junit FILE` a JUnit XML file of its cases.

Exit statuses: 0 all checks passed, 1 a mismatch or a bug in a generated design (lint failure,
simulator crash), 2 bad input (one line `error: ...`), 3 a missing tool or Python extra.
"""

from __future__ import annotations

import argparse
import inspect
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path

from ttfs.codegen.export_cli import (EXIT_MISMATCH, EXIT_OK, EXPORT_FILE, guarded, load_target,
                                print_report)
from ttfs.codegen.targets import (ExportError, Report, check_vector_count, format_divergence,
                             resolve_build_dir)
from ttfs.sdk import __version__

REPORT_FILE = "report.json"


def read_export(out: Path) -> dict:
    """OUT/export.json as written by ttfs-export; raises ExportError."""
    path = out / EXPORT_FILE
    try:
        record = json.loads(path.read_text())
    except OSError as exc:
        raise ExportError(f"{path}: cannot read ({exc.strerror}); is {out} a ttfs-export "
                          "folder?") from None
    except ValueError as exc:
        raise ExportError(f"{path}: not valid JSON ({exc})") from None
    if not isinstance(record, dict) or not isinstance(record.get("target"), str):
        raise ExportError(f"{path}: no 'target' field")
    return record


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="ttfs-verify", formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Re-run the checks of a folder written by ttfs-export against its golden "
                    "vectors. Builds go to a folder outside the export; report.json is "
                    "written there afresh on every run.",
        epilog="""examples:
  ttfs-verify out/mlp-fpga --sim both --no-synth
      simulate on Verilator and Icarus, skip Yosys
  ttfs-verify out/mlp-mcu --board none --vectors 10
      host checks only (no QEMU), first 10 golden vectors
  ttfs-verify out/mlp-mcu --junit results.xml --json report.json --build-dir build/mcu
      for CI: JUnit XML for the test-report view, the full report as JSON

exit status: 0 all pass, 1 a mismatch or a broken generated design, 2 bad input
(one-line 'error: ...'), 3 a missing tool or Python extra (the message says what to install)""")
    p.add_argument("out", type=Path, help="the folder written by ttfs-export")
    p.add_argument("--sim", choices=("verilator", "icarus", "both"), default=None,
                   help="fpga: simulator(s) (default: the export's)")
    p.add_argument("--board", default=None,
                   help="mcu: QEMU board (e.g. mps2-an385, microbit) or 'none' for the host "
                        "checks only (default: the export's)")
    p.add_argument("--vectors", type=int, default=None, metavar="N",
                   help="check only the first N >= 1 golden vectors (default all)")
    p.add_argument("--no-synth", dest="synth", action="store_false",
                   help="fpga: skip synthesis and place-and-route")
    p.add_argument("--build-dir", type=Path, default=None, metavar="DIR",
                   help="where builds, logs and report.json go (default: a folder under "
                        "$XDG_CACHE_HOME/ttfs-sdk/build; never inside OUT)")
    p.add_argument("--json", type=Path, default=None, metavar="FILE",
                   help="also write the report as JSON to FILE")
    p.add_argument("--junit", type=Path, default=None, metavar="FILE",
                   help="write the checks as JUnit XML to FILE")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    return p


def verify_kwargs(target, **given) -> dict:
    """The verify keywords to pass: all of them to a target with the full signature; to an older one
    only those it takes (ExportError when an option it lacks was given a value)."""
    params = inspect.signature(target.verify).parameters
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return given
    kwargs = {}
    for key, value in given.items():
        if key in params:
            kwargs[key] = value
        elif value not in (None, True) and key != "build_dir":   # an older target builds
            # in OUT; the report still goes to the build folder
            raise ExportError(f"--{key.replace('_', '-')}: the {target.__name__.split('.')[-1]}"
                              " target does not support this option yet")
    return kwargs


def run_verify(out: Path, *, build_dir: Path | None = None, progress: bool = True,
               sim: str | None = None, board: str | None = None, vectors: int | None = None,
               synth: bool = True, extra: Callable[[Report, Path], None] | None = None
               ) -> tuple[Report, dict, Path]:
    """Verify OUT; returns (report, the report.json dict, build folder). report.json is
    deleted before the checks and written after them; `extra(report, out)` may add cases
    first."""
    check_vector_count(vectors)
    record = read_export(out)
    target = load_target(record["target"])
    build = resolve_build_dir(out, build_dir)
    (build / REPORT_FILE).unlink(missing_ok=True)
    start = time.perf_counter()
    report = target.verify(out, **verify_kwargs(
        target, progress=progress, build_dir=build, sim=sim, board=board, vectors=vectors,
        synth=synth))
    if extra is not None:
        extra(report, Path(out))
    seconds = time.perf_counter() - start
    data = report.to_json() | {
        "export": str(Path(out).absolute()), "build_dir": str(build.absolute()),
        "model_hash": record.get("ir_hash"), "name": record.get("name"),
        "generator": f"ttfs-sdk {__version__}", "seconds": round(seconds, 3),
        "options": {"sim": sim, "board": board, "vectors": vectors, "synth": synth}}
    write_json(build / REPORT_FILE, data)
    return report, data, build


def write_json(path: Path, data: dict) -> None:
    """Write `data` as indented JSON via a temporary file and a rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(data, indent=1, sort_keys=True) + "\n")
    tmp.replace(path)


def junit_results(data: dict) -> list[dict]:
    """report.json's cases as the result dicts `ttfs.codegen.regress.write_junit` takes (one
    testsuite name/target; the whole report as one case when the target listed none)."""
    suite = f"{data.get('name')}/{data['target']}"
    cases = data["cases"] or [{"name": data["target"], "status": data["status"],
                               "passed": data["passed"], "failed": data["failed"],
                               "first_divergence": data["first_divergence"],
                               "message": data["first_mismatch"] or ""}]
    return [{"suite": suite, "name": c["name"], "status": c["status"],
             "message": c.get("message") or format_divergence(c.get("first_divergence")),
             "error_type": "DesignError" if c["status"] == "error" else None,
             "first_divergence": c.get("first_divergence"), "passed": c.get("passed", 0),
             "failed": c.get("failed", 0), "seconds": data["timings"].get(c["name"], 0.0),
             "model_hash": data.get("model_hash"), "export": data.get("export")}
            for c in cases]


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)

    def body() -> int:
        report, data, build = run_verify(
            args.out, build_dir=args.build_dir, progress=not args.quiet, sim=args.sim,
            board=args.board, vectors=args.vectors, synth=args.synth)
        print_report(report)
        print(f"report: {build / REPORT_FILE}")
        if args.json:
            write_json(args.json, data)
        if args.junit:
            from ttfs.codegen import regress

            regress.write_junit(args.junit, junit_results(data), name="ttfs-verify")
        return EXIT_OK if report.ok else EXIT_MISMATCH

    return guarded(body)


if __name__ == "__main__":
    sys.exit(main())
