"""The Entra ID adapter against a fake tenant: the shared contract where Entra ID can
keep it, then paging, throttling, tokens, the error table, synced and privileged
users, lockouts from sign-in logs, settings and ``diagnose``."""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any

import pytest
import requests
import responses
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from directory_adapters import (
    ConfigurationError,
    DirectoryError,
    DirectoryUnavailable,
    OperationNotSupported,
    OperationRefused,
    PasswordPolicy,
    PasswordRejected,
    PermissionDenied,
    UserNotFound,
    create_adapter,
)
from directory_adapters.entra_id import (
    ERROR_TABLE,
    EntraIdDirectory,
    EntraSettings,
    GraphClient,
    PrivilegedAccount,
    SyncedFromActiveDirectory,
    diagnose,
)
from tests.support.fake_graph import FULL_PERMISSIONS, Clock, EntraProbe, FakeEntra

from .contract import NEW_PASSWORD, OLD_PASSWORD, DirectoryContract, DirectoryProbe

STRONG = "Strong-Passw0rd-1"


@pytest.fixture
def tenant(clock: Clock) -> Iterator[FakeEntra]:
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        yield FakeEntra(clock=clock).install(rsps)


def make_adapter(
    tenant: FakeEntra, sleeps: list[float], *, clock: Clock | None = None, **settings: Any
) -> EntraIdDirectory:
    return EntraIdDirectory.from_settings(
        tenant.settings(**settings), sleep=sleeps.append, clock=clock or tenant.clock
    )


@pytest.fixture
def adapter(tenant: FakeEntra, sleeps: list[float], clock: Clock) -> EntraIdDirectory:
    return make_adapter(tenant, sleeps, clock=clock)


@pytest.fixture
def probe(tenant: FakeEntra, adapter: EntraIdDirectory) -> EntraProbe:
    return EntraProbe(tenant, adapter)


class TestEntraIdContract(DirectoryContract):
    """The shared contract. Where Entra ID differs by design, the test says what it does."""

    def test_unlock_keeps_the_password(self, probe: DirectoryProbe) -> None:
        # Entra ID has no unlock call: a clear, permanent refusal that points to RESET.
        user = self.make_user(probe)
        with pytest.raises(OperationNotSupported, match="RESET"):
            probe.adapter.unlock(user.id)
        assert probe.sign_in(user.username, OLD_PASSWORD) == "ok"

    def test_set_password_without_unlock_leaves_a_locked_account_locked(
        self, probe: DirectoryProbe
    ) -> None:
        # An Entra ID reset always ends a smart lockout: the new password signs in.
        user = self.make_user(probe)
        probe.lock(user.username)
        probe.adapter.set_password(user.id, NEW_PASSWORD, must_change=False, unlock=False)
        assert probe.sign_in(user.username, NEW_PASSWORD) == "ok"

    def test_list_groups_matches_any_part_of_a_name(self, probe: DirectoryProbe) -> None:
        # Graph has no "contains" on names: its $search finds words that start with the
        # text, and the adapter keeps those whose name contains it.
        for name in ("EU Sales", "Sales-Team", "Wholesales", "Marketing"):
            probe.create_group(name)
        found = probe.adapter.list_groups("sales")
        assert [group.name for group in found] == ["EU Sales", "Sales-Team"]

    def test_set_password_rejects_a_password_containing_the_username(
        self, probe: DirectoryProbe
    ) -> None:
        # Entra ID's policy is length and 3 of 4 kinds, with no username rule (the
        # one-time password generator avoids the username anyway).
        user = self.make_user(probe)
        password = f"X9!{user.username.upper()}"
        probe.adapter.set_password(user.id, password, must_change=False, unlock=False)
        assert probe.sign_in(user.username, password) == "ok"


# -- the Protocol's Entra ID specifics ----------------------------------------------------


def test_create_adapter_builds_an_entra_adapter_without_touching_the_network(
    tenant: FakeEntra,
) -> None:
    adapter = create_adapter("entra_id", tenant.settings())
    assert isinstance(adapter, EntraIdDirectory)
    assert adapter.kind == "entra_id"
    assert adapter.password_policy() == PasswordPolicy(min_length=8, complexity=True)
    assert (tenant.token_requests, tenant.graph_calls) == ([], [])


def test_set_password_sends_the_documented_patch(
    tenant: FakeEntra, adapter: EntraIdDirectory, probe: EntraProbe
) -> None:
    user = tenant.add_user("adele", OLD_PASSWORD)
    adapter.set_password(user.id, NEW_PASSWORD, must_change=True, unlock=True)
    assert tenant.patches_of(user.id) == [
        {"passwordProfile": {"forceChangePasswordNextSignIn": True, "password": NEW_PASSWORD}}
    ]
    assert probe.sign_in("adele", NEW_PASSWORD) == "must_change"


def test_unlock_is_not_supported_and_offers_reset(
    tenant: FakeEntra, adapter: EntraIdDirectory
) -> None:
    user = tenant.add_user("ben", OLD_PASSWORD)
    with pytest.raises(OperationNotSupported, match="RESET") as refused:
        adapter.unlock(user.id)
    assert refused.value.permanent


