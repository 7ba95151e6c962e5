"""Float simulators: hand-checked cases, fan-out, and the three-way equivalence on real data.

surrogate (torch, eval) == closed-form SNN == time-stepped SNN: same classes, same spike times
and counts. In float64 the surrogate and the SNN differ only by rounding (BN folded vs not),
~1e-16 relative, so no tie occurs on these seeded runs; in float32 a few neurons near a
threshold may move by a step, so there only the classes are compared (>= 99 %).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from ttfs.sdk.data import load_dataset
from ttfs.sdk.floatnet import FloatLayer, FloatNetwork
from ttfs.sdk.simulate import (fan_out, first_crossing, kernel_table, run_closed_form,
                          run_time_stepped, threshold_table)
from ttfs.sdk.train import TrainConfig, fit, to_tensor


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits")


@pytest.fixture(scope="module", params=[("mlp", "real"), ("cnn", "real"), ("mlp", "ttfs")],
                ids=["mlp-real", "cnn-real", "mlp-ttfs"])
def trained(request, digits):
    arch, coding = request.param
    cfg = TrainConfig(dataset="digits", arch=arch, method="sr+tr+tkbn", epochs=3, T=8,
                      tau0=2.0, sr_epochs=1, tk_epoch=1, seed=1, input_coding=coding)
    return fit(cfg, digits, quiet=True).model


def surrogate_times(model, activations):
    """Spike times from the surrogate's decoded values: a = eps(t) exactly, 0 = NO_SPIKE."""
    times = []
    for kernel, a in zip(model.kernels, activations):
        eps = kernel_table(kernel.tau.item(), kernel.td.item(), T=model.T)
        a = a.detach().numpy()
        t = np.searchsorted(-eps, -a)          # eps decreasing: index of the exact value
        times.append(np.where(a > 0, t, model.T))
    return times


def test_three_way_equivalence_on_real_data(trained, digits):
    images = digits.test_images
    net = trained.float_network()
    closed = run_closed_form(net, images)
    stepped = run_time_stepped(net, images)
    for a, b in zip(closed.times, stepped.times):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(closed.classes, stepped.classes)
    np.testing.assert_array_equal(closed.spike_counts, stepped.spike_counts)
    np.testing.assert_array_equal(closed.sops, stepped.sops)
    np.testing.assert_allclose(closed.scores, stepped.scores, rtol=1e-9, atol=1e-12)

    model = trained.double().eval()
    with torch.no_grad():
        scores, activations = model.run(to_tensor(images).double())
    times = surrogate_times(model, activations)
    spiking = [t for name, t in zip(closed.layer_names, closed.times)
               if name in model.kernel_names]
    if closed.input_times is not None:
        spiking.insert(0, closed.input_times)
    assert len(spiking) == len(times)
    for snn_t, sur_t in zip(spiking, times):
        np.testing.assert_array_equal(snn_t.reshape(len(images), -1),
                                      sur_t.reshape(len(images), -1))
    np.testing.assert_array_equal(closed.classes, np.argmax(scores.numpy(), axis=1))
    np.testing.assert_allclose(closed.scores, scores.numpy(), rtol=1e-9, atol=1e-9)
    assert closed.spike_counts.sum() > 0 and (closed.classes == digits.test_labels).mean() > 0.3

    model.float()
    with torch.no_grad():
        scores32 = model(to_tensor(images)).numpy()
    assert (np.argmax(scores32, axis=1) == closed.classes).mean() >= 0.99


@pytest.mark.parametrize("trained", [("mlp", "real")], indirect=True)
def test_real_coding_sops_are_hidden_spikes_times_fan_out(trained, digits):
    trace = run_closed_form(trained.float().float_network(), digits.test_images[:50])
    # the first layer integrates pixels (no SOPs); each fc1 spike drives 10 output synapses
    np.testing.assert_array_equal(trace.sops, 10 * trace.spike_counts[:, 0])
    assert trace.input_spikes.tolist() == [0] * 50


def dense_net(weight, bias, tau=2.0, td=0.0, T=8, q=0.5, out_weight=None):
    """input (1x1xN real) -> flatten -> dense -> output, float64."""
    weight, bias = np.asarray(weight, float), np.asarray(bias, float)
    n_out, n_in = weight.shape
    out_weight = np.eye(n_out) if out_weight is None else np.asarray(out_weight, float)
    layers = (FloatLayer("flatten", "f", (1, 1, n_in), (n_in,)),
              FloatLayer("dense", "d", (n_in,), (n_out,), weight, bias, tau=tau, td=td),
              FloatLayer("output", "o", (n_out,), (len(out_weight),), out_weight,
                         np.zeros(len(out_weight))))
    return FloatNetwork(layers, T, q, (1, 1, n_in), "real", None, None, len(out_weight))


