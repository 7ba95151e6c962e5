"""Golden simulator (sdk/golden.py): hand-computed cases and a naive loop implementation."""

from __future__ import annotations

import dataclasses
import itertools

import numpy as np
import pytest

from ttfs.sdk import golden, randnet, reference
from ttfs.sdk.ir import (ACC_LIMIT, Conv2d, Dense, Flatten, MaxPool2d, Network,
                    Output, TTFSFormatError)


def i32(values) -> np.ndarray:
    return np.asarray(values, dtype=np.int32)


def toy(out_bias=(0, 1)) -> Network:
    """Two pixels -> fc (2 spiking neurons, T = 4) -> out (2 classes)."""
    fc = Dense("fc", i32([[2, -1], [1, 1]]), i32([0, -100]), theta=i32([300, 200, 100, 50]),
               kernel=i32([10, 6, 3, 1]))
    out = Output("out", i32([[1, 2], [3, -1]]), i32(out_bias))
    return Network("toy", T=4, weight_bits=4, kernel_bits=4, input_shape=(1, 1, 2),
                   input_coding="real", layers=(Flatten("flat"), fc, out))


def test_two_layer_toy_by_hand():
    net = toy()
    trace = golden.run(net, np.array([[100, 50], [255, 0], [0, 0]], np.uint8))
    # [100, 50]: u = [2*100 - 50, -100 + 100 + 50] = [150, 50]
    #            150 >= theta[2] = 100 (not 200) -> t = 2;  50 >= theta[3] = 50 -> t = 3
    #            operands kernel[2], kernel[3] = 3, 1
    #            scores = [3 + 2*1, 1 + 3*3 - 1] = [5, 9] -> class 1
    # [255, 0]:  u = [510, 155] -> t = [0 (saturated, 510 >= 300), 2] -> operands [10, 3]
    #            scores = [10 + 6, 1 + 30 - 3] = [16, 28] -> class 1
    # [0, 0]:    u = [0, -100] -> both silent (T = 4) -> scores = bias = [0, 1]
    assert trace.layer_names == ("fc",)
    np.testing.assert_array_equal(trace.times[0], [[2, 3], [0, 2], [4, 4]])
    np.testing.assert_array_equal(trace.scores, [[5, 9], [16, 28], [0, 1]])
    np.testing.assert_array_equal(trace.classes, [1, 1, 1])
    np.testing.assert_array_equal(trace.spike_counts, [[2], [2], [0]])
    np.testing.assert_array_equal(trace.input_spikes, [0, 0, 0])
    # SOPs: only the output layer is fed by spikes; fan-out 2 per spike
    np.testing.assert_array_equal(trace.sops, [4, 4, 0])
    assert trace.scores.dtype == np.int32 and trace.times[0].dtype == np.int32
    # accumulator bounds: fc max(0 + 3*255, 100 + 2*255) = 765; out max(3*10, 1 + 4*10) = 41
    assert [info.acc_bound for info in net.info] == [0, 765, 41]


def test_ties_pick_the_first_class():
    trace = golden.run(toy(out_bias=(5, 5)), np.zeros((1, 2), np.uint8))
    np.testing.assert_array_equal(trace.scores, [[5, 5]])
    assert trace.classes[0] == 0


def single(theta, bias, weight=((1,),), T=4) -> Network:
    fc = Dense("fc", i32(weight), i32(bias), theta=i32(theta), kernel=i32([7] * T))
    return Network("one", T=T, weight_bits=8, kernel_bits=4, input_shape=(1, 1, 1),
                   input_coding="real",
                   layers=(Flatten("flat"), fc, Output("out", i32([[1]]), i32([0]))))


@pytest.mark.parametrize("pixel, expected", [
    (255, 0),   # u = 255 >= theta[0] = 40: saturation at t = 0
    (40, 0),    # u = theta[0] exactly: fires (>=) at t = 0
    (39, 1),    # just below theta[0], at theta[1] = 30
    (10, 3),    # theta[3] = 10: the last step
    (9, 4),     # dead zone: 0 < u < theta[T-1] never fires -> NO_SPIKE = T
    (0, 4),     # u = 0 never fires
])
def test_saturation_and_dead_zone(pixel, expected):
    trace = golden.run(single([40, 30, 20, 10], [0]), np.array([[pixel]], np.uint8))
    assert trace.times[0][0, 0] == expected
    assert trace.scores[0, 0] == (7 if expected < 4 else 0)


