"""Accuracy report: float SNN against the integer golden model on a run's test images.

The float side is the closed-form float SNN of `ttfs.sdk.simulate` on the BN-folded network; the
integer side is `ttfs.sdk.golden` on the quantized IR. Both see the same bytes (the float model
byte/255). Spikes per hidden neuron = mean over images of (spikes of all hidden spiking layers /
hidden spiking neurons); input spikes are not counted.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ttfs.sdk import golden, simulate
from ttfs.sdk.data import load_dataset
from ttfs.sdk.floatnet import FloatNetwork, load_float_network, read_config
from ttfs.sdk.ir import SPIKING, Network
from ttfs.sdk.quantize import quantize


@dataclass(frozen=True)
class Result:
    """Accuracy (fraction), spikes per hidden neuron and the predicted classes of one model."""

    accuracy: float
    spikes_per_neuron: float
    classes: np.ndarray


@dataclass(frozen=True)
class Comparison:
    """Float SNN and integer golden results on the same images, and their class agreement."""

    float: Result
    integer: Result
    agreement: float
    n_images: int


def float_result(fnet: FloatNetwork, images: np.ndarray, labels: np.ndarray) -> Result:
    """The closed-form float SNN on uint8 `images` [N, C, H, W]."""
    trace = simulate.run_closed_form(fnet, images)
    return Result(float(np.mean(trace.classes == labels)), trace.spikes_per_hidden_neuron(fnet),
                  trace.classes)


def integer_result(net: Network, images: np.ndarray, labels: np.ndarray) -> Result:
    """The integer golden simulator on uint8 `images`."""
    trace = golden.run(net, images)
    n_hidden = sum(math.prod(info.out_shape) for layer, info in zip(net.layers, net.info)
                   if isinstance(layer, SPIKING))
    return Result(float(np.mean(trace.classes == labels)),
                  float(trace.spike_counts.sum(axis=1).mean() / n_hidden), trace.classes)


def compare(fnet: FloatNetwork, net: Network, images: np.ndarray, labels: np.ndarray, *,
            float_side: Result | None = None) -> Comparison:
    """Float vs integer on the same images (`float_side` reuses a computed float result)."""
    fres = float_result(fnet, images, labels) if float_side is None else float_side
    ires = integer_result(net, images, labels)
    return Comparison(fres, ires, float(np.mean(fres.classes == ires.classes)), len(images))


def run_test_images(run_dir: str | Path, limit: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The test images and labels of the dataset named in the run's config.json."""
    dataset = load_dataset(read_config(run_dir)["dataset"])
    return dataset.test_images[:limit], dataset.test_labels[:limit]


def compare_run(run_dir: str | Path, *, weight_bits: int = 8, kernel_bits: int = 8,
                limit: int | None = None) -> Comparison:
    """Quantize the run at the given widths and compare on its test set (first `limit`)."""
    fnet = load_float_network(run_dir)
    images, labels = run_test_images(run_dir, limit)
    net = quantize(fnet, weight_bits=weight_bits, kernel_bits=kernel_bits)
    return compare(fnet, net, images, labels)
