"""ttfs_pe: random accumulations (back-to-back on one slot included, which needs the forwarding
path; gaps of one and two cycles, which need the memory) against a Python model; then every
slot read back through the read port."""

from __future__ import annotations

import random

import cocotb
from cocotb.triggers import FallingEdge, RisingEdge

from tests.hdl.common import start


def _signed(v: int, bits: int) -> int:
    return v - (1 << bits) if v >> (bits - 1) else v


@cocotb.test()
async def accumulate_like_the_model(dut):
    slots, ways = int(dut.Slots.value), int(dut.Ways.value)
    wbits, obits = int(dut.WeightBits.value), int(dut.OperandBits.value)
    acc = int(dut.AccBits.value)
    rng = random.Random(5)
    bias = [rng.randint(-100, 100) for _ in range(slots)]
    model = list(bias)
    started = [False] * slots
    ops = []   # (slot, weights, operands, accumulated?) or None for an idle cycle
    for _ in range(300):
        if rng.random() < 0.15:
            ops.append(None)
            continue
        last = next((op for op in reversed(ops) if op is not None), None)
        slot = last[0] if last and rng.random() < 0.4 else rng.randrange(slots)
        weights = [rng.randint(-(1 << (wbits - 1)) + 1, (1 << (wbits - 1)) - 1)
                   for _ in range(ways)]
        operands = [rng.randrange(1 << obits) if rng.random() < 0.8 else 0 for _ in range(ways)]
        ops.append((slot, weights, operands, rng.random() < 0.8))
    await start(dut, reset=False, rd_slot_i=0, tap_en_i=0, tap_slot_i=0, tap_started_i=0,
                tap_bias_i=0, weight_i=0, operand_i=0)
    # pipeline as in ttfs_integrator: cycle k presents the weights/operands of op k; cycle
    # k + 2 its slot (tap_* and rd_slot_i), with the started bit of the accumulations that
    # happened before cycle k + 2; cycle k + 3 accumulates it
    stream = ops + [None, None, None]
    for k, op in enumerate(stream):
        await RisingEdge(dut.clk_i)
        if op is not None:
            dut.weight_i.value = sum((w & ((1 << wbits) - 1)) << (i * wbits)
                                     for i, w in enumerate(op[1]))
            dut.operand_i.value = sum(o << (i * obits) for i, o in enumerate(op[2]))
        tap = stream[k - 2] if k >= 2 else None
        accumulating = stream[k - 3] if k >= 3 else None
        if tap is not None and tap[3]:
            slot = tap[0]
            dut.tap_en_i.value = 1
            dut.tap_slot_i.value = slot
            dut.rd_slot_i.value = slot
            dut.tap_started_i.value = int(started[slot])
            dut.tap_bias_i.value = bias[slot] & ((1 << acc) - 1)
        else:
            dut.tap_en_i.value = 0
            dut.tap_slot_i.value = rng.randrange(slots)   # ignored while tap_en_i is low
        if accumulating is not None and accumulating[3]:
            slot = accumulating[0]
            model[slot] += sum(w * o for w, o in zip(accumulating[1], accumulating[2]))
            started[slot] = True
    await RisingEdge(dut.clk_i)
    dut.tap_en_i.value = 0
    for slot in range(slots):
        dut.rd_slot_i.value = slot
        await RisingEdge(dut.clk_i)
        await FallingEdge(dut.clk_i)
        if started[slot]:
            got = _signed(int(dut.mem_o.value.to_unsigned()), acc)
            assert got == model[slot], f"slot {slot}: {got}, expected {model[slot]}"
