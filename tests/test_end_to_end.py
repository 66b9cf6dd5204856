"""RESET through real Redis and a real RQ worker process, and the secrets rules.

The one-time password must appear in the SMS that carries it and nowhere else:
not in the TwiML reply, not in any Redis key (job payloads decompressed), not in
the database, not in any log line of the web or the worker process.
"""

from __future__ import annotations

import logging
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from redis import Redis
from rq import Queue
from sqlalchemy import inspect, select, text

from blink_sms.context import Blink
from blink_sms.models import RequestStatus, ResetRequest
from blink_sms.settings import Settings
from tests.conftest import GATEWAY, Persona, World, reply_text
from tests.support.worker import Send, password_in, run_worker


@pytest.fixture
def settings(settings: Settings, redis_url: str) -> Settings:
    return settings.with_changes(redis_url=redis_url, job_retry_intervals=(0, 0, 0))


def redis_blobs(redis: Redis[bytes]) -> Iterator[bytes]:
    """Every value stored in Redis, with RQ's zlib-compressed job payloads opened."""
    for key in redis.scan_iter("*"):
        kind = redis.type(key)
        values: list[bytes] = [key]
        if kind == b"string":
            values.append(redis.get(key) or b"")
        elif kind == b"hash":
            for field, value in redis.hgetall(key).items():
                values += [field, value]
        elif kind == b"list":
            values += redis.lrange(key, 0, -1)
        elif kind == b"set":
            values += list(redis.smembers(key))
        elif kind == b"zset":
            values += redis.zrange(key, 0, -1)
        elif kind == b"stream":
            for _, entry in redis.xrange(key):
                for field, value in entry.items():
                    values += [field, value]
        for value in values:
            yield value
            try:
                opened = zlib.decompress(value)
            except zlib.error:
                continue
            yield opened


def database_dump(services: Blink) -> str:
    with services.db.session() as session:
        tables = inspect(services.db.engine).get_table_names()
        return repr([session.execute(text(f"SELECT * FROM {t}")).all() for t in tables])  # noqa: S608


def test_reset_through_redis_and_a_worker_process_leaves_the_password_nowhere(
    text_gateway: Send,
    alice: Persona,
    world: World,
    settings: Settings,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    redis: Redis[bytes] = Redis.from_url(settings.redis_url or "")
    response = text_gateway(alice.phone, "RESET password")
    ack = reply_text(response)
    assert ack is not None and "arrive" in ack
    assert Queue("client-contoso", connection=redis).count == 1

    sent, worker_logs = run_worker(settings, tmp_path)

    [sms] = sent
    assert sms["To"] == alice.phone and sms["From"] == GATEWAY
    password = password_in(sms["Body"])
    assert world.sign_in(alice.username, password) == "must_change"
    world.directory.change_password(alice.username, password, "Mine!Own2026x")
    assert world.sign_in(alice.username, "Mine!Own2026x") == "ok"
    with world.services.db.session() as session:
        request = session.execute(select(ResetRequest)).scalar_one()
        assert request.status is RequestStatus.DONE and request.outbound_sid == sms["Sid"]

    secret = password.encode()
    assert secret not in response.data
    assert not [blob for blob in redis_blobs(redis) if secret in blob]
    assert password not in database_dump(world.services)
    assert "request completed" in worker_logs
    assert '"job_id": "request-' in worker_logs  # the job id is bound in the worker's logs
    assert password not in worker_logs
    assert "request queued" in caplog.text
    assert password not in caplog.text


def test_a_worker_process_retries_after_a_directory_outage(
    text_gateway: Send, alice: Persona, world: World, settings: Settings, tmp_path: Path
) -> None:
    world.directory.set_outage(1)
    text_gateway(alice.phone, "RESET")
    sent, logs = run_worker(settings, tmp_path)
    assert "request will be retried" in logs
    assert len(sent) == 1, logs[-4000:]
    [sms] = sent
    assert world.sign_in(alice.username, password_in(sms["Body"])) == "must_change"
    with world.services.db.session() as session:
        request = session.execute(select(ResetRequest)).scalar_one()
        assert request.status is RequestStatus.DONE and request.attempts == 2


def test_a_reset_accepted_while_redis_is_down_is_sent_once_redis_is_back(
    text_gateway: Send,
    alice: Persona,
    world: World,
    settings: Settings,
    tmp_path: Path,
    redis_server: Any,
) -> None:
    from blink_sms.services import reset_job

    pool = world.services.queue.redis.connection_pool  # type: ignore[attr-defined]
    port = pool.connection_kwargs["port"]
    pool.connection_kwargs["port"] = 1  # Redis is down for the web process
    pool.reset()
    reply = reply_text(text_gateway(alice.phone, "RESET"))
    assert reply is not None and "arrive" in reply  # answered at once, as usual
    with world.services.db.session() as session:
        request = session.execute(select(ResetRequest)).scalar_one()
    assert (request.status, request.enqueued_at) == (RequestStatus.QUEUED, None)
    assert reset_job.sweep(world.services).enqueued == 0  # still down: stays in the outbox
    pool.connection_kwargs["port"] = port  # Redis is back
    pool.reset()
    assert reset_job.sweep(world.services).enqueued == 1
    assert reset_job.sweep(world.services).enqueued == 0  # on the queue now: not twice
    [sms], _ = run_worker(settings, tmp_path)
    assert world.sign_in(alice.username, password_in(sms["Body"])) == "must_change"
    with world.services.db.session() as session:
        assert session.execute(select(ResetRequest.status)).scalar_one() is RequestStatus.DONE


def test_a_workers_log_lines_about_a_job_carry_that_jobs_ids_only(
    text_gateway: Send, alice: Persona, world: World, settings: Settings, tmp_path: Path
) -> None:
    import json

    bob = world.person("bob", "+15551230002")
    text_gateway(alice.phone, "RESET")
    text_gateway(bob.phone, "RESET")
    sent, logs = run_worker(settings, tmp_path)
    assert len(sent) == 2
    lines = [json.loads(line) for line in logs.splitlines() if line.startswith("{")]
    announced = [line for line in lines if "perform_request(" in line["event"]]
    assert len(announced) >= 2
    for line in announced:
        request_id = int(line["event"].split("perform_request(")[1].split(",")[0])
        assert line.get("reset_request") in (None, request_id), line
