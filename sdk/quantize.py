"""Quantizer: float network (BN folded) -> integer IR, exactly per DESIGN.md section 4.

numpy only (never torch). For every weighted layer l, with K_MAX = 2^kernel_bits - 1 and
w_max = 2^(weight_bits - 1) - 1:

- operand scale sigma: 1/255 for the pixel bytes of `real` input coding, otherwise
  x_max / K_MAX of the last spiking layer (or of the input layer under `ttfs` coding) before l,
  with x_max = exp(td / tau); its operand is that layer's kernel[t];
- weight scale s_w = max|W'| / w_max; W = clamp(round_half_away(W' / s_w), -w_max, w_max);
  a layer whose float weights are all zero uses s_w = 1 (any scale represents W = 0, and the
  bias and thresholds below are consistent with whichever is chosen);
- accumulator LSB s = s_w * sigma; bias B = round_half_away(b' / s);
- accumulator bound M = max_j(|B_j| + sum_i |W_ji| * v_max) (`ttfs.sdk.ir.accumulator_bound`);
  refused unless M + 1 <= 2^31 - 1 (`ttfs.sdk.ir.ACC_LIMIT`);
- spiking layers: kernel K[t] = round_half_up(K_MAX * exp(-t / tau)) and threshold
  Theta[t] = ceil(exp(-(t - td + q) / tau) / (s_w * sigma)) in float64, clamped to [1, M + 1]
  (a threshold above M cannot be reached, so clamping to M + 1 changes no result and keeps
  every table value inside int32);
- `ttfs` input coding: input_times[b] = min{t in [0, T-1] : b/255 >= exp(-(t - td + q)/tau)}
  (T when none) and input_kernel from (tau_in, td_in) like a layer's kernel.

The output layer gets weights and bias by the same rule and no tables. The float kernel
parameters and every scale go into `Network.reference` (JSON; not part of the content hash).

Machine independence: every exp on this path (kernel, x_max, sigma, Theta, input times) is
correctly rounded (`exp_exact`: exact rational exponent, decimal at 40 digits, one rounding to
float64); the remaining steps are single IEEE operations (*, /, floor, ceil), which give the
same bits on every CPU. Kernel parameters that would make a table or scale Infinity or 0 are
refused (`ttfs.sdk.limits.kernel_problem`).
"""

from __future__ import annotations

import decimal
import math
from fractions import Fraction

import numpy as np

from ttfs.sdk import limits
from ttfs.sdk.floatnet import FloatLayer, FloatNetwork
from ttfs.sdk.ir import (ACC_LIMIT, Conv2d, Dense, Flatten, MaxPool2d, Network, Output,
                    accumulator_bound)

BIT_RANGE = range(2, 17)
DEFAULT_BITS = 8
#: 40 significant digits; the exponent range covers exp(+-MAX_EXP_ARG) and far beyond.
_CONTEXT = decimal.Context(prec=40, rounding=decimal.ROUND_HALF_EVEN, Emax=10**6, Emin=-10**6,
                           traps=[decimal.InvalidOperation, decimal.DivisionByZero])


class QuantizeError(ValueError):
    """A float network that cannot be quantized; the message names the layer and the fix."""


def exp_exact(x: Fraction) -> float:
    """exp(x) of an exact rational x, correctly rounded to float64: the same bits everywhere.

    x is divided out in decimal at 40 significant digits, exponentiated there (decimal's exp is
    correctly rounded) and rounded once to float64. numpy's vectorised exp differs by 1 ulp
    between CPUs and libm's exp is not guaranteed correctly rounded, so neither is used on the
    quantization path.
    """
    ctx = _CONTEXT
    value = ctx.exp(ctx.divide(decimal.Decimal(x.numerator), decimal.Decimal(x.denominator)))
    return float(value)


def kernel_exps(T: int, tau: float) -> list[float]:
    """exp(-t / tau), t = 0..T-1, correctly rounded (`exp_exact`)."""
    return [exp_exact(Fraction(-t) / Fraction(tau)) for t in range(T)]


def threshold_exps(T: int, tau: float, td: float, q: float) -> list[float]:
    """theta(t) = exp(-(t - td + q) / tau), t = 0..T-1, correctly rounded; the exponent is
    formed exactly from the float64 values td, q, tau (as fractions)."""
    return [exp_exact((Fraction(td) - Fraction(q) - t) / Fraction(tau)) for t in range(T)]


def x_max_of(tau: float, td: float) -> float:
    """x_max = exp(td / tau), correctly rounded: the real value of a spike at t = 0."""
    return exp_exact(Fraction(td) / Fraction(tau))


def round_half_up(x: np.ndarray | float) -> np.ndarray:
    """floor(x + 1/2) in float64 (ties go up: 0.5 -> 1, -0.5 -> 0)."""
    return np.floor(np.asarray(x, dtype=np.float64) + 0.5)


