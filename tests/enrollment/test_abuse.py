"""SMS pumping through the enrollment pages: where codes may go, and how many."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import timedelta

import pytest
from flask.testing import FlaskClient
from sqlalchemy import select

from blink_sms.context import Blink
from blink_sms.models import AuditEvent, Client, SmsThrottle
from blink_sms.services import enrollment as service
from blink_sms.settings import Settings
from tests.conftest import World
from tests.support.fake_twilio import FakeTwilio

from .conftest import Invite, Invited, Walker

PER_IP, PER_CLIENT, PER_MINUTE = 4, 6, 8


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.with_changes(
        enrollment_codes_per_ip=PER_IP,
        enrollment_codes_per_client=PER_CLIENT,
        enrollment_codes_per_minute=PER_MINUTE,
        enrollment_breaker_seconds=600,
    )


Visit = Callable[[Invited, str], Walker]


@pytest.fixture
def visit(http: FlaskClient) -> Visit:
    """The pages of a link, seen from ``address``."""

    def make(invited: Invited, address: str) -> Walker:
        http.environ_base["REMOTE_ADDR"] = address
        return Walker(http, invited.path)

    return make


def nl(index: int) -> str:
    return f"+316123{index:05d}"


def us(index: int) -> str:
    return f"+1201555{index:04d}"


def test_codes_go_only_to_the_clients_allowed_countries(
    invite: Invite, visit: Visit, world: World, twilio: FakeTwilio
) -> None:
    other = world.another_client()  # no list: its phone region (US) only
    page = visit(invite("dana", client=other), "192.0.2.1")
    form = page.get().get_data(as_text=True)
    assert '<option value="US"' in form and '<option value="NL"' not in form
    refused = page.number(nl(1), "NL")
    assert refused.status_code == 422
    assert "We can only text mobile numbers from: United States (+1)." in refused.get_data(
        as_text=True
    )
    assert page.number(us(1), "US").status_code == 303
    assert twilio.bodies_to(nl(1)) == [] and len(twilio.sent) == 1


@pytest.mark.parametrize(
    "number",
    [
        "+881612345678",  # Iridium satellite: valid, "mobile", of no country
        "+870773123456",  # Inmarsat
        "+19005551234",  # US premium rate
        "+448712345678",  # UK shared cost
        "+445512345678",  # UK UAN
        "+447640123456",  # UK pager
        "+31842345678",  # NL VoIP
    ],
)
def test_satellite_premium_and_other_non_mobile_ranges_get_no_code(
    number: str, invite: Invite, visit: Visit, twilio: FakeTwilio, services: Blink
) -> None:
    response = visit(invite(), "192.0.2.1").number(number)
    assert response.status_code == 422
    assert "cannot receive our texts" in response.get_data(as_text=True)
    assert twilio.sent == []


def test_the_allowed_countries_option_is_checked() -> None:
    from blink_sms.services.clients import _clean_option
    from blink_sms.services.errors import Invalid

    assert _clean_option("allowed_countries", " us, ca ,US") == "CA,US"
    assert _clean_option("allowed_countries", "") is None
    for bad in ("USA", "XX", "US;CA", ",".join(["US"] * 2 + ["ZZ"])):
        with pytest.raises(Invalid):
            _clean_option("allowed_countries", bad)


def test_one_address_gets_a_few_codes_an_hour_over_any_number_of_links(
    invite: Invite, visit: Visit, twilio: FakeTwilio
) -> None:
    links = [invite(f"user{index}") for index in range(PER_IP + 1)]
    answers = [
        visit(link, "198.51.100.7").number(nl(i)).status_code for i, link in enumerate(links)
    ]
    assert answers == [303] * PER_IP + [429]
    assert len(twilio.sent) == PER_IP
    assert visit(links[-1], "198.51.100.8").number(nl(99)).status_code == 303


def test_one_client_gets_a_few_codes_an_hour_and_others_are_not_held_up(
    invite: Invite, visit: Visit, world: World, twilio: FakeTwilio
) -> None:
    answers = [
        visit(invite(f"user{i}"), f"198.51.100.{i}").number(nl(i)).status_code
        for i in range(PER_CLIENT + 1)
    ]
    assert answers == [303] * PER_CLIENT + [429]
    other = invite("olga", client=world.another_client())
    assert visit(other, "203.0.113.1").number(us(1), "US").status_code == 303
    assert len(twilio.sent) == PER_CLIENT + 1


def test_the_breaker_trips_stops_codes_for_every_client_alerts_and_cools_down(
    invite: Invite,
    visit: Visit,
    world: World,
    twilio: FakeTwilio,
    services: Blink,
    caplog: pytest.LogCaptureFixture,
) -> None:
    other = world.another_client()
    links = [invite(f"user{i}", client=other if i % 2 else None) for i in range(PER_MINUTE + 2)]

    def ask(i: int) -> int:
        number = us(i) if i % 2 else nl(i)
        status: int = visit(links[i], f"198.51.100.{i}").number(number).status_code
        return status

    assert [ask(i) for i in range(PER_MINUTE)] == [303] * PER_MINUTE
    with caplog.at_level(logging.ERROR):
        tripped = visit(links[PER_MINUTE], "198.51.100.50").number(nl(50))
    assert tripped.status_code == 503
    assert "could not send the text just now" in tripped.get_data(as_text=True)
    assert any("breaker tripped" in record.getMessage() for record in caplog.records)
    assert ask(PER_MINUTE + 1) == 503  # the other client too
    assert len(twilio.sent) == PER_MINUTE
    with services.db.session() as session:
        events = (
            session.execute(
                select(AuditEvent).where(AuditEvent.action == "enrollment.breaker_tripped")
            )
            .scalars()
            .all()
        )
        assert len(events) == 1 and events[0].client_id is None
        # The cool-down passes (the minute's count with it).
        for row in session.execute(
            select(SmsThrottle).where(SmsThrottle.key.in_([service.BREAKER, "enroll-all"]))
        ).scalars():
            row.window_start -= timedelta(seconds=601)
        session.commit()
    assert ask(PER_MINUTE + 1) == 303
    assert len(twilio.sent) == PER_MINUTE + 1


def test_codes_go_to_the_phone_region_unless_the_client_lists_countries() -> None:
    client = Client(default_region="NL", allowed_countries=None)
    assert service.allowed_regions(client) == {"NL"}
    assert service.allowed_regions(Client(default_region="NL", allowed_countries="BE,DE")) == {
        "BE",
        "DE",
    }
