"""Quantizer (sdk/quantize.py): rounding, tables, a hand-quantized network, refusals, accuracy."""

from __future__ import annotations

import numpy as np
import pytest

from sdk import golden, report, simulate
from sdk.data import load_dataset
from sdk.floatnet import FloatLayer, FloatNetwork
from sdk.ir import ACC_LIMIT, Dense, Output
from sdk.quantize import (QuantizeError, input_time_table, kernel_table, quantize,
                          round_half_away, round_half_up, threshold_table)


def float_net(layers, *, T=4, q=0.5, input_shape=(1, 1, 2), coding="real", input_tau=None,
              input_td=None, num_classes=2) -> FloatNetwork:
    return FloatNetwork(tuple(layers), T=T, q=q, input_shape=input_shape, input_coding=coding,
                        input_tau=input_tau, input_td=input_td, num_classes=num_classes)


def dense(name, weight, bias, *, tau=2.0, td=0.0, kind="dense") -> FloatLayer:
    weight = np.asarray(weight, dtype=np.float64)
    return FloatLayer(kind, name, (weight.shape[1],), (weight.shape[0],), weight,
                      np.asarray(bias, dtype=np.float64),
                      tau=None if kind == "output" else tau, td=None if kind == "output" else td)


FLAT2 = FloatLayer("flatten", "flat", (1, 1, 2), (2,))


def test_round_half_up_ties_go_up_also_for_negatives():
    x = [-2.5, -1.5, -0.5, -0.49, 0.0, 0.49, 0.5, 1.5, 2.5, 2.51]
    np.testing.assert_array_equal(round_half_up(x), [-2, -1, 0, 0, 0, 0, 1, 2, 3, 3])


def test_round_half_away_ties_go_away_from_zero():
    x = [-2.5, -1.5, -0.5, -0.49, 0.0, 0.49, 0.5, 1.5, 2.5, -2.51]
    np.testing.assert_array_equal(round_half_away(x), [-3, -2, -1, 0, 0, 0, 1, 2, 3, -3])
    # numpy's round-half-even would give 2 and -2 here
    assert round_half_away(2.5) == 3 and round_half_away(-2.5) == -3


def test_kernel_table_hand_values():
    # 15 * exp(-t/2) = 15, 9.098, 5.518, 3.347 -> 15, 9, 6, 3
    np.testing.assert_array_equal(kernel_table(4, 2.0, 4), [15, 9, 6, 3])
    assert kernel_table(4, 2.0, 4).dtype == np.int32
    assert kernel_table(5, 1e-3, 8).tolist() == [255, 0, 0, 0, 0]


def test_threshold_table_hand_values_and_clamping():
    # exp(-(t + 0.5)/2) / 0.01 = 77.88, 47.24, 28.65, 17.38 -> ceil 78, 48, 29, 18
    np.testing.assert_array_equal(threshold_table(4, 2.0, 0.0, 0.5, 0.01, 1000), [78, 48, 29, 18])
    # clamped to M + 1 = 51 at the top, and never below 1
    np.testing.assert_array_equal(threshold_table(4, 2.0, 0.0, 0.5, 0.01, 50), [51, 48, 29, 18])
    np.testing.assert_array_equal(threshold_table(4, 2.0, 0.0, 0.5, 1e6, 50), [1, 1, 1, 1])
    # a td shifts the table: td = 1 gives exp(-(t - 0.5)/2)/0.01 = 128.4, 77.88, ...
    np.testing.assert_array_equal(threshold_table(3, 2.0, 1.0, 0.5, 0.01, 1000), [129, 78, 48])


def test_input_time_table():
    # theta(t) = exp(-(t + 0.5)/1) = 0.607, 0.223, 0.082, 0.030 (T = 4, tau = 1, td = 0)
    times = input_time_table(4, 1.0, 0.0, 0.5)
    assert times[0] == 4                                   # a black pixel never spikes
    assert times[255] == 0                                 # 1.0 >= 0.607
    assert times[154] == 1 and times[155] == 0             # 154/255 = 0.6039 < 0.6065 <= 0.6078
    assert times[57] == 1 and times[56] == 2               # 0.2235 >= 0.2231 > 0.2196
    assert times[7] == 4 and times[8] == 3                 # 0.0275 < 0.0302 <= 0.0314
    assert np.all(np.diff(times) <= 0)


def hand_network(weight_bits=4, kernel_bits=4):
    """The network quantized by hand in `test_quantize_by_hand`."""
    hidden = dense("fc", [[0.5, -0.25], [1.0, 0.125]], [0.125, -0.0625])
    out = dense("out", [[1.0, -1.0], [0.5, 2.0]], [0.0, 0.25], kind="output")
    return float_net([FLAT2, hidden, out])