def round_half_away(x: np.ndarray | float) -> np.ndarray:
    """sign(x) * floor(|x| + 1/2) in float64 (ties away from zero: -0.5 -> -1)."""
    x = np.asarray(x, dtype=np.float64)
    return np.sign(x) * np.floor(np.abs(x) + 0.5)


def kernel_table(T: int, tau: float, kernel_bits: int) -> np.ndarray:
    """K[t] = round_half_up(K_MAX * exp(-t / tau)), t = 0..T-1 (int32; K[0] = K_MAX)."""
    k_max = 2**kernel_bits - 1
    return round_half_up(k_max * np.array(kernel_exps(T, tau))).astype(np.int32)


def threshold_table(T: int, tau: float, td: float, q: float, scale: float,
                    bound: int) -> np.ndarray:
    """Theta[t] = ceil(exp(-(t - td + q) / tau) / scale) clamped to [1, bound + 1] (int32).

    `scale` is the accumulator LSB s = s_w * sigma (pass the product, computed once, so that two
    quantizers agree to the integer) and `bound` the layer's accumulator bound M. The exp is
    correctly rounded (`threshold_exps`); the division is one IEEE float64 operation.
    """
    theta = np.ceil(np.array(threshold_exps(T, tau, td, q)) / scale)
    return np.clip(theta, 1, bound + 1).astype(np.int32)


def input_time_table(T: int, tau: float, td: float, q: float) -> np.ndarray:
    """Spike time of each pixel byte b under `ttfs` coding (int32 [256], NO_SPIKE = T).

    t(b) = min{t in [0, T-1] : b / 255 >= exp(-(t - td + q) / tau)}; the threshold decreases,
    so t is the left insertion point of -b/255 into the increasing -theta.
    """
    theta = np.array(threshold_exps(T, tau, td, q))
    return np.searchsorted(-theta, -np.arange(256) / 255.0, side="left").astype(np.int32)


def quantize(fnet: FloatNetwork, *, weight_bits: int | None = None,
             kernel_bits: int | None = None, name: str = "model") -> Network:
    """The integer IR of `fnet` (see the module docstring); raises QuantizeError.

    Args:
        fnet: the BN-folded float network (`ttfs.sdk.floatnet.load_float_network`).
        weight_bits: signed weight width (2..16); weights lie in +-(2^(weight_bits-1) - 1).
            None: the run config's `weight_bits` (set by quantization-aware training), else 8.
        kernel_bits: unsigned kernel width (2..16); K_MAX = 2^kernel_bits - 1. None: the run
            config's `kernel_bits`, else 8.
        name: the model name, an identifier (checked by `ttfs.sdk.ir.Network`).
    """
    weight_bits = _bits("weight_bits", weight_bits, fnet.weight_bits)
    kernel_bits = _bits("kernel_bits", kernel_bits, fnet.kernel_bits)
    for what, problem in (("T", limits.int_problem(fnet.T, 2, limits.MAX_T)),
                          ("q", limits.float_problem(fnet.q, 0.0, 1.0))):
        if problem:
            raise QuantizeError(f"{what}: {problem}")
    k_max = 2**kernel_bits - 1
    input_times = input_kernel = None
    reference: dict = {"q": fnet.q, "layers": {}}
    if fnet.input_coding == "ttfs":
        tau, td = _kernel_params(fnet, fnet.input_tau, fnet.input_td, "input")
        input_times = input_time_table(fnet.T, tau, td, fnet.q)
        input_kernel = kernel_table(fnet.T, tau, kernel_bits)
        x_max = x_max_of(tau, td)
        sigma = x_max / k_max
        reference["input"] = {"tau": tau, "td": td, "x_max": x_max}
    elif fnet.input_coding == "real":
        sigma = 1.0 / 255.0
    else:
        raise QuantizeError(f"input coding: {limits.coding_problem(fnet.input_coding)}")
    in_max = 255 if fnet.input_coding == "real" else k_max
    layers = []
    for fl in fnet.layers:
        if fl.kind in ("dense", "conv2d", "output"):
            weight, bias, s_w, bound = _weights(fl, sigma, in_max, weight_bits)
            ref = {"sigma": sigma, "s_w": s_w, "scale": s_w * sigma}
            if fl.kind == "output":
                layers.append(Output(fl.name, weight, bias))
            else:
                tau, td = _kernel_params(fnet, fl.tau, fl.td, fl.name)
                theta = threshold_table(fnet.T, tau, td, fnet.q, s_w * sigma, bound)
                kernel = kernel_table(fnet.T, tau, kernel_bits)
                if fl.kind == "dense":
                    layers.append(Dense(fl.name, weight, bias, theta, kernel))
                else:
                    layers.append(Conv2d(fl.name, weight, bias, theta, kernel,
                                         stride=fl.stride, padding=fl.padding))
                x_max = x_max_of(tau, td)
                ref.update(tau=tau, td=td, x_max=x_max)
                sigma, in_max = x_max / k_max, int(kernel[0])
            for key, value in ref.items():
                if not (math.isfinite(value) and (value > 0 or key == "td")):
                    raise QuantizeError(f"layer '{fl.name}': {key} = {value} is degenerate "
                                        "(must be finite and > 0)")
            reference["layers"][fl.name] = ref
        elif fl.kind == "maxpool2d":
            if fl.stride != fl.size:
                raise QuantizeError(f"layer '{fl.name}': max pooling needs stride = size, got "
                                    f"stride {fl.stride} and size {fl.size}")
            layers.append(MaxPool2d(fl.name, fl.size))
        elif fl.kind == "flatten":
            layers.append(Flatten(fl.name))
        else:
            raise QuantizeError(f"layer '{fl.name}': kind {fl.kind!r} is not supported for "
                                "export (supported: conv2d, dense, maxpool2d, flatten, output; "
                                "average pooling is not)")
    net = Network(name=name, T=fnet.T, weight_bits=weight_bits, kernel_bits=kernel_bits,
                  input_shape=tuple(fnet.input_shape), input_coding=fnet.input_coding,
                  layers=tuple(layers), input_times=input_times, input_kernel=input_kernel,
                  reference=reference)
    for fl, info in zip(fnet.layers, net.info):
        if tuple(info.out_shape) != tuple(fl.out_shape):
            raise QuantizeError(f"layer '{fl.name}': the float network says output shape "
                                f"{list(fl.out_shape)}, the integer layer gives "
                                f"{list(info.out_shape)}")
    return net


