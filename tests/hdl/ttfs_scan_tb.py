"""ttfs_scan: a memory model answers read_slot_o one cycle later; every set lane must leave as
an event (index (g * Lanes + lane) * Positions + pos, its code), slots in order (lanes within a
slot in the arbiter's order), then the end marker, under random back-pressure; without
back-pressure a slot costs max(1, ceil(events / Ways)) cycles after a fill of 1 + MaskReg."""

from __future__ import annotations

import random

import cocotb
from cocotb.triggers import FallingEdge, RisingEdge

from tests.hdl.common import start


async def scan_once(dut, rng, busy: float):
    """Run one scan of random slots; returns (expected per slot, got per slot, cycles)."""
    lanes, groups, positions, ways, code_bits, idx_bits = (
        int(getattr(dut, k).value) for k in ("Lanes", "Groups", "Positions", "Ways", "CodeBits",
                                             "OutIdxBits"))
    slots = groups * positions
    mask = [rng.getrandbits(lanes) if rng.random() < 0.5 else 0 for _ in range(slots)]
    codes = [[rng.randrange(1 << code_bits) for _ in range(lanes)] for _ in range(slots)]
    expected = [sorted(((s // positions * lanes + lane) * positions + s % positions,
                        codes[s][lane]) for lane in range(lanes) if mask[s] >> lane & 1)
                for s in range(slots)]
    got, done, cycles = [], False, 1
    dut.mask_i.value = mask[0]          # the idle scan names slot 0
    dut.code_i.value = sum(c << (code_bits * lane) for lane, c in enumerate(codes[0]))
    dut.start_i.value = 1
    await FallingEdge(dut.clk_i)
    read = int(dut.read_slot_o.value)
    while not done:
        await RisingEdge(dut.clk_i)
        dut.mask_i.value = mask[read]
        dut.code_i.value = sum(c << (code_bits * lane) for lane, c in enumerate(codes[read]))
        dut.evt_ready_i.value = int(rng.random() >= busy)
        await FallingEdge(dut.clk_i)
        cycles += 1
        read = int(dut.read_slot_o.value)
        assert int(dut.read_group_o.value) == read // positions
        if int(dut.evt_valid_o.value) and int(dut.evt_ready_i.value):
            if int(dut.evt_last_o.value):
                assert int(dut.release_o.value) == 1
                done = True
                continue
            present = int(dut.evt_ways_o.value)
            for w in range(ways):
                if present >> w & 1:
                    index = int(dut.evt_index_o.value) >> (w * idx_bits) & ((1 << idx_bits) - 1)
                    code = int(dut.evt_code_o.value) >> (w * code_bits) & ((1 << code_bits) - 1)
                    got.append((index, code))
    dut.start_i.value = 0
    per_slot = [sorted(e for e in got if (e[0] % positions) + positions * (
        e[0] // positions // lanes) == s) for s in range(slots)]
    flat = [e for s in range(slots) for e in expected[s]]
    assert sorted(got) == sorted(flat) and len(got) == len(flat)
    order = [next(s for s in range(slots) if e in expected[s]) for e in got]
    assert order == sorted(order), "slots must leave in order"
    shakes = sum(max(1, -(-len(e) // ways)) for e in expected)
    return per_slot, expected, cycles, shakes


@cocotb.test()
async def every_set_lane_in_slot_order(dut):
    rng = random.Random(4)
    await start(dut, start_i=0, avail_i=1, mask_i=0, code_i=0, evt_ready_i=0, clear_i=0)
    mask_reg = int(dut.MaskReg.value)
    for busy in (0.3, 0.0, 0.0):
        got, expected, cycles, shakes = await scan_once(dut, rng, busy)
        assert got == expected
        if busy == 0.0:   # fill, slots, end marker
            assert cycles == 1 + mask_reg + shakes + 1, f"{cycles} cycles for {shakes}"
