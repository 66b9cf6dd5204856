"""``EntraIdDirectory.lockouts``: the sign-in logs (error 50053) read from the caller's
cursor, page by page, through throttling, with sign-ins blocked from malicious addresses
told apart from smart lockouts."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import requests
import responses

from directory_adapters import DirectoryUnavailable, Lockout
from directory_adapters.entra_id import EntraIdDirectory
from tests.support.fake_graph import Clock, FakeEntra, FakeUser

PASSWORD = "Old!Passw0rd-1"
MALICIOUS = "Sign-in was blocked because it came from an IP address with malicious activity"
SIGN_INS = "/auditLogs/signIns"


@pytest.fixture
def tenant(clock: Clock) -> Iterator[FakeEntra]:
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        yield FakeEntra(clock=clock, page_size=2).install(rsps)


@pytest.fixture
def session() -> requests.Session:
    return requests.Session()


@pytest.fixture
def adapter(
    tenant: FakeEntra, clock: Clock, sleeps: list[float], session: requests.Session
) -> EntraIdDirectory:
    return EntraIdDirectory.from_settings(
        tenant.settings(), session=session, sleep=sleeps.append, clock=clock
    )


def lock(tenant: FakeEntra, user: FakeUser) -> None:
    """Bad passwords until smart lockout answers 50053 (logged, as Entra ID logs it)."""
    for attempt in range(tenant.lockout_threshold + 1):
        tenant.sign_in(user.user_principal_name, f"wrong-{attempt}")


def blocked_from_a_malicious_address(tenant: FakeEntra, user: FakeUser) -> None:
    """A 50053 sign-in refused for its address, whatever the password."""
    event: dict[str, Any] = tenant._sign_in_event(user, 50053, tenant.clock())
    event["ipAddress"] = "198.51.100.66"
    event["status"] = {
        "errorCode": 50053,
        "failureReason": MALICIOUS,
        "additionalDetails": "The sign-in was blocked because of the IP address's reputation.",
    }
    tenant.sign_in_log.append(event)


def sign_in_queries(tenant: FakeEntra) -> list[dict[str, str]]:
    return [call.query for call in tenant.graph_calls if call.path == SIGN_INS]


def by_name(lockouts: list[Lockout]) -> dict[str, Lockout]:
    return {lockout.user.upn or "": lockout for lockout in lockouts}


def test_lockouts_follow_every_page_of_the_sign_in_log(
    tenant: FakeEntra, adapter: EntraIdDirectory, clock: Clock
) -> None:
    users = [tenant.add_user(name, PASSWORD) for name in ("ann", "ben", "cy", "di")]
    tenant.add_user("eve", PASSWORD)  # signs in fine
    for user in users:
        lock(tenant, user)
        clock.advance(seconds=10)
    tenant.sign_in(f"eve@{tenant.domain}", PASSWORD)
    tenant.sign_in(users[0].user_principal_name, PASSWORD)  # still locked: 50053 again

    found = adapter.lockouts()

    assert [lockout.user.id for lockout in found] == [user.id for user in users]
    assert {lockout.kind for lockout in found} == {"lockout"}
    assert found[0].locked_at == clock.now  # ann's latest 50053
    assert found[1].locked_at == datetime(2025, 3, 3, 9, 0, 10, tzinfo=UTC)
    queries = sign_in_queries(tenant)
    assert len(queries) == 3  # five events, two a page: every page was followed
    assert queries[0]["$filter"] == (
        "status/errorCode eq 50053 and createdDateTime ge 2025-03-03T08:45:40Z"
    )
    assert "$skiptoken" in queries[2]


def test_a_sign_in_blocked_from_a_malicious_address_is_told_apart(
    tenant: FakeEntra, adapter: EntraIdDirectory
) -> None:
    fay = tenant.add_user("fay", PASSWORD)
    gus = tenant.add_user("gus", PASSWORD)
    blocked_from_a_malicious_address(tenant, fay)
    blocked_from_a_malicious_address(tenant, gus)
    lock(tenant, gus)  # also locked out by bad passwords: a lockout

    found = by_name(adapter.lockouts())

    assert found[fay.user_principal_name].kind == "blocked_ip"
    assert found[gus.user_principal_name].kind == "lockout"


def test_the_callers_cursor_reaches_back_past_the_window(
    tenant: FakeEntra, adapter: EntraIdDirectory, clock: Clock
) -> None:
    hal = tenant.add_user("hal", PASSWORD)
    lock(tenant, hal)
    previous_poll = clock.now - timedelta(minutes=1)
    clock.advance(minutes=40)  # past the 15-minute window

    assert adapter.lockouts() == []
    assert [lockout.user.id for lockout in adapter.lockouts(since=previous_poll)] == [hal.id]
    assert sign_in_queries(tenant)[-1]["$filter"].endswith("ge 2025-03-03T08:59:00Z")
    # At most a day back, whatever the cursor.
    adapter.lockouts(since=clock.now - timedelta(days=30))
    assert sign_in_queries(tenant)[-1]["$filter"].endswith("ge 2025-03-02T09:40:00Z")


def test_a_password_changed_after_the_lockout_ends_it(
    tenant: FakeEntra, adapter: EntraIdDirectory, clock: Clock
) -> None:
    ida = tenant.add_user("ida", PASSWORD)
    lock(tenant, ida)
    clock.advance(seconds=5)
    adapter.set_password(ida.id, "New!Passw0rd-22", must_change=True, unlock=True)

    assert adapter.lockouts() == []


def test_a_throttled_page_is_retried_after_retry_after(
    tenant: FakeEntra,
    adapter: EntraIdDirectory,
    session: requests.Session,
    sleeps: list[float],
) -> None:
    users = [tenant.add_user(name, PASSWORD) for name in ("jo", "kai", "lou")]
    for user in users:
        lock(tenant, user)

    armed = [True]

    def throttle_the_next_page(response: requests.Response, **_: Any) -> None:
        if response.url.split("?")[0].endswith(SIGN_INS) and armed:
            armed.clear()
            tenant.fail_next(
                status=429, code="TooManyRequests", message="Too many requests",
                retry_after="3", path=SIGN_INS,
            )  # fmt: skip

    session.hooks["response"].append(throttle_the_next_page)

    found = adapter.lockouts()

    assert sleeps == [3.0]
    assert sorted(lockout.user.id for lockout in found) == sorted(user.id for user in users)


def test_throttling_beyond_the_bound_is_a_transient_error(
    tenant: FakeEntra, adapter: EntraIdDirectory, sleeps: list[float]
) -> None:
    lock(tenant, tenant.add_user("max", PASSWORD))
    tenant.fail_next(
        status=429, code="TooManyRequests", message="Too many requests", retry_after="120",
        path=SIGN_INS,
    )  # fmt: skip

    with pytest.raises(DirectoryUnavailable) as unavailable:
        adapter.lockouts()

    assert unavailable.value.retry_after == 120.0 and not unavailable.value.permanent
    assert sleeps == []
