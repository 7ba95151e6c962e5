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

import torch
from torch import Tensor

from sdk.floatnet import kernel_values, threshold_values


def threshold_table(tau: Tensor, td: Tensor, *, T: int, q: float) -> Tensor:
    """theta(t) = exp(-(t - td + q) / tau) for t = 0..T-1 (float64, strictly decreasing).

    The values of `sdk.floatnet.threshold_values`, shared with the float simulators.
    """
    return torch.tensor(threshold_values(float(tau.detach()), float(td.detach()), T=T, q=q),
                        dtype=torch.float64, device=tau.device)


def spike_times(z: Tensor, tau: Tensor, td: Tensor, *, T: int, q: float) -> Tensor:
    """t(z) = first t in [0, T-1] with z >= theta(t), else NO_SPIKE = T (int64, no gradient).

    Exact against the float64 threshold table, for float32 z too: the table is rounded up to
    the smallest value of z's dtype >= theta(t), and z >= theta(t) holds exactly when z is >=
    that bound. z <= 0 (and NaN) never fires.
    """
    return _spike_index(z, tau, td, T=T, q=q)[0].long()


def _spike_index(z: Tensor, tau: Tensor, td: Tensor, *, T: int, q: float
                 ) -> tuple[Tensor, Tensor, float]:
    """(t as int32, ln of the clamped z, the clamp floor): `spike_times` for the activation.

    A guess from the closed form ceil(td - q - tau ln z), clamped to [0, T] (float error moves
    it by at most one step; z is first clamped to a floor of half the last bound, which still
    gives T), then one exact correction step against the bounds. Several times faster on CPU
    than a binary search over the table.
    """
    with torch.no_grad():
        z = z.detach()
        theta = threshold_table(tau, td, T=T, q=q)
        bound = theta.to(z.dtype)
        bound = torch.where(bound.double() < theta, torch.nextafter(bound, bound + 1), bound)
        inf = bound.new_full((1,), math.inf)
        at = torch.cat([bound, -inf])           # at[k]: z >= at[k] <=> t(z) <= k; at[T] = -inf
        before = torch.cat([inf, bound])        # before[k] = at[k - 1]; before[0] = +inf
        floor = float(bound[-1]) / 2
        log_z = torch.log(z.clamp(min=floor))
        guess = log_z * -float(tau.detach())
        guess.add_(float(td.detach()) - q).ceil_().nan_to_num_(nan=T).clamp_(0, T)
        index = guess.int()
        index += z < _lookup(at, index)
        index -= (z >= _lookup(before, index)).int()
        return index, log_z, floor


def _lookup(table: Tensor, index: Tensor) -> Tensor:
    """table[index] for an int32 index tensor of any shape."""
    return table.index_select(0, index.reshape(-1)).reshape(index.shape)


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


def _kernel_values(tau: Tensor, td: Tensor, T: int, dtype: torch.dtype) -> Tensor:
    """eps(k) = exp(-(k - td)/tau) for k = 0..T-1 and 0 for k = T (silent), float64 rounded."""
    values = kernel_values(float(tau.detach()), float(td.detach()), T=T) + [0.0]
    return torch.tensor(values, dtype=torch.float64, device=tau.device).to(dtype)


class _TTFSActivation(torch.autograd.Function):
    """Forward (table lookup by t) and straight-through backward of `ttfs_activation`."""

    @staticmethod
    def forward(ctx, z: Tensor, tau: Tensor, td: Tensor, T: int, q: float) -> Tensor:
        t, log_z, floor = _spike_index(z, tau, td, T=T, q=q)
        f = _lookup(_kernel_values(tau, td, T, z.dtype), t)
        # the floor is below every threshold: f = 0 there, so clamping z changes no gradient
        ctx.floor = floor
        ctx.save_for_backward(z, log_z, t, f, tau, td)
        return f

    @staticmethod
    def backward(ctx, grad: Tensor):
        z, log_z, t, f, tau, td = ctx.saved_tensors
        tau_v, td_v = float(tau.detach()), float(td.detach())
        gf = grad * f                                       # 0 where silent (f = 0)
        gf_saturated = gf * (t == 0)
        sum_saturated = gf_saturated.sum()
        # band: f (t - td + tau ln z) / tau^2; saturated (t = 0): f (0 - td) / tau^2
        grad_tau = (torch.vdot(gf.reshape(-1), t.to(z.dtype).reshape(-1)) - td_v * gf.sum()
                    + tau_v * torch.vdot((gf - gf_saturated).reshape(-1), log_z.reshape(-1))
                    ) / tau_v ** 2
        grad_z = gf.sub_(gf_saturated).div_(z.clamp(min=ctx.floor))   # band: f / z
        return (grad_z, grad_tau.reshape(tau.shape).to(tau.dtype),
                (sum_saturated / tau_v).reshape(td.shape).to(td.dtype), None, None)


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

