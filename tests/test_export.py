"""ttfs-export / ttfs-verify (codegen/export_cli.py, verify_cli.py): flow, files, errors."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import types
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import load_file, save_file

from ttfs.codegen import export_cli, tools, verify_cli
from ttfs.codegen.targets import (DesignError, ExportError, Report, default_build_dir,
                             reject_options, take_vectors)
from ttfs.sdk import ir, randnet, vectors
from ttfs.sdk import vectors as vectors_mod
from ttfs.sdk.data import load_dataset


def stub_target(*, fail_emit: str | None = None, mismatches: int = 0) -> types.ModuleType:
    """A target module that records its context, so the CLI is tested without real targets."""
    module = types.ModuleType("stub")
    module.contexts = []

    def emit(ctx):
        module.contexts.append(ctx)
        if fail_emit:
            (ctx.out / "half.c").write_text("half")
            raise ExportError(fail_emit)
        (ctx.out / "model.c").write_text(f"// {ctx.name} {ctx.options}\n")

    def verify(out, *, progress=True):
        n = len(vectors.load(Path(out) / "vectors.npz"))
        return Report("stub", passed=n - mismatches, failed=mismatches,
                      first_mismatch="first divergence at layer 'fc1'" if mismatches else None)

    module.emit, module.verify = emit, verify
    return module


@pytest.fixture
def stub(monkeypatch):
    def install(**kwargs):
        module = stub_target(**kwargs)
        monkeypatch.setattr(export_cli.targets, "get", lambda name: module)
        return module
    return install


@pytest.fixture
def model_file(tmp_path) -> Path:
    path = tmp_path / "rnd.ttfs"
    ir.save(randnet.random_network(1, plan="cnn"), path)
    return path


def run_cli(main, argv, capsys) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_export_run_dir(digits_run, tmp_path, stub, capsys):
    module = stub()
    out = tmp_path / "out"
    code, stdout, _ = run_cli(export_cli.main, [digits_run, "--target", "mcu", "-o", out,
                                                "--vectors", 5, "--name", "digits",
                                                "--board", "microbit", "--option", "x=1",
                                                "--weight-bits", 6, "--verify"], capsys)
    assert code == 0, stdout
    assert sorted(p.name for p in out.iterdir()) == ["export.json", "model.c", "model.ttfs",
                                                      "vectors.npz"]
    net = ir.load(out / "model.ttfs")
    assert net.name == "digits" and net.weight_bits == 6 and net.kernel_bits == 8
    record = json.loads((out / "export.json").read_text())
    corners = vectors.corner_images(net)
    k = len(corners)
    coverage = record.pop("coverage")
    assert record == {"target": "mcu", "name": "digits", "ir_hash": net.content_hash,
                      "options": {"board": "microbit", "x": "1"}, "vectors": k + 5,
                      "corner_vectors": k, "generator": "ttfs-sdk 0.1.0", "weight_bits": 6,
                      "kernel_bits": 8}
    assert set(coverage) == {"fc1"} and f"{k + 5} vectors, {k} of them corner" in stdout
    assert "table coverage: fc1: theta" in stdout
    vec = vectors.load(out / "vectors.npz")
    data = load_dataset("digits")
    chosen = vectors.select_images(data.test_images, data.test_labels, 5)
    test_images = data.test_images[chosen].reshape(5, -1)
    np.testing.assert_array_equal(vec.inputs, np.concatenate([corners, test_images]))
    assert len(set(vec.labels[k:].tolist())) == 5            # class-stratified: 5 classes
    assert list(vec.kind) == ["corner"] * k + ["image"] * 5
    ctx = module.contexts[0]
    assert ctx.run_dir == digits_run and ctx.options == record["options"]
    assert f"stub: {k + 5} passed, 0 failed -> OK" in stdout
    assert not list(tmp_path.glob(".out.*"))


def test_export_model_file_uses_random_images_and_is_reproducible(model_file, tmp_path, stub,
                                                                  capsys):
    stub()
    outs = [tmp_path / "a", tmp_path / "b"]
    for out in outs:
        assert run_cli(export_cli.main, [model_file, "--target", "fpga", "-o", out,
                                         "--vectors", 4, "--num-pe", 2], capsys)[0] == 0
    for path in outs[0].iterdir():
        assert path.read_bytes() == (outs[1] / path.name).read_bytes(), path.name
    vec = vectors.load(outs[0] / "vectors.npz")
    assert len(vec) == 4 + len(vectors.corner_images(ir.load(model_file)))
    assert vec.inputs[0].max() == 0 and vec.inputs[1].min() == 255
    assert list(vec.kind[-4:]) == ["image"] * 4 and set(vec.labels[-4:]) == {-1}
    assert json.loads((outs[0] / "export.json").read_text())["options"] == {"num_pe": 2}
    # the model.ttfs keeps its name unless --name renames it
    assert ir.load(outs[0] / "model.ttfs").name == "rnd"
    out = tmp_path / "renamed"
    run_cli(export_cli.main, [model_file, "--target", "fpga", "-o", out, "--name", "net2"],
            capsys)
    assert ir.load(out / "model.ttfs").name == "net2"


def test_verify_mismatch_exits_1(model_file, tmp_path, stub, capsys):
    stub(mismatches=1)
    out = tmp_path / "out"
    code, stdout, _ = run_cli(export_cli.main, [model_file, "--target", "mcu", "-o", out,
                                                "--verify"], capsys)
    assert code == 1
    assert "first divergence at layer 'fc1'" in stdout and "MISMATCH" in stdout
    n = len(vectors.load(out / "vectors.npz"))
    code, stdout, _ = run_cli(verify_cli.main, [out], capsys)
    assert code == 1 and f"stub: {n - 1} passed, 1 failed -> MISMATCH" in stdout


def test_force_replaces_a_non_empty_out(model_file, tmp_path, stub, capsys):
    stub()
    out = tmp_path / "out"
    out.mkdir()
    (out / "old.txt").write_text("old")
    code, _, err = run_cli(export_cli.main, [model_file, "--target", "mcu", "-o", out], capsys)
    assert code == 2
    assert err == f"error: -o {out} exists and is not empty; pass --force to replace it\n"
    assert run_cli(export_cli.main, [model_file, "--target", "mcu", "-o", out, "--force"],
                   capsys)[0] == 0
    assert not (out / "old.txt").exists() and (out / "model.c").exists()


def corrupt_file(tmp_path: Path) -> Path:
    path = tmp_path / "bad.ttfs"
    path.write_bytes(b"garbage")
    return path


def empty_dir(tmp_path: Path) -> Path:
    path = tmp_path / "norun"
    path.mkdir()
    return path


def huge_bias_run(run: Path, tmp_path: Path) -> Path:
    """A copy of `run` whose hidden BN bias is so large that the accumulator overflows."""
    copy = tmp_path / "huge"
    copy.mkdir()
    (copy / "config.json").write_text((run / "config.json").read_text())
    arrays = load_file(str(run / "model.safetensors"))
    arrays["fc1.bn.bias"] = np.full_like(arrays["fc1.bn.bias"], 1e9)
    save_file(arrays, str(copy / "model.safetensors"))
    return copy


ERRORS = [
    (lambda run, tmp: [run, "--name", "2x"], r"error: --name: '2x' is not an identifier"),
    (lambda run, tmp: [run, "--name", "int"], r"error: --name: 'int' is a reserved word"),
    (lambda run, tmp: [tmp / "nope"], r"error: .*nope: no such run directory or model.ttfs"),
    (lambda run, tmp: [run, "--weight-bits", "1"], r"error: --weight-bits: expected 2\.\.16, "
                                                   r"got 1"),
    (lambda run, tmp: [run, "--kernel-bits", "17"], r"error: --kernel-bits: expected 2\.\.16"),
    (lambda run, tmp: [run, "--vectors", "-1"], r"error: --vectors: expected N >= 1, got -1"),
    (lambda run, tmp: [run, "--vectors", "0"], r"error: --vectors: expected N >= 1, got 0"),
    (lambda run, tmp: [run, "--option", "novalue"], r"error: --option: expected KEY=VALUE, "
                                                    r"got 'novalue'"),
    (lambda run, tmp: [corrupt_file(tmp)], r"error: .*bad.ttfs: not a valid model\.ttfs zip"),
    (lambda run, tmp: [huge_bias_run(run, tmp)], r"error: layer 'fc1': bias .* does not fit "
                                                 r"32 bits"),
    (lambda run, tmp: [empty_dir(tmp)], r"error: .*config\.json: cannot read the run config"),
    (lambda run, tmp: [tmp], r"error: -o .*out: lies inside the source"),
    (lambda run, tmp: [run, "--device", "lfe5u-85f"], r"error: --device is an option of "
                                                      r"--target fpga, not of --target mcu"),
    (lambda run, tmp: [run, "--num-pe", "4"], r"error: --num-pe is an option of --target fpga"),
]


@pytest.mark.parametrize("make_args, message", ERRORS)
def test_errors_exit_2_and_write_nothing(digits_run, tmp_path, stub, capsys, make_args,
                                         message):
    stub()
    out = tmp_path / "out"
    args = make_args(digits_run, tmp_path) + ["--target", "mcu", "-o", out]
    code, stdout, err = run_cli(export_cli.main, args, capsys)
    assert code == 2
    assert err.count("\n") == 1 and err.startswith("error: ")
    assert re.match(message, err), err
    assert not out.exists() and not list(tmp_path.glob(".out.*"))


def test_target_error_leaves_nothing_half_written(model_file, tmp_path, stub, capsys):
    stub(fail_emit="the model needs 3 MB of flash, the board has 256 kB")
    out = tmp_path / "out"
    code, _, err = run_cli(export_cli.main, [model_file, "--target", "mcu", "-o", out], capsys)
    assert code == 2
    assert err == "error: the model needs 3 MB of flash, the board has 256 kB\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["rnd.ttfs"]


def test_weight_bits_refused_for_a_model_file(model_file, tmp_path, stub, capsys):
    stub()
    code, _, err = run_cli(export_cli.main, [model_file, "--target", "mcu", "-o",
                                             tmp_path / "o", "--kernel-bits", "6"], capsys)
    assert code == 2 and "a model.ttfs is already quantized" in err


def test_verify_cli_errors(tmp_path, capsys):
    code, _, err = run_cli(verify_cli.main, [tmp_path], capsys)
    assert code == 2
    assert err.startswith(f"error: {tmp_path / 'export.json'}: cannot read")
    (tmp_path / "export.json").write_text("{}")
    assert run_cli(verify_cli.main, [tmp_path], capsys)[2].endswith("no 'target' field\n")
    (tmp_path / "export.json").write_text('{"target": "gpu"}')
    assert "unknown target 'gpu'" in run_cli(verify_cli.main, [tmp_path], capsys)[2]


def test_console_script_usage_error():
    result = subprocess.run([sys.executable, "-m", "ttfs.codegen.export_cli", "x", "--target",
                             "tpu", "-o", "y"], capture_output=True, text=True)
    assert result.returncode == 2
    assert "invalid choice: 'tpu'" in result.stderr


@pytest.mark.parametrize("target", ["mcu", "fpga"])
def test_hardware_targets_export_without_torch(tmp_path, target):
    # A hardware-regression machine has numpy + jinja2 only: with torch made unimportable, a
    # model.ttfs still exports to the hardware targets (DESIGN.md section 2).
    path = tmp_path / "rnd.ttfs"
    ir.save(randnet.random_network(2, plan="mlp"), path)
    out = tmp_path / target
    code = ("import sys; sys.modules['torch'] = None\n"
            "from ttfs.codegen.export_cli import main\n"
            f"sys.exit(main([{str(path)!r}, '--target', {target!r}, '-o', {str(out)!r}]))\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert (out / "model.ttfs").is_file() and (out / "export.json").is_file()
    assert ir.load(out / "model.ttfs").content_hash == ir.load(path).content_hash


def i1_target(outcome: str = "pass") -> types.ModuleType:
    """A target with the verify signature of ttfs.codegen.targets; `outcome` picks what verify
    does."""
    module = types.ModuleType("ttfs.codegen.targets.stub")

    def emit(ctx):
        (ctx.out / "model.c").write_text("// stub\n")

    def verify(out, *, progress=True, build_dir=None, sim=None, board=None, vectors=None,
               synth=True):
        reject_options("stub", sim=sim)
        if outcome == "missing":
            raise tools.ToolMissing("'qemu-system-arm' not found on PATH; install it: apt-get "
                                    "install qemu-system-arm")
        if outcome == "design":
            raise DesignError("verilator lint failed on the generated stub_top.sv")
        if outcome == "torch":
            raise ModuleNotFoundError("No module named 'torch'", name="torch")
        golden = take_vectors(vectors_mod.load(Path(out) / "vectors.npz"), vectors)
        (build_dir / "build.log").write_text(f"board={board} synth={synth}\n")
        report = Report("stub", tools={"cc": "cc 1.0"})
        bad = int(outcome == "fail")
        div = {"layer": "fc1", "sample": 0, "neuron": 3, "time": 2, "expected": 2,
               "got": 5} if bad else None
        with report.timed("host"):
            report.add_case("host", "fail" if bad else "pass", passed=len(golden) - bad,
                            failed=bad, first_divergence=div)
        return report

    module.emit, module.verify = emit, verify
    return module


@pytest.fixture
def i1_export(model_file, tmp_path, monkeypatch, capsys):
    """(OUT, set_outcome): a model exported with the stub target."""
    state = {"module": i1_target()}
    monkeypatch.setattr(export_cli.targets, "get", lambda name: state["module"])
    out = tmp_path / "out"
    assert export_cli.main([str(model_file), "--target", "mcu", "-o", str(out),
                            "--vectors", "3"]) == 0
    capsys.readouterr()

    def set_outcome(outcome):
        state["module"] = i1_target(outcome)
    return out, set_outcome


def test_verify_writes_a_fresh_report_outside_the_export(i1_export, tmp_path, capsys):
    out, set_outcome = i1_export
    before = {p.name: p.stat().st_mtime_ns for p in out.rglob("*")}
    build, js, xml = tmp_path / "build", tmp_path / "r.json", tmp_path / "r.xml"
    code = verify_cli.main([str(out), "--build-dir", str(build), "--vectors", "2", "--board",
                            "none", "--no-synth", "--json", str(js), "--junit", str(xml)])
    stdout = capsys.readouterr().out
    assert code == 0 and "stub: 2 passed, 0 failed -> OK" in stdout
    report = json.loads((build / "report.json").read_text())
    assert report == json.loads(js.read_text())
    assert report["status"] == "pass" and (report["passed"], report["failed"]) == (2, 0)
    assert report["cases"][0]["passed"] == 2 and report["tools"] == {"cc": "cc 1.0"}
    assert report["model_hash"] == json.loads((out / "export.json").read_text())["ir_hash"]
    assert "host" in report["timings"] and report["options"]["synth"] is False
    assert (build / "build.log").read_text() == "board=none synth=False\n"
    suite = ET.parse(xml).getroot().find("testsuite")
    assert (suite.get("tests"), suite.get("failures")) == ("1", "0")
    assert {p.name: p.stat().st_mtime_ns for p in out.rglob("*")} == before   # read-only
    # a failing run replaces the report; a crashing one leaves none (never a stale one)
    set_outcome("fail")
    assert verify_cli.main([str(out), "--build-dir", str(build), "--junit", str(xml)]) == 1
    assert "fc1" in capsys.readouterr().out
    report = json.loads((build / "report.json").read_text())
    assert report["status"] == "fail" and report["first_divergence"]["neuron"] == 3
    failure = ET.parse(xml).getroot().find("testsuite/testcase/failure")
    assert "first divergence at layer 'fc1', sample 0, neuron 3" in failure.get("message")
    set_outcome("missing")
    assert verify_cli.main([str(out), "--build-dir", str(build)]) == 3
    assert not (build / "report.json").exists()


def test_verify_default_build_dir_is_in_the_cache(i1_export, tmp_path, monkeypatch, capsys):
    out, _ = i1_export
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.delenv("TTFS_CACHE_DIR", raising=False)
    assert verify_cli.main([str(out)]) == 0
    build = default_build_dir(out)
    assert tmp_path / "cache" / "ttfs-sdk" / "build" in build.parents
    assert f"report: {build / 'report.json'}" in capsys.readouterr().out
    assert json.loads((build / "report.json").read_text())["status"] == "pass"


@pytest.mark.parametrize("outcome, argv, code, message", [
    ("pass", ["--vectors", "0"], 2, "error: --vectors: expected a count N >= 1, got 0\n"),
    ("pass", ["--sim", "icarus"], 2, "error: --sim: the stub target has no sim option "
                                     "(got 'icarus')\n"),
    ("pass", ["--build-dir", "{out}/b"], 2, "error: --build-dir {out}/b: must lie outside "
                                            "the export folder {out}\n"),
    ("design", [], 1, "error: verilator lint failed on the generated stub_top.sv\n"),
    ("missing", [], 3, "error: 'qemu-system-arm' not found on PATH; install it: apt-get "
                       "install qemu-system-arm\n"),
    ("torch", [], 3, "error: this command needs the Python package 'torch', which is not "
                     "installed: pip install 'ttfs-sdk[train]'\n"),
])
def test_verify_exit_statuses(i1_export, capsys, outcome, argv, code, message):
    out, set_outcome = i1_export
    set_outcome(outcome)
    argv = [a.format(out=out) for a in argv]
    assert verify_cli.main([str(out), *argv]) == code
    assert capsys.readouterr().err == message.format(out=out)


def test_verify_refuses_new_options_for_an_old_style_target(model_file, tmp_path, stub,
                                                            capsys):
    stub()
    out = tmp_path / "out"
    assert export_cli.main([str(model_file), "--target", "mcu", "-o", str(out)]) == 0
    assert verify_cli.main([str(out), "--board", "none"]) == 2
    assert capsys.readouterr().err.endswith("--board: the stub target does not support this "
                                            "option yet\n")


def test_a_missing_extra_names_what_to_install(digits_run, tmp_path):
    # torch and onnx not installed (a core `pip install ttfs-sdk[hw]`): a run directory still
    # exports to mcu; the onnx target says which extra it needs, exit 3, no traceback
    code = ("import sys\n"
            "class Block:\n"
            "    def find_spec(self, name, path=None, target=None):\n"
            "        if name.split('.')[0] in ('torch', 'onnx', 'onnxruntime'):\n"
            "            raise ModuleNotFoundError(f'No module named {name!r}', name=name)\n"
            "sys.meta_path.insert(0, Block())\n"
            "from ttfs.codegen.export_cli import main\n"
            f"args = [{str(digits_run)!r}, '-o', {str(tmp_path / 'o')!r}, '--vectors', '3']\n"
            "assert main(args + ['--target', 'mcu']) == 0\n"
            "sys.exit(main(args + ['--target', 'onnx', '--force']))\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 3, done.stderr
    assert done.stderr == ("error: --target onnx needs the Python package 'onnx', which is not "
                           "installed: pip install 'ttfs-sdk[onnx]'\n")
    assert (tmp_path / "o" / "model.ttfs").is_file()       # the mcu export is still there
