"""The dashboard charts: resets per UTC day, the enrollment funnel, failures by cause, and
who is locked out now, on the MSP's home (every client) and on a client's page.

The charts are SVG drawn on the server; each bar group carries its numbers in data
attributes, which these tests read back from the page a browser gets.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

import pytest
from sqlalchemy import event, text

from blink_sms.actors import COMMAND_LINE, Role
from blink_sms.context import Blink
from blink_sms.models import (
    Client,
    RequestKind,
    RequestOrigin,
    RequestStatus,
    ResetRequest,
    UserStatus,
)
from blink_sms.services import reports, scope
from blink_sms.services.clients import set_disabled

from ..conftest import Persona, World
from .conftest import Console

SVG = "{http://www.w3.org/2000/svg}"


def midnight(day: date) -> datetime:
    return datetime.combine(day, time.min, tzinfo=UTC)


def add_requests(
    services: Blink,
    person: Persona,
    at: datetime,
    status: RequestStatus,
    count: int = 1,
    error_code: str | None = None,
) -> None:
    with services.db.session() as session:
        for _ in range(count):
            session.add(
                ResetRequest(
                    user_id=person.user.id,
                    kind=RequestKind.RESET,
                    origin=RequestOrigin.SMS,
                    status=status,
                    error_code=error_code,
                    created_at=at,
                    finished_at=at,
                )
            )
        session.commit()


@dataclass
class Seeded:
    today: date
    contoso: Client
    fabrikam: Client
    carol: Persona


@pytest.fixture
def seeded(world: World, fabrikam: Client, services: Blink) -> Seeded:
    """Contoso: resets on four of the last 30 days, one just outside; users at every
    stage. Fabrikam: resets today, which only the MSP-wide charts count."""
    today = datetime.now(UTC).date()
    carol = world.person("carol", "+15551230051")
    world.person("gina", "+15551230052")
    world.person("dave", None, status=UserStatus.INVITED)
    world.person("erin", None, status=UserStatus.PENDING)
    world.person("frank", None, status=UserStatus.DISABLED)
    zed = world.person("zed", "+15551230053", client=fabrikam)

    add_requests(services, carol, midnight(today), RequestStatus.DONE, 2)
    add_requests(services, carol, midnight(today), RequestStatus.FAILED, 1, "directory_unavailable")
    add_requests(services, carol, midnight(today), RequestStatus.QUEUED)  # not finished: no bar
    # 23:59 UTC belongs to its own UTC day, whatever the database's time zone.
    three_ago = midnight(today - timedelta(days=3)) + timedelta(hours=23, minutes=59)
    add_requests(services, carol, three_ago, RequestStatus.DONE)
    ten_ago = midnight(today - timedelta(days=10)) + timedelta(hours=9)
    add_requests(services, carol, ten_ago, RequestStatus.FAILED, 1, "password_rejected")
    add_requests(services, carol, ten_ago, RequestStatus.FAILED, 1, "sms_21211")
    add_requests(services, carol, midnight(today - timedelta(days=29)), RequestStatus.FAILED,
                 1, "directory_unavailable")  # fmt: skip
    outside = midnight(today - timedelta(days=29)) - timedelta(seconds=1)
    add_requests(services, carol, outside, RequestStatus.DONE)
    add_requests(services, carol, outside, RequestStatus.FAILED, 1, "stale")

    add_requests(services, zed, midnight(today), RequestStatus.DONE, 5)
    add_requests(services, zed, midnight(today), RequestStatus.FAILED, 1, "user_not_found")
    return Seeded(today, world.client, fabrikam, carol)


def figure(body: str, name: str) -> str:
    found = re.search(
        rf'<figure class="card chart[^"]*" id="chart-{name}">(.*?)</figure>', body, re.S
    )
    assert found, f"no {name} chart"
    return found.group(1)


def svg(body: str, name: str) -> ET.Element:
    found = re.search(r"<svg .*?</svg>", figure(body, name), re.S)
    assert found, f"no SVG in the {name} chart"
    return ET.fromstring(found.group(0))  # noqa: S314 -- our own page


def groups(chart: ET.Element, cls: str) -> list[ET.Element]:
    return [g for g in chart.iter(f"{SVG}g") if g.get("class") == cls]


def days_of(body: str) -> dict[str, tuple[int, int]]:
    return {
        g.get("data-day", ""): (int(g.get("data-done", "")), int(g.get("data-failed", "")))
        for g in groups(svg(body, "resets"), "day")
    }


def test_a_clients_page_charts_its_resets_per_day(owner: Console, seeded: Seeded) -> None:
    body = owner.http.get("/admin/clients/contoso").get_data(as_text=True)
    days = days_of(body)
    expected_days = [(seeded.today - timedelta(days=n)).isoformat() for n in range(29, -1, -1)]
    assert list(days) == expected_days  # 30 days, oldest first, none missing
    today = seeded.today
    assert days[today.isoformat()] == (2, 1)
    assert days[(today - timedelta(days=3)).isoformat()] == (1, 0)
    assert days[(today - timedelta(days=10)).isoformat()] == (0, 2)
    assert days[(today - timedelta(days=29)).isoformat()] == (0, 1)
    assert sum(1 for counts in days.values() if counts == (0, 0)) == 26  # zero days shown
    # Each bar's numbers are in its tooltip too, and the table repeats them.
    assert f"<title>{today.isoformat()}: 2 done, 1 failed</title>" in body
    assert "done: 3" in figure(body, "resets") and "failed: 4" in figure(body, "resets")
    assert "UTC" in body and "no time zone per client" in body


def test_bars_are_as_tall_as_their_counts(owner: Console, seeded: Seeded) -> None:
    chart = svg(owner.http.get("/admin/clients/contoso").get_data(as_text=True), "resets")
    heights = {
        g.get("data-day"): [float(rect.get("height", "")) for rect in g.iter(f"{SVG}rect")]
        for g in groups(chart, "day")
    }
    done_today, failed_today = heights[seeded.today.isoformat()]
    assert done_today == pytest.approx(2 * failed_today)
    assert heights[(seeded.today - timedelta(days=1)).isoformat()] == [0, 0]


def test_the_funnel_and_the_causes_of_one_client(owner: Console, seeded: Seeded) -> None:
    body = owner.http.get("/admin/clients/contoso").get_data(as_text=True)
    stages = {g.get("data-stage"): int(g.get("data-count", "")) for g in
              groups(svg(body, "funnel"), "stage")}  # fmt: skip
    assert stages == {"imported": 4, "invited": 3, "active": 2}  # disabled frank apart
    causes = {g.get("data-code"): int(g.get("data-count", "")) for g in
              groups(svg(body, "causes"), "cause")}  # fmt: skip
    assert causes == {"directory_unavailable": 2, "password_rejected": 1, "sms_21211": 1}
    assert "directory did not answer" in body
    assert "text not sent: invalid phone number" in body
    assert "1 disabled, not counted" in body


def test_the_msp_home_charts_every_client(owner: Console, seeded: Seeded) -> None:
    body = owner.http.get("/admin/").get_data(as_text=True)
    assert days_of(body)[seeded.today.isoformat()] == (7, 2)
    stages = {g.get("data-stage"): int(g.get("data-count", "")) for g in
              groups(svg(body, "funnel"), "stage")}  # fmt: skip
    assert stages == {"imported": 5, "invited": 4, "active": 3}  # with Fabrikam's zed
    causes = {g.get("data-code"): int(g.get("data-count", "")) for g in
              groups(svg(body, "causes"), "cause")}  # fmt: skip
    assert causes["user_not_found"] == 1 and causes["directory_unavailable"] == 2
    assert 'id="locked-now"' not in body  # the directory is asked on a client's page only


def test_a_client_admin_charts_only_their_client(
    console_as: Callable[..., Console], seeded: Seeded, services: Blink
) -> None:
    contoso_admin = console_as(Role.CLIENT_ADMIN, seeded.contoso)
    body = contoso_admin.http.get("/admin/clients/contoso").get_data(as_text=True)
    assert days_of(body)[seeded.today.isoformat()] == (2, 1)
    assert "user_not_found" not in body
    with services.db.session() as session:
        mine = reports.dashboard(session, contoso_admin.actor)  # every client they see
        assert mine.days[-1] == reports.DayCount(seeded.today, done=2, failed=1)
        assert mine.funnel == reports.Funnel(imported=4, invited=3, active=2, disabled=1)
        with pytest.raises(scope.NotFound):
            reports.dashboard(session, contoso_admin.actor, client=seeded.fabrikam)


def test_the_reports_are_a_few_grouped_queries(services: Blink, seeded: Seeded) -> None:
    statements: list[str] = []

    def count(*args: object) -> None:
        statements.append(str(args[2]))

    engine = services.db.engine
    event.listen(engine, "before_cursor_execute", count)
    try:
        with services.db.session() as session:
            reports.dashboard(session, COMMAND_LINE)
    finally:
        event.remove(engine, "before_cursor_execute", count)
    queries = [statement for statement in statements if statement.startswith("SELECT")]
    assert len(queries) == 3  # per day, funnel, causes: not one per day
    assert all("GROUP BY" in query for query in queries)


@pytest.fixture
def locked(world: World, seeded: Seeded) -> None:
    """Carol (a Contoso user) and Mallory (in the directory, never imported) locked out."""
    world.directory.add_user("mallory", "Mallory Outsider", password="Start!Pass1")
    world.lock("carol")
    world.lock("mallory")


def test_a_clients_page_lists_who_is_locked_out_now(
    owner: Console, seeded: Seeded, locked: None
) -> None:
    body = owner.http.get("/admin/clients/contoso").get_data(as_text=True)
    section = re.search(r'<section class="card" id="locked-now".*?</section>', body, re.S)
    assert section
    text = section.group(0)
    assert '<p class="stat">2</p>' in text
    assert "Carol" in text and "Mallory Outsider" in text
    assert "not imported" in text  # mallory is in the directory, not in the gateway


def test_a_directory_that_cannot_be_asked_is_a_note_not_an_error(
    owner: Console, world: World, seeded: Seeded
) -> None:
    world.directory.set_outage()
    response = owner.http.get("/admin/clients/contoso")
    body = response.get_data(as_text=True)
    assert response.status_code == 200
    assert "Could not ask the directory: directory did not answer." in body
    assert days_of(body)[seeded.today.isoformat()] == (2, 1)  # the charts are still there


def test_the_pages_have_no_inline_style(owner: Console, seeded: Seeded) -> None:
    for path in ("/admin/", "/admin/clients/contoso"):
        body = owner.http.get(path).get_data(as_text=True)
        assert "<svg" in body
        assert not re.search(r"\sstyle=", body), path


def test_days_are_utc_days_whatever_the_database_time_zone(services: Blink, seeded: Seeded) -> None:
    with services.db.session() as session:
        if session.get_bind().dialect.name == "postgresql":
            # UTC+14: a day taken in the session's zone would move 23:59 UTC a day on.
            session.execute(text("SET TIME ZONE 'Pacific/Kiritimati'"))
        days = reports.resets_per_day(session, COMMAND_LINE, client=seeded.contoso)
        session.rollback()
    by_day = {entry.day: (entry.done, entry.failed) for entry in days}
    assert by_day[seeded.today - timedelta(days=3)] == (1, 0)
    assert by_day[seeded.today - timedelta(days=2)] == (0, 0)


def test_a_disabled_clients_directory_is_not_asked(
    owner: Console, world: World, seeded: Seeded, services: Blink
) -> None:
    with services.db.session() as session:
        contoso = session.get(Client, seeded.contoso.id)
        assert contoso is not None
        set_disabled(session, COMMAND_LINE, contoso, disabled=True)
        session.commit()
    world.directory.set_outage()  # were it asked, the note would say it did not answer
    body = owner.http.get("/admin/clients/contoso").get_data(as_text=True)
    assert "the client is disabled, so nothing reaches its directory" in body
    assert "Could not ask the directory: directory did not answer" not in body
