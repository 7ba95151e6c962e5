"""FPGA target, view-model: which engine runs each layer, every parameter and width, ROM images.

`plan(net, name, options)` maps the network onto a chain of event-driven engines
(`hdl_templates/rtl/`, see docs/fpga.md):

- `ttfs_input`: AXI4-Stream image beats -> one event (pixel index, byte) per spiking pixel;
- `ttfs_layer` per dense or conv2d layer: NumPe lanes (output channels, or neurons of a dense
  layer), lane p of group g = channel g * NumPe + p, one membrane slot per (group, position);
- `ttfs_pool` per maxpool2d: earliest spike of each window, same lane/slot organisation;
- `ttfs_output_layer`: integrates the last layer's events, reads out scores and the argmax.

Flatten is free (streams carry flat C, H, W indices). Every instance's parameter list is built
here as (name, Verilog literal) pairs; `top.sv.j2` renders them through one macro.

Options (`ExportContext.options`; ints may be decimal strings from `--option KEY=VALUE`):
`num_pe` (lanes per engine, capped at the layer's channels/neurons; "all" = one per channel or
neuron; default 8), `lanes` (input bytes per AXI beat, default 8), `acc_bits` (one accumulator
width for every layer, at least what the IR needs; default: per layer the minimum of
`Network.info`), `ways` (1 or 2 events per handshake into dense and output engines, which then
read two weights per lane and cycle, and into pools fed by an engine of the same lanes; default
1), `fire` ("parallel": T threshold compares per
lane, one slot per cycle; "serial": one compare per lane and cycle; "auto" (default): serial for
layers with at least SERIAL_FIRE_LANES lanes), `conv_taps` (1, the default: a conv engine
issues one kernel tap per cycle; "row": all Reach = ceil(K / stride) column taps of a kernel row
per cycle, with Reach membrane banks and multipliers per lane; or one of these per conv layer,
comma-separated in layer order, e.g. "1,row").
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np

from ttfs.codegen.targets import ExportError
from ttfs.sdk.ir import Conv2d, Dense, Flatten, MaxPool2d, Network, Output, TTFSFormatError, \
    check_identifier

DEFAULT_NUM_PE = 8
DEFAULT_LANES = 8
FIRE_MODES = ("auto", "parallel", "serial")
#: Events per handshake into dense, output and pool engines (`ways` option; conv takes one).
WAYS = (1, 2)
#: `conv_taps` values: kernel taps a conv engine issues per cycle (1, or one kernel row).
CONV_TAPS = (1, "row")
#: `fire=auto`: layers with at least this many lanes compare serially (T compares per lane
#: cost about lanes * T * acc_bits / 2 LUTs in parallel).
SERIAL_FIRE_LANES = 64
#: Cycles from taking an end marker to the engine's data being complete (see the RTL headers):
#: integrators 6 pipeline stages (address, ROM read, ROM output register, PE weight/operand
#: registers, product per way, accumulate) + 1 membrane read + 1 (done_o registered).
INTEGRATOR_DRAIN = 8
POOL_DRAIN = 3
#: Read-write memories (membranes, pool windows) smaller than this many bits, or shallower
#: than this many words, are distributed RAM (LUTs); larger ones block RAM (`mem_style`).
MIN_BRAM_BITS = 2048
MIN_BRAM_DEPTH = 128
#: DSP blocks left free on an ECP5 for the few constant multiplications Yosys also maps there.
DSP_RESERVE = 4


def dsp_budget(capacity: int) -> int:
    """Multipliers (weight x operand) that go to DSP blocks on an ECP5 of `capacity` DSPs:
    capacity - DSP_RESERVE; the rest are shift-and-add trees in logic (ttfs_pe LutMul,
    integrator DspPe: lanes are served in layer order, all ways and taps of a lane alike)."""
    return max(0, capacity - DSP_RESERVE)


def dsp_lanes(lanes: int, per_lane: int, budget: int | None) -> int:
    """Lanes of an engine whose multipliers (`per_lane` each) fit the DSP `budget` left
    (None: no device named, every multiplier is written as `*`)."""
    return lanes if budget is None else min(lanes, budget // per_lane)


def bits_for(value: int) -> int:
    """Width of an unsigned field that holds 0..value (at least 1)."""
    return max(1, int(value).bit_length())


def clog2(value: int) -> int:
    """Width of an index over `value` items, max(1, ceil(log2(value))) like the RTL's."""
    return bits_for(value - 1)


