"""ttfs_pe: random accumulations (back-to-back on one slot included, which needs the forwarding
path) against a Python model; then every slot read back through the read port."""

from __future__ import annotations

import random

import cocotb
from cocotb.triggers import FallingEdge, RisingEdge

from tests.hdl.common import start


def _signed(v: int, bits: int) -> int:
    return v - (1 << bits) if v >> (bits - 1) else v


@cocotb.test()
async def accumulate_like_the_model(dut):
    slots = int(dut.Slots.value)
    wbits, acc = int(dut.WeightBits.value), int(dut.AccBits.value)
    rng = random.Random(5)
    bias = [rng.randint(-100, 100) for _ in range(slots)]
    model = list(bias)
    started = [False] * slots
    ops = []
    for _ in range(200):
        slot = ops[-1][0] if ops and rng.random() < 0.4 else rng.randrange(slots)
        ops.append((slot, rng.randint(-(1 << (wbits - 1)) + 1, (1 << (wbits - 1)) - 1),
                    rng.randrange(256), rng.random() < 0.8))
    await start(dut, reset=False, rd_slot_i=0, acc_en_i=0, acc_slot_i=0, acc_started_i=0,
                acc_bias_i=0, weight_i=0, operand_i=0)
    # pipeline as in ttfs_integrator: cycle k presents weight/operand and rd_slot of op k;
    # cycle k+1 accumulates it (acc_en, slot, started, bias)
    pending = None
    for op in ops + [None]:
        await RisingEdge(dut.clk_i)
        if pending is not None and pending[3]:
            slot = pending[0]
            dut.acc_en_i.value = 1
            dut.acc_slot_i.value = slot
            dut.acc_started_i.value = int(started[slot])
            dut.acc_bias_i.value = bias[slot] & ((1 << acc) - 1)
            model[slot] += pending[1] * pending[2]
            started[slot] = True
        else:
            dut.acc_en_i.value = 0
        if op is not None:
            dut.rd_slot_i.value = op[0]
            dut.weight_i.value = op[1] & ((1 << wbits) - 1)
            dut.operand_i.value = op[2]
        pending = op
    await RisingEdge(dut.clk_i)
    dut.acc_en_i.value = 0
    for slot in range(slots):
        dut.rd_slot_i.value = slot
        await RisingEdge(dut.clk_i)
        await FallingEdge(dut.clk_i)
        if started[slot]:
            got = _signed(int(dut.mem_o.value.to_unsigned()), acc)
            assert got == model[slot], f"slot {slot}: {got}, expected {model[slot]}"
