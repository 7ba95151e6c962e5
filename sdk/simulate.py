"""Float SNN simulators on a `FloatNetwork` (numpy, float64).

Two simulators that must agree (DESIGN.md section 5):

- `run_closed_form`: per spiking layer z = b + W a (a = decoded input values) and the spike time
  t = min{t in [0, T-1] : z >= theta(t)} (NO_SPIKE = T), decoded a = eps(t) = exp(-(t-td)/tau).
- `run_time_stepped`: the literal SNN. Layers run in lockstep windows of T steps (layer l fires
  while layer l+1 integrates; no early firing). In each step t = 0..T-1 of its integration window
  a layer adds W_ji * eps_{l-1}(t) for every input i that spikes at t (`real` input: W x once at
  the start; the bias at the start); then, in its fire window, a neuron fires at the first step
  whose threshold theta(t) = exp(-(t - td + q)/tau) its complete membrane reaches. Max pooling
  forwards the earliest spike in each window (stride = size; a partial border is dropped).

Both return a `Trace` with the same definitions as the integer golden simulator:
spike count = neurons that fire per spiking layer per inference (input spikes separately, `ttfs`
coding); SOPs = over every weighted layer fed by spikes (all but the first under `real`
coding), the incoming spike events (after pooling) times their structural fan-out (dense/output:
the number of outputs; conv: C_out times the output positions whose receptive field covers the
input position). Spikes per hidden neuron = total hidden spikes / hidden spiking neurons.
"""

from __future__ import annotations

import numpy as np

from ttfs.sdk import layerops, limits
from ttfs.sdk.floatnet import (SPIKING_KINDS, WEIGHTED_KINDS, FloatLayer, FloatNetwork,
                          kernel_values, threshold_values)
from ttfs.sdk.golden import Trace

#: Samples simulated at once at most (`ttfs.sdk.limits.chunk_size` lowers it for large layers).
CHUNK = limits.CHUNK


def threshold_table(tau: float, td: float, *, T: int, q: float) -> np.ndarray:
    """theta(t) = exp(-(t - td + q) / tau), t = 0..T-1 (float64, decreasing)."""
    return np.array(threshold_values(tau, td, T=T, q=q))


def kernel_table(tau: float, td: float, *, T: int) -> np.ndarray:
    """eps(t) = exp(-(t - td) / tau), t = 0..T-1."""
    return np.array(kernel_values(tau, td, T=T))


def first_crossing(v_mem: np.ndarray, theta: np.ndarray) -> np.ndarray:
    """min{t : v_mem >= theta[t]} or T = len(theta) (theta decreasing; int64)."""
    return np.searchsorted(-theta, -v_mem, side="left").astype(np.int64)


def decode(times: np.ndarray, tau: float, td: float, *, T: int) -> np.ndarray:
    """a = eps(t) for t < T, 0 for NO_SPIKE."""
    return np.where(times < T, kernel_table(tau, td, T=T)[np.minimum(times, T - 1)], 0.0)


def run_closed_form(net: FloatNetwork, images: np.ndarray) -> Trace:
    """Closed-form SNN on uint8 images [N, C, H, W] (see the module docstring)."""
    return _chunked(net, images, _closed_chunk)


def run_time_stepped(net: FloatNetwork, images: np.ndarray) -> Trace:
    """Literal step-by-step SNN on uint8 images [N, C, H, W] (see the module docstring)."""
    return _chunked(net, images, _stepped_chunk)


def _chunked(net: FloatNetwork, images: np.ndarray, chunk_fn) -> Trace:
    images = np.asarray(images)
    if images.dtype != np.uint8 or images.shape[1:] != tuple(net.input_shape):
        raise ValueError(f"images: expected uint8 [N, {', '.join(map(str, net.input_shape))}], "
                         f"got {images.dtype} {list(images.shape)}")
    steps = [(layer.kind, layer.in_shape, layer.out_shape, _k(layer)) for layer in net.layers]
    with layerops.one_blas_thread():
        return layerops.chunked(lambda part: chunk_fn(net, part), images,
                                limits.chunk_size(steps))


def _k(layer: FloatLayer) -> int:
    return layer.weight.shape[2] if layer.kind == "conv2d" else 1


