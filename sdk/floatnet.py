"""The float network of a run directory, BN folded, as plain numpy (no torch).

This is the interface between training and deployment: the quantizer and the float simulators
read a `FloatNetwork`. `load_float_network(run_dir)` reads `config.json` and
`model.safetensors` (docs/architecture.md) and folds each hidden layer's BatchNorm into its
weights and bias:

    s = gamma / sqrt(running_var + bn_eps)   (per output channel)
    W <- W * s,   b <- (b - running_mean) * s + beta

The layer-spec helpers (`check_layer_specs`, `layer_shapes`) are shared with
`ttfs.sdk.model`, so the torch model and the float network agree on names and shapes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from safetensors import SafetensorError
from safetensors.numpy import load_file

from ttfs.sdk import limits
from ttfs.sdk.limits import INPUT_CODINGS  # noqa: F401 -- re-exported: the one definition

LAYER_KINDS = ("conv2d", "dense", "maxpool2d", "flatten", "output")
SPIKING_KINDS = ("conv2d", "dense")
WEIGHTED_KINDS = ("conv2d", "dense", "output")
CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"
#: Largest config.json and model.safetensors read.
MAX_CONFIG_BYTES = 2**20
MAX_WEIGHTS_BYTES = 256 * 2**20
#: Names a layer cannot take besides `ttfs.sdk.limits.name_problem`: the input kernel's key prefix
#: and torch Module attributes.
RESERVED_NAMES = frozenset({"input", "layers", "forward", "training", "t", "q"})
#: Keys of a layer spec: (lowest, highest) value of each int field; kind and name are strings.
LAYER_FIELDS = {
    "conv2d": {"out_channels": (1, limits.MAX_CHANNELS), "kernel_size": (1, limits.MAX_KERNEL),
               "stride": (1, limits.MAX_STRIDE), "padding": (0, limits.MAX_KERNEL - 1)},
    "dense": {"out_features": (1, limits.MAX_NEURONS)},
    "maxpool2d": {"size": (2, 16)},
    "flatten": {},
    "output": {"out_features": (1, limits.MAX_OUTPUTS)},
}
_OPTIONAL = {"stride", "padding"}


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
    #: Bit widths of quantization-aware training (run config), None when trained in float.
    weight_bits: int | None = None
    kernel_bits: int | None = None


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


def check_layer_specs(layers: list[dict], input_shape: tuple[int, ...]) -> None:
    """Validate a layer-spec list (docs/architecture.md); raises NetworkError.

    Every spec is a JSON object with exactly the keys of its kind (`LAYER_FIELDS`), int fields
    in range, names by `ttfs.sdk.limits.name_problem` (and not `RESERVED_NAMES`, in any
    case), unique in any case; `output` last and only last; max pooling after a spiking layer;
    shapes that fit
    (`layer_shapes`) and the size limits of `ttfs.sdk.limits`. ttfs-train checks this before
    training (`ttfs.sdk.model.TTFSNet`), the deployment before reading any weights.
    """
    if not isinstance(layers, list) or not layers:
        raise NetworkError("'layers': expected a non-empty list of layer objects")
    if len(layers) > limits.MAX_LAYERS:
        raise NetworkError(f"'layers': {len(layers)} layers, more than the limit "
                           f"{limits.MAX_LAYERS}")
    names, spiking_seen = set(), False
    for i, spec in enumerate(layers):
        if not isinstance(spec, dict):
            raise NetworkError(f"layers[{i}]: expected an object, got {type(spec).__name__}")
        kind, name = spec.get("kind"), spec.get("name")
        if not isinstance(kind, str) or kind not in LAYER_KINDS:
            raise NetworkError(f"layers[{i}] ({limits.show(name)}): unknown kind "
                               f"{limits.show(kind)}; expected one of {', '.join(LAYER_KINDS)}")
        problem = limits.name_problem(name)
        if problem is None and name.lower() in RESERVED_NAMES:
            problem = f"reserved in any case: {', '.join(sorted(RESERVED_NAMES))}"
        if problem:
            raise NetworkError(f"layers[{i}].name: {limits.show(name)} is not an identifier "
                               f"or is reserved ({problem})")
        if name.lower() in names:
            raise NetworkError(f"layer name {name!r} is used twice (names are compared in any "
                               "case)")
        names.add(name.lower())
        if kind == "maxpool2d" and not spiking_seen:
            raise NetworkError(f"layer '{name}': max pooling needs spike times; put it after a "
                               "conv2d layer")
        spiking_seen = spiking_seen or kind in SPIKING_KINDS
        if kind == "output" and i != len(layers) - 1:
            raise NetworkError(f"layer '{name}': 'output' must be the last layer")
        extra = set(spec) - {"kind", "name", *LAYER_FIELDS[kind]}
        if extra:
            raise NetworkError(f"layer '{name}' ({kind}): unknown key(s) "
                               f"{', '.join(sorted(map(str, extra)))}; expected "
                               f"{', '.join(['kind', 'name', *LAYER_FIELDS[kind]])}")
        for key, (lo, hi) in LAYER_FIELDS[kind].items():
            if key in _OPTIONAL and key not in spec:
                continue
            if limits.int_problem(spec.get(key), lo, hi):
                what = "a positive integer" if lo == 1 else f"an integer >= {lo}"
                raise NetworkError(f"layer '{name}' ({kind}): '{key}' must be {what}, got "
                                   f"{limits.show(spec.get(key))} (at most {hi})")
        if kind == "conv2d" and spec.get("padding", 0) >= spec["kernel_size"]:
            raise NetworkError(f"layer '{name}' (conv2d).padding: expected less than "
                               f"kernel_size {spec['kernel_size']}, got {spec['padding']}")
    if layers[-1].get("kind") != "output":
        raise NetworkError("the layer list must end with one 'output' layer")
    shapes = layer_shapes(layers, input_shape)
    problem = limits.size_problem(math.prod(input_shape), spec_steps(layers, shapes))
    if problem:
        raise NetworkError(f"network too large: {problem}")


def spec_steps(layers: list[dict], shapes: list[tuple[tuple[int, ...], tuple[int, ...]]]
               ) -> list[tuple[str, tuple[int, ...], tuple[int, ...], int]]:
    """(kind, in_shape, out_shape, kernel_size) per layer for `ttfs.sdk.limits`."""
    return [(spec["kind"], i, o, spec.get("kernel_size", 1)) for spec, (i, o) in
            zip(layers, shapes)]


def check_config(config: object, where: str = CONFIG_FILE) -> dict:
    """Type-check the network fields of a run config (before anything is allocated).

    Fields: `layers` (`check_layer_specs`), `input_shape` [C, H, W], `T` int 2..MAX_T,
    `q` finite in [0, 1], `input_coding` real|ttfs, `bn_eps` finite in (0, 1], `num_classes`
    = the output layer's out_features, optional `dataset` (string) and `weight_bits` /
    `kernel_bits` (null or int 2..16). Returns `config`; raises NetworkError naming `where` and
    the field. Other keys (training hyperparameters) are left to the trainer.
    """
    if not isinstance(config, dict):
        raise NetworkError(f"{where}: expected a JSON object, got {type(config).__name__}")
    missing = [k for k in ("layers", "input_shape", "T", "q", "input_coding", "bn_eps",
                           "num_classes") if k not in config]
    if missing:
        raise NetworkError(f"{where}: missing key(s) {', '.join(missing)}")
    problems = {
        "input_shape": limits.shape_problem(config["input_shape"], 3),
        "T": limits.int_problem(config["T"], 2, limits.MAX_T),
        "q": limits.float_problem(config["q"], 0.0, 1.0),
        "input_coding": limits.coding_problem(config["input_coding"]),
        "bn_eps": limits.float_problem(config["bn_eps"], 1e-30, 1.0),
        "num_classes": limits.int_problem(config["num_classes"], 1, limits.MAX_OUTPUTS),
        "dataset": (None if isinstance(config.get("dataset", ""), str)
                    else f"expected a string, got {limits.show(config['dataset'])}"),
    }
    for key in ("weight_bits", "kernel_bits"):
        if config.get(key) is not None:
            problems[key] = limits.int_problem(config[key], 2, 16)
    for key, problem in problems.items():
        if problem:
            raise NetworkError(f"{where}: '{key}': {problem}")
    try:
        check_layer_specs(config["layers"], tuple(config["input_shape"]))
    except NetworkError as err:
        raise NetworkError(f"{where}: {err}") from None
    out = config["layers"][-1]["out_features"]
    if out != config["num_classes"]:
        raise NetworkError(f"{where}: 'num_classes' is {config['num_classes']} but the output "
                           f"layer has {out} features")
    return config


def network_from_arrays(config: dict, arrays: dict[str, np.ndarray]) -> FloatNetwork:
    """Build the BN-folded FloatNetwork from a run config and its named parameter arrays."""
    check_config(config, "config")
    input_shape = tuple(config["input_shape"])
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
        with np.errstate(all="ignore"):     # a negative variance gives NaN: refused below
            s = get(f"{name}.bn.weight", (n_out,)) / np.sqrt(get(f"{name}.bn.running_var",
                                                                 (n_out,)) + eps)
            weight = weight * s.reshape((-1,) + (1,) * (weight.ndim - 1))
            bias = (bias - get(f"{name}.bn.running_mean", (n_out,))) * s + get(
                f"{name}.bn.bias", (n_out,))
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
        num_classes=int(config["num_classes"]), weight_bits=config.get("weight_bits"),
        kernel_bits=config.get("kernel_bits"))
    check_network(net)
    return net


def check_network(net: FloatNetwork) -> None:
    """Reject values the SNN cannot run: T, q, coding out of range, kernel parameters that
    give Infinity or 0 in the tables (`ttfs.sdk.limits.kernel_problem`), non-finite weights."""
    for what, problem in (("T", limits.int_problem(net.T, 2, limits.MAX_T)),
                          ("q", limits.float_problem(net.q, 0.0, 1.0)),
                          ("input coding", limits.coding_problem(net.input_coding))):
        if problem:
            raise NetworkError(f"{what}: {problem}")
    kernels = [(layer.name, layer.tau, layer.td) for layer in net.layers
               if layer.kind in SPIKING_KINDS]
    if net.input_coding == "ttfs":
        kernels.append(("input", net.input_tau, net.input_td))
    for name, tau, td in kernels:
        problem = limits.kernel_problem(tau, td, T=net.T, q=net.q)
        if problem:
            raise NetworkError(f"layer '{name}': kernel parameters tau={tau}, td={td} "
                               f"({name}.tau, {name}.td): {problem}")
    for layer in net.layers:
        if layer.weight is not None and not (np.isfinite(layer.weight).all()
                                             and np.isfinite(layer.bias).all()):
            raise NetworkError(f"layer '{layer.name}': non-finite weights or bias (after "
                               "folding BatchNorm)")


def load_float_network(run_dir: str | Path) -> FloatNetwork:
    """Read `config.json` + `model.safetensors` of a run directory and fold BN (numpy only).

    The config is validated and the network checked against `ttfs.sdk.limits` before the
    checkpoint is read; every problem raises NetworkError naming the file and the field.
    """
    config = read_config(run_dir)
    try:
        return network_from_arrays(config, read_weights(run_dir))
    except NetworkError as err:
        raise NetworkError(f"{Path(run_dir) / WEIGHTS_FILE}: {err}") from None


def read_config(run_dir: str | Path) -> dict:
    """The parsed and checked (`check_config`) `config.json` of a run directory; raises
    NetworkError naming the file and the field."""
    path = Path(run_dir) / CONFIG_FILE
    try:
        if path.stat().st_size > MAX_CONFIG_BYTES:
            raise NetworkError(f"{path}: larger than the limit {MAX_CONFIG_BYTES} bytes")
        config = limits.strict_json(path.read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError) as err:
        if isinstance(err, NetworkError):
            raise
        raise NetworkError(f"{path}: cannot read the run config "
                           f"({limits.clip(str(err))})") from None
    return check_config(config, str(path))


def read_weights(run_dir: str | Path) -> dict[str, np.ndarray]:
    """The named arrays of `model.safetensors`; raises NetworkError when unreadable."""
    path = Path(run_dir) / WEIGHTS_FILE
    try:
        if path.stat().st_size > MAX_WEIGHTS_BYTES:
            raise NetworkError(f"{path}: larger than the limit {MAX_WEIGHTS_BYTES} bytes")
        return load_file(str(path))
    except (OSError, SafetensorError, ValueError, TypeError) as err:
        if isinstance(err, NetworkError):
            raise
        raise NetworkError(f"{path}: cannot read the checkpoint "
                           f"({limits.clip(str(err))})") from None
