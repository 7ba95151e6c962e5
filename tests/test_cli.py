"""`ttfs-train` end to end on digits, and every bad input: one `error:` line and exit code 2."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from ttfs.sdk.cli import main

FAST = ["--dataset", "digits", "--arch", "mlp", "--epochs", "2", "--quiet"]


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("cli") / "run"
    assert main(FAST + ["--out", str(out)]) == 0
    return out


def test_train_then_eval(run_dir, capsys):
    result = json.loads((run_dir / "result.json").read_text())
    assert main(["--eval", str(run_dir)]) == 0
    printed = capsys.readouterr().out
    assert f"test accuracy (surrogate)      {100 * result['test_accuracy']:.2f} %" in printed
    assert f"{result['spikes_per_hidden_neuron']:.4f}" in printed


def test_toml_config_and_cli_override(tmp_path, capsys):
    toml = tmp_path / "c.toml"
    toml.write_text('dataset = "digits"\narch = "mlp"\nepochs = 1\nlambda-bn = 0.5\n'
                    'T = 8\nmethod = "sm"\n')
    out = tmp_path / "run"
    assert main(["--config", str(toml), "--T", "6", "--out", str(out), "--quiet"]) == 0
    cfg = json.loads((out / "config.json").read_text())
    assert (cfg["T"], cfg["lambda_bn"], cfg["epochs"], cfg["method"]) == (6, 0.5, 1, "sm")
    assert "run written to" in capsys.readouterr().out


def error_line(capsys, argv) -> str:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1 and "Traceback" not in err
    return err


@pytest.mark.parametrize("extra,message", [
    (["--arch", "resnet"], "unknown arch 'resnet'"),
    (["--dataset", "imagenet"], "unknown dataset 'imagenet'"),
    (["--arch", "vgg16"], r"arch 'vgg16' needs 3x32x32 inputs, got [1, 8, 8]"),
    (["--T", "1"], "T must be at least 2, got 1"),
    (["--tau0", "0"], "tau0 must be > 0, got 0.0"),
    (["--tau0", "-2"], "tau0 must be > 0, got -2.0"),
    (["--epochs", "-3"], "epochs must be at least 1, got -3"),
    (["--method", "stdp"], "unknown method 'stdp'"),
    (["--epochs", "two"], "argument --epochs: invalid int value: 'two'"),
    (["--dataset", "idx:/nonexistent"], "/nonexistent: not a directory"),
    (["--lr", "1e30", "--method", "relu", "--epochs", "1"], "loss became"),
])
def test_bad_training_input(tmp_path, capsys, extra, message):
    out = tmp_path / "run"
    assert message in error_line(capsys, FAST + ["--out", str(out)] + extra)
    assert not out.exists() and list(tmp_path.iterdir()) == []


def test_missing_out_and_unknown_toml_key(tmp_path, capsys):
    assert "--out is required" in error_line(capsys, FAST)
    toml = tmp_path / "c.toml"
    toml.write_text("epochz = 3\n")
    assert "unknown key(s) epochz" in error_line(capsys, ["--config", str(toml), "--out",
                                                           str(tmp_path / "r")])
    toml.write_text("epochs = 'ten'\n")
    assert "option epochs: expected int, got 'ten'" in error_line(
        capsys, ["--config", str(toml), "--out", str(tmp_path / "r")])


def test_existing_out_needs_force(run_dir, tmp_path, capsys):
    out = tmp_path / "busy"
    out.mkdir()
    (out / "keep.txt").write_text("x")
    assert "exists and is not empty; pass --force" in error_line(capsys, FAST + ["--out",
                                                                                 str(out)])
    assert (out / "keep.txt").exists()
    assert main(FAST + ["--out", str(out), "--force", "--epochs", "1"]) == 0
    assert not (out / "keep.txt").exists() and (out / "model.safetensors").exists()


@pytest.mark.parametrize("out, message", [
    (".", "is the current folder or contains it"),
    ("..", "is the current folder or contains it"),
    ("~", "is the home folder or contains it"),
    ("/", "is a filesystem root"),
])
def test_dangerous_out_is_refused_before_training(tmp_path, monkeypatch, capsys, out, message):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "keep.txt").write_text("x")
    out = out.replace("~", str(Path.home()))
    err = error_line(capsys, FAST + ["--out", out, "--force"])
    assert err.startswith("error: --out ") and message in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keep.txt"]


def test_bad_eval_dirs(run_dir, tmp_path, capsys):
    assert "config.json: cannot read the run config" in error_line(
        capsys, ["--eval", str(tmp_path / "none")])
    broken = tmp_path / "broken"
    shutil.copytree(run_dir, broken)
    (broken / "model.safetensors").write_bytes(b"not a checkpoint")
    assert "model.safetensors: cannot read the checkpoint" in error_line(
        capsys, ["--eval", str(broken)])
    mismatch = tmp_path / "mismatch"
    shutil.copytree(run_dir, mismatch)
    cfg = json.loads((mismatch / "config.json").read_text())
    cfg["layers"][1]["out_features"] = 64
    (mismatch / "config.json").write_text(json.dumps(cfg))
    assert "does not match config.json" in error_line(capsys, ["--eval", str(mismatch)])
    cfg["layers"][1]["out_features"] = 256
    cfg["input_coding"] = "ttfs"
    (mismatch / "config.json").write_text(json.dumps(cfg))
    assert "missing: input.tau, input.td" in error_line(capsys, ["--eval", str(mismatch)])


def test_eval_rejects_a_non_positive_tau(run_dir, tmp_path, capsys):
    from safetensors.numpy import load_file, save_file

    bad = tmp_path / "bad"
    shutil.copytree(run_dir, bad)
    arrays = load_file(str(bad / "model.safetensors"))
    arrays["fc1.tau"] = arrays["fc1.tau"] * 0 - 1
    save_file(arrays, str(bad / "model.safetensors"))
    assert "layer 'fc1': kernel parameters tau=-1.0" in error_line(capsys, ["--eval", str(bad)])


def test_without_torch_names_the_extra():
    # A core install (numpy + jinja2) has no torch: ttfs-train says which extra to install.
    code = ("import sys; sys.modules['torch'] = None\n"
            "from ttfs.sdk.cli import main\n"
            "sys.exit(main(['--dataset', 'digits', '--out', 'never']))\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 3
    assert done.stderr == ("error: ttfs-train needs the Python package 'torch' of the train "
                           "extra: pip install 'ttfs-sdk[train]'\n")
