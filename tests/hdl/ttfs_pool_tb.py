"""ttfs_pool: random spike events (any order, partial border included) -> one event per window
with its earliest time, then the end marker; twice, so the entries must clear in between. With
Ways = 2, handshakes carry two events of one window position and different lanes (or one), as a
scan slot's; with OutWays = 2 the output handshakes carry up to two windows."""

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


def _handshakes(events: list, p: dict, h: int, w: int, rng: random.Random) -> list:
    """Events -> handshakes ([(index, t), ...], last=0) of up to Ways events with one (channel
    group, y, x) and different lanes, like a scan slot's; a random share goes alone."""
    def slot(index):
        c = index // (h * w)
        return c // p["Lanes"], index // w % h, index % w

    out, pending = [], list(events)
    while pending:
        ways = [pending.pop(0)]
        mate = [e for e in pending if slot(e[0]) == slot(ways[0][0])
                and e[0] // (h * w) % p["Lanes"] != ways[0][0] // (h * w) % p["Lanes"]]
        if p["Ways"] == 2 and mate and rng.random() < 0.8:
            ways.append(mate[0])
            pending.remove(mate[0])
        out.append((ways, 0))
    return out


@cocotb.test()
async def earliest_spike_per_window(dut):
    p = {k: int(getattr(dut, k).value) for k in ("Lanes", "Groups", "InHeight", "InWidth",
                                                 "Size", "TimeBits", "IdxBits", "OutIdxBits",
                                                 "Ways", "OutWays")}
    c, h, w = p["Lanes"] * p["Groups"], p["InHeight"], p["InWidth"]
    rng = random.Random(9)
    await start(dut, evt_valid_i=0, evt_last_i=0, evt_ways_i=0, evt_index_i=0, evt_code_i=0,
                evt_ready_i=0, clear_i=0)
    for round_ in range(2):
        indices = rng.sample(range(c * h * w), c * h * w // 2)
        events = {i: rng.randrange(1 << p["TimeBits"]) for i in indices}
        stream = _handshakes(list(events.items()), p, h, w, rng) + [([], 1)]
        got: dict = {}
        k, done = 0, False
        while not done:
            await RisingEdge(dut.clk_i)
            if k < len(stream):
                ways, last = stream[k]
                dut.evt_valid_i.value = 1
                dut.evt_last_i.value = last
                dut.evt_ways_i.value = (1 << len(ways)) - 1
                dut.evt_index_i.value = sum(i << (n * p["IdxBits"]) for n, (i, _) in
                                            enumerate(ways))
                dut.evt_code_i.value = sum(t << (n * p["TimeBits"]) for n, (_, t) in
                                           enumerate(ways))
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
                    valid = int(dut.evt_ways_o.value)
                    index, code = int(dut.evt_index_o.value), int(dut.evt_code_o.value)
                    for n in range(p["OutWays"]):
                        if valid >> n & 1:
                            j = index >> (n * p["OutIdxBits"]) & ((1 << p["OutIdxBits"]) - 1)
                            assert j not in got, f"round {round_}: window {j} emitted twice"
                            got[j] = code >> (n * p["TimeBits"]) & ((1 << p["TimeBits"]) - 1)
        assert got == _expected(events, c, h, w, p["Size"]), f"round {round_}"
