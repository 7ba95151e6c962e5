"""ttfs-export / ttfs-verify (codegen/export_cli.py, verify_cli.py): flow, files, errors."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import types
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import load_file, save_file

from codegen import export_cli, verify_cli
from codegen.targets import ExportError, Report
from sdk import ir, randnet, vectors
from sdk.data import load_dataset


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
    assert record == {"target": "mcu", "name": "digits", "ir_hash": net.content_hash,
                      "options": {"board": "microbit", "x": "1"}, "vectors": 7,
                      "generator": "ttfs-sdk 0.1.0", "weight_bits": 6, "kernel_bits": 8}
    vec = vectors.load(out / "vectors.npz")
    test_images = load_dataset("digits").test_images[:5].reshape(5, -1)
    np.testing.assert_array_equal(vec.inputs, np.concatenate([vectors.corner_images(net),
                                                              test_images]))
    ctx = module.contexts[0]
    assert ctx.run_dir == digits_run and ctx.options == record["options"]
    assert "stub: 7 passed, 0 failed -> OK" in stdout
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
    assert len(vec) == 6
    assert vec.inputs[0].max() == 0 and vec.inputs[1].min() == 255
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
    code, stdout, _ = run_cli(verify_cli.main, [out], capsys)
    assert code == 1 and "stub: 101 passed, 1 failed -> MISMATCH" in stdout


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
    (lambda run, tmp: [run, "--vectors", "-1"], r"error: --vectors: expected N >= 0, got -1"),
    (lambda run, tmp: [run, "--option", "novalue"], r"error: --option: expected KEY=VALUE, "
                                                    r"got 'novalue'"),
    (lambda run, tmp: [corrupt_file(tmp)], r"error: .*bad.ttfs: not a valid model\.ttfs zip"),
    (lambda run, tmp: [huge_bias_run(run, tmp)], r"error: layer 'fc1': bias .* does not fit "
                                                 r"32 bits"),
    (lambda run, tmp: [tmp], r"error: .*config\.json: cannot read the run config"),
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
    result = subprocess.run([sys.executable, "-m", "codegen.export_cli", "x", "--target", "tpu",
                             "-o", "y"], capture_output=True, text=True)
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
            "from codegen.export_cli import main\n"
            f"sys.exit(main([{str(path)!r}, '--target', {target!r}, '-o', {str(out)!r}]))\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert (out / "model.ttfs").is_file() and (out / "export.json").is_file()
    assert ir.load(out / "model.ttfs").content_hash == ir.load(path).content_hash