def test_negative_membrane_never_fires():
    trace = golden.run(single([1, 1, 1, 1], [-300]), np.array([[255]], np.uint8))
    assert trace.times[0][0, 0] == 4


def pool_net() -> Network:
    """1x4x4 image -> 1x1 conv (identity, theta by pixel) -> 2x2 pool -> out."""
    conv = Conv2d("conv", i32([[[[1]]]]), i32([0]), theta=i32([200, 100, 50, 25]),
                  kernel=i32([8, 4, 2, 1]))
    return Network("pool", T=4, weight_bits=4, kernel_bits=4, input_shape=(1, 4, 4),
                   input_coding="real",
                   layers=(conv, MaxPool2d("pool", 2), Flatten("flat"),
                           Output("out", i32([[1, 2, 3, 4]]), i32([0]))))


def test_max_pool_takes_the_earliest_spike_and_handles_ties_and_silence():
    image = np.array([[[[60, 60, 0, 0],        # window (0,0): times 2, 2, 2, 3 -> 2 (tie)
                        [60, 30, 0, 0],        # window (0,1): all silent -> NO_SPIKE = 4
                        [255, 0, 120, 120],    # window (1,0): 0, 4, 4, 4 -> 0
                        [0, 0, 120, 120]]]],   # window (1,1): four ties at t = 1 -> 1
                     np.uint8)
    trace = golden.run(pool_net(), image)
    assert trace.layer_names == ("conv", "pool")
    np.testing.assert_array_equal(trace.times[0][0, 0], [[2, 2, 4, 4], [2, 3, 4, 4],
                                                         [0, 4, 1, 1], [4, 4, 1, 1]])
    np.testing.assert_array_equal(trace.times[1][0, 0], [[2, 4], [0, 1]])
    # operands kernel[t] = [2, 0, 8, 4]; score = 1*2 + 2*0 + 3*8 + 4*4 = 42
    assert trace.scores[0, 0] == 42
    # SOPs: the output sees 3 pooled spikes with fan-out 1
    assert trace.sops[0] == 3


def test_all_silent_input():
    for plan, coding in itertools.product(randnet.PLANS, ("real", "ttfs")):
        net = randnet.random_network(3, plan=plan, input_coding=coding)
        trace = golden.run(net, np.zeros((1, net.n_inputs), np.uint8))
        first = net.spiking_layers[0]
        if coding == "ttfs":
            assert trace.input_spikes[0] == 0
        # with no input events the first layer's membrane is its bias everywhere
        u = first.bias.astype(np.int64)
        expected = golden.first_crossing(u, first.theta)
        got = trace.times[0][0]
        assert np.all(got == expected.reshape((-1,) + (1,) * (got.ndim - 1)))


def assert_traces_equal(expected: golden.Trace, got: golden.Trace) -> None:
    """Bit-exact equality of every field of two traces, naming the first divergence."""
    div = golden.first_divergence(expected, got)
    assert div is None, str(div)
    for key in ("scores", "classes", "spike_counts", "input_spikes", "sops"):
        np.testing.assert_array_equal(getattr(got, key), getattr(expected, key), err_msg=key)
        assert getattr(got, key).dtype == getattr(expected, key).dtype, key
    for a, b in zip(expected.times, got.times):
        assert a.shape == b.shape and a.dtype == b.dtype


@pytest.mark.parametrize("plan, mode, coding", [
    *[(plan, mode, "real") for plan in randnet.PLANS for mode in randnet.MODES],
    *[(plan, mode, "ttfs") for plan in randnet.PLANS for mode in ("typical", "saturate")],
])
def test_fast_path_matches_the_loop_reference(plan, mode, coding):
    for seed in (11, 12):
        net = randnet.random_network(seed, plan=plan, mode=mode, input_coding=coding)
        images = randnet.random_images(seed, net, 6)
        assert_traces_equal(reference.run(net, images), golden.run(net, images))


