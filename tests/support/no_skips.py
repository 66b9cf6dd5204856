"""A pytest plugin: a skipped test fails the run.

Every service a test needs is started by the suite itself, so a skip can only hide a
test that did not run (a missing service, a forgotten ``skipif``). Deselection (the
PostgreSQL-only tests in the SQLite run) is not a skip."""

from __future__ import annotations

import pytest


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    skipped = reporter.stats.get("skipped", []) if reporter is not None else []
    if skipped and exitstatus == pytest.ExitCode.OK:
        reporter.ensure_newline()
        reporter.write_line(f"{len(skipped)} skipped: a test may not skip here", red=True)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
