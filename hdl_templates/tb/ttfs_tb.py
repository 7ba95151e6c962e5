"""cocotb testbench of an exported TTFS design (`<name>_top`), checked against golden vectors.

Copied verbatim into OUT/tb/ by `ttfs-export --target fpga`; `run.py` beside it builds and runs
it. It reads OUT/tb/design.json (widths, layer names, predicted cycles) and OUT/vectors.npz.

The TB drives every image on the AXI4-Stream slave (`s_axis_*`, `lanes` bytes per beat, tlast
on the last) and takes class and scores from the AXI4-Stream master (`m_axis_*`: 32-bit word 0 =
class, word j + 1 = score j); it also watches each hidden stage's event stream (`<stage>_evt_*`
wires of the top: spiking layers and pools), so a mismatch names the first sample, layer and
neuron that diverged. Two passes:

- exact: no idle gaps, no back-pressure; the cycles busy_o is high must equal the exporter's
  prediction for every vector;
- stress: random idle gaps on the input and random back-pressure on the output (seeded), on
  the first STRESS_VECTORS vectors (the handshakes, not the arithmetic, are under test).

Handshakes are sampled at the falling edge (everything has settled for the next rising edge)
and inputs are driven just after the rising edge, which behaves the same on every simulator.
Environment: TTFS_TB_OUT (export folder), TTFS_TB_RESULT (JSON written here), TTFS_TB_LIMIT
(vectors, 0 = all), TTFS_TB_SEED, TTFS_TB_STRESS (0 skips the stress pass).
"""

from __future__ import annotations

import json
import os
import random
from pathlib import Path

import numpy as np

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import FallingEdge, RisingEdge


STRESS_VECTORS = 8


def unpack_result(raw: int, n_out: int) -> list[int]:
    """m_axis_tdata -> [class, score 0, ..., score n_out-1] (32-bit words, scores signed)."""
    words = [(raw >> (32 * j)) & 0xFFFFFFFF for j in range(n_out + 1)]
    return [words[0]] + [w - (1 << 32) if w >> 31 else w for w in words[1:]]


