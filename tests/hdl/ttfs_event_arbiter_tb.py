"""ttfs_event_arbiter: each group's set lanes leave one per accepted cycle, lowest lane first;
a group is done with its last event (or, empty, in a ready cycle)."""

from __future__ import annotations

import random

import cocotb
from cocotb.triggers import FallingEdge, RisingEdge

from tests.hdl.common import start


@cocotb.test()
async def groups_in_lane_order(dut):
    lanes = len(dut.mask_i)
    rng = random.Random(3)
    groups = [rng.getrandbits(lanes) for _ in range(60)] + [0, (1 << lanes) - 1, 0]
    await start(dut, group_valid_i=0, mask_i=0, evt_ready_i=0, clear_i=0)
    emitted, k = [], 0
    seen: list[int] = []
    while k < len(groups):
        await RisingEdge(dut.clk_i)
        dut.group_valid_i.value = 1
        dut.mask_i.value = groups[k]
        dut.evt_ready_i.value = int(rng.random() < 0.7)
        await FallingEdge(dut.clk_i)
        ready = int(dut.evt_ready_i.value)
        if int(dut.evt_valid_o.value) and ready:
            seen.append(int(dut.evt_lane_o.value))
        if int(dut.group_done_o.value):
            expected = [lane for lane in range(lanes) if groups[k] >> lane & 1]
            assert seen == expected, f"group {k}: lanes {seen}, expected {expected}"
            emitted.append(seen)
            seen, k = [], k + 1
    assert len(emitted) == len(groups)