def _bits(what: str, given: int | None, from_config: int | None) -> int:
    """The bit width: `given`, else the run config's, else DEFAULT_BITS; 2..16."""
    bits = given if given is not None else (from_config if from_config is not None
                                            else DEFAULT_BITS)
    if not isinstance(bits, int) or isinstance(bits, bool) or bits not in BIT_RANGE:
        hint = (" (1-bit weights have no symmetric representation +-(2^(b-1) - 1))"
                if what == "weight_bits" and bits == 1 else "")
        raise QuantizeError(f"{what}: expected an int in 2..16, got {bits!r}{hint}")
    return bits


def _kernel_params(fnet: FloatNetwork, tau: float | None, td: float | None, where: str
                   ) -> tuple[float, float]:
    """(tau, td) as floats, refused unless every table and scale stays finite and nonzero."""
    problem = ("tau and td are missing" if tau is None or td is None
               else limits.kernel_problem(tau, td, T=fnet.T, q=fnet.q))
    if problem:
        raise QuantizeError(f"layer '{where}': kernel parameters tau={tau}, td={td}: {problem}")
    return float(tau), float(td)


def _weights(fl: FloatLayer, sigma: float, in_max: int, weight_bits: int
             ) -> tuple[np.ndarray, np.ndarray, float, int]:
    """(W, B, s_w, M) of one weighted layer: int32 weights and bias, scale, accumulator bound."""
    w_float = np.asarray(fl.weight, dtype=np.float64)
    b_float = np.asarray(fl.bias, dtype=np.float64)
    if not (np.isfinite(w_float).all() and np.isfinite(b_float).all()):
        raise QuantizeError(f"layer '{fl.name}': non-finite weights or bias")
    w_max = 2 ** (weight_bits - 1) - 1
    peak = float(np.abs(w_float).max())
    s_w = peak / w_max if peak > 0 else 1.0
    if not (math.isfinite(s_w * sigma) and s_w * sigma > 0):
        raise QuantizeError(f"layer '{fl.name}': the accumulator LSB s_w * sigma = "
                            f"{s_w} * {sigma} is not a positive finite number")
    weight = np.clip(round_half_away(w_float / s_w), -w_max, w_max)
    bias = round_half_away(b_float / (s_w * sigma))
    if np.abs(bias).max() > ACC_LIMIT:
        raise QuantizeError(f"layer '{fl.name}': bias {float(np.abs(bias).max()):.4g} LSBs "
                            "does not fit 32 bits (the float bias is huge against the weights); "
                            "use fewer weight or kernel bits")
    weight, bias = weight.astype(np.int32), bias.astype(np.int32)
    bound = accumulator_bound(weight, bias, in_max)
    if bound + 1 > ACC_LIMIT:
        raise QuantizeError(f"layer '{fl.name}': accumulator bound M = {bound} needs more than "
                            "32 bits (M + 1 must be <= 2^31 - 1); use fewer weight or kernel bits")
    return weight, bias, s_w, bound
