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

from dataclasses import dataclass

import numpy as np

from sdk.floatnet import (SPIKING_KINDS, WEIGHTED_KINDS, FloatLayer, FloatNetwork,
                          kernel_values, threshold_values)

#: Samples simulated at once; bounds the im2col memory of convolutions.
CHUNK = 128


@dataclass(frozen=True, eq=False)
class Trace:
    """What a float simulator computes for N samples.

    `times[k]` (int64 [N, *out_shape], NO_SPIKE = T) belongs to `layer_names[k]`: every spiking
    layer and max pool in order. `input_times` is [N, C, H, W] under `ttfs` coding, else None.
    """

    layer_names: tuple[str, ...]
    times: tuple[np.ndarray, ...]
    input_times: np.ndarray | None
    scores: np.ndarray          # float64 [N, n_out]
    classes: np.ndarray         # int64 [N]
    spike_counts: np.ndarray    # int64 [N, n_spiking_layers]
    input_spikes: np.ndarray    # int64 [N], 0 under real coding
    sops: np.ndarray            # int64 [N]

    def spikes_per_hidden_neuron(self, net: FloatNetwork) -> float:
        """Mean over samples of (hidden spikes / hidden spiking neurons)."""
        n_hidden = sum(int(np.prod(layer.out_shape)) for layer in net.layers
                       if layer.kind in SPIKING_KINDS)
        return float(self.spike_counts.sum(axis=1).mean() / n_hidden)


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
    parts = [chunk_fn(net, images[i:i + CHUNK]) for i in range(0, max(len(images), 1), CHUNK)]

    def cat(key: str):
        return np.concatenate([getattr(p, key) for p in parts])

    return Trace(
        layer_names=parts[0].layer_names,
        times=tuple(np.concatenate([p.times[k] for p in parts])
                    for k in range(len(parts[0].times))),
        input_times=None if parts[0].input_times is None else cat("input_times"),
        scores=cat("scores"), classes=cat("classes"), spike_counts=cat("spike_counts"),
        input_spikes=cat("input_spikes"), sops=cat("sops"))


def _closed_chunk(net: FloatNetwork, images: np.ndarray) -> Trace:
    def fire(tau: float, td: float, u: np.ndarray) -> np.ndarray:
        return first_crossing(u, threshold_table(tau, td, T=net.T, q=net.q))

    def integrate(layer: FloatLayer, v: np.ndarray, times: np.ndarray | None) -> np.ndarray:
        return _weighted(layer, v) + _bias(layer)

    return _simulate(net, images, fire, integrate, _pool_min)


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
        out = np.full(_pool_min(times, size).shape, T, dtype=np.int64)
        for t in range(T):
            out[(out == T) & (_pool_min(np.where(times == t, t, T), size) == t)] = t
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
                events = (times < T).reshape(n, -1).astype(np.int64)
                sops += events @ fan_out(layer).reshape(-1)
            u = integrate(layer, v, times)
        if layer.kind == "output":
            break
        if layer.kind == "flatten":
            v = v.reshape(n, -1)
            times = None if times is None else times.reshape(n, -1)
            continue
        if layer.kind in SPIKING_KINDS:
            kernel = (layer.tau, layer.td)
            times = fire(*kernel, u)
            counts.append((times < T).reshape(n, -1).sum(axis=1))
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
                      else (input_times < T).reshape(n, -1).sum(axis=1)),
        sops=sops)


def _bias(layer: FloatLayer) -> np.ndarray:
    return layer.bias.reshape((-1,) + (1,) * (len(layer.out_shape) - 1))


def _weighted(layer: FloatLayer, v: np.ndarray) -> np.ndarray:
    """W v without bias: [N, *in_shape] -> [N, *out_shape]."""
    n = len(v)
    if layer.kind != "conv2d":
        return v.reshape(n, -1) @ layer.weight.T
    k = layer.weight.shape[2]
    p = layer.padding
    padded = np.pad(v, ((0, 0), (0, 0), (p, p), (p, p)))
    windows = np.lib.stride_tricks.sliding_window_view(padded, (k, k), axis=(2, 3))
    windows = windows[:, :, ::layer.stride, ::layer.stride]      # [N, C, H', W', k, k]
    _, c, h, w = windows.shape[:4]
    cols = windows.transpose(0, 2, 3, 1, 4, 5).reshape(n, h, w, c * k * k)
    return np.moveaxis(cols @ layer.weight.reshape(len(layer.weight), -1).T, -1, 1)


def _pool_min(times: np.ndarray, size: int) -> np.ndarray:
    """Earliest spike per size x size window (stride = size; a partial border is dropped)."""
    n, c, h, w = times.shape
    h2, w2 = h // size, w // size
    return times[:, :, :h2 * size, :w2 * size].reshape(n, c, h2, size, w2, size).min(axis=(3, 5))


def fan_out(layer: FloatLayer) -> np.ndarray:
    """Synapses each input position of a weighted layer drives, shape `layer.in_shape`."""
    if layer.kind != "conv2d":
        return np.full(layer.in_shape, layer.out_shape[0], dtype=np.int64)
    c_out, _, k, _ = layer.weight.shape

    def covered(size: int, n_out: int) -> np.ndarray:
        # count[i] = #{(o, d) : o * stride + d - padding = i, 0 <= d < k}
        count = np.zeros(size, dtype=np.int64)
        for o in range(n_out):
            lo = o * layer.stride - layer.padding
            count[max(lo, 0):min(lo + k, size)] += 1
        return count

    spatial = np.outer(covered(layer.in_shape[1], layer.out_shape[1]),
                       covered(layer.in_shape[2], layer.out_shape[2]))
    return np.broadcast_to(c_out * spatial, layer.in_shape).copy()
