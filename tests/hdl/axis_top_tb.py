"""cocotb bench: a generated `<name>_top` driven by cocotbext-axi's AxiStreamSource/AxiStreamSink.

Random pauses on the source and back-pressure on the sink; every result beat must equal the
golden class and scores of its image, in order. Then malformed frames: one beat short and one
beat long must each pulse frame_error_o and produce no result, and the next good frame must be
classified correctly. Environment: TTFS_TB_OUT (the export folder), TTFS_TB_SEED.
"""

from __future__ import annotations

import itertools
import json
import os
import random
from pathlib import Path

import numpy as np

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, RisingEdge
from cocotbext.axi import AxiStreamBus, AxiStreamFrame, AxiStreamSink, AxiStreamSource


def _frame(image: np.ndarray, lanes: int, beats: int) -> bytes:
    padded = np.zeros(beats * lanes, np.uint8)
    padded[:len(image)] = image
    return padded.tobytes()


def _unpack(data: bytes, n_out: int) -> tuple[int, list[int]]:
    words = np.frombuffer(bytes(data), dtype="<i4")
    assert len(words) == n_out + 1, f"result beat of {len(words)} words, expected {n_out + 1}"
    return int(words[0]), [int(w) for w in words[1:]]


class ErrorCounter:
    """Counts the cycles frame_error_o is high."""

    def __init__(self, dut):
        self.dut, self.count = dut, 0

    async def run(self):
        while True:
            await RisingEdge(self.dut.clk_i)
            self.count += int(self.dut.frame_error_o.value)


@cocotb.test()
async def axis_random_pauses(dut):
    out = Path(os.environ["TTFS_TB_OUT"])
    design = json.loads((out / "tb" / "design.json").read_text())
    rng = random.Random(int(os.environ.get("TTFS_TB_SEED", "1")))
    with np.load(out / "vectors.npz", allow_pickle=False) as npz:
        inputs, classes, scores = npz["inputs"], npz["classes"], npz["scores"]
    lanes, n_out = design["lanes"], design["n_out"]
    beats = -(-design["pixels"] // lanes)

    cocotb.start_soon(Clock(dut.clk_i, 10, unit="ns").start())
    source = AxiStreamSource(AxiStreamBus.from_prefix(dut, "s_axis"), dut.clk_i, dut.rst_ni,
                             reset_active_level=False)
    sink = AxiStreamSink(AxiStreamBus.from_prefix(dut, "m_axis"), dut.clk_i, dut.rst_ni,
                         reset_active_level=False)
    source.set_pause_generator(itertools.cycle([rng.random() < 0.3 for _ in range(97)]))
    sink.set_pause_generator(itertools.cycle([rng.random() < 0.4 for _ in range(89)]))
    errors = ErrorCounter(dut)
    dut.rst_ni.value = 0
    await ClockCycles(dut.clk_i, 3)
    dut.rst_ni.value = 1
    cocotb.start_soon(errors.run())

    for image in inputs:
        await source.send(AxiStreamFrame(_frame(image, lanes, beats)))
    for k in range(len(inputs)):
        frame = await sink.recv()
        got_class, got_scores = _unpack(frame.tdata, n_out)
        assert got_scores == [int(s) for s in scores[k]], f"sample {k}: scores differ"
        assert got_class == int(classes[k]), f"sample {k}: class {got_class}, expected {classes[k]}"
    assert errors.count == 0, "frame_error_o raised on well-formed frames"

    # malformed frames: one beat short, one beat long -> error pulses, no result
    await source.send(AxiStreamFrame(_frame(inputs[0], lanes, beats)[:-lanes]))
    if beats > 1:
        expected_errors = 2
    else:
        expected_errors = 1      # a one-beat frame cannot be one beat short
    await source.send(AxiStreamFrame(_frame(inputs[0], lanes, beats) + bytes(lanes)))
    await source.send(AxiStreamFrame(_frame(inputs[1], lanes, beats)))
    frame = await sink.recv()
    got_class, got_scores = _unpack(frame.tdata, n_out)
    assert got_scores == [int(s) for s in scores[1]] and got_class == int(classes[1]), \
        "the good frame after two malformed ones was misclassified"
    await ClockCycles(dut.clk_i, 20)
    assert sink.empty(), "a malformed frame produced a result"
    assert errors.count == expected_errors, f"frame_error_o pulsed {errors.count} times"
