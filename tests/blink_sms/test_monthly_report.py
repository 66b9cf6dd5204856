"""The monthly client report: every number of a known month, the edges of the month,
other months and other clients left out, who may read it, its CSV and JSON, the
command line, and the prices Twilio reports in status callbacks.

February 2024 (29 days, a leap year) is seeded in ``month`` below; each test reads the
numbers back through the service, the CSV or the command line.
"""

from __future__ import annotations

import csv
import io
import json
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from click.testing import CliRunner
from flask.testing import FlaskClient
from sqlalchemy import event, select, update

from blink_sms.actors import COMMAND_LINE, Role, admin_actor
from blink_sms.cli import cli
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
    UserStatus,
    utcnow,
)
from blink_sms.services import monthly
from blink_sms.services.errors import Invalid, NotFound
from blink_sms.services.reports import CauseCount

from ..conftest import PUBLIC_URL, Persona, World, sign, wait_for_jobs
from ..support.fake_twilio import FakeTwilio

FEBRUARY = date(2024, 2, 1)
STATUS_URL = "/webhooks/twilio/status"


def at(day: int, hour: int = 12, minute: int = 0, second: int = 0, month: int = 2) -> datetime:
    return datetime(2024, month, day, hour, minute, second, tzinfo=UTC)


def request(
    person: Persona,
    created: datetime,
    *,
    kind: RequestKind = RequestKind.RESET,
    origin: RequestOrigin = RequestOrigin.SMS,
    status: RequestStatus = RequestStatus.DONE,
    seconds: float | None = 5,
    error_code: str | None = None,
) -> ResetRequest:
    return ResetRequest(
        user_id=person.user.id,
        kind=kind,
        origin=origin,
        status=status,
        error_code=error_code,
        created_at=created,
        finished_at=created + timedelta(seconds=seconds) if seconds is not None else None,
    )


def failed(
    person: Persona, created: datetime, code: str, kind: RequestKind = RequestKind.RESET
) -> ResetRequest:
    return request(person, created, kind=kind, status=RequestStatus.FAILED, error_code=code)


def sms(
    person: Persona | None,
    created: datetime,
    purpose: str,
    price: str | None = None,
    unit: str | None = None,
    *,
    accepted: bool = True,
) -> OutboundMessage:
    return OutboundMessage(
        sid="SM" + secrets.token_hex(16) if accepted else None,
        user_id=person.user.id if person else None,
        purpose=purpose,
        status="delivered" if accepted else "failed",
        price=price,
        price_unit=unit,
        created_at=created,
    )


def bound(client: Client, when: datetime, action: str = monthly.PHONE_BOUND) -> AuditEvent:
    return AuditEvent(at=when, client_id=client.id, actor="enrollment:user:1", action=action)


@dataclass
class Month:
    contoso: Client
    fabrikam: Client
    carol: Persona
    zed: Persona


def created(services: Blink, person: Persona, when: datetime) -> None:
    with services.db.session() as session:
        session.execute(update(User).where(User.id == person.user.id).values(created_at=when))
        session.commit()


