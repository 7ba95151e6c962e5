"""Trained models through the whole MCU chain: `ttfs-train` (briefly) -> `ttfs-export --target
mcu --verify` -> 0 mismatches on the host and under QEMU, on real test images.

The digits MLP (8x8 inputs) runs on the micro:bit (Cortex-M0, 16 KiB RAM); the mnist5k CNN
(conv5x5 16 - pool - conv5x5 32 - pool - dense 128 - out 10) on mps2-an385 (Cortex-M3).
"""

from __future__ import annotations

import re

import pytest

from ttfs.codegen import export_cli, verify_cli
from ttfs.sdk import vectors
from tests.conftest import need_tool

pytest.importorskip("torch")
train_mod = pytest.importorskip("ttfs.sdk.train")

TOOLS = ("gcc", "make", "arm-none-eabi-gcc", "arm-none-eabi-size", "qemu-system-arm")


def _train(tmp_path_factory, name: str, **config):
    run = tmp_path_factory.mktemp(name) / "run"
    train_mod.train(train_mod.TrainConfig(**config), run, force=True, quiet=True)
    return run


def _export_and_verify(run, out, board: str, n_vectors: int, capsys) -> str:
    for tool in TOOLS:
        need_tool(tool)
    status = export_cli.main([str(run), "--target", "mcu", "-o", str(out), "--name", "net",
                              "--vectors", str(n_vectors), "--board", board, "--verify"])
    text = capsys.readouterr().out
    assert status == 0, text
    assert "mcu: " in text and " 0 failed -> OK" in text
    assert f"qemu {board}" in text
    assert verify_cli.main([str(out)]) == 0
    # every vector (test images + corner images) on the host twice, and those the board holds
    n = len(vectors.load(out / "vectors.npz"))
    on_board = int(re.search(rf"qemu {board} \(\S+\)\s+(\d+) passed", text).group(1))
    assert n > n_vectors and 0 < on_board <= n
    assert f"mcu: {2 * n + on_board} passed, 0 failed -> OK" in text
    return text


@pytest.mark.slow
def test_trained_digits_mlp_on_cortex_m0(tmp_path_factory, tmp_path, capsys):
    run = _train(tmp_path_factory, "digits", dataset="digits", arch="mlp", epochs=3)
    _export_and_verify(run, tmp_path / "out", "microbit", 60, capsys)


@pytest.mark.slow
def test_trained_mnist5k_cnn_on_cortex_m3(tmp_path_factory, tmp_path, capsys):
    run = _train(tmp_path_factory, "mnist5k-cnn", dataset="mnist5k", arch="cnn", epochs=1)
    _export_and_verify(run, tmp_path / "out", "mps2-an385", 30, capsys)
