"""Golden test vectors: inputs and the golden simulator's outputs, as `vectors.npz` (no pickle).

Keys: `inputs` uint8 [N, n_in] (C, H, W flattened), `classes` int32 [N], `scores` int32
[N, n_out], `spike_counts` int32 [N, n_spiking_layers], `input_spikes` int32 [N], `sops` int64
[N], `layers` (the names of `Trace.layer_names`, in network order, as a unicode array),
`times/<layer>` int32 [N, n_neurons] for each of those layers (NO_SPIKE = T), and optionally
`labels` int64 [N] (dataset label, -1 for generated vectors) and `kind` (unicode [N]: "corner"
or "image"). Every target's check reads this file.

Vectors that test something (issue 9):

- `select_images`: class-stratified real images, every class present when n >= classes;
- `corner_images`: generated inputs for the corners of the integer contract (all-0, all-255,
  a ramp of every byte, maximal positive and negative accumulators, exact threshold ties and
  one below, the dead zone, silent layers) plus images searched so that every reachable
  threshold and kernel table entry of every spiking layer is hit at least once;
- `table_coverage`: which table entries a trace hits.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ttfs.sdk import golden, layerops, limits, npzip
from ttfs.sdk.ir import SPIKING, WEIGHTED, MaxPool2d, Network

#: Largest first-layer effective weight matrix (n_in x n_out) built for the tie search (it is
#: computed from n_in unit images in one batch, which must also fit the simulation budget).
MAX_AFFINE = 2**24
#: Path points evaluated per bisection step, and rounds of walks over the missing entries.
PATH_POINTS = 48
WALK_ROUNDS = 8
#: Candidate images the search evaluates at most (bounds its time: a few seconds), and the
#: multiply-accumulates of all of them together (fewer candidates for large networks).
MAX_CANDIDATES = 4096
MAX_SEARCH_MACS = 2 * 10**10


@dataclass(frozen=True, eq=False)
class Vectors:
    """Inputs plus the golden trace computed on them (and, optionally, labels and kinds)."""

    inputs: np.ndarray
    trace: golden.Trace
    labels: np.ndarray | None = None
    kind: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.inputs)

    def head(self, n: int) -> Vectors:
        """The first n vectors."""
        return Vectors(self.inputs[:n], golden.head(self.trace, n),
                       None if self.labels is None else self.labels[:n],
                       None if self.kind is None else self.kind[:n])


def make(net: Network, images: np.ndarray, *, labels: np.ndarray | None = None,
         kind: np.ndarray | None = None) -> Vectors:
    """Run the golden simulator on `images` and bundle inputs with the trace."""
    images = golden.as_images(net, images)
    n = len(images)
    for what, value in (("labels", labels), ("kind", kind)):
        if value is not None and len(value) != n:
            raise ValueError(f"{what}: expected {n} entries, got {len(value)}")
    return Vectors(images.reshape(n, -1), golden.run(net, images),
                   None if labels is None else np.asarray(labels, dtype=np.int64),
                   None if kind is None else np.asarray(kind, dtype=np.str_))


def select_images(images: np.ndarray, labels: np.ndarray, n: int, *, seed: int = 0
                  ) -> np.ndarray:
    """Indices of n images, class-stratified and deterministic.

    Classes take turns in ascending order (one image each per round, in a seeded random order
    within each class), so the first k indices cover min(k, classes) classes and every class
    is present when n >= classes; a class that runs out drops out of the rotation.
    """
    labels = np.asarray(labels)
    if len(labels) != len(images):
        raise ValueError(f"labels: expected {len(images)} entries, got {len(labels)}")
    if not 0 <= n <= len(labels):
        raise ValueError(f"n: expected 0..{len(labels)}, got {n}")
    rng = np.random.default_rng(seed)
    queues = [rng.permutation(np.flatnonzero(labels == c)) for c in np.unique(labels)]
    rounds = max((len(q) for q in queues), default=0)
    order = [int(q[r]) for r in range(rounds) for q in queues if r < len(q)]
    return np.array(order[:n], dtype=np.int64)


def corner_images(net: Network, *, seed: int = 0, max_images: int = 256) -> np.ndarray:
    """Generated inputs for the corners of the integer contract, uint8 [k, n_in].

    In this order: all-0, all-255, a ramp holding every byte value (every entry of a `ttfs`
    input time table), the two images that give the largest and the most negative membrane
    any input can give in the first weighted layer (`real` coding), exact threshold ties
    u = Theta[t] and one below (u = Theta[t] - 1) of one first-layer neuron for every
    reachable t, a dead-zone image (0 < u < Theta[T-1]), and then searched images, until every
    reachable threshold and kernel entry of every spiking layer (`table_coverage`) is hit, or
    no more can be found, and every layer that can be silenced is silent in one image.
    Searched images that add nothing are left out (at most max_images in all).
    """
    n_in = net.n_inputs
    fixed = [np.zeros(n_in, np.uint8), np.full(n_in, 255, np.uint8),
             (np.arange(n_in) % 256).astype(np.uint8)]
    fixed += _first_layer_corners(net)
    fixed = _unique(fixed)
    search = _TableSearch(net, np.random.default_rng(seed))
    search.add(np.stack(fixed))
    search.explore()
    extra = search.cover(exclude=len(fixed))
    return np.concatenate([np.stack(fixed), extra])[:max_images]


def table_coverage(net: Network, trace: golden.Trace) -> dict[str, dict]:
    """Which table entries of each spiking layer (and the ttfs input layer) `trace` hits.

    Per layer name: `theta` = [entries hit, reachable entries] where entry t is hit when a
    neuron of the layer fires at t; `kernel` = [hit, reachable] where kernel[t] is hit when a
    spike at t reaches the next weighted layer (after max pooling) as its operand; `T`;
    `missing` = the reachable t not hit by both. Entry t is unreachable when Theta[t] exceeds
    the largest membrane any input can give, max_j(B_j + v_max * sum_i max(W_ji, 0)) (every
    excitatory input at its largest operand, no inhibitory one), or Theta[t] = Theta[t-1] (a
    neuron reaching it fired at t-1); for the input layer the reachable t are the values of its
    time table below T.
    """
    reach = reachable_entries(net)
    out = {}
    for name, (theta_hit, kernel_hit) in _hit_matrices(net, trace).items():
        theta = set(np.flatnonzero(theta_hit.any(axis=0)).tolist()) & reach[name]
        kernel = set(np.flatnonzero(kernel_hit.any(axis=0)).tolist()) & reach[name]
        out[name] = {"theta": [len(theta), len(reach[name])],
                     "kernel": [len(kernel), len(reach[name])], "T": net.T,
                     "missing": sorted(reach[name] - (theta & kernel))}
    return out


def format_coverage(coverage: dict[str, dict]) -> str:
    """One line per layer: `fc1: theta 16/16, kernel 16/16 of T = 16`."""
    return "\n".join(f"{name}: theta {c['theta'][0]}/{c['theta'][1]}, kernel "
                     f"{c['kernel'][0]}/{c['kernel'][1]} reachable entries hit (T = {c['T']})"
                     + (f", missing t = {c['missing']}" if c["missing"] else "")
                     for name, c in coverage.items())


def save(vectors: Vectors, path: str | Path) -> None:
    """Write `vectors.npz` (deterministic bytes, atomic; readable with np.load)."""
    trace = vectors.trace
    arrays = {"inputs": vectors.inputs, "classes": trace.classes, "scores": trace.scores,
              "spike_counts": trace.spike_counts, "input_spikes": trace.input_spikes,
              "sops": trace.sops, "layers": np.array(trace.layer_names, dtype=np.str_)}
    n = len(vectors)
    for name, times in zip(trace.layer_names, trace.times):
        arrays[f"times/{name}"] = times.reshape(n, -1)
    if trace.input_times is not None:
        arrays["input_times"] = trace.input_times.reshape(n, -1)
    if vectors.labels is not None:
        arrays["labels"] = vectors.labels
    if vectors.kind is not None:
        arrays["kind"] = vectors.kind
    npzip.write(path, {f"{key}.npy": npzip.npy_bytes(a) for key, a in arrays.items()})


def load(path: str | Path) -> Vectors:
    """Read `vectors.npz` written by `save` (allow_pickle=False)."""
    with np.load(path, allow_pickle=False) as data:
        arrays = {key: data[key] for key in data.files}
    names = tuple(str(name) for name in arrays["layers"])
    trace = golden.Trace(
        layer_names=names,
        times=tuple(arrays[f"times/{name}"] for name in names),
        input_times=arrays.get("input_times"),
        scores=arrays["scores"], classes=arrays["classes"],
        spike_counts=arrays["spike_counts"], input_spikes=arrays["input_spikes"],
        sops=arrays["sops"],
    )
    return Vectors(arrays["inputs"], trace, arrays.get("labels"), arrays.get("kind"))


def _unique(images: list[np.ndarray]) -> list[np.ndarray]:
    seen, out = set(), []
    for image in images:
        key = image.tobytes()
        if key not in seen:
            seen.add(key)
            out.append(image)
    return out


def reachable_entries(net: Network) -> dict[str, set[int]]:
    """Per spiking layer (and "input" under ttfs): the t a neuron can fire at (see
    `table_coverage`)."""
    out = {}
    if net.input_coding == "ttfs":
        out["input"] = set(np.unique(net.input_times[net.input_times < net.T]).tolist())
    for layer, info in zip(net.layers, net.info):
        if isinstance(layer, SPIKING):
            theta = layer.theta.astype(np.int64)
            positive = np.maximum(layer.weight.astype(np.int64), 0).reshape(len(layer.bias), -1)
            u_max = int((layer.bias + info.in_max * positive.sum(axis=1)).max())
            out[layer.name] = {t for t in range(net.T) if theta[t] <= u_max
                               and (t == 0 or theta[t] < theta[t - 1])}
    return out


def _hit_matrices(net: Network, trace: golden.Trace) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Per spiking layer (and "input" under ttfs): bool [N, T] of (fired at t, operand
    kernel[t] delivered to the next weighted layer) per sample."""
    n, T = len(trace), net.T

    def at(times: np.ndarray) -> np.ndarray:
        hit = np.zeros((n, T + 1), dtype=bool)
        hit[np.arange(n)[:, None], layerops.flat(times)] = True
        return hit[:, :T]

    times = dict(zip(trace.layer_names, trace.times))
    out: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    owner, source = None, None      # the spiking layer whose kernel the operands come from
    if trace.input_times is not None:
        owner, source = "input", trace.input_times
        out["input"] = (at(source), np.zeros((n, T), dtype=bool))
    for layer in net.layers:
        if isinstance(layer, WEIGHTED) and owner is not None:
            out[owner][1][:] |= at(source)
        if isinstance(layer, SPIKING):
            owner, source = layer.name, times[layer.name]
            out[owner] = (at(source), np.zeros((n, T), dtype=bool))
        elif isinstance(layer, MaxPool2d):
            source = times[layer.name]
    return out


