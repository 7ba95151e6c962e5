"""ttfs-convert (sdk/onnx_import.py, sdk/convert.py, sdk/convert_cli.py): ReLU nets from ONNX.

Two producers: a small CNN exported by `torch.onnx.export` and an MLP written directly with the
`onnx` helper API (Gemm with transB, BatchNormalization, MatMul + Add, an input Sub/Div and a
final Softmax). Both are trained here for a few seconds on digits, converted, and the float SNN
of the written run is checked against onnxruntime's ReLU outputs on the real test images.
Unsupported and malformed models must give one `error:` line naming the node, exit 2 and
write nothing.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")

from onnx import TensorProto, helper, numpy_helper  # noqa: E402
from torch import nn  # noqa: E402

from ttfs.sdk import cli, convert_cli  # noqa: E402
from ttfs.sdk.convert import ConvertOptions, convert, onnx_scores  # noqa: E402
from ttfs.sdk.data import load_dataset, split_validation  # noqa: E402
from ttfs.sdk.floatnet import load_float_network  # noqa: E402
from ttfs.sdk.onnx_import import import_onnx  # noqa: E402
from ttfs.sdk.simulate import run_closed_form  # noqa: E402
from tests.conftest import need_tool  # noqa: E402

OPSET = 17


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits")


def _train(model: nn.Module, dataset, epochs: int) -> nn.Module:
    """A few epochs of Adam on the digits training split (byte / 255 inputs)."""
    torch.manual_seed(0)
    images, labels, _, _ = split_validation(dataset.train_images, dataset.train_labels)
    x, y = torch.from_numpy(images).float() / 255.0, torch.from_numpy(labels)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    for _ in range(epochs):
        for i in range(0, len(x), 64):
            loss = nn.functional.cross_entropy(model(x[i:i + 64]), y[i:i + 64])
            opt.zero_grad()
            loss.backward()
            opt.step()
    return model.eval()


class _Cnn(nn.Module):
    """conv3x3(8) - BN - maxpool 2 - ReLU - x.view(N, -1) - dense 32 - ReLU - dense 10: pool
    before ReLU and torch's Shape/Gather/Concat reshape, as hand-written models often have."""

    def __init__(self):
        super().__init__()
        self.conv, self.bn = nn.Conv2d(1, 8, 3, padding=1), nn.BatchNorm2d(8)
        self.fc1, self.fc2 = nn.Linear(128, 32), nn.Linear(32, 10)

    def forward(self, x):
        x = torch.relu(torch.max_pool2d(self.bn(self.conv(x)), 2))
        return self.fc2(torch.relu(self.fc1(x.view(x.size(0), -1))))


@pytest.fixture(scope="module")
def torch_cnn(digits, tmp_path_factory) -> Path:
    """The `_Cnn`, trained and exported by torch.onnx.export (TorchScript exporter) with a
    dynamic batch axis, and beside it as `cnn_static.onnx` with the batch fixed to 1 (torch
    then writes the reshape as a constant [1, -1])."""
    torch.set_num_threads(1)
    model = _train(_Cnn(), digits, epochs=15)
    path = tmp_path_factory.mktemp("onnx") / "cnn.onnx"
    torch.onnx.export(model, torch.zeros(1, 1, 8, 8), str(path), input_names=["x"],
                      output_names=["y"], dynamic_axes={"x": {0: "n"}, "y": {0: "n"}},
                      opset_version=OPSET, dynamo=False)
    torch.onnx.export(model, torch.zeros(1, 1, 8, 8), str(path.with_name("cnn_static.onnx")),
                      input_names=["x"], opset_version=OPSET, dynamo=False)
    return path


def _graph_model(nodes, inits, *, input_shape=("n", 1, 8, 8), out_dims=("n", 10),
                 opset=OPSET) -> onnx.ModelProto:
    graph = helper.make_graph(
        nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, list(input_shape))],
        [helper.make_tensor_value_info(nodes[-1].output[0], TensorProto.FLOAT,
                                       list(out_dims))],
        [numpy_helper.from_array(np.asarray(v, dtype=np.float32), name=k)
         for k, v in inits.items()])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)],
                              producer_name="hand-written")
    model.ir_version = 8
    return model