def test_a_reset_ends_a_lockout_even_without_unlock(
    tenant: FakeEntra, adapter: EntraIdDirectory, probe: EntraProbe
) -> None:
    user = tenant.add_user("cara", OLD_PASSWORD)
    probe.lock("cara")
    adapter.set_password(user.id, NEW_PASSWORD, must_change=False, unlock=False)
    assert probe.sign_in("cara", NEW_PASSWORD) == "ok"
    assert not adapter.lockout_state(user.id).locked


def test_list_users_by_ou_is_not_supported(adapter: EntraIdDirectory) -> None:
    with pytest.raises(OperationNotSupported, match="organisational units"):
        adapter.list_users(ou="Staff/Sales")


def test_list_users_of_a_group_by_display_name(
    tenant: FakeEntra, adapter: EntraIdDirectory
) -> None:
    group = tenant.add_group("Sales Team")
    member = tenant.add_user("dan", OLD_PASSWORD, groups=[group])
    tenant.add_user("eve", OLD_PASSWORD)
    assert [u.id for u in adapter.list_users(group="sales team")] == [member.id]


@pytest.mark.parametrize("group", ["Nobody Here", "0b9c6a1e-5d0f-4d51-9a43-1b2f1e3f4a5b"])
def test_list_users_of_an_unknown_group_raises_configuration_error(
    adapter: EntraIdDirectory, group: str
) -> None:
    with pytest.raises(ConfigurationError):
        adapter.list_users(group=group)


def test_two_groups_of_one_name_must_be_named_by_id(
    tenant: FakeEntra, adapter: EntraIdDirectory
) -> None:
    tenant.add_group("Staff")
    tenant.add_group("Staff")
    with pytest.raises(ConfigurationError, match="object id"):
        adapter.list_users(group="Staff")


def test_find_user_refuses_a_mail_shared_by_two_users(
    tenant: FakeEntra, adapter: EntraIdDirectory
) -> None:
    tenant.add_user("fay", mail="team@contoso.com")
    tenant.add_user("gus", mail="team@contoso.com")
    with pytest.raises(UserNotFound, match="ambiguous"):
        adapter.find_user("team@contoso.com")


def test_find_user_quotes_an_apostrophe(tenant: FakeEntra, adapter: EntraIdDirectory) -> None:
    user = tenant.add_user("o'brien")
    assert adapter.find_user("O'Brien@contoso.onmicrosoft.com").id == user.id
    [call] = [c for c in tenant.graph_calls if c.path == "/users"]
    assert "'O''Brien@contoso.onmicrosoft.com'" in call.query["$filter"]


@pytest.mark.parametrize("user_id", ["../groups", "alice@contoso.onmicrosoft.com", ""])
def test_an_id_that_is_not_an_object_id_is_not_sent_to_graph(
    tenant: FakeEntra, adapter: EntraIdDirectory, user_id: str
) -> None:
    with pytest.raises(UserNotFound):
        adapter.get_user(user_id)
    assert tenant.graph_calls == []


@pytest.mark.parametrize(
    ("attribute", "advanced"), [("onPremisesSamAccountName", True), ("mailNickname", False)]
)
def test_user_attribute_names_the_username_and_is_searchable(
    tenant: FakeEntra, sleeps: list[float], attribute: str, advanced: bool
) -> None:
    adapter = make_adapter(tenant, sleeps, user_attribute=attribute)
    user = tenant.add_user("hana", sam_account_name="hana")
    found = adapter.find_user("HANA")
    assert (found.id, found.username, found.upn) == (user.id, "hana", user.user_principal_name)
    [call] = [c for c in tenant.graph_calls if c.path == "/users"]
    assert (call.headers.get("ConsistencyLevel") == "eventual") is advanced


# -- paging ------------------------------------------------------------------------------


@pytest.mark.parametrize("scoped", [True, False])
def test_list_users_follows_next_links_across_three_pages(
    tenant: FakeEntra, adapter: EntraIdDirectory, scoped: bool
) -> None:
    tenant.page_size = 2
    outer = tenant.add_group("Everyone")
    inner = tenant.add_group("Nested", member_of=[outer])
    users = [
        tenant.add_user(f"user{i}", OLD_PASSWORD, groups=[inner if i % 2 else outer])
        for i in range(5)
    ]
    listed = list(adapter.list_users(group=outer if scoped else None))
    assert sorted(u.id for u in listed) == sorted(u.id for u in users)
    path = f"/groups/{outer}/transitiveMembers/microsoft.graph.user" if scoped else "/users"
    calls = [c for c in tenant.graph_calls if c.path == path]
    assert len(calls) == 3
    assert "$skiptoken" not in calls[0].query
    assert all("$skiptoken" in c.query for c in calls[1:])
    if scoped:  # the OData cast is an advanced query, on every page
        assert all(c.headers["ConsistencyLevel"] == "eventual" for c in calls)