@pytest.fixture
def month(world: World, services: Blink) -> Month:
    """February 2024 at Contoso, with its neighbours (January, March) and Fabrikam."""
    fabrikam = world.another_client("fabrikam")
    carol = world.person("carol", "+15551230061")
    gina = world.person("gina", "+15551230062")
    dave = world.person("dave", None, status=UserStatus.INVITED)
    erin = world.person("erin", "+15551230063")  # active, but imported in March
    frank = world.person("frank", None, status=UserStatus.DISABLED)
    zed = world.person("zed", "+15551230064", client=fabrikam)
    for person, when in (
        (carol, at(15, month=1)),
        (gina, at(29, 23, 59, 59)),  # the month's last second: imported in February
        (dave, at(10)),
        (erin, at(1, 0, 0, 0, month=3)),  # the next month's first second: not yet
        (frank, at(1, month=1)),
        (zed, at(1, month=1)),
    ):
        created(services, person, when)

    rows: list[Any] = [
        # Done self-service resets: 10, 30, 20 and 50 seconds (median 25).
        request(carol, at(1, 0, 0, 0), seconds=10),  # the month's first second
        request(carol, at(3, 12), seconds=30),
        request(carol, at(3, 13), origin=RequestOrigin.LOCKOUT, seconds=20),
        request(carol, at(29, 23, 59, 59), seconds=50),  # its last second
        # An admin's reset: counted, not in the median (no one texted).
        request(carol, at(3, 14), origin=RequestOrigin.ADMIN, seconds=100),
        # Unlocks, texted and pushed: not resets, not in the median.
        request(carol, at(10, 9), kind=RequestKind.UNLOCK, seconds=1),
        request(carol, at(10, 9, 5), kind=RequestKind.UNLOCK, origin=RequestOrigin.ADMIN),
        # Failures, by cause; a failure without a code is "unknown".
        *[failed(carol, at(10, 10 + n), "directory_unavailable") for n in range(2)],
        failed(carol, at(11), "unlock_not_supported", kind=RequestKind.UNLOCK),
        request(carol, at(29, 8), status=RequestStatus.FAILED, seconds=None),
        # Not finished: not counted at all.
        request(carol, at(12), status=RequestStatus.QUEUED, seconds=None),
        request(gina, at(12), status=RequestStatus.RUNNING, seconds=None),
        # Other months: the second before and the first second after.
        request(carol, at(31, 23, 59, 59, month=1), seconds=1000),
        request(carol, at(1, 0, 0, 0, month=3), seconds=1000, origin=RequestOrigin.ADMIN),
        failed(gina, at(1, 0, 0, 0, month=3), "stale"),
        # Another client, the same days.
        *[request(zed, at(3, 12), seconds=1000) for _ in range(5)],
        failed(zed, at(10), "user_not_found"),
        # Texts: three USD passwords (one price, grouped), EUR welcome and code.
        *[sms(carol, at(3, 12), "otp", "-0.00790", "USD") for _ in range(3)],
        sms(gina, at(20), "welcome", "-0.045", "EUR"),
        sms(gina, at(20), "verification", "-0.0100", "EUR"),
        sms(gina, at(19), "verification"),  # no price reported (yet)
        sms(carol, at(29, 8), "apology", accepted=False),  # Twilio refused it: not sent
        sms(None, at(5), "verification", "-1.00", "USD"),  # no user (erased): not counted
        sms(carol, at(31, 23, 59, 59, month=1), "otp", "-1.00", "USD"),
        sms(carol, at(1, 0, 0, 0, month=3), "otp", "-1.00", "USD"),
        sms(zed, at(3), "otp", "-1.00", "USD"),
        # Phones bound: two in February; one in March, one of Fabrikam, another action.
        bound(world.client, at(20)),
        bound(world.client, at(29, 23, 59, 59)),
        bound(world.client, at(1, 0, 0, 0, month=3)),
        bound(fabrikam, at(20)),
        bound(world.client, at(20), action="enrollment.number_refused"),
    ]
    with services.db.session() as session:
        session.add_all(rows)
        session.commit()
    return Month(world.client, fabrikam, carol, zed)


def february(services: Blink, month: Month, actor: Any = COMMAND_LINE) -> monthly.MonthlyReport:
    with services.db.session() as session:
        return monthly.report(session, actor, month.contoso, FEBRUARY)


def test_every_number_of_a_known_month(services: Blink, month: Month) -> None:
    found = february(services, month)
    assert found.client == "contoso" and found.label == "2024-02"
    assert (found.resets_self_service, found.resets_admin, found.resets) == (4, 1, 5)
    assert found.unlocks == 2
    assert found.median_seconds_to_password == 25.0  # of 10, 20, 30, 50
    assert found.failures == (
        CauseCount("directory_unavailable", 2),
        CauseCount("unknown", 1),
        CauseCount("unlock_not_supported", 1),
    )
    assert found.failed == 4
    # carol, gina, dave, frank were there by the month's end; carol and gina are active.
    assert (found.users_imported, found.users_enrolled, found.enrolled_this_month) == (4, 2, 2)
    assert found.sms_by_purpose == {"otp": 3, "verification": 2, "welcome": 1}
    assert found.sms_sent == 6
    assert found.cost == (
        monthly.Cost("EUR", Decimal("0.0550")),
        monthly.Cost("USD", Decimal("0.02370")),
    )


