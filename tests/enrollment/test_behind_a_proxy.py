"""BLINK_PROXY_HOPS: behind a TLS proxy, the per-address code limit counts each user's
own address, not the proxy's, and a forged X-Forwarded-For does not escape it."""

from __future__ import annotations

import logging

import pytest
from flask.testing import FlaskClient

from blink_sms.app import create_app
from blink_sms.settings import Settings, SettingsError
from tests.support.fake_twilio import FakeTwilio

from .conftest import Invite, Invited, Walker

PER_IP = 2
PROXY = "127.0.0.1"


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.with_changes(enrollment_codes_per_ip=PER_IP, proxy_hops=1)


def through_the_proxy(http: FlaskClient, invited: Invited, forwarded_for: str) -> Walker:
    http.environ_base["REMOTE_ADDR"] = PROXY
    http.environ_base["HTTP_X_FORWARDED_FOR"] = forwarded_for
    return Walker(http, invited.path)


def number(index: int) -> str:
    return f"+1201555{index:04d}"


def test_each_user_behind_the_proxy_has_their_own_limit(
    invite: Invite, http: FlaskClient, twilio: FakeTwilio
) -> None:
    links = [invite(f"user{index}") for index in range(PER_IP + 2)]
    first = [
        through_the_proxy(http, link, "198.51.100.7").number(number(i)).status_code
        for i, link in enumerate(links[: PER_IP + 1])
    ]
    assert first == [303] * PER_IP + [429]
    # Another user behind the same proxy is not held up by the first one's limit...
    other = through_the_proxy(http, links[-1], "198.51.100.8").number(number(50))
    assert other.status_code == 303
    # ...and the first cannot get out of theirs by forging the header: the proxy
    # appends the address it saw, and only that last hop is trusted.
    forged = through_the_proxy(http, links[PER_IP], "203.0.113.9, 198.51.100.7")
    assert forged.number(number(60)).status_code == 429
    assert len(twilio.sent) == PER_IP + 1


def test_without_hops_a_forwarded_request_is_logged_once(
    settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    app = create_app(settings.with_changes(proxy_hops=0))
    http = app.test_client()
    with caplog.at_level(logging.WARNING):
        for _ in range(3):
            http.get("/healthz", headers={"X-Forwarded-For": "198.51.100.7"})
    warnings = [r for r in caplog.records if "BLINK_PROXY_HOPS is 0" in r.getMessage()]
    assert len(warnings) == 1


def test_the_setting_is_read_and_bounded() -> None:
    base = {"BLINK_SECRET_KEY": "k" * 32, "BLINK_ENV": "test"}
    assert Settings.from_env(base, dotenv=None).proxy_hops == 0
    assert Settings.from_env({**base, "BLINK_PROXY_HOPS": "2"}, dotenv=None).proxy_hops == 2
    for bad in ("-1", "9", "two"):
        with pytest.raises(SettingsError, match="BLINK_PROXY_HOPS"):
            Settings.from_env({**base, "BLINK_PROXY_HOPS": bad}, dotenv=None)