def test_reference_by_hand():
    # the toy network of test_two_layer_toy_by_hand, through the loops
    trace = reference.run(toy(), np.array([[100, 50], [255, 0], [0, 0]], np.uint8))
    np.testing.assert_array_equal(trace.times[0], [[2, 3], [0, 2], [4, 4]])
    np.testing.assert_array_equal(trace.scores, [[5, 9], [16, 28], [0, 1]])
    np.testing.assert_array_equal(trace.sops, [4, 4, 0])


def test_a_broken_fast_path_is_caught(monkeypatch):
    """The comparison can fail: an off-by-one in the fast path's threshold search shows up
    as a divergence named by layer, sample and neuron."""
    net = randnet.random_network(11, plan="cnn", mode="typical")
    images = randnet.random_images(11, net, 6)
    expected = reference.run(net, images)
    real = golden.first_crossing
    monkeypatch.setattr(golden, "first_crossing",
                        lambda u, theta: np.minimum(real(u, theta) + 1, len(theta)))
    div = golden.first_divergence(expected, golden.run(net, images))
    assert div is not None and div.layer == net.layers[0].name and div.got == div.expected + 1
    assert div.to_dict() == {"layer": div.layer, "sample": div.sample, "neuron": div.neuron,
                             "time": div.expected, "expected": div.expected, "got": div.got}


def test_conv_padding_and_stride_by_hand():
    # 1x3x3 image, 2x2 kernel of ones, stride 2, padding 1 -> 2x2 output; each output sees
    # the pixels of its window inside the image: (0,0) -> [0,0]; (0,1) -> [0,1],[0,2];
    # (1,0) -> [1,0],[2,0]; (1,1) -> [1,1],[1,2],[2,1],[2,2]
    conv = Conv2d("conv", np.ones((1, 1, 2, 2), np.int32), i32([0]),
                  theta=i32([1000, 1000]), kernel=i32([3, 1]), stride=2, padding=1)
    net = Network("cv", T=2, weight_bits=2, kernel_bits=2, input_shape=(1, 3, 3),
                  input_coding="real", layers=(conv, Flatten("flat"),
                                               Output("out", np.ones((1, 4), np.int32), i32([0]))))
    image = np.arange(1, 10, dtype=np.uint8).reshape(1, 1, 3, 3)  # 1..9 row-major
    u = golden.integrate(conv, image.astype(np.int64), net.info[0].acc_bound)
    np.testing.assert_array_equal(u[0, 0], [[1, 2 + 3], [4 + 7, 5 + 6 + 8 + 9]])
    assert net.info[1].in_shape == (1, 2, 2)


def edge_network(bias: int) -> Network:
    """One neuron whose bound M = |bias| + 127 * 255 sits at the 31-bit edge."""
    m = abs(bias) + 127 * 255
    fc = Dense("fc", i32([[127]]), i32([bias]),
               theta=i32([min(m + 1, ACC_LIMIT), max(m, 1), 1]), kernel=i32([255, 100, 1]))
    return Network("edge", T=3, weight_bits=8, kernel_bits=8, input_shape=(1, 1, 1),
                   input_coding="real",
                   layers=(Flatten("flat"), fc, Output("out", i32([[1]]), i32([0]))))


def test_accumulator_at_the_edge_of_31_bits():
    bias = ACC_LIMIT - 1 - 127 * 255            # M = 2^31 - 2, so M + 1 = 2^31 - 1 fits
    net = edge_network(bias)
    assert net.info[1].acc_bound == 2**31 - 2 and net.info[1].acc_bits == 32
    trace = golden.run(net, np.array([[255], [0]], np.uint8))
    # u = M reaches theta[1] = M but not theta[0] = M + 1; u = bias alone also >= 1
    np.testing.assert_array_equal(trace.times[0], [[1], [2]])
    with pytest.raises(TTFSFormatError, match=r"fc: accumulator bound M = 2147483647 needs "
                                              r"more than 32 bits"):
        edge_network(bias + 1)


def test_accumulator_at_the_negative_edge():
    net = edge_network(-(ACC_LIMIT - 1 - 127 * 255))      # u = -M + 127 * 255 * pixel
    assert net.info[1].acc_bound == 2**31 - 2
    trace = golden.run(net, np.array([[0], [255]], np.uint8))
    np.testing.assert_array_equal(trace.times[0], [[3], [3]])


