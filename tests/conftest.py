"""Shared pytest fixtures: tool requirements (skip locally, fail in CI)."""

from __future__ import annotations

import os

import pytest

from ttfs.codegen import tools


def need_tool(name: str) -> str:
    """Path of an external tool; skips the test when absent unless TTFS_REQUIRE_TOOLS=1."""
    path = tools.find_tool(name)
    if path is None:
        message = f"required tool '{name}' is not installed"
        if tools.tools_required():
            pytest.fail(message + " (TTFS_REQUIRE_TOOLS=1)")
        pytest.skip(message)
    return path


@pytest.fixture(scope="session", autouse=True)
def build_cache(tmp_path_factory):
    """Verification build folders go to the session's temporary folder, not ~/.cache."""
    old = os.environ.get("TTFS_CACHE_DIR")
    os.environ["TTFS_CACHE_DIR"] = str(tmp_path_factory.mktemp("ttfs-cache"))
    yield
    if old is None:
        os.environ.pop("TTFS_CACHE_DIR", None)
    else:
        os.environ["TTFS_CACHE_DIR"] = old


@pytest.fixture(scope="session")
def digits_run(tmp_path_factory):
    """A tiny trained run directory (digits, MLP, 2 epochs; about 2 s) for export tests."""
    train = pytest.importorskip("ttfs.sdk.train")
    out = tmp_path_factory.mktemp("runs") / "digits_mlp"
    train.train(train.TrainConfig(dataset="digits", arch="mlp", epochs=2, T=8, tau0=2.0), out,
                quiet=True)
    return out
