"""The TTFS math as plain torch functions (DESIGN.md section 3).

Per spiking layer with kernel parameters (tau, td), window length T and threshold offset q:

- kernel            eps(t)   = exp(-(t - td) / tau),            t = 0..T-1
- threshold         theta(t) = exp(-(t - td + q) / tau)
- spike time        t(z)     = min{t in [0, T-1] : z >= theta(t)}, NO_SPIKE = T if none
                             = max(0, ceil(td - q - tau * ln z))  for z > 0 (when <= T-1)
- decoded value     f(z)     = eps(t(z)) if the neuron fires, else 0

Forward values are computed in float64 and compared against the float64 threshold table, so the
activation returns exactly the value the SNN decodes for the same z (the closed form with ceil
is only used for the gradient). The result is cast back to the dtype of z.
"""

from __future__ import annotations

import math
from functools import lru_cache

import torch
from torch import Tensor

from ttfs.sdk.floatnet import kernel_values, threshold_values


def threshold_table(tau: Tensor, td: Tensor, *, T: int, q: float) -> Tensor:
    """theta(t) = exp(-(t - td + q) / tau) for t = 0..T-1 (float64, strictly decreasing).

    The values of `ttfs.sdk.floatnet.threshold_values`, shared with the float simulators.
    """
    return torch.tensor(threshold_values(float(tau.detach()), float(td.detach()), T=T, q=q),
                        dtype=torch.float64, device=tau.device)


def spike_times(z: Tensor, tau: Tensor, td: Tensor, *, T: int, q: float) -> Tensor:
    """t(z) = first t in [0, T-1] with z >= theta(t), else NO_SPIKE = T (int64, no gradient).

    Exact against the float64 threshold table, for float32 z too: the table is rounded up to
    the smallest value of z's dtype >= theta(t), and z >= theta(t) holds exactly when z is >=
    that bound. z <= 0 (and NaN) never fires.
    """
    with torch.no_grad():
        tau_v, td_v = _scalars(tau, td)
        return _spike_index(z.detach(), tau_v, td_v, T=T, q=q)[0].long()


def _scalars(tau: Tensor, td: Tensor) -> tuple[float, float]:
    """(tau, td) as Python floats, read in one transfer."""
    tau_v, td_v = torch.cat([tau.detach().reshape(1), td.detach().reshape(1)]).tolist()
    return tau_v, td_v


@lru_cache(maxsize=64)
def _tables(tau: float, td: float, T: int, q: float, dtype: torch.dtype, device: torch.device
            ) -> tuple[Tensor, Tensor, Tensor, float, float, bool]:
    """Per-kernel constants of `_spike_index`, cached (a kernel keeps them while tau and td
    stay, e.g. through an evaluation):

    at[k] (k < T): the smallest value of `dtype` >= theta(k), so z >= at[k] <=> z >= theta(k)
    <=> t(z) <= k; at[T] = -inf. eps[k] = eps(k) rounded once to `dtype`, eps[T] = 0 (silent).
    offset: td - q + 1/2 as a 0-dim tensor. low, high: the clamp range of z, [at[T-1] exp(-0.75
    / tau), at[0]]: every z below low is silent, every z above high saturated, and the guess
    of the clamped z stays in [0, T] without a clamp (`in_range`; else the guess is clamped).
    """
    theta = torch.tensor(threshold_values(tau, td, T=T, q=q), dtype=torch.float64)
    bound = theta.to(dtype)
    up = torch.nextafter(bound, torch.full_like(bound, math.inf))      # (bound + 1 is bound
    bound = torch.where(bound.double() < theta, up, bound)             # above 2^24 in float32)
    at = torch.cat([bound, bound.new_full((1,), -math.inf)])
    eps = torch.tensor(kernel_values(tau, td, T=T) + [0.0], dtype=torch.float64).to(dtype)
    last, first = float(bound[-1]), float(bound[0])
    low = float(torch.tensor(last * math.exp(-0.75 / tau), dtype=dtype))
    in_range = (0 < low < last and math.isfinite(first)
                and low >= torch.finfo(dtype).tiny and first < torch.finfo(dtype).max)
    if not in_range:
        low, first = last / 2, math.inf
    offset = torch.tensor(td - q + 0.5, dtype=torch.float64, device=device)
    return at.to(device), eps.to(device), offset, low, first, in_range


