"""The demo app over a fresh SQLite database and sandbox directory, seeded."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from blink_sms.app import create_app
from blink_sms.context import blink
from blink_sms.db import upgrade
from blink_sms.demo.seed import seed
from blink_sms.queue import InProcessQueue
from blink_sms.settings import Settings


def demo_settings(tmp_path: Path, **changes: Any) -> Settings:
    return Settings(
        secret_key="x" * 40,
        env="test",
        database_url=f"sqlite:///{tmp_path}/db.sqlite",
        public_url="http://localhost",
        twilio_account_sid="AC" + "0" * 32,
        twilio_auth_token="t" * 32,
        sms_backend="console",
        job_retry_intervals=(),
    ).with_changes(**changes)


@pytest.fixture
def demo_app(tmp_path: Path) -> Iterator[Flask]:
    settings = demo_settings(tmp_path)
    upgrade(settings.database_url)
    app = create_app(settings)
    with app.app_context():
        seed(str(tmp_path / "dir.sqlite"))
    yield app
    wait_for_demo_jobs(app)


@pytest.fixture
def browser(demo_app: Flask) -> FlaskClient:
    return demo_app.test_client()


def wait_for_demo_jobs(app: Flask) -> None:
    with app.app_context():
        queue = blink().queue
        assert isinstance(queue, InProcessQueue)
        queue.join()
