"""A client's monthly report in the console: its numbers and charts, the months around
it, a bad month, the CSV download, who may open it, and how it prints (in Chromium).

February 2024 at Contoso is seeded; the numbers themselves are checked in depth by
``tests/blink_sms/test_monthly_report.py``: here, that the page and the CSV show them.
"""

from __future__ import annotations

import csv
import io
import os
import re
import secrets
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from flask import Flask
from playwright.sync_api import Browser
from sqlalchemy import update

from blink_sms.actors import Role
from blink_sms.context import Blink
from blink_sms.models import (
    AuditEvent,
    Client,
    OutboundMessage,
    RequestKind,
    RequestOrigin,
    RequestStatus,
    ResetRequest,
    User,
)
from blink_sms.services import monthly
from blink_sms.settings import Settings
from tests.support.live import launched_chromium, serving
from tests.support.services import free_port

from ..conftest import World
from .conftest import Console

SVG = "{http://www.w3.org/2000/svg}"
PAGE = "/admin/clients/contoso/report"


def at(day: int, hour: int = 12) -> datetime:
    return datetime(2024, 2, day, hour, tzinfo=UTC)


@pytest.fixture
def february(world: World, fabrikam: Client, services: Blink) -> None:
    """Contoso in February 2024: three texted resets (20, 40, 60 s), one by an admin, an
    unlock, three failures, two priced texts; Fabrikam: a reset and a failure of its own."""
    carol = world.person("carol", "+15551230071")
    zed = world.person("zed", "+15551230072", client=fabrikam)

    def done(day: int, seconds: int, origin: RequestOrigin = RequestOrigin.SMS) -> ResetRequest:
        return ResetRequest(
            user_id=carol.user.id, kind=RequestKind.RESET, origin=origin,
            status=RequestStatus.DONE, created_at=at(day),
            finished_at=at(day) + timedelta(seconds=seconds),
        )  # fmt: skip

    def unlock(day: int) -> ResetRequest:
        return ResetRequest(
            user_id=carol.user.id, kind=RequestKind.UNLOCK, origin=RequestOrigin.SMS,
            status=RequestStatus.DONE, created_at=at(day), finished_at=at(day),
        )  # fmt: skip

    def failed(user_id: int, day: int, code: str) -> ResetRequest:
        return ResetRequest(
            user_id=user_id, kind=RequestKind.RESET, origin=RequestOrigin.SMS,
            status=RequestStatus.FAILED, error_code=code, created_at=at(day), finished_at=at(day),
        )  # fmt: skip

    def text(purpose: str, price: str, unit: str) -> OutboundMessage:
        return OutboundMessage(
            sid="SM" + secrets.token_hex(16), user_id=carol.user.id, purpose=purpose,
            status="delivered", price=price, price_unit=unit, created_at=at(5),
        )  # fmt: skip

    with services.db.session() as session:
        # Imported on the 1st: a user of February.
        session.execute(update(User).where(User.id == carol.user.id).values(created_at=at(1)))
        session.add_all(
            [
                done(2, 20),
                done(2, 40),
                done(9, 60),
                done(9, 5, RequestOrigin.ADMIN),
                unlock(14),
                failed(carol.user.id, 14, "password_rejected"),
                failed(carol.user.id, 20, "password_rejected"),
                failed(carol.user.id, 20, "sms_30007"),
                failed(zed.user.id, 20, "user_not_found"),
                text("otp", "-0.00790", "USD"),
                text("welcome", "-0.0450", "EUR"),
                AuditEvent(
                    at=at(3),
                    client_id=world.client.id,
                    actor="enrollment:user:1",
                    action=monthly.PHONE_BOUND,
                ),
            ]
        )
        session.commit()


def stat(body: str, card: str) -> str:
    found = re.search(rf'id="n-{card}">.*?<div class="stat">([^<]*)</div>', body, re.S)
    assert found, f"no {card} card"
    return found.group(1).strip()


