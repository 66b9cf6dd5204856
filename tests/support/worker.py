"""Run a real ``blink-sms worker`` process for end-to-end tests, and read what it texted."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from blink_sms.settings import Settings
from tests.conftest import ACCOUNT_SID

ROOT = Path(__file__).resolve().parents[2]
Send = Callable[..., Any]


def worker_env(settings: Settings) -> dict[str, str]:
    return {
        **os.environ,
        "BLINK_SECRET_KEY": settings.secret_key,
        "BLINK_DATABASE_URL": settings.database_url,
        "BLINK_REDIS_URL": settings.redis_url or "",
        "BLINK_PUBLIC_URL": settings.public_url,
        "BLINK_TWILIO_ACCOUNT_SID": ACCOUNT_SID,
        "BLINK_TWILIO_AUTH_TOKEN": settings.twilio_auth_token or "",
        "BLINK_ENV": "production",
        "BLINK_LOG_LEVEL": "debug",
        "BLINK_JOB_RETRY_INTERVALS": ",".join(map(str, settings.job_retry_intervals)),
        "BLINK_JOB_LEASE_SECONDS": str(settings.job_lease_seconds),
        "BLINK_SWEEP_SECONDS": str(settings.sweep_seconds),
    }


def run_worker(settings: Settings, tmp_path: Path) -> tuple[list[dict[str, str]], str]:
    """Run a burst worker in its own process; return what it texted and its log output."""
    out = tmp_path / "sent.json"
    result = subprocess.run(
        [sys.executable, "-m", "tests.support.run_worker", str(out), ACCOUNT_SID],
        cwd=ROOT,
        env=worker_env(settings),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(out.read_text()), result.stdout + result.stderr


def password_in(body: str) -> str:
    match = re.search(r"password: (\S+)", body)
    assert match, body
    return match.group(1)


@contextmanager
def running_worker(settings: Settings, log: Path, *args: str) -> Iterator[subprocess.Popen[bytes]]:
    """``blink-sms worker ARGS`` running (not burst) until the block ends, then SIGTERM."""
    with log.open("wb") as output:
        process = subprocess.Popen(
            [sys.executable, "-m", "blink_sms", "worker", *args],
            cwd=ROOT,
            env=worker_env(settings),
            stdout=output,
            stderr=subprocess.STDOUT,
        )
        try:
            yield process
        finally:
            process.terminate()
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