def test_a_next_link_to_another_host_is_refused() -> None:
    class Tokens:
        def token(self) -> str:
            return "t"

        def renew(self) -> None: ...

    graph = GraphClient(
        base_url="https://graph.microsoft.com/v1.0",
        tokens=Tokens(),  # type: ignore[arg-type]  # a stand-in for msal
        session=requests.Session(),
        timeout=(1, 1),
        sleep=lambda _: None,
        clock=lambda: datetime.now(UTC),
    )
    page = {"value": [], "@odata.nextLink": "https://attacker.example/v1.0/users?$skiptoken=x"}
    with responses.RequestsMock() as rsps:
        rsps.get("https://graph.microsoft.com/v1.0/users", json=page)
        with pytest.raises(ConfigurationError, match=r"another host: 'attacker\.example'"):
            list(graph.pages("/users", permission="User.Read.All"))


# -- throttling --------------------------------------------------------------------------


def test_a_throttled_call_waits_retry_after_then_succeeds(
    tenant: FakeEntra, adapter: EntraIdDirectory, sleeps: list[float]
) -> None:
    user = tenant.add_user("ida", OLD_PASSWORD)
    tenant.fail_next(
        status=429, code="TooManyRequests", message="Please retry again later.", retry_after="2.5"
    )
    assert adapter.get_user(user.id).id == user.id
    assert sleeps == [2.5]


def test_retry_after_as_an_http_date_is_honoured(
    tenant: FakeEntra, adapter: EntraIdDirectory, sleeps: list[float], clock: Clock
) -> None:
    user = tenant.add_user("jon", OLD_PASSWORD)
    when = format_datetime(clock.now + timedelta(seconds=4), usegmt=True)
    tenant.fail_next(status=503, code="serviceNotAvailable", retry_after=when)
    adapter.get_user(user.id)
    assert sleeps == [4.0]


def test_a_long_retry_after_goes_back_to_the_job(
    tenant: FakeEntra, adapter: EntraIdDirectory, sleeps: list[float]
) -> None:
    user = tenant.add_user("kim", OLD_PASSWORD)
    tenant.fail_next(status=429, code="TooManyRequests", retry_after="120")
    with pytest.raises(DirectoryUnavailable) as throttled:
        adapter.get_user(user.id)
    assert (throttled.value.retry_after, throttled.value.permanent, sleeps) == (120.0, False, [])


def test_repeated_outages_back_off_then_give_up(
    tenant: FakeEntra, adapter: EntraIdDirectory, sleeps: list[float]
) -> None:
    user = tenant.add_user("lea", OLD_PASSWORD)
    tenant.fail_next(3, status=504, code="UnknownError", message="Gateway timeout")
    with pytest.raises(DirectoryUnavailable, match="HTTP 504"):
        adapter.get_user(user.id)
    assert sleeps == [1.0, 2.0]
    assert adapter.get_user(user.id).id == user.id


# -- tokens ------------------------------------------------------------------------------


def test_the_token_is_cached_between_calls(tenant: FakeEntra, adapter: EntraIdDirectory) -> None:
    user = tenant.add_user("max", OLD_PASSWORD)
    for _ in range(3):
        adapter.get_user(user.id)
    [request] = tenant.token_requests
    assert request["grant_type"] == "client_credentials"
    assert request["scope"] == "https://graph.microsoft.com/.default"


def test_a_refused_token_is_renewed_once(tenant: FakeEntra, adapter: EntraIdDirectory) -> None:
    user = tenant.add_user("nia", OLD_PASSWORD)
    adapter.get_user(user.id)
    tenant.revoke_tokens()
    assert adapter.get_user(user.id).id == user.id
    assert len(tenant.token_requests) == 2


def test_a_token_refused_after_renewal_is_a_configuration_error(
    tenant: FakeEntra, adapter: EntraIdDirectory
) -> None:
    user = tenant.add_user("oli", OLD_PASSWORD)
    tenant.reject_all_tokens = True
    with pytest.raises(ConfigurationError, match="HTTP 401 InvalidAuthenticationToken"):
        adapter.get_user(user.id)
    assert len(tenant.token_requests) == 2


def private_key_pem(key: rsa.RSAPrivateKey) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()


def test_a_certificate_credential_signs_a_client_assertion(
    tenant: FakeEntra, sleeps: list[float]
) -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    thumbprint = hashlib.sha1(b"the certificate", usedforsecurity=False).hexdigest()
    tenant.use_certificate(key.public_key(), thumbprint)
    adapter = make_adapter(
        tenant,
        sleeps,
        client_secret=None,
        certificate_key=private_key_pem(key),
        certificate_thumbprint=thumbprint,
    )
    adapter.check_connection()
    [request] = tenant.token_requests
    assert request["client_assertion_type"].endswith(":jwt-bearer")
    assert "client_secret" not in request
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    stranger = make_adapter(
        tenant,
        sleeps,
        client_secret=None,
        certificate_key=private_key_pem(other),
        certificate_thumbprint=thumbprint,
    )
    with pytest.raises(ConfigurationError, match="invalid_client"):
        stranger.check_connection()