def chart(body: str, name: str) -> ET.Element:
    figure = re.search(rf'id="chart-{name}">(.*?)</figure>', body, re.S)
    assert figure, f"no {name} chart"
    svg = re.search(r"<svg .*?</svg>", figure.group(1), re.S)
    assert svg, f"no SVG in the {name} chart"
    return ET.fromstring(svg.group(0))  # noqa: S314 -- our own page


def test_the_report_shows_the_months_numbers_and_charts(owner: Console, february: None) -> None:
    response = owner.http.get(f"{PAGE}?month=2024-02")
    assert response.status_code == 200
    body = response.get_data(as_text=True)
    assert "Contoso: report for February 2024" in body
    assert stat(body, "resets") == "4" and "3 self-service (texted) · 1 by an admin" in body
    assert stat(body, "unlocks") == "1"
    assert stat(body, "median") == "40 s"  # of 20, 40 and 60
    assert stat(body, "failures") == "3"
    assert stat(body, "users") == "1 / 1" and "1 enrolled this month" in body
    assert stat(body, "sms") == "2" and "0.0450 EUR + 0.00790 USD" in body
    days = {
        g.get("data-day"): (g.get("data-resets"), g.get("data-unlocks"), g.get("data-failures"))
        for g in chart(body, "month").iter(f"{SVG}g")
        if g.get("class") == "day"
    }
    assert len(days) == 29 and days["2024-02-01"] == ("0", "0", "0")
    assert days["2024-02-02"] == ("2", "0", "0") and days["2024-02-09"] == ("2", "0", "0")
    assert days["2024-02-14"] == ("0", "1", "1") and days["2024-02-20"] == ("0", "0", "2")
    assert "<title>2024-02-20: 0 resets, 0 unlocks, 2 failed</title>" in body
    causes = {
        g.get("data-code"): g.get("data-count")
        for g in chart(body, "causes").iter(f"{SVG}g")
        if g.get("class") == "cause"
    }
    assert causes == {"password_rejected": "2", "sms_30007": "1"}  # not Fabrikam's
    assert "text not delivered: blocked as spam" in body
    assert "one-time passwords" in body and "welcome texts" in body
    assert "<td>2024-02-20</td><td>0</td><td>0</td><td>2</td>" in body  # the day table
    # The months around it, and its CSV.
    assert f"{PAGE}?month=2024-01" in body and f"{PAGE}?month=2024-03" in body
    assert "/admin/clients/contoso/report.csv?month=2024-02" in body


def test_last_month_is_the_default_and_this_month_has_no_next(owner: Console) -> None:
    body = owner.http.get(PAGE).get_data(as_text=True)
    last = monthly.last_month()
    assert f"report for {last:%B %Y}" in body
    assert f'value="{last:%Y-%m}"' in body
    this = monthly.current_month()
    assert f"{PAGE}?month={this:%Y-%m}" in body  # last month's next: this one, so far
    current = owner.http.get(f"{PAGE}?month={this:%Y-%m}").get_data(as_text=True)
    assert 'rel="next"' not in current and 'rel="prev"' in current
    assert "No failures this month." in current and "No texts this month." in current


@pytest.mark.parametrize("month", ["2024-13", "nonsense", "2024-2", "<b>x</b>", "FUTURE"])
def test_a_bad_month_is_a_400_that_says_so(owner: Console, month: str) -> None:
    if month == "FUTURE":
        month = f"{monthly.next_month(monthly.current_month()):%Y-%m}"
    page = owner.http.get(PAGE, query_string={"month": month})
    assert page.status_code == 400
    body = page.get_data(as_text=True)
    assert "Month: a month like 2025-01." in body or "has not begun yet" in body
    assert "<b>x</b>" not in body and "Last month's report" in body
    download = owner.http.get(f"{PAGE}.csv", query_string={"month": month})
    assert download.status_code == 400 and download.mimetype == "text/html"


