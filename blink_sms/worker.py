"""The RQ worker behind ``blink-sms worker``: every client's queue, and the ones added later.

RQ fixes a worker's queues when it starts. An MSP adds clients while the gateway runs,
and a RESET from a new client's user must not wait in a queue nobody listens to until
someone restarts the worker. So, between jobs and while it waits for one, this worker
asks the database for the client list at most once every ``refresh_every`` seconds, and
starts listening to new clients' queues (and stops listening to removed ones) without a
restart.

It is a ``SimpleWorker``: jobs run in this process, so the app, its database pool and the
directory connections are built once and reused by every job. It runs no RQ scheduler
of its own: retries of reset requests live in the database, and the one scheduler
process (``blink-sms scheduler``) does all periodic work.

A worker outlives Redis restarts and outages: :func:`run` starts RQ's work loop again
with backoff whenever it ends on a Redis error, and a heartbeat thread notes the queues
it serves every few seconds (:mod:`blink_sms.liveness`), logging one line when Redis
goes away and one when it is back.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

import structlog
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from rq import Queue, SimpleWorker, worker_registration
from rq.exceptions import StopRequested
from sqlalchemy import select

from . import liveness
from .models import Client, client_queue
from .queue import EMAIL_QUEUE

if TYPE_CHECKING:
    from redis import Redis
    from rq.job import Job

    from .context import Blink

log = structlog.get_logger(__name__)

IDLE_QUEUE = "default"  # listened to when no client exists yet, so the worker can start
REFRESH_SECONDS = 10


def queue_names(services: Blink, slugs: Sequence[str] = ()) -> list[str]:
    """The queues a worker serves: the given clients' queues, or every client's and email.

    Raises ``LookupError`` naming the slugs that are not clients."""
    with services.db.session() as session:
        query = select(Client.slug).order_by(Client.id)
        if slugs:
            query = query.where(Client.slug.in_(slugs))
        found = list(session.execute(query).scalars())
    missing = sorted(set(slugs) - set(found))
    if missing:
        raise LookupError(", ".join(missing))
    names = [client_queue(slug) for slug in found]
    if slugs:
        return names
    return (names or [IDLE_QUEUE]) + [EMAIL_QUEUE]


class ClientWorker(SimpleWorker):
    """A SimpleWorker whose queue list follows ``current_names()`` while it is idle."""

    def __init__(
        self,
        current_names: Callable[[], list[str]],
        *,
        connection: Redis[bytes],
        refresh_every: int = REFRESH_SECONDS,
    ) -> None:
        self.current_names = current_names
        self.refresh_every = max(1, refresh_every)
        self.refreshed_at = time.monotonic()
        self.stop_asked = False
        queues = [Queue(name, connection=connection) for name in current_names()]
        super().__init__(queues, connection=connection)
        # RQ's "result discarded" line for every job says nothing: jobs return nothing.
        self.log_result_lifespan = False

    def execute_job(self, job: Job, queue: Queue) -> None:
        """Run a job with a clean logging context: RQ's lines about the next job must
        not carry the ids the last job bound (its request, its attempt)."""
        structlog.contextvars.clear_contextvars()
        try:
            super().execute_job(job, queue)
        finally:
            structlog.contextvars.clear_contextvars()

    def request_stop(self, signum: int, frame: object) -> None:
        """SIGTERM/SIGINT: RQ's warm shutdown; and :func:`run` must not start again."""
        self.stop_asked = True
        super().request_stop(signum, frame)  # type: ignore[no-untyped-call]  # rq: untyped

    def refresh_queues(self) -> None:
        """Listen to the queues ``current_names()`` gives now; keep the old list on error."""
        self.refreshed_at = time.monotonic()
        try:
            names = self.current_names()
        except Exception as error:  # a database hiccup must not stop the worker
            reason = (str(error).splitlines() or [""])[0][:200]
            log.warning("worker queues not refreshed", error=type(error).__name__, reason=reason)
            return
        before = self.queue_names()
        if names == before:
            return
        with self.connection.pipeline() as pipe:
            worker_registration.unregister(self, pipe)
            self.queues = [Queue(name, connection=self.connection) for name in names]
            self._ordered_queues = self.queues[:]
            worker_registration.register(self, pipe)
            pipe.hset(self.key, "queues", ",".join(names))
            pipe.execute()
        log.info(
            "worker queues changed",
            added=sorted(set(names) - set(before)),
            removed=sorted(set(before) - set(names)),
        )

    def dequeue_job_and_maintain_ttl(
        self, timeout: int | None, max_idle_time: int | None = None
    ) -> tuple[Job, Queue] | None:
        if timeout is None or max_idle_time is not None:
            # Burst mode, or a caller that set its own idle limit: RQ's behaviour.
            return super().dequeue_job_and_maintain_ttl(timeout, max_idle_time)
        while True:
            if self.stop_asked:
                # RQ stops an idle worker by raising StopRequested from the signal handler,
                # wherever the main thread is. Raised inside a log call (RQ logs a lot while
                # it starts), the logging module swallows it and the stop is lost: the
                # flag is not, so it is honoured before every wait.
                raise StopRequested
            if time.monotonic() - self.refreshed_at >= self.refresh_every:
                self.refresh_queues()  # at most once a period, however many jobs run
            # RQ gives up waiting after ``max_idle_time`` idle seconds and returns None;
            # that is the moment to look for new clients, then wait again.
            result = super().dequeue_job_and_maintain_ttl(timeout, self.refresh_every)
            if result is not None:
                return result