def test_a_national_cloud_uses_its_authority_and_graph(sleeps: list[float]) -> None:
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        tenant = FakeEntra(
            authority="https://login.microsoftonline.us",
            graph_url="https://graph.microsoft.us/v1.0",
        ).install(rsps)
        adapter = make_adapter(tenant, sleeps)
        user = tenant.add_user("pat", OLD_PASSWORD)
        assert adapter.get_user(user.id).id == user.id
        assert tenant.token_requests[0]["scope"] == "https://graph.microsoft.us/.default"


@pytest.mark.parametrize(
    ("cloud", "authority", "graph"),
    [
        ("global", "https://login.microsoftonline.com", "https://graph.microsoft.com/v1.0"),
        ("usgov", "https://login.microsoftonline.us", "https://graph.microsoft.us/v1.0"),
        ("dod", "https://login.microsoftonline.us", "https://dod-graph.microsoft.us/v1.0"),
        ("china", "https://login.chinacloudapi.cn",
         "https://microsoftgraph.chinacloudapi.cn/v1.0"),
    ],
)  # fmt: skip
def test_a_cloud_preset_sets_the_authority_and_graph(
    sleeps: list[float], cloud: str, authority: str, graph: str
) -> None:
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        tenant = FakeEntra(authority=authority, graph_url=graph).install(rsps)
        settings = tenant.settings(authority=None, graph_url=None, cloud=cloud)
        assert set(settings) == {"tenant_id", "client_id", "client_secret", "cloud"}
        adapter = EntraIdDirectory.from_settings(settings, sleep=sleeps.append)
        user = tenant.add_user("pat", OLD_PASSWORD)
        adapter.set_password(user.id, NEW_PASSWORD, must_change=True, unlock=True)
        assert tenant.patches_of(user.id)  # the fake at this cloud's Graph got it
        host = graph.split("/")[2]
        assert tenant.token_requests[0]["scope"] == f"https://{host}/.default"
    with pytest.raises(ConfigurationError, match="'cloud' must be one of"):
        EntraSettings.parse({**settings, "cloud": "mars"})


def test_force_change_with_mfa_asks_graph_for_mfa_at_the_change(
    tenant: FakeEntra, sleeps: list[float]
) -> None:
    user = tenant.add_user("mia", OLD_PASSWORD)
    adapter = make_adapter(tenant, sleeps, force_change_with_mfa=True)
    adapter.set_password(user.id, NEW_PASSWORD, must_change=True, unlock=True)
    assert tenant.patches_of(user.id)[-1]["passwordProfile"] == {
        "forceChangePasswordNextSignIn": True,
        "forceChangePasswordNextSignInWithMfa": True,
        "password": NEW_PASSWORD,
    }
    assert user.force_change and user.force_change_with_mfa
    adapter.set_password(user.id, STRONG, must_change=False, unlock=True)  # no change asked
    assert (
        "forceChangePasswordNextSignInWithMfa"
        not in tenant.patches_of(user.id)[-1]["passwordProfile"]
    )
    plain = make_adapter(tenant, sleeps)
    plain.set_password(user.id, NEW_PASSWORD, must_change=True, unlock=True)
    assert not user.force_change_with_mfa
    with pytest.raises(ConfigurationError, match="force_change_with_mfa"):
        make_adapter(tenant, sleeps, force_change_with_mfa="yes")


def test_a_certificate_by_sha256_thumbprint_signs_a_ps256_assertion(
    tenant: FakeEntra, sleeps: list[float]
) -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    thumbprint = hashlib.sha256(b"the certificate").hexdigest()
    tenant.use_certificate(key.public_key(), thumbprint)
    settings = {"client_secret": None, "certificate_key": private_key_pem(key)}
    adapter = make_adapter(tenant, sleeps, certificate_thumbprint=thumbprint, **settings)
    adapter.check_connection()
    [request] = tenant.token_requests
    assert request["client_assertion_type"].endswith(":jwt-bearer")
    assert "client_secret" not in request
    sha1 = hashlib.sha1(b"the certificate", usedforsecurity=False).hexdigest()
    wrong = make_adapter(tenant, sleeps, certificate_thumbprint=sha1, **settings)
    with pytest.raises(ConfigurationError, match="invalid_client"):
        wrong.check_connection()  # the thumbprint the app registration does not have
    with pytest.raises(ConfigurationError, match="64 hex digits"):
        make_adapter(tenant, sleeps, certificate_thumbprint=thumbprint[:50], **settings)


# -- the error table ---------------------------------------------------------------------


def test_only_throttling_outages_and_conflicts_are_retryable() -> None:
    retryable = {rule.status for rule in ERROR_TABLE if rule.retryable}
    assert retryable == {409, 429, 503, 504}


