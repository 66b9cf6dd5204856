"""Data retention: the scheduler's ``retention`` task deletes each kind of row past its
keeping, keeps younger ones, never a pending request, and leaves the monthly report of a
month within the retention period as it was.

Rows are written oldest first, as they are in life: ids grow with time, and the pruning
of tables without an index on their time relies on it.
"""

from __future__ import annotations

import dataclasses
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from typing import Any

import pytest
from sqlalchemy import select

from blink_sms.actors import COMMAND_LINE, Role, admin_actor
from blink_sms.context import Blink
from blink_sms.models import (
    ApiKey,
    AuditEvent,
    Base,
    Client,
    ExpiryReminder,
    IdempotencyKey,
    InboundMessage,
    Invitation,
    LockoutEvent,
    OutboundMessage,
    RequestKind,
    RequestOrigin,
    RequestStatus,
    ResetRequest,
    SmsThrottle,
    UserStatus,
    VerificationCode,
    utcnow,
)
from blink_sms.scheduler import tasks
from blink_sms.services import monthly, retention
from tests.conftest import Persona, World

NOW = utcnow()
OWNER = admin_actor(1, "owner@msp.example", Role.MSP_OWNER, None)


def ago(days: float = 0, hours: float = 0) -> datetime:
    return NOW - timedelta(days=days, hours=hours)


def add(services: Blink, *rows: Base) -> list[int]:
    """Insert ``rows`` in order (one commit each: ids follow the order); their ids."""
    ids = []
    with services.db.session() as session:
        for row in rows:
            session.add(row)
            session.commit()
            ids.append(getattr(row, "id", 0))
    return ids


def request(person: Persona, created: datetime, status: RequestStatus) -> ResetRequest:
    finished = None if status in (RequestStatus.QUEUED, RequestStatus.RUNNING) else created
    return ResetRequest(
        user_id=person.user.id, kind=RequestKind.RESET, origin=RequestOrigin.SMS,
        status=status, created_at=created, finished_at=finished,
    )  # fmt: skip


def text(person: Persona, created: datetime, request_id: int | None = None) -> OutboundMessage:
    return OutboundMessage(
        sid="SM" + secrets.token_hex(16), user_id=person.user.id, request_id=request_id,
        purpose="otp", status="delivered", created_at=created,
    )  # fmt: skip


def invitation(person: Persona, created: datetime, **ended: Any) -> Invitation:
    return Invitation(
        user_id=person.user.id, actor="cli", created_at=created,
        expires_at=created + timedelta(hours=72), email_status="sent", **ended,
    )  # fmt: skip


def code(invitation_id: int, created: datetime) -> VerificationCode:
    return VerificationCode(
        invitation_id=invitation_id, phone="+31612345678", code_hash="0" * 64,
        created_at=created, expires_at=created + timedelta(minutes=10),
    )  # fmt: skip


def left(services: Blink, column: Any) -> list[Any]:
    with services.db.session() as session:
        return list(session.execute(select(column).order_by(column)).scalars())


@dataclass
class Seeded:
    requests: dict[str, int]
    texts: dict[str, int]
    invitations: dict[str, int]
    codes: dict[str, int]
    lockouts: dict[str, int]
    reminders: dict[str, int]


