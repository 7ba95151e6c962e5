"""`ttfs-regress SUITE.toml`: a hardware regression matrix with JUnit XML and JSON results.

A suite (format: docs/regress.md) lists models (run directories or model.ttfs files), targets
with their variants (fpga simulators, mcu boards) and vector sets (the first N golden vectors).
Every model x target x variant x vector set is one case. Per (model, target) the model is
exported once into a cache folder keyed by (source content, target, options, vectors); cases
sharing an export and a variant run one after another in one build folder, the rest in parallel
worker processes (`--jobs N`). A target that refuses a model (say, fpga and a conv net) makes
that model's cases of the target errors with the target's message.

Results: a table on stdout, `--json FILE` (per case: status, first divergence as
layer/sample/neuron/time, counts, tool versions, timings, model hash), `--junit FILE` (JUnit XML:
one testsuite per model/target, one testcase per case; a failure's message names the first
divergence).

Exit statuses (per case, and the suite takes the first that applies in this order): 1 a mismatch
or a broken generated design, 2 bad input (the suite, a model a target refuses) or a failing
tool, 3 a missing tool or Python extra, 0 every case passed.
"""

from __future__ import annotations

import argparse
import fnmatch
import hashlib
import json
import multiprocessing
import os
import sys
import time
import tomllib
import traceback
import xml.etree.ElementTree as ET
from collections.abc import Iterable
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path

from ttfs.codegen import export_cli, tools
from ttfs.codegen.export_cli import EXIT_MISMATCH, EXIT_MISSING, EXIT_OK, EXIT_USAGE
from ttfs.codegen.targets import TARGETS, DesignError, Report, cache_home, format_divergence
from ttfs.sdk import __version__, outdir

#: Keys a suite may hold at each level (anything else is a typo: an error).
SUITE_KEYS = {"cache", "jobs", "model", "target", "vectors"}
MODEL_KEYS = {"name", "source", "vectors", "reference", "targets", "weight_bits", "kernel_bits"}
TARGET_KEYS = {"name", "sims", "boards", "options", "synth"}
VECTOR_KEYS = {"name", "count"}
#: The verify keyword each target's variants set.
VARIANT_KEY = {"fpga": "sim", "mcu": "board"}
DEFAULT_EXPORT_VECTORS = 20


class SuiteError(ValueError):
    """A malformed suite file (one line, exit status 2)."""


@dataclass(frozen=True)
class ModelSpec:
    name: str
    source: Path
    vectors: int = DEFAULT_EXPORT_VECTORS
    reference: Path | None = None
    targets: tuple[str, ...] | None = None
    weight_bits: int | None = None
    kernel_bits: int | None = None


@dataclass(frozen=True)
class TargetSpec:
    name: str
    variants: tuple[str | None, ...] = (None,)
    options: tuple[tuple[str, str], ...] = ()
    synth: bool = True


@dataclass(frozen=True)
class VectorSet:
    name: str
    count: int | None = None


@dataclass(frozen=True)
class Suite:
    path: Path
    models: tuple[ModelSpec, ...]
    targets: tuple[TargetSpec, ...]
    vector_sets: tuple[VectorSet, ...]
    cache: Path
    jobs: int = 1


@dataclass(frozen=True)
class Case:
    model: ModelSpec
    target: TargetSpec
    variant: str | None
    vset: VectorSet

    @property
    def suite_name(self) -> str:
        """The JUnit testsuite: model/target."""
        return f"{self.model.name}/{self.target.name}"

    @property
    def name(self) -> str:
        """The JUnit testcase: variant/vector set."""
        return f"{self.variant or 'default'}/{self.vset.name}"

    @property
    def id(self) -> str:
        return f"{self.suite_name}/{self.name}"


@dataclass
class Unit:
    """Cases sharing one export and one variant (run in order, in one build folder)."""

    cache: Path
    cases: list[Case] = field(default_factory=list)


# ----------------------------------------------------------------------------- suite file