GRAPH_FAILURES = [
    pytest.param(
        {"status": 400, "code": "Request_BadRequest", "message": "Invalid filter clause"},
        ConfigurationError,
        id="400-malformed",
    ),
    pytest.param(
        {"status": 403, "code": "Authorization_RequestDenied",
         "message": "Insufficient privileges to complete the operation."},
        PermissionDenied,
        id="403-denied",
    ),
    pytest.param(
        {"status": 404, "code": "Request_ResourceNotFound", "message": "Resource does not exist"},
        UserNotFound,
        id="404",
    ),
    pytest.param({"status": 409, "code": "Directory_ConcurrencyViolation"},
                 DirectoryUnavailable, id="409"),
    pytest.param({"status": 500, "code": "generalException"}, DirectoryUnavailable, id="500"),
    pytest.param({"status": 429, "code": "TooManyRequests", "retry_after": "999"},
                 DirectoryUnavailable, id="429"),
    pytest.param({"exception": requests.ConnectionError("connection refused")},
                 DirectoryUnavailable, id="network"),
    pytest.param({"exception": requests.ReadTimeout("read timed out")},
                 DirectoryUnavailable, id="timeout"),
]  # fmt: skip


@pytest.mark.parametrize(("failure", "error"), GRAPH_FAILURES)
def test_graph_failures_map_to_directory_errors(
    tenant: FakeEntra,
    adapter: EntraIdDirectory,
    sleeps: list[float],
    failure: dict[str, Any],
    error: type[DirectoryError],
) -> None:
    user = tenant.add_user("quinn", OLD_PASSWORD)
    tenant.fail_next(**failure)
    with pytest.raises(error) as raised:
        adapter.get_user(user.id)
    assert type(raised.value) is error
    assert raised.value.permanent is error.permanent
    if error is PermissionDenied:
        assert isinstance(raised.value, PermissionDenied)
        assert raised.value.missing_right == "User.Read.All"


def test_a_password_patch_without_its_permission_names_the_permission(
    tenant: FakeEntra, sleeps: list[float], probe: EntraProbe
) -> None:
    tenant.permissions = set(FULL_PERMISSIONS) - {"User-PasswordProfile.ReadWrite.All"}
    adapter = make_adapter(tenant, sleeps)
    user = tenant.add_user("rae", OLD_PASSWORD)
    with pytest.raises(PermissionDenied, match="Authorization_RequestDenied") as denied:
        adapter.set_password(user.id, NEW_PASSWORD, must_change=True, unlock=True)
    assert denied.value.missing_right == "User-PasswordProfile.ReadWrite.All"
    assert probe.sign_in("rae", OLD_PASSWORD) == "ok"


def test_a_new_token_is_asked_for_after_a_403_so_a_granted_permission_counts_at_once(
    tenant: FakeEntra, sleeps: list[float], probe: EntraProbe
) -> None:
    tenant.permissions = set(FULL_PERMISSIONS) - {"User-PasswordProfile.ReadWrite.All"}
    adapter = make_adapter(tenant, sleeps)
    user = tenant.add_user("rae", OLD_PASSWORD)
    with pytest.raises(PermissionDenied):
        adapter.set_password(user.id, NEW_PASSWORD, must_change=True, unlock=True)
    asked = len(tenant.token_requests)
    tenant.permissions.add("User-PasswordProfile.ReadWrite.All")  # the admin consents
    adapter.set_password(user.id, NEW_PASSWORD, must_change=True, unlock=True)
    assert len(tenant.token_requests) == asked + 1  # the old token (still valid) dropped
    assert probe.sign_in("rae", NEW_PASSWORD) == "must_change"


