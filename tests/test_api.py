"""Python API (sdk/api.py): the docs/api.md example runs as written and deploys faithfully."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from ttfs.codegen import export_cli
from ttfs.sdk import golden
from ttfs.sdk.api import TTFSConv2d, TTFSLinear, layer_specs, save_run, sr_relax, tr_loss
from ttfs.sdk.data import load_dataset
from ttfs.sdk.floatnet import NetworkError, load_float_network
from ttfs.sdk.quantize import quantize

DOC = Path(__file__).resolve().parents[1] / "docs" / "api.md"


def test_docs_example_trains_saves_and_exports(tmp_path, monkeypatch, capsys):
    code = re.search(r"```python\n(.*?)```", DOC.read_text(), re.S).group(1)
    monkeypatch.chdir(tmp_path)
    torch.set_num_threads(1)
    scope: dict = {}
    exec(compile(code, str(DOC), "exec"), scope)
    float_accuracy = float(re.search(r"test accuracy ([\d.]+) %", capsys.readouterr().out)
                           .group(1)) / 100
    run = tmp_path / "runs" / "custom-digits"
    assert float_accuracy > 0.8
    net = quantize(load_float_network(run))
    data = load_dataset("digits")
    integer = (golden.run(net, data.test_images).classes == data.test_labels).mean()
    assert abs(integer - float_accuracy) <= 0.02
    assert [layer.name for layer in net.layers] == ["conv1", "pool1", "flatten", "fc1", "out"]
    out = tmp_path / "export"
    assert export_cli.main([str(run), "--target", "mcu", "-o", str(out), "--vectors", "4"]) == 0
    assert json.loads((run / "config.json").read_text())["T"] == 16


def test_sr_relax_and_losses_reach_every_ttfs_layer():
    model = nn.Sequential(TTFSLinear(4, 8), TTFSLinear(8, 8), nn.Linear(8, 2))
    sr_relax(model, 0.0)
    assert all(m.relaxed for m in model[:2])
    sr_relax(model, 1.0)
    assert not any(m.relaxed for m in model[:2])
    with torch.no_grad():
        model[1].tau.fill_(7.0)
    assert tr_loss(model, tau0=5.0, lambda_r=1.0).item() == pytest.approx(4.0)
    x = torch.rand(16, 4)
    model(x).sum().backward()
    assert model[0].tau.grad is not None and model[0].weight.grad.abs().sum() > 0


def test_save_run_refuses_what_the_snn_cannot_run(tmp_path):
    with pytest.raises(NetworkError, match=r"child 1 \(ReLU\): expected TTFSConv2d"):
        layer_specs(nn.Sequential(TTFSLinear(4, 8), nn.ReLU(), nn.Linear(8, 2)))
    with pytest.raises(NetworkError, match="share one T and q"):
        layer_specs(nn.Sequential(TTFSLinear(4, 8, T=8), TTFSLinear(8, 8, T=16),
                                  nn.Linear(8, 2)))
    model = nn.Sequential(TTFSConv2d(1, 2, 3), nn.Flatten(), nn.Linear(2 * 2 * 2, 3))
    with pytest.raises(NetworkError, match="does not match its layer specs"):
        save_run(model, tmp_path / "r", input_shape=(1, 5, 5))
    assert not (tmp_path / "r").exists()
    save_run(model, tmp_path / "r", input_shape=(1, 4, 4))
    net = load_float_network(tmp_path / "r")
    np.testing.assert_array_equal(net.layers[0].weight.shape, (2, 1, 3, 3))
