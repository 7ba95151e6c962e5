"""ONNX target (codegen/targets/onnx.py): standard ops, agreement with torch, reproducibility."""

from __future__ import annotations

import json

import numpy as np
import pytest

from ttfs.codegen import export_cli, verify_cli
from ttfs.codegen.targets import onnx as onnx_target
from ttfs.sdk import ir, npzip, randnet, vectors

onnx = pytest.importorskip("onnx")
torch = pytest.importorskip("torch")


@pytest.fixture(scope="module")
def exported(digits_run, tmp_path_factory):
    """The digits run exported to onnx with every test image (360) as vectors."""
    out = tmp_path_factory.mktemp("onnx") / "out"
    assert export_cli.main([str(digits_run), "--target", "onnx", "-o", str(out),
                            "--vectors", "360"]) == 0
    return out


def test_graph_uses_standard_ops_only(exported):
    model = onnx.load(str(exported / onnx_target.MODEL_FILE))
    onnx.checker.check_model(model, full_check=True)
    ops = {node.op_type for node in model.graph.node}
    assert {node.domain for node in model.graph.node} <= {"", "ai.onnx"}
    assert {"Less", "Exp", "Where", "ReduceSum"} <= ops
    assert [i.name for i in model.graph.input] == ["images"]
    assert [o.name for o in model.graph.output] == ["scores"]


def test_onnxruntime_agrees_with_torch_on_the_test_set(exported, capsys):
    report = onnx_target.verify(exported)
    n = 360 + len(vectors.corner_images(ir.load(exported / "model.ttfs")))
    assert report.ok and report.data["images"] == n and report.status == "pass"
    assert set(report.tools) == {"onnx", "onnxruntime"} and "onnxruntime" in report.timings
    assert onnx_target.verify(exported, vectors=5).passed == 5
    assert report.data["agreement"] >= onnx_target.MIN_AGREEMENT
    assert report.data["max_abs_score_diff"] < 1e-3
    assert verify_cli.main([str(exported)]) == 0
    assert f"onnx: {n} passed, 0 failed -> OK" in capsys.readouterr().out


def test_verify_reports_disagreements(exported, tmp_path, capsys):
    broken = tmp_path / "broken"
    broken.mkdir()
    for path in exported.iterdir():
        (broken / path.name).write_bytes(path.read_bytes())
    with np.load(broken / onnx_target.REFERENCE_FILE) as ref:
        scores, classes = ref["scores"], ref["classes"].copy()
    classes[[3, 7]] = (classes[[3, 7]] + 1) % 10
    npzip.write(broken / onnx_target.REFERENCE_FILE,
                {"scores.npy": npzip.npy_bytes(scores), "classes.npy": npzip.npy_bytes(classes)})
    report = onnx_target.verify(broken)
    assert not report.ok and report.failed == 2
    assert report.first_mismatch.startswith("onnxruntime: first disagreement at vector 3: onnx "
                                            "class")
    assert report.status == "fail" and report.first_divergence["sample"] == 3
    assert report.cases[0]["failed"] == 2
    assert verify_cli.main([str(broken)]) == 1
    assert "disagreement on vector 7" in capsys.readouterr().out


def test_export_is_byte_reproducible(exported, digits_run, tmp_path):
    again = tmp_path / "again"
    assert export_cli.main([str(digits_run), "--target", "onnx", "-o", str(again),
                            "--vectors", "360"]) == 0
    for path in exported.iterdir():
        assert path.read_bytes() == (again / path.name).read_bytes(), path.name


def test_onnx_needs_a_run_directory(tmp_path, capsys):
    model = tmp_path / "m.ttfs"
    ir.save(randnet.random_network(0), model)
    code = export_cli.main([str(model), "--target", "onnx", "-o", str(tmp_path / "o")])
    assert code == 2
    assert capsys.readouterr().err == ("error: --target onnx exports the float surrogate and "
                                       "needs a run directory (config.json + model.safetensors),"
                                       " not a model.ttfs\n")
    assert not (tmp_path / "o").exists()


def test_ttfs_input_coding_and_cnn_run_built_by_hand(tmp_path):
    """A run directory written by hand (config.json + model.safetensors of an untrained CNN
    with ttfs input coding): the export-only forward must reproduce it too."""
    from safetensors.torch import save_file

    from ttfs.sdk.model import build_model

    config = {"dataset": "digits", "method": "sm", "device": "cpu", "T": 8, "q": 0.5,
              "input_coding": "ttfs", "bn_eps": 1e-5, "input_shape": [1, 8, 8],
              "num_classes": 10,
              "layers": [{"kind": "conv2d", "name": "conv1", "out_channels": 4,
                          "kernel_size": 3, "stride": 1, "padding": 1},
                         {"kind": "maxpool2d", "name": "pool1", "size": 2},
                         {"kind": "flatten", "name": "flatten"},
                         {"kind": "dense", "name": "fc1", "out_features": 16},
                         {"kind": "output", "name": "out", "out_features": 10}]}
    torch.manual_seed(0)
    model = build_model(config, tau0=2.0, td0=0.5)
    with torch.no_grad():                  # BN statistics that make a fair share fire
        model.conv1.bn.running_mean.fill_(0.05)
        model.fc1.bn.running_var.fill_(0.5)
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.json").write_text(json.dumps(config))
    save_file({k: v.contiguous() for k, v in model.state_dict().items()
               if not k.endswith("num_batches_tracked")}, str(run / "model.safetensors"))
    out = tmp_path / "out"
    assert export_cli.main([str(run), "--target", "onnx", "-o", str(out), "--vectors", "50",
                            "--verify"]) == 0
    report = onnx_target.verify(out)
    assert report.ok and report.data["agreement"] == 1.0
