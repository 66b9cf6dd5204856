"""The RQ worker behind ``blink-sms worker``: every client's queue, and the ones added later.

RQ fixes a worker's queues when it starts. An MSP adds clients while the gateway runs,
and a RESET from a new client's user must not wait in a queue nobody listens to until
someone restarts the worker. So, between jobs and while it waits for one, this worker
asks the database for the client list at most once every ``refresh_every`` seconds, and
starts listening to new clients' queues (and stops listening to removed ones) without a
restart.

It is a ``SimpleWorker``: jobs run in this process, so the app, its database pool and the
directory connections are built once and reused by every job.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

import structlog
from rq import Queue, SimpleWorker, worker_registration
from sqlalchemy import select

from .models import Client, client_queue
from .services.invitations import EMAIL_QUEUE

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
        queues = [Queue(name, connection=connection) for name in current_names()]
        super().__init__(queues, connection=connection)

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
        if self.scheduler is not None:
            # Retries wait in each queue's scheduled-job registry, which only a scheduler
            # holding that queue's lock moves on: restart it with the new list.
            self.stop_scheduler()  # type: ignore[no-untyped-call]  # rq leaves it unannotated
            self._start_scheduler()
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
            if time.monotonic() - self.refreshed_at >= self.refresh_every:
                self.refresh_queues()  # at most once a period, however many jobs run
            # RQ gives up waiting after ``max_idle_time`` idle seconds and returns None;
            # that is the moment to look for new clients, then wait again.
            result = super().dequeue_job_and_maintain_ttl(timeout, self.refresh_every)
            if result is not None:
                return result