@dataclass(frozen=True)
class Stage:
    """One engine instance of the chain and the facts the cycle model needs.

    `cost`: cycles one input event occupies the engine (integrating engines: groups x taps;
    pools: 1). `groups`/`positions`/`lanes`: the slot organisation of its scan (hidden engines)
    or of its readout (output). `channels`: real lanes (the rest is padding). `fire_serial`:
    the layer compares one threshold per lane and cycle (T + 2 cycles per slot at least).
    `ways`: events it integrates together per handshake (dense/output engines: the `ways`
    option, 2 reads of the weight ROM per cycle; pools fed by an engine of their lanes: the
    `ways` option; conv: 1). `taps`: kernel columns a conv engine issues per cycle (1 or
    Reach): membrane banks and multipliers per lane, each bank holding `bank_slots` membranes.
    """

    name: str
    kind: str                 # "layer" | "pool" | "output"
    module: str
    source: str               # the stream feeding it ("input" or a hidden stage's name)
    params: tuple[tuple[str, str], ...]
    neurons: int
    channels: int
    lanes: int
    groups: int
    positions: int
    cost: int
    drain: int
    out_idx_bits: int
    out_code_bits: int
    acc_bits: int = 0
    weight_words: int = 0
    weight_bits: int = 0
    fire_serial: bool = False
    ways: int = 1             # events this engine takes per handshake
    out_ways: int = 1         # events per handshake on its output stream (its consumer's ways)
    taps: int = 1             # conv: kernel columns per cycle = membrane banks per lane
    bank_slots: int = 0       # membranes per lane and bank (groups x positions for one bank)

    @property
    def mem_style(self) -> str:
        """`MemStyle` of its membranes (pools: window memory), see `mem_style()`."""
        return dict(self.params)["MemStyle"].strip('"')


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
    min_byte: int
    stages: tuple[Stage, ...]
    mems: dict = field(default_factory=dict)   # file name -> (width in bits, list of words)

    @property
    def top(self) -> str:
        return f"{self.name}_top"

    @property
    def hidden(self) -> tuple[Stage, ...]:
        return self.stages[:-1]

    @property
    def out(self) -> Stage:
        return self.stages[-1]

    @property
    def out_bits(self) -> int:
        """m_axis_tdata width: 32-bit class word plus one 32-bit word per score."""
        return 32 * (self.out.neurons + 1)


def option_int(options: dict, key: str, default: int, low: int, high: int) -> int:
    """An int option; a decimal string (from `--option KEY=VALUE`) is accepted too."""
    value = options.get(key, default)
    if isinstance(value, str) and value.isdigit():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ExportError(f"fpga option {key}: expected an int in {low}..{high}, got {value!r}")
    return value


def pack(rows: np.ndarray, bits: int) -> list[int]:
    """Rows of lane values -> one word per row, lane p in bits [p*bits, (p+1)*bits)."""
    mask = (1 << bits) - 1
    words = []
    for row in np.asarray(rows).reshape(len(rows), -1):
        word = 0
        for p, value in enumerate(row):
            word |= (int(value) & mask) << (p * bits)
        words.append(word)
    return words


def _lit(key: str, value) -> str:
    """The Verilog literal of parameter `key`: file names (`...File`) are prefixed with the
    top's MemPath, other strings quoted."""
    if isinstance(value, bool):
        return f"1'b{int(value)}"
    if isinstance(value, str):
        return f'{{MemPath, "{value}"}}' if value and key.endswith("File") else f'"{value}"'
    return str(int(value))