@pytest.fixture
def seeded(services: Blink, world: World, alice: Persona) -> Seeded:
    """Of each kind: rows just past their keeping, and rows just within it."""
    bob = world.person("bob", None, status=UserStatus.INVITED)
    carol = world.person("carol", None, status=UserStatus.INVITED)
    add(
        services,
        InboundMessage(sid="SMold", received_at=ago(days=15)),
        InboundMessage(sid="SMnew", received_at=ago(days=13)),
        SmsThrottle(key="old", window_start=ago(days=8), count=3),
        SmsThrottle(key="new", window_start=ago(days=6), count=3),
    )
    [key] = add(
        services,
        ApiKey(name="psa", prefix="blk_test", key_hash="0" * 64, created_by="cli", writes=True),
    )
    add(
        services,
        *(
            IdempotencyKey(
                api_key_id=key,
                key=name,
                method="POST",
                path="/api/v1/x",
                fingerprint="0" * 64,
                status_code=201,
                created_at=at,
            )
            for name, at in (("old", ago(hours=25)), ("new", ago(hours=23)))
        ),
    )
    names = ["pending", "done", "failed", "young"]
    requests = dict(zip(names, add(
        services,
        request(alice, ago(days=500), RequestStatus.QUEUED),
        request(alice, ago(days=450), RequestStatus.DONE),
        request(alice, ago(days=401), RequestStatus.FAILED),
        request(alice, ago(days=399), RequestStatus.DONE),
    ), strict=True))  # fmt: skip
    names = ["of_pending", "of_done", "loose", "of_failed_young", "young"]
    texts = dict(zip(names, add(
        services,
        text(alice, ago(days=500), requests["pending"]),
        text(alice, ago(days=450), requests["done"]),
        text(alice, ago(days=420)),
        # Sent within the retention period for a request made before it: kept, unlinked.
        text(alice, ago(days=399), requests["failed"]),
        text(alice, ago(days=399), requests["young"]),
    ), strict=True))  # fmt: skip
    names = ["used", "revoked", "open_expired", "young_used", "open"]
    invitations = dict(zip(names, add(
        services,
        invitation(alice, ago(days=450), used_at=ago(days=450)),
        invitation(bob, ago(days=440), revoked_at=ago(days=430), revoked_reason="superseded"),
        invitation(bob, ago(days=430)),  # bob's one open invitation: expired, kept
        invitation(carol, ago(days=399), used_at=ago(days=399)),
        invitation(carol, ago(days=1)),
    ), strict=True))  # fmt: skip
    codes = dict(zip(["old", "young"], add(
        services,
        code(invitations["open_expired"], ago(days=430)),
        code(invitations["open"], ago(days=1)),
    ), strict=True))  # fmt: skip
    lockouts = dict(zip(["ended", "ended_young", "open"], add(
        services,
        lockout(alice, ago(days=450), ended_at=ago(days=449)),
        lockout(alice, ago(days=399), ended_at=ago(days=399)),
        lockout(bob, ago(days=500)),  # bob is still locked out: his lockout stays
    ), strict=True))  # fmt: skip
    reminders = dict(zip(["old", "young", "due"], add(
        services,
        reminder(alice, sent=ago(days=95), expires=ago(days=92)),
        reminder(alice, sent=ago(days=10), expires=ago(days=7)),
        reminder(bob, sent=ago(days=91), expires=ago(days=-5)),  # not expired yet
    ), strict=True))  # fmt: skip
    return Seeded(requests, texts, invitations, codes, lockouts, reminders)


def lockout(person: Persona, detected: datetime, ended_at: datetime | None = None) -> Any:
    return LockoutEvent(
        client_id=person.user.client_id,
        user_id=person.user.id,
        detected_at=detected,
        ended_at=ended_at,
        ended_reason="ended" if ended_at else None,
    )


def reminder(person: Persona, *, sent: datetime, expires: datetime) -> Any:
    return ExpiryReminder(user_id=person.user.id, expires_at=expires, days_before=3, sent_at=sent)


