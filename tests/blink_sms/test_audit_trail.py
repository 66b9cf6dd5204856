"""The audit trail: append-only on PostgreSQL, pruned after the retention period, exported
as JSON lines, filtered by user."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from click.testing import CliRunner
from sqlalchemy import Connection, select, text
from sqlalchemy.exc import DBAPIError

from blink_sms.actors import COMMAND_LINE, Forbidden, Role, admin_actor
from blink_sms.cli import cli
from blink_sms.context import Blink
from blink_sms.models import AuditEvent, utcnow
from blink_sms.scheduler import tasks
from blink_sms.services import audit, audit_log, clients, retention, users
from blink_sms.services.errors import Invalid

from ..conftest import Persona, World

# The append-only trigger exists on PostgreSQL only: these run in the PostgreSQL run.
postgres_only = pytest.mark.postgresql
OWNER = admin_actor(1, "owner@msp.example", Role.MSP_OWNER, None)


def events(services: Blink, **where: Any) -> list[AuditEvent]:
    with services.db.session() as session:
        query = select(AuditEvent).filter_by(**where).order_by(AuditEvent.id)
        return list(session.execute(query).scalars())


def add_event(services: Blink, action: str, *, days_ago: float, **fields: Any) -> None:
    """An event as the services write it, ``days_ago`` in the past."""
    with services.db.session() as session:
        session.connection().execute(
            audit.INSERT,
            {
                "at": utcnow() - timedelta(days=days_ago),
                "action": action,
                "actor": "system",
                "client_id": fields.get("client_id"),
                "user_id": fields.get("user_id"),
                "request_id": None,
                "detail": fields.get("detail", {}),
            },
        )
        session.commit()


@pytest.fixture
def sql(services: Blink) -> Iterator[Connection]:
    """A plain connection, as someone with a SQL prompt has (not through the services)."""
    with services.db.engine.connect() as connection:
        yield connection


# --- append-only on PostgreSQL ---------------------------------------------------------------


@postgres_only
def test_the_trigger_refuses_an_update_or_delete_by_plain_sql(
    services: Blink, alice: Persona, sql: Connection
) -> None:
    add_event(services, "user.imported", days_ago=0, user_id=alice.user.id)
    event_id = events(services)[-1].id
    for statement in (
        "UPDATE audit_events SET action = 'user.enabled' WHERE id = :id",
        "UPDATE audit_events SET detail = '{\"forged\": true}' WHERE id = :id",
        "UPDATE audit_events SET at = at - interval '1 day' WHERE id = :id",
        "UPDATE audit_events SET user_id = NULL WHERE id = :id",  # alice still exists
        "DELETE FROM audit_events WHERE id = :id",
        "TRUNCATE audit_events CASCADE",
    ):
        with pytest.raises(DBAPIError, match="append-only"):
            sql.execute(text(statement), {"id": event_id})
        sql.rollback()
    # The wrong maintenance purpose does not help either.
    sql.execute(text("SET LOCAL blink.audit_maintenance = 'retention'"))
    with pytest.raises(DBAPIError, match="append-only"):
        sql.execute(text("UPDATE audit_events SET action = 'x.y' WHERE id = :id"), {"id": event_id})
    sql.rollback()
    sql.execute(text("SET LOCAL blink.audit_maintenance = 'erasure'"))
    with pytest.raises(DBAPIError, match="append-only"):
        sql.execute(text("DELETE FROM audit_events WHERE id = :id"), {"id": event_id})
    sql.rollback()
    [event] = events(services, id=event_id)
    assert event.action == "user.imported" and event.user_id == alice.user.id


@postgres_only
def test_retention_may_delete_and_erasure_may_rewrite_only_the_detail(
    services: Blink, alice: Persona, sql: Connection
) -> None:
    add_event(services, "user.imported", days_ago=0, user_id=alice.user.id, detail={"a": 1})
    add_event(services, "user.imported", days_ago=0, user_id=alice.user.id)
    first, second = (event.id for event in events(services, action="user.imported"))
    sql.execute(text("SET LOCAL blink.audit_maintenance = 'erasure'"))
    sql.execute(text("UPDATE audit_events SET detail = '{\"a\": 2}' WHERE id = :id"), {"id": first})
    with pytest.raises(DBAPIError, match="append-only"):
        sql.execute(text("UPDATE audit_events SET actor = 'me' WHERE id = :id"), {"id": first})
    sql.rollback()  # the setting ends with its transaction, the rewrite with it
    sql.execute(text("SET LOCAL blink.audit_maintenance = 'erasure'"))
    sql.execute(text("UPDATE audit_events SET detail = '{\"a\": 2}' WHERE id = :id"), {"id": first})
    sql.commit()
    with pytest.raises(DBAPIError, match="append-only"):  # a new transaction: no setting
        sql.execute(text("UPDATE audit_events SET detail = '{}' WHERE id = :id"), {"id": first})
    sql.rollback()
    sql.execute(text("SET LOCAL blink.audit_maintenance = 'retention'"))
    sql.execute(text("DELETE FROM audit_events WHERE id = :id"), {"id": second})
    sql.commit()
    assert [(e.id, e.detail) for e in events(services, action="user.imported")] == [
        (first, {"a": 2})
    ]


def test_removing_users_and_clients_unlinks_their_events(services: Blink, world: World) -> None:
    """ON DELETE SET NULL is the one change the trigger lets through (on PostgreSQL)."""
    bob = world.person("bob", "+15551230002")
    fabrikam = world.another_client("fabrikam")
    zed = world.person("zed", "+15551230003", client=fabrikam)
    for person in (bob, zed):
        add_event(
            services, "user.imported", days_ago=0, user_id=person.user.id,
            client_id=person.user.client_id,
        )  # fmt: skip
    with services.db.session() as session:
        users.remove_user(session, COMMAND_LINE, session.merge(bob.user))
        client = session.merge(fabrikam)
        clients.remove_client(session, COMMAND_LINE, client, confirm="fabrikam")
    imported = events(services, action="user.imported")
    assert [(e.client_id, e.user_id) for e in imported] == [(world.client.id, None), (None, None)]
    assert [e.action for e in events(services)][-2:] == ["user.removed", "client.removed"]


def test_the_orm_refuses_to_change_a_loaded_event(services: Blink, alice: Persona) -> None:
    """SQLite's guard (and PostgreSQL's first line): a loaded event cannot be flushed."""
    add_event(services, "user.imported", days_ago=0, user_id=alice.user.id)
    with services.db.session() as session:
        event = session.execute(select(AuditEvent)).scalars().first()
        assert event is not None
        event.action = "user.enabled"
        with pytest.raises(ValueError, match="append-only"):
            session.flush()


# --- retention -------------------------------------------------------------------------------


def test_prune_deletes_only_events_older_than_the_retention_period(
    services: Blink, world: World
) -> None:
    for days in (800, 500, 401, 399, 10, 0):
        add_event(services, "user.imported", days_ago=days, detail={"days": days})
    before = len(events(services))
    assert retention.prune(services, batch=2) == 3  # several batches
    left = [e.detail["days"] for e in events(services, action="user.imported")]
    assert left == [399, 10, 0]
    [pruned] = events(services, action="audit.pruned")
    assert pruned.detail["deleted"] == 3 and pruned.detail["retention_days"] == 400
    assert pruned.actor == "system" and pruned.client_id is None
    assert len(events(services)) == before - 3 + 1
    assert retention.prune(services) == 0  # nothing left to do: no event either
    assert len(events(services, action="audit.pruned")) == 1


def test_the_retention_period_is_the_msp_owners_to_set(services: Blink, world: World) -> None:
    technician = admin_actor(2, "tech@msp.example", Role.MSP_TECHNICIAN, None)
    client_admin = admin_actor(3, "it@contoso.example", Role.CLIENT_ADMIN, world.client.id)
    with services.db.session() as session:
        assert retention.audit_retention_days(session) == 400
        for who in (technician, client_admin):
            with pytest.raises(Forbidden):
                retention.set_audit_retention(session, who, 90)
        for days in (29, 3651, 0, -5):
            with pytest.raises(Invalid) as refused:
                retention.set_audit_retention(session, OWNER, days)
            assert refused.value.field == "audit_retention_days"
        assert retention.set_audit_retention(session, OWNER, 30) is True
        assert retention.set_audit_retention(session, OWNER, 30) is False
        assert retention.audit_retention_days(session) == 30
    [changed] = events(services, action="msp.settings_changed")
    assert changed.detail == {"fields": ["audit_retention_days"], "audit_retention_days": 30,
                              "previous": 400}  # fmt: skip
    assert changed.actor == OWNER.label
    add_event(services, "user.imported", days_ago=31)
    add_event(services, "user.imported", days_ago=29)
    assert retention.prune(services) == 1


def test_the_scheduler_prunes_hourly(services: Blink) -> None:
    [task] = [task for task in tasks(services) if task.name == "retention"]
    assert task.every == 3600 and task.run is retention.prune


def test_settings_from_the_command_line(services: Blink) -> None:
    env = {
        "BLINK_SECRET_KEY": services.settings.secret_key,
        "BLINK_DATABASE_URL": services.settings.database_url,
        "BLINK_PUBLIC_URL": services.settings.public_url,
    }
    runner = CliRunner()
    shown = runner.invoke(cli, ["settings", "show"], env=env)
    assert shown.exit_code == 0 and "audit retention: 400 days (the default)" in shown.output
    changed = runner.invoke(cli, ["settings", "set", "--audit-retention-days", "730"], env=env)
    assert changed.exit_code == 0, changed.output
    assert "730 days" in runner.invoke(cli, ["settings", "show"], env=env).output
    refused = runner.invoke(cli, ["settings", "set", "--audit-retention-days", "7"], env=env)
    assert refused.exit_code == 1 and "from 30 to 3650" in refused.output
    with services.db.session() as session:
        assert retention.audit_retention_days(session) == 730


# --- reading: the user filter and JSON lines --------------------------------------------------


def test_the_trail_filters_by_user_and_exports_json_lines(
    services: Blink, world: World, alice: Persona
) -> None:
    bob = world.person("bob", "+15551230002")
    add_event(services, "user.imported", days_ago=1, user_id=alice.user.id,
              client_id=world.client.id)  # fmt: skip
    add_event(services, "reset.failed", days_ago=0, user_id=alice.user.id,
              client_id=world.client.id, detail={"error_code": "directory_down"})  # fmt: skip
    add_event(services, "user.imported", days_ago=0, user_id=bob.user.id,
              client_id=world.client.id)  # fmt: skip
    with services.db.session() as session:
        page = audit_log.query_events(session, COMMAND_LINE, user_id=alice.user.id)
        assert [e.action for e in page.events] == ["reset.failed", "user.imported"]
        found = audit_log.iter_events(session, COMMAND_LINE, client=world.client)
        lines = list(audit_log.json_lines(found))
    assert all(line.endswith("\n") and line.count("\n") == 1 for line in lines)
    parsed = [json.loads(line) for line in lines]
    newest = parsed[1]  # bob's import, then alice's failure
    assert newest["action"] == "reset.failed" and newest["outcome"] == "problem"
    assert newest["client"] == "contoso" and newest["user_id"] == alice.user.id
    assert newest["detail"] == {"error_code": "directory_down"} and newest["actor"] == "system"
    assert newest["at"].endswith("Z") and set(newest) >= {
        "id",
        "at",
        "client",
        "user_id",
        "actor",
        "action",
        "outcome",
        "detail",
    }
    assert parsed[0]["outcome"] == "ok"


def test_the_command_line_exports_json_lines_and_filters_by_outcome(
    services: Blink, world: World, alice: Persona
) -> None:
    env = {
        "BLINK_SECRET_KEY": services.settings.secret_key,
        "BLINK_DATABASE_URL": services.settings.database_url,
        "BLINK_PUBLIC_URL": services.settings.public_url,
    }
    add_event(services, "reset.failed", days_ago=0, user_id=alice.user.id,
              client_id=world.client.id)  # fmt: skip
    runner = CliRunner()
    out = runner.invoke(cli, ["audit", "--client", "contoso", "--jsonl"], env=env)
    assert out.exit_code == 0, out.output
    actions = [json.loads(line)["action"] for line in out.stdout.splitlines()]
    assert actions == ["reset.failed", "client.created"]
    problems = runner.invoke(cli, ["audit", "--outcome", "problem", "--jsonl"], env=env)
    assert [json.loads(line)["action"] for line in problems.stdout.splitlines()] == ["reset.failed"]
    both = runner.invoke(cli, ["audit", "--csv", "--jsonl"], env=env)
    assert both.exit_code == 2 and "not both" in both.output
