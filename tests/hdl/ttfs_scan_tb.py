"""ttfs_scan: a memory model answers read_slot_o one cycle later; every set lane must leave as
an event (index (g * Lanes + lane) * Positions + pos, its code), slots in order, then the end
marker, under random back-pressure; a slot without events costs one cycle."""

from __future__ import annotations

import random

import cocotb
from cocotb.triggers import FallingEdge, RisingEdge

from tests.hdl.common import start


@cocotb.test()
async def every_set_lane_in_slot_order(dut):
    lanes, groups, positions = (int(getattr(dut, k).value) for k in ("Lanes", "Groups",
                                                                    "Positions"))
    code_bits = int(dut.CodeBits.value)
    rng = random.Random(4)
    slots = groups * positions
    mask = [rng.getrandbits(lanes) if rng.random() < 0.5 else 0 for _ in range(slots)]
    codes = [[rng.randrange(1 << code_bits) for _ in range(lanes)] for _ in range(slots)]
    expected = [((s // positions * lanes + lane) * positions + s % positions, codes[s][lane])
                for s in range(slots) for lane in range(lanes) if mask[s] >> lane & 1]
    await start(dut, start_i=0, avail_i=1, mask_i=0, code_i=0, evt_ready_i=0, clear_i=0)
    got, done, read = [], False, 0
    dut.start_i.value = 1
    while not done:
        await RisingEdge(dut.clk_i)
        dut.mask_i.value = mask[read]
        dut.code_i.value = sum(c << (code_bits * lane) for lane, c in enumerate(codes[read]))
        dut.evt_ready_i.value = int(rng.random() < 0.7)
        await FallingEdge(dut.clk_i)
        read = int(dut.read_slot_o.value)
        assert int(dut.read_group_o.value) == read // positions
        if int(dut.evt_valid_o.value) and int(dut.evt_ready_i.value):
            if int(dut.evt_last_o.value):
                assert int(dut.release_o.value) == 1
                done = True
            else:
                got.append((int(dut.evt_index_o.value), int(dut.evt_code_o.value)))
    assert got == expected