def _spike_index(z: Tensor, tau: float, td: float, *, T: int, q: float
                 ) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:
    """(t as a float tensor of z's dtype, eps(t) (the forward value), z clamped to [low, high]
    of `_tables`, ln of that, a spent index tensor of z's shape and item size):
    the spike times of `spike_times` and what the activation's backward needs.

    A guess g = floor(td - q + 1/2 - tau ln z) is t(z) or t(z) - 1: the exact t is
    ceil(td - q - tau ln z) up to float error far below 1/2 (the clamp of z keeps g in [0, T];
    z <= low, also z <= 0 and NaN, gives g >= T - 1). One exact comparison with the bound at g
    finishes it: t = g + (z < at[g]). Several times faster on CPU than a binary search over the
    table (`torch.bucketize`). Written as few full-size passes as possible (each one costs a
    parallel region and memory traffic), in place where possible, without bool tensors (a
    comparison into a float buffer is cheaper than into bool plus a cast).
    """
    at, eps, offset, low, high, in_range = _tables(tau, td, T, q, z.dtype, z.device)
    z_clamped = z.contiguous().clamp(low, high)
    log_z = z_clamped.log()
    t = torch.add(offset, log_z, alpha=-tau)                            # g + a fraction
    if not in_range:
        t.clamp_(0, T)
    t.nan_to_num_(nan=T)                                                # NaN: silent
    # an index type of z's item size, so that the backward can reuse it as a float buffer
    index = t.to(torch.int32 if z.element_size() == 4 else torch.int64)   # truncates: g
    flat = index.view(-1)
    f = torch.empty_like(t)
    torch.index_select(at, 0, flat, out=f.view(-1))                     # at[g]
    torch.lt(z_clamped, f, out=f)
    t.floor_().add_(f)                                                  # t = g + (z < at[g])
    index.copy_(t)
    torch.index_select(eps, 0, flat, out=f.view(-1))                    # eps(t), 0 if silent
    return t, f, z_clamped, log_z, index


def ttfs_activation(z: Tensor, tau: Tensor, td: Tensor, *, T: int, q: float = 0.5) -> Tensor:
    """Decoded TTFS value f(z) with a straight-through gradient through the rounding.

    Forward (exact SNN value): f = eps(t(z)) = exp((td - t)/tau) with t = t(z) of
    `spike_times`; f = 0 for no spike (z <= 0 or the dead zone t(z) > T-1); saturation
    z >= theta(0) = exp((td - q)/tau) gives t = 0. eps is evaluated in float64 and rounded once
    to the dtype of z.

    Backward: with t_c = td - q - tau ln z, the straight-through spike time
    t_q = t + (t_c - detach(t_c)) in the band 0 < t <= T-1 and t_q = 0 (constant) when
    saturated gives
        band:       df/dz = f / z,  df/dtau = f (t - td + tau ln z) / tau^2  (the rounding
                    residual t - t_c - q),  df/dtd = 0;
        saturated:  df/dz = 0,      df/dtau = -td f / tau^2,   df/dtd = f / tau;
        silent:     all zero.

    Args:
        z: membrane potentials (any shape, float32 or float64).
        tau, td: kernel parameters, shape [1] (trainable).
        T: time steps per window (>= 2). q: threshold offset.
    """
    return _TTFSActivation.apply(z, tau, td, T, q)


class _TTFSActivation(torch.autograd.Function):
    """Forward (table lookup by t) and straight-through backward of `ttfs_activation`."""

    @staticmethod
    @torch.amp.custom_fwd(device_type="cuda", cast_inputs=torch.float32)
    def forward(ctx, z: Tensor, tau: Tensor, td: Tensor, T: int, q: float) -> Tensor:
        tau_v, td_v = _scalars(tau, td)
        t, f, z_clamped, log_z, scratch = _spike_index(z.detach(), tau_v, td_v, T=T, q=q)
        # z is clamped only where f = 0 or the unit saturates: that changes no gradient
        ctx.kernel = tau_v, td_v
        # the spent index buffer becomes grad_z (saves an allocation: page faults on CPU)
        ctx.scratch = scratch if scratch.element_size() == f.element_size() else None
        ctx.save_for_backward(z_clamped, log_z, t, f)
        ctx.param_shapes = tau.shape, td.shape, tau.dtype, td.dtype
        return f

    @staticmethod
    @torch.amp.custom_bwd(device_type="cuda")
    def backward(ctx, grad: Tensor):
        z_clamped, log_z, t, f = ctx.saved_tensors
        tau_v, td_v = ctx.kernel
        tau_shape, td_shape, tau_dtype, td_dtype = ctx.param_shapes
        scratch, ctx.scratch = ctx.scratch, None
        if scratch is None or grad.dtype != f.dtype:
            gf = grad * f                                   # 0 where silent (f = 0)
        else:
            gf = torch.mul(grad, f, out=scratch.view(f.dtype))
        kernel_grads = ctx.needs_input_grad[1] or ctx.needs_input_grad[2]
        if kernel_grads:
            dot_t = torch.vdot(gf.reshape(-1), t.reshape(-1))
            sum_gf = gf.sum()
        gf_band = torch.clamp(t, max=1).mul_(gf)           # gf where t > 0, else 0
        grad_tau = grad_td = None
        if kernel_grads:
            sum_saturated = gf.sub_(gf_band).sum()          # over gf where t = 0
            # band: f (t - td + tau ln z) / tau^2; saturated (t = 0): f (0 - td) / tau^2
            grad_tau = (dot_t - td_v * sum_gf
                        + tau_v * torch.vdot(gf_band.reshape(-1), log_z.reshape(-1))) / tau_v ** 2
            grad_tau = grad_tau.reshape(tau_shape).to(tau_dtype)
            grad_td = (sum_saturated / tau_v).reshape(td_shape).to(td_dtype)
        grad_z = gf_band.div_(z_clamped)                    # band: f / z
        return grad_z, grad_tau, grad_td, None, None


