"""Torch surrogate of a TTFS network, built from a layer spec (docs/architecture.md).

Each hidden `conv2d`/`dense` layer is weight + bias -> BatchNorm -> activation, where the
activation is the TTFS decoded value of `ttfs.sdk.functional.ttfs_activation` with the layer's
trainable scalar kernel parameters `tau`, `td` (shape [1]), or ReLU (baseline, or a relaxed
layer under SR). `maxpool2d` is max pooling (stride = size; equals the SNN's earliest spike).
`output` is a dense layer without BN that does not fire; the class is argmax z (lowest index on
ties). Under `ttfs` input coding the input values byte/255 pass through the TTFS activation
with the input kernel (`input.tau`, `input.td`) first.

State-dict keys: `<name>.weight`, `<name>.bias`, `<name>.bn.{weight,bias,running_mean,
running_var,num_batches_tracked}`, `<name>.tau`, `<name>.td`, and `input.tau`, `input.td`.

Architectures (`ARCHITECTURES`) return layer-spec lists for an input shape:

- `mlp`: flatten - dense 256 - output (784-256-10 on 28x28).
- `cnn`: conv5x5 16ch pad 2 - pool 2 - conv5x5 32ch pad 2 - pool 2 - flatten - dense 128 -
  output; needs H and W divisible by 4.
- `vgg16`: the paper's VGG-16 for 3x32x32 (3x3 convs, pad 1):
  64-64-P-128-128-P-256x3-P-512x3-P-512x3-P-FC512-FC512-output. No dropout (none of the
  architectures use it: mnist5k and digits train well without it at the default budgets).
- a compact spec string (`parse_arch`), e.g. `c16k5,p2,c32k5,p2,d128`.

Quantization-aware training (`weight_bits` B): every weighted layer computes with its
BN-folded weights quantized as `ttfs.sdk.quantize` does
(`ttfs.sdk.functional.fake_quantize`, straight-through gradient), so the deployed integer
weights are the ones trained against. A hidden
layer then folds BN itself: s = gamma / sqrt(var + eps), W' = W s, b' = (b - mean) s + beta,
output = conv/linear(x, Q(W'), b'), with (mean, var) the batch statistics of W x + b in
training (constants for the gradient; the running statistics update as in BatchNorm) and the
running statistics in evaluation (exactly the quantizer's fold).
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ttfs.sdk.floatnet import (SPIKING_KINDS, FloatNetwork, NetworkError, check_layer_specs,
                          layer_shapes, network_from_arrays)
from ttfs.sdk.functional import fake_quantize, ttfs_activation


def mlp(input_shape: Sequence[int], num_classes: int) -> list[dict]:
    """flatten - dense 256 - output."""
    return [{"kind": "flatten", "name": "flatten"},
            {"kind": "dense", "name": "fc1", "out_features": 256},
            {"kind": "output", "name": "out", "out_features": num_classes}]


def cnn(input_shape: Sequence[int], num_classes: int) -> list[dict]:
    """conv5x5(16) - pool2 - conv5x5(32) - pool2 - flatten - dense 128 - output."""
    _, h, w = input_shape
    if h % 4 or w % 4:
        raise NetworkError(f"arch 'cnn' needs an input whose height and width are multiples of "
                           f"4, got {list(input_shape)}")
    return [{"kind": "conv2d", "name": "conv1", "out_channels": 16, "kernel_size": 5,
             "stride": 1, "padding": 2},
            {"kind": "maxpool2d", "name": "pool1", "size": 2},
            {"kind": "conv2d", "name": "conv2", "out_channels": 32, "kernel_size": 5,
             "stride": 1, "padding": 2},
            {"kind": "maxpool2d", "name": "pool2", "size": 2},
            {"kind": "flatten", "name": "flatten"},
            {"kind": "dense", "name": "fc1", "out_features": 128},
            {"kind": "output", "name": "out", "out_features": num_classes}]


VGG16_BLOCKS = ((64, 64), (128, 128), (256, 256, 256), (512, 512, 512), (512, 512, 512))


def vgg16(input_shape: Sequence[int], num_classes: int) -> list[dict]:
    """The paper's VGG-16 for CIFAR-sized 3x32x32 inputs."""
    if tuple(input_shape) != (3, 32, 32):
        raise NetworkError(f"arch 'vgg16' needs 3x32x32 inputs, got {list(input_shape)}")
    layers = []
    for b, block in enumerate(VGG16_BLOCKS, start=1):
        layers += [{"kind": "conv2d", "name": f"conv{b}_{i}", "out_channels": c,
                    "kernel_size": 3, "stride": 1, "padding": 1}
                   for i, c in enumerate(block, start=1)]
        layers.append({"kind": "maxpool2d", "name": f"pool{b}", "size": 2})
    return layers + [{"kind": "flatten", "name": "flatten"},
                     {"kind": "dense", "name": "fc1", "out_features": 512},
                     {"kind": "dense", "name": "fc2", "out_features": 512},
                     {"kind": "output", "name": "out", "out_features": num_classes}]


