"""FPGA target: Verilog spike-time processing elements, `.mem` weight images, cocotb testbench.

The hand-written RTL (`hdl_templates/rtl/ttfs_*.sv`) holds the logic; this module computes one
view-model per network (`plan`): the layer chain, every width, the ROM images, and the cycle
model, and renders `<name>_top.sv` which only instantiates and wires the engines.

Architecture (one inference at a time, event-driven, see docs/fpga.md):

- `ttfs_input`: the image arrives as beats of `lanes` bytes; every pixel that spikes (byte != 0
  under `real` coding, input_times[byte] < T under `ttfs`) becomes one event; silent pixels cost
  nothing beyond one cycle for a beat without any event.
- `ttfs_layer` per dense layer: `num_pe` PEs share the layer's neurons (neuron j on PE j mod P,
  slot j div P). An input event costs `slots` = ceil(n / P) cycles (one MAC per PE and cycle);
  then the fire scan visits every (slot, t), emitting the neurons that first reach Theta[t].
- `ttfs_output_layer`: integrates like a layer, reads out the scores and the first argmax.

Cycle model (exact with no input gaps and no output back-pressure; `predict_cycles`): a producer
group (an input beat, or one (slot, t) step of a fire scan) with e events costs e * C cycles,
where C is the consumer's slots, and 1 cycle when e = 0; every layer adds MARKER_CYCLES for its
input's end marker (the integrator pipeline drains), every hidden layer one cycle to fill its
fire-scan pipeline, and the output layer its `slots` readout cycles and `neurons` argmax cycles.

Options (`ExportContext.options`; ints may be decimal strings from `--option KEY=VALUE`):
`num_pe` (PEs per layer, capped at the layer's neurons; "all" = one PE per neuron; default 8),
`lanes` (input bytes per beat, default 8), `acc_bits` (one accumulator width for every layer, at
least the width the IR needs; default: per layer the minimum from `Network.info`); for `verify`:
`sim` (verilator or icarus, default verilator) and `synth` ("0" skips Yosys).
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import tempfile
from dataclasses import asdict, dataclass
from importlib import resources
from pathlib import Path

import numpy as np

from codegen import tools
from codegen.jinja_env import render
from codegen.targets import ExportContext, ExportError, Report
from sdk import vectors as vectors_mod
from sdk.ir import Dense, Flatten, Network, Output, TTFSFormatError, check_identifier

RTL_MODULES = ("ttfs_event_arbiter", "ttfs_input", "ttfs_pe", "ttfs_integrator", "ttfs_layer",
               "ttfs_output_layer", "ttfs_pnr_io")
TB_FILES = ("ttfs_tb.py", "run.py")
SIMULATORS = ("verilator", "icarus")
DEFAULT_NUM_PE = 8
DEFAULT_LANES = 8
#: Cycles from taking an end marker to the integrator's done (three pipeline stages and the
#: registered membrane read).
MARKER_CYCLES = 4
#: iCE40 UP5K resources (logic cells, 4 kbit block RAMs, DSPs) for the fit check.
UP5K = {"lut": 5280, "ram": 30, "dsp": 8}
UP5K_RAM_BITS = 4096


def bits_for(value: int) -> int:
    """Width of an unsigned field that holds 0..value (at least 1)."""
    return max(1, int(value).bit_length())


@dataclass(frozen=True)
class LayerPlan:
    """Parameters of one `ttfs_layer` / `ttfs_output_layer` instance (all widths explicit)."""

    name: str
    output: bool
    neurons: int
    num_pe: int
    slots: int
    slot_bits: int
    lane_bits: int
    in_count: int
    idx_bits: int
    addr_bits: int
    code_bits: int
    source: str               # stream feeding this layer: "input" or a hidden layer's name
    use_table: bool
    operand_entries: int
    operand_bits: int
    operand_file: str
    weight_bits: int
    acc_bits: int
    out_idx_bits: int         # hidden: neuron index width; output: class width
    time_bits: int
    weight_file: str
    bias_file: str
    theta_file: str


@dataclass(frozen=True)
class Plan:
    """The whole view-model of one exported design."""

    name: str
    hash: str
    T: int
    coding: str
    pixels: int
    lanes: int
    beats: int
    in_idx_bits: int
    base_bits: int
    min_byte: int
    layers: tuple[LayerPlan, ...]
    mems: dict                # file name -> (width in bits, list of int words)

    @property
    def top(self) -> str:
        return f"{self.name}_top"

    @property
    def lane_bits(self) -> int:
        return bits_for(self.lanes - 1)

    @property
    def out(self) -> LayerPlan:
        return self.layers[-1]


def _option_int(options: dict, key: str, default: int, low: int, high: int) -> int:
    """An int option; a decimal string (from `--option KEY=VALUE`) is accepted too."""
    value = options.get(key, default)
    if isinstance(value, str) and value.isdigit():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ExportError(f"fpga option {key}: expected an int in {low}..{high}, got {value!r}")
    return value


def plan(net: Network, name: str, options: dict | None = None) -> Plan:
    """Check that the FPGA target can hold `net` and compute every parameter and ROM image."""
    options = dict(options or {})
    try:
        check_identifier(name, "--name")
    except TTFSFormatError as exc:
        raise ExportError(f"fpga: {exc} (the name becomes the Verilog module {name}_top)") from None
    for layer in net.layers:
        if not isinstance(layer, (Dense, Flatten, Output)):
            raise ExportError(f"fpga: layer '{layer.name}' ({layer.kind}) is not supported by the "
                              "FPGA target; it supports dense and output layers (flatten passes)")
    num_pe_opt = options.get("num_pe", DEFAULT_NUM_PE)
    if num_pe_opt != "all":
        num_pe_opt = _option_int(options, "num_pe", DEFAULT_NUM_PE, 1, 4096)
    lanes = min(_option_int(options, "lanes", DEFAULT_LANES, 1, 64), net.n_inputs)
    acc_opt = options.get("acc_bits")
    T = net.T
    time_bits = bits_for(T - 1)
    beats = -(-net.n_inputs // lanes)
    in_idx_bits = bits_for(net.n_inputs - 1)
    base_bits = bits_for(beats * lanes)
    if net.input_coding == "real":
        min_byte = 1
        first_table = None
    else:
        fires = np.flatnonzero(net.input_times < T)
        min_byte = int(fires[0]) if len(fires) else 256
        first_table = np.where(net.input_times < T,
                               net.input_kernel[np.minimum(net.input_times, T - 1)], 0)

    mems: dict[str, tuple[int, list[int]]] = {}
    layers: list[LayerPlan] = []
    source, idx_bits, code_bits, table = "input", in_idx_bits, 8, first_table
    table_file = "input_operand.mem" if table is not None else ""
    if table is not None:
        mems[table_file] = (bits_for(int(table.max())), [int(v) for v in table])
    for layer, info in zip(net.layers, net.info):
        if isinstance(layer, Flatten):
            continue
        n, n_in = layer.weight.shape
        num_pe = n if num_pe_opt == "all" else min(num_pe_opt, n)
        slots = -(-n // num_pe)
        acc_bits = info.acc_bits
        if acc_opt is not None:
            acc_bits = _option_int(options, "acc_bits", 0, 2, 64)
            if acc_bits < info.acc_bits:
                raise ExportError(f"fpga: layer '{layer.name}' needs a {info.acc_bits}-bit "
                                  f"accumulator (bound M = {info.acc_bound}), but acc_bits = "
                                  f"{acc_bits} was requested (width overflow)")
        operand_bits = 8 if table is None else bits_for(info.in_max)
        weight = np.zeros((slots * num_pe, n_in), np.int64)
        weight[:n] = layer.weight
        bias = np.zeros(slots * num_pe, np.int64)
        bias[:n] = layer.bias
        prefix = layer.name
        # word (s * n_in + i) holds weight[s * P + p][i] in lane p
        lanes_w = weight.reshape(slots, num_pe, n_in).transpose(0, 2, 1).reshape(-1, num_pe)
        mems[f"{prefix}_weight.mem"] = (num_pe * net.weight_bits,
                                        _pack(lanes_w, net.weight_bits))
        mems[f"{prefix}_bias.mem"] = (num_pe * acc_bits, _pack(bias.reshape(slots, num_pe),
                                                                acc_bits))
        theta_file = ""
        if not isinstance(layer, Output):
            theta_file = f"{prefix}_theta.mem"
            theta = np.minimum(layer.theta.astype(np.int64), info.acc_bound + 1)
            mems[theta_file] = (acc_bits, [int(v) for v in theta])
        layers.append(LayerPlan(
            name=layer.name, output=isinstance(layer, Output), neurons=n, num_pe=num_pe,
            slots=slots, slot_bits=bits_for(slots - 1), lane_bits=bits_for(num_pe - 1),
            in_count=n_in, idx_bits=idx_bits,
            addr_bits=bits_for(n_in * slots - 1),
            code_bits=code_bits, source=source, use_table=table is not None,
            operand_entries=0 if table is None else len(table), operand_bits=operand_bits,
            operand_file=table_file, weight_bits=net.weight_bits, acc_bits=acc_bits,
            out_idx_bits=bits_for(n - 1), time_bits=time_bits,
            weight_file=f"{prefix}_weight.mem", bias_file=f"{prefix}_bias.mem",
            theta_file=theta_file))
        if not isinstance(layer, Output):
            table_file = f"{prefix}_kernel.mem"
            table = layer.kernel
            mems[table_file] = (bits_for(int(table.max())), [int(v) for v in table])
            source, idx_bits, code_bits = layer.name, bits_for(n - 1), time_bits
    return Plan(name=name, hash=net.content_hash, T=T, coding=net.input_coding,
                pixels=net.n_inputs, lanes=lanes, beats=beats, in_idx_bits=in_idx_bits,
                base_bits=base_bits,
                min_byte=min_byte, layers=tuple(layers), mems=mems)


def _pack(lanes: np.ndarray, bits: int) -> list[int]:
    """Rows of lane values -> one word per row, lane p in bits [p*bits, (p+1)*bits)."""
    mask = (1 << bits) - 1
    words = []
    for row in lanes:
        word = 0
        for p, value in enumerate(row):
            word |= (int(value) & mask) << (p * bits)
        words.append(word)
    return words


def predict_cycles(p: Plan, vec: vectors_mod.Vectors) -> np.ndarray:
    """Cycles per inference (busy_o high) with no input gaps and no output back-pressure.

    From the inputs and the golden spike times: sum over producer groups of max(1, e * C),
    plus per layer MARKER_CYCLES for its end marker, plus one fire-scan pipeline fill cycle per
    hidden layer, plus the output readout (slots) and argmax scan (neurons).
    """
    n = len(vec)
    first = p.layers[0]
    padded = np.zeros((n, p.beats * p.lanes), np.int64)
    padded[:, :p.pixels] = vec.inputs >= p.min_byte
    total = _group_cost(padded.reshape(n, p.beats, p.lanes).sum(axis=2), first.slots)
    times = dict(zip(vec.trace.layer_names, vec.trace.times))
    for layer, consumer in zip(p.layers[:-1], p.layers[1:]):
        t = np.full((n, layer.slots * layer.num_pe), p.T, np.int64)
        t[:, :layer.neurons] = times[layer.name].reshape(n, -1)
        t = t.reshape(n, layer.slots, layer.num_pe)
        per_step = np.stack([(t == step).sum(axis=2) for step in range(p.T)], axis=2)
        total += MARKER_CYCLES + 1 + _group_cost(per_step.reshape(n, -1), consumer.slots)
    return total + MARKER_CYCLES + p.out.slots + p.out.neurons


def dense_cycles(p: Plan) -> int:
    """Cycles of a dense (not event-driven) schedule of the same engines: every input of every
    layer costs its consumer's slots, every fire step one cycle (no zero skipping)."""
    total = p.pixels * p.layers[0].slots
    for layer, consumer in zip(p.layers[:-1], p.layers[1:]):
        total += MARKER_CYCLES + 1 + layer.slots * p.T + layer.neurons * consumer.slots
    return total + MARKER_CYCLES + p.out.slots + p.out.neurons