def test_quantize_by_hand():
    net = quantize(hand_network(), weight_bits=4, kernel_bits=4, name="hand")
    _, fc, out = net.layers
    # fc: w_max = 7, s_w = 1/7, sigma = 1/255, s = 1/1785.
    #   W'/s_w = [[3.5, -1.75], [7, 0.875]] -> [[4, -2], [7, 1]]
    #   b'/s = [223.125, -111.5625] -> [223, -112]
    #   M = max(223 + 6 * 255, 112 + 8 * 255) = 2152
    #   Theta = ceil(exp(-(t + 0.5)/2) * 1785) = ceil(1390.16, 843.17, 511.41, 310.19)
    #   K = round_half_up(15 exp(-t/2)) = [15, 9, 6, 3]
    assert isinstance(fc, Dense)
    np.testing.assert_array_equal(fc.weight, [[4, -2], [7, 1]])
    np.testing.assert_array_equal(fc.bias, [223, -112])
    np.testing.assert_array_equal(fc.theta, [1391, 844, 512, 311])
    np.testing.assert_array_equal(fc.kernel, [15, 9, 6, 3])
    assert net.info[1].acc_bound == 2152
    # out: s_w = 2/7, sigma = exp(0)/15, s = 2/105; W'/s_w = [[3.5, -3.5], [1.75, 7]];
    #   b'/s = [0, 13.125]
    assert isinstance(out, Output)
    np.testing.assert_array_equal(out.weight, [[4, -4], [2, 7]])
    np.testing.assert_array_equal(out.bias, [0, 13])
    assert net.info[2].acc_bound == 13 + 9 * 15
    ref = net.reference
    assert ref["q"] == 0.5
    assert ref["layers"]["fc"]["s_w"] == pytest.approx(1 / 7)
    assert ref["layers"]["fc"]["sigma"] == pytest.approx(1 / 255)
    assert ref["layers"]["out"]["sigma"] == pytest.approx(1 / 15)
    assert ref["layers"]["fc"]["tau"] == 2.0 and ref["layers"]["fc"]["x_max"] == 1.0
    # input [255, 0]: u = [223 + 1020, -112 + 1785] = [1243, 1673] -> t = [1, 0]
    # (float: z = [0.625, 0.9375] against theta = 0.779, 0.472 -> t = [1, 0] as well);
    # scores = [4*9 - 4*15, 13 + 2*9 + 7*15] = [-24, 136]
    trace = golden.run(net, np.array([[255, 0]], np.uint8))
    np.testing.assert_array_equal(trace.times[0], [[1, 0]])
    np.testing.assert_array_equal(trace.scores, [[-24, 136]])
    ftrace = simulate.run_closed_form(hand_network(), np.array([[[[255, 0]]]], np.uint8))
    np.testing.assert_array_equal(ftrace.times[0], [[1, 0]])


def test_theta_clamped_to_bound_plus_one():
    # a tiny scale makes Theta[0] = ceil(exp(15.75) / s) astronomically large: clamp at M + 1
    hidden = dense("fc", [[1.0, 1.0]], [0.0], tau=0.1, td=1.6)
    net = quantize(float_net([FLAT2, hidden, dense("out", [[1.0]], [0.0], kind="output")]))
    fc = net.layers[1]
    bound = net.info[1].acc_bound
    assert bound == 127 * 255 * 2
    assert fc.theta[0] == bound + 1 and fc.theta.max() <= bound + 1 and fc.theta.min() >= 1


def test_ttfs_input_coding_scales():
    hidden = dense("fc", [[1.0, 1.0]], [0.0])
    fnet = float_net([FLAT2, hidden, dense("out", [[1.0]], [0.0], kind="output")],
                     coding="ttfs", input_tau=1.0, input_td=0.5)
    net = quantize(fnet, kernel_bits=6)
    np.testing.assert_array_equal(net.input_times, input_time_table(4, 1.0, 0.5, 0.5))
    np.testing.assert_array_equal(net.input_kernel, kernel_table(4, 1.0, 6))
    # sigma of fc = x_max_in / K_MAX = exp(0.5) / 63, its operand bound K_MAX = 63
    assert net.reference["layers"]["fc"]["sigma"] == pytest.approx(np.exp(0.5) / 63)
    assert net.info[1].in_max == 63


def test_all_zero_weights_use_unit_scale():
    hidden = dense("fc", [[0.0, 0.0]], [0.5])
    net = quantize(float_net([FLAT2, hidden, dense("out", [[1.0]], [0.0], kind="output")]))
    fc = net.layers[1]
    assert net.reference["layers"]["fc"]["s_w"] == 1.0
    np.testing.assert_array_equal(fc.weight, [[0, 0]])
    assert fc.bias[0] == round(0.5 * 255)            # b' / (1 * 1/255) = 127.5 -> 128
    # the constant membrane 0.5 crosses theta(t) = exp(-(t + 0.5)/2) = 0.78, 0.47 at t = 1
    trace = golden.run(net, np.zeros((1, 2), np.uint8))
    assert trace.times[0][0, 0] == 1


@pytest.mark.parametrize("kwargs, message", [
    ({"weight_bits": 1}, r"weight_bits: expected an int in 2\.\.16, got 1"),
    ({"weight_bits": 17}, r"weight_bits: expected an int in 2\.\.16, got 17"),
    ({"kernel_bits": True}, r"kernel_bits: expected an int in 2\.\.16, got True"),
    ({"kernel_bits": 8.0}, r"kernel_bits: expected an int in 2\.\.16, got 8\.0"),
    ({"name": "2bad"}, r"model name: '2bad' is not an identifier"),
])
def test_bad_options_are_refused(kwargs, message):
    with pytest.raises(ValueError, match=message):
        quantize(hand_network(), **kwargs)