def test_a_weak_password_is_rejected_without_being_quoted(
    tenant: FakeEntra, adapter: EntraIdDirectory, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    user = tenant.add_user("sam", OLD_PASSWORD)
    with pytest.raises(PasswordRejected, match="complexity") as rejected:
        adapter.set_password(user.id, "alllowercase", must_change=True, unlock=True)
    assert "alllowercase" not in str(rejected.value)
    adapter.set_password(user.id, STRONG, must_change=True, unlock=True)
    assert STRONG not in caplog.text
    assert all(STRONG not in repr(record.__dict__) for record in caplog.records)


TOKEN_FAILURES = [
    pytest.param({"client_secret": "wrong-secret"}, None, ConfigurationError, "AADSTS7000215",
                 id="bad-secret"),
    pytest.param({"client_id": "6f1a9d35-6a5c-4be6-8d4f-0c1b5a6d7e8f"}, None, ConfigurationError,
                 "AADSTS700016", id="unknown-app"),
    pytest.param({"tenant_id": "fabrikam.onmicrosoft.com"}, None, ConfigurationError,
                 "fabrikam.onmicrosoft.com.*tenant name or GUID", id="unknown-tenant"),
    pytest.param({}, (503, "temporarily_unavailable", 50196, "The server is busy."),
                 DirectoryUnavailable, "HTTP Error: 503", id="busy"),
]  # fmt: skip


@pytest.mark.parametrize(("settings", "queued", "error", "message"), TOKEN_FAILURES)
def test_token_failures_map_to_directory_errors(
    tenant: FakeEntra,
    sleeps: list[float],
    settings: dict[str, Any],
    queued: tuple[int, str, int, str] | None,
    error: type[DirectoryError],
    message: str,
) -> None:
    if queued:
        tenant.fail_token_requests(*queued)
    adapter = make_adapter(tenant, sleeps, **settings)
    with pytest.raises(error, match=message):
        adapter.check_connection()


def test_an_unreachable_token_endpoint_is_unavailable(sleeps: list[float]) -> None:
    tenant = FakeEntra()
    adapter = make_adapter(tenant, sleeps)
    with responses.RequestsMock() as rsps:
        rsps.get(
            f"{tenant.authority}/{tenant.tenant_id}/v2.0/.well-known/openid-configuration",
            body=requests.ConnectionError("no route to host"),
        )
        with pytest.raises(DirectoryUnavailable, match="token endpoint unreachable"):
            adapter.check_connection()


# -- synced and privileged users ----------------------------------------------------------


def test_a_synced_user_is_refused_before_any_change(
    tenant: FakeEntra, adapter: EntraIdDirectory, probe: EntraProbe
) -> None:
    user = tenant.add_user("tom", OLD_PASSWORD, synced=True)
    assert adapter.get_user(user.id).protected
    with pytest.raises(SyncedFromActiveDirectory, match="on-premises Active Directory") as refused:
        adapter.set_password(user.id, NEW_PASSWORD, must_change=True, unlock=True)
    assert isinstance(refused.value, OperationRefused) and refused.value.permanent
    assert tenant.patches_of(user.id) == []
    assert probe.sign_in("tom", OLD_PASSWORD) == "ok"


def test_graph_refusing_a_synced_user_is_an_operation_refused(
    tenant: FakeEntra, adapter: EntraIdDirectory
) -> None:
    user = tenant.add_user("uma", OLD_PASSWORD)
    tenant.fail_next(
        method="PATCH",
        status=400,
        code="Request_BadRequest",
        message="Unable to update the specified properties for on-premises mastered Directory "
        "Sync objects or objects currently undergoing migration.",
    )
    with pytest.raises(OperationRefused):
        adapter.set_password(user.id, NEW_PASSWORD, must_change=True, unlock=True)


@pytest.mark.parametrize("through_group", [False, True])
def test_a_privileged_user_is_refused_and_shown_protected(
    tenant: FakeEntra, adapter: EntraIdDirectory, through_group: bool
) -> None:
    admins = tenant.add_group("Tier 0", role_assignable=True)
    user = tenant.add_user("vic", OLD_PASSWORD, groups=[admins] if through_group else [])
    tenant.assign_role(admins if through_group else user.id, "Global Administrator")
    bystander = tenant.add_user("wes", OLD_PASSWORD)
    assert adapter.get_user(user.id).protected
    assert adapter.find_user(user.user_principal_name).protected
    listed = {u.id: u.protected for u in adapter.list_users()}
    assert listed == {user.id: True, bystander.id: False}
    with pytest.raises(PrivilegedAccount, match="Global Administrator"):
        adapter.set_password(user.id, NEW_PASSWORD, must_change=True, unlock=True)
    assert tenant.patches_of(user.id) == []


def test_privileged_users_are_spotted_with_limited_information(
    tenant: FakeEntra, sleeps: list[float]
) -> None:
    tenant.permissions = set(FULL_PERMISSIONS) - {"RoleManagement.Read.Directory"}
    adapter = make_adapter(tenant, sleeps)
    user = tenant.add_user("xia", OLD_PASSWORD)
    tenant.assign_role(user.id, "Helpdesk Administrator")
    with pytest.raises(PrivilegedAccount):
        adapter.set_password(user.id, NEW_PASSWORD, must_change=True, unlock=True)
    with pytest.raises(PermissionDenied) as denied:
        adapter.list_users()
    assert denied.value.missing_right == "RoleManagement.Read.Directory"


def test_with_refuse_privileged_off_graph_decides(tenant: FakeEntra, sleeps: list[float]) -> None:
    adapter = make_adapter(tenant, sleeps, refuse_privileged=False)
    user = tenant.add_user("yan", OLD_PASSWORD)
    tenant.assign_role(user.id, "Exchange Administrator")
    assert not adapter.get_user(user.id).protected
    with pytest.raises(PermissionDenied, match="does not cover this user") as denied:
        adapter.set_password(user.id, NEW_PASSWORD, must_change=True, unlock=True)
    advice = denied.value.message
    for role in ("Password Administrator", "Helpdesk Administrator", "User Administrator"):
        assert role in advice and role in (denied.value.missing_right or "")
    assert "limited administrators" in advice and "without an admin role" in advice
    assert "Privileged Authentication Administrator" not in denied.value.missing_right
    assert "Never give the app Privileged Authentication Administrator" in advice
    tenant.app_roles.add("7be44c8a-adaf-4e2a-84d6-ab2649e08a13")
    adapter.set_password(user.id, NEW_PASSWORD, must_change=True, unlock=True)


# -- lockouts from the sign-in logs -------------------------------------------------------


def test_locked_out_users_reads_the_logs_since_the_last_poll(
    tenant: FakeEntra, adapter: EntraIdDirectory, probe: EntraProbe, clock: Clock
) -> None:
    zoe = tenant.add_user("zoe", OLD_PASSWORD)
    abe = tenant.add_user("abe", OLD_PASSWORD)
    probe.lock("zoe")
    clock.advance(minutes=1)
    assert [u.id for u in adapter.locked_out_users()] == [zoe.id]
    first_poll = clock.now
    clock.advance(minutes=30)
    assert adapter.locked_out_users() == []  # zoe's lockout is older than the last poll
    probe.lock("abe")
    assert [u.id for u in adapter.locked_out_users()] == [abe.id]
    queries = [c.query["$filter"] for c in tenant.graph_calls if c.path == "/auditLogs/signIns"]
    assert queries[1] == (
        f"status/errorCode eq 50053 and createdDateTime ge {first_poll:%Y-%m-%dT%H:%M:%SZ}"
    )


def test_a_sign_in_after_the_lockout_ends_it(
    tenant: FakeEntra, adapter: EntraIdDirectory, probe: EntraProbe, clock: Clock
) -> None:
    user = tenant.add_user("bea", OLD_PASSWORD)
    probe.lock("bea")
    state = adapter.lockout_state(user.id)
    assert state.locked and state.locked_at == clock.now
    clock.advance(minutes=2)  # smart lockout lasts a minute
    assert probe.sign_in("bea", OLD_PASSWORD) == "ok"
    assert not adapter.lockout_state(user.id).locked


@pytest.mark.parametrize(
    ("premium", "permissions", "error", "reason"),
    [
        (True, FULL_PERMISSIONS - {"AuditLog.Read.All"}, PermissionDenied, "AuditLog.Read.All"),
        (False, FULL_PERMISSIONS, OperationNotSupported, "P1/P2 licence"),
    ],
)
def test_the_lockout_watch_is_off_without_permission_or_licence(
    tenant: FakeEntra,
    sleeps: list[float],
    premium: bool,
    permissions: frozenset[str],
    error: type[DirectoryError],
    reason: str,
) -> None:
    tenant.premium, tenant.permissions = premium, set(permissions)
    adapter = make_adapter(tenant, sleeps)
    user = tenant.add_user("cal", OLD_PASSWORD)
    for call in (adapter.locked_out_users, lambda: adapter.lockout_state(user.id)):
        with pytest.raises(error, match="lockout watch off"):
            call()
    assert adapter.lockout_watch_off is not None and reason in adapter.lockout_watch_off


# -- settings ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "change",
    [
        {"tenant_id": None},
        {"tenant_id": "contoso/../x"},
        {"client_id": "not-a-guid"},
        {"client_secret": None},
        {"certificate_key": "-----BEGIN PRIVATE KEY-----", "certificate_thumbprint": "AB" * 20},
        {"client_secret": None, "certificate_key": "-----BEGIN PRIVATE KEY-----"},
        {"client_secret": None, "certificate_key": "k", "certificate_thumbprint": "xyz"},
        {
            "client_secret": None,
            "certificate_key": "not a key",
            "certificate_thumbprint": "AB" * 20,
        },
        {"authority": "http://login.microsoftonline.com"},
        {"graph_url": "graph.microsoft.com"},
        {"timeout": 0},
        {"connect_timeout": True},
        {"refuse_privileged": "yes"},
        {"user_attribute": "cn"},
        {"lockout_window_minutes": 0},
        {"clientsecret": "typo"},
    ],
)
def test_malformed_settings_raise_configuration_error(
    tenant: FakeEntra, change: dict[str, Any]
) -> None:
    settings = {**tenant.settings(), **change}
    with pytest.raises(ConfigurationError):
        EntraSettings.parse({k: v for k, v in settings.items() if v is not None})


