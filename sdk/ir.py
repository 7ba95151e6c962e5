"""Integer IR of a TTFS network and its file format `model.ttfs` (DESIGN.md section 4).

The IR is what every target reproduces bit for bit. It holds only integers (int32 arrays):

- a spiking layer (`Dense`, `Conv2d`) has `weight`, `bias`, a threshold table `theta[T]`
  (non-increasing, >= 1) and the kernel table `kernel[T]` that gives the operand of its spikes;
- `MaxPool2d` and `Flatten` move spike times; `Output` integrates and does not fire.

Run time semantics (see `ttfs.sdk.golden`): `u_j = bias_j + sum_i weight_ji * v_i` over the input
events `(i, v_i)`, `t_j = min{t in [0, T-1] : u_j >= theta[t]}` or NO_SPIKE = T. The operand
`v_i` is the pixel byte for the first layer under `real` input coding, and otherwise
`kernel[t_i]` of the last spiking layer (or of the input layer) before the receiving layer.

The file format `model.ttfs` (a zip of `.npy` arrays plus `manifest.json`) lives in
`ttfs.sdk.modelfile`; `save` and `load` here are its entry points. Every violation raises
`TTFSFormatError` naming the field; names and sizes follow `ttfs.sdk.limits`.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Union

import numpy as np

from ttfs.sdk import __version__, limits
from ttfs.sdk.limits import INPUT_CODINGS, RESERVED  # noqa: F401 -- re-exported

FORMAT_NAME = "ttfs-ir"
FORMAT_VERSION = 1
#: Accumulators, biases and thresholds are int32 on every target: M + 1 must fit.
ACC_LIMIT = 2**31 - 1


class TTFSFormatError(ValueError):
    """An IR or `model.ttfs` file violates the format; the message names the field."""


def check_identifier(name: str, what: str) -> str:
    """Return `name` if it may name a model, layer or option (`ttfs.sdk.limits.name_problem`: a C
    and Verilog identifier, no reserved word or `ttfs_` prefix in any case), else raise
    TTFSFormatError."""
    problem = limits.name_problem(name)
    if problem:
        raise TTFSFormatError(f"{what}: {problem}")
    return name


def _is_int(value: object) -> bool:
    """True for a Python int that is not a bool (JSON true would otherwise pass as 1)."""
    return isinstance(value, int) and not isinstance(value, bool)


def accumulator_bound(weight: np.ndarray, bias: np.ndarray, in_max: int) -> int:
    """M = max_j(|bias_j| + in_max * sum_i |weight_ji|) of a weighted layer (int64, exact).

    `weight` is [n_out, ...] and `bias` [n_out]; both must fit int32 (|values| < 2^31).
    """
    w = np.abs(np.asarray(weight, dtype=np.int64)).reshape(len(weight), -1)
    b = np.abs(np.asarray(bias, dtype=np.int64))
    return int((b + w.sum(axis=1) * int(in_max)).max())


def _int_array(value: np.ndarray, what: str, ndim: int) -> None:
    if not isinstance(value, np.ndarray) or value.dtype != np.int32:
        got = getattr(value, "dtype", type(value).__name__)
        raise TTFSFormatError(f"{what}: expected an int32 array, got {got}")
    if value.ndim != ndim:
        raise TTFSFormatError(f"{what}: expected {ndim} dimensions, got shape {value.shape}")


def _positive_shape(shape: tuple, what: str) -> tuple[int, ...]:
    if not isinstance(shape, tuple) or not shape or not all(
        isinstance(d, int) and not isinstance(d, bool) and d > 0 for d in shape
    ):
        raise TTFSFormatError(f"{what}: expected a tuple of positive ints, got {shape!r}")
    return shape


def _check_tables(layer: "Dense | Conv2d") -> None:
    _int_array(layer.theta, f"{layer.name}.theta", 1)
    _int_array(layer.kernel, f"{layer.name}.kernel", 1)
    if layer.theta.shape != layer.kernel.shape:
        raise TTFSFormatError(f"{layer.name}: theta has shape {layer.theta.shape} but kernel "
                              f"has shape {layer.kernel.shape}; both must be [T]")
    if np.any(layer.theta < 1) or np.any(np.diff(layer.theta.astype(np.int64)) > 0):
        raise TTFSFormatError(f"{layer.name}.theta: must be non-increasing and >= 1")
    if np.any(layer.kernel < 0) or np.any(np.diff(layer.kernel.astype(np.int64)) > 0):
        raise TTFSFormatError(f"{layer.name}.kernel: must be non-increasing and >= 0")


def _check_weighted(layer: "Dense | Conv2d | Output", ndim: int) -> None:
    check_identifier(layer.name, "layer name")
    _int_array(layer.weight, f"{layer.name}.weight", ndim)
    _int_array(layer.bias, f"{layer.name}.bias", 1)
    if layer.bias.shape[0] != layer.weight.shape[0]:
        raise TTFSFormatError(f"{layer.name}.bias: expected {layer.weight.shape[0]} entries "
                              f"(one per output), got {layer.bias.shape[0]}")
    if min(layer.weight.shape) < 1:
        raise TTFSFormatError(f"{layer.name}.weight: empty shape {layer.weight.shape}")


@dataclass(frozen=True, eq=False)
class Dense:
    """Fully connected spiking layer: `weight` [n_out, n_in], `bias` [n_out], tables [T]."""

    name: str
    weight: np.ndarray
    bias: np.ndarray
    theta: np.ndarray
    kernel: np.ndarray

    kind = "dense"

    def __post_init__(self) -> None:
        _check_weighted(self, 2)
        _check_tables(self)

    def out_shape(self, in_shape: tuple[int, ...]) -> tuple[int, ...]:
        if in_shape != (self.weight.shape[1],):
            raise TTFSFormatError(f"{self.name}: receives shape {in_shape}, but weight expects "
                                  f"({self.weight.shape[1]},)")
        return (self.weight.shape[0],)


@dataclass(frozen=True, eq=False)
class Conv2d:
    """2-D convolution spiking layer: `weight` [C_out, C_in, K, K], zero padding, stride.

    out[c, y, x] = bias[c] + sum_{c', dy, dx} weight[c, c', dy, dx] * in[c', y*s + dy - p,
    x*s + dx - p] (positions outside the input are silent).
    """

    name: str
    weight: np.ndarray
    bias: np.ndarray
    theta: np.ndarray
    kernel: np.ndarray
    stride: int = 1
    padding: int = 0

    kind = "conv2d"

    def __post_init__(self) -> None:
        _check_weighted(self, 4)
        _check_tables(self)
        if self.weight.shape[2] != self.weight.shape[3]:
            raise TTFSFormatError(f"{self.name}.weight: kernel must be square, got "
                                  f"{self.weight.shape[2:]}")
        if not (_is_int(self.stride) and 1 <= self.stride <= 16):
            raise TTFSFormatError(f"{self.name}.stride: expected an int in 1..16, "
                                  f"got {self.stride!r}")
        if not (_is_int(self.padding) and 0 <= self.padding < self.weight.shape[2]):
            raise TTFSFormatError(f"{self.name}.padding: expected an int in "
                                  f"0..{self.weight.shape[2] - 1}, got {self.padding!r}")

    def out_shape(self, in_shape: tuple[int, ...]) -> tuple[int, ...]:
        c_out, c_in, k, _ = self.weight.shape
        if len(in_shape) != 3 or in_shape[0] != c_in:
            raise TTFSFormatError(f"{self.name}: receives shape {in_shape}, but weight expects "
                                  f"({c_in}, H, W)")
        h, w = ((d + 2 * self.padding - k) // self.stride + 1 for d in in_shape[1:])
        if h < 1 or w < 1:
            raise TTFSFormatError(f"{self.name}: input {in_shape} is smaller than the kernel")
        return (c_out, h, w)


@dataclass(frozen=True, eq=False)
class MaxPool2d:
    """Max pooling on spike times: earliest spike of each `size` x `size` window (stride = size)."""

    name: str
    size: int

    kind = "maxpool2d"

    def __post_init__(self) -> None:
        check_identifier(self.name, "layer name")
        if not (_is_int(self.size) and 2 <= self.size <= 16):
            raise TTFSFormatError(f"{self.name}.size: expected an int in 2..16, got {self.size!r}")

    def out_shape(self, in_shape: tuple[int, ...]) -> tuple[int, ...]:
        if len(in_shape) != 3 or min(in_shape[1:]) < self.size:
            raise TTFSFormatError(f"{self.name}: receives shape {in_shape}, expected (C, H, W) "
                                  f"with H, W >= {self.size}")
        return (in_shape[0], in_shape[1] // self.size, in_shape[2] // self.size)


@dataclass(frozen=True, eq=False)
class Flatten:
    """(C, H, W) -> (C*H*W,) in C order; spike times pass unchanged."""

    name: str

    kind = "flatten"

    def __post_init__(self) -> None:
        check_identifier(self.name, "layer name")

    def out_shape(self, in_shape: tuple[int, ...]) -> tuple[int, ...]:
        return (math.prod(in_shape),)


@dataclass(frozen=True, eq=False)
class Output:
    """Non-firing output layer: scores = u = bias + weight @ operands; class = first argmax."""

    name: str
    weight: np.ndarray
    bias: np.ndarray

    kind = "output"

    def __post_init__(self) -> None:
        _check_weighted(self, 2)

    def out_shape(self, in_shape: tuple[int, ...]) -> tuple[int, ...]:
        if in_shape != (self.weight.shape[1],):
            raise TTFSFormatError(f"{self.name}: receives shape {in_shape}, but weight expects "
                                  f"({self.weight.shape[1]},)")
        return (self.weight.shape[0],)


Layer = Union[Dense, Conv2d, MaxPool2d, Flatten, Output]
LAYER_KINDS = {cls.kind: cls for cls in (Dense, Conv2d, MaxPool2d, Flatten, Output)}
SPIKING = (Dense, Conv2d)
WEIGHTED = (Dense, Conv2d, Output)


@dataclass(frozen=True)
class LayerInfo:
    """Derived facts about one layer in its network (computed once, never stored on disk).

    `in_max` is the largest operand the layer can receive (255 for pixels, else the source
    kernel's `kernel[0]`); `acc_bound` is M = max_j(|bias_j| + sum_i |weight_ji| * in_max) and
    `acc_bits` the signed width that holds [-M, M + 1] (0 for layers without accumulator).
    """

    in_shape: tuple[int, ...]
    out_shape: tuple[int, ...]
    in_max: int
    acc_bound: int
    acc_bits: int


@dataclass(frozen=True, eq=False)
class Network:
    """A whole integer TTFS network; validated on construction (raises TTFSFormatError)."""

    name: str
    T: int
    weight_bits: int
    kernel_bits: int
    input_shape: tuple[int, int, int]
    input_coding: str
    layers: tuple[Layer, ...]
    input_times: np.ndarray | None = None
    input_kernel: np.ndarray | None = None
    reference: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        check_identifier(self.name, "model name")
        for what, problem in (("T", limits.int_problem(self.T, 2, limits.MAX_T)),
                              ("weight_bits", limits.int_problem(self.weight_bits, 2, 16)),
                              ("kernel_bits", limits.int_problem(self.kernel_bits, 2, 16))):
            if problem:
                raise TTFSFormatError(f"{what}: {problem}")
        _positive_shape(self.input_shape, "input_shape")
        if len(self.input_shape) != 3:
            raise TTFSFormatError(f"input_shape: expected (C, H, W), got {self.input_shape!r}")
        if math.prod(self.input_shape) > limits.MAX_INPUTS:
            raise TTFSFormatError(f"input_shape: {math.prod(self.input_shape)} values, more "
                                  f"than the limit {limits.MAX_INPUTS}")
        problem = limits.coding_problem(self.input_coding)
        if problem:
            raise TTFSFormatError(f"input_coding: {problem}")
        if self.input_coding == "ttfs":
            self._check_input_tables()
        elif self.input_times is not None or self.input_kernel is not None:
            raise TTFSFormatError("input_times/input_kernel: only allowed with input_coding 'ttfs'")
        if not isinstance(self.layers, tuple) or not self.layers:
            raise TTFSFormatError("layers: expected a non-empty tuple")
        for layer in self.layers:
            if not isinstance(layer, tuple(LAYER_KINDS.values())):
                raise TTFSFormatError(f"layers: unknown layer object {type(layer).__name__}")
        names = [layer.name for layer in self.layers]
        if len({name.lower() for name in names}) != len(names):
            raise TTFSFormatError(f"layers: names must be unique in any case, got {names}")
        if "input" in {name.lower() for name in names}:
            raise TTFSFormatError("layers: the name 'input' is reserved for the input layer")
        if not isinstance(self.layers[-1], Output) or any(
            isinstance(layer, Output) for layer in self.layers[:-1]
        ):
            raise TTFSFormatError("layers: the last layer, and only the last, must be 'output'")
        first_weighted = next(i for i, layer in enumerate(self.layers)
                              if isinstance(layer, WEIGHTED))
        if self.input_coding == "real" and any(
            isinstance(layer, MaxPool2d) for layer in self.layers[:first_weighted]
        ):
            raise TTFSFormatError("layers: max pooling of raw pixels is not supported "
                                  "(a maxpool2d must follow a spiking layer or ttfs input)")
        k_max = 2**self.kernel_bits - 1
        w_max = 2 ** (self.weight_bits - 1) - 1
        for layer in self.layers:
            if isinstance(layer, SPIKING):
                if layer.theta.shape != (self.T,):
                    raise TTFSFormatError(f"{layer.name}.theta: expected shape ({self.T},), "
                                          f"got {layer.theta.shape}")
                if int(layer.kernel.max()) > k_max:
                    raise TTFSFormatError(f"{layer.name}.kernel: values exceed "
                                          f"2^kernel_bits - 1 = {k_max}")
            # int64 first: np.abs of the int32 minimum -2^31 overflows to itself
            if isinstance(layer, WEIGHTED) and int(np.abs(layer.weight.astype(np.int64)).max()
                                                   ) > w_max:
                raise TTFSFormatError(f"{layer.name}.weight: |w| exceeds "
                                      f"2^(weight_bits-1) - 1 = {w_max}")
        # derives shapes and accumulator bounds (raising on violations), then the size limits
        problem = limits.size_problem(self.n_inputs, self.steps)
        if problem:
            raise TTFSFormatError(f"network too large: {problem}")

    def _check_input_tables(self) -> None:
        if self.input_times is None or self.input_kernel is None:
            raise TTFSFormatError("input_coding 'ttfs' needs input_times[256] and input_kernel[T]")
        _int_array(self.input_times, "input.times", 1)
        _int_array(self.input_kernel, "input.kernel", 1)
        if self.input_times.shape != (256,):
            raise TTFSFormatError(f"input.times: expected shape (256,), got "
                                  f"{self.input_times.shape}")
        if np.any(self.input_times < 0) or np.any(self.input_times > self.T):
            raise TTFSFormatError(f"input.times: values must lie in 0..T = {self.T}")
        if np.any(np.diff(self.input_times) > 0):
            raise TTFSFormatError("input.times: brighter pixels must not spike later "
                                  "(non-increasing table)")
        if self.input_kernel.shape != (self.T,):
            raise TTFSFormatError(f"input.kernel: expected shape ({self.T},), got "
                                  f"{self.input_kernel.shape}")
        if (np.any(self.input_kernel < 0) or np.any(np.diff(self.input_kernel) > 0)
                or int(self.input_kernel.max()) > 2**self.kernel_bits - 1):
            raise TTFSFormatError("input.kernel: must be non-increasing, in 0..2^kernel_bits - 1")

    @cached_property
    def info(self) -> tuple[LayerInfo, ...]:
        """Per layer: shapes, largest operand, accumulator bound M and width (see LayerInfo)."""
        shape: tuple[int, ...] = tuple(self.input_shape)
        in_max = 255 if self.input_coding == "real" else int(self.input_kernel[0])
        infos = []
        for layer in self.layers:
            out_shape = layer.out_shape(shape)
            bound, bits = 0, 0
            if isinstance(layer, WEIGHTED):
                bound = accumulator_bound(layer.weight, layer.bias, in_max)
                if bound + 1 > ACC_LIMIT:
                    raise TTFSFormatError(
                        f"{layer.name}: accumulator bound M = {bound} needs more than 32 bits "
                        f"(M + 1 must be <= 2^31 - 1); use fewer weight or kernel bits")
                bits = (bound + 1).bit_length() + 1
            infos.append(LayerInfo(shape, out_shape, in_max, bound, bits))
            if isinstance(layer, SPIKING):
                in_max = int(layer.kernel[0])
            shape = out_shape
        return tuple(infos)

    @property
    def no_spike(self) -> int:
        """The spike-time code of a silent neuron (= T)."""
        return self.T

    @property
    def n_inputs(self) -> int:
        return math.prod(self.input_shape)

    @property
    def n_outputs(self) -> int:
        return int(self.layers[-1].weight.shape[0])

    @property
    def spiking_layers(self) -> tuple[Dense | Conv2d, ...]:
        return tuple(layer for layer in self.layers if isinstance(layer, SPIKING))

    def arrays(self) -> dict[str, np.ndarray]:
        """Every array of the network by its file name stem (`<layer>.<field>`)."""
        out: dict[str, np.ndarray] = {}
        if self.input_coding == "ttfs":
            out["input.times"] = self.input_times
            out["input.kernel"] = self.input_kernel
        for layer in self.layers:
            for fld in ARRAY_FIELDS[layer.kind]:
                out[f"{layer.name}.{fld}"] = getattr(layer, fld)
        return out

    def manifest(self) -> dict:
        """The JSON manifest (without hash): everything but the arrays."""
        return {
            "format": FORMAT_NAME,
            "format_version": FORMAT_VERSION,
            "generator": f"ttfs-sdk {__version__}",
            "name": self.name,
            "T": self.T,
            "weight_bits": self.weight_bits,
            "kernel_bits": self.kernel_bits,
            "input": {"shape": list(self.input_shape), "coding": self.input_coding},
            "layers": [_layer_params(layer) for layer in self.layers],
            "accumulators": {
                layer.name: {"bound": info.acc_bound, "bits": info.acc_bits}
                for layer, info in zip(self.layers, self.info) if isinstance(layer, WEIGHTED)
            },
            "reference": self.reference,
        }

    @cached_property
    def steps(self) -> list[tuple[str, tuple[int, ...], tuple[int, ...], int]]:
        """(kind, in_shape, out_shape, kernel_size) per layer, for `ttfs.sdk.limits`."""
        return [(layer.kind, info.in_shape, info.out_shape,
                 layer.weight.shape[2] if isinstance(layer, Conv2d) else 1)
                for layer, info in zip(self.layers, self.info)]

    @cached_property
    def content_hash(self) -> str:
        """sha256 over the canonical manifest and every array's name, dtype, shape and bytes.

        The generator and the float `reference` values are left out: the hash names the
        integer model, which two correct quantizers on any two machines agree on.
        """
        digest = hashlib.sha256()
        manifest = self.manifest()
        manifest.pop("generator")
        manifest.pop("reference")
        digest.update(json.dumps(manifest, sort_keys=True).encode())
        for key, array in sorted(self.arrays().items()):
            digest.update(f"{key}|{array.dtype.str}|{array.shape}".encode())
            digest.update(np.ascontiguousarray(array).tobytes())
        return "sha256:" + digest.hexdigest()


ARRAY_FIELDS = {
    "dense": ("weight", "bias", "theta", "kernel"),
    "conv2d": ("weight", "bias", "theta", "kernel"),
    "maxpool2d": (),
    "flatten": (),
    "output": ("weight", "bias"),
}
SCALAR_FIELDS = {"dense": (), "conv2d": ("stride", "padding"), "maxpool2d": ("size",),
                  "flatten": (), "output": ()}


def _layer_params(layer: Layer) -> dict:
    params = {"kind": layer.kind, "name": layer.name}
    params.update({fld: getattr(layer, fld) for fld in SCALAR_FIELDS[layer.kind]})
    return params


def save(net: Network, path: str | Path) -> str:
    """Write `net` to `path` as `model.ttfs`; returns its content hash
    (`ttfs.sdk.modelfile.save`)."""
    from ttfs.sdk import modelfile
    return modelfile.save(net, path)


def load(path: str | Path) -> Network:
    """Read and validate a `model.ttfs` file (`ttfs.sdk.modelfile.load`); raises TTFSFormatError."""
    from ttfs.sdk import modelfile
    return modelfile.load(path)