@pytest.fixture(scope="module")
def helper_mlp(digits, tmp_path_factory) -> Path:
    """64-32-16-10 written with the onnx helper API from a torch-trained MLP; every ONNX node
    is parameterised so that the graph computes the trained function exactly."""
    torch.set_num_threads(1)
    mlp = _train(nn.Sequential(nn.Flatten(), nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 16),
                               nn.ReLU(), nn.Linear(16, 10)), digits, epochs=30)
    (w1, b1), (w2, b2), (w3, b3) = [(m.weight.detach().double().numpy(),
                                     m.bias.detach().double().numpy())
                                    for m in mlp if isinstance(m, nn.Linear)]
    mean, std = 0.25, 0.5          # the graph normalises x' = (x - mean) / std first ...
    w1n, b1n = w1 * std, b1 + w1.sum(1) * mean          # ... so W1 x + b1 = W1n x' + b1n
    rng = np.random.default_rng(0)
    gamma, beta = rng.uniform(0.5, 2, 32), rng.normal(0, 0.1, 32)
    mu, var = rng.normal(0, 0.1, 32), rng.uniform(0.5, 2, 32)
    k = gamma / np.sqrt(var + 1e-5)                     # BN(y) = k (y - mu) + beta
    w1g, b1g = w1n / k[:, None], (b1n - beta) / k + mu  # BN(W1g x' + b1g) = W1n x' + b1n
    nodes = [helper.make_node("Sub", ["x", "mean"], ["xs"], name="norm_sub"),
             helper.make_node("Div", ["xs", "std"], ["xn"], name="norm_div"),
             helper.make_node("Flatten", ["xn"], ["f"], name="flat", axis=1),
             helper.make_node("Gemm", ["f", "W1", "B1"], ["g1"], name="fc1", transB=1),
             helper.make_node("BatchNormalization", ["g1", "gamma", "beta", "mu", "var"],
                              ["n1"], name="bn1", epsilon=1e-5),
             helper.make_node("Relu", ["n1"], ["r1"], name="relu1"),
             helper.make_node("MatMul", ["r1", "W2"], ["m2"], name="fc2"),
             helper.make_node("Add", ["m2", "B2"], ["a2"], name="fc2_bias"),
             helper.make_node("Relu", ["a2"], ["r2"], name="relu2"),
             helper.make_node("Gemm", ["r2", "W3", "B3"], ["g3"], name="fc3", transB=0),
             helper.make_node("Softmax", ["g3"], ["p"], name="softmax", axis=1)]
    inits = {"mean": [mean], "std": [std], "W1": w1g, "B1": b1g, "gamma": gamma,
             "beta": beta, "mu": mu, "var": var, "W2": w2.T, "B2": b2, "W3": w3.T, "B3": b3}
    path = tmp_path_factory.mktemp("onnx") / "mlp.onnx"
    onnx.save(_graph_model(nodes, inits), str(path))
    return path


def _converted_run(path: Path, tmp_path_factory, name: str, *args: str) -> Path:
    out = tmp_path_factory.mktemp("runs") / name
    assert convert_cli.main([str(path), "--dataset", "digits", "-o", str(out), "--quiet",
                             "--calibration", "300", *args]) == 0
    return out


@pytest.fixture(scope="module")
def cnn_run(torch_cnn, tmp_path_factory) -> Path:
    return _converted_run(torch_cnn, tmp_path_factory, "cnn")


@pytest.fixture(scope="module")
def mlp_run(helper_mlp, tmp_path_factory) -> Path:
    return _converted_run(helper_mlp, tmp_path_factory, "mlp")