def test_every_day_of_the_month_is_there_with_zeros(services: Blink, month: Month) -> None:
    found = february(services, month)
    assert [day.day for day in found.days] == [FEBRUARY + timedelta(days=n) for n in range(29)]
    busy = {day.day.day: (day.resets, day.unlocks, day.failures) for day in found.days}
    assert busy.pop(1) == (1, 0, 0)
    assert busy.pop(3) == (3, 0, 0)
    assert busy.pop(10) == (0, 2, 2)
    assert busy.pop(11) == (0, 0, 1)
    assert busy.pop(29) == (1, 0, 1)  # 23:59:59 UTC is still the 29th
    assert set(busy.values()) == {(0, 0, 0)}
    assert sum(day.resets for day in found.days) == found.resets


def test_a_month_without_anything_is_all_zeros(services: Blink, month: Month) -> None:
    with services.db.session() as session:
        found = monthly.report(session, COMMAND_LINE, month.contoso, date(2023, 12, 1))
    assert (found.resets, found.unlocks, found.failed, found.sms_sent) == (0, 0, 0, 0)
    assert found.median_seconds_to_password is None
    assert found.failures == () and found.cost == () and found.sms_by_purpose == {}
    assert (found.users_imported, found.users_enrolled, found.enrolled_this_month) == (0, 0, 0)
    assert len(found.days) == 31 and {d.resets + d.failures for d in found.days} == {0}


def test_the_other_client_has_its_own_numbers(services: Blink, month: Month) -> None:
    with services.db.session() as session:
        found = monthly.report(session, COMMAND_LINE, month.fabrikam, FEBRUARY)
    assert (found.resets_self_service, found.resets_admin) == (5, 0)
    assert found.median_seconds_to_password == 1000.0
    assert found.failures == (CauseCount("user_not_found", 1),)
    assert found.sms_by_purpose == {"otp": 1}
    assert found.cost == (monthly.Cost("USD", Decimal("1.00")),)
    assert (found.users_imported, found.enrolled_this_month) == (1, 1)


def test_a_report_is_a_few_grouped_queries(services: Blink, month: Month) -> None:
    statements: list[str] = []

    def count(*args: object) -> None:
        statements.append(str(args[2]))

    event.listen(services.db.engine, "before_cursor_execute", count)
    try:
        february(services, month)
    finally:
        event.remove(services.db.engine, "before_cursor_execute", count)
    queries = [statement for statement in statements if statement.startswith("SELECT")]
    assert len(queries) == 5  # requests, durations, users, phones bound, texts: not per day


def test_only_admins_who_see_the_client_may_read_its_report(services: Blink, month: Month) -> None:
    theirs = admin_actor(90, "b@fabrikam.example", Role.CLIENT_ADMIN, month.fabrikam.id)
    auditor = admin_actor(91, "a@contoso.example", Role.AUDITOR, month.contoso.id)
    with pytest.raises(NotFound):
        february(services, month, theirs)
    assert february(services, month, auditor).resets == 5


@pytest.mark.parametrize(
    "text", ["", "2024", "2024-2", "2024-13", "2024-00", "Feb 2024", "2024-02-01", "02-2024"]
)
def test_a_month_is_yyyy_mm(text: str) -> None:
    with pytest.raises(Invalid) as refused:
        monthly.month_of(text)
    assert refused.value.field == "month"


