"""ttfs-regress (codegen/regress.py) and its pytest plugin (codegen/pytest_plugin.py)."""

from __future__ import annotations

import dataclasses
import json
import os
import re
import subprocess
import sys
import tomllib
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest

from ttfs.codegen import export_cli, regress, tools
from ttfs.codegen.targets import golden as golden_target
from ttfs.sdk import ir, randnet
from tests.conftest import need_tool

ROOT = Path(__file__).resolve().parents[1]


def save_models(folder: Path) -> None:
    """mlp.ttfs, cnn.ttfs and ttfsin.ttfs (an MLP with ttfs-coded input): tiny random nets."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, seed, plan, coding in (("mlp", 1, "mlp", "real"), ("cnn", 2, "cnn", "real"),
                                     ("ttfsin", 3, "mlp", "ttfs")):
        ir.save(randnet.random_network(seed, plan=plan, input_coding=coding, name=name),
                folder / f"{name}.ttfs")


def write_suite(folder: Path, text: str) -> Path:
    path = folder / "suite.toml"
    path.write_text(text)
    return path


MODELS = """
cache = "cache"
[[model]]
name = "mlp"
source = "mlp.ttfs"
vectors = 4
[[model]]
name = "cnn"
source = "cnn.ttfs"
vectors = 4
[[model]]
name = "ttfsin"
source = "ttfsin.ttfs"
vectors = 4
"""
VECTOR_SETS = """
[[vectors]]
name = "smoke"
count = 3
[[vectors]]
name = "all"
"""


def junit_counts(path: Path) -> dict:
    root = ET.parse(path).getroot()
    suites = root.findall("testsuite")
    cases = root.findall("testsuite/testcase")
    return {"tests": int(root.get("tests")), "failures": int(root.get("failures")),
            "errors": int(root.get("errors")), "suites": sorted(s.get("name") for s in suites),
            "cases": len(cases), "failed": len(root.findall("testsuite/testcase/failure")),
            "errored": len(root.findall("testsuite/testcase/error")),
            "suite_tests": sum(int(s.get("tests")) for s in suites)}


def test_golden_matrix_in_parallel_writes_junit_json_and_a_table(tmp_path, capsys):
    save_models(tmp_path)
    suite = write_suite(tmp_path, MODELS + '[[target]]\nname = "golden"\n' + VECTOR_SETS)
    xml, js = tmp_path / "out" / "results.xml", tmp_path / "out" / "results.json"
    code = regress.main([str(suite), "--jobs", "2", "--junit", str(xml), "--json", str(js),
                         "-q"])
    stdout = capsys.readouterr().out
    assert code == 0, stdout
    assert junit_counts(xml) == {"tests": 6, "failures": 0, "errors": 0, "cases": 6,
                                 "suites": ["cnn/golden", "mlp/golden", "ttfsin/golden"],
                                 "failed": 0, "errored": 0, "suite_tests": 6}
    data = json.loads(js.read_text())
    assert data["summary"] == {"cases": 6, "pass": 6, "fail": 0, "error": 0, "missing": 0,
                               "exit": 0}
    first = data["cases"][0]
    assert first["id"] == "mlp/golden/default/smoke" and first["passed"] == 3
    assert first["model_hash"] == ir.load(tmp_path / "mlp.ttfs").content_hash
    assert {"status", "first_divergence", "tools", "timings", "failed"} <= set(first)
    assert data["cases"][1]["passed"] > 4          # corner vectors + 4 images
    assert re.search(r"^ttfsin/golden/default/all +pass +\d+ +0 ", stdout, re.M)
    assert stdout.rstrip().endswith("6 cases: 6 pass, 0 fail, 0 error, 0 missing tool -> "
                                    "exit 0")
    # the cache is reused: nothing is exported again
    exports = sorted((tmp_path / "cache" / "exports").iterdir())
    stamps = [(p / "export.json").stat().st_mtime_ns for p in exports if p.is_dir()]
    assert len(stamps) == 3
    assert regress.main([str(suite), "-q", "--only", "mlp/*"]) == 0
    assert [(p / "export.json").stat().st_mtime_ns for p in exports if p.is_dir()] == stamps
    assert "2 cases: 2 pass" in capsys.readouterr().out


def test_list_and_only(tmp_path, capsys):
    save_models(tmp_path)
    suite = write_suite(tmp_path, MODELS + '[[target]]\nname = "golden"\n[[target]]\n'
                        'name = "fpga"\nsims = ["verilator", "icarus"]\n' + VECTOR_SETS)
    assert regress.main([str(suite), "--list", "--only", "cnn/fpga/*"]) == 0
    assert capsys.readouterr().out.split() == [
        "cnn/fpga/verilator/smoke", "cnn/fpga/verilator/all", "cnn/fpga/icarus/smoke",
        "cnn/fpga/icarus/all"]
    assert regress.main([str(suite), "--list", "--only", "nope/*"]) == 2
    assert "matches none of the 18 cases" in capsys.readouterr().err


@pytest.mark.parametrize("text, message", [
    ("[[model]]\nname = 'm'\nsource = 'mlp.ttfs'\ncolour = 1\n", r"model\[0\]: unknown keys "
                                                                  r"\['colour'\]"),
    ("[[model]]\nname = 'm'\nsource = 'gone.ttfs'\n[[target]]\nname = 'golden'\n",
     r"model\[0\]\.source: .*gone\.ttfs does not exist"),
    ("[[model]]\nname = 'm'\nsource = 'mlp.ttfs'\n[[target]]\nname = 'gpu'\n",
     r"target\[0\]\.name: unknown target 'gpu'"),
    ("[[model]]\nname = 'm'\nsource = 'mlp.ttfs'\n[[target]]\nname = 'mcu'\nsims = ['x']\n",
     r"target\[0\]\.sims: only the fpga target has sims"),
    ("[[model]]\nname = 'm'\nsource = 'mlp.ttfs'\n[[model]]\nname = 'm'\nsource = "
     "'cnn.ttfs'\n[[target]]\nname = 'golden'\n", r"\[\[model\]\] names must be unique"),
    ("[[model]]\nname = 'm'\nsource = 'mlp.ttfs'\nvectors = 0\n[[target]]\nname = 'golden'\n",
     r"model\[0\]\.vectors: expected an integer in 1\.\.100000, got 0"),
    ("[[model]]\nname = 'm'\nsource = 'mlp.ttfs'\n", r"no \[\[target\]\] entries"),
    ("[[model]\n", r"not valid TOML"),
])
def test_suite_errors_are_one_line_exit_2(tmp_path, capsys, text, message):
    save_models(tmp_path)
    assert regress.main([str(write_suite(tmp_path, text))]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {tmp_path / 'suite.toml'}: ") and err.count("\n") == 1
    assert re.search(message, err), err


def test_a_refused_model_is_a_case_error_and_a_missing_tool_exit_3(tmp_path, capsys,
                                                                   monkeypatch):
    save_models(tmp_path)
    suite = write_suite(tmp_path, MODELS + '[[target]]\nname = "onnx"\n')
    xml = tmp_path / "r.xml"
    assert regress.main([str(suite), "-q", "--only", "mlp/*", "--junit", str(xml)]) == 2
    assert "needs a run directory" in capsys.readouterr().out
    error = ET.parse(xml).getroot().find("testsuite/testcase/error")
    assert error.get("type") == "ExportError" and "needs a run directory" in error.get("message")

    def no_tool(*args, **kwargs):
        raise tools.ToolMissing("'iverilog' not found on PATH; install it: apt-get install "
                                "iverilog")
    monkeypatch.setattr(golden_target, "verify", no_tool)
    suite = write_suite(tmp_path, MODELS + '[[target]]\nname = "golden"\n')
    assert regress.main([str(suite), "-q", "--only", "cnn/*"]) == 3
    assert "MISSING" in capsys.readouterr().out


def corrupt_weight(net: ir.Network) -> ir.Network:
    """`net` with the first weight of its first weighted layer moved to the far end of its
    range."""
    layers = list(net.layers)
    layer = next(i for i, x in enumerate(layers) if hasattr(x, "weight"))
    weight = layers[layer].weight.copy()
    w_max = 2 ** (net.weight_bits - 1) - 1
    weight.flat[0] = -w_max if weight.flat[0] > 0 else w_max
    layers[layer] = dataclasses.replace(layers[layer], weight=weight)
    return dataclasses.replace(net, layers=tuple(layers))


def test_corrupted_weights_fail_exactly_the_affected_cases(tmp_path, capsys):
    """A changed weight in a model (caught by its golden baseline) and a corrupted weight in
    one generated firmware (caught by the MCU check) fail those cases only, naming the first
    divergence."""
    need_tool("gcc")
    save_models(tmp_path)
    baseline = tmp_path / "baseline"
    assert export_cli.main([str(tmp_path / "mlp.ttfs"), "--target", "golden", "-o",
                            str(baseline), "--vectors", "4"]) == 0
    suite = write_suite(tmp_path, MODELS.replace(
        'source = "mlp.ttfs"\n', 'source = "mlp.ttfs"\nreference = "baseline/vectors.npz"\n')
        + '[[target]]\nname = "golden"\n[[target]]\nname = "mcu"\nboards = ["none"]\n')
    only = ["--only", "mlp/*", "--only", "cnn/*"]
    assert regress.main([str(suite), "-q", *only]) == 0, capsys.readouterr().out
    ir.save(corrupt_weight(ir.load(tmp_path / "mlp.ttfs")), tmp_path / "mlp.ttfs")
    c_file = next((tmp_path / "cache" / "exports").glob("cnn-mcu-*/cnn_model.c"))
    c_file.chmod(0o644)
    text = c_file.read_text()
    first = re.search(r"cnn_conv0_weight\[\d+U\] = \{\s*(0x[0-9A-Fa-f]+|\d+)U", text)
    word = int(first.group(1), 0) ^ 0x80           # the top bit of the first 8-bit weight
    c_file.write_text(text[:first.start(1)] + str(word) + text[first.end(1):])
    xml, js = tmp_path / "r.xml", tmp_path / "r.json"
    code = regress.main([str(suite), "-q", *only, "--junit", str(xml), "--json", str(js)])
    stdout = capsys.readouterr().out
    assert code == 1, stdout
    results = {r["id"]: r for r in json.loads(js.read_text())["cases"]}
    assert {i for i, r in results.items() if r["status"] != "pass"} == {
        "mlp/golden/default/all", "cnn/mcu/none/all"}, stdout
    mlp = results["mlp/golden/default/all"]
    assert mlp["first_divergence"]["layer"] in ("fc0", "fc1", "out2", "scores", "classes")
    assert mlp["message"].startswith("reference: first divergence at layer")
    cnn = results["cnn/mcu/none/all"]
    assert cnn["failed"] > 0 and "conv0" in cnn["message"], cnn["message"]
    counts = junit_counts(xml)
    assert (counts["tests"], counts["failures"], counts["errors"]) == (4, 2, 0)
    messages = [f.get("message") for f in ET.parse(xml).getroot().iter("failure")]
    assert any("first divergence at layer" in m for m in messages), messages


def test_pytest_plugin_runs_a_suite_as_tests(tmp_path):
    save_models(tmp_path)
    baseline = tmp_path / "baseline"
    assert export_cli.main([str(tmp_path / "cnn.ttfs"), "--target", "golden", "-o",
                            str(baseline), "--vectors", "4"]) == 0
    ir.save(corrupt_weight(ir.load(tmp_path / "cnn.ttfs")), tmp_path / "cnn.ttfs")
    suite = write_suite(tmp_path, MODELS.replace(
        'source = "cnn.ttfs"\n', 'source = "cnn.ttfs"\nreference = "baseline/vectors.npz"\n')
        + '[[target]]\nname = "golden"\n' + VECTOR_SETS)
    # the plugin by name (entry points off: an installed one would register it twice)
    env = os.environ | {"PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1", "PYTHONPATH": str(ROOT)}
    cmd = [sys.executable, "-m", "pytest", "-p", "ttfs.codegen.pytest_plugin", "--ttfs-suite",
           str(suite), "-q", "-p", "no:cacheprovider", "-rf", "--rootdir", str(tmp_path)]

    def run(argv):
        return subprocess.run(argv, cwd=tmp_path, capture_output=True, text=True,
                              timeout=300, env=env)

    done = run(cmd)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "2 failed, 4 passed" in done.stdout
    assert "FAILED" in done.stdout and "cnn/golden/default/smoke" in done.stdout
    assert "first divergence at layer" in done.stdout
    done = run(cmd + ["-k", "mlp"])
    assert done.returncode == 0 and "2 passed" in done.stdout, done.stdout
    bad = write_suite(tmp_path, "[[model]\n")
    done = run(cmd[:6] + [str(bad), "-q"])
    assert done.returncode == 4 and f"--ttfs-suite: {bad}: not valid TOML" in done.stderr


def test_console_script_and_plugin_entry_point_are_declared():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["scripts"]["ttfs-regress"] == "ttfs.codegen.regress:main"
    assert project["entry-points"]["pytest11"]["ttfs"] == "ttfs.codegen.pytest_plugin"
    assert project["license-files"] == ["LICENSE"]
    assert "Apache License" in (ROOT / "LICENSE").read_text()



def test_the_documented_example_suite_is_valid(tmp_path):
    doc = (ROOT / "docs" / "regress.md").read_text()
    example = re.search(r"## SUITE\.toml.*?```toml\n(.*?)```", doc, re.S).group(1)
    for path in ("runs/mlp/config.json", "runs/mlp/model.safetensors", "models/cnn.ttfs",
                 "baselines/mlp.npz"):
        (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / path).write_text("")
    suite = regress.load_suite(write_suite(tmp_path, example))
    ids = [case.id for case in regress.cases(suite)]
    assert len(ids) == 2 * (1 + 1 + 2 + 2) + 2 * (1 + 2)
    assert "mlp/fpga/icarus/smoke" in ids and "cnn/mcu/mps2-an385/all" in ids
    assert suite.jobs == 2 and suite.cache == tmp_path / ".ttfs-cache"


def tiny_run(folder: Path, *, layers: list[dict], coding: str, seed: int) -> Path:
    """A run directory of an untrained, BN-adjusted net on 8x8 digits (no training)."""
    torch = pytest.importorskip("torch")
    from safetensors.torch import save_file

    from ttfs.sdk.model import build_model

    config = {"dataset": "digits", "method": "sm", "device": "cpu", "T": 8, "q": 0.5,
              "input_coding": coding, "bn_eps": 1e-5, "input_shape": [1, 8, 8],
              "num_classes": 10, "layers": layers}
    torch.manual_seed(seed)
    model = build_model(config, tau0=2.0, td0=0.5)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, torch.nn.modules.batchnorm._BatchNorm):
                module.running_mean.fill_(0.05)
                module.running_var.fill_(0.5)
    folder.mkdir(parents=True)
    (folder / "config.json").write_text(json.dumps(config))
    save_file({k: v.contiguous() for k, v in model.state_dict().items()
               if not k.endswith("num_batches_tracked")}, str(folder / "model.safetensors"))
    return folder


DENSE = [{"kind": "flatten", "name": "flatten"},
         {"kind": "dense", "name": "fc1", "out_features": 12},
         {"kind": "output", "name": "out", "out_features": 10}]
CONV = [{"kind": "conv2d", "name": "conv1", "out_channels": 2, "kernel_size": 3, "stride": 1,
         "padding": 1},
        {"kind": "maxpool2d", "name": "pool1", "size": 2}] + DENSE


@pytest.mark.slow
def test_full_matrix_three_models_six_targets(tmp_path, capsys):
    """MLP, CNN and ttfs-coded input (run directories) x golden, onnx, mcu host, mcu QEMU,
    fpga Verilator, fpga Icarus: every case passes and the JUnit XML counts agree."""
    pytest.importorskip("onnxruntime")
    for tool in ("gcc", "qemu-system-arm", "arm-none-eabi-gcc", "iverilog", "verilator"):
        need_tool(tool)
    tiny_run(tmp_path / "mlp", layers=DENSE, coding="real", seed=0)
    tiny_run(tmp_path / "cnn", layers=CONV, coding="real", seed=1)
    tiny_run(tmp_path / "ttfsin", layers=DENSE, coding="ttfs", seed=2)
    suite = write_suite(tmp_path, """
