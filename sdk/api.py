"""Python API: TTFS layers and losses for a user's own `nn.Module` and training loop.

    from ttfs.sdk.api import TTFSConv2d, TTFSLinear, sr_relax, tr_loss, tkbn_loss, save_run

- `TTFSConv2d` / `TTFSLinear`: weight + bias -> BatchNorm -> TTFS activation (the decoded
  value eps(t(z)) of `ttfs.sdk.functional.ttfs_activation`, exact SNN forward, straight-through
  backward), with the layer's trainable kernel parameters `tau`, `td` (shape [1]). They are
  `ttfs.sdk.model.Hidden` layers, the ones `ttfs-train` builds, so the parameter names and the
  BN folding are the run directory's. `relaxed = True` makes a layer use ReLU (stochastic
  relaxation, SR).
- `sr_relax(model, p_ttfs, generator)`: one SR draw: every TTFS layer uses TTFS with
  probability p_ttfs (`ttfs.sdk.functional.sr_probability` gives the paper's schedule), else ReLU.
- `tr_loss(model, tau0, td0, lambda_r)`, `tkbn_loss(model, lambda_bn, T, form)`: the TR and
  TKBN terms over every TTFS layer of `model` (`ttfs.sdk.functional.tr_loss` / `tkbn_loss`).
- `save_run(model, folder, input_shape, ...)`: a run directory from an `nn.Sequential` (or any
  module whose children, in order, are TTFS layers, `nn.MaxPool2d`, `nn.Flatten` and one final
  `nn.Linear`), which `ttfs-export` and `ttfs-verify` take like a `ttfs-train` run.

docs/api.md has a complete example (a custom CNN, its own loop, export).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ttfs.sdk import functional
from ttfs.sdk.floatnet import NetworkError
from ttfs.sdk.model import Hidden, build_model

__all__ = ["TTFSConv2d", "TTFSLinear", "ttfs_layers", "sr_relax", "tr_loss", "tkbn_loss",
           "layer_specs", "save_run"]


class _TTFSLayer(Hidden):
    """A `Hidden` layer that applies its own activation (`T`, `q`, `relaxed`)."""

    def __init__(self, spec: dict, in_features: int, *, T: int, q: float, tau0: float,
                 td0: float, bn_eps: float):
        super().__init__(spec, (in_features,), tau0=tau0, td0=td0, bn_eps=bn_eps)
        self.spec, self.T, self.q, self.relaxed = spec, T, q, False

    def forward(self, x: Tensor) -> Tensor:
        """f(BN(W x + b)) with the TTFS activation f, or ReLU when `relaxed`."""
        z = self.potential(x)
        if self.relaxed:
            return F.relu(z)
        return functional.ttfs_activation(z, self.tau, self.td, T=self.T, q=self.q)


class TTFSConv2d(_TTFSLayer):
    """conv2d (square kernel) -> BatchNorm2d -> TTFS activation.

    Args: in_channels, out_channels, kernel_size, stride, padding as `nn.Conv2d`; T time
    steps per window, q threshold offset, tau0 / td0 initial kernel parameters, bn_eps.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, *,
                 stride: int = 1, padding: int = 0, T: int = 16, q: float = 0.5,
                 tau0: float = 5.0, td0: float = 0.0, bn_eps: float = 1e-5):
        spec = {"kind": "conv2d", "out_channels": out_channels, "kernel_size": kernel_size,
                "stride": stride, "padding": padding}
        super().__init__(spec, in_channels, T=T, q=q, tau0=tau0, td0=td0, bn_eps=bn_eps)


class TTFSLinear(_TTFSLayer):
    """linear -> BatchNorm1d -> TTFS activation (arguments as `TTFSConv2d`)."""

    def __init__(self, in_features: int, out_features: int, *, T: int = 16, q: float = 0.5,
                 tau0: float = 5.0, td0: float = 0.0, bn_eps: float = 1e-5):
        super().__init__({"kind": "dense", "out_features": out_features}, in_features, T=T,
                         q=q, tau0=tau0, td0=td0, bn_eps=bn_eps)


def ttfs_layers(model: nn.Module) -> list[_TTFSLayer]:
    """Every TTFS layer of `model`, in module order."""
    return [m for m in model.modules() if isinstance(m, _TTFSLayer)]


def sr_relax(model: nn.Module, p_ttfs: float, generator: torch.Generator | None = None
             ) -> None:
    """One SR draw: each TTFS layer uses TTFS with probability `p_ttfs`, else ReLU
    (r ~ U(0, 1) per layer; relaxed when r >= p_ttfs). p_ttfs = 1 turns relaxation off."""
    layers = ttfs_layers(model)
    draws = torch.rand(len(layers), generator=generator)
    for layer, r in zip(layers, draws.tolist()):
        layer.relaxed = r >= p_ttfs