def _closed_chunk(net: FloatNetwork, images: np.ndarray) -> Trace:
    def fire(tau: float, td: float, u: np.ndarray) -> np.ndarray:
        return first_crossing(u, threshold_table(tau, td, T=net.T, q=net.q))

    def integrate(layer: FloatLayer, v: np.ndarray, times: np.ndarray | None) -> np.ndarray:
        return _weighted(layer, v) + _bias(layer)

    return _simulate(net, images, fire, integrate, layerops.pool_min)


def _stepped_chunk(net: FloatNetwork, images: np.ndarray) -> Trace:
    T = net.T

    def fire(tau: float, td: float, u: np.ndarray) -> np.ndarray:
        theta = threshold_table(tau, td, T=T, q=net.q)
        times = np.full(u.shape, T, dtype=np.int64)
        for t in range(T):
            times[(times == T) & (u >= theta[t])] = t
        return times

    def integrate(layer: FloatLayer, v: np.ndarray, times: np.ndarray | None) -> np.ndarray:
        u = np.broadcast_to(_bias(layer), (len(v), *layer.out_shape)).copy()
        if times is None:           # real input: the image drives the membrane once, at t = 0
            return u + _weighted(layer, v)
        for t in range(T):          # v = eps(t) of the sender for inputs spiking at t
            u += _weighted(layer, np.where(times == t, v, 0.0))
        return u

    def pool(times: np.ndarray, size: int) -> np.ndarray:
        out = np.full(layerops.pool_min(times, size).shape, T, dtype=np.int64)
        for t in range(T):
            out[(out == T) & (layerops.pool_min(np.where(times == t, t, T), size) == t)] = t
        return out

    return _simulate(net, images, fire, integrate, pool)


def _simulate(net: FloatNetwork, images: np.ndarray, fire, integrate, pool) -> Trace:
    """Run the layers with the given fire / integrate / pool steps (shared bookkeeping)."""
    n, T = len(images), net.T
    v = images.astype(np.float64) / 255.0
    times, input_times = None, None     # times is None while the operands are pixel values
    if net.input_coding == "ttfs":
        kernel = (net.input_tau, net.input_td)
        times = input_times = fire(*kernel, v)
        v = decode(times, *kernel, T=T)
    names, all_times, counts = [], [], []
    sops = np.zeros(n, dtype=np.int64)
    for layer in net.layers:
        if layer.kind in WEIGHTED_KINDS:
            if times is not None:
                events = layerops.flat(times < T).astype(np.int64)
                sops += events @ fan_out(layer).reshape(-1)
            u = integrate(layer, v, times)
        if layer.kind == "output":
            break
        if layer.kind == "flatten":
            v = layerops.flat(v)
            times = None if times is None else layerops.flat(times)
            continue
        if layer.kind in SPIKING_KINDS:
            kernel = (layer.tau, layer.td)
            times = fire(*kernel, u)
            counts.append(layerops.flat(times < T).sum(axis=1))
        else:
            times = pool(times, layer.size)
        v = decode(times, *kernel, T=T)
        names.append(layer.name)
        all_times.append(times)
    return Trace(
        layer_names=tuple(names), times=tuple(all_times), input_times=input_times,
        scores=u, classes=np.argmax(u, axis=1).astype(np.int64),
        spike_counts=(np.stack(counts, axis=1) if counts else np.zeros((n, 0), np.int64)),
        input_spikes=(np.zeros(n, np.int64) if input_times is None
                      else layerops.flat(input_times < T).sum(axis=1)),
        sops=sops)


def _bias(layer: FloatLayer) -> np.ndarray:
    return layer.bias.reshape((-1,) + (1,) * (len(layer.out_shape) - 1))


def _weighted(layer: FloatLayer, v: np.ndarray) -> np.ndarray:
    """W v without bias: [N, *in_shape] -> [N, *out_shape]."""
    if layer.kind != "conv2d":
        return layerops.flat(v) @ layer.weight.T
    return layerops.conv(v, layer.weight, layer.stride, layer.padding)


def fan_out(layer: FloatLayer) -> np.ndarray:
    """Synapses each input position of a weighted layer drives, shape `layer.in_shape`
    (`ttfs.sdk.layerops.fan_out`)."""
    return layerops.fan_out(layer.kind, layer.in_shape, layer.out_shape[0], _k(layer),
                            layer.stride, layer.padding)
