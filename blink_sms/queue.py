"""Where jobs run: RQ on Redis in production, a thread in the web process for the demo.

Job arguments are ids only (``int``): RQ pickles arguments into Redis and logs their
``repr``, so a password, code or token passed here would leak. ``enqueue`` refuses
anything else.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, wait
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any, Protocol

import structlog

if TYPE_CHECKING:
    from flask import Flask
    from redis import Redis


# The queue of every email job (activation links, notices, digests): any worker serves it.
EMAIL_QUEUE = "email"
log = structlog.get_logger(__name__)

Job = Callable[..., object]
_retries_left: ContextVar[int | None] = ContextVar("blink_retries_left", default=None)
_job_id: ContextVar[str | None] = ContextVar("blink_job_id", default=None)


class JobQueue(Protocol):
    """Puts a job on a named queue.

    With ``retry`` (email jobs) a job that raises is tried again after the deployment's
    retry intervals. Reset jobs pass ``retry=False``: their request row keeps its own
    attempts and next attempt time (:mod:`blink_sms.services.reset_job`).
    """

    def enqueue(
        self, queue_name: str, func: Job, *args: int, job_id: str, retry: bool = True
    ) -> None: ...

    def missing(self, job_ids: Sequence[str]) -> set[str]:
        """Those of ``job_ids`` that are neither waiting nor running: lost or ended."""
        ...

    def ping(self) -> None: ...


def _check_args(args: Sequence[object]) -> None:
    for arg in args:
        if type(arg) is not int:
            raise TypeError("job arguments are ids only (int); never pass secrets to a queue")


def retries_left() -> int:
    """How many more attempts the running job gets after this one (0 on the last)."""
    value = _retries_left.get()
    if value is not None:
        return value
    from rq import get_current_job

    job = get_current_job()
    return int(job.retries_left or 0) if job is not None else 0


def current_job_id() -> str | None:
    """The id of the running job (RQ's, or the in-process queue's), for the logs."""
    value = _job_id.get()
    if value is not None:
        return value
    from rq import get_current_job

    job = get_current_job()
    return str(job.id) if job is not None else None


def start_job_logging() -> None:
    """At the start of a job: its log lines carry its id, and nothing of the last job."""
    structlog.contextvars.clear_contextvars()
    structlog.contextvars.bind_contextvars(job_id=current_job_id())


class RqQueue:
    """Enqueues on Redis for ``blink-sms worker`` processes."""

    def __init__(self, redis: Redis[bytes], retry_intervals: Sequence[int]) -> None:
        self.redis = redis
        self.retry_intervals = list(retry_intervals)
        self._queues: dict[str, Any] = {}

    def enqueue(
        self, queue_name: str, func: Job, *args: int, job_id: str, retry: bool = True
    ) -> None:
        from rq import Queue, Retry

        _check_args(args)
        retries = (
            Retry(max=len(self.retry_intervals), interval=self.retry_intervals)
            if self.retry_intervals and retry
            else None
        )
        queue = self._queues.get(queue_name)
        if queue is None:
            queue = self._queues[queue_name] = Queue(queue_name, connection=self.redis)
        # One round trip: the job and its queue entry go in a single MULTI/EXEC.
        with self.redis.pipeline() as pipe:
            queue.enqueue_call(
                func,
                args=args,
                job_id=job_id,
                retry=retries,
                # Jobs return nothing worth keeping; the database holds the outcome.
                result_ttl=0,
                failure_ttl=7 * 86_400,
                description=f"{func.__name__}{tuple(args)}",
                pipeline=pipe,
            )
            pipe.execute()

    def missing(self, job_ids: Sequence[str]) -> set[str]:
        from rq.job import Job as RqJob

        with self.redis.pipeline(transaction=False) as pipe:
            for job_id in job_ids:
                pipe.hget(RqJob.key_for(job_id), "status")
            statuses = pipe.execute()
        alive = {b"queued", b"started", b"scheduled", b"deferred"}
        return {j for j, status in zip(job_ids, statuses, strict=True) if status not in alive}

    def ping(self) -> None:
        self.redis.ping()


class InProcessQueue:
    """Runs jobs on a background thread of this process, with the same retries.

    For the demo and for a single-process deployment without Redis.
    """

    def __init__(self, app: Flask, retry_intervals: Sequence[int], *, workers: int = 2) -> None:
        self.app = app
        self.retry_intervals = list(retry_intervals)
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="blink-job")
        self._futures: dict[str, Future[None]] = {}
        self._lock = threading.Lock()

    def enqueue(
        self, queue_name: str, func: Job, *args: int, job_id: str, retry: bool = True
    ) -> None:
        _check_args(args)
        with self._lock:
            self._futures = {j: f for j, f in self._futures.items() if not f.done()}
            self._futures[job_id] = self._pool.submit(self._run, func, args, job_id, retry)

    def missing(self, job_ids: Sequence[str]) -> set[str]:
        with self._lock:
            return {j for j in job_ids if j not in self._futures or self._futures[j].done()}

    def _run(self, func: Job, args: tuple[int, ...], job_id: str, retry: bool) -> None:
        job_token = _job_id.set(job_id)
        try:
            with self.app.app_context():
                self._attempts(func, args, job_id, retry)
        finally:
            _job_id.reset(job_token)

    def _attempts(self, func: Job, args: tuple[int, ...], job_id: str, retry: bool) -> None:
        intervals = self.retry_intervals if retry else []
        for attempt in range(len(intervals) + 1):
            token = _retries_left.set(len(intervals) - attempt)
            try:
                func(*args)
                return
            except Exception as err:  # the job decides what is retryable; we only wait
                if attempt == len(intervals):
                    log.error("job failed", job_id=job_id, error=type(err).__name__)
                    return
                log.info("job will retry", job_id=job_id, error=type(err).__name__)
                time.sleep(intervals[attempt])
            finally:
                _retries_left.reset(token)

    def join(self, timeout: float = 30.0) -> None:
        """Wait for the jobs enqueued so far, and those they enqueue (tests, the demo)."""
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            with self._lock:
                pending = [f for f in self._futures.values() if not f.done()]
            if not pending:
                return
            wait(pending, timeout=max(0.0, end - time.monotonic()))

    def ping(self) -> None:
        return None
