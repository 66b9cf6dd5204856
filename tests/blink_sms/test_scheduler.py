"""The scheduler: one active at a time, failing tasks logged per state change, and the
email retries it moves onto their queue (workers run no RQ scheduler of their own)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from redis import Redis
from rq import Queue, Retry
from rq.job import JobStatus
from structlog.testing import capture_logs

from blink_sms.context import Blink
from blink_sms.queue import EMAIL_QUEUE
from blink_sms.scheduler import LOCK_KEY, Periodic, Scheduler, move_due_queue_retries
from blink_sms.settings import Settings


@pytest.fixture
def settings(settings: Settings, redis_url: str) -> Settings:
    return settings.with_changes(redis_url=redis_url)


@pytest.fixture
def redis(services: Blink) -> Redis[bytes]:
    assert services.redis is not None
    return services.redis


def counting(runs: list[str], name: str) -> Periodic:
    return Periodic(name, 1.0, lambda app: runs.append(name))


def test_only_one_scheduler_is_active_and_another_takes_over_when_it_stops(
    services: Blink, redis: Redis[bytes]
) -> None:
    runs: list[str] = []
    first = Scheduler(services, [counting(runs, "first")])
    second = Scheduler(services, [counting(runs, "second")])
    first.tick(now=0)
    second.tick(now=0)
    first.tick(now=5)
    second.tick(now=5)
    assert runs == ["first", "first"]
    assert redis.pttl(LOCK_KEY) > 0  # a dead holder's lock runs out by itself
    redis.delete(LOCK_KEY)  # as if it had run out
    second.tick(now=10)
    first.tick(now=10)
    assert runs == ["first", "first", "second"]


def test_a_task_runs_when_due_only(services: Blink) -> None:
    runs: list[str] = []
    scheduler = Scheduler(services, [counting(runs, "task")])
    for now in (0, 0.5, 0.9, 1.0, 1.5, 2.2):
        scheduler.tick(now=now)
    assert runs == ["task"] * 3  # at 0, 1.0 and 2.2


def test_a_failing_task_is_logged_once_and_again_when_it_recovers(services: Blink) -> None:
    outcomes = [OSError("database gone"), OSError("database gone"), None]
    runs: list[str] = []

    def flaky(app: Blink) -> None:
        outcome = outcomes.pop(0)
        if outcome is not None:
            raise outcome
        runs.append("ok")

    scheduler = Scheduler(services, [Periodic("flaky", 1.0, flaky), counting(runs, "other")])
    with capture_logs() as logs:
        for now in (0, 1, 2):
            scheduler.tick(now=now)
    events = [(e["event"], e.get("task")) for e in logs if e.get("task")]
    assert events == [("scheduled task failing", "flaky"), ("scheduled task works again", "flaky")]
    assert runs == ["other", "other", "ok", "other"]


def test_an_email_retry_is_moved_onto_its_queue_when_its_wait_is_over(
    services: Blink, redis: Redis[bytes], tmp_path: Path
) -> None:
    queue = Queue(EMAIL_QUEUE, connection=redis)
    job = queue.enqueue(
        "tests.support.flaky.fail_once", str(tmp_path / "failed"), retry=Retry(max=1, interval=60)
    )
    from rq import SimpleWorker
    from rq.registry import ScheduledJobRegistry

    SimpleWorker([queue], connection=redis).work(burst=True)
    assert job.get_status(refresh=True) == JobStatus.SCHEDULED
    assert move_due_queue_retries(services) == 0  # its minute is not over yet
    registry = ScheduledJobRegistry(queue=queue)
    redis.zadd(registry.key, {job.id: time.time() - 1})  # the minute passes
    assert move_due_queue_retries(services) == 1
    SimpleWorker([queue], connection=redis).work(burst=True)
    assert job.get_status(refresh=True) == JobStatus.FINISHED