@pytest.mark.parametrize("which", ["cnn", "mlp"])
def test_converted_snn_agrees_with_onnxruntime(which, request, digits):
    """Before fine-tuning the float SNN of the written run (closed-form simulator) gives the
    class onnxruntime gives for the ReLU model on >= 95 % of the real test images."""
    path = request.getfixturevalue({"cnn": "torch_cnn", "mlp": "helper_mlp"}[which])
    run = request.getfixturevalue(f"{which}_run")
    reference = np.argmax(onnx_scores(path, import_onnx(path, input_shape=(1, 8, 8)),
                                      digits.test_images), axis=1)
    relu_accuracy = (reference == digits.test_labels).mean()
    assert relu_accuracy > 0.9                       # the ReLU nets learnt something
    trace = run_closed_form(load_float_network(run), digits.test_images)
    assert (trace.classes == reference).mean() >= 0.95
    result = json.loads((run / "result.json").read_text())
    assert result["relu_test_accuracy"] == pytest.approx(relu_accuracy)
    assert result["import_agreement"] == 1.0 and result["import_max_abs_error"] < 1e-4
    assert result["snn_test_accuracy"] == pytest.approx((trace.classes
                                                          == digits.test_labels).mean())
    assert 0 < result["spikes_per_hidden_neuron"] < 1


def test_helper_mlp_maps_every_node(mlp_run):
    """Normalisation and BN are folded; MatMul + Add is one layer; Softmax is dropped."""
    config = json.loads((mlp_run / "config.json").read_text())
    assert [(s["kind"], s["name"]) for s in config["layers"]] == [
        ("flatten", "flatten0"), ("dense", "fc1"), ("dense", "fc2"), ("output", "out")]
    assert config["convert"]["nodes"]["fc1"] == ["norm_sub", "norm_div", "fc1", "bn1", "relu1"]
    assert config["convert"]["nodes"]["fc2"] == ["fc2", "fc2_bias", "relu2"]
    assert config["convert"]["producer"] == "hand-written"
    layers = config["convert"]["layers"]
    assert [c["name"] for c in layers] == ["fc1", "fc2"]
    assert all(0 < c["tau"] <= config["T"] and c["td"] == 0 for c in layers)


@pytest.mark.parametrize("name, batch", [("cnn.onnx", None), ("cnn_static.onnx", 1)])
def test_imported_relu_net_equals_onnxruntime(torch_cnn, digits, name, batch):
    """The importer's float64 ReLU network reproduces onnxruntime's scores (the fixed-batch
    export is run image by image)."""
    from ttfs.sdk.convert import _Forward

    path = torch_cnn.with_name(name)
    imported = import_onnx(path, input_shape=(1, 8, 8))
    assert imported.batch == batch
    assert [s["kind"] for s in imported.layers] == ["conv2d", "maxpool2d", "flatten", "dense",
                                                     "output"]
    ours = _Forward(imported).scores(digits.test_images[:50])
    np.testing.assert_allclose(ours, onnx_scores(path, imported, digits.test_images[:50]),
                               rtol=1e-4, atol=1e-4)


def test_input_scale_and_offset_fold_into_the_first_layer(torch_cnn):
    """x_onnx = s x + o: conv W -> W s, b -> b + sum(W) o; an offset meets the zero padding
    (border taps differ), which the importer reports."""
    from ttfs.sdk.onnx_import import InputAffine

    plain = import_onnx(torch_cnn, input_shape=(1, 8, 8))
    scaled = import_onnx(torch_cnn, input_shape=(1, 8, 8),
                         input_affine=InputAffine(np.array([2.0]), np.array([0.5])))
    w, b = plain.arrays["conv1.weight"], plain.arrays["conv1.bias"]
    np.testing.assert_allclose(scaled.arrays["conv1.weight"], 2 * w)
    np.testing.assert_allclose(scaled.arrays["conv1.bias"], b + 0.5 * w.sum(axis=(1, 2, 3)))
    assert scaled.affine_inexact and not plain.affine_inexact
    assert scaled.nodes["conv1"][0] == "--input-scale/--input-offset"


def test_run_is_accepted_by_ttfs_train_eval(cnn_run, capsys):
    assert cli.main(["--eval", str(cnn_run)]) == 0
    assert "test accuracy (float SNN)" in capsys.readouterr().out