def mem_style(depth: int, width: int) -> str:
    """The `MemStyle` of a depth x width read-write memory, the `ram_style` attribute the RTL
    puts on it: "auto" for one word (flip-flops), "distributed" (LUT RAM) below MIN_BRAM_BITS
    bits or MIN_BRAM_DEPTH words, else "block" (`_Builder.mem_style` asks for LUT RAM only on
    a named ECP5). Synthesis follows it, so the block RAMs stay for the weight ROMs and the
    resource estimate (`fpga_fit`), which counts by this rule, sees what is built; left to
    itself, Yosys put each 84 x 23-bit membrane bank of a column-parallel conv into a block
    RAM of its own (80 of them in the mnist5k CNN: 250 of 208 DP16KD)."""
    if depth <= 1:
        return "auto"
    if depth * width < MIN_BRAM_BITS or depth < MIN_BRAM_DEPTH:
        return "distributed"
    return "block"


def conv_taps(value, convs: int) -> list:
    """The `conv_taps` option as one entry (1 or "row") per conv layer: a single value for all,
    or a comma-separated list with one value per conv layer."""
    items = value.split(",") if isinstance(value, str) else [value]
    items = [int(v) if isinstance(v, str) and v.strip().isdigit() else v for v in items]
    items = [v.strip() if isinstance(v, str) else v for v in items]
    bad = any(isinstance(v, bool) or v not in CONV_TAPS for v in items)
    if len(items) == 1:
        items = items * convs
    if bad or len(items) != convs:
        raise ExportError(f"fpga option conv_taps: expected 1 or 'row', or one of them per conv "
                          f"layer ({convs}) separated by commas, got {value!r}")
    return items


def conv_rows(weight: np.ndarray, groups: int, stride: int, taps: int) -> np.ndarray:
    """ROM rows [words, taps * lanes] of a conv weight [groups * lanes, C_in, K, K] (element
    k * lanes + p of a row: bank k, lane p; see ttfs_integrator.sv).

    taps = 1: word ((g * C_in + c) * K + dy) * K + dx holds weight[g*P + p, c, dy, dx];
    taps > 1: word (((g * C_in + c) * K + dy) * stride + dx0) * taps + r holds, in bank k,
    weight[g*P + p, c, dy, dx0 + ((r - k) mod taps) * stride] (0 past the kernel).
    """
    channels, c_in, k, _ = weight.shape
    lanes = channels // groups
    w = weight.reshape(groups, lanes, c_in, k, k)
    if taps == 1:
        return w.transpose(0, 2, 3, 4, 1).reshape(-1, lanes)
    dx0, r, bank = np.ix_(range(stride), range(taps), range(taps))
    dx = dx0 + ((r - bank) % taps) * stride                    # [stride, taps, taps]
    wide = np.zeros((groups, lanes, c_in, k, k + stride * taps), weight.dtype)
    wide[..., :k] = w
    rows = wide[..., dx]                        # [g, p, c, dy, dx0, r, bank]
    return rows.transpose(0, 2, 3, 4, 5, 6, 1).reshape(-1, taps * lanes)


