"""The suite's rule that no test may skip (tests/support/no_skips.py)."""

from __future__ import annotations

import pytest

pytest_plugins = ["pytester"]


def test_a_skipped_test_fails_the_run(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import pytest

        def test_runs():
            pass

        def test_skips():
            pytest.skip("redis-server not found")
        """
    )
    result = pytester.runpytest_inprocess("-p", "tests.support.no_skips")
    result.assert_outcomes(passed=1, skipped=1)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(["*1 skipped: a test may not skip here*"])


def test_a_run_without_skips_passes(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("def test_runs():\n    pass\n")
    result = pytester.runpytest_inprocess("-p", "tests.support.no_skips")
    assert result.ret == pytest.ExitCode.OK
