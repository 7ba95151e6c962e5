"""Training under torchrun (2 CPU ranks, gloo), checkpoints and --resume, the VGG-16 path."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.numpy import load_file

from ttfs.sdk.data import load_dataset
from ttfs.sdk.floatnet import load_float_network
from ttfs.sdk.quantize import quantize
from ttfs.sdk.train import PARAM_LOG_ENV, TrainConfig, fit, partial_dir, train

ROOT = Path(__file__).resolve().parents[1]
ARGS = ["--dataset", "digits", "--arch", "mlp", "--epochs", "2", "--sr-epochs", "1",
        "--tk-epoch", "1", "--T", "8", "--tau0", "2", "--quiet"]


def test_two_gloo_ranks_hold_identical_parameters_and_write_a_normal_run(tmp_path):
    """One torchrun job of 2 CPU ranks: both ranks log the sha256 of their parameters after
    every step (`TTFS_DEBUG_PARAM_LOG`); the run directory has the single-process format."""
    env = dict(os.environ, OMP_NUM_THREADS="1", **{PARAM_LOG_ENV: str(tmp_path / "log")})
    done = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone",
                           "--nproc_per_node", "2", "-m", "ttfs.sdk.cli", *ARGS, "--out",
                           str(tmp_path / "ddp")], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.count("run written to") == 1                   # rank 0 only
    logs = [(tmp_path / f"log.rank{r}").read_text().splitlines() for r in (0, 1)]
    # 1,437 training images, 10 % validation: 1,293 in global batches of 128 = 11 steps/epoch
    assert len(logs[0]) == 22 and logs[0] == logs[1]
    assert len({line.split()[2] for line in logs[0]}) == 22           # parameters moved
    single = tmp_path / "single"
    train(TrainConfig(dataset="digits", arch="mlp", epochs=2, sr_epochs=1, tk_epoch=1, T=8,
                      tau0=2.0), single, quiet=True)
    ddp = tmp_path / "ddp"
    assert sorted(p.name for p in ddp.iterdir()) == sorted(p.name for p in single.iterdir())
    assert not partial_dir(ddp).exists()
    for name in ("config.json", "result.json"):
        a, b = (json.loads((d / name).read_text()) for d in (ddp, single))
        assert a.keys() == b.keys()
    result = json.loads((ddp / "result.json").read_text())
    assert result["world_size"] == 2 and result["train_images"] == 1437
    assert load_file(str(ddp / "model.safetensors")).keys() == \
        load_file(str(single / "model.safetensors")).keys()
    alone = json.loads((single / "result.json").read_text())["test_accuracy"]
    assert result["test_accuracy"] > 0.6 and abs(result["test_accuracy"] - alone) < 0.15
    quantize(load_float_network(ddp))                                 # ttfs-export's reader


def test_interrupted_run_resumes_to_the_same_model(tmp_path, monkeypatch):
    cfg = TrainConfig(dataset="digits", arch="d32", epochs=3, sr_epochs=1, tk_epoch=1, T=8,
                      tau0=2.0, augment=1)
    whole = train(cfg, tmp_path / "whole", quiet=True)
    import ttfs.sdk.train

    real_save = ttfs.sdk.train.save_checkpoint

    def save_then_stop(path, state):
        real_save(path, state)
        if len(state["history"]) == 2:
            raise KeyboardInterrupt

    monkeypatch.setattr(ttfs.sdk.train, "save_checkpoint", save_then_stop)
    out = tmp_path / "cut"
    with pytest.raises(KeyboardInterrupt):
        train(cfg, out, quiet=True)
    assert not out.exists() and (partial_dir(out) / "checkpoint.pt").is_file()
    monkeypatch.setattr(ttfs.sdk.train, "save_checkpoint", real_save)
    resumed = train(None, out, resume=True, quiet=True)
    assert not partial_dir(out).exists()
    a, b = (load_file(str(d / "model.safetensors")) for d in (tmp_path / "whole", out))
    for key in a:
        np.testing.assert_array_equal(a[key], b[key], err_msg=key)
    assert resumed["test_accuracy"] == whole["test_accuracy"]
    history = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [h["epoch"] for h in history] == [0, 1, 2]
    with pytest.raises(ValueError, match="no checkpoint"):
        train(None, out, resume=True, quiet=True)


def test_vgg16_on_cifar10_binary_batches_one_step(tmp_path):
    rng = np.random.default_rng(0)
    for name in [f"data_batch_{i}.bin" for i in range(1, 6)] + ["test_batch.bin"]:
        labels = rng.integers(0, 10, (2, 1), dtype=np.uint8)
        pixels = rng.integers(0, 256, (2, 3072), dtype=np.uint8)
        (tmp_path / name).write_bytes(np.concatenate([labels, pixels], 1).tobytes())
    dataset = load_dataset(f"cifar10:{tmp_path}")
    torch.set_num_threads(1)
    result = fit(TrainConfig(dataset=f"cifar10:{tmp_path}", arch="vgg16", epochs=1,
                             batch_size=16), dataset, quiet=True)
    assert len(result.model.hidden) == 15 and len(result.history) == 1     # 13 conv + 2 FC
    assert np.isfinite(result.history[0]["loss"])
