"""The Procfile's web process: gunicorn logging through structlog, link tokens cut out."""

from __future__ import annotations

import http.client
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from blink_sms.settings import Settings
from tests.support.services import free_port

ROOT = Path(__file__).resolve().parents[2]
TOKEN = "dGhpcy1pcy1hLWxpbmstdG9rZW4tb2YtMjU2LWJpdHM"


def procfile_web() -> str:
    lines = (ROOT / "Procfile").read_text(encoding="utf-8").splitlines()
    [web] = [line.split(":", 1)[1].strip() for line in lines if line.startswith("web:")]
    return web


def get(port: int, path: str, **headers: str) -> int:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        connection.request("GET", path, headers=headers)
        return connection.getresponse().status
    finally:
        connection.close()


def wait_until_healthy(port: int, process: subprocess.Popen[bytes], log: Path) -> None:
    end = time.monotonic() + 30
    while True:
        try:
            if get(port, "/healthz") == 200:
                return
        except OSError:
            pass
        assert process.poll() is None, log.read_text()
        assert time.monotonic() < end, log.read_text()
        time.sleep(0.05)


def test_the_web_process_logs_json_and_never_a_link_token(
    settings: Settings, tmp_path: Path
) -> None:
    port = free_port()
    env = {
        **os.environ,
        "PORT": str(port),
        "WEB_CONCURRENCY": "1",
        "BLINK_ENV": "production",
        "BLINK_SECRET_KEY": settings.secret_key,
        "BLINK_DATABASE_URL": settings.database_url,
        "BLINK_PUBLIC_URL": "https://sms.example.com",
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
    }
    # As Procfile runners do: the line through a shell, which expands ${PORT}.
    command = ["bash", "-c", f"exec {procfile_web()}"]
    log = tmp_path / "web.log"
    with log.open("wb") as output:
        process = subprocess.Popen(command, cwd=tmp_path, env=env, stdout=output, stderr=output)
        try:
            wait_until_healthy(port, process, log)
            assert get(port, f"/enroll/{TOKEN}?utm=mail", **{"X-Request-Id": "req-42"}) == 404
        finally:
            process.terminate()
            process.wait(timeout=30)
    text = log.read_text()
    assert TOKEN not in text
    lines: list[dict[str, Any]] = [json.loads(line) for line in text.splitlines()]
    loggers = {line["logger"] for line in lines}
    assert {"gunicorn.error", "gunicorn.access", "enrollment.views"} <= loggers
    [access] = [line for line in lines if line.get("request_id") == "req-42" and
                line["logger"] == "gunicorn.access"]  # fmt: skip
    assert access["event"] == "request"
    assert (access["method"], access["path"], access["status"]) == (
        "GET",
        "/enroll/[redacted]",
        404,
    )
    assert "utm" not in json.dumps(access)
    after = lines[lines.index(access) + 1 :]
    assert after and not [line for line in after if "request_id" in line]
