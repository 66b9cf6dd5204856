"""Worker liveness: /readyz and ``clients list`` name clients whose queue has no live worker."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from flask.testing import FlaskClient

from blink_sms import liveness
from blink_sms.context import Blink
from blink_sms.settings import Settings
from tests.conftest import World


@pytest.fixture
def settings(settings: Settings, redis_url: str) -> Settings:
    return settings.with_changes(redis_url=redis_url)


def test_readyz_names_a_client_that_no_worker_ever_served(http: FlaskClient, world: World) -> None:
    ready = http.get("/readyz")
    assert ready.status_code == 200  # the web process still takes texts
    assert ready.json["workers"] == "missing"
    assert ready.json["clients_without_worker"] == {
        "contoso": "no worker has ever served this client's queue"
    }


def test_readyz_is_content_while_a_worker_beats_and_says_when_it_stopped(
    http: FlaskClient, world: World, services: Blink
) -> None:
    assert services.redis is not None
    liveness.beat(services.redis, ["client-contoso", "email"])
    assert http.get("/readyz").json["workers"] == "ok"
    liveness.beat(services.redis, ["client-contoso"], now=time.time() - 75)
    ready = http.get("/readyz").json
    assert ready["workers"] == "missing"
    assert ready["clients_without_worker"]["contoso"].startswith("no live worker for 7")


def test_clients_list_shows_each_clients_worker(
    world: World, services: Blink, monkeypatch: pytest.MonkeyPatch
) -> None:
    from click.testing import CliRunner

    from blink_sms.cli import cli

    world.another_client("fabrikam")
    assert services.redis is not None
    liveness.beat(services.redis, ["client-fabrikam"])
    settings = services.settings
    env = {
        "BLINK_SECRET_KEY": settings.secret_key,
        "BLINK_DATABASE_URL": settings.database_url,
        "BLINK_REDIS_URL": settings.redis_url or "",
    }
    result = CliRunner().invoke(cli, ["clients", "list"], env=env)
    assert result.exit_code == 0, result.output
    lines = {line.split()[0]: line for line in result.output.splitlines()}
    assert lines["contoso"].endswith("no worker has ever served this client's queue")
    assert lines["fabrikam"].endswith("worker ok")


def test_a_running_worker_process_is_seen_and_its_death_is_not_hidden(
    http: FlaskClient, world: World, settings: Settings, tmp_path: Path
) -> None:
    from tests.support.worker import running_worker

    with running_worker(settings, tmp_path / "worker.log") as process:
        end = time.monotonic() + 20
        while http.get("/readyz").json.get("workers") != "ok":
            assert time.monotonic() < end, (tmp_path / "worker.log").read_text()[-3000:]
            time.sleep(0.2)
        process.kill()  # dies without a word: only its silence tells
    health = liveness.queue_health(world.services, now=time.time() + liveness.ALIVE_SECONDS)
    assert [(h.client, h.live) for h in health] == [("contoso", False)]
