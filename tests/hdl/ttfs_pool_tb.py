"""ttfs_pool: random spike events (any order, partial border included) -> one event per window
with its earliest time, then the end marker; twice, so the entries must clear in between."""

from __future__ import annotations

import random

import cocotb
from cocotb.triggers import FallingEdge, RisingEdge

from tests.hdl.common import start


def _expected(events: dict, c: int, h: int, w: int, size: int) -> dict:
    oh, ow = h // size, w // size
    out: dict = {}
    for index, t in events.items():
        ch, y, x = index // (h * w), index // w % h, index % w
        if y // size < oh and x // size < ow:
            j = (ch * oh + y // size) * ow + x // size
            out[j] = min(out.get(j, t), t)
    return out


@cocotb.test()
async def earliest_spike_per_window(dut):
    p = {k: int(getattr(dut, k).value) for k in ("Lanes", "Groups", "InHeight", "InWidth",
                                                 "Size", "TimeBits")}
    c, h, w = p["Lanes"] * p["Groups"], p["InHeight"], p["InWidth"]
    rng = random.Random(9)
    await start(dut, evt_valid_i=0, evt_last_i=0, evt_index_i=0, evt_code_i=0, evt_ready_i=0,
                clear_i=0)
    for round_ in range(2):
        indices = rng.sample(range(c * h * w), c * h * w // 2)
        events = {i: rng.randrange(1 << p["TimeBits"]) for i in indices}
        stream = [(i, t, 0) for i, t in events.items()] + [(0, 0, 1)]
        got: dict = {}
        k, done = 0, False
        while not done:
            await RisingEdge(dut.clk_i)
            if k < len(stream):
                dut.evt_valid_i.value = 1
                dut.evt_index_i.value, dut.evt_code_i.value, dut.evt_last_i.value = stream[k]
            else:
                dut.evt_valid_i.value = 0
            dut.evt_ready_i.value = int(rng.random() < 0.6)
            await FallingEdge(dut.clk_i)
            if k < len(stream) and int(dut.evt_ready_o.value):
                k += 1
            if int(dut.evt_valid_o.value) and int(dut.evt_ready_i.value):
                if int(dut.evt_last_o.value):
                    done = True
                else:
                    j = int(dut.evt_index_o.value)
                    assert j not in got, f"round {round_}: window {j} emitted twice"
                    got[j] = int(dut.evt_code_o.value)
        assert got == _expected(events, c, h, w, p["Size"]), f"round {round_}"
