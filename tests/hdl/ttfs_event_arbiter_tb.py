"""ttfs_event_arbiter: every group offered is taken when the arbiter is free; its set lanes
leave, up to Ways per handshake (way 0 the lowest lane left, way 1 the highest), in exactly
ceil(events / Ways) handshakes from the cycle after the take; a group without events holds the
arbiter for one ready cycle; the next group is taken in the cycle of the last handshake. With
PreEnc the bench keeps a group's mask on mask_i for a cycle before offering it (the contract)."""

from __future__ import annotations

import random

import cocotb
from cocotb.triggers import FallingEdge, RisingEdge

from tests.hdl.common import start


@cocotb.test()
async def groups_back_to_back(dut):
    lanes, ways, lane_bits, pre = (int(getattr(dut, k).value)
                                   for k in ("Lanes", "Ways", "LaneBits", "PreEnc"))
    rng = random.Random(3)
    groups = [rng.getrandbits(lanes) for _ in range(60)] + [0, (1 << lanes) - 1, 0, 1]
    await start(dut, group_valid_i=0, mask_i=0, evt_ready_i=0, clear_i=0)
    k, held, seen, shakes, idle, shown = 0, None, [], 0, 0, None
    while k < len(groups) or held is not None:
        await RisingEdge(dut.clk_i)
        offer = k < len(groups) and rng.random() < 0.8 and (not pre or shown == k)
        dut.group_valid_i.value = int(offer)
        if pre:   # the next group's mask, once shown, stays until it is taken
            show = k < len(groups) and (shown == k or rng.random() < 0.8)
            dut.mask_i.value = groups[k] if show else rng.getrandbits(lanes)
            shown = k if show else None
        else:
            dut.mask_i.value = groups[k] if offer else rng.getrandbits(lanes)
        dut.evt_ready_i.value = int(rng.random() < 0.7)
        await FallingEdge(dut.clk_i)
        ready, valid = int(dut.evt_ready_i.value), int(dut.evt_valid_o.value)
        assert int(dut.busy_o.value) == (held is not None)
        if held is None:
            assert not valid and not int(dut.group_done_o.value)
        if valid and ready:
            present, raw = int(dut.evt_ways_o.value), int(dut.evt_lane_o.value)
            got = [raw >> (w * lane_bits) & ((1 << lane_bits) - 1) for w in range(ways)
                   if present >> w & 1]
            left = [lane for lane in range(lanes) if held >> lane & 1 and lane not in seen]
            assert got == ([left[0], left[-1]] if ways == 2 and len(left) > 1 else left[:1]), \
                f"group {k - 1}: lanes {got}, left {left}"
            seen += got
            shakes += 1
        if int(dut.group_done_o.value):
            expected = [lane for lane in range(lanes) if held >> lane & 1]
            assert sorted(seen) == expected, f"group {held:#x}: lanes {seen}"
            assert shakes == -(-len(expected) // ways), f"{shakes} handshakes"
            assert expected or ready, "an empty group retires in a ready cycle"
            held, seen, shakes = None, [], 0
        free = int(dut.free_o.value)
        assert free == (held is None)
        assert int(dut.group_take_o.value) == (offer and free)
        if offer and free:
            held, k, shown = groups[k], k + 1, None
        idle = idle + 1 if held is None else 0
        assert idle < 50, "the arbiter never took the group"
