"""pytest plugin (entry point `pytest11`): `pytest --ttfs-suite SUITE.toml` runs a ttfs-regress
suite as pytest tests, one test item per case (ids `model/target/variant/vectors`), so a user's
repository checks its models beside its other tests, with pytest's own -k, -x, -n and
--junitxml.

A case passes, fails (mismatch or broken generated design: the message names the first
divergence) or errors (a model a target refuses, a failing tool); a missing tool or Python
extra skips the case unless TTFS_REQUIRE_TOOLS=1, which makes it fail. Exports and builds are
cached as for ttfs-regress (`--ttfs-cache DIR` or the suite's `cache`), and shared safely
between pytest-xdist workers (a lock per export).
"""

from __future__ import annotations

from pathlib import Path

import pytest


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("ttfs", "TTFS SDK hardware regression")
    group.addoption("--ttfs-suite", action="append", default=[], metavar="SUITE.toml",
                    help="run the cases of a ttfs-regress suite file as tests (repeatable)")
    group.addoption("--ttfs-cache", default=None, metavar="DIR",
                    help="exports and builds of the suite (default: the suite's 'cache')")


class CaseFailed(Exception):
    """A case that did not pass; carries its result dict."""

    def __init__(self, result: dict):
        super().__init__(result["message"])
        self.result = result


class SuiteFile(pytest.File):
    """A suite file: collects one CaseItem per case of its matrix."""

    def collect(self):
        from ttfs.codegen import regress

        cache = self.config.getoption("ttfs_cache")
        suite = regress.load_suite(self.path, cache=Path(cache) if cache else None)
        for case in regress.cases(suite):
            yield CaseItem.from_parent(self, name=case.id, case=case, suite=suite)


class CaseItem(pytest.Item):
    """One case of a suite."""

    def __init__(self, *, case, suite, **kwargs):
        super().__init__(**kwargs)
        self.case, self.suite = case, suite
        self.add_marker(pytest.mark.ttfs_case)

    def runtest(self) -> None:
        from ttfs.codegen import regress, tools

        result = regress.run_unit(regress.Unit(self.suite.cache, [self.case]))[0]
        self.user_properties.append(("ttfs_status", result["status"]))
        self.user_properties.append(("ttfs_model_hash", str(result["model_hash"])))
        if result["status"] == "pass":
            return
        if result["status"] == "missing" and not tools.tools_required():
            pytest.skip(result["message"])
        raise CaseFailed(result)

    def repr_failure(self, excinfo, style=None):
        if isinstance(excinfo.value, CaseFailed):
            from ttfs.codegen import regress

            r = excinfo.value.result
            return f"{r['id']}: {r['status']} (exit {r['exit']})\n{regress._details(r)}"
        return super().repr_failure(excinfo, style=style)

    def reportinfo(self):
        return self.path, None, f"ttfs case {self.name}"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "ttfs_case: a case of a ttfs-regress suite")


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(session: pytest.Session, config: pytest.Config,
                                  items: list[pytest.Item]) -> None:
    """Append the cases of every --ttfs-suite (before -k/-m deselect items); a malformed
    suite is a usage error (one line)."""
    for name in config.getoption("ttfs_suite"):
        from ttfs.codegen import regress

        path = Path(name).resolve()
        try:
            items.extend(SuiteFile.from_parent(session, path=path).collect())
        except regress.SuiteError as exc:
            raise pytest.UsageError(f"--ttfs-suite: {exc}") from None