def test_unsupported_layer_is_refused():
    pool = FloatLayer("avgpool2d", "avg", (1, 2, 2), (1, 1, 1), size=2, stride=2)
    with pytest.raises(QuantizeError, match=r"layer 'avg': kind 'avgpool2d' is not supported"):
        quantize(float_net([pool], input_shape=(1, 2, 2)))


def test_bad_kernel_parameters_are_refused():
    hidden = dense("fc", [[1.0, 1.0]], [0.0], tau=0.0)
    with pytest.raises(QuantizeError, match=r"layer 'fc': kernel parameters tau=0.0"):
        quantize(float_net([FLAT2, hidden, dense("out", [[1.0]], [0.0], kind="output")]))


def test_accumulator_bound_too_big_names_the_layer():
    # 16-bit weights: M = 32767 * 255 * 300 = 2.5e9 > 2^31 - 2
    n = 300
    hidden = FloatLayer("dense", "wide", (n,), (1,), np.ones((1, n)), np.zeros(1), tau=2.0,
                        td=0.0)
    fnet = float_net([FloatLayer("flatten", "flat", (1, 1, n), (n,)), hidden,
                      dense("out", [[1.0]], [0.0], kind="output")], input_shape=(1, 1, n))
    with pytest.raises(QuantizeError, match=r"layer 'wide': accumulator bound M = 2506675500 "
                                            r"needs more than 32 bits"):
        quantize(fnet, weight_bits=16)
    assert quantize(fnet, weight_bits=15).info[1].acc_bound + 1 <= ACC_LIMIT


def test_huge_bias_is_refused():
    hidden = dense("fc", [[1e-9, 0.0]], [1e3])
    with pytest.raises(QuantizeError, match=r"layer 'fc': bias .* does not fit 32 bits"):
        quantize(float_net([FLAT2, hidden, dense("out", [[1.0]], [0.0], kind="output")]))


def test_shape_mismatch_is_refused():
    hidden = FloatLayer("dense", "fc", (2,), (3,), np.ones((2, 2)), np.zeros(2), tau=2.0, td=0.0)
    with pytest.raises(QuantizeError, match=r"layer 'fc': the float network says output shape"):
        quantize(float_net([FLAT2, hidden, dense("out", [[1.0, 1.0]], [0.0], kind="output")]))


def random_feature_network(dataset, coding: str) -> FloatNetwork:
    """A random hidden layer (tau 4, T 16) with a ridge-regression read-out of its decoded
    spikes: a cheap, deterministic, reasonably accurate (about 93 %) TTFS network."""
    rng = np.random.default_rng(0)
    h = 128
    w1, b1 = rng.normal(0, 0.25, (h, 64)), rng.normal(0, 0.2, h)

    def build(w2, b2):
        layers = [FloatLayer("flatten", "flat", (1, 8, 8), (64,)),
                  FloatLayer("dense", "fc1", (64,), (h,), w1, b1, tau=4.0, td=0.0),
                  FloatLayer("output", "out", (h,), (10,), w2, b2)]
        ttfs = coding == "ttfs"
        return float_net(layers, T=16, input_shape=(1, 8, 8), coding=coding,
                         input_tau=3.0 if ttfs else None, input_td=0.0 if ttfs else None,
                         num_classes=10)

    trace = simulate.run_closed_form(build(np.zeros((10, h)), np.zeros(10)),
                                     dataset.train_images)
    a = simulate.decode(trace.times[0], 4.0, 0.0, T=16)
    a = np.c_[a, np.ones(len(a))]
    sol = np.linalg.solve(a.T @ a + 1e-2 * np.eye(h + 1), a.T @ np.eye(10)[dataset.train_labels])
    return build(sol[:h].T, sol[h])


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits")


@pytest.mark.parametrize("coding, max_gap, min_agreement", [("real", 0.01, 0.98),
                                                             ("ttfs", 0.02, 0.95)])
def test_integer_accuracy_close_to_float(digits, coding, max_gap, min_agreement):
    fnet = random_feature_network(digits, coding)
    cmp = report.compare(fnet, quantize(fnet), digits.test_images, digits.test_labels)
    assert cmp.float.accuracy > 0.9
    assert abs(cmp.integer.accuracy - cmp.float.accuracy) <= max_gap
    assert cmp.agreement >= min_agreement
    assert cmp.integer.spikes_per_neuron == pytest.approx(cmp.float.spikes_per_neuron, rel=0.02)
    # fewer bits lose accuracy: 3-bit weights and kernels are visibly worse
    coarse = report.compare(fnet, quantize(fnet, weight_bits=3, kernel_bits=3),
                            digits.test_images, digits.test_labels, float_side=cmp.float)
    assert coarse.agreement < cmp.agreement