def tr_loss(model: nn.Module, *, tau0: float = 5.0, td0: float = 0.0,
            lambda_r: float = 1e-4) -> Tensor:
    """R = lambda_R sum_l [(tau_l - tau0)^2 + (td_l - td0)^2] over the TTFS layers."""
    layers = ttfs_layers(model)
    return functional.tr_loss([m.tau for m in layers], [m.td for m in layers], tau0=tau0,
                              td0=td0, lambda_r=lambda_r)


def tkbn_loss(model: nn.Module, *, lambda_bn: float = 1e-2, form: str = "taylor") -> Tensor:
    """L_BN = lambda_BN sum_l L(gamma_l, beta_l; x_T) with x_T = exp(-(T - td)/tau) detached,
    over the TTFS layers (`ttfs.sdk.functional.tkbn_loss`; only gamma and beta see it)."""
    return functional.tkbn_loss(
        [(m.bn.weight, m.bn.bias, functional.firing_floor(m.tau, m.td, T=m.T).detach())
         for m in ttfs_layers(model)], lambda_bn=lambda_bn, form=form)


def layer_specs(model: nn.Module) -> tuple[list[dict], dict[str, Tensor], int, float]:
    """(layer specs, state dict in run-directory names, T, q) of a sequential TTFS model.

    Children in order: TTFS layers (named conv1.. / fc1..), `nn.MaxPool2d` (kernel = stride,
    pool1..), `nn.Flatten` and a final `nn.Linear` (out). Raises NetworkError otherwise.
    """
    specs, state, counts = [], {}, {"conv2d": 0, "dense": 0, "maxpool2d": 0, "flatten": 0}
    prefix = {"conv2d": "conv", "dense": "fc", "maxpool2d": "pool", "flatten": "flatten"}
    children = list(model.children())
    windows = set()
    for i, child in enumerate(children):
        if isinstance(child, _TTFSLayer):
            kind = child.spec["kind"]
        elif isinstance(child, nn.MaxPool2d):
            kind = "maxpool2d"
            if child.stride not in (None, child.kernel_size) or child.padding:
                raise NetworkError(f"child {i} (MaxPool2d): stride must equal kernel_size and "
                                   "padding be 0")
        elif isinstance(child, nn.Flatten):
            kind = "flatten"
        elif isinstance(child, nn.Linear) and i == len(children) - 1:
            specs.append({"kind": "output", "name": "out", "out_features": child.out_features})
            state |= {"out.weight": child.weight, "out.bias": child.bias}
            continue
        else:
            raise NetworkError(f"child {i} ({type(child).__name__}): expected TTFSConv2d, "
                               "TTFSLinear, MaxPool2d, Flatten or a final Linear")
        counts[kind] += 1
        name = prefix[kind] + ("" if kind == "flatten" and counts[kind] == 1
                               else str(counts[kind]))
        if kind == "maxpool2d":
            size = child.kernel_size
            specs.append({"kind": kind, "name": name,
                          "size": size if isinstance(size, int) else size[0]})
        elif kind == "flatten":
            specs.append({"kind": kind, "name": name})
        else:
            specs.append({"name": name} | child.spec)
            state |= {f"{name}.{k}": v for k, v in child.state_dict().items()}
            windows.add((child.T, child.q))
    if len(windows) != 1:
        raise NetworkError(f"the TTFS layers must share one T and q, got {sorted(windows)}")
    T, q = windows.pop()
    return specs, state, T, q


def save_run(model: nn.Module, folder: str | Path, input_shape: Sequence[int], *,
             dataset: str = "", result: dict | None = None, force: bool = False) -> Path:
    """Write `model` (see `layer_specs`) as a run directory for ttfs-export; returns it.

    The network is rebuilt as `ttfs.sdk.model.TTFSNet` from the specs and the state is loaded into
    it, so shapes and names are checked exactly as for a `ttfs-train` run. `dataset` names the
    test set ttfs-export draws golden vectors from (any `ttfs.sdk.data` spec, may be empty).
    """
    from ttfs.sdk import outdir
    from ttfs.sdk.train import load_state, write_run

    specs, state, T, q = layer_specs(model)
    bn_eps = next(m.bn.eps for m in ttfs_layers(model))
    config = {"dataset": dataset, "arch": "custom", "method": "custom", "device": "cpu",
              "T": T, "q": q, "input_coding": "real", "bn_eps": bn_eps,
              "input_shape": list(input_shape), "num_classes": specs[-1]["out_features"],
              "layers": specs}
    net = build_model(config)
    load_state(net, {k: v.detach().cpu() for k, v in state.items()}, what="the model",
               against="its layer specs")
    with outdir.replacing(folder, force=force, what="save_run folder") as tmp:
        write_run(tmp, config | net.config(), net.state_dict(), result or {})
    return Path(folder)