def test_settings_keep_secrets_out_of_repr(tenant: FakeEntra) -> None:
    parsed = EntraSettings.parse(tenant.settings())
    assert tenant.client_secret not in repr(parsed)
    assert parsed.scope == "https://graph.microsoft.com/.default"


# -- diagnose (blink-sms clients test) ----------------------------------------------------


def levels(findings: list[Any]) -> dict[str, str]:
    return {f"{f.topic}:{f.level}": f.missing or "" for f in findings}


def test_diagnose_passes_a_well_set_up_tenant(tenant: FakeEntra) -> None:
    findings = diagnose(tenant.settings())
    assert {f.level for f in findings} == {"ok"}
    assert "lockout watch" in {f.topic for f in findings}


def test_diagnose_names_the_missing_permissions(tenant: FakeEntra) -> None:
    tenant.permissions = {"User.Read.All"}
    tenant.app_roles.clear()
    found = levels(diagnose(tenant.settings()))
    assert found["set passwords:problem"] == "User-PasswordProfile.ReadWrite.All"
    assert found["spot privileged users:problem"] == "RoleManagement.Read.Directory"
    assert found["spot restricted users:problem"] == "AdministrativeUnit.Read.All"
    assert found["read domains:problem"] == "Domain.Read.All"
    assert found["list groups:warning"] == "GroupMember.Read.All"
    assert found["lockout watch:warning"] == "AuditLog.Read.All"
    assert found["directory role:warning"] == (
        "Password Administrator, Helpdesk Administrator or User Administrator"
    )
    advice = next(f.message for f in diagnose(tenant.settings()) if f.topic == "directory role")
    assert "Helpdesk Administrator" in advice and "Never give" in advice
    assert "reach:ok" in found