def fake_quantize(weight: Tensor, bits: int) -> Tensor:
    """Per-tensor symmetric quantization with a straight-through gradient (QAT).

    Forward, in float64 exactly as `ttfs.sdk.quantize` does on the BN-folded weights: w_max =
    2^(bits-1) - 1, s_w = max|W| / w_max (1 when W = 0), W_int = clamp(round_half_away(W /
    s_w), -w_max, w_max), value W_int * s_w (in W's dtype). Backward: identity (dL/dW = dL/dQ).
    """
    w_max = 2 ** (bits - 1) - 1
    w64 = weight.detach().double()
    peak = w64.abs().max()
    s_w = torch.where(peak > 0, peak / w_max, torch.ones_like(peak))
    ratio = w64 / s_w
    w_int = (torch.sign(ratio) * torch.floor(ratio.abs() + 0.5)).clamp_(-w_max, w_max)
    return weight + (w_int * s_w).to(weight.dtype) - weight.detach()


def firing_floor(tau: Tensor, td: Tensor, *, T: int) -> Tensor:
    """x_T = exp(-(T - td) / tau), the kernel floor used by the TKBN loss (paper's form)."""
    return torch.exp(-(T - td) / tau)


def sr_probability(epoch: int, *, sr_epochs: int, p_bypass: float = 0.0) -> float:
    """SR schedule p(e) = (1 - p_b) * (e + 1) / E_SR, clamped to [0, 1] (e is 0-based).

    p is the chance that a hidden layer uses the TTFS activation (else ReLU) in a training step.
    E_SR = 0 means TTFS from the start (p = 1 - p_b).
    """
    if sr_epochs <= 0:
        return min(max(1.0 - p_bypass, 0.0), 1.0)
    return min(max((1.0 - p_bypass) * (epoch + 1) / sr_epochs, 0.0), 1.0)


def tr_loss(taus: list[Tensor], tds: list[Tensor], *, tau0: float, td0: float,
            lambda_r: float) -> Tensor:
    """TR regularizer R = lambda_R * sum_l [(tau_l - tau_0)^2 + (td_l - td_0)^2]."""
    return lambda_r * sum(((tau - tau0) ** 2 + (td - td0) ** 2).sum()
                          for tau, td in zip(taus, tds))


def tkbn_taylor(gamma: Tensor, beta: Tensor, x_t: Tensor) -> Tensor:
    """Paper form, per channel: int_{x_T}^{beta} [1 - (gamma v + beta)^2 / 2] dv, summed.

    Expanding (gamma v + beta)^2 = gamma^2 v^2 + 2 gamma beta v + beta^2 and integrating:
      (beta - x_T) - [gamma^2 (beta^3 - x_T^3) / 3 + gamma beta (beta^2 - x_T^2)
                      + beta^2 (beta - x_T)] / 2.
    It is the second-order Taylor proxy of int exp(-(gamma v + beta)^2 / 2) dv; its gradient
    pushes beta down only for |beta| below about 0.5 and it is unbounded below outside.
    """
    return ((beta - x_t)
            - (gamma ** 2 * (beta ** 3 - x_t ** 3) / 3
               + gamma * beta * (beta ** 2 - x_t ** 2)
               + beta ** 2 * (beta - x_t)) / 2).sum()


#: Lower bound on |gamma| in the tail form (avoids dividing by zero).
GAMMA_FLOOR = 1e-6


def tkbn_tail(gamma: Tensor, beta: Tensor, x_t: Tensor) -> Tensor:
    """Exact-tail variant (not the paper's): sum_c Phi((beta - x_T) / |gamma|).

    Phi((beta - x_T)/|gamma|) = P(y > x_T) for a BN output y ~ N(beta, gamma^2): the share of
    the channel's outputs above the firing floor. Monotone and bounded, unlike the Taylor form.
    """
    return torch.special.ndtr((beta - x_t) / gamma.abs().clamp_min(GAMMA_FLOOR)).sum()


TKBN_FORMS = {"taylor": tkbn_taylor, "tail": tkbn_tail}


def tkbn_loss(layers: list[tuple[Tensor, Tensor, Tensor]], *, lambda_bn: float,
              form: str = "taylor") -> Tensor:
    """L_BN = lambda_BN * sum over layers (gamma, beta, x_T) of the chosen per-channel form.

    x_T must be detached by the caller when only gamma and beta are to be trained.
    """
    if form not in TKBN_FORMS:
        raise ValueError(f"unknown TKBN form {form!r}; expected one of {', '.join(TKBN_FORMS)}")
    return lambda_bn * sum(TKBN_FORMS[form](g, b, x) for g, b, x in layers)