REDIS_ERRORS = (RedisConnectionError, RedisTimeoutError)
LONGEST_BACKOFF = 30.0


class _QuietRedisErrors(logging.Filter):
    """RQ logs every reconnection attempt; the heartbeat logs the state changes instead."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "could not connect to Redis" not in record.getMessage()


class Heartbeat:
    """Notes the worker's queues in Redis every few seconds, from a thread of its own.

    It is also the worker's one voice about Redis: one line when Redis goes away, one
    when it is back."""

    def __init__(self, redis: Redis[bytes], queue_names: Callable[[], list[str]]) -> None:
        self.redis = redis
        self.queue_names = queue_names
        self.redis_up = True
        # The main loop and the heartbeat thread both report; one line per change.
        self._state = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="worker-heartbeat", daemon=True)

    def start(self) -> Heartbeat:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def beat(self) -> None:
        try:
            names = self.queue_names()
            if names:
                liveness.beat(self.redis, names)
            else:  # no RQ worker yet (Redis was down at the start): just ask Redis
                self.redis.ping()
        except REDIS_ERRORS as err:
            self.redis_state(up=False, error=type(err).__name__)
            return
        self.redis_state(up=True)

    def redis_state(self, *, up: bool, error: str = "") -> None:
        with self._state:
            if up and not self.redis_up:
                log.info("redis is reachable again; worker resumes")
            elif not up and self.redis_up:
                log.warning("redis unreachable; worker keeps trying", error=error)
            self.redis_up = up

    def _run(self) -> None:
        while True:
            self.beat()
            if self._stop.wait(liveness.BEAT_SECONDS):
                return


def run(
    current_names: Callable[[], list[str]],
    *,
    connection: Redis[bytes],
    refresh_every: int = REFRESH_SECONDS,
    burst: bool = False,
) -> None:
    """Serve the queues until asked to stop (or, in burst mode, until they are empty),
    through Redis outages: RQ's loop is started again with backoff when it ends on one."""
    logging.getLogger("rq.worker").addFilter(_QuietRedisErrors())
    serving: list[ClientWorker] = []  # the RQ worker of the moment, for the heartbeat
    heartbeat = Heartbeat(connection, lambda: serving[-1].queue_names() if serving else [])
    heartbeat.start()
    backoff = 1.0
    try:
        while True:
            try:
                worker = ClientWorker(current_names, connection=connection,
                                      refresh_every=refresh_every)  # fmt: skip
                serving[:] = [worker]
                heartbeat.beat()
                worker.work(burst=burst, with_scheduler=False)
            except REDIS_ERRORS as err:  # while registering, before RQ's loop began
                heartbeat.redis_state(up=False, error=type(err).__name__)
            else:
                if burst or worker.stop_asked:
                    return
                # RQ's loop ended on an error (a Redis error during or after a job).
                heartbeat.beat()
            # Signals sent while we wait must stop the process, not an RQ worker that is gone.
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            signal.signal(signal.SIGINT, signal.default_int_handler)
            time.sleep(backoff)
            backoff = min(backoff * 2, LONGEST_BACKOFF)
            if heartbeat.redis_up:
                backoff = 1.0
    finally:
        heartbeat.stop()