def test_each_kind_goes_after_its_keeping_and_younger_rows_stay(
    services: Blink, seeded: Seeded
) -> None:
    counts = retention.prune_records(services, now=NOW, batch=2)  # several batches
    assert counts == {
        "outbound_messages": 2,
        "reset_requests": 2,
        "verification_codes": 1,
        "invitations": 2,
        "lockout_events": 1,
        "inbound_messages": 1,
        "sms_throttles": 1,
        "idempotency_keys": 1,
        "expiry_reminders": 1,
    }
    assert left(services, LockoutEvent.id) == [
        seeded.lockouts["ended_young"],
        seeded.lockouts["open"],
    ]
    assert left(services, ExpiryReminder.id) == [seeded.reminders["young"], seeded.reminders["due"]]
    assert left(services, InboundMessage.sid) == ["SMnew"]
    assert left(services, SmsThrottle.key) == ["new"]
    assert left(services, IdempotencyKey.key) == ["new"]
    r, t, i = seeded.requests, seeded.texts, seeded.invitations
    assert left(services, ResetRequest.id) == [r["pending"], r["young"]]
    assert left(services, OutboundMessage.id) == [t["of_pending"], t["of_failed_young"], t["young"]]
    with services.db.session() as session:
        unlinked = session.get_one(OutboundMessage, t["of_failed_young"])
        assert unlinked.request_id is None
    assert left(services, Invitation.id) == [i["open_expired"], i["young_used"], i["open"]]
    assert left(services, VerificationCode.id) == [seeded.codes["young"]]
    with services.db.session() as session:
        [event] = session.execute(
            select(AuditEvent).where(AuditEvent.action == "retention.pruned")
        ).scalars()  # fmt: skip
    assert event.actor == "system" and event.client_id is None
    assert event.detail["retention_days"] == 400
    assert event.detail["reset_requests"] == 2 and event.detail["invitations"] == 2
    # Nothing left to do: nothing deleted, no second event.
    assert set(retention.prune_records(services, now=NOW).values()) == {0}
    with services.db.session() as session:
        pruned = session.execute(
            select(AuditEvent.id).where(AuditEvent.action == "retention.pruned")
        ).all()  # fmt: skip
    assert len(pruned) == 1


def test_a_pending_request_and_its_texts_are_never_deleted(services: Blink, seeded: Seeded) -> None:
    retention.prune_records(services, now=NOW + timedelta(days=3650))
    assert left(services, ResetRequest.id) == [seeded.requests["pending"]]
    assert left(services, OutboundMessage.id) == [seeded.texts["of_pending"]]
    assert left(services, InboundMessage.sid) == []


def test_the_retention_period_is_the_msps(services: Blink, seeded: Seeded) -> None:
    with services.db.session() as session:
        assert retention.set_audit_retention(session, OWNER, 3000)
    counts = retention.prune_records(services, now=NOW)
    assert counts["reset_requests"] == counts["outbound_messages"] == counts["invitations"] == 0
    assert counts["inbound_messages"] == 1  # kept after its own setting, not the audit's


def test_the_message_id_window_is_a_setting(services: Blink, seeded: Seeded) -> None:
    settings = services.settings.with_changes(message_id_retention_days=30)
    retention.prune_records(dataclasses.replace(services, settings=settings), now=NOW)
    assert left(services, InboundMessage.sid) == ["SMnew", "SMold"]


def test_the_scheduler_task_prunes_records_too(services: Blink, seeded: Seeded) -> None:
    [task] = [task for task in tasks(services) if task.name == "retention"]
    task.run(services)
    assert left(services, InboundMessage.sid) == ["SMnew"]
    assert len(left(services, ResetRequest.id)) == 2


def test_a_month_within_the_retention_period_keeps_its_report(
    services: Blink, world: World, alice: Persona, seeded: Seeded
) -> None:
    recent = monthly.first_of((NOW - timedelta(days=60)).date())
    midnight = datetime.combine(recent, time.min, UTC)
    add(services, request(alice, midnight, RequestStatus.DONE), text(alice, midnight))
    old = monthly.first_of((NOW - timedelta(days=450)).date())

    def report(month: Any) -> dict[str, Any]:
        with services.db.session() as session:
            client = session.get_one(Client, world.client.id)
            return monthly.report(session, COMMAND_LINE, client, month).as_dict()

    before_recent, before_old = report(recent), report(old)
    assert before_recent["resets"]["total"] == 1 and before_old["resets"]["total"] == 1
    retention.prune(services, now=NOW)
    assert report(recent) == before_recent
    after_old = report(old)
    assert after_old["resets"]["total"] == 0 and after_old["sms"]["sent"] == 0
