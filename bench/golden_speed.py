"""Images per second of the integer golden simulator on the mnist5k test set (1,000 images).

    python bench/golden_speed.py [--repeats N]

Runs the `mlp` and `cnn` architectures of `ttfs.sdk.model` with seeded random weights (quantized
like a trained network: only the shapes matter for the speed), and prints images/s, the best
of N repeats, against the aim of 2,000 images/s for the MLP.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from ttfs.sdk import golden
from ttfs.sdk.data import load_dataset
from ttfs.sdk.floatnet import FloatLayer, FloatNetwork, layer_shapes
from ttfs.sdk.model import ARCHITECTURES
from ttfs.sdk.quantize import quantize

AIM_MLP = 2000.0


def random_float_network(arch: str, input_shape: tuple[int, int, int], seed: int = 0,
                         T: int = 16) -> FloatNetwork:
    """A FloatNetwork of architecture `arch` with He-scaled random weights and tau = T / 4."""
    rng = np.random.default_rng(seed)
    specs = ARCHITECTURES[arch](input_shape, 10)
    layers = []
    for spec, (in_shape, out_shape) in zip(specs, layer_shapes(specs, input_shape)):
        kind, name = spec["kind"], spec["name"]
        if kind in ("maxpool2d", "flatten"):
            layers.append(FloatLayer(kind, name, in_shape, out_shape, size=spec.get("size", 0),
                                     stride=spec.get("size", 1)))
            continue
        k = spec.get("kernel_size")
        w_shape = (out_shape[0], in_shape[0], k, k) if kind == "conv2d" else (out_shape[0],
                                                                              in_shape[0])
        fan_in = int(np.prod(w_shape[1:]))
        weight = rng.normal(0.0, np.sqrt(2.0 / fan_in), w_shape)
        spiking = kind != "output"
        layers.append(FloatLayer(kind, name, in_shape, out_shape, weight,
                                 rng.normal(0.0, 0.1, out_shape[0]),
                                 tau=T / 4 if spiking else None, td=0.0 if spiking else None,
                                 stride=spec.get("stride", 1), padding=spec.get("padding", 0)))
    return FloatNetwork(tuple(layers), T=T, q=0.5, input_shape=input_shape, input_coding="real",
                        input_tau=None, input_td=None, num_classes=10)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    images = load_dataset("mnist5k").test_images
    print(f"golden simulator, {len(images)} mnist5k test images, best of {args.repeats}")
    for arch in ("mlp", "cnn"):
        net = quantize(random_float_network(arch, (1, 28, 28)))
        best = float("inf")
        for _ in range(args.repeats):
            start = time.perf_counter()
            trace = golden.run(net, images)
            best = min(best, time.perf_counter() - start)
        rate = len(images) / best
        spikes = trace.spike_counts.sum(axis=1).mean()
        line = f"{arch:>4}: {rate:10.0f} images/s ({1e3 * best:.0f} ms; {spikes:.0f} spikes/image)"
        if arch == "mlp":
            line += f", {rate / AIM_MLP:.1f}x the aim of {AIM_MLP:.0f} images/s"
        print(line)


if __name__ == "__main__":
    main()
