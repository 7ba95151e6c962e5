"""ttfs_event_arbiter: each group's set lanes leave lowest first, up to Ways per accepted cycle
(way 0 the lowest); a group is done with its last events (or, empty, in a ready cycle)."""

from __future__ import annotations

import random

import cocotb
from cocotb.triggers import FallingEdge, RisingEdge

from tests.hdl.common import start


@cocotb.test()
async def groups_in_lane_order(dut):
    lanes, ways, lane_bits = (int(getattr(dut, k).value) for k in ("Lanes", "Ways", "LaneBits"))
    rng = random.Random(3)
    groups = [rng.getrandbits(lanes) for _ in range(60)] + [0, (1 << lanes) - 1, 0]
    await start(dut, group_valid_i=0, mask_i=0, evt_ready_i=0, clear_i=0)
    k, cycles = 0, 0
    seen: list[int] = []
    while k < len(groups):
        await RisingEdge(dut.clk_i)
        dut.group_valid_i.value = 1
        dut.mask_i.value = groups[k]
        dut.evt_ready_i.value = int(rng.random() < 0.7)
        await FallingEdge(dut.clk_i)
        ready = int(dut.evt_ready_i.value)
        if int(dut.evt_valid_o.value) and ready:
            present, raw = int(dut.evt_ways_o.value), int(dut.evt_lane_o.value)
            got = [raw >> (w * lane_bits) & ((1 << lane_bits) - 1) for w in range(ways)
                   if present >> w & 1]
            assert got and present & 1, "way 0 must hold the first event"
            seen += got
            cycles += 1
        if int(dut.group_done_o.value):
            expected = [lane for lane in range(lanes) if groups[k] >> lane & 1]
            assert seen == expected, f"group {k}: lanes {seen}, expected {expected}"
            assert cycles == -(-len(expected) // ways), f"group {k}: {cycles} handshakes"
            seen, k, cycles = [], k + 1, 0