def test_finetune_runs_and_keeps_the_layers(torch_cnn, digits, tmp_path):
    """One fine-tuning epoch (SR + TR + TKBN from epoch 0) on a converted state."""
    converted = convert(torch_cnn, ConvertOptions(dataset="digits", calibration=200,
                                                  finetune=1), quiet=True)
    result = converted.result
    assert result["selected_epoch"] == 0 and len(converted.history) == 1
    assert set(result["before_finetune"]) >= {"snn_test_accuracy", "spikes_per_hidden_neuron"}
    assert result["snn_test_accuracy"] > 0.8
    assert converted.config["method"] == "sr+tr+tkbn"
    assert set(converted.state) == set(convert(torch_cnn, ConvertOptions(
        dataset="digits", calibration=200), quiet=True).state)


# -- errors: one line naming the node, exit 2, nothing written ----------------------------

def _conv(name, x, y, w, **attrs):
    return helper.make_node("Conv", [x, w], [y], name=name, **attrs)


def _head(x: str, n_in: int) -> tuple[list, dict]:
    """flatten - Gemm to 10 classes, appended to a broken body."""
    return ([helper.make_node("Flatten", [x], ["flat"], name="flat"),
             helper.make_node("Gemm", ["flat", "Wout"], ["y"], name="out", transB=1)],
            {"Wout": np.zeros((10, n_in))})


def _bad_models() -> dict[str, tuple[onnx.ModelProto, list[str]]]:
    w = np.zeros((4, 1, 3, 3))
    head, head_init = _head("r", 4 * 8 * 8)
    models = {
        "sigmoid": ([_conv("c1", "x", "z", "W", pads=[1, 1, 1, 1]),
                     helper.make_node("Sigmoid", ["z"], ["r"], name="act1")] + head,
                    {"W": w} | head_init, ["'act1'", "Sigmoid", "not supported"]),
        "avgpool": ([_conv("c1", "x", "z", "W", pads=[1, 1, 1, 1]),
                     helper.make_node("Relu", ["z"], ["r0"], name="relu1"),
                     helper.make_node("AveragePool", ["r0"], ["r"], name="pool1",
                                      kernel_shape=[1, 1])] + head,
                    {"W": w} | head_init, ["'pool1'", "AveragePool", "not supported"]),
        "groups": ([_conv("c1", "x", "z", "W", pads=[1, 1, 1, 1]),
                    helper.make_node("Relu", ["z"], ["r1"], name="relu1"),
                    _conv("c2", "r1", "z2", "W2", pads=[1, 1, 1, 1], group=2),
                    helper.make_node("Relu", ["z2"], ["r"], name="relu2")] + head,
                   {"W": w, "W2": np.zeros((4, 2, 3, 3))} | head_init,
                   ["'c2'", "(Conv)", "group=2"]),
        "dilation": ([_conv("c1", "x", "z", "W", pads=[2, 2, 2, 2], dilations=[2, 2]),
                      helper.make_node("Relu", ["z"], ["r"], name="relu1")] + head,
                     {"W": w} | head_init, ["'c1'", "(Conv)", "dilations=[2, 2]"]),
        "missing_initializer": ([_conv("c1", "x", "z", "W_missing", pads=[1, 1, 1, 1]),
                                 helper.make_node("Relu", ["z"], ["r"], name="relu1")] + head,
                                head_init, ["'c1'", "(Conv)", "'W_missing' is not defined"]),
        "pool_stride": ([_conv("c1", "x", "z", "W", pads=[1, 1, 1, 1]),
                         helper.make_node("Relu", ["z"], ["r0"], name="relu1"),
                         helper.make_node("MaxPool", ["r0"], ["r"], name="mp", kernel_shape=[2, 2],
                                          strides=[1, 1])] + _head("r", 4 * 7 * 7)[0],
                        {"W": w, "Wout": np.zeros((10, 4 * 7 * 7))},
                        ["'mp'", "(MaxPool)", "kernel = stride"]),
    }
    return {k: (_graph_model(nodes, inits), words) for k, (nodes, inits, words) in
            models.items()}


BAD = _bad_models()