class _Builder:
    """Walks the network once, keeping the current stream (name, index width, code width) and
    the operand table its events map to."""

    def __init__(self, net: Network, options: dict, roms: bool = True):
        self.net, self.options, self.roms = net, options, roms
        num_pe = options.get("num_pe", DEFAULT_NUM_PE)
        self.num_pe = num_pe if num_pe == "all" else option_int(options, "num_pe",
                                                                DEFAULT_NUM_PE, 1, 4096)
        self.acc_opt = options.get("acc_bits")
        self.ways = option_int(options, "ways", 1, 1, 2)
        self.fire = options.get("fire", "auto")
        self.conv_taps = conv_taps(options.get("conv_taps", 1),
                                   sum(isinstance(layer, Conv2d) for layer in net.layers))
        if self.fire not in FIRE_MODES:
            raise ExportError(f"fpga option fire: expected one of {FIRE_MODES}, got "
                              f"{self.fire!r}")
        self.time_bits = clog2(net.T)
        self.dsp_left = None   # DSP multipliers left (option dsp, or the named device's)
        self.lut_ram = False   # the named device has LUT RAM (ECP5; iCE40 has none)
        if options.get("device"):
            from ttfs.codegen.fpga_flow import DEVICES
            dev = DEVICES.get(options["device"])
            self.lut_ram = dev is not None and dev.family == "ecp5"
            if self.lut_ram and "dsp" not in options:
                self.dsp_left = dsp_budget(dev.capacity["dsp"])
        if "dsp" in options:
            self.dsp_left = option_int(options, "dsp", 0, 0, 1 << 20)
        self.mems: dict[str, tuple[int, list[int]]] = {}
        self.stages: list[Stage] = []
        self.source, self.idx_bits, self.code_bits = "input", clog2(net.n_inputs), 8
        self.table_file, self.table = "", None
        self.shape: tuple[int, ...] = tuple(net.input_shape)
        if net.input_coding == "ttfs":
            table = np.where(net.input_times < net.T,
                             net.input_kernel[np.minimum(net.input_times, net.T - 1)], 0)
            self._set_table("input_operand.mem", table)

    def _set_table(self, fname: str, table: np.ndarray) -> None:
        self.table_file, self.table = fname, table
        self.mems[fname] = (bits_for(int(table.max())), [int(v) for v in table])

    def mem_style(self, depth: int, width: int) -> str:
        """`mem_style`, except that LUT RAM is only asked for on a named device that has it
        (elsewhere small memories are left to the synthesis tool: iCE40 has no LUT RAM)."""
        style = mem_style(depth, width)
        return "auto" if style == "distributed" and not self.lut_ram else style

    def lanes_for(self, channels: int) -> int:
        return channels if self.num_pe == "all" else min(self.num_pe, channels)

    def acc_bits(self, layer, info) -> int:
        if self.acc_opt is None:
            return info.acc_bits
        acc = option_int(self.options, "acc_bits", 0, 2, 64)
        if acc < info.acc_bits:
            raise ExportError(f"fpga: layer '{layer.name}' needs a {info.acc_bits}-bit "
                              f"accumulator (bound M = {info.acc_bound}), but acc_bits = {acc} "
                              "was requested (width overflow)")
        return acc

    def weighted(self, layer, info) -> None:
        net, conv = self.net, isinstance(layer, Conv2d)
        output = isinstance(layer, Output)
        channels = layer.weight.shape[0]
        lanes = self.lanes_for(channels)
        groups = -(-channels // lanes)
        acc = self.acc_bits(layer, info)
        padded = np.zeros((groups * lanes, *layer.weight.shape[1:]), np.int64)
        padded[:channels] = layer.weight
        bias = np.zeros(groups * lanes, np.int64)
        bias[:channels] = layer.bias
        if conv:
            c_in, h, w = self.shape
            k = layer.weight.shape[2]
            _, oh, ow = info.out_shape
            reach = -(-k // layer.stride)
            taps = reach if self.conv_taps.pop(0) == "row" else 1
            positions, cost = oh * ow, groups * reach * (reach // taps)
            bank_slots = groups * oh * -(-ow // taps)
            rows = conv_rows(padded, groups, layer.stride, taps)
            geometry = dict(InCount=c_in * h * w, InChannels=c_in, InHeight=h, InWidth=w,
                            Kernel=k, Stride=layer.stride, Padding=layer.padding,
                            OutHeight=oh, OutWidth=ow)
        else:
            n_in = layer.weight.shape[1]
            positions, cost, taps, bank_slots = 1, groups, 1, groups
            # word g * n_in + i, lane p = weight[g*P + p, i]
            rows = padded.reshape(groups, lanes, n_in).transpose(0, 2, 1).reshape(-1, lanes)
            geometry = dict(InCount=n_in)
        prefix = layer.name
        if self.roms:
            self.mems[f"{prefix}_weight.mem"] = (taps * lanes * net.weight_bits,
                                                  pack(rows, net.weight_bits))
            self.mems[f"{prefix}_bias.mem"] = (lanes * acc, pack(bias.reshape(groups, lanes),
                                                                 acc))
        operand_bits = 8 if self.table is None else bits_for(info.in_max)
        common = dict(NumPe=lanes, **({} if output else dict(Groups=groups,
                                                             Positions=positions)))
        slots = groups * positions
        params = dict(common)
        if output:
            params.update(Neurons=channels, Slots=groups, SlotBits=clog2(groups),
                          ClassBits=clog2(channels))
        else:
            params.update(SlotBits=clog2(slots), GroupBits=clog2(groups), Conv=conv)
        params.update(geometry)
        serial = not output and (self.fire == "serial" or (
            self.fire == "auto" and lanes >= SERIAL_FIRE_LANES))
        if not output:
            params.update(FireSerial=serial, T=net.T, TimeBits=self.time_bits,
                          OutIdxBits=clog2(channels * positions))
        ways = 1 if conv else self.ways
        params.update(IdxBits=self.idx_bits, CodeBits=self.code_bits, Ways=ways,
                      UseOperandTable=self.table is not None,
                      OperandEntries=0 if self.table is None else len(self.table),
                      OperandBits=operand_bits, WeightBits=net.weight_bits, AccBits=acc,
                      OperandFile=self.table_file, WeightFile=f"{prefix}_weight.mem",
                      BiasFile=f"{prefix}_bias.mem")
        if taps > 1:
            params["Taps"] = taps
        dsp_pe = dsp_lanes(lanes, ways * taps, self.dsp_left)
        if dsp_pe < lanes:
            params["DspPe"] = dsp_pe
        if self.dsp_left is not None:
            self.dsp_left -= dsp_pe * ways * taps
        params["MemStyle"] = self.mem_style(bank_slots, acc)
        if not output:
            theta = np.minimum(layer.theta.astype(np.int64), info.acc_bound + 1)
            self.mems[f"{prefix}_theta.mem"] = (acc, [int(v) for v in theta])
            params["ThetaFile"] = f"{prefix}_theta.mem"
        self._add(Stage(
            name=layer.name, kind="output" if output else "layer",
            module="ttfs_output_layer" if output else "ttfs_layer", source=self.source,
            params=tuple((k, _lit(k, v)) for k, v in params.items()), neurons=channels * positions,
            channels=channels, lanes=lanes, groups=groups, positions=positions, cost=cost,
            drain=INTEGRATOR_DRAIN, out_idx_bits=clog2(channels * positions),
            out_code_bits=self.time_bits, acc_bits=acc, weight_words=len(rows),
            weight_bits=taps * lanes * net.weight_bits, fire_serial=serial, ways=ways,
            taps=taps, bank_slots=bank_slots))
        if not output:
            self._set_table(f"{prefix}_kernel.mem", layer.kernel)

    def pool(self, layer: MaxPool2d, info) -> None:
        channels, h, w = self.shape
        _, oh, ow = info.out_shape
        lanes = self.lanes_for(channels)
        groups = -(-channels // lanes)
        positions = oh * ow
        # two events per handshake need different lanes: a producer with the pool's lanes
        ways = self.ways if self.stages and self.stages[-1].lanes == lanes else 1
        params = dict(Lanes=lanes, Groups=groups, Positions=positions,
                      SlotBits=clog2(groups * positions), GroupBits=clog2(groups),
                      InHeight=h, InWidth=w, Size=layer.size, OutHeight=oh, OutWidth=ow,
                      TimeBits=self.time_bits, IdxBits=self.idx_bits,
                      OutIdxBits=clog2(channels * positions), Ways=ways,
                      MemStyle=self.mem_style(groups * positions,
                                              lanes * (1 + self.time_bits)))
        self._add(Stage(
            name=layer.name, kind="pool", module="ttfs_pool", source=self.source,
            params=tuple((k, _lit(k, v)) for k, v in params.items()),
            neurons=channels * positions, channels=channels, lanes=lanes, groups=groups,
            positions=positions, cost=1, drain=POOL_DRAIN,
            out_idx_bits=clog2(channels * positions), out_code_bits=self.time_bits, ways=ways))

    def _add(self, stage: Stage) -> None:
        if self.stages:   # the producer's output stream carries as many ways as this takes
            prev = self.stages[-1]
            key = "OutWays"
            params = tuple(p for p in prev.params if p[0] != key) + ((key, str(stage.ways)),)
            self.stages[-1] = replace(prev, params=params, out_ways=stage.ways)
        self.stages.append(stage)
        self.source, self.idx_bits, self.code_bits = (stage.name, stage.out_idx_bits,
                                                      stage.out_code_bits)


def plan(net: Network, name: str, options: dict | None = None, *, roms: bool = True) -> Plan:
    """Check that the FPGA target can hold `net` and compute every parameter and ROM image
    (`roms=False` leaves the ROM images out: parameters only, for the resource estimate)."""
    options = dict(options or {})
    try:
        check_identifier(name, "--name")
    except TTFSFormatError as exc:
        raise ExportError(f"fpga: {exc} (the name becomes the Verilog module {name}_top)") from None
    for layer in net.layers:
        if not isinstance(layer, (Dense, Conv2d, MaxPool2d, Flatten, Output)):
            raise ExportError(f"fpga: layer '{layer.name}' ({layer.kind}) is not supported by "
                              "the FPGA target (dense, conv2d, maxpool2d, flatten, output)")
    lanes = min(option_int(options, "lanes", DEFAULT_LANES, 1, 64), net.n_inputs)
    b = _Builder(net, options, roms)
    for layer, info in zip(net.layers, net.info):
        if isinstance(layer, (Dense, Conv2d, Output)):
            b.weighted(layer, info)
        elif isinstance(layer, MaxPool2d):
            b.pool(layer, info)
        b.shape = tuple(info.out_shape)
    if net.input_coding == "real":
        min_byte = 1
    else:
        fires = np.flatnonzero(net.input_times < net.T)
        min_byte = int(fires[0]) if len(fires) else 256
    return Plan(name=name, hash=net.content_hash, T=net.T, coding=net.input_coding,
                pixels=net.n_inputs, lanes=lanes, beats=-(-net.n_inputs // lanes),
                in_idx_bits=clog2(net.n_inputs), min_byte=min_byte, stages=tuple(b.stages),
                mems=b.mems)


def input_params(p: Plan) -> tuple[tuple[str, str], ...]:
    """Parameters of the `ttfs_input` instance."""
    return tuple((k, str(v)) for k, v in dict(Lanes=p.lanes, Pixels=p.pixels,
                                              IdxBits=p.in_idx_bits, MinByte=p.min_byte,
                                              Ways=p.stages[0].ways).items())


def _vec(bits: int) -> str:
    return f"logic [{bits - 1}:0]" if bits > 1 else "logic"


def top_view(p: Plan) -> dict:
    """What `top.sv.j2` renders: the top's ports, the stream wires, every instance's
    parameter and port lists (name, expression), all computed here."""
    ins = {"clk_i": "logic", "rst_ni": "logic", "s_axis_tdata": _vec(p.lanes * 8),
           "s_axis_tvalid": "logic", "s_axis_tlast": "logic", "m_axis_tready": "logic"}
    outs = {"s_axis_tready": "logic", "m_axis_tdata": _vec(p.out_bits),
            "m_axis_tvalid": "logic", "m_axis_tlast": "logic", "frame_error_o": "logic",
            "busy_o": "logic"}
    order = ("clk_i", "rst_ni", "s_axis_tdata", "s_axis_tvalid", "s_axis_tready",
             "s_axis_tlast", "m_axis_tdata", "m_axis_tvalid", "m_axis_tready", "m_axis_tlast",
             "frame_error_o", "busy_o")
    ports = [("input", f"wire {ins[n]}", n) if n in ins else ("output", f"     {outs[n]}", n)
             for n in order]
    wires = [("logic", "done"), ("logic", "clear")]
    streams = [("input", p.in_idx_bits, 8, p.stages[0].ways)] + [
        (s.name, s.out_idx_bits, s.out_code_bits, s.out_ways) for s in p.hidden]
    for name, idx_bits, code_bits, ways in streams:
        wires += [("logic", f"{name}_evt_valid"), ("logic", f"{name}_evt_ready"),
                  ("logic", f"{name}_evt_last"), (_vec(ways), f"{name}_evt_ways"),
                  (_vec(ways * idx_bits), f"{name}_evt_index"),
                  (_vec(ways * code_bits), f"{name}_evt_code")]
    axis_in = [(f"s_axis_{k}", f"s_axis_{k}") for k in ("tdata", "tvalid", "tready", "tlast")]
    input_ports = [("clk_i", "clk_i"), ("rst_ni", "rst_ni"), *axis_in,
                   ("evt_valid_o", "input_evt_valid"), ("evt_ready_i", "input_evt_ready"),
                   ("evt_last_o", "input_evt_last"), ("evt_ways_o", "input_evt_ways"),
                   ("evt_index_o", "input_evt_index"),
                   ("evt_code_o", "input_evt_code"), ("done_i", "done"), ("busy_o", "busy_o"),
                   ("clear_o", "clear"), ("frame_error_o", "frame_error_o")]
    stages = []
    for s in p.stages:
        ports_s = [("clk_i", "clk_i"), ("rst_ni", "rst_ni"), ("clear_i", "clear"),
                   ("evt_valid_i", f"{s.source}_evt_valid"),
                   ("evt_ready_o", f"{s.source}_evt_ready"),
                   ("evt_last_i", f"{s.source}_evt_last"),
                   ("evt_ways_i", f"{s.source}_evt_ways"),
                   ("evt_index_i", f"{s.source}_evt_index"),
                   ("evt_code_i", f"{s.source}_evt_code")]
        if s.kind == "output":
            ports_s += [(f"m_axis_{k}", f"m_axis_{k}")
                        for k in ("tdata", "tvalid", "tready", "tlast")] + [("done_o", "done")]
            what = f"{s.channels} outputs on {s.lanes} lane(s) x {s.groups} group(s)"
        else:
            ports_s += [("evt_valid_o", f"{s.name}_evt_valid"),
                        ("evt_ready_i", f"{s.name}_evt_ready"),
                        ("evt_last_o", f"{s.name}_evt_last"),
                        ("evt_ways_o", f"{s.name}_evt_ways"),
                        ("evt_index_o", f"{s.name}_evt_index"),
                        ("evt_code_o", f"{s.name}_evt_code")]
            what = (f"{s.channels} channel(s) x {s.positions} position(s) on {s.lanes} lane(s)"
                    f" x {s.groups} group(s)")
        stages.append({"name": s.name, "module": s.module, "params": list(s.params),
                       "ports": ports_s, "comment": f"{s.name} ({s.module}): {what}"})
    return {"p": p, "ports": ports, "port_dw": max(len(d) for d, _, _ in ports),
            "port_tw": max(len(t) for _, t, _ in ports), "wires": wires,
            "input_params": list(input_params(p)), "input_ports": input_ports,
            "stages": stages}