class Driver:
    """Sends images as beats (valid/ready/last), with random idle cycles when `gap` > 0."""

    def __init__(self, dut, images: np.ndarray, lanes: int, gap: float, rng: random.Random):
        self.dut, self.lanes, self.gap, self.rng = dut, lanes, gap, rng
        padded = np.zeros((len(images), -(-images.shape[1] // lanes) * lanes), np.uint8)
        padded[:, :images.shape[1]] = images
        self.beats = padded.reshape(len(images), -1, lanes)
        self.sample, self.beat = 0, 0
        self.valid = False

    @property
    def finished(self) -> bool:
        return self.sample >= len(self.beats)

    def accepted(self) -> None:
        """The beat on the bus was taken at this rising edge."""
        self.beat += 1
        if self.beat == self.beats.shape[1]:
            self.sample, self.beat = self.sample + 1, 0

    def drive(self) -> None:
        self.valid = not self.finished and self.rng.random() >= self.gap
        self.dut.s_axis_tvalid.value = int(self.valid)
        if self.valid:
            beat = self.beats[self.sample, self.beat]
            self.dut.s_axis_tdata.value = int.from_bytes(beat.tobytes(), "little")
            self.dut.s_axis_tlast.value = int(self.beat == self.beats.shape[1] - 1)


def _field(signal, k: int, ways: int) -> int | None:
    """Way k's slice of a signal holding `ways` equal fields (way 0 in the low bits); None
    when it is not all 0/1."""
    bits = str(signal.value)
    width = len(bits) // ways
    part = bits[len(bits) - (k + 1) * width:len(bits) - k * width]
    return int(part, 2) if set(part) <= {"0", "1"} else None


class LayerMonitor:
    """Collects one hidden layer's spike times per inference from its event stream."""

    def __init__(self, dut, name: str, neurons: int, T: int, ways: int):
        self.name, self.neurons, self.T, self.ways = name, neurons, T, ways
        self.way_bits = getattr(dut, f"{name}_evt_ways")
        self.valid = getattr(dut, f"{name}_evt_valid")
        self.ready = getattr(dut, f"{name}_evt_ready")
        self.last = getattr(dut, f"{name}_evt_last")
        self.index = getattr(dut, f"{name}_evt_index")
        self.code = getattr(dut, f"{name}_evt_code")
        self.current = np.full(neurons, T, np.int64)
        self.done: list[np.ndarray] = []

    def sample(self) -> None:
        if not (int(self.valid.value) and int(self.ready.value)):
            return
        if int(self.last.value):
            self.done.append(self.current)
            self.current = np.full(self.neurons, self.T, np.int64)
            return
        present = int(self.way_bits.value)
        for k in range(self.ways):
            if not present >> k & 1:
                continue       # an absent way's fields are don't-care (may hold X)
            index, code = _field(self.index, k, self.ways), _field(self.code, k, self.ways)
            if index is None or code is None or index >= self.neurons or \
                    self.current[index] != self.T:
                self.current[:] = -1   # an impossible event: mark the whole layer as diverged
                return
            self.current[index] = code


class TB:
    """Owns clock, reset, driver, monitors and the in-order checker."""

    def __init__(self, dut, design: dict, data: dict, limit: int):
        self.dut, self.design = dut, design
        n = len(data["classes"]) if limit <= 0 else min(limit, len(data["classes"]))
        self.inputs = data["inputs"][:n]
        self.classes = data["classes"][:n]
        self.scores = data["scores"][:n]
        self.times = {name: data[f"times/{name}"][:n].reshape(n, -1)
                      for name in design["hidden"]}
        self.predicted = design["predicted_cycles"][:n]
        self.mismatches: list[str] = []
        self.first_divergence: dict | None = None   # the first mismatch, as golden names it
        self.cycles: list[int] = []

    async def start(self) -> None:
        dut = self.dut
        cocotb.start_soon(Clock(dut.clk_i, 10, unit="ns").start())
        dut.s_axis_tvalid.value = 0
        dut.s_axis_tdata.value = 0
        dut.s_axis_tlast.value = 0
        dut.m_axis_tready.value = 0
        dut.rst_ni.value = 0
        for _ in range(3):
            await RisingEdge(dut.clk_i)
        dut.rst_ni.value = 1
        await RisingEdge(dut.clk_i)

    async def run(self, count: int, *, gap: float, backpressure: float, seed: int) -> list[int]:
        """Send the first `count` vectors; check each result in order; return the busy cycles
        of each."""
        dut, design = self.dut, self.design
        rng = random.Random(seed)
        driver = Driver(dut, self.inputs[:count], design["lanes"], gap, rng)
        layers = [LayerMonitor(dut, name, self.times[name].shape[1], design["T"],
                               design["out_ways"][name]) for name in design["hidden"]]
        cycles, busy, ready, got = [], 0, 0, 0
        watchdog = 0
        driver.drive()
        while got < count:
            await FallingEdge(dut.clk_i)
            in_fire = driver.valid and int(dut.s_axis_tready.value)
            out_fire = ready and int(dut.m_axis_tvalid.value)
            if int(dut.frame_error_o.value):
                raise AssertionError(f"frame_error_o raised on a well-formed frame ({got})")
            busy += int(dut.busy_o.value)
            for monitor in layers:
                monitor.sample()
            if out_fire:
                self._check(got, layers)
                cycles.append(busy)
                busy, got, watchdog = 0, got + 1, 0
            watchdog += 1
            if watchdog > 200_000:
                raise AssertionError(f"timeout: no result for sample {got}")
            await RisingEdge(dut.clk_i)
            if in_fire:
                driver.accepted()
            driver.drive()
            ready = int(rng.random() >= backpressure)
            dut.m_axis_tready.value = ready
        dut.s_axis_tvalid.value = 0
        return cycles

    def _check(self, k: int, layers: list[LayerMonitor]) -> None:
        dut, design = self.dut, self.design
        words = unpack_result(dut.m_axis_tdata.value.to_unsigned(), design["n_out"])
        got_class, scores = words[0], words[1:]
        if not int(dut.m_axis_tlast.value):
            self.mismatches.append(f"sample {k}: m_axis_tlast low on the result beat")
        problem = div = None
        for monitor in layers:
            seen = monitor.done[k] if k < len(monitor.done) else None
            expected = self.times[monitor.name][k]
            if seen is None or not np.array_equal(seen, expected):
                j = 0 if seen is None else int(np.flatnonzero(seen != expected)[0])
                got = None if seen is None else int(seen[j])
                problem = (f"sample {k}: first divergence at layer '{monitor.name}', neuron {j}: "
                           f"expected spike time {int(expected[j])}, got "
                           f"{'nothing' if got is None else got}")
                div = {"layer": monitor.name, "sample": k, "neuron": j,
                       "time": None if got is None else min(got, int(expected[j])),
                       "expected": int(expected[j]), "got": got}
                break
        if problem is None and list(self.scores[k]) != scores:
            j = int(np.flatnonzero(np.array(scores) != self.scores[k])[0])
            problem = (f"sample {k}: first divergence at layer 'scores', neuron {j}: expected "
                       f"score {int(self.scores[k][j])}, got {scores[j]}")
            div = {"layer": "scores", "sample": k, "neuron": j, "time": None,
                   "expected": int(self.scores[k][j]), "got": int(scores[j])}
        if problem is None and got_class != int(self.classes[k]):
            problem = f"sample {k}: expected class {int(self.classes[k])}, got {got_class}"
            div = {"layer": "classes", "sample": k, "neuron": 0, "time": None,
                   "expected": int(self.classes[k]), "got": int(got_class)}
        if problem is not None:
            dut._log.error(problem)
            self.mismatches.append(problem)
            if self.first_divergence is None:
                self.first_divergence = div


@cocotb.test()
async def golden_vectors(dut):
    """Every vector: classes, scores and hidden spike times equal the golden simulator's."""
    out = Path(os.environ["TTFS_TB_OUT"])
    design = json.loads((out / "tb" / "design.json").read_text())
    with np.load(out / "vectors.npz", allow_pickle=False) as npz:
        data = {key: npz[key] for key in npz.files}
    seed = int(os.environ.get("TTFS_TB_SEED", "1"))
    tb = TB(dut, design, data, int(os.environ.get("TTFS_TB_LIMIT", "0")))
    await tb.start()
    cycles = await tb.run(len(tb.inputs), gap=0.0, backpressure=0.0, seed=seed)
    wrong = [(k, c, p) for k, (c, p) in enumerate(zip(cycles, tb.predicted)) if c != p]
    exact_mismatches = len(tb.mismatches)
    if os.environ.get("TTFS_TB_STRESS", "1") == "1":
        await tb.run(min(STRESS_VECTORS, len(tb.inputs)), gap=0.3, backpressure=0.3,
                     seed=seed + 1)
    result = {
        "vectors": len(tb.inputs),
        "mismatches": len(tb.mismatches),
        "first_mismatch": tb.mismatches[0] if tb.mismatches else None,
        "first_divergence": tb.first_divergence,
        "exact_pass_mismatches": exact_mismatches,
        "cycles": cycles,
        "cycles_mean": float(np.mean(cycles)) if cycles else 0.0,
        "cycles_max": int(max(cycles, default=0)),
        "cycles_predicted_ok": not wrong,
        "cycles_first_wrong": (f"sample {wrong[0][0]}: measured {wrong[0][1]} cycles, "
                               f"predicted {wrong[0][2]}") if wrong else None,
    }
    Path(os.environ["TTFS_TB_RESULT"]).write_text(json.dumps(result, indent=1) + "\n")
    assert not tb.mismatches, f"{len(tb.mismatches)} mismatches; first: {tb.mismatches[0]}"
    assert not wrong, f"cycle prediction failed: {result['cycles_first_wrong']}"
