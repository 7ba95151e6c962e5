"""Golden vectors (sdk/vectors.py): class-stratified selection, corner vectors, table coverage."""

from __future__ import annotations

import numpy as np
import pytest

from ttfs.sdk import golden, randnet, vectors
from ttfs.sdk.ir import Dense, Flatten, Network, Output


def i32(values) -> np.ndarray:
    return np.asarray(values, dtype=np.int32)


def test_select_images_is_stratified_and_deterministic():
    # the first 100 labels are all 0 (like mnist5k's test set): a prefix would see one class
    labels = np.concatenate([np.zeros(100, np.int64), np.repeat(np.arange(1, 10), 20)])
    images = np.zeros((len(labels), 4), np.uint8)
    idx = vectors.select_images(images, labels, 30)
    assert len(idx) == 30 and len(set(idx.tolist())) == 30
    assert set(labels[idx[:10]].tolist()) == set(range(10))     # one per class per round
    assert np.bincount(labels[idx], minlength=10).tolist() == [3] * 10
    np.testing.assert_array_equal(idx, vectors.select_images(images, labels, 30))
    assert not np.array_equal(idx, vectors.select_images(images, labels, 30, seed=1))
    # a class that runs out drops out of the rotation; n = all gives a permutation
    every = vectors.select_images(images, labels, len(labels))
    assert sorted(every.tolist()) == list(range(len(labels)))
    assert len(vectors.select_images(images, labels, 0)) == 0
    with pytest.raises(ValueError, match=r"n: expected 0\.\.280, got 281"):
        vectors.select_images(images, labels, 281)
    with pytest.raises(ValueError, match=r"labels: expected 280 entries, got 3"):
        vectors.select_images(images, labels[:3], 2)


def toy() -> Network:
    """Two pixels -> fc (2 neurons, T = 4) -> out: the toy of test_golden."""
    fc = Dense("fc", i32([[2, -1], [1, 1]]), i32([0, -100]), theta=i32([300, 200, 100, 50]),
               kernel=i32([10, 6, 3, 1]))
    return Network("toy", T=4, weight_bits=4, kernel_bits=4, input_shape=(1, 1, 2),
                   input_coding="real",
                   layers=(Flatten("flat"), fc, Output("out", i32([[1, 2], [3, -1]]),
                                                       i32([0, 1]))))


def test_table_coverage_by_hand():
    net = toy()
    # times [[2, 3], [0, 2], [4, 4]] (test_two_layer_toy_by_hand): fired at t = 0, 2, 3
    trace = golden.run(net, np.array([[100, 50], [255, 0], [0, 0]], np.uint8))
    cov = vectors.table_coverage(net, trace)
    # reachable: the largest membrane is max(0 + 255*2, -100 + 255*2) = 510 >= theta[0] = 300
    assert cov == {"fc": {"theta": [3, 4], "kernel": [3, 4], "T": 4, "missing": [1]}}
    assert "fc: theta 3/4, kernel 3/4 reachable entries hit (T = 4), missing t = [1]" == \
        vectors.format_coverage(cov)


def test_unreachable_entries_are_not_counted():
    # theta[0] = 600 > 510 (no input reaches it); theta[3] = theta[2] (fires at 2 first)
    fc = Dense("fc", i32([[2, -1]]), i32([0]), theta=i32([600, 200, 100, 100]),
               kernel=i32([10, 6, 3, 1]))
    net = Network("u", T=4, weight_bits=4, kernel_bits=4, input_shape=(1, 1, 2),
                  input_coding="real", layers=(Flatten("flat"), fc,
                                               Output("out", i32([[1]]), i32([0]))))
    assert vectors.reachable_entries(net) == {"fc": {1, 2}}


def first_layer_u(net: Network, images: np.ndarray) -> np.ndarray:
    first = next(i for i, layer in enumerate(net.layers) if layer.kind in ("dense", "conv2d"))
    v = golden.as_images(net, images).astype(np.int64)
    if net.layers[0].kind == "flatten":
        v = v.reshape(len(v), -1)
    u = golden.integrate(net.layers[first], v, net.info[first].acc_bound)
    return u.reshape(len(u), -1), net.layers[first]