def _first_layer_corners(net: Network) -> list[np.ndarray]:
    """Maximal/minimal accumulator, exact ties, one-below and dead-zone images of the first
    weighted layer under `real` coding, where u is affine in the pixels: u = B + A x."""
    first = next(i for i, layer in enumerate(net.layers) if isinstance(layer, WEIGHTED))
    layer, info = net.layers[first], net.info[first]
    n_out = math.prod(info.out_shape)
    per_sample, _, _ = limits.working_set([net.steps[first]])
    if (net.input_coding != "real" or net.n_inputs * n_out > MAX_AFFINE
            or net.n_inputs * per_sample > limits.SIM_BUDGET_BYTES):
        return []
    bias, affine = _affine(net, first)                       # [n_out], [n_out, n_in]
    bound = np.abs(bias) + 255 * np.abs(affine).sum(axis=1)
    high = int(np.argmax(bias + 255 * np.maximum(affine, 0).sum(axis=1)))
    low = int(np.argmin(bias + 255 * np.minimum(affine, 0).sum(axis=1)))
    images = [np.where(affine[high] > 0, 255, 0).astype(np.uint8),
              np.where(affine[low] < 0, 255, 0).astype(np.uint8)]
    if not isinstance(layer, SPIKING):
        return images
    theta = layer.theta.astype(np.int64)
    targets = [int(theta[t]) + d for t in sorted(reachable_entries(net)[layer.name])
               for d in (0, -1)]
    targets.append(int(theta[-1]) - 1)                       # dead zone: 0 < u < Theta[T-1]
    order = np.argsort(-bound)
    for target in targets:
        if target <= 0:
            continue
        for j in order[:8]:
            image = _solve(int(bias[j]), affine[j], target)
            if image is not None:
                images.append(image)
                break
    return images