def load_suite(path: str | Path, *, cache: Path | None = None, jobs: int | None = None
               ) -> Suite:
    """Read and check SUITE.toml (paths relative to its folder); raises SuiteError."""
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text())
    except OSError as exc:
        raise SuiteError(f"{path}: cannot read ({exc.strerror})") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise SuiteError(f"{path}: not valid TOML ({exc})") from None
    where = str(path)
    _keys(data, SUITE_KEYS, where)
    base = path.parent
    models = tuple(_model(m, base, f"{where}: model[{i}]")
                   for i, m in enumerate(_tables(data, "model", where)))
    target_specs = tuple(_target(t, f"{where}: target[{i}]")
                         for i, t in enumerate(_tables(data, "target", where)))
    vsets = tuple(_vector_set(v, f"{where}: vectors[{i}]")
                  for i, v in enumerate(data.get("vectors", [{"name": "all"}])))
    for what, items in (("model", models), ("target", target_specs), ("vectors", vsets)):
        names = [item.name for item in items]
        if not items:
            raise SuiteError(f"{where}: no [[{what}]] entries")
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise SuiteError(f"{where}: [[{what}]] names must be unique; repeated: {dupes}")
    known = {t.name for t in target_specs}
    for m in models:
        unknown = sorted(set(m.targets or ()) - known)
        if unknown:
            raise SuiteError(f"{where}: model {m.name!r}: targets {unknown} have no [[target]]")
    cache_dir = cache or (base / data["cache"] if "cache" in data else cache_home() / "regress")
    jobs = jobs if jobs is not None else _int(data.get("jobs", 1), f"{where}: jobs", 1, 256)
    return Suite(path, models, target_specs, vsets, Path(cache_dir).absolute(), jobs)


def _keys(table: dict, allowed: set[str], where: str) -> None:
    if not isinstance(table, dict):
        raise SuiteError(f"{where}: expected a table")
    unknown = sorted(set(table) - allowed)
    if unknown:
        raise SuiteError(f"{where}: unknown keys {unknown}; expected some of {sorted(allowed)}")


def _tables(data: dict, key: str, where: str) -> list[dict]:
    items = data.get(key, [])
    if not isinstance(items, list):
        raise SuiteError(f"{where}: '{key}' must be an array of tables ([[{key}]])")
    return items


def _str(value, where: str) -> str:
    if not isinstance(value, str) or not value:
        raise SuiteError(f"{where}: expected a non-empty string, got {value!r}")
    return value