@pytest.mark.parametrize("plan", sorted(randnet.PLANS))
def test_corner_images_hit_the_corners_of_the_contract(plan):
    net = randnet.random_network(3, plan=plan, T=8)
    images = vectors.corner_images(net)
    assert images.dtype == np.uint8 and images.shape[1] == net.n_inputs
    assert not images[0].any() and (images[1] == 255).all()
    assert set(images[2].tolist()) == set(range(256)) or net.n_inputs < 256
    np.testing.assert_array_equal(images, vectors.corner_images(net))    # deterministic
    u, layer = first_layer_u(net, images)
    theta = layer.theta.astype(np.int64)
    reach = vectors.reachable_entries(net)[layer.name]
    # an exact tie u == Theta[t] (fires at t by >=) and one below, for every reachable t
    for t in reach:
        assert (u == theta[t]).any(), f"no tie at t = {t}"
        assert (u == theta[t] - 1).any(), f"nothing just below Theta[{t}]"
    assert ((u > 0) & (u < theta[-1])).any()                            # dead zone
    # the extreme accumulators of the first layer: every excitatory (inhibitory) pixel at 255
    if layer.kind == "dense":
        w = layer.weight.astype(np.int64)
        assert u.max() == (layer.bias + 255 * np.maximum(w, 0).sum(axis=1)).max()
        assert u.min() == (layer.bias + 255 * np.minimum(w, 0).sum(axis=1)).min()
    cov = vectors.table_coverage(net, golden.run(net, images))
    assert cov[layer.name]["missing"] == []


def test_corner_images_cover_every_entry_of_a_cnn():
    net = randnet.random_network(3, plan="cnn", T=8)
    trace = golden.run(net, vectors.corner_images(net))
    cov = vectors.table_coverage(net, trace)
    assert all(c["missing"] == [] and c["theta"][1] == 8 for c in cov.values()), cov
    # conv0's biases all lie below Theta[T-1]: the all-0 image silences it
    assert (trace.times[0][0] == net.T).all()


def test_silent_layers_are_kept():
    net = randnet.random_network(3, plan="mlp", mode="silent", T=8)
    trace = golden.run(net, vectors.corner_images(net))
    for times in trace.times:
        assert (times == net.T).all()


def test_ttfs_coverage_includes_the_input_layer():
    net = randnet.random_network(3, plan="mlp", T=8, input_coding="ttfs")
    cov = vectors.table_coverage(net, golden.run(net, vectors.corner_images(net)))
    assert cov["input"]["missing"] == [] and cov["input"]["theta"][0] > 0


def test_save_load_round_trip_with_labels_and_kind(tmp_path):
    net = randnet.random_network(1, plan="mlp")
    images = randnet.random_images(1, net, 3)
    made = vectors.make(net, images, labels=[-1, -1, 4, 2, 7],
                        kind=["corner", "corner", "image", "image", "image"])
    vectors.save(made, tmp_path / "v.npz")
    back = vectors.load(tmp_path / "v.npz")
    np.testing.assert_array_equal(back.inputs, made.inputs)
    np.testing.assert_array_equal(back.labels, [-1, -1, 4, 2, 7])
    assert back.kind.tolist() == ["corner", "corner", "image", "image", "image"]
    assert golden.first_divergence(made.trace, back.trace) is None
    two = back.head(2)
    assert len(two) == 2 and len(two.trace) == 2 and two.kind.tolist() == ["corner"] * 2
    plain = vectors.make(net, images)
    vectors.save(plain, tmp_path / "p.npz")
    assert vectors.load(tmp_path / "p.npz").labels is None
    with pytest.raises(ValueError, match=r"labels: expected 5 entries, got 1"):
        vectors.make(net, images, labels=[1])


def test_mnist5k_selection_has_every_class():
    # the first 100 test images of mnist5k are all digit 0; the selection is stratified
    from ttfs.sdk.data import load_dataset
    data = load_dataset("mnist5k")
    assert set(data.test_labels[:100].tolist()) == {0}
    idx = vectors.select_images(data.test_images, data.test_labels, 100)
    assert np.bincount(data.test_labels[idx], minlength=10).tolist() == [10] * 10
