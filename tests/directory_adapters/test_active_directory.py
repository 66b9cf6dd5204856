"""The Active Directory adapter against a real Samba AD domain controller: the contract
every directory keeps, then what only Active Directory does: identifiers and scopes,
paging over more than a thousand users, must-change (773) and lockout (775), protected
accounts and a delegated service account. Connections, TLS, failover, outages and the
diagnosis are in ``test_active_directory_connection.py``.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable

import pytest

from directory_adapters import (
    ConfigurationError,
    OperationRefused,
    PasswordRejected,
    PermissionDenied,
    UserNotFound,
)
from directory_adapters.active_directory import ActiveDirectory

from .contract import (
    NEW_PASSWORD,
    OLD_PASSWORD,
    DirectoryContract,
    OrganisationalUnitContract,
    unique,
)
from .samba import Delegation, Person, SambaDC, SambaProbe, data_code

PAGING_USERS = 1_100


@pytest.fixture(scope="session")
def contract_ou(samba_dc: SambaDC) -> str:
    return samba_dc.add_ou("Contract")


@pytest.fixture
def probe(samba_dc: SambaDC, directory: ActiveDirectory, contract_ou: str) -> SambaProbe:
    return SambaProbe(samba_dc, directory, contract_ou)


class TestActiveDirectoryContract(DirectoryContract, OrganisationalUnitContract):
    """Samba AD keeps the contract every directory keeps, OUs included."""


# -- identifiers, scopes, groups, OUs --------------------------------------------------------


def test_find_user_by_domain_and_name(
    directory: ActiveDirectory, samba_dc: SambaDC, person: Callable[..., Person]
) -> None:
    alice = person()
    assert directory.find_user(f"{samba_dc.domain}\\{alice.username}").id == alice.id


def test_user_attribute_chooses_what_a_user_is_known_by(
    connect: Callable[..., ActiveDirectory], person: Callable[..., Person]
) -> None:
    alice = person(mail="alice.liddell@mail.example.test")
    by_mail = connect(user_attribute="mail").find_user(alice.username)
    assert by_mail.username == "alice.liddell@mail.example.test"
    by_upn = connect(user_attribute="userPrincipalName").get_user(alice.id)
    assert by_upn.username == f"{alice.username}@example.test"


def test_an_email_shared_by_two_users_is_ambiguous(
    directory: ActiveDirectory, person: Callable[..., Person]
) -> None:
    shared = f"{unique('team')}@mail.example.test"
    person(mail=shared)
    person(mail=shared)
    with pytest.raises(UserNotFound, match="ambiguous"):
        directory.find_user(shared)


def test_users_outside_the_scopes_are_not_found(
    samba_dc: SambaDC, connect: Callable[..., ActiveDirectory], person: Callable[..., Person]
) -> None:
    inside_ou = samba_dc.add_ou(unique("In"))
    inside, outside = person(ou=inside_ou), person()
    scoped = connect(scopes=[inside_ou])
    assert scoped.find_user(inside.username).id == inside.id
    with pytest.raises(UserNotFound):
        scoped.find_user(outside.username)
    with pytest.raises(UserNotFound):
        scoped.get_user(outside.id)
    with pytest.raises(UserNotFound):
        scoped.set_password(outside.id, NEW_PASSWORD, must_change=False, unlock=True)
    assert samba_dc.sign_in(outside.username, OLD_PASSWORD) == "ok"
    assert {u.id for u in scoped.list_users()} == {inside.id}


def test_a_group_scope_includes_nested_members(
    samba_dc: SambaDC,
    people: str,
    connect: Callable[..., ActiveDirectory],
    person: Callable[..., Person],
) -> None:
    outer = samba_dc.add_group(unique("go"), people)
    inner = samba_dc.add_group(unique("gi"), people, member_of=[outer])
    direct, nested, outsider = person(), person(), person()
    samba_dc.add_member(outer, direct.dn)
    samba_dc.add_member(inner, nested.dn)
    scoped = connect(scopes=[outer])
    assert {u.id for u in scoped.list_users()} == {direct.id, nested.id}
    assert scoped.find_user(nested.username).id == nested.id
    with pytest.raises(UserNotFound):
        scoped.find_user(outsider.username)
    assert {u.id for u in scoped.list_users(group=inner.split(",")[0][3:])} == {nested.id}


def test_list_users_of_an_ou_covers_its_sub_ous_only(
    samba_dc: SambaDC, directory: ActiveDirectory, person: Callable[..., Person]
) -> None:
    staff = samba_dc.add_ou(unique("Staff"))
    sales = samba_dc.add_ou("Sales", staff)
    sibling = samba_dc.add_ou(unique("Staffing"))
    in_staff, in_sales, in_sibling = person(ou=staff), person(ou=sales), person(ou=sibling)
    assert {u.id for u in directory.list_users(ou=staff)} == {in_staff.id, in_sales.id}
    assert {u.id for u in directory.list_users(ou=sales)} == {in_sales.id}
    assert in_sibling.id not in {u.id for u in directory.list_users(ou=staff)}


def test_list_users_carries_the_directory_attributes(
    samba_dc: SambaDC, directory: ActiveDirectory, person: Callable[..., Person]
) -> None:
    ou = samba_dc.add_ou(unique("Attrs"))
    alice = person(ou=ou, mail="a@mail.example.test", mobile="+31612345678", displayName="Alice L")
    off = samba_dc.add_user(unique("off"), ou, OLD_PASSWORD, disabled=True)
    users = {u.id: u for u in directory.list_users(ou=ou)}
    found = users[alice.id]
    assert (found.username, found.display_name) == (alice.username, "Alice L")
    assert (found.email, found.mobile) == ("a@mail.example.test", "+31612345678")
    assert found.upn == f"{alice.username}@example.test"
    assert (found.disabled, found.protected) == (False, False)
    assert users[samba_dc.guid(off)].disabled


def test_unknown_groups_and_ous_are_configuration_errors(directory: ActiveDirectory) -> None:
    with pytest.raises(ConfigurationError):
        directory.list_users(group="no-such-group")
    with pytest.raises(ConfigurationError):
        directory.list_users(group="CN=Nope,DC=example,DC=test")
    with pytest.raises(ConfigurationError):
        directory.list_users(ou="OU=Nope,DC=example,DC=test")


@pytest.fixture(scope="session")
def paging(samba_dc: SambaDC) -> tuple[str, str]:
    """An OU and a group with more users than one page (created on one connection)."""
    ou = samba_dc.add_ou("Paging")
    group = samba_dc.add_group("paging-all", ou)
    members = [samba_dc.add_user(f"page{i:04d}", ou) for i in range(PAGING_USERS)]
    inner = samba_dc.add_group("paging-inner", ou, member_of=[group])
    for start in range(0, PAGING_USERS, 500):
        samba_dc.admin.modify(group, {"member": [("MODIFY_ADD", members[start : start + 500])]})
        samba_dc.ok("add members")
    samba_dc.add_member(inner, samba_dc.add_user("page-nested", ou))
    return ou, group


@pytest.mark.parametrize("page_size", [500, 1000])
def test_list_users_follows_the_pages_past_a_thousand_users(
    connect: Callable[..., ActiveDirectory], paging: tuple[str, str], page_size: int
) -> None:
    ou, group = paging
    adapter = connect(page_size=page_size)
    in_ou = list(adapter.list_users(ou=ou))
    assert len(in_ou) == PAGING_USERS + 1
    assert len({u.id for u in in_ou}) == PAGING_USERS + 1
    members = {u.username for u in adapter.list_users(group=group)}
    assert len(members) == PAGING_USERS + 1
    assert "page-nested" in members and "page0999" in members and "page1099" in members


# -- passwords -----------------------------------------------------------------------------


def test_must_change_refuses_the_bind_with_773_until_the_user_changes_it(
    samba_dc: SambaDC, directory: ActiveDirectory, person: Callable[..., Person]
) -> None:
    alice = person()
    directory.set_password(alice.id, NEW_PASSWORD, must_change=True, unlock=True)
    ok, result = samba_dc.bind(alice.dn, NEW_PASSWORD)
    assert not ok and result["result"] == 49 and data_code(result["message"]) == "773"
    assert samba_dc.sign_in(alice.username, OLD_PASSWORD) == "bad"
    changed = samba_dc.change_password(alice.username, NEW_PASSWORD, "Mine!Own-2026x")
    assert changed["result"] == 0, changed
    assert samba_dc.sign_in(alice.username, "Mine!Own-2026x") == "ok"
    assert samba_dc.sign_in(alice.username, NEW_PASSWORD) == "bad"


@pytest.mark.parametrize(
    ("password", "reason"),
    [
        ("aB3$x", "too short"),
        ("alllowercase12", "complexity"),
        ("Liddell!2026x", "part of the user's full name"),
    ],
)
def test_a_refused_password_says_why_and_never_quotes_it(
    directory: ActiveDirectory, person: Callable[..., Person], password: str, reason: str
) -> None:
    alice = person(displayName="Alice Liddell")
    with pytest.raises(PasswordRejected, match=reason) as refused:
        directory.set_password(alice.id, password, must_change=False, unlock=False)
    assert refused.value.permanent
    assert password not in str(refused.value) and password not in repr(refused.value.args)


def test_three_bad_binds_lock_with_775_listed_then_a_reset_unlocks(
    samba_dc: SambaDC, directory: ActiveDirectory, person: Callable[..., Person]
) -> None:
    alice, bob = person(), person()
    before = time.time()
    codes = [data_code(samba_dc.bind(alice.dn, f"Wrong!{i}xx")[1]["message"]) for i in range(3)]
    assert codes == ["52e", "52e", "52e"]
    ok, result = samba_dc.bind(alice.dn, OLD_PASSWORD)
    assert not ok and data_code(result["message"]) == "775"
    state = directory.lockout_state(alice.id)
    assert state.locked and state.locked_at is not None
    assert abs(state.locked_at.timestamp() - before) < 60
    locked = {u.id for u in directory.locked_out_users()}
    assert alice.id in locked and bob.id not in locked
    directory.set_password(alice.id, NEW_PASSWORD, must_change=False, unlock=True)
    assert samba_dc.sign_in(alice.username, NEW_PASSWORD) == "ok"
    assert alice.id not in {u.id for u in directory.locked_out_users()}


def test_an_expired_lockout_is_not_listed_although_lockout_time_stays(
    samba_dc: SambaDC, directory: ActiveDirectory, person: Callable[..., Person]
) -> None:
    alice = person()
    original = samba_dc.read(samba_dc.base_dn, "lockoutDuration", "lockOutObservationWindow")
    samba_dc.set(
        samba_dc.base_dn, lockoutDuration="-20000000", lockOutObservationWindow="-20000000"
    )
    try:
        for attempt in range(3):
            samba_dc.sign_in(alice.username, f"Wrong!{attempt}xx")
        assert directory.lockout_state(alice.id).locked
        assert alice.id in {u.id for u in directory.locked_out_users()}
        deadline = time.monotonic() + 15  # 2 s, as Samba rounds it (about 3 s seen)
        while directory.lockout_state(alice.id).locked and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not directory.lockout_state(alice.id).locked
        assert int(samba_dc.read(alice.dn, "lockoutTime")["lockoutTime"][0]) > 0
        assert alice.id not in {u.id for u in directory.locked_out_users()}
    finally:
        samba_dc.set(
            samba_dc.base_dn,
            lockoutDuration=original["lockoutDuration"][0],
            lockOutObservationWindow=original["lockOutObservationWindow"][0],
        )


# -- protected and disabled accounts ---------------------------------------------------------


def test_an_account_with_admin_count_is_protected(
    samba_dc: SambaDC, directory: ActiveDirectory, person: Callable[..., Person]
) -> None:
    alice = person()
    samba_dc.set(alice.dn, adminCount="1")
    assert directory.get_user(alice.id).protected
    with pytest.raises(OperationRefused, match="protected"):
        directory.set_password(alice.id, NEW_PASSWORD, must_change=True, unlock=True)
    with pytest.raises(OperationRefused, match="protected"):
        directory.unlock(alice.id)
    assert samba_dc.sign_in(alice.username, OLD_PASSWORD) == "ok"


def test_a_member_of_a_group_nested_in_domain_admins_is_protected(
    samba_dc: SambaDC,
    people: str,
    connect: Callable[..., ActiveDirectory],
    person: Callable[..., Person],
) -> None:
    helpdesk = samba_dc.add_group(unique("tier0"), people)
    samba_dc.add_member(f"CN=Domain Admins,CN=Users,{samba_dc.base_dn}", helpdesk)
    alice = person()
    samba_dc.add_member(helpdesk, alice.dn)
    adapter = connect()  # learns the admin groups now, nested one included
    assert adapter.find_user(alice.username).protected
    assert alice.id in {u.id for u in adapter.list_users() if u.protected}
    with pytest.raises(OperationRefused):
        adapter.set_password(alice.id, NEW_PASSWORD, must_change=True, unlock=True)


def test_the_builtin_administrator_is_protected(
    samba_dc: SambaDC, directory: ActiveDirectory
) -> None:
    admin = directory.find_user("Administrator")
    assert admin.protected
    with pytest.raises(OperationRefused):
        directory.set_password(admin.id, NEW_PASSWORD, must_change=False, unlock=True)


def test_protect_admins_off_lets_the_gateway_reset_a_protected_account(
    samba_dc: SambaDC, connect: Callable[..., ActiveDirectory], person: Callable[..., Person]
) -> None:
    alice = person()
    samba_dc.set(alice.dn, adminCount="1")
    connect(protect_admins=False).set_password(
        alice.id, NEW_PASSWORD, must_change=False, unlock=True
    )
    assert samba_dc.sign_in(alice.username, NEW_PASSWORD) == "ok"


def test_a_disabled_account_is_not_unlocked(
    samba_dc: SambaDC, people: str, directory: ActiveDirectory
) -> None:
    dn = samba_dc.add_user(unique("off"), people, OLD_PASSWORD, disabled=True)
    with pytest.raises(OperationRefused, match="disabled"):
        directory.unlock(samba_dc.guid(dn))


def test_a_delegated_account_resets_and_unlocks_users_of_its_ou(
    samba_dc: SambaDC,
    delegated: ActiveDirectory,
    delegation: Delegation,
    person: Callable[..., Person],
) -> None:
    alice = person(ou=delegation.ou)
    SambaProbe(samba_dc, delegated, delegation.ou).lock(alice.username)
    assert alice.id in {u.id for u in delegated.locked_out_users()}
    delegated.set_password(alice.id, NEW_PASSWORD, must_change=True, unlock=True)
    assert samba_dc.sign_in(alice.username, NEW_PASSWORD) == "must_change"
    bob = person(ou=delegation.ou)
    SambaProbe(samba_dc, delegated, delegation.ou).lock(bob.username)
    delegated.unlock(bob.id)
    assert samba_dc.sign_in(bob.username, OLD_PASSWORD) == "ok"


def test_a_delegated_account_is_refused_elsewhere_and_told_which_right_is_missing(
    samba_dc: SambaDC,
    delegated: ActiveDirectory,
    delegation: Delegation,
    person: Callable[..., Person],
) -> None:
    alice = person(ou=delegation.elsewhere)
    with pytest.raises(PermissionDenied) as denied:
        delegated.set_password(alice.id, NEW_PASSWORD, must_change=True, unlock=True)
    assert denied.value.permanent
    assert denied.value.missing_right is not None
    assert "Reset Password" in denied.value.missing_right
    assert NEW_PASSWORD not in str(denied.value)
    with pytest.raises(PermissionDenied) as denied_unlock:
        delegated.unlock(alice.id)
    assert denied_unlock.value.missing_right == "Write lockoutTime"
    assert samba_dc.sign_in(alice.username, OLD_PASSWORD) == "ok"


def test_a_missing_write_on_lockout_time_is_named(
    samba_dc: SambaDC,
    delegated: ActiveDirectory,
    delegation: Delegation,
    person: Callable[..., Person],
) -> None:
    alice = person(ou=delegation.partial)
    with pytest.raises(PermissionDenied) as denied:
        delegated.set_password(alice.id, NEW_PASSWORD, must_change=True, unlock=True)
    assert denied.value.missing_right == "Write lockoutTime"
    delegated.set_password(alice.id, NEW_PASSWORD, must_change=True, unlock=False)
    assert samba_dc.sign_in(alice.username, NEW_PASSWORD) == "must_change"


def test_a_user_id_that_is_not_a_guid_is_not_found(directory: ActiveDirectory) -> None:
    with pytest.raises(UserNotFound):
        directory.get_user("not-a-guid")
    with pytest.raises(UserNotFound):
        directory.unlock(str(uuid.uuid4()))
