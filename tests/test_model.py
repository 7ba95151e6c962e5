"""Torch model: layer specs, architectures, state-dict keys, BN folding into the float network."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ttfs.sdk.floatnet import NetworkError, check_layer_specs, layer_shapes
from ttfs.sdk.model import ARCHITECTURES, TTFSNet, architecture, build_model, classes, parse_arch
from ttfs.sdk.quantize import quantize


def make(arch="cnn", shape=(1, 28, 28), coding="real", seed=0):
    torch.manual_seed(seed)
    return TTFSNet(ARCHITECTURES[arch](shape, 10), shape, T=16, q=0.5, tau0=5.0, td0=0.0,
                   input_coding=coding)


def test_state_dict_keys_follow_the_run_directory_contract():
    model = make("cnn", coding="ttfs")
    keys = {k for k in model.state_dict() if not k.endswith("num_batches_tracked")}
    expected = {"input.tau", "input.td", "out.weight", "out.bias"}
    for name in ("conv1", "conv2", "fc1"):
        expected |= {f"{name}.{k}" for k in ("weight", "bias", "tau", "td", "bn.weight",
                                             "bn.bias", "bn.running_mean", "bn.running_var")}
    assert keys == expected
    assert model.state_dict()["conv2.weight"].shape == (32, 16, 5, 5)
    assert model.state_dict()["fc1.weight"].shape == (128, 32 * 7 * 7)
    assert model.state_dict()["conv1.tau"].shape == (1,)
    assert "input.tau" not in make("mlp").state_dict()


def test_mlp_is_784_256_10_and_kernel_bookkeeping():
    model = make("mlp")
    assert model.state_dict()["fc1.weight"].shape == (256, 784)
    assert model.state_dict()["out.weight"].shape == (10, 256)
    assert model.kernel_names == ["fc1"] and model.kernel_neurons == [256]
    ttfs = make("cnn", coding="ttfs")
    assert ttfs.kernel_names == ["input", "conv1", "conv2", "fc1"]
    assert ttfs.kernel_neurons == [784, 16 * 28 * 28, 32 * 14 * 14, 128]
    assert len(ttfs.kernel_parameters()) == 8
    assert len(ttfs.weight_parameters()) == len(list(ttfs.parameters())) - 8


def test_vgg16_builds_and_runs_on_cifar_shapes():
    model = make("vgg16", shape=(3, 32, 32))
    shapes = layer_shapes(model.specs, (3, 32, 32))
    assert sum(s["kind"] == "conv2d" for s in model.specs) == 13
    assert shapes[-4][1] == (512 * 1 * 1,)                       # flatten after 5 pools
    model.eval()
    scores, activations = model.run(torch.rand(2, 3, 32, 32))
    assert scores.shape == (2, 10) and len(activations) == 15


@pytest.mark.parametrize("arch,shape,message", [
    ("vgg16", (1, 28, 28), r"arch 'vgg16' needs 3x32x32 inputs, got \[1, 28, 28\]"),
    ("cnn", (1, 30, 30), r"arch 'cnn' needs .* multiples of 4, got \[1, 30, 30\]"),
])
def test_wrong_input_shape_for_an_architecture(arch, shape, message):
    with pytest.raises(NetworkError, match=message):
        ARCHITECTURES[arch](shape, 10)


@pytest.mark.parametrize("layers,message", [
    ([{"kind": "dense", "name": "a", "out_features": 3}], "must end with one 'output' layer"),
    ([{"kind": "flatten", "name": "f"}, {"kind": "dense", "name": "f", "out_features": 3},
      {"kind": "output", "name": "o", "out_features": 2}], "'f' is used twice"),
    ([{"kind": "avgpool", "name": "p"}, {"kind": "output", "name": "o", "out_features": 2}],
     "unknown kind 'avgpool'"),
    ([{"kind": "maxpool2d", "name": "p", "size": 2}, {"kind": "flatten", "name": "f"},
      {"kind": "output", "name": "o", "out_features": 2}], "max pooling needs spike times"),
    ([{"kind": "output", "name": "o", "out_features": 2}], r"needs a flat input, got \[1, 4, 4\]"),
    ([{"kind": "flatten", "name": "input"}, {"kind": "output", "name": "o", "out_features": 2}],
     "'input' is not an identifier or is reserved"),
    ([{"kind": "conv2d", "name": "c", "out_channels": 2, "kernel_size": 0},
      {"kind": "flatten", "name": "f"}, {"kind": "output", "name": "o", "out_features": 2}],
     "'kernel_size' must be a positive integer, got 0"),
    ([{"kind": "conv2d", "name": "c", "out_channels": 2, "kernel_size": 5},
      {"kind": "flatten", "name": "f"}, {"kind": "output", "name": "o", "out_features": 2}],
     "too small for its window"),
])
def test_layer_spec_errors(layers, message):
    with pytest.raises(NetworkError, match=message):
        check_layer_specs(layers, (1, 4, 4))


def test_bn_folding_reproduces_the_eval_potentials():
    model = make("cnn", shape=(1, 8, 8))
    with torch.no_grad():                  # non-trivial BN statistics and affine parameters
        for h in model.hidden:
            n = h.bn.num_features
            h.bn.running_mean.uniform_(-0.5, 0.5)
            h.bn.running_var.uniform_(0.5, 2.0)
            h.bn.weight.uniform_(0.5, 1.5)
            h.bn.bias.uniform_(-0.2, 0.2)
            assert h.bn.weight.shape == (n,)
    model.double().eval()
    x = torch.rand(4, 1, 8, 8, dtype=torch.float64)
    net = model.float_network()
    conv1 = net.layers[0]
    with torch.no_grad():
        z = model.conv1.potential(x).numpy()
    folded = torch.nn.functional.conv2d(x, torch.from_numpy(conv1.weight),
                                        torch.from_numpy(conv1.bias), padding=2).numpy()
    np.testing.assert_allclose(folded, z, rtol=1e-12, atol=1e-12)
    assert conv1.tau == 5.0 and conv1.td == 0.0 and conv1.padding == 2
    assert [layer.kind for layer in net.layers] == [s["kind"] for s in model.specs]
    assert net.layers[1].size == 2 and net.layers[1].stride == 2


def test_build_model_from_config_round_trip():
    model = make("mlp", shape=(1, 8, 8), coding="ttfs")
    rebuilt = build_model(model.config())
    assert list(rebuilt.state_dict()) == list(model.state_dict())
    assert rebuilt.config() == model.config()


def test_classes_take_the_lowest_index_on_ties():
    assert classes(np.array([[1.0, 3.0, 3.0], [2.0, 2.0, 2.0]])).tolist() == [1, 0]


def test_arch_spec_string_is_the_cnn_and_errors_name_the_token():
    assert parse_arch("c16k5,p2,c32k5,p2,d128", 10) == ARCHITECTURES["cnn"]((1, 28, 28), 10)
    assert parse_arch("d256", 10) == ARCHITECTURES["mlp"]((1, 28, 28), 10)
    assert parse_arch("c8k3s2p0", 3)[0] == {"kind": "conv2d", "name": "conv1",
                                           "out_channels": 8, "kernel_size": 3, "stride": 2,
                                           "padding": 0}
    with pytest.raises(NetworkError, match=r"token 2 'x5' is not a layer; expected comma"):
        parse_arch("c8k3,x5", 10)
    with pytest.raises(NetworkError, match=r"'p2' comes after a dense layer"):
        parse_arch("d10,p2", 10)
    layers = architecture("c4k3,p2,d8", (1, 8, 8), 10)
    TTFSNet(layers, (1, 8, 8), T=8, q=0.5, tau0=2.0, td0=0.0)
    custom = [{"kind": "flatten", "name": "f"}, {"kind": "output", "name": "o",
                                                 "out_features": 3}]
    assert architecture("cnn", (4, 1, 1), 3, custom) == custom


def test_qat_forward_uses_the_quantizers_integer_weights():
    """In eval mode a QAT model computes with exactly W_int * s_w of ttfs.sdk.quantize's folding;
    in training its gradient reaches the float weights (straight through)."""
    torch.manual_seed(0)
    model = TTFSNet(ARCHITECTURES["cnn"]((1, 8, 8), 10), (1, 8, 8), T=8, q=0.5, tau0=2.0,
                    td0=0.0, weight_bits=3)
    x = torch.rand(16, 1, 8, 8)
    model.train()
    model(x).sum().backward()
    assert model.conv1.weight.grad.abs().sum() > 0 and model.conv1.bn.weight.grad is not None
    for h in model.hidden:
        h.bn.running_mean.uniform_(-0.1, 0.1)
        h.bn.running_var.uniform_(0.5, 2.0)
    model.eval()
    fnet = model.float_network()
    net = quantize(fnet)
    assert net.weight_bits == 3
    for fl, il in zip([f for f in fnet.layers if f.weight is not None],
                      [layer for layer in net.layers if hasattr(layer, "weight")]):
        assert np.abs(il.weight).max() == 3
        step = np.abs(fl.weight).max() / 3
        np.testing.assert_allclose(fl.weight, il.weight * step, rtol=1e-12, atol=1e-15)
    # the float weights of the same state, quantized, give the same integers
    plain = build_model(model.config() | {"weight_bits": None})
    plain.load_state_dict(model.state_dict())
    again = quantize(plain.float_network(), weight_bits=3)
    for a, b in zip(net.layers, again.layers):
        if hasattr(a, "weight"):
            np.testing.assert_array_equal(a.weight, b.weight)
