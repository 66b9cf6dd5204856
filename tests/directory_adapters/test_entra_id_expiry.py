"""Password expiries from Entra ID, against the fake tenant: one query of the domains'
validity period and one paged query of the users, never one per user; users whose
password never expires, synchronised, disabled or in a federated domain are left out."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
import responses

from directory_adapters import CAPABILITIES, PASSWORD_EXPIRY, PermissionDenied
from directory_adapters.entra_id import EntraIdDirectory, diagnose
from tests.support.fake_graph import FULL_PERMISSIONS, FakeDomain, FakeEntra, FakeUser

NOW = datetime(2025, 3, 3, 9, 0, tzinfo=UTC)
NEVER = 2147483647


@pytest.fixture
def tenant() -> Iterator[FakeEntra]:
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        yield FakeEntra(clock=lambda: NOW).install(rsps)


@pytest.fixture
def adapter(tenant: FakeEntra) -> EntraIdDirectory:
    return EntraIdDirectory.from_settings(
        tenant.settings(), sleep=lambda _: None, clock=lambda: NOW
    )


def changed(user: FakeUser, days_ago: float) -> FakeUser:
    user.last_password_change = NOW - timedelta(days=days_ago)
    return user


def valid_for(tenant: FakeEntra, days: int | None) -> None:
    tenant.domains[tenant.domain].password_validity_days = days


def calls(tenant: FakeEntra) -> list[str]:
    return [call.path for call in tenant.graph_calls if "$skiptoken" not in call.query]


def test_entra_id_has_the_capability() -> None:
    assert PASSWORD_EXPIRY in CAPABILITIES["entra_id"]


def test_expiries_follow_the_last_change_and_the_domains_validity_period(
    tenant: FakeEntra, adapter: EntraIdDirectory
) -> None:
    valid_for(tenant, 90)
    soon = changed(tenant.add_user("soon"), 85)
    changed(tenant.add_user("later"), 10)
    changed(tenant.add_user("expired"), 91)
    changed(
        tenant.add_user("never"), 85
    ).password_policies = "DisableStrongPassword, DisablePasswordExpiration"
    changed(tenant.add_user("disabled", enabled=False), 85)
    changed(tenant.add_user("synced", synced=True), 85)

    [expiry] = adapter.password_expiries(NOW + timedelta(days=8))

    assert expiry.user.id == soon.id
    assert expiry.user.username == f"soon@{tenant.domain}"
    assert expiry.expires_at == soon.last_password_change.replace(microsecond=0) + timedelta(
        days=90
    )
    assert not expiry.user.protected


def test_users_are_read_in_one_paged_query_not_one_per_user(
    tenant: FakeEntra, adapter: EntraIdDirectory
) -> None:
    valid_for(tenant, 30)
    tenant.page_size = 2
    users = [changed(tenant.add_user(f"user{n}"), 27 + n * 0.1) for n in range(5)]

    found = adapter.password_expiries(NOW + timedelta(days=4))

    assert [e.user.id for e in found] == [u.id for u in reversed(users)]  # soonest first
    # The domains, the users, and once for the list: the users' domain (federated or not),
    # the restricted administrative units and the role holders (there are none).
    assert calls(tenant) == [
        "/domains",
        "/users",
        "/domains/contoso.onmicrosoft.com",
        "/directory/administrativeUnits",
        "/roleManagement/directory/roleAssignments",
        "/roleManagement/directory/roleEligibilityScheduleInstances",
    ]
    pages = [call for call in tenant.graph_calls if call.path == "/users"]
    assert len(pages) == 3  # 5 users, 2 a page: Graph's nextLink followed
    select = pages[0].query["$select"].split(",")
    assert {"lastPasswordChangeDateTime", "passwordPolicies"} <= set(select)


def test_nothing_is_read_of_the_users_when_no_domains_passwords_expire(
    tenant: FakeEntra, adapter: EntraIdDirectory
) -> None:
    changed(tenant.add_user("old"), 400)
    valid_for(tenant, NEVER)  # the "never expire" policy

    assert adapter.password_expiries(NOW + timedelta(days=8)) == []
    assert calls(tenant) == ["/domains"]


def test_a_domain_without_a_period_lasts_90_days_and_a_federated_one_is_left_out(
    tenant: FakeEntra, adapter: EntraIdDirectory
) -> None:
    valid_for(tenant, None)
    tenant.domains["fabrikam.example"] = FakeDomain("fabrikam.example", 14, federated=True)
    default = changed(tenant.add_user("dee"), 88)
    federated = changed(tenant.add_user("fed"), 10)
    federated.user_principal_name = "fed@fabrikam.example"

    found = adapter.password_expiries(NOW + timedelta(days=8))

    assert [(e.user.id, e.expires_at - NOW) for e in found] == [(default.id, timedelta(days=2))]


def test_a_role_holder_is_marked_protected_and_roles_are_read_only_when_needed(
    tenant: FakeEntra, adapter: EntraIdDirectory
) -> None:
    valid_for(tenant, 90)
    admin = changed(tenant.add_user("admin"), 85)
    tenant.assign_role(admin.id, "User Administrator")
    changed(tenant.add_user("calm"), 1)

    assert adapter.password_expiries(NOW + timedelta(days=1)) == []
    assert not any("roleManagement" in c for c in calls(tenant))  # nothing due: no role lookups
    [expiry] = adapter.password_expiries(NOW + timedelta(days=8))
    assert expiry.user.id == admin.id and expiry.user.protected


def test_without_domain_read_all_the_error_and_the_diagnosis_name_it(
    tenant: FakeEntra, adapter: EntraIdDirectory
) -> None:
    tenant.permissions = set(FULL_PERMISSIONS) - {"Domain.Read.All"}

    with pytest.raises(PermissionDenied) as refused:
        adapter.password_expiries(NOW + timedelta(days=8))

    assert refused.value.missing_right == "Domain.Read.All"
    [finding] = [f for f in diagnose(tenant.settings()) if f.topic == "read domains"]
    # A problem: without it users of federated domains cannot be told apart either.
    assert (finding.level, finding.missing) == ("problem", "Domain.Read.All")
