"""Which clients' queues have a live worker: the MSP must notice a dead on-premises worker.

Every worker writes, every few seconds, the time it last served each of its queues into
one Redis hash (:func:`beat`). A queue that nobody has served for ``ALIVE_SECONDS`` has
no live worker. ``/readyz`` and ``blink-sms clients list`` read it (:func:`queue_health`).
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sqlalchemy import select

from .models import Client, client_queue

if TYPE_CHECKING:
    from redis import Redis

    from .context import Blink

SEEN_KEY = "blink:queues:last-served"
BEAT_SECONDS = 5
ALIVE_SECONDS = 60


def beat(redis: Redis[bytes], queue_names: Iterable[str], now: float | None = None) -> None:
    """Note that a live worker serves ``queue_names`` now."""
    stamp = int(now if now is not None else time.time())
    mapping = dict.fromkeys(queue_names, stamp)
    if mapping:
        redis.hset(SEEN_KEY, mapping=mapping)  # type: ignore[arg-type]  # str -> int is fine


@dataclass(frozen=True)
class QueueHealth:
    client: str
    queue: str
    # Seconds since a worker last served the queue; None: never since the client was added.
    idle_seconds: int | None

    @property
    def live(self) -> bool:
        return self.idle_seconds is not None and self.idle_seconds < ALIVE_SECONDS

    def describe(self) -> str:
        if self.live:
            return "worker ok"
        if self.idle_seconds is None:
            return "no worker has ever served this client's queue"
        return f"no live worker for {self.idle_seconds} s"


def queue_health(app: Blink, now: float | None = None) -> list[QueueHealth]:
    """Each client's queue and how long since a worker served it. Needs Redis."""
    if app.redis is None:
        return []
    now = now if now is not None else time.time()
    with app.db.session() as session:
        slugs = list(session.execute(select(Client.slug).order_by(Client.slug)).scalars())
    seen = {key.decode(): int(value) for key, value in app.redis.hgetall(SEEN_KEY).items()}
    health = []
    for slug in slugs:
        name = client_queue(slug)
        stamp = seen.get(name)
        health.append(QueueHealth(slug, name, None if stamp is None else max(0, int(now - stamp))))
    return health
