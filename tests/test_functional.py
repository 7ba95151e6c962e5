"""TTFS math: the activation against the SNN formula, its gradients, SR, TR and TKBN losses."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from ttfs.sdk.functional import (fake_quantize, firing_floor, spike_times, sr_probability,
                            tkbn_loss, tkbn_tail, tkbn_taylor, tr_loss, ttfs_activation)
from ttfs.sdk.simulate import decode, first_crossing, threshold_table

# (T, tau, td, q); tau and td are float32 values, as the trained parameters are
KERNELS = [(16, 5.0, 0.0, 0.5), (8, 2.0, 0.0, 0.5), (32, 10.0, -1.25, 0.0), (12, 3.75, 0.875, 0.5)]


def snn_value(z: np.ndarray, T: int, tau: float, td: float, q: float) -> np.ndarray:
    """The float SNN: first t with z >= theta(t) in float64, decoded as eps(t) (0 if none)."""
    times = first_crossing(np.asarray(z, np.float64), threshold_table(tau, td, T=T, q=q))
    return decode(times, tau, td, T=T), times


def param(value: float) -> torch.Tensor:
    return torch.tensor([value], dtype=torch.float32, requires_grad=True)


@pytest.mark.parametrize("T,tau,td,q", KERNELS)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_forward_equals_snn_at_and_around_every_threshold(T, tau, td, q, dtype):
    theta = threshold_table(tau, td, T=T, q=q)
    exact = torch.tensor(theta, dtype=dtype)          # theta rounded to dtype (either way)
    up, down = torch.nextafter(exact, exact + 1), torch.nextafter(exact, exact - 1)
    z = torch.cat([exact, up, down, exact * 1.01, exact * 0.99,
                   torch.tensor([0.0, -0.0, -1.0, -1e-30, 1e-30, 1e30], dtype=dtype)])
    f = ttfs_activation(z, param(tau), param(td), T=T, q=q).detach()
    expected, times = snn_value(z.double().numpy(), T, tau, td, q)
    assert f.dtype == dtype
    f = f.detach()
    np.testing.assert_array_equal(f.numpy(), expected.astype(f.numpy().dtype))
    np.testing.assert_array_equal(spike_times(z, param(tau), param(td), T=T, q=q).numpy(),
                                  times)
    # float64: z = theta(t) fires at t, the next value below fires one step later
    if dtype == torch.float64:
        assert times[:T].tolist() == list(range(T))
        assert times[2 * T:3 * T].tolist() == list(range(1, T + 1))


@pytest.mark.parametrize("T,tau,td,q", KERNELS)
def test_forward_regions_and_random_values(T, tau, td, q):
    sat = math.exp((td - q) / tau)                     # z >= theta(0) fires at t = 0
    z = torch.tensor([sat * 1.5, 1e6, theta_last(T, tau, td, q) * 0.999, 0.0, -3.0])
    f = ttfs_activation(z, param(tau), param(td), T=T, q=q).detach()
    assert f[0] == f[1] == np.float32(math.exp(td / tau))          # saturation: eps(0)
    assert f[2:].tolist() == [0.0, 0.0, 0.0]                       # dead zone, zero, negative
    rng = np.random.default_rng(T)
    z = torch.tensor(rng.lognormal(-1.0, 1.5, 20000), dtype=torch.float32)
    f = ttfs_activation(z, param(tau), param(td), T=T, q=q).detach()
    np.testing.assert_array_equal(f.numpy(), snn_value(z.double().numpy(), T, tau, td, q)[0]
                                  .astype(np.float32))


def theta_last(T, tau, td, q):
    return math.exp(-(T - 1 - td + q) / tau)


def test_hand_checked_values():
    # T = 16, tau = 5, td = 0, q = 0.5: z = 0.5 -> t = ceil(-0.5 - 5 ln 0.5) = ceil(2.966) = 3,
    # a = exp(-3/5) = 0.548812; z = 0.05 -> ceil(-0.5 + 14.98) = 15 -> exp(-3) = 0.049787;
    # z = 0.04 -> ceil(15.59) = 16 > T-1: silent.
    f = ttfs_activation(torch.tensor([0.5, 0.05, 0.04]), param(5.0), param(0.0), T=16, q=0.5)
    f = f.detach()
    np.testing.assert_allclose(f.numpy(), [0.548812, 0.049787, 0.0], rtol=1e-5)


def grads(z, tau, td, T=16, q=0.5):
    z = torch.tensor(z, dtype=torch.float64, requires_grad=True)
    tau_p = torch.tensor([tau], dtype=torch.float64, requires_grad=True)
    td_p = torch.tensor([td], dtype=torch.float64, requires_grad=True)
    f = ttfs_activation(z, tau_p, td_p, T=T, q=q)
    f.sum().backward()
    return f.detach(), z.grad, tau_p.grad, td_p.grad


def test_straight_through_gradient_in_the_band_matches_finite_differences():
    tau, td, q, T = 5.0, 0.4, 0.5, 16
    z0 = np.array([0.5, 0.23, 0.11, 0.07])               # well inside rounding steps
    f, gz, gtau, gtd = grads(z0, tau, td, T, q)
    np.testing.assert_allclose(gz.numpy(), f.numpy() / z0, rtol=1e-12)   # df/dz = f / z
    assert gtd.item() == 0.0                                             # td: no band gradient

    # Straight through = differentiate with the rounding residual r = t - t_c frozen:
    # g(z, tau) = exp((td - (t_c(z, tau) + r)) / tau),  t_c = td - q - tau ln z.
    t = spike_times(torch.tensor(z0), torch.tensor([tau]), torch.tensor([td]), T=T, q=q).numpy()
    r = t - (td - q - tau * np.log(z0))

    def g(z, tau_):
        return np.exp((td - (td - q - tau_ * np.log(z) + r)) / tau_)

    h = 1e-6
    np.testing.assert_allclose(g(z0, tau), f.numpy(), rtol=1e-12)
    np.testing.assert_allclose((g(z0 + h, tau) - g(z0 - h, tau)) / (2 * h), gz.numpy(),
                               rtol=1e-6)
    dtau = ((g(z0, tau + h) - g(z0, tau - h)) / (2 * h)).sum()
    np.testing.assert_allclose(gtau.item(), dtau, rtol=1e-6)


def test_saturated_gradients_are_the_true_derivatives():
    # saturated: f = exp(td / tau) exactly, a smooth function of (tau, td); gradcheck it.
    z = torch.tensor([5.0, 9.0], dtype=torch.float64)
    f, gz, gtau, gtd = grads(z.numpy(), 4.0, 0.7)
    assert gz.tolist() == [0.0, 0.0]
    x_max = math.exp(0.7 / 4.0)
    np.testing.assert_allclose(gtd.item(), 2 * x_max / 4.0, rtol=1e-12)        # f / tau
    np.testing.assert_allclose(gtau.item(), 2 * -0.7 * x_max / 16.0, rtol=1e-12)  # -td f/tau^2
    tau = torch.tensor([4.0], dtype=torch.float64, requires_grad=True)
    td = torch.tensor([0.7], dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda a, b: ttfs_activation(z, a, b, T=16), (tau, td))


def test_silent_units_have_zero_and_finite_gradients():
    f, gz, gtau, gtd = grads([0.0, -2.0, 1e-4, -0.0], 5.0, 0.0)
    assert f.tolist() == [0.0] * 4
    assert gz.tolist() == [0.0] * 4 and gtau.item() == 0.0 and gtd.item() == 0.0


def test_float32_backward_matches_float64():
    rng = np.random.default_rng(0)
    z64 = rng.lognormal(-1.0, 1.0, 1000)
    z32 = torch.tensor(z64, dtype=torch.float32, requires_grad=True)
    tau, td = param(5.0), param(0.2)
    ttfs_activation(z32, tau, td, T=16).sum().backward()
    _, gz, gtau, gtd = grads(z32.detach().double().numpy(), 5.0, float(np.float32(0.2)))
    np.testing.assert_allclose(z32.grad.numpy(), gz.numpy(), rtol=1e-5)
    np.testing.assert_allclose(tau.grad.item(), gtau.item(), rtol=1e-4)
    np.testing.assert_allclose(td.grad.item(), gtd.item(), rtol=1e-4)


def test_sr_schedule():
    # p(e) = (1 - p_b)(e + 1) / E_SR, clamped to [0, 1]
    assert sr_probability(0, sr_epochs=50) == 1 / 50
    assert sr_probability(24, sr_epochs=50) == 0.5
    assert sr_probability(49, sr_epochs=50) == 1.0
    assert sr_probability(80, sr_epochs=50) == 1.0
    assert sr_probability(9, sr_epochs=10, p_bypass=0.25) == 0.75
    assert sr_probability(4, sr_epochs=10, p_bypass=0.5) == 0.25
    assert sr_probability(0, sr_epochs=0) == 1.0


def test_tr_loss_hand_computed():
    # lambda * [(6 - 5)^2 + (0.5 - 0)^2 + (4 - 5)^2 + (-1 - 0)^2] = 1e-2 * (1 + 0.25 + 1 + 1)
    r = tr_loss([torch.tensor([6.0]), torch.tensor([4.0])],
                [torch.tensor([0.5]), torch.tensor([-1.0])], tau0=5.0, td0=0.0, lambda_r=1e-2)
    assert r.item() == pytest.approx(3.25e-2)


def test_tkbn_taylor_hand_computed_and_gradient():
    # gamma = 1, beta = 0.5, x_T = 0.1:
    # int_{0.1}^{0.5} [1 - (v + 0.5)^2 / 2] dv = 0.4 - [(1.0^3 - 0.6^3) / 3] / 2
    #   = 0.4 - (1 - 0.216) / 6 = 0.4 - 0.130667 = 0.269333
    gamma = torch.tensor([1.0], dtype=torch.float64, requires_grad=True)
    beta = torch.tensor([0.5], dtype=torch.float64, requires_grad=True)
    x_t = torch.tensor(0.1, dtype=torch.float64)
    loss = tkbn_taylor(gamma, beta, x_t)
    assert loss.item() == pytest.approx(0.4 - 0.784 / 6, rel=1e-12)
    loss.backward()
    # dL/dbeta = 1 + beta x_T + gamma x_T^2 / 2 - 1.5 (1 + gamma) beta^2 - gamma^2 beta^2 / 2
    #          = 1 + 0.05 + 0.005 - 0.75 - 0.125 = 0.18 > 0: beta is pushed down
    assert beta.grad.item() == pytest.approx(0.18, rel=1e-12)
    # dL/dgamma = -[gamma (beta^3 - x_T^3) / 3 + beta (beta^2 - x_T^2) / 2]
    #           = -[(0.125 - 0.001) / 3 + 0.5 * 0.24 / 2] = -(0.041333 + 0.06) = -0.101333
    assert gamma.grad.item() == pytest.approx(-(0.124 / 3 + 0.06), rel=1e-12)
    # the sum over layers and channels, scaled by lambda_BN
    two = tkbn_loss([(gamma.detach().repeat(2), beta.detach().repeat(2), x_t)] * 3,
                    lambda_bn=0.5)
    assert two.item() == pytest.approx(0.5 * 6 * (0.4 - 0.784 / 6), rel=1e-12)


def test_tkbn_tail_is_the_gaussian_tail():
    # Phi((beta - x_T) / |gamma|): beta = x_T -> 0.5; (1.1 - 0.1) / 1 = 1 -> Phi(1) = 0.841345
    gamma = torch.tensor([1.0, -2.0])
    beta = torch.tensor([1.1, 0.1])
    assert tkbn_tail(gamma, beta, torch.tensor(0.1)).item() == pytest.approx(0.841345 + 0.5,
                                                                            rel=1e-5)
    with pytest.raises(ValueError, match="unknown TKBN form 'exact'"):
        tkbn_loss([(gamma, beta, torch.tensor(0.1))], lambda_bn=1.0, form="exact")


def test_firing_floor():
    # x_T = exp(-(T - td) / tau) = exp(-(16 - 1) / 5) = exp(-3)
    assert firing_floor(torch.tensor(5.0), torch.tensor(1.0), T=16).item() == pytest.approx(
        math.exp(-3.0))


@pytest.mark.parametrize("T,tau,td,q", [(32, 0.25, 0.0, 0.5), (8, 0.015625, 2.0, 0.0),
                                        (16, 50.0, -3.0, 0.25)])
def test_forward_exact_for_extreme_kernels(T, tau, td, q):
    # kernels whose bounds under- or overflow float32 (the first two) take the clamped path
    theta = torch.tensor(threshold_table(tau, td, T=T, q=q), dtype=torch.float32)
    rng = np.random.default_rng(1)
    z = torch.cat([theta, torch.nextafter(theta, theta + 1), torch.nextafter(theta, theta - 1),
                   torch.tensor(rng.lognormal(-1.0, 3.0, 5000), dtype=torch.float32),
                   torch.tensor([0.0, -1.0, 1e-45, 1e38, math.inf, -math.inf, math.nan])])
    f = ttfs_activation(z, param(tau), param(td), T=T, q=q).detach()
    expected, times = snn_value(z.double().numpy(), T, tau, td, q)
    with np.errstate(over="ignore"):                    # eps(0) = exp(128) is inf in float32
        np.testing.assert_array_equal(f.numpy(), expected.astype(np.float32))
    np.testing.assert_array_equal(spike_times(z, param(tau), param(td), T=T, q=q).numpy(), times)


def test_special_inputs_and_non_contiguous_z():
    # +inf saturates, -inf and NaN never fire; a transposed z gives the values of its copy
    f = ttfs_activation(torch.tensor([math.inf, -math.inf, math.nan]), param(5.0), param(0.0),
                        T=16).detach()
    assert f.tolist() == [1.0, 0.0, 0.0]
    z = torch.randn(64, 48).t()
    np.testing.assert_array_equal(ttfs_activation(z, param(5.0), param(0.0), T=16).detach(),
                                  ttfs_activation(z.contiguous(), param(5.0), param(0.0), T=16)
                                  .detach())


def test_frozen_kernel_backward_gives_the_same_input_gradient():
    # without tau/td gradients the backward skips their reductions; grad_z is unchanged
    z = torch.randn(4, 8, 5, 5, dtype=torch.float64) * 0.5 + 0.3
    grad = torch.randn_like(z)
    results = []
    for trainable in (True, False):
        zz = z.clone().requires_grad_(True)
        tau = torch.tensor([4.0], dtype=torch.float64, requires_grad=trainable)
        td = torch.tensor([0.3], dtype=torch.float64, requires_grad=trainable)
        ttfs_activation(zz, tau, td, T=16).backward(grad)
        results.append(zz.grad)
        assert (tau.grad is not None) == trainable
    assert torch.equal(results[0], results[1])


def test_fake_quantize_is_the_quantizers_rounding_with_identity_gradient():
    w = torch.tensor([[0.7, -0.4, 0.1], [-0.05, 0.2, 0.0]], dtype=torch.float32,
                     requires_grad=True)
    q = fake_quantize(w, 3)                         # w_max = 3, s_w = 0.7 / 3
    steps = (q.detach().double() / (0.7 / 3)).numpy()
    np.testing.assert_allclose(steps, [[3, -2, 0], [0, 1, 0]], atol=1e-6)
    q.sum().backward()
    assert torch.equal(w.grad, torch.ones_like(w))
    assert torch.equal(fake_quantize(torch.zeros(3), 4), torch.zeros(3))