def _assert_refused(argv, out: Path, capsys, words) -> None:
    assert convert_cli.main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1, err
    for word in words:
        assert word in err, err
    assert not out.exists()
    assert [p.name for p in out.parent.iterdir()] == [p.name for p in out.parent.iterdir()
                                                      if not p.name.startswith(f".{out.name}")]


@pytest.mark.parametrize("case", sorted(BAD))
def test_unsupported_model_is_refused(case, tmp_path, capsys):
    model, words = BAD[case]
    path = tmp_path / f"{case}.onnx"
    onnx.save(model, str(path))
    out = tmp_path / "runs" / "out"
    out.parent.mkdir()
    _assert_refused([str(path), "--dataset", "digits", "-o", str(out)], out, capsys, words)


def test_truncated_file_is_refused(helper_mlp, tmp_path, capsys):
    data = helper_mlp.read_bytes()
    path = tmp_path / "cut.onnx"
    path.write_bytes(data[:len(data) // 2])
    out = tmp_path / "out"
    _assert_refused([str(path), "--dataset", "digits", "-o", str(out)], out, capsys,
                    ["cut.onnx", "not a valid ONNX file"])


@pytest.mark.parametrize("shape, words", [(("n", 8, 8), ["input 'x' has rank 3"]),
                                          (("n", 1, 28, 28), ["input 'x' has shape",
                                                              "[N, 1, 8, 8]"])])
def test_wrong_input_shape_is_refused(shape, words, tmp_path, capsys):
    model = _graph_model([helper.make_node("Flatten", ["x"], ["f"], name="flat"),
                          helper.make_node("Gemm", ["f", "W"], ["y"], name="out", transB=1)],
                         {"W": np.zeros((10, 64))}, input_shape=shape)
    path = tmp_path / "m.onnx"
    onnx.save(model, str(path))
    out = tmp_path / "out"
    _assert_refused([str(path), "--dataset", "digits", "-o", str(out)], out, capsys, words)


def test_old_opset_and_bad_options_are_refused(helper_mlp, tmp_path, capsys):
    model = onnx.load(str(helper_mlp))
    model.opset_import[0].version = 11
    path = tmp_path / "old.onnx"
    onnx.save(model, str(path))
    out = tmp_path / "out"
    _assert_refused([str(path), "--dataset", "digits", "-o", str(out)], out, capsys,
                    ["opset 11"])
    _assert_refused([str(helper_mlp), "--dataset", "digits", "-o", str(out), "--T", "1"], out,
                    capsys, ["--T must be at least 2"])
    _assert_refused([str(helper_mlp), "--dataset", "mnist5k", "-o", str(out)], out, capsys,
                    ["[N, 1, 28, 28]"])


def test_existing_out_is_kept_without_force(helper_mlp, tmp_path, capsys):
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("x")
    assert convert_cli.main([str(helper_mlp), "--dataset", "digits", "-o", str(out)]) == 2
    assert "--force" in capsys.readouterr().err
    assert [p.name for p in out.iterdir()] == ["keep.txt"]


# -- the converted run through the deployment targets ---------------------------------------

@pytest.mark.slow
def test_convert_then_mcu_verify(cnn_run, tmp_path, capsys):
    from ttfs.codegen import export_cli

    for tool in ("gcc", "make", "arm-none-eabi-gcc", "qemu-system-arm"):
        need_tool(tool)
    out = tmp_path / "mcu"
    status = export_cli.main([str(cnn_run), "--target", "mcu", "-o", str(out), "--vectors",
                              "20", "--verify"])
    text = capsys.readouterr().out
    assert status == 0, text
    assert " 0 failed -> OK" in text


@pytest.mark.slow
def test_convert_then_fpga_verify(mlp_run, tmp_path, capsys):
    from ttfs.codegen import export_cli

    need_tool("iverilog")
    out = tmp_path / "fpga"
    status = export_cli.main([str(mlp_run), "--target", "fpga", "-o", str(out), "--vectors",
                              "6", "--sim", "icarus", "--option", "synth=0", "--verify"])
    text = capsys.readouterr().out
    assert status == 0, text
    assert " 0 failed -> OK" in text
