"""FPGA target, checks of an exported folder: Verilator lint, cocotb simulation on Verilator and
Icarus (every vector bit-exact, cycles equal to the model), Yosys synthesis, and `verify`.

Nothing is written into the export folder: build products, logs and result files go to the
build folder (`ttfs.codegen.targets.resolve_build_dir`).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

from ttfs.codegen import tools
from ttfs.codegen.targets import (DesignError, ExportError, Report, check_vector_count,
                             reject_options, resolve_build_dir)

SIMULATORS = ("verilator", "icarus")
SIM_TOOL = {"verilator": "verilator", "icarus": "iverilog"}
#: iCE40 UP5K resources (logic cells, 4 kbit block RAMs, DSPs) for the fit check.
UP5K = {"lut": 5280, "ram": 30, "dsp": 8}
UP5K_RAM_BITS = 4096


def design(out: Path) -> dict:
    """OUT/tb/design.json (ExportError when OUT is not an FPGA export)."""
    path = Path(out) / "tb" / "design.json"
    if not path.exists():
        raise ExportError(f"fpga: {path} not found; is {out} an FPGA export?")
    return json.loads(path.read_text())


def lint(out: Path) -> str:
    """`verilator --lint-only -Wall` on the exported RTL; DesignError with the log."""
    d = design(out)
    cmd = [tools.require_tool("verilator"), "--lint-only", "-Wall", "--top-module", d["top"],
           *d["sources"]]
    res = subprocess.run(cmd, cwd=Path(out) / "rtl", env=tools.tool_env(), capture_output=True,
                         text=True)
    if res.returncode != 0:
        raise DesignError(f"fpga: verilator lint failed:\n{res.stderr.strip()}")
    return "clean"


def simulate(out: Path, sim: str = "verilator", **kwargs) -> dict:
    """Run the exported cocotb bench (see `hdl_templates/tb/run.py:run`) and return its result."""
    from ttfs.hdl_templates.tb import run as tb_run

    tools.require_tool(SIM_TOOL[sim])
    return tb_run.run(Path(out), sim=sim, env=tools.tool_env(), **kwargs)


def yosys_check(out: Path, yosys: str = "yosys") -> str:
    """Parse and elaborate the exported RTL with Yosys (`read_verilog -sv -defer`, hierarchy,
    proc, `check -assert`): the subset check, seconds instead of a full synthesis."""
    d = design(out)
    rtl = (Path(out) / "rtl").resolve()
    sources = " ".join(d["sources"])
    script = (f"read_verilog -sv -defer {sources}; hierarchy -check -top {d['top']}; proc; "
              "opt_clean; check -assert")
    exe = tools.find_tool(yosys) or shutil.which(yosys, path=str(Path(sys.executable).parent))
    if exe is None:
        tools.require_tool(yosys)
    res = subprocess.run([exe, "-q", "-p", script], cwd=rtl, capture_output=True, text=True)
    if res.returncode != 0:
        log = (res.stderr or res.stdout)[-2000:]
        raise DesignError(f"fpga: {yosys} rejected the design:\n{log}")
    return "clean"


def synthesize(out: Path, *, build_dir: Path | None = None, pnr: bool = True,
               timeout: int = 600) -> dict:
    """Yosys resources, and the nextpnr-ice40 fmax where the design fits an iCE40 UP5K.

    `generic`: `synth -flatten` with the weight ROMs kept as memories (their bits reported as
    `rom_bits`) and everything else mapped to 4-input LUTs and flip-flops. `ice40`:
    `synth_ice40` of the narrow-I/O shell, skipped when the weight ROMs alone exceed the UP5K's
    block RAM; then nextpnr-ice40 (UP5K, sg48, seed 1) if it fits. The synthesis reads the
    .mem files from OUT/rtl (MemPath) and writes only into `build_dir`.
    """
    import tempfile

    d = design(out)
    rtl = (Path(out) / "rtl").resolve()
    yosys = tools.require_tool("yosys")
    sources = " ".join(str(rtl / s) for s in d["sources"])
    result: dict = {}
    work = Path(build_dir) if build_dir else Path(tempfile.mkdtemp(prefix="ttfs-yosys-"))
    work.mkdir(parents=True, exist_ok=True)
    mem_path = f'"{rtl}/"'
    stat = work / "generic.json"
    script = (f"read_verilog -sv -defer {sources}; chparam -set MemPath {mem_path} {d['top']}; "
              f"synth -flatten -top {d['top']} -run begin:fine; "
              "memory_map t:$mem_v2 r:MEMID=*weight_rom %d; opt -fast -full; techmap; "
              f"opt -fast; abc -lut 4; opt -fast; tee -q -o {stat} stat -json")
    _run([yosys, "-q", "-p", script], work, timeout)
    cells = _cells(stat)
    result["generic"] = {
        "lut": cells.get("$lut", 0),
        "ff": sum(v for k, v in cells.items() if "DFF" in k.upper()),
        "ram": cells.get("$mem_v2", 0),
        "rom_bits": d["rom_bits"],
        "dsp": 0,
    }
    if d["rom_bits"] > UP5K["ram"] * UP5K_RAM_BITS:
        result["ice40"] = {"skipped": f"weight ROMs of {d['rom_bits']} bits exceed the UP5K's "
                                      f"{UP5K['ram']} x {UP5K_RAM_BITS}-bit block RAMs"}
        return result
    top = f"{d['name']}_pnr"
    stat, netlist = work / "ice40.json", work / "ice40_netlist.json"
    script = (f"read_verilog -sv -defer {sources} {rtl / 'ttfs_pnr_io.sv'} {rtl / top}.sv; "
              f"chparam -set MemPath {mem_path} {top}; "
              f"synth_ice40 -dsp -top {top} -json {netlist}; tee -q -o {stat} stat -json")
    _run([yosys, "-q", "-p", script], work, timeout)
    cells = _cells(stat)
    ice = {
        "lut": cells.get("SB_LUT4", 0),
        "ff": sum(v for k, v in cells.items() if k.startswith("SB_DFF")),
        "ram": cells.get("SB_RAM40_4K", 0),
        "dsp": cells.get("SB_MAC16", 0),
        "carry": cells.get("SB_CARRY", 0),
    }
    ice["fits_up5k"] = all(ice[k] <= UP5K[k] for k in UP5K)
    result["ice40"] = ice
    nextpnr = tools.find_tool("nextpnr-ice40")
    if pnr and nextpnr and ice["fits_up5k"]:
        report = work / "pnr.json"
        res = subprocess.run([nextpnr, "--up5k", "--package", "sg48", "--json", str(netlist),
                              "--report", str(report), "--seed", "1", "--freq", "12"],
                             cwd=work, capture_output=True, text=True, timeout=timeout)
        if res.returncode == 0:
            fmax = json.loads(report.read_text()).get("fmax", {})
            result["fmax_mhz"] = round(min(v["achieved"] for v in fmax.values()), 2)
        else:
            result["pnr_error"] = res.stderr.strip().splitlines()[-3:]
    return result


def _run(cmd: list[str], cwd: Path, timeout: int) -> None:
    res = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=timeout)
    if res.returncode != 0:
        raise DesignError(f"fpga: {Path(cmd[0]).name} failed:\n"
                          f"{(res.stderr or res.stdout)[-2000:]}")


def _cells(stat_file: Path) -> dict:
    data = json.loads(stat_file.read_text())
    return {k: int(v) for k, v in data["design"]["num_cells_by_type"].items()}


def resource_table(synth: dict) -> list[str]:
    """The Yosys resources and fmax of `synthesize` as Markdown table lines."""
    gen, ice = synth["generic"], synth["ice40"]
    lines = ["| flow | LUT | FF | RAM | DSP | fmax MHz |", "|---|---|---|---|---|---|",
             f"| yosys generic (LUT4, ROMs kept) | {gen['lut']} | {gen['ff']} | "
             f"{gen['ram']} ROM(s), {gen['rom_bits']} bits | 0 | - |"]
    if "skipped" in ice:
        lines.append(f"| ice40 UP5K | skipped: {ice['skipped']} | | | | |")
    else:
        fmax = synth.get("fmax_mhz", "-" if ice["fits_up5k"] else "no fit")
        lines.append(f"| ice40 UP5K (synth_ice40) | {ice['lut']} | {ice['ff']} | {ice['ram']} "
                     f"SB_RAM40_4K | {ice['dsp']} | {fmax} |")
    return lines


def _export_options(out: Path) -> dict:
    path = Path(out) / "export.json"
    return json.loads(path.read_text()).get("options", {}) if path.exists() else {}


def verify(out: Path, *, progress: bool = True, build_dir: Path | None = None,
           sim: str | None = None, board: str | None = None, vectors: int | None = None,
           synth: bool = True) -> Report:
    """Lint, simulate the golden vectors, synthesize (the verify interface of ttfs.codegen.targets).

    `sim`: "verilator", "icarus" or "both" (None: the export's `sim` option, else Verilator);
    `vectors`: only the first N; `synth`: Yosys (and nextpnr where the design fits) only when
    True and the export's option `synth` is not "0". A mismatch is a failed case naming the
    first sample, layer and neuron; a lint failure or a simulator crash an "error" case.
    """
    reject_options("fpga", board=board)
    check_vector_count(vectors)
    out = Path(out)
    d = design(out)
    options = _export_options(out)
    sim = sim or options.get("sim", "verilator")
    sims = SIMULATORS if sim == "both" else (sim,)
    if any(s not in SIMULATORS for s in sims):
        raise ExportError(f"--sim: unknown simulator {sim!r}; expected one of "
                          f"{SIMULATORS + ('both',)}")
    build = resolve_build_dir(out, build_dir)
    report = Report(target="fpga")
    report.data["dense_cycles"] = d["dense_cycles"]
    try:
        with report.timed("lint"):
            report.data["lint"] = lint(out)
        report.tools["verilator"] = tools.tool_version("verilator")
        report.add_case("lint", "pass", count=False)
    except DesignError as exc:
        report.add_case("lint", "error", message=str(exc).splitlines()[0], count=False)
        report.lines.append(str(exc))
    for s in sims:
        if progress:
            print(f"fpga: simulating {d['top']} on {s} (logs in {build}) ...", flush=True)
        try:
            with report.timed(s):
                res = simulate(out, s, build_dir=build, limit=vectors or 0, quiet=True)
        except RuntimeError as exc:
            report.add_case(s, "error", message=str(exc))
            continue
        exact = res["exact_pass_mismatches"]   # the stress pass repeats the first vectors
        failed = exact + int(res["mismatches"] > exact) + int(not res["cycles_predicted_ok"])
        message = res["first_mismatch"] or (None if res["cycles_predicted_ok"] else
                                            f"cycle model: {res['cycles_first_wrong']}")
        report.add_case(s, "pass" if failed == 0 else "fail", passed=res["vectors"] - exact,
                        failed=failed, message=message or "",
                        first_divergence=res.get("first_divergence"))
        report.data[s] = {k: res[k] for k in ("vectors", "mismatches", "cycles_mean",
                                              "cycles_max", "cycles_predicted_ok")}
        report.lines.append(f"{s}: {res['vectors']} vectors, {res['mismatches']} mismatches; "
                            f"cycles/inference mean {res['cycles_mean']:.1f}, max "
                            f"{res['cycles_max']} (dense schedule {d['dense_cycles']}), "
                            f"prediction {'exact' if res['cycles_predicted_ok'] else 'WRONG'}")
    report.tools[sims[-1] if sims[-1] != "icarus" else "iverilog"] = \
        tools.tool_version(SIM_TOOL[sims[-1]], *(("-V",) if sims[-1] == "icarus" else ()))
    if not synth or str(options.get("synth", "1")) == "0":
        report.lines.append("yosys: skipped (synth off)")
        return report
    device = options.get("device")
    if progress:
        print(f"fpga: synthesizing ({'place and route on ' + device if device else 'yosys'}) ...",
              flush=True)
    try:
        with report.timed("synth"):
            if device:
                implement(out, device, build / "flow", report)
            else:
                report.data["synth"] = synthesize(out, build_dir=build / "yosys")
                report.tools["yosys"] = tools.tool_version("yosys", "-V")
                report.lines.extend(resource_table(report.data["synth"]))
        report.add_case("synth", "pass", count=False)
    except DesignError as exc:
        report.add_case("synth", "error", message=str(exc).splitlines()[0], count=False)
        report.lines.append(str(exc))
    return report


def implement(out: Path, device: str, build: Path, report: Report) -> None:
    """Place and route the exported top on `device` with `ttfs.codegen.fpga_flow` (best of seeds
    1, 2); records resources vs capacity, fmax and latency = cycles / fmax in `report`."""
    from ttfs.codegen import fpga_flow

    d = design(out)
    rtl = Path(out) / "rtl"
    try:
        impl = fpga_flow.implement([rtl / s for s in d["sources"]], d["top"], device, build)
    except fpga_flow.FlowError as exc:
        raise DesignError(f"fpga: {exc}") from None
    data = impl.as_dict()
    cycles = d["predicted_cycles"]
    mean, worst = sum(cycles) / len(cycles), max(cycles)
    if impl.fmax_mhz:
        data["latency_us"] = {"mean": round(mean / impl.fmax_mhz, 3),
                              "max": round(worst / impl.fmax_mhz, 3)}
    report.data["implementation"] = data
    report.tools.update(impl.tools)
    report.lines.append(impl.summary())
    if impl.fmax_mhz:
        report.lines.append(f"latency at {impl.fmax_mhz:.1f} MHz: mean {mean / impl.fmax_mhz:.2f}"
                            f" us, max {worst / impl.fmax_mhz:.2f} us ({mean:.1f} / {worst} "
                            "cycles)")
    if not impl.fits:
        report.add_case("fit", "fail", failed=1,
                        message=f"does not fit {device}: {', '.join(impl.overflow)}; try a "
                                "smaller num_pe or a larger device")
