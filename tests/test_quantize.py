"""Quantizer (sdk/quantize.py): rounding, tables, a hand-quantized network, refusals, accuracy."""

from __future__ import annotations

import decimal

import numpy as np
import pytest

from ttfs.sdk import golden, report, simulate
from ttfs.sdk.data import load_dataset
from ttfs.sdk.floatnet import FloatLayer, FloatNetwork
from ttfs.sdk.ir import ACC_LIMIT, Dense, Output
from ttfs.sdk.quantize import (QuantizeError, input_time_table, kernel_table, quantize,
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


@pytest.mark.parametrize("tau, td, message", [
    (0.0, 0.0, r"tau = 0.0 is below the minimum"),
    (1e-300, 0.0, r"tau = 1e-300 is below the minimum"),
    (float("nan"), 0.0, r"tau = nan is not a finite number"),
    (2.0, float("inf"), r"td = inf is not a finite number"),
    # exp(td / tau) = exp(1e4) would be Infinity in x_max and sigma
    (10.0, 1e5, r"need exp of 1e\+04, beyond \+-700"),
    # theta(T-1) = exp(-(T - 1 + q) / tau) = exp(-750) would be 0 (T = 8)
    (0.01, 0.0, r"need exp of 750, beyond"),
])
def test_bad_kernel_parameters_are_refused(tau, td, message):
    hidden = dense("fc", [[1.0, 1.0]], [0.0], tau=tau, td=td)
    fnet = float_net([FLAT2, hidden, dense("out", [[1.0]], [0.0], kind="output")], T=8)
    with pytest.raises(QuantizeError,
                       match=r"layer 'fc': kernel parameters tau=.*, td=.*: .*" + message):
        quantize(fnet)


@pytest.mark.parametrize("q", [float("nan"), -0.1, 1.5, float("inf")])
def test_bad_q_is_refused(q):
    with pytest.raises(QuantizeError, match=r"q: expected a finite number in \[0, 1\]"):
        quantize(float_net([FLAT2, dense("fc", [[1.0, 1.0]], [0.0]),
                            dense("out", [[1.0]], [0.0], kind="output")], q=q))


def test_one_bit_weights_are_refused_with_the_reason():
    with pytest.raises(QuantizeError, match=r"weight_bits: expected an int in 2\.\.16, got 1 "
                                            r"\(1-bit weights have no symmetric"):
        quantize(hand_network(), weight_bits=1)


def test_bit_widths_default_to_the_run_config():
    import dataclasses
    fnet = dataclasses.replace(hand_network(), weight_bits=3, kernel_bits=5)
    net = quantize(fnet)
    assert (net.weight_bits, net.kernel_bits) == (3, 5)
    assert quantize(fnet, weight_bits=6).weight_bits == 6          # explicit wins
    assert quantize(hand_network()).weight_bits == 8                # no config: 8
    with pytest.raises(QuantizeError, match=r"kernel_bits: expected an int in 2\.\.16, got 1"):
        quantize(dataclasses.replace(hand_network(), kernel_bits=1))


def test_bit_widths_come_from_the_run_directory(tmp_path):
    from ttfs.sdk import randnet
    from ttfs.sdk.floatnet import load_float_network
    config, arrays = randnet.random_run(0)
    run = randnet.write_run(tmp_path / "qat", {**config, "weight_bits": 4, "kernel_bits": None},
                            arrays)
    net = quantize(load_float_network(run))
    assert (net.weight_bits, net.kernel_bits) == (4, 8)
    assert int(np.abs(net.layers[1].weight).max()) == 7


def test_exponentials_are_correctly_rounded_and_avoid_numpy_exp(monkeypatch):
    from fractions import Fraction
    from ttfs.sdk.quantize import exp_exact, kernel_exps, threshold_exps
    # exp(1) = 2.718281828459045 (float64 nearest of 2.71828182845904523536...)
    assert exp_exact(Fraction(1)) == 2.718281828459045
    # exp(-1/3) agrees with decimal at 80 digits rounded to float64
    ctx = decimal.Context(prec=80)
    assert exp_exact(Fraction(-1, 3)) == float(ctx.exp(ctx.divide(-1, 3)))
    # the exponent is exact: (td - q - t)/tau with td = 0.1, q = 0.5 as float64 values
    assert threshold_exps(1, 3.0, 0.1, 0.5)[0] == exp_exact(
        (Fraction(0.1) - Fraction(0.5)) / 3)

    def forbidden(*args, **kwargs):
        raise AssertionError("numpy exp/log used on the quantization path")

    for fn in ("exp", "log", "expm1", "log1p", "power"):
        monkeypatch.setattr(np, fn, forbidden)
    net = quantize(hand_network(), weight_bits=4, kernel_bits=4, name="hand")
    assert net.layers[1].theta.tolist() == [1391, 844, 512, 311]
    assert kernel_exps(2, 2.0)[1] == exp_exact(Fraction(-1, 2))


PINNED_HASH = "sha256:5f1220de898898e0fed0d45efb13391eaacce6a226036762caee7e0db4813f2e"


def test_content_hash_of_a_fixed_model_is_pinned():
    """The same arrays give the same hash on every machine (correctly rounded tables, no
    float fields in the hash). A change here is a format change: update it deliberately."""
    # fixed arrays from integer arithmetic only (no random stream, no libm)
    w1 = ((np.arange(144) * 37) % 61 - 30).reshape(16, 9) / 100
    w2 = ((np.arange(48) * 23) % 41 - 20).reshape(3, 16) / 50
    layers = [FloatLayer("flatten", "flat", (1, 3, 3), (9,)),
              FloatLayer("dense", "fc1", (9,), (16,), w1, np.linspace(-0.2, 0.3, 16),
                         tau=3.7, td=0.25),
              FloatLayer("output", "out", (16,), (3,), w2, np.zeros(3))]
    fnet = float_net(layers, T=24, input_shape=(1, 3, 3), coding="ttfs", input_tau=2.9,
                     input_td=0.1, num_classes=3)
    net = quantize(fnet, name="pinned")
    assert net.content_hash == PINNED_HASH


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



def test_export_is_byte_identical_without_the_cpu_simd_features(tmp_path):
    """ttfs-export in two processes, one with numpy's SIMD dispatch narrowed (AVX-512, and
    AVX2/FMA3 which this machine has), gives the same files byte for byte."""
    import os
    import subprocess
    import sys

    from ttfs.sdk import randnet
    run = randnet.write_run(tmp_path / "run", *randnet.random_run(3, plan="cnn",
                                                                   input_coding="ttfs", T=12))
    outs = {}
    for label, features in (("default", None), ("narrow", "AVX512F AVX512CD AVX512_SKX "
                                                 "AVX512_CLX AVX512_CNL AVX512_ICL X86_V4 "
                                                 "X86_V3 AVX2 FMA3")):
        env = {k: v for k, v in os.environ.items() if k != "NPY_DISABLE_CPU_FEATURES"}
        if features:
            env["NPY_DISABLE_CPU_FEATURES"] = features
        out = tmp_path / label
        result = subprocess.run([sys.executable, "-m", "ttfs.codegen.export_cli", str(run),
                                 "--target", "mcu", "-o", str(out), "--vectors", "5"], env=env,
                                capture_output=True, text=True, timeout=300)
        assert result.returncode == 0, result.stderr
        outs[label] = {p.relative_to(out): p.read_bytes() for p in sorted(out.rglob("*"))
                       if p.is_file()}
    assert outs["default"].keys() == outs["narrow"].keys() and len(outs["default"]) > 3
    for path, data in outs["default"].items():
        assert outs["narrow"][path] == data, f"{path} differs"
