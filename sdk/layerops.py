"""Array steps shared by the float (`ttfs.sdk.simulate`) and integer (`ttfs.sdk.golden`) simulators.

Written once, dtype-agnostic: chunking a batch, im2col for convolutions, max pooling of spike
times, structural fan-out (for SOPs), one BLAS thread. The arithmetic that differs (float
decode vs integer operands, float vs integer thresholds) stays in the simulators.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
from collections.abc import Callable

import numpy as np

try:                                    # optional; a core dependency, so normally present
    from threadpoolctl import threadpool_limits
except ImportError:                     # pragma: no cover
    threadpool_limits = None


def one_blas_thread():
    """Context in which BLAS uses one thread: the simulators' matrices are small, and BLAS
    threads only fight over the cores (measured 2-7x slower on a busy 2-core machine)."""
    if threadpool_limits is None:       # pragma: no cover
        return contextlib.nullcontext()
    return threadpool_limits(1, user_api="blas")


def flat(a: np.ndarray) -> np.ndarray:
    """[N, ...] -> [N, prod(...)] (also for N = 0, where reshape(N, -1) is ambiguous)."""
    return a.reshape(len(a), math.prod(a.shape[1:]))


def im2col(v: np.ndarray, k: int, stride: int, padding: int) -> np.ndarray:
    """[N, C, H, W] -> [N, H', W', C*k*k], patches in (c, dy, dx) order, zero padded.

    H' = (H + 2 padding - k) // stride + 1 (likewise W'); position (y, x) holds
    v[:, c, y*stride + dy - padding, x*stride + dx - padding] (0 outside the input).
    """
    padded = np.pad(v, ((0, 0), (0, 0), (padding, padding), (padding, padding)))
    windows = np.lib.stride_tricks.sliding_window_view(padded, (k, k), axis=(2, 3))
    windows = windows[:, :, ::stride, ::stride]               # [N, C, H', W', k, k]
    n, c, h, w = windows.shape[:4]
    return windows.transpose(0, 2, 3, 1, 4, 5).reshape(n, h, w, c * k * k)


def conv(v: np.ndarray, weight: np.ndarray, stride: int, padding: int,
         matmul: Callable[[np.ndarray, np.ndarray], np.ndarray] = np.matmul) -> np.ndarray:
    """sum_{c, dy, dx} weight[o, c, dy, dx] * v[:, c, y*s + dy - p, x*s + dx - p], no bias:
    [N, C, H, W] -> [N, C_out, H', W'], with `matmul` doing the patch product."""
    cols = im2col(v, weight.shape[2], stride, padding)           # [N, H', W', C*k*k]
    return np.moveaxis(matmul(cols, weight.reshape(len(weight), -1).T), -1, 1)


def pool_min(times: np.ndarray, size: int) -> np.ndarray:
    """Earliest spike per size x size window (stride = size; a partial border is dropped)."""
    n, c, h, w = times.shape
    h2, w2 = h // size, w // size
    return times[:, :, :h2 * size, :w2 * size].reshape(n, c, h2, size, w2, size).min(axis=(3, 5))


def fan_out(kind: str, in_shape: tuple[int, ...], n_out: int, k: int = 1, stride: int = 1,
            padding: int = 0) -> np.ndarray:
    """Synapses each input position of a weighted layer drives (the SOPs of one spike there),
    shape `in_shape`: dense/output n_out; conv2d n_out (= C_out) times the output positions
    whose receptive field covers the input position."""
    if kind != "conv2d":
        return np.full(in_shape, n_out, dtype=np.int64)

    def covered(size: int) -> np.ndarray:
        # count[i] = #{(o, d) : o*stride + d - padding = i, 0 <= d < k, o an output index}
        count = np.zeros(size, dtype=np.int64)
        for o in range((size + 2 * padding - k) // stride + 1):
            lo = o * stride - padding
            count[max(lo, 0):min(lo + k, size)] += 1
        return count

    spatial = np.outer(covered(in_shape[1]), covered(in_shape[2]))
    return np.broadcast_to(n_out * spatial, in_shape).copy()


def chunked(run_chunk: Callable[[np.ndarray], object], images: np.ndarray, chunk: int):
    """run_chunk over `images` in slices of `chunk` samples, the results concatenated.

    The result type is run_chunk's dataclass: array fields are concatenated along axis 0,
    tuples of arrays element-wise, None stays None, anything else (names) is taken from the
    first part. An empty batch runs once on the empty array.
    """
    parts = [run_chunk(images[i:i + chunk]) for i in range(0, max(len(images), 1), chunk)]
    if len(parts) == 1:
        return parts[0]

    def cat(values: list):
        first = values[0]
        if isinstance(first, np.ndarray):
            return np.concatenate(values)
        if isinstance(first, tuple) and first and isinstance(first[0], np.ndarray):
            return tuple(np.concatenate(group) for group in zip(*values))
        return first

    return type(parts[0])(**{f.name: cat([getattr(p, f.name) for p in parts])
                             for f in dataclasses.fields(parts[0])})
