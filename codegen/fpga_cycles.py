"""FPGA target, exact cycle model: cycles per inference (busy_o high) from the golden trace.

The engines run in lockstep phases: a phase is one producer (the input stage, or the scan of a
hidden engine) streaming its events into its consumer, which takes one event every `cost`
cycles (`Stage.cost`: integrating engines issue groups x taps per event, pools take one event
per cycle). A producer group (an input beat, or one slot of a scan) with e events therefore
costs e * cost cycles, and 1 cycle when e = 0. Between phases the consumer takes the end marker
and drains (`Stage.drain`); a scan spends one more cycle to fill its pipeline. So, with no input
gaps and no output back-pressure:

    cycles = 1 + sum_beats g(e, C_1)
             + sum_hidden (drain + fill + phase)
             + drain_out + groups_out + neurons_out,      g(e, C) = e * C if e > 0 else 1

(the input stage registers a beat before its events leave: INPUT_FILL = 1; the output engine
reads its groups, then compares one score per cycle for the argmax); e counts
handshakes (ceil(events / ways) with `ways` events per handshake into dense engines). With
parallel fire, fill = 2 (compares registered before the arbiter; pools: 1) and
phase = sum_slots g(e, C_next); with serial fire (one threshold per cycle) fill = T + 3 and a
slot is presented at least gap = T + 4 cycles after the previous one was loaded (the scan names
the read slot from flip-flops, so the next slot's membranes are captured two cycles after the
load, compared for T cycles, and offered after one more cycle in which the arbiter registers the
final fire mask), which `_phase` follows exactly.
The cocotb bench checks this on every vector; `design.json` carries the prediction.
"""

from __future__ import annotations

import numpy as np

from ttfs.codegen.fpga_view import Plan, Stage
from ttfs.sdk.vectors import Vectors


#: The input stage registers a taken beat before its events leave (ttfs_input.sv).
INPUT_FILL = 1


def scan_fill(stage: Stage, T: int) -> int:
    """Cycles from a hidden stage's data being complete to its first slot being offered
    (ttfs_scan.sv): serial fire T + 3; parallel fire 2 (the compares are registered before the
    arbiter: MaskReg); pools 1."""
    if stage.fire_serial:
        return T + 3
    return 2 if stage.kind == "layer" else 1


def scan_gap(stage: Stage, T: int) -> int:
    """Least cycles from a hidden stage's slot being loaded to the next slot being offered:
    serial fire T + 4 (read slot registered: capture 2 cycles after the load, T compares, a
    settle cycle for the arbiter's mask register, offer); 0 (no constraint) otherwise."""
    return T + 4 if stage.fire_serial else 0


def _group_cost(events: np.ndarray, cost: int, ways: int) -> np.ndarray:
    shakes = -(-events // ways)
    return np.where(shakes > 0, shakes * cost, 1).sum(axis=1).astype(np.int64)


def slot_events(stage: Stage, times: np.ndarray, T: int) -> np.ndarray:
    """Events per scan slot [N, groups * positions] of a hidden stage from its spike times
    [N, channels * positions] (slot g * positions + pos, lanes = channels g*P .. g*P+P-1)."""
    n = len(times)
    t = np.full((n, stage.groups * stage.lanes, stage.positions), T, np.int64)
    t[:, :stage.channels] = times.reshape(n, stage.channels, stage.positions)
    spikes = (t < T).reshape(n, stage.groups, stage.lanes, stage.positions).sum(axis=2)
    return spikes.reshape(n, -1)


def _phase(events: np.ndarray, cost: int, gap: int) -> np.ndarray:
    """Cycles from a scan's first loaded slot to its end marker being taken, per sample.

    Exact handshake recurrence over the slots (numpy over the samples): slot s is presented
    from cycle F (at least `gap` cycles after the previous slot was: serial fire); its e events
    (handshakes of up to `ways` events, already divided) are taken at max(F, R), then every
    `cost` cycles, R being the cycle the consumer is ready
    again (a slot without events still waits for R); the next slot follows the cycle after the
    last one was taken; the end marker is taken at max(F, R). With gap = 0 this sums to
    sum_slots g(e, cost).
    """
    n = len(events)
    start = np.zeros(n, np.int64)       # F: the current slot is presented
    ready = np.zeros(n, np.int64)       # R: the consumer takes its next event
    prev = np.full(n, -gap, np.int64)
    for s in range(events.shape[1]):
        start = np.maximum(start, prev + gap)
        e = events[:, s]
        first = np.maximum(start, ready)
        done = first + np.maximum(e - 1, 0) * cost
        ready = np.where(e > 0, done + cost, ready)
        prev, start = start, done + 1
    return np.maximum(start, ready)


def predict_cycles(p: Plan, vec: Vectors) -> np.ndarray:
    """Cycles per inference of every vector (int64 [N]); see the module doc."""
    n = len(vec)
    padded = np.zeros((n, p.beats * p.lanes), np.int64)
    padded[:, :p.pixels] = vec.inputs >= p.min_byte
    first = p.stages[0]
    total = INPUT_FILL + _group_cost(padded.reshape(n, p.beats, p.lanes).sum(axis=2), first.cost,
                                     first.ways)
    times = dict(zip(vec.trace.layer_names, vec.trace.times))
    for stage, consumer in zip(p.stages[:-1], p.stages[1:]):
        events = -(-slot_events(stage, times[stage.name].reshape(n, -1), p.T) // consumer.ways)
        fill = scan_fill(stage, p.T)
        total += stage.drain + fill + _phase(events, consumer.cost, scan_gap(stage, p.T))
    return total + p.out.drain + p.out.groups + p.out.channels


def dense_cycles(p: Plan) -> int:
    """Cycles of the same engines if nothing were skipped: every input pixel and every neuron
    an event (the all-spiking worst case)."""
    total = INPUT_FILL + -(-p.pixels // p.stages[0].ways) * p.stages[0].cost
    for stage, consumer in zip(p.stages[:-1], p.stages[1:]):
        fill = scan_fill(stage, p.T)
        slots = stage.groups * stage.positions
        shakes = -(-stage.channels * stage.positions // consumer.ways)
        total += stage.drain + fill + max(shakes * consumer.cost,
                                          slots * max(1, scan_gap(stage, p.T)))
    return total + p.out.drain + p.out.groups + p.out.channels


def synaptic_ops(p: Plan, vec: Vectors) -> np.ndarray:
    """Accumulate cycles the engines spend per image (events x cost, summed over phases): the
    work the PEs do, padded taps and lanes included."""
    n = len(vec)
    total = (vec.inputs >= p.min_byte).sum(axis=1).astype(np.int64) * p.stages[0].cost
    times = dict(zip(vec.trace.layer_names, vec.trace.times))
    for stage, consumer in zip(p.stages[:-1], p.stages[1:]):
        spikes = (times[stage.name].reshape(n, -1) < p.T).sum(axis=1)
        total += spikes * consumer.cost
    return total
