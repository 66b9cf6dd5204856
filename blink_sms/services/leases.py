"""A job's hold on a reset request: the claim, the lease and its heartbeat, the fence.

See :mod:`blink_sms.services.reset_job` for how they make a reset survive a crash. A
job *claims* a queued request with one UPDATE that gives it a lease (a random token,
the holder ``host:pid`` and an expiry), renews the lease from a thread while it works
(:func:`heartbeat`), and checks it again, in the transaction that records an SMS, before
the SMS leaves (:func:`fence`). Everything a job needs is read at the claim into a
:class:`Work` snapshot of plain values, so no ORM object or transaction crosses an I/O call.
"""

from __future__ import annotations

import os
import secrets
import socket
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, cast

import structlog
from sqlalchemy import Table, bindparam, func, or_, select, update
from sqlalchemy.orm import Session

from ..context import Blink, StoredDirectory
from ..messaging.i18n import normalize_language
from ..models import Client, RequestKind, RequestStatus, ResetRequest, User, utcnow

log = structlog.get_logger(__name__)

HOLDER = f"{socket.gethostname()}:{os.getpid()}"
REQUESTS = cast(Table, ResetRequest.__table__)
_r = REQUESTS.c
# What a claimed job reads, in one statement.
CLAIMED = (
    select(
        _r.attempts,
        _r.kind,
        _r.reply_from,
        User.id,
        User.directory_id,
        User.username,
        User.display_name,
        User.phone,
        User.sms_opted_out,
        User.language,
        Client.id,
        Client.slug,
        Client.language,
        Client.directory_kind,
        Client.directory_settings_encrypted,
        Client.sender_number,
        Client.messaging_service_sid,
        Client.support_contact,
        Client.password_length,
        Client.must_change_at_next_logon,
        Client.unlock_on_reset,
        Client.disabled_at,
    )
    .join(User, User.id == _r.user_id)
    .join(Client, Client.id == User.client_id)
    .where(_r.id == bindparam("request_id"))
)


class LeaseLost(Exception):
    """This job no longer holds the request (its lease ran out and another job took it)."""


@dataclass(frozen=True)
class Work:
    """What the job needs, read once at the claim: no ORM object crosses an I/O call."""

    request_id: int
    token: str
    attempt: int
    kind: RequestKind
    user_id: int
    directory_id: str
    username: str
    display_name: str
    phone: str | None
    opted_out: bool
    language: str
    reply_from: str | None
    client_id: int
    client_slug: str
    directory: StoredDirectory
    # The client's SMS route (see outbound.Route) and policy.
    sender_number: str | None
    messaging_service_sid: str | None
    support_contact: str
    password_length: int
    must_change_at_next_logon: bool
    unlock_on_reset: bool
    client_disabled: bool
    lease: timedelta


def claim(app: Blink, request_id: int) -> Work | None:
    now = utcnow()
    lease = timedelta(seconds=app.settings.job_lease_seconds)
    token = secrets.token_hex(16)
    with app.db.session() as session:
        # Core statements: the job's own rows need no ORM bookkeeping.
        connection = session.connection()
        claimed = connection.execute(
            update(REQUESTS)
            .where(
                _r.id == request_id,
                _r.status == RequestStatus.QUEUED,
                or_(
                    _r.next_attempt_at.is_(None),
                    _r.next_attempt_at <= now + timedelta(seconds=1),
                ),
            )
            .values(
                status=RequestStatus.RUNNING,
                lease_token=token,
                lease_holder=HOLDER,
                lease_expires_at=now + lease,
                attempts=_r.attempts + 1,
                started_at=func.coalesce(_r.started_at, now),
                next_attempt_at=None,
                enqueued_at=None,
            )
        )
        if claimed.rowcount != 1:
            status = connection.scalar(select(_r.status).where(_r.id == request_id))
            session.rollback()
            log.info("nothing to claim", status=status.value if status else "vanished")
            return None
        row = connection.execute(CLAIMED, {"request_id": request_id}).one()
        session.commit()
    (attempt, kind, reply_from, user_id, directory_id, username, display_name, phone,
     opted_out, user_language, client_id, slug, client_language, directory_kind, encrypted,
     sender_number, messaging_service_sid, support_contact, password_length, must_change,
     unlock, client_disabled_at) = row  # fmt: skip
    structlog.contextvars.bind_contextvars(attempt=attempt)
    return Work(
        request_id=request_id,
        token=token,
        attempt=attempt,
        kind=kind,
        user_id=user_id,
        directory_id=directory_id,
        username=username,
        display_name=display_name,
        phone=phone,
        opted_out=opted_out,
        language=normalize_language(user_language or client_language),
        reply_from=reply_from,
        client_id=client_id,
        client_slug=slug,
        directory=StoredDirectory(client_id, directory_kind, encrypted),
        sender_number=sender_number,
        messaging_service_sid=messaging_service_sid,
        support_contact=support_contact,
        password_length=password_length,
        must_change_at_next_logon=must_change,
        unlock_on_reset=unlock,
        client_disabled=client_disabled_at is not None,
        lease=lease,
    )


def renew(session: Session, work: Work) -> bool:
    """Push the lease out again; False when it is no longer this job's."""
    result = session.connection().execute(
        update(REQUESTS)
        .where(held(work), _r.status == RequestStatus.RUNNING)
        .values(lease_expires_at=utcnow() + work.lease)
    )
    return result.rowcount == 1


def held(work: Work) -> Any:
    """The request, as long as this job holds it."""
    return (_r.id == work.request_id) & (_r.lease_token == work.token)


def fence(work: Work) -> Callable[[Session], None]:
    def check(session: Session) -> None:
        if not renew(session, work):
            session.rollback()
            raise LeaseLost

    return check


@contextmanager
def heartbeat(app: Blink, work: Work) -> Iterator[None]:
    """Renew the lease every third of its length until the block ends."""
    stop = threading.Event()
    context = structlog.contextvars.get_contextvars()

    def beat() -> None:
        structlog.contextvars.bind_contextvars(**context)
        failing = False
        while not stop.wait(work.lease.total_seconds() / 3):
            try:
                with app.db.session() as session:
                    held = renew(session, work)
                    session.commit()
            except Exception as err:  # a database hiccup: try again at the next beat
                if not failing:
                    log.warning("lease not renewed", error=type(err).__name__)
                failing = True
                continue
            failing = False
            if not held:
                return

    thread = threading.Thread(target=beat, name=f"lease-{work.request_id}", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()
