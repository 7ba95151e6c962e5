"""Integer golden simulator: the arithmetic contract every target must match bit for bit.

For a batch of input images (bytes) it runs the integer network of `ttfs.sdk.ir` layer by layer
(DESIGN.md section 4):

- operands: pixel bytes (`real` coding, first layer) or `kernel[t]` of the last spiking layer
  (or of the input layer under `ttfs` coding) for inputs that spiked, 0 for silent ones;
- weighted layers: `u_j = bias_j + sum_i weight_ji * v_i` (int64; asserted within the
  accumulator bound M of `Network.info`);
- spiking layers: `t_j = min{t in [0, T-1] : u_j >= theta[t]}`, NO_SPIKE = T when none;
- max pool: the earliest spike time of each window; flatten: reshape;
- output: `scores = u`, `class = first index of the maximum`.

Spike counts are the neurons that fire per spiking layer; SOPs are, over every weighted layer fed
by spikes, the input events times their structural fan-out (dense: n_out; conv: C_out times the
output positions whose receptive field covers the input position).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ttfs.sdk import layerops, limits
from ttfs.sdk.ir import SPIKING, WEIGHTED, Conv2d, Dense, Flatten, Network, Output

#: Samples simulated at once at most; `ttfs.sdk.limits.chunk_size` lowers it for large layers.
CHUNK = limits.CHUNK


@dataclass(frozen=True, eq=False)
class Trace:
    """Everything a simulator computes for a batch of N samples (integer golden, float
    simulators, and the traces read back from the C and Verilog targets).

    `times[k]` is [N, *out_shape] of `layer_names[k]`: every layer that produces spike times
    (spiking layers and max pools, in order; flatten is a pure reshape and is left out);
    NO_SPIKE = T. `input_times` is [N, C, H, W] under `ttfs` coding, else None. Integer
    simulators give int32 times and scores, float simulators int64 times and float64 scores.
    """

    layer_names: tuple[str, ...]
    times: tuple[np.ndarray, ...]
    input_times: np.ndarray | None
    scores: np.ndarray          # [N, n_out]
    classes: np.ndarray         # [N]
    spike_counts: np.ndarray    # [N, n_spiking_layers]
    input_spikes: np.ndarray    # [N], 0 under real coding
    sops: np.ndarray            # int64 [N]

    def __len__(self) -> int:
        return len(self.classes)

    def spikes_per_hidden_neuron(self, net) -> float:
        """Mean over samples of (hidden spikes / hidden spiking neurons); `net` is the
        `ttfs.sdk.ir.Network` or `ttfs.sdk.floatnet.FloatNetwork` the trace belongs to."""
        spiking = {layer.name for layer in net.layers if layer.kind in ("conv2d", "dense")}
        n_hidden = sum(math.prod(t.shape[1:]) for name, t in zip(self.layer_names, self.times)
                       if name in spiking)
        return float(self.spike_counts.sum(axis=1).mean() / n_hidden)


def head(trace: Trace, n: int) -> Trace:
    """The first n samples of `trace` (every per-sample field sliced)."""
    def cut(a):
        return None if a is None else a[:n]

    return Trace(layer_names=trace.layer_names, times=tuple(a[:n] for a in trace.times),
                 input_times=cut(trace.input_times), scores=trace.scores[:n],
                 classes=trace.classes[:n], spike_counts=trace.spike_counts[:n],
                 input_spikes=trace.input_spikes[:n], sops=trace.sops[:n])


def as_images(net: Network, images: np.ndarray) -> np.ndarray:
    """Check and reshape input bytes to uint8 [N, C, H, W] (accepts [N, C*H*W] too)."""
    images = np.asarray(images)
    if images.dtype != np.uint8:
        raise ValueError(f"images: expected uint8 bytes, got {images.dtype}")
    if images.ndim == 2 and images.shape[1] == net.n_inputs:
        images = images.reshape((len(images), *net.input_shape))
    if images.shape[1:] != tuple(net.input_shape):
        raise ValueError(f"images: expected shape [N, {', '.join(map(str, net.input_shape))}] "
                         f"or [N, {net.n_inputs}], got {list(images.shape)}")
    return images


def run(net: Network, images: np.ndarray) -> Trace:
    """Simulate `net` on uint8 `images` ([N, C, H, W] or [N, C*H*W]); see the module doc.

    Samples run in chunks of `ttfs.sdk.limits.chunk_size` (at most CHUNK), so the working memory
    stays within `ttfs.sdk.limits.SIM_BUDGET_BYTES` besides the returned trace. BLAS runs on one
    thread (threadpoolctl): the matrices are small, and threads only fight over the cores.
    """
    images = as_images(net, images)
    chunk = limits.chunk_size(net.steps)
    with layerops.one_blas_thread():
        return layerops.chunked(lambda part: _run_chunk(net, part), images, chunk)


def operands(times: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """v = kernel[t] for t < T, 0 for NO_SPIKE (= T = len(kernel)); int64."""
    T = len(kernel)
    return np.where(times < T, kernel.astype(np.int64)[np.minimum(times, T - 1)], 0)


def first_crossing(v_mem: np.ndarray, theta: np.ndarray) -> np.ndarray:
    """t = min{t : v_mem >= theta[t]}, or T when v_mem stays below every threshold.

    theta is non-increasing, so the crossed steps form a suffix of [0, T-1]; in the
    non-decreasing -theta, t is the left insertion point of -v_mem.
    """
    return np.searchsorted(-theta.astype(np.int64), -v_mem, side="left").astype(np.int32)


def exact_matmul(a: np.ndarray, b: np.ndarray, bound: int) -> np.ndarray:
    """a @ b for int64 matrices whose every partial sum is bounded by `bound` < 2^31.

    Computed with float64 BLAS: every product and partial sum is an integer of magnitude
    <= bound < 2^53, so each float64 operation is exact in any summation order.
    """
    if bound >= 2**52:
        raise ValueError("exact_matmul: bound too large for exact float64 accumulation")
    return np.rint(np.asarray(a, dtype=np.float64) @ np.asarray(b, dtype=np.float64)
                   ).astype(np.int64)


def _run_chunk(net: Network, images: np.ndarray) -> Trace:
    n = len(images)
    input_times = None if net.input_coding == "real" else net.input_times[images]
    # spike_times is None while the operands are still pixel bytes (real coding)
    spike_times, kernel = input_times, net.input_kernel
    v = images.astype(np.int64) if input_times is None else operands(input_times, kernel)
    names, all_times, counts = [], [], []
    sops = np.zeros(n, dtype=np.int64)
    for layer, info in zip(net.layers, net.info):
        if isinstance(layer, WEIGHTED):
            if spike_times is not None:
                events = layerops.flat(spike_times < net.T).astype(np.int64)
                sops += events @ _fan_out(layer, info.in_shape).reshape(-1)
            u = integrate(layer, v, info.acc_bound)
            if np.abs(u).max(initial=0) > info.acc_bound:
                raise AssertionError(f"{layer.name}: accumulator left its bound {info.acc_bound}")
        if isinstance(layer, Output):
            break
        if isinstance(layer, Flatten):
            v = layerops.flat(v)
            spike_times = None if spike_times is None else layerops.flat(spike_times)
            continue
        if isinstance(layer, SPIKING):
            spike_times, kernel = first_crossing(u, layer.theta), layer.kernel
            counts.append(layerops.flat(spike_times < net.T).sum(axis=1))
        else:
            spike_times = layerops.pool_min(spike_times, layer.size)
        v = operands(spike_times, kernel)
        names.append(layer.name)
        all_times.append(spike_times.astype(np.int32))
    input_spikes = (np.zeros(n, dtype=np.int32) if input_times is None
                    else layerops.flat(input_times < net.T).sum(axis=1).astype(np.int32))
    return Trace(
        layer_names=tuple(names),
        times=tuple(all_times),
        input_times=None if input_times is None else input_times.astype(np.int32),
        scores=u.astype(np.int32),
        classes=np.argmax(u, axis=1).astype(np.int32),
        spike_counts=np.stack(counts, axis=1).astype(np.int32) if counts
        else np.zeros((n, 0), dtype=np.int32),
        input_spikes=input_spikes,
        sops=sops,
    )


def integrate(layer: Dense | Conv2d | Output, v: np.ndarray, bound: int) -> np.ndarray:
    """Membrane potentials u (int64) of a weighted layer for operands v [N, *in_shape]:
    u = bias + W v, every partial sum within `bound` (the layer's M)."""
    weight = layer.weight.astype(np.int64)

    def matmul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return exact_matmul(a, b, bound)

    if isinstance(layer, Conv2d):       # patches built in float64 at once (exact: |v| < 2^53)
        return (layerops.conv(v.astype(np.float64), weight, layer.stride, layer.padding, matmul)
                + layer.bias[None, :, None, None])
    return matmul(layerops.flat(v), weight.T) + layer.bias[None, :]


def _fan_out(layer: Dense | Conv2d | Output, in_shape: tuple[int, ...]) -> np.ndarray:
    """Synapses each input position drives (`ttfs.sdk.layerops.fan_out`), shape in_shape."""
    if isinstance(layer, Conv2d):
        return layerops.fan_out("conv2d", in_shape, layer.weight.shape[0],
                                layer.weight.shape[2], layer.stride, layer.padding)
    return layerops.fan_out(layer.kind, in_shape, layer.weight.shape[0])


@dataclass(frozen=True)
class Divergence:
    """The first place two traces differ: layer (in network order), then sample, then neuron.

    `layer` is "input" (ttfs input spikes), a layer name (spike times), "scores" or
    "classes"; `neuron` the flat index within the layer and `index` its (c, y, x) position.
    """

    layer: str
    sample: int
    neuron: int
    index: tuple[int, ...]
    expected: int
    got: int

    @property
    def time(self) -> int | None:
        """For spike times: the first time step at which the two disagree, min(expected, got)
        (one of them spikes then, the other does not); None for scores and classes."""
        return None if self.layer in ("scores", "classes") else min(self.expected, self.got)

    def to_dict(self) -> dict:
        """{"layer", "sample", "neuron", "time", "expected", "got"} (report.json, JUnit)."""
        return {"layer": self.layer, "sample": self.sample, "neuron": self.neuron,
                "time": self.time, "expected": self.expected, "got": self.got}

    def __str__(self) -> str:
        what = {"scores": "score", "classes": "class"}.get(self.layer, "spike time")
        return (f"first divergence at layer '{self.layer}', sample {self.sample}, neuron "
                f"{self.neuron} (index {self.index}): expected {what} {self.expected}, "
                f"got {self.got}")


def first_divergence(expected: Trace, got: Trace) -> Divergence | None:
    """Name the first layer, sample and neuron where `got` differs from `expected`, or None.

    Layers are compared in network order (input spikes, each layer's spike times, then the
    output scores and classes), so the reported place is the earliest cause.
    """
    if expected.layer_names != got.layer_names or (
            (expected.input_times is None) != (got.input_times is None)):
        raise ValueError(f"first_divergence: the traces have different layers "
                         f"({list(expected.layer_names)} and {list(got.layer_names)}, "
                         "with or without input spikes)")
    pairs = []
    if expected.input_times is not None:
        pairs.append(("input", expected.input_times, got.input_times))
    pairs += list(zip(expected.layer_names, expected.times, got.times))
    pairs += [("scores", expected.scores, got.scores), ("classes", expected.classes,
                                                       got.classes)]
    for name, a, b in pairs:
        a2, b2 = layerops.flat(np.asarray(a)), layerops.flat(np.asarray(b))
        if a2.shape != b2.shape:
            raise ValueError(f"first_divergence: layer '{name}' has shape {a2.shape} in one "
                             f"trace and {b2.shape} in the other")
        diff = np.argwhere(a2 != b2)
        if len(diff):
            sample, neuron = (int(x) for x in diff[0])
            index = tuple(int(x) for x in np.unravel_index(neuron, np.asarray(a).shape[1:]))
            return Divergence(name, sample, neuron, index, int(a2[sample, neuron]),
                              int(b2[sample, neuron]))
    return None


def format_trace(net: Network, trace: Trace, sample: int = 0) -> str:
    """One sample's spike times per layer as readable text (fired neurons only)."""
    lines = [f"# golden trace of '{net.name}' sample {sample} (T = {net.T}, "
             f"NO_SPIKE = {net.T}, hash {net.content_hash})"]
    named = list(zip(trace.layer_names, trace.times))
    if trace.input_times is not None:
        named.insert(0, ("input", trace.input_times))
    for name, times in named:
        t = times[sample].reshape(-1)
        fired = np.flatnonzero(t < net.T)
        lines.append(f"{name}: shape {list(times.shape[1:])}, {len(fired)} spikes")
        lines.extend(f"  {j:6d} t={int(t[j])}" for j in fired)
    lines.append("scores: " + " ".join(str(int(s)) for s in trace.scores[sample]))
    lines.append(f"class: {int(trace.classes[sample])}")
    return "\n".join(lines) + "\n"