def test_a_month_may_not_lie_in_the_future(services: Blink, month: Month) -> None:
    now = datetime(2024, 3, 15, tzinfo=UTC)
    assert monthly.month_of(" 2024-02 ", now=now) == FEBRUARY
    assert monthly.month_of("2024-03", now=now) == date(2024, 3, 1)  # so far
    with pytest.raises(Invalid, match="has not begun"):
        monthly.month_of("2024-04", now=now)
    assert monthly.last_month(now) == FEBRUARY
    assert monthly.last_month(datetime(2024, 1, 1, tzinfo=UTC)) == date(2023, 12, 1)
    following = monthly.next_month(monthly.current_month())
    with services.db.session() as session, pytest.raises(Invalid):
        monthly.report(session, COMMAND_LINE, month.contoso, following)


def test_the_report_as_json(services: Blink, month: Month) -> None:
    data = json.loads(json.dumps(february(services, month).as_dict()))
    assert data["client"] == "contoso" and data["month"] == "2024-02"
    assert data["resets"] == {"self_service": 4, "admin": 1, "total": 5}
    assert data["unlocks"] == 2 and data["median_seconds_to_password"] == 25.0
    assert data["failures"][0] == {
        "cause": "directory_unavailable",
        "words": "directory did not answer",
        "count": 2,
    }
    assert data["users"] == {"imported": 4, "enrolled": 2, "enrolled_this_month": 2}
    assert data["sms"] == {
        "sent": 6,
        "by_purpose": {"otp": 3, "verification": 2, "welcome": 1},
        "cost": [{"unit": "EUR", "amount": "0.0550"}, {"unit": "USD", "amount": "0.02370"}],
    }
    assert len(data["days"]) == 29
    assert data["days"][2] == {"day": "2024-02-03", "resets": 3, "unlocks": 0, "failures": 0}


def parse_csv(text: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text)))


def test_the_report_as_csv(services: Blink, month: Month) -> None:
    rows = parse_csv("".join(monthly.csv_lines(february(services, month))))
    assert rows[0] == ["metric", "item", "value", "description"]
    table = {(metric, item): value for metric, item, value, _ in rows[1:]}
    assert table["client", ""] == "contoso" and table["month", ""] == "2024-02"
    assert table["resets", "self_service"] == "4" and table["resets", "admin"] == "1"
    assert table["unlocks", ""] == "2"
    assert table["median_seconds_to_password", ""] == "25.0"
    assert table["failures", "directory_unavailable"] == "2"
    assert table["users", "imported"] == "4" and table["users", "enrolled_this_month"] == "2"
    assert table["sms_sent", "total"] == "6" and table["sms_sent", "otp"] == "3"
    assert table["sms_cost", "EUR"] == "0.0550" and table["sms_cost", "USD"] == "0.02370"
    assert table["day_resets", "2024-02-03"] == "3"
    assert table["day_failures", "2024-02-29"] == "1"
    assert table["day_unlocks", "2024-02-28"] == "0"
    assert sum(1 for row in rows if row[0].startswith("day_")) == 29 * 3
    assert all(len(row) == 4 for row in rows)


@pytest.fixture
def run(services: Blink) -> Callable[..., Any]:
    env = {
        "BLINK_SECRET_KEY": services.settings.secret_key,
        "BLINK_DATABASE_URL": services.settings.database_url,
        "BLINK_PUBLIC_URL": services.settings.public_url,
    }
    return lambda *args: CliRunner().invoke(cli, ["reports", "monthly", *args], env=env)


def test_the_report_from_the_command_line(run: Callable[..., Any], month: Month) -> None:
    text = run("--client", "contoso", "--month", "2024-02")
    assert text.exit_code == 0, text.output
    assert "Contoso (contoso), 2024-02 (UTC)" in text.output
    assert "resets:      5 (4 self-service, 1 by an admin)" in text.output
    assert "median time from text to password: 25.0 s" in text.output
    assert "2  directory did not answer (directory_unavailable)" in text.output
    assert "users:       2 enrolled of 4 imported (2 enrolled this month)" in text.output
    assert "SMS cost:    0.0550 EUR, 0.02370 USD" in text.output
    as_json = run("--client", "contoso", "--month", "2024-02", "--json")
    assert json.loads(as_json.stdout)["resets"]["total"] == 5  # the log's warnings: stderr
    as_csv = run("--client", "contoso", "--month", "2024-02", "--csv")
    assert parse_csv(as_csv.stdout)[0] == ["metric", "item", "value", "description"]
    assert ["unlocks", "", "2", ""] in parse_csv(as_csv.stdout)
    bad = run("--client", "contoso", "--month", "2024-13")
    assert bad.exit_code == 1 and "month: a month like 2025-01" in bad.output
    unknown = run("--client", "nope")
    assert unknown.exit_code == 1 and "no such client" in unknown.output
    both = run("--client", "contoso", "--csv", "--json")
    assert both.exit_code == 2