def test_the_report_downloads_as_csv(owner: Console, february: None) -> None:
    download = owner.http.get(f"{PAGE}.csv?month=2024-02")
    assert download.status_code == 200 and download.mimetype == "text/csv"
    disposition = download.headers["Content-Disposition"]
    assert disposition == 'attachment; filename="blink-sms-contoso-2024-02.csv"'
    rows = list(csv.reader(io.StringIO(download.get_data(as_text=True))))
    assert rows[0] == ["metric", "item", "value", "description"]
    assert ["resets", "self_service", "3", "texted by the user"] in rows
    assert ["median_seconds_to_password", "", "40.0", ""] in rows
    assert ["sms_cost", "EUR", "0.0450", "as reported by Twilio"] in rows
    assert ["failures", "sms_30007", "1", "text not delivered: blocked as spam"] in rows
    assert ["day_failures", "2024-02-20", "2", ""] in rows


def test_any_role_that_sees_the_client_may_read_it_and_no_one_else(
    console_as: Callable[..., Console], world: World, fabrikam: Client, february: None
) -> None:
    outsider = console_as(Role.CLIENT_ADMIN, fabrikam)
    for path in (PAGE, f"{PAGE}?month=2024-02", f"{PAGE}.csv?month=2024-02", f"{PAGE}?month=x"):
        assert outsider.http.get(path).status_code == 404, path
    theirs = outsider.http.get("/admin/clients/fabrikam/report?month=2024-02")
    assert theirs.status_code == 200 and "user_not_found" in theirs.get_data(as_text=True)
    for role in (Role.CLIENT_ADMIN, Role.AUDITOR):
        admin = console_as(role, world.client)
        assert admin.http.get(f"{PAGE}?month=2024-02").status_code == 200
        overview = admin.http.get("/admin/clients/contoso").get_data(as_text=True)
        assert f'href="{PAGE}">Report</a>' in overview
    technician = console_as(Role.MSP_TECHNICIAN)
    assert technician.http.get(f"{PAGE}.csv?month=2024-02").status_code == 200


# --- printing, in Chromium ----------------------------------------------------------------


@pytest.fixture
def port() -> int:
    return free_port()


@pytest.fixture
def settings(settings: Settings, port: int) -> Settings:
    return settings.with_changes(public_url=f"http://127.0.0.1:{port}")


@pytest.fixture
def live(app: Flask, port: int) -> Iterator[str]:
    with serving(app, port):
        yield f"http://127.0.0.1:{port}"


@pytest.fixture
def browser() -> Iterator[Browser]:
    with launched_chromium() as launched:
        yield launched


def test_the_report_prints_without_the_consoles_menus(
    owner: Console, february: None, live: str, browser: Browser, tmp_path: Path
) -> None:
    """The print stylesheet leaves the menus and the month tools out and keeps the numbers,
    the charts and the day table; the PDF (and screenshots of both media) go to
    $BLINK_SCREENSHOTS, or the test's temp folder."""
    folder = Path(os.environ.get("BLINK_SCREENSHOTS") or tmp_path)
    folder.mkdir(parents=True, exist_ok=True)
    cookie = owner.http.get_cookie("session")
    assert cookie is not None
    context = browser.new_context()
    context.add_cookies([{"name": "session", "value": cookie.value, "url": live}])
    page = context.new_page()
    page.goto(f"{live}{PAGE}?month=2024-02")
    menus = ("header.top", "nav.actions", ".report-tools")
    for selector in menus:
        assert page.locator(selector).is_visible(), selector  # on screen: all there
    page.screenshot(path=str(folder / "report-screen.png"), full_page=True)
    page.emulate_media(media="print")
    page.set_viewport_size({"width": 680, "height": 1000})  # A4's width inside the margins
    page.screenshot(path=str(folder / "report-print.png"), full_page=True)
    for selector in menus:
        assert not page.locator(selector).is_visible(), selector
    for selector in ("h1", "#chart-month svg", "#chart-causes svg", "#n-median", ".report-days"):
        assert page.locator(selector).first.is_visible(), selector
    pdf = page.pdf(path=str(folder / "report.pdf"), format="A4")
    pages = len(re.findall(rb"/Type\s*/Page[^s]", pdf))
    assert 1 <= pages <= 3, pages  # numbers, charts and a 29-day table
    context.close()