def _affine(net: Network, index: int) -> tuple[np.ndarray, np.ndarray]:
    """(B, A) with u = B + A x of the weighted layer `index` fed by the pixels x (int64)."""
    layer = net.layers[index]
    eye = np.eye(net.n_inputs, dtype=np.int64).reshape(net.n_inputs, *net.input_shape)
    for earlier in net.layers[:index]:           # only flatten can come before: reshape
        eye = layerops.flat(eye) if earlier.kind == "flatten" else eye
    zero = np.zeros((1, *eye.shape[1:]), np.int64)
    bias = layerops.flat(golden.integrate(layer, zero, net.info[index].acc_bound))[0]
    affine = layerops.flat(golden.integrate(layer, eye, net.info[index].acc_bound)) - bias
    return bias, affine.T


def _solve(bias: int, row: np.ndarray, target: int) -> np.ndarray | None:
    """Pixels x in 0..255 with bias + row . x == target exactly, or None: greedy on the
    largest coefficients of the needed sign, then one pair of pixels fixes the remainder."""
    x = np.zeros(len(row), np.int64)
    rest = target - bias
    sign = 1 if rest > 0 else -1
    for i in np.argsort(-sign * row):
        a = int(row[i]) * sign
        if a <= 0 or rest * sign <= 0:
            break
        x[i] = min(255, (rest * sign) // a)
        rest -= int(row[i]) * int(x[i])
    if rest == 0:
        return x.astype(np.uint8)
    free = [int(i) for i in np.argsort(-np.abs(row)) if x[i] == 0 and row[i] != 0][:12]
    xp = np.arange(256, dtype=np.int64)
    for p in free:
        for q in free:
            if p == q:
                continue
            r = rest - int(row[p]) * xp                 # what pixel q must contribute
            b = int(row[q])
            ok = np.flatnonzero((r % b == 0) & (r // b >= 0) & (r // b <= 255))
            if len(ok):
                x[p], x[q] = ok[0], r[ok[0]] // b
                return x.astype(np.uint8)
    return None


class _TableSearch:
    """Evaluated candidate images and the table entries each hits; grows by random images
    and by walks between two images that put one neuron on both sides of a missing entry."""

    def __init__(self, net: Network, rng: np.random.Generator):
        self.net, self.rng = net, rng
        self.images: list[np.ndarray] = []
        self.traces: list[golden.Trace] = []
        # per image: {(layer, "theta"|"kernel", t)} and (layer, "silent", -1) for a layer
        # in which no neuron fires
        self.entries: list[frozenset] = []
        self.hit: set = set()
        self.wanted = {(name, what, t) for name, reach in reachable_entries(net).items()
                       for t in reach for what in ("theta", "kernel")}
        macs = sum(math.prod(out) * (math.prod(inp) if kind != "conv2d" else inp[0] * k * k)
                   for kind, inp, out, k in net.steps if kind in ("conv2d", "dense", "output"))
        self.max_candidates = int(np.clip(MAX_SEARCH_MACS // max(macs, 1), 256,
                                          MAX_CANDIDATES))

    def add(self, images: np.ndarray) -> golden.Trace:
        trace = golden.run(self.net, images)
        self.images.append(images.reshape(len(images), -1))
        self.traces.append(trace)
        matrices = _hit_matrices(self.net, trace)
        silent = {name: ~hit.any(axis=1) for name, (hit, _) in matrices.items()}
        for k in range(len(images)):
            entries = frozenset([(name, what, int(t)) for name, pair in matrices.items()
                                 for what, hit in zip(("theta", "kernel"), pair)
                                 for t in np.flatnonzero(hit[k])]
                                + [(name, "silent", -1) for name in silent if silent[name][k]])
            self.entries.append(entries)
            self.hit |= entries
        return trace

    def missing(self) -> set:
        return self.wanted - self.hit

    def explore(self, rounds: int = 6) -> None:
        """Uniform grey levels and random images of many densities and brightnesses, then
        walks toward the missing entries."""
        n_in = self.net.n_inputs
        self.add(np.repeat(np.arange(0, 256, 8, dtype=np.uint8)[:, None], n_in, axis=1))
        for _ in range(rounds):
            if not self.missing():
                return
            density = self.rng.uniform(0.02, 1.0, (64, 1))
            scale = self.rng.uniform(0.1, 1.0, (64, 1))
            noise = self.rng.integers(0, 256, (64, n_in)) * scale
            self.add(np.where(self.rng.random((64, n_in)) < density, noise, 0).astype(np.uint8))
        for _ in range(WALK_ROUNDS):
            for name, _, t in sorted(self.missing()):
                if {(name, "theta", t), (name, "kernel", t)} & self.missing():
                    self._walk(name, t)
            if not self.missing():
                return

    def _walk(self, name: str, t: int) -> None:
        """Find images A, B and a neuron of `name` firing before t under A and after t (or
        never) under B; bisect the unit-step pixel path from A to B for a point firing at t."""
        times = np.concatenate([self._times_of(trace, name) for trace in self.traces])
        images = np.concatenate(self.images)
        before, after = times < t, times > t
        candidates = np.flatnonzero(before.any(axis=0) & after.any(axis=0))
        if not len(candidates):
            return
        j = int(candidates[self.rng.integers(len(candidates))])
        a = images[int(self.rng.choice(np.flatnonzero(before[:, j])))].astype(np.int64)
        b = images[int(self.rng.choice(np.flatnonzero(after[:, j])))].astype(np.int64)
        lo, hi = 0, int(np.abs(b - a).sum())
        order = self.rng.permutation(len(a))    # another route through pixel space each walk
        for _ in range(6):
            if hi - lo <= 1 or len(self.entries) >= self.max_candidates:
                return
            steps = np.unique(np.linspace(lo, hi, PATH_POINTS).round().astype(np.int64))
            points = np.stack([_path_point(a, b, step, order) for step in steps])
            got = self._times_of(self.add(points), name)[:, j]
            cross = np.flatnonzero(((got[:-1] < t) & (got[1:] > t))
                                   | ((got[:-1] > t) & (got[1:] < t)))
            if np.any(got == t) or not len(cross):
                return
            lo, hi = int(steps[cross[0]]), int(steps[cross[0] + 1])

    @staticmethod
    def _times_of(trace: golden.Trace, name: str) -> np.ndarray:
        if name == "input":
            return layerops.flat(trace.input_times)
        return layerops.flat(trace.times[trace.layer_names.index(name)])

    def cover(self, exclude: int) -> np.ndarray:
        """A small set of the searched images (greedy set cover) that, with the first
        `exclude` (fixed) images, hits every entry any candidate hits."""
        covered = set().union(*self.entries[:exclude])
        images = np.concatenate(self.images)
        chosen = []
        while True:
            gains = [len(e - covered) for e in self.entries]
            best = int(np.argmax(gains))
            if gains[best] == 0:
                break
            chosen.append(best)
            covered |= self.entries[best]
        return images[sorted(chosen)].reshape(len(chosen), self.net.n_inputs)


def _path_point(a: np.ndarray, b: np.ndarray, step: int, order: np.ndarray) -> np.ndarray:
    """The image `step` unit steps along the path from a to b that moves pixel order[0]
    fully, then pixel order[1], ... (each step changes one pixel by 1)."""
    dist = np.abs(b - a)[order]
    before = np.concatenate([[0], np.cumsum(dist)[:-1]])
    moved = np.empty_like(dist)
    moved[order] = np.clip(step - before, 0, dist)
    return (a + np.sign(b - a) * moved).astype(np.uint8)
