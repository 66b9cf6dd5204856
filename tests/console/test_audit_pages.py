"""The audit pages and their CSV export: filters, paging, and who sees which events.

Events are written the way the services write them (``audit.record``); events dated in
the past are inserted as rows, since ``record`` stamps the current time.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from blink_sms.actors import COMMAND_LINE, Role
from blink_sms.context import Blink
from blink_sms.models import AuditEvent, Client
from blink_sms.services import audit, audit_log

from ..conftest import Persona, World
from .conftest import Console


@dataclass
class Trail:
    contoso: Client
    fabrikam: Client
    carol: Persona  # a Contoso user
    zed: Persona  # a Fabrikam user


def record(services: Blink, action: str, **kwargs: Any) -> None:
    with services.db.session() as session:
        audit.record(session, action, **kwargs)
        session.commit()


def insert(services: Blink, at: datetime, action: str, **kwargs: Any) -> int:
    with services.db.session() as session:
        event = AuditEvent(at=at, action=action, actor=kwargs.pop("actor", "system"), **kwargs)
        session.add(event)
        session.commit()
        return event.id


def event_ids(body: str) -> list[int]:
    """The events on a page, top to bottom."""
    return [int(found) for found in re.findall(r'<tr id="event-(\d+)"', body)]


def actions(body: str) -> list[str]:
    """The actions on a page, top to bottom, less the clients' own "client.created" (the
    fixtures create clients through the service, which records that)."""
    found = re.findall(r'<tr id="event-\d+" data-action="([^"]+)"', body)
    return [action for action in found if action != "client.created"]


@pytest.fixture
def trail(world: World, fabrikam: Client, services: Blink) -> Trail:
    carol = world.person("carol", "+15551230041")
    zed = world.person("zed", "+15551230042", client=fabrikam)
    contoso = world.client
    record(services, "user.imported", actor=COMMAND_LINE, client_id=contoso.id,
           user_id=carol.user.id)  # fmt: skip
    record(services, "reset.requested", actor=f"sms:user:{carol.user.id}",
           client_id=contoso.id, user_id=carol.user.id, origin="sms")  # fmt: skip
    record(services, "reset.failed", actor="system", client_id=contoso.id,
           user_id=carol.user.id, error_code="directory_unavailable")  # fmt: skip
    record(services, "user.imported", actor=COMMAND_LINE, client_id=fabrikam.id,
           user_id=zed.user.id)  # fmt: skip
    record(services, "reset.completed", actor="system", client_id=fabrikam.id,
           user_id=zed.user.id, note="fabrikam-only")  # fmt: skip
    record(services, "admin.signed_in", actor="admin:1:owner@msp.example", email="msp-wide")
    return Trail(contoso, fabrikam, carol, zed)


def test_the_trail_shows_events_newest_first_in_words(owner: Console, trail: Trail) -> None:
    response = owner.http.get("/admin/audit")
    body = response.get_data(as_text=True)
    assert response.status_code == 200
    assert actions(body) == [
        "admin.signed_in",
        "reset.completed",
        "user.imported",
        "reset.failed",
        "reset.requested",
        "user.imported",
    ]
    ids = event_ids(body)
    assert ids == sorted(ids, reverse=True)
    # Action in words, who in words, target user, client, details (error code in words).
    assert "password reset failed" in body
    assert "the user, by text" in body
    assert ">carol</a>" in body and ">zed</a>" in body
    assert ">Contoso</a>" in body and ">Fabrikam</a>" in body
    assert "directory did not answer (directory_unavailable)" in body
    assert "owner@msp.example" in body and "MSP</span>" in body
    # Times in UTC, exact and relative.
    assert re.search(r'<time datetime="\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ">', body)
    assert "just now" in body


def test_details_are_escaped(owner: Console, trail: Trail, services: Blink) -> None:
    record(services, "user.updated", actor="system", client_id=trail.contoso.id,
           fields=["<script>alert(1)</script>"])  # fmt: skip
    body = owner.http.get("/admin/audit").get_data(as_text=True)
    assert "<script>alert(1)</script>" not in body
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in body


def test_it_filters_by_action(owner: Console, trail: Trail) -> None:
    body = owner.http.get("/admin/audit?action=user.imported").get_data(as_text=True)
    assert actions(body) == ["user.imported", "user.imported"]
    assert '<option value="user.imported" selected>' in body  # the form keeps the choice
    body = owner.http.get("/admin/audit?action=reset.*").get_data(as_text=True)
    assert actions(body) == ["reset.completed", "reset.failed", "reset.requested"]


def test_it_filters_by_outcome(owner: Console, trail: Trail) -> None:
    body = owner.http.get("/admin/audit?outcome=problem").get_data(as_text=True)
    assert actions(body) == ["reset.failed"]
    body = owner.http.get("/admin/audit?outcome=ok").get_data(as_text=True)
    assert "reset.failed" not in actions(body) and len(actions(body)) == 5


def test_it_filters_by_user_and_actor(owner: Console, trail: Trail) -> None:
    body = owner.http.get("/admin/audit?user=CAR").get_data(as_text=True)
    assert actions(body) == ["reset.failed", "reset.requested", "user.imported"]
    assert 'name="user" type="search" value="CAR"' in body
    body = owner.http.get("/admin/audit?actor=sms:user").get_data(as_text=True)
    assert actions(body) == ["reset.requested"]
    # LIKE wildcards typed by the admin are taken literally.
    assert event_ids(owner.http.get("/admin/audit?user=%25").get_data(as_text=True)) == []


def test_it_filters_by_client(owner: Console, trail: Trail) -> None:
    body = owner.http.get("/admin/audit?client=fabrikam").get_data(as_text=True)
    assert actions(body) == ["reset.completed", "user.imported"]
    body = owner.http.get(f"/admin/audit?client={audit_log.NO_CLIENT}").get_data(as_text=True)
    assert actions(body) == ["admin.signed_in"]
    assert owner.http.get("/admin/audit?client=nobody").status_code == 404


def test_it_filters_by_date(owner: Console, trail: Trail, services: Blink) -> None:
    today = datetime.now(UTC).replace(hour=12, minute=0, second=0, microsecond=0)
    old = insert(services, today - timedelta(days=10), "user.disabled", client_id=trail.contoso.id)
    older = insert(services, today - timedelta(days=20), "user.enabled", client_id=trail.contoso.id)
    ten, eleven = (today - timedelta(days=10)).date(), (today - timedelta(days=11)).date()

    body = owner.http.get(f"/admin/audit?since={ten}&until={ten}").get_data(as_text=True)
    assert event_ids(body) == [old]
    body = owner.http.get(f"/admin/audit?until={eleven}").get_data(as_text=True)
    assert event_ids(body) == [older]
    body = owner.http.get(f"/admin/audit?since={ten}").get_data(as_text=True)
    assert older not in event_ids(body) and old in event_ids(body) and len(actions(body)) == 7


def test_a_bad_date_is_explained_and_the_form_kept(owner: Console, trail: Trail) -> None:
    response = owner.http.get("/admin/audit?since=31/01/2025&user=carol")
    body = response.get_data(as_text=True)
    assert response.status_code == 400
    assert "From</strong>: a date like 2025-01-31" in body
    assert 'value="31/01/2025"' in body and 'value="carol"' in body
    response = owner.http.get("/admin/audit?since=2025-02-01&until=2025-01-01")
    assert response.status_code == 400
    assert "must not be before the start" in response.get_data(as_text=True)


def test_older_pages_follow_by_keyset(owner: Console, trail: Trail, services: Blink) -> None:
    with services.db.session() as session:
        for number in range(110):
            audit.record(session, "user.updated", actor="system", client_id=trail.contoso.id,
                         number=number)  # fmt: skip
        session.commit()
    seen: list[int] = []
    path: str | None = "/admin/audit?action=user.updated"
    pages = 0
    while path:
        body = owner.http.get(path).get_data(as_text=True)
        ids = event_ids(body)
        assert len(ids) == (50 if pages < 2 else 10)
        seen += ids
        pages += 1
        older = re.search(r'<a href="([^"]+)">Older events</a>', body)
        path = older.group(1).replace("&amp;", "&") if older else None
        if path:
            assert "action=user.updated" in path  # the filters stay on the next page
    assert pages == 3
    assert seen == sorted(seen, reverse=True) and len(set(seen)) == 110


def test_a_client_admin_never_sees_another_clients_events(
    console_as: Callable[..., Console], trail: Trail
) -> None:
    contoso_admin = console_as(Role.CLIENT_ADMIN, trail.contoso)
    body = contoso_admin.http.get("/admin/audit").get_data(as_text=True)
    assert actions(body) == ["reset.failed", "reset.requested", "user.imported"]
    assert "Fabrikam" not in body and "zed" not in body and "msp-wide" not in body
    assert 'name="client"' not in body  # no client filter for one client's admin

    # A forged client filter, a forged page, the CSV: nothing of Fabrikam.
    assert contoso_admin.http.get("/admin/audit?client=fabrikam").status_code == 404
    assert contoso_admin.http.get("/admin/audit.csv?client=fabrikam").status_code == 404
    assert contoso_admin.http.get("/admin/clients/fabrikam/audit").status_code == 404
    body = contoso_admin.http.get("/admin/clients/contoso/audit?client=fabrikam").get_data(
        as_text=True
    )
    assert actions(body) == ["reset.failed", "reset.requested", "user.imported"]
    body = contoso_admin.http.get(f"/admin/audit?client={audit_log.NO_CLIENT}").get_data(
        as_text=True
    )
    assert event_ids(body) == []
    exported = contoso_admin.http.get("/admin/audit.csv").get_data(as_text=True)
    assert "fabrikam" not in exported.lower() and "zed" not in exported
    rows = list(csv.DictReader(io.StringIO(exported)))
    assert sorted(row["action"] for row in rows) == [
        "client.created",
        "reset.failed",
        "reset.requested",
        "user.imported",
    ]


def test_an_auditor_can_read_the_trail(console_as: Callable[..., Console], trail: Trail) -> None:
    msp_auditor = console_as(Role.AUDITOR)
    body = msp_auditor.http.get("/admin/audit").get_data(as_text=True)
    assert len(actions(body)) == 6
    assert msp_auditor.http.get("/admin/audit.csv").status_code == 200

    contoso_auditor = console_as(Role.AUDITOR, trail.contoso)
    response = contoso_auditor.http.get("/admin/clients/contoso/audit")
    assert response.status_code == 200
    assert actions(response.get_data(as_text=True)) == [
        "reset.failed",
        "reset.requested",
        "user.imported",
    ]
    assert contoso_auditor.http.get("/admin/clients/fabrikam/audit").status_code == 404


def test_a_clients_page_shows_only_that_client(owner: Console, trail: Trail) -> None:
    body = owner.http.get("/admin/clients/fabrikam/audit").get_data(as_text=True)
    assert actions(body) == ["reset.completed", "user.imported"]
    assert "/admin/audit.csv?client=fabrikam" in body  # its export is filtered the same way


def test_the_csv_export_streams_the_filtered_events(
    owner: Console, trail: Trail, services: Blink
) -> None:
    record(services, "user.updated", actor="system", client_id=trail.contoso.id,
           user_id=trail.carol.user.id, fields=["=HYPERLINK(1)"])  # fmt: skip
    response = owner.http.get("/admin/audit.csv?client=contoso&user=carol")
    assert response.status_code == 200
    assert response.is_streamed
    assert response.mimetype == "text/csv"
    assert "attachment" in response.headers["Content-Disposition"]
    rows = list(csv.DictReader(io.StringIO(response.get_data(as_text=True))))
    assert [row["action"] for row in rows] == [
        "user.updated",
        "reset.failed",
        "reset.requested",
        "user.imported",
    ]
    assert {row["client"] for row in rows} == {"contoso"}
    assert {row["user"] for row in rows} == {"carol"}
    assert rows[1]["action_in_words"] == "password reset failed"
    assert '"error_code": "directory_unavailable"' in rows[1]["detail"]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", rows[0]["at_utc"])
    # A cell a spreadsheet would run as a formula is kept as text.
    assert not any(value.startswith("=") for row in rows for value in row.values())


def test_the_csv_export_refuses_a_bad_filter(owner: Console, trail: Trail) -> None:
    response = owner.http.get("/admin/audit.csv?until=yesterday")
    assert response.status_code == 400
    assert "a date like" in response.get_data(as_text=True)


def test_the_service_pages_through_everything_for_the_command_line(
    services: Blink, trail: Trail
) -> None:
    with services.db.session() as session:
        everything = list(audit_log.iter_events(session, COMMAND_LINE, batch=2))
        assert len(everything) == 6 + 2  # and the two clients' creation
        assert [event.id for event in everything] == sorted(
            (event.id for event in everything), reverse=True
        )
        page = audit_log.query_events(session, COMMAND_LINE, client=trail.fabrikam, limit=1)
        assert [event.action for event in page.events] == ["reset.completed"]
        assert page.older == page.events[0].id
        rest = audit_log.query_events(
            session, COMMAND_LINE, client=trail.fabrikam, before_id=page.older
        )
        assert [event.action for event in rest.events] == ["user.imported", "client.created"]
        assert rest.older is None
