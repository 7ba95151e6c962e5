"""The integer contract as plain loops: the reference every fast path is tested against.

Like TensorFlow Lite Micro's reference kernels, this is DESIGN.md section 4 read literally, one
sample, one neuron, one synapse and one time step at a time, with Python ints (no overflow, no
vectorisation, no BLAS). It is slow (use it on small networks) and deliberately obvious:

- operand of input i: the pixel byte (`real` coding, first weighted layer), else
  kernel[t_i] of the last spiking layer (or the input layer) if i spiked, else nothing;
- u_j = bias_j + sum over the input events (i, v_i) of weight_ji * v_i;
- spiking layers: step t = 0..T-1, fire at the first t with u_j >= theta[t], else NO_SPIKE = T;
- max pool: the earliest spike in each size x size window; flatten: C, H, W order;
- output: scores = u, class = the first index of the maximum;
- spike counts per spiking layer, input spikes, and SOPs = one per (input event, synapse it
  drives) of every weighted layer fed by spikes.

`ttfs.sdk.golden.run` is the fast path; `tests/test_golden.py` checks the two bit for bit.
"""

from __future__ import annotations

import numpy as np

from ttfs.sdk.golden import Trace, as_images
from ttfs.sdk.ir import Conv2d, Dense, Flatten, MaxPool2d, Network, Output


def run(net: Network, images: np.ndarray) -> Trace:
    """The Trace of `net` on uint8 images, computed with plain loops (see the module doc)."""
    images = as_images(net, images)
    samples = [_sample(net, image) for image in images]
    n_layers = len(samples[0][0]) if samples else sum(
        isinstance(layer, (Dense, Conv2d, MaxPool2d)) for layer in net.layers)
    shapes = [info.out_shape for layer, info in zip(net.layers, net.info)
              if isinstance(layer, (Dense, Conv2d, MaxPool2d))]

    def stack(values: list, shape: tuple[int, ...], dtype) -> np.ndarray:
        return np.array(values, dtype=dtype).reshape((len(values), *shape))

    return Trace(
        layer_names=tuple(layer.name for layer in net.layers
                          if isinstance(layer, (Dense, Conv2d, MaxPool2d))),
        times=tuple(stack([s[0][k] for s in samples], shapes[k], np.int32)
                    for k in range(n_layers)),
        input_times=(None if net.input_coding == "real" else
                     stack([s[1] for s in samples], tuple(net.input_shape), np.int32)),
        scores=stack([s[2] for s in samples], (net.n_outputs,), np.int32),
        classes=np.array([s[3] for s in samples], dtype=np.int32),
        spike_counts=stack([s[4] for s in samples], (len(net.spiking_layers),), np.int32),
        input_spikes=np.array([s[5] for s in samples], dtype=np.int32),
        sops=np.array([s[6] for s in samples], dtype=np.int64),
    )


def _sample(net: Network, image: np.ndarray) -> tuple:
    """(times per layer, input times, scores, class, spike counts, input spikes, sops) of one
    image, as nested lists of Python ints (times: a dict (c, y, x) or (i,) -> t)."""
    T = net.T
    c_in, h_in, w_in = net.input_shape
    positions = [(c, y, x) for c in range(c_in) for y in range(h_in) for x in range(w_in)]
    input_times = None
    if net.input_coding == "real":
        # (shape, {position: operand}, {position: spike time} or None for pixels)
        value = {p: int(image[p]) for p in positions}
        times = None
    else:
        times = {p: int(net.input_times[int(image[p])]) for p in positions}
        value = {p: int(net.input_kernel[t]) for p, t in times.items() if t < T}
        input_times = [times[p] for p in positions]
    shape: tuple[int, ...] = tuple(net.input_shape)
    kernel = net.input_kernel
    all_times, counts, sops = [], [], 0
    input_spikes = 0 if times is None else sum(t < T for t in times.values())
    for layer in net.layers:
        if isinstance(layer, Flatten):
            order = _positions(shape)
            value = {(i,): value[p] for i, p in enumerate(order) if p in value}
            times = None if times is None else {(i,): times[p] for i, p in enumerate(order)}
            shape = (len(order),)
            continue
        if isinstance(layer, MaxPool2d):
            c, h, w = shape
            s = layer.size
            shape = (c, h // s, w // s)
            times = {(ch, y, x): min(times[(ch, y * s + dy, x * s + dx)]
                                     for dy in range(s) for dx in range(s))
                     for ch, y, x in _positions(shape)}
        else:
            u, shape, layer_sops = _integrate(layer, shape, value, times is not None)
            sops += layer_sops
            if isinstance(layer, Output):
                scores = [u[(j,)] for j in range(shape[0])]
                best = max(scores)
                return (all_times, input_times, scores, scores.index(best), counts,
                        input_spikes, sops)
            times = {}
            for p, u_j in u.items():
                times[p] = T
                for t in range(T):       # time-stepped: compare against theta step by step
                    if u_j >= int(layer.theta[t]):
                        times[p] = t
                        break
            counts.append(sum(t < T for t in times.values()))
            kernel = layer.kernel
        all_times.append([times[p] for p in _positions(shape)])
        value = {p: int(kernel[t]) for p, t in times.items() if t < T}
    raise AssertionError("no output layer")


def _positions(shape: tuple[int, ...]) -> list[tuple[int, ...]]:
    """Every index of `shape` in C order."""
    return [tuple(int(i) for i in idx) for idx in np.ndindex(*shape)]


def _integrate(layer: Dense | Conv2d | Output, shape: tuple[int, ...],
               value: dict[tuple[int, ...], int], from_spikes: bool
               ) -> tuple[dict[tuple[int, ...], int], tuple[int, ...], int]:
    """(u per output position, output shape, SOPs) of a weighted layer; `value` holds the
    operand of every input event (silent inputs are absent)."""
    sops = 0
    u: dict[tuple[int, ...], int] = {}
    if isinstance(layer, Conv2d):
        c_out, c_in, k, _ = layer.weight.shape
        _, h, w = shape
        p, st = layer.padding, layer.stride
        out_shape = (c_out, (h + 2 * p - k) // st + 1, (w + 2 * p - k) // st + 1)
        for co, y, x in _positions(out_shape):
            acc = int(layer.bias[co])
            for ci in range(c_in):
                for dy in range(k):
                    for dx in range(k):
                        src = (ci, y * st + dy - p, x * st + dx - p)
                        if src in value:
                            acc += int(layer.weight[co, ci, dy, dx]) * value[src]
                        if from_spikes and src in value:
                            sops += 1
            u[(co, y, x)] = acc
        return u, out_shape, sops
    n_out, n_in = layer.weight.shape
    for j in range(n_out):
        acc = int(layer.bias[j])
        for i in range(n_in):
            if (i,) in value:
                acc += int(layer.weight[j, i]) * value[(i,)]
                sops += from_spikes
        u[(j,)] = acc
    return u, (n_out,), sops