cache = "cache"
jobs = 2
[[model]]
name = "mlp"
source = "mlp"
vectors = 6
[[model]]
name = "cnn"
source = "cnn"
vectors = 6
[[model]]
name = "ttfsin"
source = "ttfsin"
vectors = 6
[[target]]
name = "golden"
[[target]]
name = "onnx"
[[target]]
name = "mcu"
boards = ["none", "mps2-an385"]
[[target]]
name = "fpga"
sims = ["verilator", "icarus"]
synth = false
[[vectors]]
name = "smoke"
count = 8
""")
    xml, js = tmp_path / "r.xml", tmp_path / "r.json"
    code = regress.main([str(suite), "-q", "--junit", str(xml), "--json", str(js)])
    stdout = capsys.readouterr().out
    assert code == 0, stdout
    counts = junit_counts(xml)
    assert (counts["tests"], counts["cases"], counts["failures"], counts["errors"]) == (
        18, 18, 0, 0), stdout
    assert len(counts["suites"]) == 12
    results = json.loads(js.read_text())["cases"]
    assert all(r["passed"] >= 8 and r["model_hash"] for r in results), stdout
    assert np.all([r["status"] == "pass" for r in results])
    # a corrupted weight in the generated FPGA ROM of the MLP: exactly its two FPGA cases fail
    mem = next((tmp_path / "cache" / "exports").glob("mlp-fpga-*/rtl/fc1_weight.mem"))
    lines = mem.read_text().splitlines()
    row = next(i for i, line in enumerate(lines) if not line.startswith("//"))
    lines[row] = f"{int(lines[row][0], 16) ^ 8:x}" + lines[row][1:]   # one weight's sign bit
    mem.chmod(0o644)
    mem.write_text("\n".join(lines) + "\n")
    code = regress.main([str(suite), "-q", "--only", "mlp/*", "--junit", str(xml), "--json",
                         str(js)])
    stdout = capsys.readouterr().out
    assert code == 1, stdout
    failing = {r["id"]: r for r in json.loads(js.read_text())["cases"] if r["status"] != "pass"}
    assert set(failing) == {"mlp/fpga/verilator/smoke", "mlp/fpga/icarus/smoke"}, stdout
    assert all("first divergence at layer 'fc1'" in r["message"] for r in failing.values()), (
        failing)
    assert all(r["first_divergence"]["layer"] == "fc1" for r in failing.values()), failing
    messages = [f.get("message") for f in ET.parse(xml).getroot().iter("failure")]
    assert len(messages) == 2 and all("layer 'fc1'" in m for m in messages), messages
    counts = junit_counts(xml)
    assert (counts["tests"], counts["failures"], counts["errors"]) == (6, 2, 0)