def _group_cost(events: np.ndarray, cost: int) -> np.ndarray:
    return np.where(events > 0, events * cost, 1).sum(axis=1).astype(np.int64)


def build_key(p: Plan) -> str:
    """What determines a simulator build: every parameter, not the ROM contents."""
    view = asdict(p)
    for key in ("mems", "hash"):
        view.pop(key)
    view["rtl"] = {m: _rtl_text(m) for m in RTL_MODULES}
    return hashlib.sha256(json.dumps(view, sort_keys=True).encode()).hexdigest()[:16]


def _rtl_text(module: str) -> str:
    return resources.files("hdl_templates").joinpath(f"rtl/{module}.sv").read_text()


def emit(ctx: ExportContext) -> None:
    """Write rtl/ (hand-written modules, <name>_top.sv, .mem images), tb/ and README.md."""
    p = plan(ctx.net, ctx.name, ctx.options)
    out = Path(ctx.out)
    rtl, tb = out / "rtl", out / "tb"
    rtl.mkdir(parents=True, exist_ok=True)
    tb.mkdir(parents=True, exist_ok=True)
    for module in RTL_MODULES:
        (rtl / f"{module}.sv").write_text(_rtl_text(module))
    view = {"p": p, "layers": p.layers, "hidden": p.layers[:-1], "out": p.out}
    (rtl / f"{p.top}.sv").write_text(render("hdl/top.sv.j2", **view))
    (rtl / f"{p.name}_pnr.sv").write_text(render("hdl/pnr.sv.j2", **view))
    for fname, (width, words) in p.mems.items():
        (rtl / fname).write_text(render("hdl/rom.mem.j2", width=width, words=words, hash=p.hash))
    for fname in TB_FILES:
        text = resources.files("hdl_templates").joinpath(f"tb/{fname}").read_text()
        (tb / fname).write_text(text)
    if not (out / "vectors.npz").exists():
        vectors_mod.save(ctx.vectors, out / "vectors.npz")
    design = {
        "name": p.name, "hash": p.hash, "top": p.top, "build_key": build_key(p),
        "sources": [f"{m}.sv" for m in RTL_MODULES if m != "ttfs_pnr_io"] + [f"{p.top}.sv"],
        "mems": sorted(p.mems), "lanes": p.lanes, "pixels": p.pixels, "T": p.T,
        "acc_bits": p.out.acc_bits, "n_out": p.out.neurons,
        "hidden": [layer.name for layer in p.layers[:-1]],
        "num_pe_total": sum(layer.num_pe for layer in p.layers),
        "predicted_cycles": [int(c) for c in predict_cycles(p, ctx.vectors)],
        "dense_cycles": dense_cycles(p),
        "rom_bits": sum(width * len(words) for fname, (width, words) in p.mems.items()
                        if fname.endswith("_weight.mem")),
    }
    (tb / "design.json").write_text(json.dumps(design, indent=1) + "\n")
    (out / "README.md").write_text(render("hdl/README.md.j2", p=p, design=design,
                                          n_vectors=len(ctx.vectors)))


