"""The float network of a run directory, BN folded, as plain numpy (no torch).

This is the interface between training and deployment: the quantizer and the float simulators
read a `FloatNetwork`. `load_float_network(run_dir)` reads `config.json` and
`model.safetensors` (docs/architecture.md) and folds each hidden layer's BatchNorm into its
weights and bias:

    s = gamma / sqrt(running_var + bn_eps)   (per output channel)
    W <- W * s,   b <- (b - running_mean) * s + beta

The layer-spec helpers (`check_layer_specs`, `layer_shapes`) are shared with `sdk.model`, so the
torch model and the float network agree on names and shapes.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from safetensors import SafetensorError
from safetensors.numpy import load_file

LAYER_KINDS = ("conv2d", "dense", "maxpool2d", "flatten", "output")
SPIKING_KINDS = ("conv2d", "dense")
WEIGHTED_KINDS = ("conv2d", "dense", "output")
INPUT_CODINGS = ("real", "ttfs")
CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"
_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
#: Names a layer cannot take: the input kernel's key prefix and torch Module attributes.
RESERVED_NAMES = frozenset({"input", "layers", "forward", "training", "T", "q"})


class NetworkError(ValueError):
    """A layer spec, config or checkpoint is invalid; the message says what and where."""


@dataclass(frozen=True)
class FloatLayer:
    """One layer with float64 parameters (BN folded). Shapes are (C, H, W) or (N,)."""

    kind: str
    name: str
    in_shape: tuple[int, ...]
    out_shape: tuple[int, ...]
    weight: np.ndarray | None = None   # conv [Cout, Cin, k, k], dense/output [out, in]
    bias: np.ndarray | None = None
    tau: float | None = None           # spiking layers (conv2d, dense)
    td: float | None = None
    stride: int = 1
    padding: int = 0
    size: int = 0                      # maxpool window (= stride)


@dataclass(frozen=True)
class FloatNetwork:
    """A TTFS network in float64: the layers plus the window and input coding."""

    layers: tuple[FloatLayer, ...]
    T: int
    q: float
    input_shape: tuple[int, int, int]
    input_coding: str
    input_tau: float | None
    input_td: float | None
    num_classes: int


def threshold_values(tau: float, td: float, *, T: int, q: float) -> list[float]:
    """theta(t) = exp(-(t - td + q) / tau), t = 0..T-1, in Python float64 (libm exp).

    The one definition of the threshold table: the surrogate activation (torch) and the float
    simulators (numpy) both use these values, so they agree on every tie.
    """
    return [math.exp(-(t - td + q) / tau) for t in range(T)]


def kernel_values(tau: float, td: float, *, T: int) -> list[float]:
    """eps(t) = exp(-(t - td) / tau), t = 0..T-1: the decoded value of a spike at t."""
    return [math.exp(-(t - td) / tau) for t in range(T)]


def layer_shapes(layers: list[dict], input_shape: tuple[int, ...]
                 ) -> list[tuple[tuple[int, ...], tuple[int, ...]]]:
    """(in_shape, out_shape) of each layer spec, validating kinds and shapes.

    conv2d: out = (C_out, (H + 2p - k) // s + 1, (W + 2p - k) // s + 1);
    maxpool2d: (C, H // size, W // size) (a partial border is dropped);
    flatten: (C*H*W,); dense/output: (out_features,) from a flat input.
    """
    shape, shapes = tuple(input_shape), []
    for spec in layers:
        kind, name = spec["kind"], spec["name"]
        if kind in ("conv2d", "maxpool2d"):
            if len(shape) != 3:
                raise NetworkError(f"layer '{name}' ({kind}) needs a [C, H, W] input, got "
                                   f"{list(shape)}; add it before 'flatten'")
            c, h, w = shape
            if kind == "conv2d":
                k, s, p = spec["kernel_size"], spec.get("stride", 1), spec.get("padding", 0)
                out = (spec["out_channels"], (h + 2 * p - k) // s + 1, (w + 2 * p - k) // s + 1)
            else:
                out = (c, h // spec["size"], w // spec["size"])
            if min(out) < 1:
                raise NetworkError(f"layer '{name}' ({kind}) gets input {list(shape)}, too small"
                                   " for its window")
        elif kind == "flatten":
            out = (int(np.prod(shape)),)
        else:
            if len(shape) != 1:
                raise NetworkError(f"layer '{name}' ({kind}) needs a flat input, got "
                                   f"{list(shape)}; add a 'flatten' layer before it")
            out = (spec["out_features"],)
        shapes.append((shape, out))
        shape = out
    return shapes


_REQUIRED = {"conv2d": ("out_channels", "kernel_size"), "dense": ("out_features",),
             "maxpool2d": ("size",), "flatten": (), "output": ("out_features",)}


def check_layer_specs(layers: list[dict], input_shape: tuple[int, ...]) -> None:
    """Validate a layer-spec list (docs/architecture.md); raises NetworkError."""
    if not layers or layers[-1].get("kind") != "output":
        raise NetworkError("the layer list must end with one 'output' layer")
    names, spiking_seen = set(), False
    for spec in layers:
        kind, name = spec.get("kind"), spec.get("name")
        if kind not in LAYER_KINDS:
            raise NetworkError(f"layer {name!r}: unknown kind {kind!r}; expected one of "
                               f"{', '.join(LAYER_KINDS)}")
        if not isinstance(name, str) or not _IDENT.match(name) or name in RESERVED_NAMES:
            raise NetworkError(f"layer name {name!r} is not an identifier or is reserved")
        if name in names:
            raise NetworkError(f"layer name {name!r} is used twice")
        names.add(name)
        if kind == "maxpool2d" and not spiking_seen:
            raise NetworkError(f"layer '{name}': max pooling needs spike times; put it after a "
                               "conv2d layer")
        spiking_seen = spiking_seen or kind in SPIKING_KINDS
        if kind == "output" and spec is not layers[-1]:
            raise NetworkError(f"layer '{name}': 'output' must be the last layer")
        for key in _REQUIRED[kind]:
            value = spec.get(key)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise NetworkError(f"layer '{name}' ({kind}): '{key}' must be a positive "
                                   f"integer, got {value!r}")
    layer_shapes(layers, input_shape)


def network_from_arrays(config: dict, arrays: dict[str, np.ndarray]) -> FloatNetwork:
    """Build the BN-folded FloatNetwork from a run config and its named parameter arrays."""
    input_shape = tuple(config["input_shape"])
    check_layer_specs(config["layers"], input_shape)
    eps = float(config["bn_eps"])

    def get(key: str, shape: tuple[int, ...]) -> np.ndarray:
        if key not in arrays:
            raise NetworkError(f"checkpoint has no tensor '{key}'")
        value = np.asarray(arrays[key], dtype=np.float64)
        if value.shape != shape:
            raise NetworkError(f"checkpoint tensor '{key}' has shape {list(value.shape)}, "
                               f"expected {list(shape)}")
        return value

    layers = []
    for spec, (in_shape, out_shape) in zip(config["layers"],
                                           layer_shapes(config["layers"], input_shape)):
        kind, name = spec["kind"], spec["name"]
        if kind not in WEIGHTED_KINDS:
            layers.append(FloatLayer(kind, name, in_shape, out_shape, size=spec.get("size", 0),
                                     stride=spec.get("size", 1)))
            continue
        n_out = out_shape[0]
        w_shape = ((n_out, in_shape[0], spec["kernel_size"], spec["kernel_size"])
                   if kind == "conv2d" else (n_out, in_shape[0]))
        weight, bias = get(f"{name}.weight", w_shape), get(f"{name}.bias", (n_out,))
        if kind == "output":
            layers.append(FloatLayer(kind, name, in_shape, out_shape, weight, bias))
            continue
        s = get(f"{name}.bn.weight", (n_out,)) / np.sqrt(get(f"{name}.bn.running_var",
                                                             (n_out,)) + eps)
        weight = weight * s.reshape((-1,) + (1,) * (weight.ndim - 1))
        bias = (bias - get(f"{name}.bn.running_mean", (n_out,))) * s + get(f"{name}.bn.bias",
                                                                           (n_out,))
        layers.append(FloatLayer(kind, name, in_shape, out_shape, weight, bias,
                                 tau=float(get(f"{name}.tau", (1,))[0]),
                                 td=float(get(f"{name}.td", (1,))[0]),
                                 stride=spec.get("stride", 1), padding=spec.get("padding", 0)))
    ttfs = config["input_coding"] == "ttfs"
    net = FloatNetwork(
        layers=tuple(layers), T=int(config["T"]), q=float(config["q"]),
        input_shape=input_shape, input_coding=config["input_coding"],
        input_tau=float(get("input.tau", (1,))[0]) if ttfs else None,
        input_td=float(get("input.td", (1,))[0]) if ttfs else None,
        num_classes=int(config["num_classes"]))
    check_network(net)
    return net


def check_network(net: FloatNetwork) -> None:
    """Reject values the SNN cannot run: T < 2, unknown coding, tau <= 0, non-finite params."""
    if net.T < 2:
        raise NetworkError(f"T must be at least 2, got {net.T}")
    if net.input_coding not in INPUT_CODINGS:
        raise NetworkError(f"input coding {net.input_coding!r}: expected one of "
                           f"{', '.join(INPUT_CODINGS)}")
    kernels = [(layer.name, layer.tau, layer.td) for layer in net.layers
               if layer.kind in SPIKING_KINDS]
    if net.input_coding == "ttfs":
        kernels.append(("input", net.input_tau, net.input_td))
    for name, tau, td in kernels:
        if not (np.isfinite(tau) and np.isfinite(td) and tau > 0):
            raise NetworkError(f"layer '{name}': kernel parameters tau={tau}, td={td} are "
                               "invalid (tau must be > 0 and both finite)")
    for layer in net.layers:
        if layer.weight is not None and not (np.isfinite(layer.weight).all()
                                             and np.isfinite(layer.bias).all()):
            raise NetworkError(f"layer '{layer.name}': non-finite weights or bias")


def load_float_network(run_dir: str | Path) -> FloatNetwork:
    """Read `config.json` + `model.safetensors` of a run directory and fold BN (numpy only)."""
    return network_from_arrays(read_config(run_dir), read_weights(run_dir))


def read_config(run_dir: str | Path) -> dict:
    """The parsed `config.json` of a run directory; raises NetworkError when unreadable."""
    path = Path(run_dir) / CONFIG_FILE
    try:
        config = json.loads(path.read_text())
    except (OSError, ValueError) as err:
        raise NetworkError(f"{path}: cannot read the run config ({err})") from None
    missing = [k for k in ("layers", "input_shape", "T", "q", "input_coding", "bn_eps",
                           "num_classes") if k not in config]
    if missing:
        raise NetworkError(f"{path}: missing key(s) {', '.join(missing)}")
    return config


def read_weights(run_dir: str | Path) -> dict[str, np.ndarray]:
    """The named arrays of `model.safetensors`; raises NetworkError when unreadable."""
    path = Path(run_dir) / WEIGHTS_FILE
    try:
        return load_file(str(path))
    except (OSError, SafetensorError, ValueError) as err:
        raise NetworkError(f"{path}: cannot read the checkpoint ({err})") from None
