"""Seeded random integer networks that exercise the corners of the integer contract.

Targets are tested on these besides trained models: they hit saturation (spikes at t = 0), dead
zones, all-silent layers, extreme weights (+-(2^(weight_bits-1) - 1)) and accumulators near
their bound. Every network is a valid `ttfs.sdk.ir.Network`.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ttfs.sdk.floatnet import CONFIG_FILE, WEIGHTS_FILE
from ttfs.sdk.ir import Conv2d, Dense, Flatten, MaxPool2d, Network, Output
from ttfs.sdk.quantize import kernel_table, threshold_exps

#: Shapes of the random networks by name.
PLANS = {
    # input (C, H, W), then layers: ("dense", n) | ("conv", c_out, k, stride, pad) | ("pool", s)
    "mlp": ((1, 4, 4), (("dense", 12), ("dense", 8), ("output", 5))),
    "cnn": ((2, 6, 6), (("conv", 3, 3, 1, 1), ("pool", 2), ("conv", 4, 2, 1, 0), ("dense", 6),
                        ("output", 4))),
    "strided": ((1, 7, 7), (("conv", 2, 3, 2, 1), ("dense", 5), ("output", 3))),
}
MODES = ("typical", "saturate", "silent", "extreme")


def _theta(T: int, scale: float, tau: float) -> np.ndarray:
    """A non-increasing threshold table from `scale` down by the factor exp(-1/tau) per step
    (correctly rounded exps: the same table on every machine)."""
    theta = np.ceil(scale * np.array(threshold_exps(T, tau, 0.0, 0.0))).astype(np.int64)
    return np.clip(theta, 1, 2**31 - 2).astype(np.int32)


def random_network(seed: int, *, plan: str = "mlp", mode: str = "typical", T: int = 8,
                   weight_bits: int = 8, kernel_bits: int = 8, input_coding: str = "real",
                   name: str = "rnd") -> Network:
    """A random network of shape `plan` whose thresholds are set by `mode`:

    - typical: thresholds around the membrane's spread (a mix of early, late and no spikes);
    - saturate: thresholds far below the membranes (most neurons fire at t = 0);
    - silent: thresholds above every reachable membrane (whole layers stay silent);
    - extreme: weights only +-w_max, thresholds near the accumulator bound.
    """
    if plan not in PLANS or mode not in MODES:
        raise ValueError(f"plan must be one of {sorted(PLANS)}, mode one of {MODES}")
    rng = np.random.default_rng(seed)
    input_shape, steps = PLANS[plan]
    w_max = 2 ** (weight_bits - 1) - 1
    tau = float(rng.uniform(1.0, T / 2))
    input_times = input_kernel = None
    in_max = 255
    if input_coding == "ttfs":
        input_kernel = kernel_table(T, float(rng.uniform(1.0, T / 2)), kernel_bits)
        input_times = np.minimum(T, np.floor((255 - np.arange(256)) * (T + 1) / 256)
                                 ).astype(np.int32)
        in_max = int(input_kernel[0])
    layers, shape = [], input_shape
    for i, step in enumerate(steps):
        kind = step[0]
        if kind == "pool":
            layers.append(MaxPool2d(f"pool{i}", step[1]))
        elif kind in ("dense", "output") and len(shape) == 3:
            layers.append(Flatten(f"flat{i}"))
            shape = (int(np.prod(shape)),)
        if kind == "pool":
            shape = layers[-1].out_shape(shape)
            continue
        fan_in = int(np.prod(shape)) if kind != "conv" else shape[0] * step[2] ** 2
        w_shape = (step[1], fan_in) if kind != "conv" else (step[1], shape[0], step[2], step[2])
        if mode == "extreme":
            weight = (rng.choice([-1, 1], size=w_shape) * w_max).astype(np.int32)
        else:
            weight = rng.integers(-w_max, w_max + 1, size=w_shape).astype(np.int32)
        spread = w_max * in_max * np.sqrt(fan_in) / 2  # about the membranes' spread
        bias = rng.integers(-int(spread / 4), int(spread / 4) + 1, size=step[1]).astype(np.int32)
        if kind == "output":
            layers.append(Output(f"out{i}", weight, bias))
            break
        bound = int((np.abs(bias).astype(np.int64) + np.abs(weight.astype(np.int64)).reshape(
            step[1], -1).sum(1) * in_max).max())
        if mode == "silent":
            theta = np.full(T, bound + 1, dtype=np.int32)
        else:
            theta = _theta(T, {"typical": spread, "saturate": spread / 64, "extreme": bound}[mode],
                           tau)
        kernel = kernel_table(T, tau, kernel_bits)
        if kind == "dense":
            layer = Dense(f"fc{i}", weight, bias, theta, kernel)
        else:
            layer = Conv2d(f"conv{i}", weight, bias, theta, kernel, stride=step[3],
                           padding=step[4])
        layers.append(layer)
        shape = layer.out_shape(shape)
        in_max = int(kernel[0])
    return Network(name=name, T=T, weight_bits=weight_bits, kernel_bits=kernel_bits,
                   input_shape=input_shape, input_coding=input_coding, layers=tuple(layers),
                   input_times=input_times, input_kernel=input_kernel)


def random_images(seed: int, net: Network, n: int) -> np.ndarray:
    """n random uint8 images for `net`, plus the all-0 and all-255 corner cases first."""
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, size=(n, net.n_inputs), dtype=np.uint8)
    sparse = rng.random((n, net.n_inputs)) < 0.5
    images[n // 2:][sparse[n // 2:]] = 0  # half of them sparse, like real images
    corners = np.stack([np.zeros(net.n_inputs, np.uint8), np.full(net.n_inputs, 255, np.uint8)])
    return np.concatenate([corners, images])


def random_run(seed: int, *, plan: str = "mlp", input_coding: str = "real", T: int = 8
               ) -> tuple[dict, dict[str, np.ndarray]]:
    """(config, float32 arrays) of a small valid run directory without training, for the
    `digits` dataset's 8x8 images: `plan` "mlp" (dense 12 -> 10 classes) or "cnn" (conv 3x3
    -> pool -> 10 classes), seeded weights, BatchNorm statistics and kernel parameters
    (docs/architecture.md)."""
    rng = np.random.default_rng(seed)
    if plan == "mlp":
        layers = [{"kind": "flatten", "name": "flatten"},
                  {"kind": "dense", "name": "fc1", "out_features": 12},
                  {"kind": "output", "name": "out", "out_features": 10}]
        shapes = {"fc1": (12, 64), "out": (10, 12)}
    elif plan == "cnn":
        layers = [{"kind": "conv2d", "name": "conv1", "out_channels": 2, "kernel_size": 3,
                   "stride": 1, "padding": 1},
                  {"kind": "maxpool2d", "name": "pool1", "size": 2},
                  {"kind": "flatten", "name": "flatten"},
                  {"kind": "output", "name": "out", "out_features": 10}]
        shapes = {"conv1": (2, 1, 3, 3), "out": (10, 32)}
    else:
        raise ValueError(f"plan must be 'mlp' or 'cnn', got {plan!r}")
    config = {"dataset": "digits", "arch": plan, "T": T, "q": 0.5,
              "input_coding": input_coding, "bn_eps": 1e-5, "input_shape": [1, 8, 8],
              "num_classes": 10, "layers": layers}
    arrays = {}
    for name, shape in shapes.items():
        arrays[f"{name}.weight"] = rng.normal(0, 0.5, shape).astype(np.float32)
        arrays[f"{name}.bias"] = rng.normal(0, 0.1, shape[0]).astype(np.float32)
        if name == "out":
            continue
        n = shape[0]
        arrays |= {f"{name}.bn.weight": rng.uniform(0.5, 1.5, n).astype(np.float32),
                   f"{name}.bn.bias": rng.normal(0, 0.1, n).astype(np.float32),
                   f"{name}.bn.running_mean": rng.normal(0, 0.1, n).astype(np.float32),
                   f"{name}.bn.running_var": rng.uniform(0.5, 1.5, n).astype(np.float32),
                   f"{name}.tau": np.array([rng.uniform(1.5, 4.0)], np.float32),
                   f"{name}.td": np.array([rng.uniform(0.0, 0.5)], np.float32)}
    if input_coding == "ttfs":
        arrays |= {"input.tau": np.array([2.3], np.float32),
                   "input.td": np.array([0.1], np.float32)}
    return config, arrays


def write_run(path: str | Path, config: dict, arrays: dict[str, np.ndarray]) -> Path:
    """Write config.json and model.safetensors into the new folder `path`."""
    from safetensors.numpy import save_file

    path = Path(path)
    path.mkdir(parents=True)
    (path / CONFIG_FILE).write_text(json.dumps(config, indent=1) + "\n")
    save_file(arrays, str(path / WEIGHTS_FILE))
    return path