def test_first_divergence_names_layer_sample_and_neuron():
    net = randnet.random_network(2, plan="cnn")
    trace = golden.run(net, randnet.random_images(1, net, 4))
    assert golden.first_divergence(trace, trace) is None
    times = [t.copy() for t in trace.times]
    times[1][3, 2, 1, 0] += 1                      # pool layer, sample 3, channel 2, (1, 0)
    times[2][0, 0] += 1                            # a later layer differs too, earlier sample
    got = dataclasses.replace(trace, times=tuple(times))
    div = golden.first_divergence(trace, got)
    assert div.layer == trace.layer_names[1] and div.sample == 3
    assert div.index == (2, 1, 0)
    assert div.neuron == np.ravel_multi_index((2, 1, 0), trace.times[1].shape[1:])
    assert div.got == div.expected + 1
    assert str(div) == (f"first divergence at layer '{trace.layer_names[1]}', sample 3, neuron "
                        f"{div.neuron} (index (2, 1, 0)): expected spike time {div.expected}, "
                        f"got {div.got}")
    classes = trace.classes.copy()
    classes[1] = (classes[1] + 1) % net.n_outputs
    div = golden.first_divergence(trace, dataclasses.replace(trace, classes=classes))
    assert str(div).startswith("first divergence at layer 'classes', sample 1, neuron 0")
    assert "expected class" in str(div)


def test_first_divergence_refuses_traces_of_different_networks():
    a = golden.run(randnet.random_network(1, plan="mlp"), np.zeros((1, 16), np.uint8))
    b = golden.run(randnet.random_network(1, plan="mlp", input_coding="ttfs"),
                   np.zeros((1, 16), np.uint8))
    with pytest.raises(ValueError, match="different layers"):
        golden.first_divergence(a, b)


def test_format_trace():
    net = toy()
    trace = golden.run(net, np.array([[100, 50], [0, 0]], np.uint8))
    text = golden.format_trace(net, trace, sample=0)
    assert text == (f"# golden trace of 'toy' sample 0 (T = 4, NO_SPIKE = 4, hash "
                    f"{net.content_hash})\n"
                    "fc: shape [2], 2 spikes\n"
                    "       0 t=2\n"
                    "       1 t=3\n"
                    "scores: 5 9\n"
                    "class: 1\n")
    assert "fc: shape [2], 0 spikes\nscores: 0 1\n" in golden.format_trace(net, trace, 1)


def test_images_are_checked():
    net = toy()
    with pytest.raises(ValueError, match="expected uint8 bytes, got int64"):
        golden.run(net, np.zeros((1, 2), np.int64))
    with pytest.raises(ValueError,
                       match=r"expected shape \[N, 1, 1, 2\] or \[N, 2\], got \[1, 3\]"):
        golden.run(net, np.zeros((1, 3), np.uint8))
    assert len(golden.run(net, np.zeros((0, 2), np.uint8))) == 0


def test_chunking_does_not_change_results():
    net = randnet.random_network(4, plan="cnn")
    images = randnet.random_images(2, net, golden.CHUNK + 5)
    whole = golden.run(net, images)
    parts = [golden.run(net, images[i:i + 7]) for i in range(0, len(images), 7)]
    np.testing.assert_array_equal(whole.scores, np.concatenate([p.scores for p in parts]))
    for k in range(len(whole.times)):
        np.testing.assert_array_equal(whole.times[k],
                                      np.concatenate([p.times[k] for p in parts]))


def test_chunks_shrink_to_the_memory_budget(monkeypatch):
    from ttfs.sdk import limits
    net = randnet.random_network(4, plan="cnn")
    images = randnet.random_images(2, net, 40)
    whole = golden.run(net, images)
    per_sample, fixed, _ = limits.working_set(net.steps)
    monkeypatch.setattr(limits, "SIM_BUDGET_BYTES", fixed + 3 * per_sample)
    assert limits.chunk_size(net.steps) == 3
    assert_traces_equal(whole, golden.run(net, images))