def _int(value, where: str, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise SuiteError(f"{where}: expected an integer in {low}..{high}, got {value!r}")
    return value


def _name(value, where: str) -> str:
    name = _str(value, where)
    if not all(c.isalnum() or c in "-_." for c in name):
        raise SuiteError(f"{where}: {name!r} may hold only letters, digits, '-', '_', '.'")
    return name


def _str_list(value, where: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not value:
        raise SuiteError(f"{where}: expected a non-empty list of strings, got {value!r}")
    return tuple(_str(v, where) for v in value)


def _model(table: dict, base: Path, where: str) -> ModelSpec:
    _keys(table, MODEL_KEYS, where)
    name = _name(table.get("name"), f"{where}.name")
    source = base / _str(table.get("source"), f"{where}.source")
    if not source.exists():
        raise SuiteError(f"{where}.source: {source} does not exist")
    reference = table.get("reference")
    if reference is not None:
        reference = base / _str(reference, f"{where}.reference")
        if not reference.is_file():
            raise SuiteError(f"{where}.reference: {reference} is not a file")
    targets = table.get("targets")
    bits = {key: _int(table[key], f"{where}.{key}", 2, 16) for key in ("weight_bits",
                                                                       "kernel_bits")
            if key in table}
    return ModelSpec(name, source,
                     _int(table.get("vectors", DEFAULT_EXPORT_VECTORS), f"{where}.vectors",
                          1, 100_000), reference,
                     None if targets is None else _str_list(targets, f"{where}.targets"),
                     **bits)


def _target(table: dict, where: str) -> TargetSpec:
    _keys(table, TARGET_KEYS, where)
    name = _str(table.get("name"), f"{where}.name")
    if name not in TARGETS:
        raise SuiteError(f"{where}.name: unknown target {name!r}; expected one of {TARGETS}")
    variants: tuple[str | None, ...] = (None,)
    for key, target in (("sims", "fpga"), ("boards", "mcu")):
        if key in table:
            if name != target:
                raise SuiteError(f"{where}.{key}: only the {target} target has {key}")
            variants = _str_list(table[key], f"{where}.{key}")
    options = table.get("options", {})
    if not isinstance(options, dict):
        raise SuiteError(f"{where}.options: expected a table of target options")
    synth = table.get("synth", True)
    if not isinstance(synth, bool):
        raise SuiteError(f"{where}.synth: expected true or false, got {synth!r}")
    return TargetSpec(name, variants, tuple(sorted((str(k), str(v)) for k, v in
                                                   options.items())), synth)


def _vector_set(table: dict, where: str) -> VectorSet:
    _keys(table, VECTOR_KEYS, where)
    count = table.get("count")
    return VectorSet(_name(table.get("name"), f"{where}.name"),
                     None if count is None else _int(count, f"{where}.count", 1, 10**9))


def cases(suite: Suite) -> list[Case]:
    """Every case of the matrix, in suite order."""
    return [Case(m, t, variant, v) for m in suite.models for t in suite.targets
            if m.targets is None or t.name in m.targets
            for variant in t.variants for v in suite.vector_sets]


# ----------------------------------------------------------------------------- running


def export_key(model: ModelSpec, target: TargetSpec) -> str:
    """The cache key of an export: source content, target, options, vectors, widths, SDK."""
    h = hashlib.sha256()
    source = model.source
    files = [source] if source.is_file() else [source / "config.json",
                                               source / "model.safetensors"]
    for f in files:
        h.update(f.name.encode() + b"\0")
        h.update(f.read_bytes() if f.is_file() else b"<missing>")
    h.update(json.dumps([target.name, target.options, model.vectors, model.weight_bits,
                         model.kernel_bits, __version__]).encode())
    return f"{model.name}-{target.name}-{h.hexdigest()[:16]}"


def ensure_export(model: ModelSpec, target: TargetSpec, cache: Path) -> Path:
    """The cached export of (model, target), made (once, under a lock) when missing."""
    out = cache / "exports" / export_key(model, target)
    if (out / export_cli.EXPORT_FILE).is_file():
        return out
    with outdir.locked(out.with_name(out.name + ".prepare"), what="cache"):
        if (out / export_cli.EXPORT_FILE).is_file():
            return out
        argv = [str(model.source), "--target", target.name, "-o", str(out), "--force",
                "--vectors", str(model.vectors)]
        for key, value in (("weight-bits", model.weight_bits), ("kernel-bits",
                                                                model.kernel_bits)):
            if value is not None:
                argv += [f"--{key}", str(value)]
        for key, value in target.options:
            argv += ["--option", f"{key}={value}"]
        export_cli.export(export_cli.parser().parse_args(argv))
    return out


def run_case(case: Case, out: Path, build_dir: Path) -> dict:
    """Verify one case on its export; returns the case's result dict (never raises for a
    failure of the case itself)."""
    from ttfs.codegen import verify_cli

    variant = {VARIANT_KEY[case.target.name]: case.variant} if case.variant else {}
    start = time.perf_counter()
    try:
        report, data, _ = verify_cli.run_verify(
            out, build_dir=build_dir, progress=False, vectors=case.vset.count,
            synth=case.target.synth, extra=_reference_check(case), **variant)
    except BaseException as exc:  # noqa: BLE001 -- every failure becomes the case's result
        if isinstance(exc, KeyboardInterrupt):
            raise
        return failed_case(case, exc, seconds=time.perf_counter() - start, out=out)
    return result_dict(case, data, report, out=out, seconds=time.perf_counter() - start)


def _reference_check(case: Case):
    """For the golden target of a model with a `reference`: a callback adding the case
    'reference' (the golden trace on the baseline's inputs against the baseline)."""
    if case.target.name != "golden" or case.model.reference is None:
        return None

    def check(report: Report, out: Path) -> None:
        from ttfs.codegen.targets import golden as golden_target, take_vectors
        from ttfs.sdk import ir, vectors

        net = ir.load(out / "model.ttfs")
        baseline = take_vectors(vectors.load(case.model.reference), case.vset.count)
        golden_target.compare(net, baseline, report, "reference")

    return check


def result_dict(case: Case, data: dict, report: Report, *, out: Path, seconds: float) -> dict:
    exit_code = EXIT_OK if report.ok else EXIT_MISMATCH
    message = report.first_mismatch or ""
    if report.first_divergence and not message:
        message = format_divergence(report.first_divergence)
    return _base(case, out) | {
        "status": report.status, "exit": exit_code, "message": message if not report.ok
        else "", "error_type": "DesignError" if report.status == "error" else None,
        "first_divergence": report.first_divergence if not report.ok else None,
        "passed": report.passed, "failed": report.failed, "errors": report.errors,
        "tools": report.tools, "timings": data.get("timings", {}), "seconds": round(seconds, 3),
        "model_hash": data.get("model_hash"), "build_dir": data.get("build_dir"),
        "output": "\n".join(report.lines)}


def failed_case(case: Case, exc: BaseException, *, seconds: float = 0.0,
                out: Path | None = None) -> dict:
    """The result of a case that raised: status/exit from the exception's kind."""
    status, code = classify(exc)
    output = "" if status != "error" or code != EXIT_USAGE or _is_expected(exc) else (
        "".join(traceback.format_exception(exc)))
    return _base(case, out) | {
        "status": status, "exit": code, "message": " ".join(str(exc).split()) or
        type(exc).__name__, "error_type": type(exc).__name__, "first_divergence": None,
        "passed": 0, "failed": 0, "errors": 1, "tools": {}, "timings": {},
        "seconds": round(seconds, 3), "model_hash": _model_hash(out), "build_dir": None,
        "output": output}


def classify(exc: BaseException) -> tuple[str, int]:
    """(status, exit code) of an exception: see the module docstring."""
    if isinstance(exc, DesignError):
        return "error", EXIT_MISMATCH
    if isinstance(exc, tools.ToolMissing) or (isinstance(exc, ModuleNotFoundError)
                                              and tools.is_optional_module(exc.name)):
        return "missing", EXIT_MISSING
    return "error", EXIT_USAGE


def _is_expected(exc: BaseException) -> bool:
    return isinstance(exc, export_cli.USER_ERRORS + (SuiteError,))


def _base(case: Case, out: Path | None) -> dict:
    return {"id": case.id, "suite": case.suite_name, "name": case.name,
            "model": case.model.name, "source": str(case.model.source),
            "target": case.target.name, "variant": case.variant, "vectors": case.vset.name,
            "vector_count": case.vset.count, "export": None if out is None else str(out)}


def _model_hash(out: Path | None) -> str | None:
    try:
        return json.loads((out / export_cli.EXPORT_FILE).read_text()).get("ir_hash")
    except (OSError, ValueError, TypeError):
        return None


def run_unit(unit: Unit) -> list[dict]:
    """Export (cached) and run the unit's cases in order; one result dict per case."""
    first = unit.cases[0]
    try:
        out = ensure_export(first.model, first.target, unit.cache)
    except BaseException as exc:  # noqa: BLE001 -- the export's failure is every case's
        if isinstance(exc, KeyboardInterrupt):
            raise
        if isinstance(exc, ModuleNotFoundError) and tools.is_optional_module(exc.name):
            exc = tools.missing_extra(exc.name, f"exporting {first.model.name} to "
                                                f"{first.target.name}")
        return [failed_case(case, exc) for case in unit.cases]
    build = (unit.cache / "builds" / out.name / (first.variant or "default"))
    return [run_case(case, out, build) for case in unit.cases]


def units(suite: Suite, selected: Iterable[Case]) -> list[Unit]:
    """Group cases by (model, target, variant), keeping suite order."""
    groups: dict[tuple, Unit] = {}
    for case in selected:
        key = (case.model.name, case.target.name, case.variant)
        groups.setdefault(key, Unit(suite.cache)).cases.append(case)
    return list(groups.values())


def run_suite(suite: Suite, selected: list[Case], *, jobs: int = 1,
              progress: bool = False) -> list[dict]:
    """Run the selected cases (in worker processes when jobs > 1); results in case order."""
    work = units(suite, selected)
    results: list[dict] = []
    bar = _progress(len(selected), progress)
    if jobs <= 1 or len(work) <= 1:
        for unit in work:
            for result in run_unit(unit):
                results.append(result)
                bar.update(1)
    else:
        for key in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
            os.environ.setdefault(key, "1")     # the workers' BLAS: one thread each
        with ProcessPoolExecutor(max_workers=jobs,
                                 mp_context=multiprocessing.get_context("spawn")) as pool:
            futures = {pool.submit(run_unit, unit): unit for unit in work}
            for future in as_completed(futures):
                try:
                    batch = future.result()
                except Exception as exc:   # noqa: BLE001 -- a worker died (killed, out of memory)
                    batch = [failed_case(case, RuntimeError(f"worker process failed: {exc!r}"))
                             for case in futures[future].cases]
                results.extend(batch)
                bar.update(len(batch))
    bar.close()
    order = {case.id: i for i, case in enumerate(selected)}
    return sorted(results, key=lambda r: order[r["id"]])


def _progress(total: int, enabled: bool):
    from tqdm import tqdm

    return tqdm(total=total, desc="ttfs-regress", unit="case", disable=not enabled,
                file=sys.stderr)


def suite_exit(results: list[dict]) -> int:
    """1 if any case failed or a design broke, else 2 for bad input or a tool error, else 3
    for a missing tool, else 0."""
    codes = {r["exit"] for r in results}
    for code in (EXIT_MISMATCH, EXIT_USAGE, EXIT_MISSING):
        if code in codes:
            return code
    return EXIT_OK


# ----------------------------------------------------------------------------- outputs


def junit_tree(results: list[dict], *, name: str = "ttfs-regress") -> ET.ElementTree:
    """JUnit XML: <testsuites> with one <testsuite> per result "suite" (model/target) and one
    <testcase> per result; status fail -> <failure>, error/missing -> <error>."""
    root = ET.Element("testsuites", name=name)
    suites: dict[str, ET.Element] = {}
    totals = {"tests": 0, "failures": 0, "errors": 0, "time": 0.0}
    for r in results:
        suite = suites.get(r["suite"])
        if suite is None:
            suite = suites[r["suite"]] = ET.SubElement(root, "testsuite", name=r["suite"])
            suite.attrib.update(tests="0", failures="0", errors="0", skipped="0", time="0")
        classname = "ttfs." + r["suite"].replace("/", ".")
        case = ET.SubElement(suite, "testcase", classname=classname, name=r["name"],
                             time=f"{r.get('seconds', 0.0):.3f}")
        kind = {"fail": ("failure", "failures"), "error": ("error", "errors"),
                "missing": ("error", "errors")}.get(r["status"])
        if kind:
            element = ET.SubElement(case, kind[0], message=r["message"] or r["status"],
                                    type=r.get("error_type") or "mismatch")
            element.text = _details(r)
            _bump(suite, kind[1])
            totals[kind[1]] += 1
        if r.get("output"):
            ET.SubElement(case, "system-out").text = r["output"]
        _bump(suite, "tests")
        suite.set("time", f"{float(suite.get('time')) + r.get('seconds', 0.0):.3f}")
        totals["tests"] += 1
        totals["time"] += r.get("seconds", 0.0)
    root.attrib.update(tests=str(totals["tests"]), failures=str(totals["failures"]),
                       errors=str(totals["errors"]), time=f"{totals['time']:.3f}")
    ET.indent(root)
    return ET.ElementTree(root)


def _bump(element: ET.Element, key: str) -> None:
    element.set(key, str(int(element.get(key, "0")) + 1))


def _details(r: dict) -> str:
    lines = [r["message"] or r["status"]]
    if r.get("first_divergence"):
        lines.append("first divergence: " + json.dumps(r["first_divergence"], sort_keys=True))
    lines.append(f"passed {r.get('passed', 0)}, failed {r.get('failed', 0)}; model hash "
                 f"{r.get('model_hash')}; export {r.get('export')}")
    return "\n".join(lines)


def write_junit(path: Path, results: list[dict], *, name: str = "ttfs-regress") -> None:
    """Write `junit_tree(results)` to `path` (UTF-8, with an XML declaration)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    junit_tree(results, name=name).write(tmp, encoding="utf-8", xml_declaration=True)
    tmp.replace(path)


def summary(results: list[dict]) -> dict:
    counts = {s: sum(r["status"] == s for r in results) for s in ("pass", "fail", "error",
                                                                   "missing")}
    return {"cases": len(results), **counts, "exit": suite_exit(results)}


def table(results: list[dict]) -> str:
    """The short stdout table: one row per case, then the totals."""
    rows = [("case", "status", "passed", "failed", "seconds", "note")]
    for r in results:
        note = r["message"] if r["status"] != "pass" else ""
        rows.append((r["id"], r["status"].upper() if r["status"] != "pass" else "pass",
                     str(r["passed"]), str(r["failed"]), f"{r['seconds']:.1f}",
                     note if len(note) <= 100 else note[:97] + "..."))
    widths = [max(len(row[i]) for row in rows) for i in range(5)]
    lines = ["  ".join([row[0].ljust(widths[0]), row[1].ljust(widths[1]),
                        *(row[i].rjust(widths[i]) for i in (2, 3, 4)), row[5]]).rstrip()
             for row in rows]
    s = summary(results)
    lines.append(f"{s['cases']} cases: {s['pass']} pass, {s['fail']} fail, {s['error']} error, "
                 f"{s['missing']} missing tool -> exit {s['exit']}")
    return "\n".join(lines)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="ttfs-regress", formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Run a regression matrix (models x targets x simulators/boards x vector "
                    "sets) from SUITE.toml; see docs/regress.md for the format.",
        epilog="""examples:
  ttfs-regress ci/suite.toml --jobs 2 --junit results.xml --json results.json
      every case, two worker processes; JUnit XML for the CI's test-report view
  ttfs-regress ci/suite.toml --only 'mlp/fpga/*'
      the fpga cases of model mlp only
  ttfs-regress ci/suite.toml --list
      print the case ids and exit

exit status: 0 all pass, 1 a mismatch or a broken generated design, 2 bad input (the suite,
a model a target refuses) or a failing tool, 3 a missing tool or Python extra""")
    p.add_argument("suite", type=Path, help="the suite file (TOML)")
    p.add_argument("-j", "--jobs", type=int, default=None,
                   help="parallel worker processes (default: the suite's 'jobs', else 1)")
    p.add_argument("--junit", type=Path, metavar="FILE", help="write JUnit XML to FILE")
    p.add_argument("--json", type=Path, metavar="FILE", help="write per-case JSON to FILE")
    p.add_argument("--cache", type=Path, metavar="DIR",
                   help="exports and builds (default: the suite's 'cache', else "
                        "$XDG_CACHE_HOME/ttfs-sdk/regress)")
    p.add_argument("--only", action="append", default=[], metavar="GLOB",
                   help="run only cases whose id (model/target/variant/vectors) matches")
    p.add_argument("--list", action="store_true", help="print the case ids and exit")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    return p


def select(all_cases: list[Case], patterns: list[str]) -> list[Case]:
    if not patterns:
        return all_cases
    chosen = [c for c in all_cases if any(fnmatch.fnmatchcase(c.id, p) for p in patterns)]
    if not chosen:
        raise SuiteError(f"--only {' '.join(patterns)}: matches none of the {len(all_cases)} "
                         "cases (see --list)")
    return chosen


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if args.jobs is not None and args.jobs < 1:
        print(f"error: --jobs: expected N >= 1, got {args.jobs}", file=sys.stderr)
        return EXIT_USAGE
    try:
        suite = load_suite(args.suite, cache=args.cache, jobs=args.jobs)
        chosen = select(cases(suite), args.only)
    except SuiteError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    if args.list:
        print("\n".join(case.id for case in chosen))
        return EXIT_OK
    start = time.perf_counter()
    results = run_suite(suite, chosen, jobs=suite.jobs, progress=not args.quiet)
    print(table(results))
    if args.junit:
        write_junit(args.junit, results)
    if args.json:
        from ttfs.codegen.verify_cli import write_json

        write_json(args.json, {"suite": str(suite.path), "generator": f"ttfs-sdk {__version__}",
                               "seconds": round(time.perf_counter() - start, 3),
                               "summary": summary(results), "cases": results})
    return suite_exit(results)


if __name__ == "__main__":
    sys.exit(main())