# ---------------------------------------------------------------- checks (lint, sim, synth)

def lint(out: Path) -> str:
    """`verilator --lint-only -Wall` on the exported RTL; raises ExportError with the log."""
    design = _design(out)
    cmd = [tools.require_tool("verilator"), "--lint-only", "-Wall", "--top-module",
           design["top"], *design["sources"]]
    res = subprocess.run(cmd, cwd=Path(out) / "rtl", env=tools.tool_env(), capture_output=True,
                         text=True)
    if res.returncode != 0:
        raise ExportError(f"fpga: verilator lint failed:\n{res.stderr.strip()}")
    return "clean"


def simulate(out: Path, sim: str = "verilator", **kwargs) -> dict:
    """Run the exported cocotb bench (see `hdl_templates/tb/run.py:run`) and return its result."""
    from hdl_templates.tb import run as tb_run

    tools.require_tool("verilator" if sim == "verilator" else "iverilog")
    env = tools.tool_env()
    return tb_run.run(Path(out), sim=sim, env=env, **kwargs)


def synthesize(out: Path, *, pnr: bool = True, timeout: int = 600) -> dict:
    """Yosys resources, and the nextpnr-ice40 fmax where the design fits an iCE40 UP5K.

    `generic`: `synth -flatten` with the weight ROMs kept as memories (their bits reported as
    `rom_bits`, not mapped to LUTs) and everything else mapped to 4-input LUTs and flip-flops;
    multipliers are LUTs (dsp 0). `ice40`: `synth_ice40` of the narrow-I/O shell (SB_LUT4,
    SB_DFF*, SB_RAM40_4K, SB_MAC16; DSPs when every PE can have one), skipped when the weight
    ROMs alone exceed the UP5K's block RAM; then nextpnr-ice40 (UP5K, sg48, seed 1) if it fits.
    """
    design = _design(out)
    rtl = Path(out) / "rtl"
    yosys = tools.require_tool("yosys")
    sources = " ".join(design["sources"])
    result: dict = {}
    with tempfile.TemporaryDirectory() as tmp:
        stat = Path(tmp) / "generic.json"
        script = (f"read_verilog -sv -defer {sources}; "
                  f"synth -flatten -top {design['top']} -run begin:fine; "
                  "memory_map t:$mem_v2 r:MEMID=*weight_rom %d; opt -fast -full; techmap; "
                  f"opt -fast; abc -lut 4; opt -fast; tee -q -o {stat} stat -json")
        _run([yosys, "-q", "-p", script], rtl, timeout)
        cells = _cells(stat)
        result["generic"] = {
            "lut": cells.get("$lut", 0),
            "ff": sum(v for k, v in cells.items() if "DFF" in k.upper()),
            "ram": cells.get("$mem_v2", 0),
            "rom_bits": design["rom_bits"],
            "dsp": 0,
        }
        if design["rom_bits"] > UP5K["ram"] * UP5K_RAM_BITS:
            result["ice40"] = {"skipped": f"weight ROMs of {design['rom_bits']} bits exceed the "
                                          f"UP5K's {UP5K['ram']} x {UP5K_RAM_BITS}-bit block RAMs"}
            return result
        # iCE40: the PnR shell narrows the I/O so that the UP5K package can hold it.
        top = f"{design['name']}_pnr"
        stat, netlist = Path(tmp) / "ice40.json", Path(tmp) / "ice40_netlist.json"
        # DSPs only when every PE gets one (the UP5K has 8); otherwise multipliers go to LUTs.
        dsp = "-dsp" if design["num_pe_total"] <= UP5K["dsp"] else ""
        script = (f"read_verilog -sv -defer {sources} ttfs_pnr_io.sv {top}.sv; "
                  f"synth_ice40 {dsp} -top {top} -json {netlist}; tee -q -o {stat} stat -json")
        _run([yosys, "-q", "-p", script], rtl, timeout)
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
            report = Path(tmp) / "pnr.json"
            res = subprocess.run([nextpnr, "--up5k", "--package", "sg48", "--json", str(netlist),
                                  "--report", str(report), "--seed", "1", "--freq", "12"],
                                 cwd=rtl, capture_output=True, text=True, timeout=timeout)
            if res.returncode == 0:
                fmax = json.loads(report.read_text()).get("fmax", {})
                result["fmax_mhz"] = round(min(v["achieved"] for v in fmax.values()), 2)
            else:
                result["pnr_error"] = res.stderr.strip().splitlines()[-3:]
    return result