def test_last_month_is_the_default(run: Callable[..., Any], month: Month) -> None:
    shown = run("--client", "contoso", "--json")
    assert json.loads(shown.stdout)["month"] == f"{monthly.last_month():%Y-%m}"


# --- prices from status callbacks --------------------------------------------------------


def status_callback(http: FlaskClient, sid: str, status: str = "delivered", **extra: str) -> Any:
    params = {
        "MessageSid": sid,
        "MessageStatus": status,
        "AccountSid": "AC" + "a1" * 16,
        "To": "+15551230061",
        "From": "+15005550006",
        **extra,
    }
    signature = sign(PUBLIC_URL + STATUS_URL, params)
    return http.post(STATUS_URL, data=params, headers={"X-Twilio-Signature": signature})


def stored_price(services: Blink, sid: str) -> tuple[str, str | None, str | None]:
    with services.db.session() as session:
        row = session.execute(
            select(OutboundMessage).where(OutboundMessage.sid == sid)
        ).scalar_one()
        return row.status, row.price, row.price_unit


NO_PRICE: list[dict[str, str]] = [
    {},
    {"Price": "", "PriceUnit": "USD"},
    {"Price": "-1e9", "PriceUnit": "USD"},
    {"Price": "-0.5", "PriceUnit": "US$"},
    {"Price": "NaN", "PriceUnit": "USD"},
    {"Price": "-0.12345678901", "PriceUnit": "USD"},  # more decimals than a price has
]


def test_a_status_callback_with_a_price_stores_it(
    http: FlaskClient, services: Blink, alice: Persona
) -> None:
    message = sms(alice, utcnow(), "otp")
    with services.db.session() as session:
        session.add(message)
        session.commit()
        sid = str(message.sid)
    assert status_callback(http, sid, "sent").status_code == 204
    assert stored_price(services, sid) == ("sent", None, None)  # no price yet
    answer = status_callback(http, sid, Price="-0.00790", PriceUnit="USD")
    assert answer.status_code == 204
    assert stored_price(services, sid) == ("delivered", "-0.00790", "USD")
    # A later callback without a price (or with a malformed one) keeps the price.
    for extra in NO_PRICE:
        assert status_callback(http, sid, "read", **extra).status_code == 204
        assert stored_price(services, sid) == ("read", "-0.00790", "USD")


def test_a_texted_reset_is_in_this_months_report_with_its_price(
    http: FlaskClient,
    text_gateway: Callable[..., Any],
    alice: Persona,
    services: Blink,
    twilio: FakeTwilio,
    world: World,
) -> None:
    text_gateway(alice.phone, "RESET")
    wait_for_jobs(services)
    [sent] = twilio.sent
    assert status_callback(http, sent["Sid"], Price="-0.0079", PriceUnit="usd").status_code == 204
    with services.db.session() as session:
        found = monthly.report(session, COMMAND_LINE, world.client, monthly.current_month())
    assert (found.resets_self_service, found.resets_admin, found.failed) == (1, 0, 0)
    assert found.median_seconds_to_password is not None
    assert 0 <= found.median_seconds_to_password < 60
    assert found.sms_by_purpose == {"otp": 1}
    assert found.cost == (monthly.Cost("USD", Decimal("0.0079")),)
    assert found.users_imported == 1 and found.users_enrolled == 1
