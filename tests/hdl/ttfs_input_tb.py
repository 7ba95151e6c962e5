"""ttfs_input: good frames give one event per spiking pixel (index, byte) and the end marker;
a frame one beat short or long pulses frame_error_o/clear_o, emits no end marker, and is
swallowed up to its tlast; random gaps on the input and back-pressure on the events."""

from __future__ import annotations

import random

import cocotb
from cocotb.triggers import FallingEdge, RisingEdge

from tests.hdl.common import start


@cocotb.test()
async def frames_and_errors(dut):
    lanes, pixels, min_byte = (int(getattr(dut, k).value) for k in ("Lanes", "Pixels",
                                                                    "MinByte"))
    beats = -(-pixels // lanes)
    rng = random.Random(2)
    frames = []
    for kind in ["good", "short", "good", "long", "good", "good"]:
        image = [rng.choice([0, 0, rng.randrange(256)]) for _ in range(pixels)]
        n = beats + {"good": 0, "short": -1, "long": 1}[kind]
        frames.append((kind, image, [image[b * lanes:(b + 1) * lanes] for b in range(n)]))
    beats_q = [(beat + [0] * (lanes - len(beat)), b == len(f[2]) - 1)
               for f in frames for b, beat in enumerate(f[2])]
    await start(dut, s_axis_tvalid=0, s_axis_tdata=0, s_axis_tlast=0, evt_ready_i=0, done_i=0)
    events, markers, errors, k, done_delay = [], 0, 0, 0, -1
    cur: list = []
    while markers < 4:
        await RisingEdge(dut.clk_i)
        valid = k < len(beats_q) and rng.random() < 0.8
        dut.s_axis_tvalid.value = int(valid)
        if valid:
            dut.s_axis_tdata.value = sum(b << (8 * i) for i, b in enumerate(beats_q[k][0]))
            dut.s_axis_tlast.value = int(beats_q[k][1])
        dut.evt_ready_i.value = int(rng.random() < 0.7)
        dut.done_i.value = int(done_delay == 0)
        done_delay -= 1
        await FallingEdge(dut.clk_i)
        if valid and int(dut.s_axis_tready.value):
            k += 1
        errors += int(dut.frame_error_o.value)
        assert int(dut.clear_o.value) == int(dut.frame_error_o.value)
        if int(dut.frame_error_o.value):
            cur = []
        if int(dut.evt_valid_o.value) and int(dut.evt_ready_i.value):
            if int(dut.evt_last_o.value):
                events.append(cur)
                cur, markers, done_delay = [], markers + 1, 3
            else:
                cur.append((int(dut.evt_index_o.value), int(dut.evt_code_o.value)))
    good = [f[1] for f in frames if f[0] == "good"]
    assert events == [[(i, b) for i, b in enumerate(img) if b >= min_byte] for img in good]
    assert errors == 2