def _run(cmd: list[str], cwd: Path, timeout: int) -> None:
    res = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=timeout)
    if res.returncode != 0:
        raise ExportError(f"fpga: {Path(cmd[0]).name} failed:\n{(res.stderr or res.stdout)[-2000:]}")


def _cells(stat_file: Path) -> dict:
    data = json.loads(stat_file.read_text())
    return {k: int(v) for k, v in data["design"]["num_cells_by_type"].items()}


def _design(out: Path) -> dict:
    path = Path(out) / "tb" / "design.json"
    if not path.exists():
        raise ExportError(f"fpga: {path} not found; is {out} an FPGA export?")
    return json.loads(path.read_text())


def verify(out: Path, *, progress: bool = True) -> Report:
    """Lint, simulate every vector, synthesize; writes OUT/report.json. The simulator is the
    export's `sim` option (`ttfs-export --sim`), Verilator by default; `--option synth=0` skips
    Yosys. A mismatch names the first sample, and the layer and neuron that diverged."""
    out = Path(out)
    design = _design(out)
    options = _export_options(out)
    sim = options.get("sim", "verilator")
    if sim not in SIMULATORS:
        raise ExportError(f"fpga: unknown simulator {sim!r}; expected one of {SIMULATORS}")
    report = Report(target="fpga")
    data: dict = {"lint": lint(out)}
    if progress:
        print(f"fpga: simulating {design['top']} on {sim} (logs in {out / 'tb' / 'sim_build'})"
              " ...", flush=True)
    res = simulate(out, sim, quiet=True)
    data["sim"] = {k: res[k] for k in ("sim", "vectors", "mismatches", "cycles_mean",
                                      "cycles_max", "cycles_predicted_ok")}
    data["dense_cycles"] = design["dense_cycles"]
    exact = res["exact_pass_mismatches"]      # the stress pass repeats the first vectors
    report.passed = res["vectors"] - exact
    report.failed = exact + int(res["mismatches"] > exact) + int(not res["cycles_predicted_ok"])
    if res["first_mismatch"]:
        report.first_mismatch = f"{sim}: {res['first_mismatch']}"
    elif not res["cycles_predicted_ok"]:
        report.first_mismatch = f"{sim}: cycle model: {res['cycles_first_wrong']}"
    report.lines.append(f"{sim}: {res['vectors']} vectors, {res['mismatches']} mismatches; "
                        f"cycles/inference mean {res['cycles_mean']:.1f}, max "
                        f"{res['cycles_max']} (dense schedule {design['dense_cycles']}), "
                        f"prediction {'exact' if res['cycles_predicted_ok'] else 'WRONG'}")
    if str(options.get("synth", "1")) == "0":
        report.lines.append("yosys: skipped (option synth=0)")
    else:
        if progress:
            print("fpga: synthesizing (yosys) ...", flush=True)
        data["synth"] = synthesize(out)
        report.lines.extend(resource_table(data["synth"]))
    report.data = data
    (out / "report.json").write_text(json.dumps(data, indent=1, sort_keys=True) + "\n")
    return report


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
    path = out / "export.json"
    return json.loads(path.read_text()).get("options", {}) if path.exists() else {}
