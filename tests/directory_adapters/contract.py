"""The contract every directory adapter keeps, as a reusable test suite.

An adapter's test module provides a ``probe`` fixture (a :class:`DirectoryProbe`
for the directory under test) and subclasses :class:`DirectoryContract`::

    class TestSandboxContract(DirectoryContract):
        pass

Directories with organisational units also keep :class:`OrganisationalUnitContract`,
with a probe that can make OUs (:class:`OuProbe`).

The probe creates what the tests need and observes the directory the way a user
would (by signing in), so the same tests run against the sandbox and a real
domain controller. Names are unique per test: a real directory is shared and is
not emptied between tests.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Literal, Protocol

import pytest

from directory_adapters import (
    CAPABILITIES,
    CAPABILITY_NAMES,
    LIST_GROUPS,
    LIST_OUS,
    LOCKOUT_QUERY,
    PASSWORD_POLICY,
    UNLOCK,
    ConfigurationError,
    DirectoryAdapter,
    DirectoryUser,
    OperationNotSupported,
    OperationRefused,
    PasswordPolicy,
    PasswordRejected,
    UserNotFound,
)

SignInOutcome = Literal["ok", "must_change", "locked", "bad"]

# Satisfy any sane policy (length >= 14, all four kinds) without containing a username.
OLD_PASSWORD = "Old-Passw0rd-kept!"
NEW_PASSWORD = "New-Passw0rd-given!"


class DirectoryProbe(Protocol):
    """What the contract needs from each directory beyond the adapter itself."""

    @property
    def adapter(self) -> DirectoryAdapter:
        """The adapter under test."""
        ...

    def create_user(
        self,
        username: str,
        password: str,
        *,
        email: str,
        mobile: str,
        groups: Sequence[str] = (),
        disabled: bool = False,
        protected: bool = False,
    ) -> DirectoryUser:
        """Create an enabled user (unless ``disabled``) who can sign in with ``password``.

        ``groups`` holds identifiers returned by :meth:`create_group`; ``protected``
        makes an account the gateway must refuse to manage (an administrator).
        """
        ...

    def create_group(self, name: str, member_of: Sequence[str] = ()) -> str:
        """Create a group inside ``member_of`` groups; return its identifier for
        ``list_users(group=...)``."""
        ...

    def sign_in(self, username: str, password: str) -> SignInOutcome:
        """Sign in as the user would: ``"ok"``, ``"must_change"``, ``"locked"`` or ``"bad"``
        (wrong password, or any other refusal)."""
        ...

    def lock(self, username: str) -> None:
        """Lock the account out by failed sign-ins."""
        ...


class OuProbe(DirectoryProbe, Protocol):
    """A probe for a directory with organisational units."""

    def create_ou(self, name: str, parent: str | None = None) -> str:
        """Create an OU (inside ``parent``); return what ``list_users(ou=...)`` takes."""
        ...

    def create_user_in(self, ou: str) -> DirectoryUser:
        """Create an enabled user with :data:`OLD_PASSWORD` in ``ou``."""
        ...


def unique(prefix: str) -> str:
    """A short unique name (fits sAMAccountName's 20 characters)."""
    return f"{prefix}{uuid.uuid4().hex[:10]}"


class DirectoryContract:
    """Behaviour every :class:`~directory_adapters.DirectoryAdapter` must show."""

    def make_user(
        self,
        probe: DirectoryProbe,
        *,
        groups: Sequence[str] = (),
        disabled: bool = False,
        protected: bool = False,
    ) -> DirectoryUser:
        """A fresh user with :data:`OLD_PASSWORD`."""
        username = unique("ct")
        return probe.create_user(
            username,
            OLD_PASSWORD,
            email=f"{username}@mail.example.test",
            mobile="+447700900" + str(uuid.uuid4().int % 1000).zfill(3),
            groups=groups,
            disabled=disabled,
            protected=protected,
        )

    def test_check_connection_succeeds(self, probe: DirectoryProbe) -> None:
        probe.adapter.check_connection()

    @pytest.mark.parametrize("attribute", ["username", "upn", "email", "id"])
    def test_find_user_by_each_identifier(self, probe: DirectoryProbe, attribute: str) -> None:
        user = self.make_user(probe)
        identifier = getattr(user, attribute)
        assert identifier is not None, f"every directory gives users a {attribute}"
        assert probe.adapter.find_user(identifier) == user

    @pytest.mark.parametrize("attribute", ["username", "upn", "email"])
    def test_find_user_ignores_case(self, probe: DirectoryProbe, attribute: str) -> None:
        user = self.make_user(probe)
        identifier = getattr(user, attribute)
        assert identifier is not None, f"every directory gives users a {attribute}"
        assert probe.adapter.find_user(identifier.upper()).id == user.id

    def test_found_user_carries_the_directory_attributes(self, probe: DirectoryProbe) -> None:
        user = self.make_user(probe)
        found = probe.adapter.find_user(user.username)
        assert found.email == user.email
        assert found.mobile == user.mobile
        assert found.display_name
        assert (found.disabled, found.protected) == (False, False)

    def test_get_user_returns_the_same_user(self, probe: DirectoryProbe) -> None:
        user = self.make_user(probe)
        assert probe.adapter.get_user(user.id) == user

    def test_find_unknown_user_raises_user_not_found(self, probe: DirectoryProbe) -> None:
        with pytest.raises(UserNotFound):
            probe.adapter.find_user(unique("nobody"))

    def test_get_unknown_id_raises_user_not_found(self, probe: DirectoryProbe) -> None:
        with pytest.raises(UserNotFound):
            probe.adapter.get_user(str(uuid.uuid4()))

    def test_list_users_of_a_group_includes_nested_group_members(
        self, probe: DirectoryProbe
    ) -> None:
        outer = probe.create_group(unique("go"))
        inner = probe.create_group(unique("gi"), member_of=[outer])
        direct = self.make_user(probe, groups=[outer])
        nested = self.make_user(probe, groups=[inner])
        outsider = self.make_user(probe)

        assert {u.id for u in probe.adapter.list_users(group=outer)} == {direct.id, nested.id}
        assert {u.id for u in probe.adapter.list_users(group=inner)} == {nested.id}
        assert outsider.id not in {u.id for u in probe.adapter.list_users(group=outer)}

    def test_list_users_without_a_filter_includes_everyone(self, probe: DirectoryProbe) -> None:
        group = probe.create_group(unique("g"))
        members = {self.make_user(probe, groups=[group]).id, self.make_user(probe).id}
        assert members <= {u.id for u in probe.adapter.list_users()}

    def test_set_password_lets_the_new_password_sign_in_and_not_the_old(
        self, probe: DirectoryProbe
    ) -> None:
        user = self.make_user(probe)
        probe.adapter.set_password(user.id, NEW_PASSWORD, must_change=False, unlock=False)
        assert probe.sign_in(user.username, NEW_PASSWORD) == "ok"
        assert probe.sign_in(user.username, OLD_PASSWORD) == "bad"

    def test_set_password_with_must_change_forces_a_change(self, probe: DirectoryProbe) -> None:
        user = self.make_user(probe)
        assert probe.sign_in(user.username, OLD_PASSWORD) == "ok"
        probe.adapter.set_password(user.id, NEW_PASSWORD, must_change=True, unlock=False)
        assert probe.sign_in(user.username, NEW_PASSWORD) == "must_change"

    def test_set_password_rejects_a_short_password_and_keeps_the_old_one(
        self, probe: DirectoryProbe
    ) -> None:
        policy = probe.adapter.password_policy()
        assert policy.min_length >= 2, "the contract runs with a real minimum length"
        user = self.make_user(probe)
        short = ("aB3$" * policy.min_length)[: policy.min_length - 1]
        with pytest.raises(PasswordRejected):
            probe.adapter.set_password(user.id, short, must_change=False, unlock=False)
        assert probe.sign_in(user.username, OLD_PASSWORD) == "ok"

    def test_set_password_rejects_a_password_of_one_kind_of_character(
        self, probe: DirectoryProbe
    ) -> None:
        assert probe.adapter.password_policy().complexity, "the contract runs with complexity on"
        user = self.make_user(probe)
        with pytest.raises(PasswordRejected):
            probe.adapter.set_password(
                user.id, "onlylowercaseletters", must_change=False, unlock=False
            )
        assert probe.sign_in(user.username, OLD_PASSWORD) == "ok"

    def test_set_password_rejects_a_password_containing_the_username(
        self, probe: DirectoryProbe
    ) -> None:
        assert probe.adapter.password_policy().complexity, "the contract runs with complexity on"
        user = self.make_user(probe)
        password = f"X9!{user.username.upper()}"
        with pytest.raises(PasswordRejected):
            probe.adapter.set_password(user.id, password, must_change=False, unlock=False)
        assert probe.sign_in(user.username, OLD_PASSWORD) == "ok"

    def test_a_new_user_is_not_locked_out(self, probe: DirectoryProbe) -> None:
        user = self.make_user(probe)
        state = probe.adapter.lockout_state(user.id)
        assert (state.locked, state.locked_at) == (False, None)
        assert user.id not in {u.id for u in probe.adapter.locked_out_users()}

    def test_a_lockout_is_reported_and_listed(self, probe: DirectoryProbe) -> None:
        user = self.make_user(probe)
        bystander = self.make_user(probe)
        probe.lock(user.username)

        state = probe.adapter.lockout_state(user.id)
        assert state.locked
        assert state.locked_at is not None
        assert state.locked_at.tzinfo is not None
        locked_ids = {u.id for u in probe.adapter.locked_out_users()}
        assert user.id in locked_ids
        assert bystander.id not in locked_ids
        assert probe.sign_in(user.username, OLD_PASSWORD) == "locked"

    def test_set_password_with_unlock_lets_a_locked_user_sign_in(
        self, probe: DirectoryProbe
    ) -> None:
        user = self.make_user(probe)
        probe.lock(user.username)
        probe.adapter.set_password(user.id, NEW_PASSWORD, must_change=False, unlock=True)
        assert not probe.adapter.lockout_state(user.id).locked
        assert user.id not in {u.id for u in probe.adapter.locked_out_users()}
        assert probe.sign_in(user.username, NEW_PASSWORD) == "ok"

    def test_unlock_keeps_the_password(self, probe: DirectoryProbe) -> None:
        user = self.make_user(probe)
        probe.lock(user.username)
        probe.adapter.unlock(user.id)
        assert not probe.adapter.lockout_state(user.id).locked
        assert probe.sign_in(user.username, OLD_PASSWORD) == "ok"

    def test_set_password_without_unlock_leaves_a_locked_account_locked(
        self, probe: DirectoryProbe
    ) -> None:
        user = self.make_user(probe)
        probe.lock(user.username)
        probe.adapter.set_password(user.id, NEW_PASSWORD, must_change=False, unlock=False)
        assert probe.adapter.lockout_state(user.id).locked
        assert probe.sign_in(user.username, NEW_PASSWORD) == "locked"
        # The password did change: it works once the account is unlocked.
        probe.adapter.unlock(user.id)
        assert probe.sign_in(user.username, NEW_PASSWORD) == "ok"

    def test_set_password_refuses_a_protected_account(self, probe: DirectoryProbe) -> None:
        user = self.make_user(probe, protected=True)
        assert probe.adapter.get_user(user.id).protected
        with pytest.raises(OperationRefused):
            probe.adapter.set_password(user.id, NEW_PASSWORD, must_change=False, unlock=True)
        assert probe.sign_in(user.username, OLD_PASSWORD) == "ok"

    def test_set_password_refuses_a_disabled_account(self, probe: DirectoryProbe) -> None:
        user = self.make_user(probe, disabled=True)
        assert probe.adapter.get_user(user.id).disabled
        with pytest.raises(OperationRefused):
            probe.adapter.set_password(user.id, NEW_PASSWORD, must_change=False, unlock=True)

    def test_set_password_on_an_unknown_id_raises_user_not_found(
        self, probe: DirectoryProbe
    ) -> None:
        with pytest.raises(UserNotFound):
            probe.adapter.set_password(
                str(uuid.uuid4()), NEW_PASSWORD, must_change=False, unlock=True
            )

    def test_password_policy_returns_sane_values(self, probe: DirectoryProbe) -> None:
        policy = probe.adapter.password_policy()
        assert 1 <= policy.min_length <= 128
        assert isinstance(policy.complexity, bool)
        # The contract's own passwords must satisfy it, or the other tests prove nothing.
        assert len(NEW_PASSWORD) >= policy.min_length

    # -- browsing for an import -----------------------------------------------------------

    def test_list_groups_finds_a_name_ignoring_case_sorted_by_name(
        self, probe: DirectoryProbe
    ) -> None:
        tag = unique("gs")
        for word in ("Zulu", "alpha", "Mike"):
            probe.create_group(f"{tag} {word}")
        probe.create_group(unique("other"))
        found = probe.adapter.list_groups(tag.upper())
        assert [group.name for group in found] == [f"{tag} alpha", f"{tag} Mike", f"{tag} Zulu"]
        assert {group.kind for group in found} == {"group"}

    def test_list_groups_matches_any_part_of_a_name(self, probe: DirectoryProbe) -> None:
        tag = unique("gw")
        probe.create_group(f"Team{tag}x")
        assert [group.name for group in probe.adapter.list_groups(tag[2:])] == [f"Team{tag}x"]

    def test_list_groups_stops_at_the_limit(self, probe: DirectoryProbe) -> None:
        tag = unique("gl")
        for word in ("c", "a", "b"):
            probe.create_group(f"{tag} {word}")
        found = probe.adapter.list_groups(tag, limit=2)
        assert [group.name for group in found] == [f"{tag} a", f"{tag} b"]
        assert probe.adapter.list_groups(tag, limit=0) == []

    def test_a_listed_group_is_what_list_users_and_count_users_take(
        self, probe: DirectoryProbe
    ) -> None:
        outer_name = unique("go")
        outer = probe.create_group(outer_name)
        inner = probe.create_group(unique("gi"), member_of=[outer])
        direct = self.make_user(probe, groups=[outer])
        nested = self.make_user(probe, groups=[inner])
        self.make_user(probe)

        [listed] = probe.adapter.list_groups(outer_name)
        assert listed.name == outer_name
        assert {u.id for u in probe.adapter.list_users(group=listed.id)} == {direct.id, nested.id}
        assert probe.adapter.count_users(group=listed.id) == 2
        assert probe.adapter.count_users(group=inner) == 1

    def test_count_users_without_a_filter_counts_everyone_listed(
        self, probe: DirectoryProbe
    ) -> None:
        self.make_user(probe)
        assert probe.adapter.count_users() == len(list(probe.adapter.list_users()))

    def test_count_users_of_an_unknown_group_raises_configuration_error(
        self, probe: DirectoryProbe
    ) -> None:
        with pytest.raises(ConfigurationError):
            probe.adapter.count_users(group=unique("nogroup"))

    def test_the_declared_capabilities_are_what_the_adapter_does(
        self, probe: DirectoryProbe
    ) -> None:
        capabilities = CAPABILITIES[probe.adapter.kind]
        assert capabilities <= CAPABILITY_NAMES
        assert LIST_GROUPS in capabilities, "every directory lists groups to import from"
        user = self.make_user(probe)
        probe.lock(user.username)
        if LOCKOUT_QUERY in capabilities:
            assert probe.adapter.lockout_state(user.id).locked
        if UNLOCK in capabilities:
            probe.adapter.unlock(user.id)
            assert not probe.adapter.lockout_state(user.id).locked
        else:
            with pytest.raises(OperationNotSupported):
                probe.adapter.unlock(user.id)
        if LIST_OUS in capabilities:
            assert isinstance(probe.adapter.list_ous(limit=1), list)
        else:
            with pytest.raises(OperationNotSupported):
                probe.adapter.list_ous()
        if PASSWORD_POLICY not in capabilities:  # a fixed rule, not the directory's own
            assert probe.adapter.password_policy() == PasswordPolicy()


class OrganisationalUnitContract:
    """What directories with organisational units show when an admin imports by OU."""

    def test_list_ous_finds_a_name_ignoring_case_sorted_by_name(self, probe: OuProbe) -> None:
        tag = unique("ou")
        parent = probe.create_ou(unique("P"))
        for word in ("Zeta", "beta", "Mu"):
            probe.create_user_in(probe.create_ou(f"{tag}{word}", parent))
        found = probe.adapter.list_ous(tag.upper())
        # Compared casefolded: the sandbox keeps OU paths casefolded.
        names = [ou.name.casefold() for ou in found]
        assert names == [f"{tag}beta", f"{tag}mu", f"{tag}zeta"]
        assert {ou.kind for ou in found} == {"ou"}
        assert [ou.name.casefold() for ou in probe.adapter.list_ous(tag, limit=2)] == names[:2]

    def test_a_listed_ou_is_what_list_users_and_count_users_take(self, probe: OuProbe) -> None:
        staff_name = unique("Staff")
        staff = probe.create_ou(staff_name)
        sales = probe.create_ou("Sales", staff)
        in_staff, in_sales = probe.create_user_in(staff), probe.create_user_in(sales)

        [listed] = probe.adapter.list_ous(staff_name)
        assert listed.path is not None
        assert staff_name.casefold() in listed.path.casefold()
        assert {u.id for u in probe.adapter.list_users(ou=listed.id)} == {in_staff.id, in_sales.id}
        assert probe.adapter.count_users(ou=listed.id) == 2
        assert probe.adapter.count_users(ou=sales) == 1