def test_hand_checked_spike_times():
    # x = byte/255 = 1; z = w: theta(t) = exp(-(t + 0.5)/2) = 0.7788, 0.4724, 0.2865, ...
    # z = 2.0 saturates (t = 0), z = 0.5 -> first t with 0.5 >= theta(t) is 1,
    # z = theta(3) exactly -> 3, z = 0.01 < theta(7) = 0.0235 -> silent, z = -1 -> silent.
    theta = threshold_table(2.0, 0.0, T=8, q=0.5)
    w = [[2.0], [0.5], [theta[3]], [0.01], [-1.0]]
    net = dense_net(w, np.zeros(5))
    image = np.full((1, 1, 1, 1), 255, np.uint8)
    for run in (run_closed_form, run_time_stepped):
        trace = run(net, image)
        assert trace.times[0].tolist() == [[0, 1, 3, 8, 8]]
        assert trace.spike_counts.tolist() == [[3]]
        assert trace.sops.tolist() == [3 * 5]          # 3 spikes x fan-out 5 (output)
        eps = [1.0, math.exp(-0.5), math.exp(-1.5)]    # decoded values reach the output
        np.testing.assert_allclose(trace.scores[0], eps + [0.0, 0.0], rtol=1e-15)


def test_first_crossing_is_inclusive():
    theta = np.array([1.0, 0.5, 0.25])
    assert first_crossing(np.array([1.0, 0.9999, 0.5, 0.25, 0.2, -1.0]), theta).tolist() == \
        [0, 1, 1, 2, 3, 3]


def test_conv_fan_out_counts_covering_outputs():
    # 3x3 conv, pad 1, stride 1 on 4x4: a corner input is covered by a 2x2 block of outputs,
    # an edge input by 2x3, an interior one by 3x3; times C_out = 5.
    layer = FloatLayer("conv2d", "c", (2, 4, 4), (5, 4, 4), np.zeros((5, 2, 3, 3)), np.zeros(5),
                       tau=1.0, td=0.0, padding=1)
    counts = fan_out(layer)
    assert counts.shape == (2, 4, 4)
    assert counts[0, 0, 0] == 5 * 4 and counts[1, 0, 1] == 5 * 6 and counts[0, 1, 2] == 5 * 9
    # stride 2, no padding, 3x3 on 5x5 (outputs at 0, 2): position 2 is covered twice per axis
    strided = FloatLayer("conv2d", "c", (1, 5, 5), (1, 2, 2), np.zeros((1, 1, 3, 3)),
                         np.zeros(1), tau=1.0, td=0.0, stride=2)
    assert fan_out(strided)[0, 2].tolist() == [2, 2, 4, 2, 2]   # row 2 is covered twice


def random_conv_net(seed):
    """A random float network that hits saturation, dead zone and silent inputs (ttfs input)."""
    rng = np.random.default_rng(seed)
    conv = FloatLayer("conv2d", "c", (2, 6, 6), (3, 6, 6), rng.normal(0, 1.5, (3, 2, 3, 3)),
                      rng.normal(0, 0.5, 3), tau=1.5, td=0.3, padding=1)
    pool = FloatLayer("maxpool2d", "p", (3, 6, 6), (3, 3, 3), size=2, stride=2)
    flat = FloatLayer("flatten", "f", (3, 3, 3), (27,))
    dense = FloatLayer("dense", "d", (27,), (7,), rng.normal(0, 1.0, (7, 27)),
                       rng.normal(0, 0.3, 7), tau=2.5, td=-0.4)
    out = FloatLayer("output", "o", (7,), (4,), rng.normal(0, 1, (4, 7)), rng.normal(0, 1, 4))
    return FloatNetwork((conv, pool, flat, dense, out), 6, 0.5, (2, 6, 6), "ttfs", 2.0, 0.0, 4)


@pytest.mark.parametrize("seed", range(4))
def test_closed_form_equals_time_stepped_on_random_networks(seed):
    net = random_conv_net(seed)
    images = np.random.default_rng(seed).integers(0, 256, (40, 2, 6, 6), dtype=np.uint8)
    images[0] = 0                                        # an all-silent input
    closed, stepped = run_closed_form(net, images), run_time_stepped(net, images)
    for a, b in zip((closed.input_times, *closed.times), (stepped.input_times, *stepped.times)):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(closed.sops, stepped.sops)
    np.testing.assert_array_equal(closed.classes, stepped.classes)
    times = np.concatenate([t.reshape(-1) for t in closed.times])
    assert (times == 0).any() and (times == net.T).any()  # saturation and silence both occur
    assert closed.input_spikes[0] == 0 and closed.spike_counts.shape == (40, 2)


def test_rejects_wrong_images():
    net = dense_net([[1.0]], [0.0])
    with pytest.raises(ValueError, match=r"expected uint8 \[N, 1, 1, 1\], got float64"):
        run_closed_form(net, np.zeros((2, 1, 1, 1)))
