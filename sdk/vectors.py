"""Golden test vectors: inputs and the golden simulator's outputs, as `vectors.npz` (no pickle).

Keys: `inputs` uint8 [N, n_in] (C, H, W flattened), `classes` int32 [N], `scores` int32
[N, n_out], `spike_counts` int32 [N, n_spiking_layers], `input_spikes` int32 [N], `sops` int64
[N], `layers` (the names of `Trace.layer_names`, in network order, as a unicode array) and
`times/<layer>` int32 [N, n_neurons] for each of those layers (NO_SPIKE = T). Every target's
check reads this file.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from sdk import golden, npzip
from sdk.ir import Network


@dataclass(frozen=True, eq=False)
class Vectors:
    """Inputs plus the golden trace computed on them."""

    inputs: np.ndarray
    trace: golden.Trace

    def __len__(self) -> int:
        return len(self.inputs)


def make(net: Network, images: np.ndarray) -> Vectors:
    """Run the golden simulator on `images` and bundle inputs with the trace."""
    images = golden.as_images(net, images)
    return Vectors(images.reshape(len(images), -1), golden.run(net, images))


def corner_images(net: Network) -> np.ndarray:
    """The corner-case inputs every vector set includes: an all-0 and an all-255 image."""
    return np.stack([np.zeros(net.n_inputs, np.uint8), np.full(net.n_inputs, 255, np.uint8)])


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
    return Vectors(arrays["inputs"], trace)
