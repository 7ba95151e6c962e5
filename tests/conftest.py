"""Shared pytest fixtures: tool requirements (skip locally, fail in CI)."""

from __future__ import annotations

import pytest

from codegen import tools


def need_tool(name: str) -> str:
    """Path of an external tool; skips the test when absent unless TTFS_REQUIRE_TOOLS=1."""
    path = tools.find_tool(name)
    if path is None:
        message = f"required tool '{name}' is not installed"
        if tools.tools_required():
            pytest.fail(message + " (TTFS_REQUIRE_TOOLS=1)")
        pytest.skip(message)
    return path
