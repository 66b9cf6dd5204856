"""Health at a glance: per client, its users, today's resets and failures, its directory
and its worker. A handful of grouped queries for all clients, not one per client."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ..actors import Actor, Permission
from ..context import Blink
from ..liveness import queue_health
from ..models import Client, RequestStatus, ResetRequest, User, UserStatus, utcnow
from . import scope
from .lockout_watch import WatchState, watch_states

# Error codes that mean the directory itself did not answer or refused the service account.
DIRECTORY_TROUBLE = frozenset(
    {"directory_unavailable", "permission_denied", "configuration_error", "secret_key_mismatch"}
)


@dataclass
class ClientHealth:
    client: Client
    users: Counter[str] = field(default_factory=Counter)  # by UserStatus value
    done_today: int = 0
    failed_today: int = 0
    failures_today: Counter[str] = field(default_factory=Counter)  # by error code
    directory_ok: bool | None = None  # at the last request that reached it; None: none yet
    directory_error: str | None = None
    worker: str = ""  # "" without Redis (jobs run in the web process)
    worker_ok: bool = True
    lockout_watch: WatchState | None = None

    @property
    def pending(self) -> int:
        return self.users[UserStatus.PENDING.value] + self.users[UserStatus.INVITED.value]


def _start_of_day(now: datetime) -> datetime:
    return now.replace(hour=0, minute=0, second=0, microsecond=0)


def client_health(
    app: Blink,
    session: Session,
    actor: Actor,
    *,
    only: Client | None = None,
    now: datetime | None = None,
) -> list[ClientHealth]:
    """Every client the actor may see (or ``only`` that one), by name, with its health."""
    actor.require(Permission.VIEW)
    now = now or utcnow()
    query = scope.clients(actor).order_by(Client.name)
    if only is not None:
        query = query.where(Client.id == only.id)
    clients = session.execute(query).scalars().all()
    health = {client.id: ClientHealth(client) for client in clients}
    if not health:
        return []
    ids = list(health)
    for client_id, user_status, count in session.execute(
        select(User.client_id, User.status, func.count())
        .where(User.client_id.in_(ids))
        .group_by(User.client_id, User.status)
    ):
        health[client_id].users[user_status.value] = count
    today = _start_of_day(now)
    for client_id, status, code, count in session.execute(
        select(User.client_id, ResetRequest.status, ResetRequest.error_code, func.count())
        .join(User, User.id == ResetRequest.user_id)
        .where(User.client_id.in_(ids), ResetRequest.created_at >= today)
        .group_by(User.client_id, ResetRequest.status, ResetRequest.error_code)
    ):
        entry = health[client_id]
        if status is RequestStatus.DONE:
            entry.done_today += count
        elif status is RequestStatus.FAILED:
            entry.failed_today += count
            entry.failures_today[code or "unknown"] += count
    _last_directory_outcome(session, health, now)
    _workers(app, health)
    for client_id, state in watch_states(session, clients).items():
        health[client_id].lockout_watch = state
    return list(health.values())


def _last_directory_outcome(
    session: Session, health: dict[int, ClientHealth], now: datetime
) -> None:
    """Whether the directory answered at the last finished request of the past week."""
    newest = (
        select(User.client_id, func.max(ResetRequest.id).label("id"))
        .join(User, User.id == ResetRequest.user_id)
        .where(
            User.client_id.in_(list(health)),
            ResetRequest.finished_at.is_not(None),
            ResetRequest.created_at >= now - timedelta(days=7),
        )
        .group_by(User.client_id)
        .subquery()
    )
    for client_id, status, code in session.execute(
        select(newest.c.client_id, ResetRequest.status, ResetRequest.error_code).join(
            ResetRequest, ResetRequest.id == newest.c.id
        )
    ):
        trouble = status is RequestStatus.FAILED and code in DIRECTORY_TROUBLE
        health[client_id].directory_ok = not trouble
        health[client_id].directory_error = code if trouble else None


def _workers(app: Blink, health: dict[int, ClientHealth]) -> None:
    if app.redis is None:
        return
    by_slug = {entry.client.slug: entry for entry in health.values()}
    try:
        queues = queue_health(app)
    except Exception as err:  # the page must render while Redis is down
        for entry in by_slug.values():
            entry.worker, entry.worker_ok = f"unknown ({type(err).__name__})", False
        return
    for queue in queues:
        found = by_slug.get(queue.client)
        if found is not None:
            found.worker, found.worker_ok = queue.describe(), queue.live
