"""The scheduler: the one home of the gateway's periodic work.

``blink-sms scheduler`` runs it as a process of its own (the Procfile's ``scheduler:``
line, a systemd unit); without Redis (the demo, a single box) it runs as a thread of the
web process. Each task is a function of the services, run every so many seconds:

- ``reset-requests``: :func:`blink_sms.services.reset_job.sweep`, every
  ``BLINK_SWEEP_SECONDS``: requests whose worker died are queued again, and queued
  requests that are on no queue (accepted while Redis was down, a retry whose wait is
  over, a job Redis lost) are enqueued.
- ``queued-retries``: email jobs that RQ retries after a wait sit in RQ's scheduled
  registry; they are moved onto their queue when due (workers run no RQ scheduler).
- ``retention``: :func:`blink_sms.services.retention.prune`, hourly: audit events older
  than the MSP's retention period (400 days by default) are deleted.
- ``webhooks``: :class:`blink_sms.services.webhook_sender.Sender` claims due outbound event
  webhooks and sends them on threads of its own (the tick never waits for a receiver).
- ``lockout-watch``: :func:`blink_sms.services.lockout_watch.enqueue_due`, every 5 s:
  one lockout poll on each due client's own queue.

Later periodic work (lockout polls, reminders, pruning) is added to :func:`tasks`.

With Redis, one scheduler works at a time: it holds a lock in Redis that it renews at
every tick; a second scheduler waits, and takes over within ``LOCK_SECONDS`` of the
first one's death. A failing task is logged once when it starts failing and once when
it works again; the loop itself never stops on an error.
"""

from __future__ import annotations

import os
import secrets
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import structlog

if TYPE_CHECKING:
    from redis import Redis

    from .context import Blink

log = structlog.get_logger(__name__)

LOCK_KEY = "blink:scheduler:lock"
LOCK_SECONDS = 15
TICK_SECONDS = 1.0

# Renew the lock only if it is still ours (compare and set, atomically).
_RENEW = """
if redis.call('get', KEYS[1]) == ARGV[1] then
  return redis.call('pexpire', KEYS[1], ARGV[2])
end
return 0
"""


@dataclass
class Periodic:
    name: str
    every: float
    run: Callable[[Blink], object]
    next_at: float = 0.0
    failing: bool = False


def move_due_queue_retries(app: Blink) -> int:
    """Move email jobs whose retry wait is over from RQ's scheduled registry to their queue."""
    if app.redis is None:
        return 0
    from rq import Queue
    from rq.job import Job
    from rq.registry import ScheduledJobRegistry

    from .queue import EMAIL_QUEUE

    queue = Queue(EMAIL_QUEUE, connection=app.redis)
    registry = ScheduledJobRegistry(queue=queue)  # type: ignore[no-untyped-call]
    job_ids = registry.get_jobs_to_schedule(int(time.time()))
    moved = 0
    for job_id, job in zip(job_ids, Job.fetch_many(job_ids, connection=app.redis), strict=True):
        with app.redis.pipeline() as pipe:
            registry.remove(job_id, pipeline=pipe)
            if job is not None:
                queue._enqueue_job(job, pipeline=pipe)
                moved += 1
            pipe.execute()
    return moved


def tasks(app: Blink) -> list[Periodic]:
    from .services import redaction
    from .services.expiry_reminders import DailyReminders
    from .services.lockout_watch import enqueue_due
    from .services.reset_job import sweep
    from .services.retention import prune
    from .services.webhook_sender import Sender

    return [
        Periodic("reset-requests", app.settings.sweep_seconds, sweep),
        Periodic("queued-retries", 1.0, move_due_queue_retries),
        Periodic("retention", 3600, prune),
        Periodic("webhooks", 2.0, Sender()),
        Periodic("lockout-watch", 5.0, enqueue_due),
        Periodic("expiry-reminders", 3600, DailyReminders()),
        Periodic("redaction", redaction.SWEEP_SECONDS, redaction.sweep),
    ]


class Scheduler:
    """Runs each task when it is due; with Redis, only while holding the lock."""

    def __init__(self, app: Blink, periodic: list[Periodic] | None = None) -> None:
        self.app = app
        self.periodic = periodic if periodic is not None else tasks(app)
        self.identity = f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"
        self.holding = False
        self.redis_up = True

    def _lock(self, redis: Redis[bytes]) -> bool:
        """Take or keep the lock; False while another scheduler holds it."""
        try:
            if self.holding:
                # redis-py leaves eval unannotated.
                renewed = redis.eval(_RENEW, 1, LOCK_KEY, self.identity, LOCK_SECONDS * 1000)  # type: ignore[no-untyped-call]
                held = bool(renewed)
            else:
                held = bool(redis.set(LOCK_KEY, self.identity, nx=True, px=LOCK_SECONDS * 1000))
        except Exception as err:  # Redis down: no lock, nothing that needs Redis can run
            if self.redis_up:
                log.warning("scheduler cannot reach redis; waiting", error=type(err).__name__)
            self.redis_up = False
            self.holding = False
            return False
        if not self.redis_up:
            log.info("scheduler reaches redis again")
        self.redis_up = True
        if held != self.holding:
            log.info("scheduler is active" if held else "another scheduler is active; waiting")
        self.holding = held
        return held

    def tick(self, now: float | None = None) -> None:
        """Run every task that is due."""
        if self.app.redis is not None and not self._lock(self.app.redis):
            return
        now = now if now is not None else time.monotonic()
        for task in self.periodic:
            if now < task.next_at:
                continue
            task.next_at = now + task.every
            try:
                task.run(self.app)
            except Exception as err:  # one bad run must not stop the others or the loop
                if not task.failing:
                    reason = (str(err).splitlines() or [""])[0][:200]
                    log.error("scheduled task failing", task=task.name,
                              error=type(err).__name__, reason=reason)  # fmt: skip
                task.failing = True
                continue
            if task.failing:
                log.info("scheduled task works again", task=task.name)
            task.failing = False

    def run(self, stop: threading.Event) -> None:
        """Tick until ``stop`` is set; release the lock on the way out."""
        log.info("scheduler started", tasks=[t.name for t in self.periodic])
        while not stop.is_set():
            self.tick()
            stop.wait(TICK_SECONDS)
        if self.holding and self.app.redis is not None:
            try:
                if self.app.redis.get(LOCK_KEY) == self.identity.encode():
                    self.app.redis.delete(LOCK_KEY)
            except Exception as err:  # the lock runs out by itself
                log.info("scheduler lock not released", error=type(err).__name__)
        log.info("scheduler stopped")


def start_in_thread(app: Blink) -> threading.Event:
    """Run the scheduler on a daemon thread of this process (no Redis: demo, single box).
    Set the returned event to stop it."""
    stop = threading.Event()
    thread = threading.Thread(
        target=Scheduler(app).run, args=(stop,), name="blink-scheduler", daemon=True
    )
    thread.start()
    return stop