def test_diagnose_says_the_lockout_watch_is_off_without_a_licence(tenant: FakeEntra) -> None:
    tenant.premium = False
    findings = [f for f in diagnose(tenant.settings()) if f.level != "ok"]
    assert [(f.topic, f.missing) for f in findings] == [
        ("lockout watch", "Entra ID P1 or P2 licence")
    ]
    assert findings[0].message.startswith("lockout watch off: the tenant has no Entra ID P1/P2")


def test_diagnose_reports_a_bad_secret_and_bad_settings(tenant: FakeEntra) -> None:
    [token] = diagnose(tenant.settings(client_secret="wrong"))
    assert (token.topic, token.level) == ("token", "problem")
    assert "AADSTS7000215" in token.message
    [settings] = diagnose({"tenant_id": tenant.tenant_id})
    assert (settings.topic, settings.level) == ("settings", "problem")


# -- roles beyond the activated tenant-wide ones ------------------------------------------


@pytest.mark.parametrize(
    ("role", "how", "shown"),
    [
        ("Privileged Role Administrator", {"eligible": True}, "(eligible)"),
        ("User Administrator", {"administrative_unit": "au-1"}, "(administrative unit)"),
        ("Password Administrator", {"eligible": True, "administrative_unit": "au-1"},
         "(eligible, administrative unit)"),
        ("Helpdesk Reader (custom)", {}, "Helpdesk Reader (custom)"),
    ],
)  # fmt: skip
@pytest.mark.parametrize("through_group", [False, True])
def test_eligible_scoped_and_custom_roles_are_refused_and_shown_protected(
    tenant: FakeEntra,
    adapter: EntraIdDirectory,
    role: str,
    how: dict[str, Any],
    shown: str,
    through_group: bool,
) -> None:
    if role.endswith("(custom)"):
        tenant.add_custom_role(role)
    admins = tenant.add_group("Tier 1", role_assignable=True)
    user = tenant.add_user("uma", OLD_PASSWORD, groups=[admins] if through_group else [])
    bystander = tenant.add_user("wes", OLD_PASSWORD)
    tenant.assign_role(admins if through_group else user.id, role, **how)
    assert tenant.roles == {}  # no activated directoryRole shows this holder
    assert adapter.get_user(user.id).protected
    assert {u.id: u.protected for u in adapter.list_users()} == {
        user.id: True,
        bystander.id: False,
    }
    with pytest.raises(PrivilegedAccount, match=re.escape(f"{role}")) as refused:
        adapter.set_password(user.id, NEW_PASSWORD, must_change=True, unlock=True)
    assert shown in refused.value.message
    assert tenant.patches_of(user.id) == []
    adapter.set_password(bystander.id, NEW_PASSWORD, must_change=True, unlock=True)


# -- guests, restricted administrative units, federated domains ---------------------------


@pytest.mark.parametrize(
    ("kind", "error", "reason"),
    [
        ("guest", "GuestAccount", "guest account"),
        ("restricted", "ManagementRestricted", "restricted-management administrative unit"),
        ("federated", "FederatedDomain", "connect the client's Active Directory"),
    ],
)
def test_guests_restricted_and_federated_users_are_refused_and_shown_protected(
    tenant: FakeEntra, adapter: EntraIdDirectory, kind: str, error: str, reason: str
) -> None:
    tenant.add_domain("fabrikam.example", federated=True)
    tenant.add_domain("northwind.example")
    user = tenant.add_user(
        "gil", OLD_PASSWORD, guest=kind == "guest",
        domain="fabrikam.example" if kind == "federated" else "northwind.example",
    )  # fmt: skip
    tenant.add_unit("Executives", members=[user.id], restricted=kind == "restricted")
    bystander = tenant.add_user("wes", OLD_PASSWORD, domain="northwind.example")
    tenant.add_unit("Sales", members=[bystander.id])  # an ordinary unit protects nobody

    shown = adapter.get_user(user.id)
    assert shown.protected and reason in (shown.protected_reason or "")
    listed = {u.id: u.protected_reason for u in adapter.list_users()}
    assert reason in (listed[user.id] or "") and listed[bystander.id] is None
    with pytest.raises(OperationRefused, match=reason) as refused:
        adapter.set_password(user.id, NEW_PASSWORD, must_change=True, unlock=True)
    assert type(refused.value).__name__ == error
    assert tenant.patches_of(user.id) == []
    adapter.set_password(bystander.id, NEW_PASSWORD, must_change=True, unlock=True)
