"""ttfs_pnr_io: bytes in, beats of Lanes bytes out (a short last beat on byte_last_i)."""

from __future__ import annotations

import random

import cocotb
from cocotb.triggers import FallingEdge, RisingEdge

from tests.hdl.common import start


@cocotb.test()
async def bytes_to_beats(dut):
    lanes = int(dut.Lanes.value)
    rng = random.Random(1)
    data = [rng.randrange(256) for _ in range(3 * lanes + 1)]
    await start(dut, byte_valid_i=0, byte_i=0, byte_last_i=0, in_ready_i=0, scores_i=0)
    beats, k = [], 0
    while len(beats) < 4:
        await RisingEdge(dut.clk_i)
        dut.byte_valid_i.value = int(k < len(data))
        if k < len(data):
            dut.byte_i.value = data[k]
            dut.byte_last_i.value = int(k == len(data) - 1)
        dut.in_ready_i.value = int(rng.random() < 0.5)
        await FallingEdge(dut.clk_i)
        if k < len(data) and int(dut.byte_ready_o.value):
            k += 1
        if int(dut.in_valid_o.value) and int(dut.in_ready_i.value):
            raw = int(dut.in_data_o.value)
            beats.append(([raw >> (8 * i) & 0xFF for i in range(lanes)], int(dut.in_last_o.value)))
    flat = [b for beat, _ in beats for b in beat]
    assert flat[:len(data)] == data and [last for _, last in beats] == [0, 0, 0, 1]