ARCHITECTURES = {"mlp": mlp, "cnn": cnn, "vgg16": vgg16}

#: Tokens of a compact architecture spec (`parse_arch`).
_ARCH_TOKENS = {"conv2d": re.compile(r"c(\d+)k(\d+)(?:s(\d+))?(?:p(\d+))?"),
                "maxpool2d": re.compile(r"p(\d+)"), "dense": re.compile(r"d(\d+)")}
ARCH_SPEC_HELP = ("comma-separated layers: cNkK[sS][pP] conv2d with N channels, kernel K, "
                  "stride S (default 1), padding P (default K // 2); pS max pool of size S; "
                  "dN dense with N neurons; flatten and the output layer are added, e.g. "
                  "c16k5,p2,c32k5,p2,d128 (= cnn) or d340 (784-340-10)")


def parse_arch(spec: str, num_classes: int) -> list[dict]:
    """Layer specs of a compact architecture string (`ARCH_SPEC_HELP`); raises NetworkError.

    Layers are named conv1.., pool1.., fc1.. in order; `flatten` goes before the first dense
    layer and `output` (num_classes) last.
    """
    layers: list[dict] = []
    counts = {"conv2d": 0, "maxpool2d": 0, "dense": 0}
    prefix = {"conv2d": "conv", "maxpool2d": "pool", "dense": "fc"}
    tokens = spec.split(",")
    for i, token in enumerate(tokens):
        kind = next((k for k, rx in _ARCH_TOKENS.items() if rx.fullmatch(token.strip())), None)
        if kind is None:
            raise NetworkError(f"arch {spec!r}: token {i + 1} {token!r} is not a layer; "
                               f"expected {ARCH_SPEC_HELP}")
        values = [None if v is None else int(v)
                  for v in _ARCH_TOKENS[kind].fullmatch(token.strip()).groups()]
        counts[kind] += 1
        name = f"{prefix[kind]}{counts[kind]}"
        if kind != "dense" and counts["dense"]:
            raise NetworkError(f"arch {spec!r}: {token!r} comes after a dense layer; "
                               "convolutions and pools go first")
        if kind == "conv2d":
            n, k, stride, pad = values
            layers.append({"kind": kind, "name": name, "out_channels": n, "kernel_size": k,
                           "stride": 1 if stride is None else stride,
                           "padding": k // 2 if pad is None else pad})
        elif kind == "maxpool2d":
            layers.append({"kind": kind, "name": name, "size": values[0]})
        else:
            if counts["dense"] == 1:
                layers.append({"kind": "flatten", "name": "flatten"})
            layers.append({"kind": kind, "name": name, "out_features": values[0]})
    if not counts["dense"]:
        layers.append({"kind": "flatten", "name": "flatten"})
    return layers + [{"kind": "output", "name": "out", "out_features": num_classes}]


def architecture(arch: str, input_shape: Sequence[int], num_classes: int,
                 layers: list[dict] | None = None) -> list[dict]:
    """The layer specs of a run: `layers` when given (checked by `TTFSNet`), else the named
    architecture or the compact spec string `arch`."""
    if layers is not None:
        return [dict(spec) for spec in layers]
    if arch in ARCHITECTURES:
        return ARCHITECTURES[arch](input_shape, num_classes)
    return parse_arch(arch, num_classes)


class Kernel(nn.Module):
    """Trainable scalar kernel parameters tau and td (shape [1]) of one spiking layer."""

    def __init__(self, tau0: float, td0: float):
        super().__init__()
        self.tau = nn.Parameter(torch.tensor([float(tau0)]))
        self.td = nn.Parameter(torch.tensor([float(td0)]))


class Hidden(Kernel):
    """conv2d/dense -> BatchNorm -> TTFS activation (or ReLU), Glorot-uniform init."""

    def __init__(self, spec: dict, in_shape: tuple[int, ...], *, tau0: float, td0: float,
                 bn_eps: float):
        super().__init__(tau0, td0)
        n_out = spec.get("out_channels", spec.get("out_features"))
        self.conv = spec["kind"] == "conv2d"
        k = spec.get("kernel_size", 0)
        shape = (n_out, in_shape[0], k, k) if self.conv else (n_out, in_shape[0])
        self.stride, self.padding = spec.get("stride", 1), spec.get("padding", 0)
        self.weight = nn.Parameter(nn.init.xavier_uniform_(torch.empty(shape)))
        self.bias = nn.Parameter(torch.zeros(n_out))
        self.bn = (nn.BatchNorm2d if self.conv else nn.BatchNorm1d)(n_out, eps=bn_eps)

    def potential(self, x: Tensor, weight_bits: int | None = None) -> Tensor:
        """z = BN(W x + b); with `weight_bits`, conv/linear(x, Q(W'), b') of the BN-folded
        weights (the module docstring)."""
        if weight_bits is None:
            return self.bn(self.apply_weights(x, self.weight, self.bias))
        bn = self.bn
        if self.training:
            with torch.no_grad():
                y = self.apply_weights(x, self.weight, self.bias)
                dims = [0, 2, 3] if self.conv else [0]
                var, mean = torch.var_mean(y, dim=dims, unbiased=False)
                n = y.numel() // y.shape[1]
                bn.running_mean.lerp_(mean, bn.momentum)
                bn.running_var.lerp_(var * n / max(n - 1, 1), bn.momentum)
                bn.num_batches_tracked += 1
        else:
            mean, var = bn.running_mean, bn.running_var
        scale = bn.weight.double() / torch.sqrt(var.double() + bn.eps)
        weight = self.weight.double() * scale.reshape((-1,) + (1,) * (self.weight.ndim - 1))
        bias = (self.bias.double() - mean.double()) * scale + bn.bias.double()
        return self.apply_weights(x, fake_quantize(weight, weight_bits).to(x.dtype),
                                  bias.to(x.dtype))

    def apply_weights(self, x: Tensor, weight: Tensor, bias: Tensor) -> Tensor:
        """conv2d (stride, padding) or linear."""
        if self.conv:
            return F.conv2d(x, weight, bias, self.stride, self.padding)
        return F.linear(x, weight, bias)


class Output(nn.Module):
    """Dense read-out without BN; does not fire."""

    def __init__(self, n_out: int, n_in: int):
        super().__init__()
        self.weight = nn.Parameter(nn.init.xavier_uniform_(torch.empty(n_out, n_in)))
        self.bias = nn.Parameter(torch.zeros(n_out))


class TTFSNet(nn.Module):
    """The surrogate DNN of a TTFS SNN (see the module docstring).

    Args:
        layers: layer specs (docs/architecture.md). input_shape: (C, H, W).
        T: time steps per window. q: threshold offset. tau0, td0: initial kernel parameters.
        input_coding: 'real' or 'ttfs'. bn_eps: BatchNorm epsilon. weight_bits: None (float
        weights) or 2..16 (quantization-aware training, see the module docstring).
    """

    def __init__(self, layers: list[dict], input_shape: Sequence[int], *, T: int, q: float,
                 tau0: float, td0: float, input_coding: str = "real", bn_eps: float = 1e-5,
                 weight_bits: int | None = None):
        super().__init__()
        if weight_bits is not None and not 2 <= weight_bits <= 16:
            raise NetworkError(f"weight_bits must be in 2..16 (or unset for float weights), "
                               f"got {weight_bits}")
        self.weight_bits = weight_bits
        check_layer_specs(layers, tuple(input_shape))
        if input_coding not in ("real", "ttfs"):
            raise NetworkError(f"input coding {input_coding!r}: expected 'real' or 'ttfs'")
        self.specs = [dict(spec) for spec in layers]
        self.input_shape = tuple(input_shape)
        self.T, self.q, self.input_coding, self.bn_eps = T, q, input_coding, bn_eps
        #: names and neuron counts of the kernel layers, in `self.kernels` order
        self.kernel_names: list[str] = []
        self.kernel_neurons: list[int] = []
        if input_coding == "ttfs":
            self.add_module("input", Kernel(tau0, td0))
            self.kernel_names.append("input")
            self.kernel_neurons.append(int(np.prod(self.input_shape)))
        for spec, (in_shape, out_shape) in zip(layers, layer_shapes(layers, self.input_shape)):
            if spec["kind"] in SPIKING_KINDS:
                self.kernel_names.append(spec["name"])
                self.kernel_neurons.append(int(np.prod(out_shape)))
                self.add_module(spec["name"], Hidden(spec, in_shape, tau0=tau0, td0=td0,
                                                     bn_eps=bn_eps))
            elif spec["kind"] == "output":
                self.add_module(spec["name"], Output(out_shape[0], in_shape[0]))

    @property
    def kernels(self) -> list[Kernel]:
        """Every spiking layer's kernel module, the input's first under `ttfs` coding."""
        return [m for m in self.children() if isinstance(m, Kernel)]

    @property
    def hidden(self) -> list[Hidden]:
        return [m for m in self.children() if isinstance(m, Hidden)]

    def kernel_parameters(self) -> list[nn.Parameter]:
        return [p for k in self.kernels for p in (k.tau, k.td)]

    def weight_parameters(self) -> list[nn.Parameter]:
        kernel_ids = {id(p) for p in self.kernel_parameters()}
        return [p for p in self.parameters() if id(p) not in kernel_ids]

    def forward(self, x: Tensor, relu: Sequence[bool] | None = None) -> Tensor:
        """Output potentials z [N, classes] for inputs byte/255 [N, C, H, W].

        `relu[k]` True makes the k-th kernel layer (`self.kernels` order) use ReLU instead of
        the TTFS activation (the ReLU baseline, or SR relaxation); None means TTFS everywhere.
        """
        return self.run(x, relu)[0]

    def run(self, x: Tensor, relu: Sequence[bool] | None = None) -> tuple[Tensor, list[Tensor]]:
        """(output potentials, the activations of every kernel layer in `self.kernels` order).

        A TTFS activation is the decoded value eps(t) of each neuron's spike, 0 if silent.
        """
        relu = [False] * len(self.kernels) if relu is None else list(relu)
        activations: list[Tensor] = []

        def activate(module: Kernel, z: Tensor) -> Tensor:
            if relu[len(activations)]:
                a = F.relu(z)
            else:
                a = ttfs_activation(z, module.tau, module.td, T=self.T, q=self.q)
            activations.append(a)
            return a

        return self.propagate(x, activate), activations

    def propagate(self, x: Tensor, activate: Callable[[Kernel, Tensor], Tensor]) -> Tensor:
        """Output potentials for inputs x, with `activate(kernel_module, z)` as the activation
        of the input layer (`ttfs` coding) and of every spiking layer.

        In training mode a conv layer followed by a max pool pools its potentials first and
        activates the pooled ones: the TTFS activation and ReLU are monotone non-decreasing,
        so maxpool(f(z)) = f(maxpool(z)) exactly, on a quarter of the values (the gradient
        differs only on ties of f, going to the neuron with the largest z). `activate` then
        sees the pooled potentials; evaluation (spike counts) activates every neuron.
        """
        if self.input_coding == "ttfs":
            x = activate(self.input, x)
        pooled = False
        for i, spec in enumerate(self.specs):
            kind, module = spec["kind"], getattr(self, spec["name"], None)
            if kind in SPIKING_KINDS:
                x = module.potential(x, self.weight_bits)
                after = self.specs[i + 1] if i + 1 < len(self.specs) else {}
                pooled = self.training and after.get("kind") == "maxpool2d"
                if pooled:
                    x = F.max_pool2d(x, after["size"])
                x = activate(module, x)
            elif kind == "maxpool2d":
                if not pooled:
                    x = F.max_pool2d(x, spec["size"])
                pooled = False
            elif kind == "flatten":
                x = x.flatten(1)
            elif self.weight_bits is None:
                x = F.linear(x, module.weight, module.bias)
            else:
                x = F.linear(x, fake_quantize(module.weight, self.weight_bits), module.bias)
        return x

    def config(self) -> dict:
        """The network part of a run's config.json."""
        return {"T": self.T, "q": self.q, "input_coding": self.input_coding,
                "bn_eps": self.bn_eps, "input_shape": list(self.input_shape),
                "num_classes": self.specs[-1]["out_features"], "layers": self.specs,
                "weight_bits": self.weight_bits}

    def float_network(self) -> FloatNetwork:
        """This model's BN-folded float network (as `load_float_network` would read it).

        Under QAT (`weight_bits`) its weights are the fake-quantized W_int s_w, the values the
        model computes with (`ttfs.sdk.quantize` maps them back to the same W_int).
        """
        arrays = {k: v.detach().cpu().double().numpy() for k, v in self.state_dict().items()}
        net = network_from_arrays(self.config(), arrays)
        if self.weight_bits is None:
            return net
        layers = tuple(layer if layer.weight is None else dataclasses.replace(
            layer, weight=fake_quantize(torch.from_numpy(layer.weight), self.weight_bits)
            .numpy()) for layer in net.layers)
        return dataclasses.replace(net, layers=layers)


def build_model(config: dict, *, tau0: float = 1.0, td0: float = 0.0) -> TTFSNet:
    """A TTFSNet for the network part of a run config (`TTFSNet.config` output)."""
    return TTFSNet(config["layers"], config["input_shape"], T=int(config["T"]),
                   q=float(config["q"]), tau0=tau0, td0=td0,
                   input_coding=config["input_coding"], bn_eps=float(config["bn_eps"]),
                   weight_bits=config.get("weight_bits"))


def classes(scores: Tensor | np.ndarray) -> np.ndarray:
    """argmax over the last axis, lowest index on ties (int64)."""
    return np.argmax(np.asarray(scores), axis=-1).astype(np.int64)
