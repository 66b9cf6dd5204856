"""The Active Directory adapter: the operations of the directory interface, over ldap3.

Every request goes through :class:`~.connection.Ldap` (one bound connection per adapter,
reused) and every LDAP failure through :mod:`.ldap_errors`.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Iterable, Iterator, Mapping
from datetime import UTC, datetime
from typing import Any

from ldap3 import MODIFY_REPLACE
from ldap3.utils.conv import escape_filter_chars

from ..base import (
    DirectoryGroup,
    DirectoryUser,
    Lockout,
    LockoutState,
    PasswordExpiry,
    PasswordPolicy,
)
from ..errors import ConfigurationError, OperationRefused, PasswordRejected, UserNotFound
from .browse import browse, search_bases
from .connection import Ldap, Session
from .facts import DomainFacts, load_facts
from .ldap_errors import RESET_PASSWORD, RIGHT_FOR_ATTRIBUTE, result_error, scrub
from .settings import ADSettings
from .values import (
    BIT_AND,
    DOMAIN_PASSWORD_COMPLEX,
    EXPIRY_COMPUTED,
    IN_CHAIN,
    NEVER_EXPIRES,
    UF_ACCOUNTDISABLE,
    UF_DONT_EXPIRE_PASSWD,
    UF_LOCKOUT,
    USER_ATTRIBUTES,
    USER_FILTER,
    USER_READ,
    Entry,
    encode_password,
    filetime,
    filetime_ticks,
    name_in_password,
    norm_dn,
)

log = logging.getLogger(__name__)

# What the scope check of a user reads (DomainFacts.in_scope): enough to count users.
_SCOPE_READ = ("objectClass", "memberOf")
# Not a password: not a quoted UTF-16 string. DCs refuse it whatever their policy.
_NOT_A_PASSWORD = b"probe"


def lacking_rights(session: Session, dn: str, attributes: Iterable[str]) -> list[str]:
    """The rights the service account lacks to write ``attributes`` of ``dn`` (empty:
    none). Changes nothing.

    Write access to pwdLastSet and lockoutTime is read from ``allowedAttributesEffective``.
    Reset Password has no such attribute, so it is probed with a reset to a value that is
    not a password at all: AD and Samba check the right first and then refuse the value
    whatever their policy, so 50 insufficientAccessRights means the right is missing,
    anything else that it is there, and the password never changes.
    """
    wanted = list(attributes)
    missing: list[str] = []
    if "unicodePwd" in wanted:
        result = session.modify(dn, {"unicodePwd": [(MODIFY_REPLACE, [_NOT_A_PASSWORD])]})
        if result.get("result") == 50:
            missing.append(RESET_PASSWORD)
        elif result.get("result") == 0:  # never seen on AD or Samba: stop loudly if it is
            raise OperationRefused(f"the DC accepted a malformed password for {dn}")
    entry = session.read(dn, ["allowedAttributesEffective"])
    writable = {name.casefold() for name in entry.texts("allowedAttributesEffective")}
    missing += [
        right
        for attribute, right in RIGHT_FOR_ATTRIBUTE.items()
        if attribute in wanted and attribute.casefold() not in writable
    ]
    return missing


class ActiveDirectory:
    """A client's Active Directory. Thread-safe; one bound connection, reused."""

    kind: str = "active_directory"

    def __init__(self, settings: ADSettings) -> None:
        self.settings = settings
        self.ldap = Ldap(settings)
        self._facts: DomainFacts | None = None

    @classmethod
    def from_settings(cls, settings: Mapping[str, Any]) -> ActiveDirectory:
        """Build from a client's settings (keys in :mod:`directory_adapters.active_directory`)."""
        return cls(ADSettings.parse(settings))

    @property
    def binds(self) -> int:
        """How many times the service account has bound (a measure of connection reuse)."""
        return self.ldap.binds

    def close(self) -> None:
        """Unbind; the next operation binds again."""
        self.ldap.close()

    # -- what every operation needs ----------------------------------------------------------

    def facts(self, session: Session) -> DomainFacts:
        """The domain's facts, read again after ``cache_seconds``. Only called inside
        ``self.ldap.run``, whose lock serialises it."""
        facts = self._facts
        if facts is None or time.monotonic() - facts.loaded_at >= self.settings.cache_seconds:
            facts = self._facts = load_facts(session, self.settings)
        return facts

    def _user(self, entry: Entry, facts: DomainFacts) -> DirectoryUser:
        username = entry.text(self.settings.user_attribute) or entry.text("sAMAccountName") or ""
        return DirectoryUser(
            id=entry.guid,
            username=username,
            display_name=entry.text("displayName") or entry.text("cn") or username,
            email=entry.text("mail"),
            upn=entry.text("userPrincipalName"),
            mobile=entry.text("mobile"),
            disabled=bool(entry.number("userAccountControl") & UF_ACCOUNTDISABLE),
            protected=facts.protected(entry),
        )

    def _entry_by_id(self, session: Session, user_id: str) -> tuple[Entry, DomainFacts]:
        """The user whose objectGUID is ``user_id``, with ``tokenGroups``, in scope."""
        try:
            guid = uuid.UUID(user_id.strip().strip("{}"))
        except ValueError:
            raise UserNotFound("not a user id (an objectGUID)") from None
        facts = self.facts(session)
        entry = session.read(f"<GUID={guid}>", [*USER_READ, "tokenGroups"], not_found=UserNotFound)
        if not facts.in_scope(entry):
            raise UserNotFound(f"no user with id {guid} in this client's scope")
        return entry, facts

    # -- reading -----------------------------------------------------------------------------

    def check_connection(self) -> None:
        """Bind, then read the domain, the base DN and every scope; raise what is wrong."""
        self._facts = None
        self.ldap.run(self.facts)

    def find_user(self, identifier: str) -> DirectoryUser:
        """Find by objectGUID, sAMAccountName (also ``DOMAIN\\name``), UPN or mail,
        ignoring case. When different users match different attributes, the configured
        ``user_attribute`` wins; two users sharing a value is ``UserNotFound``."""
        value = identifier.strip()
        try:
            uuid.UUID(value.strip("{}"))
        except ValueError:
            pass
        else:
            return self.get_user(value)
        value = value.rsplit("\\", 1)[-1]
        if not value:
            raise UserNotFound("empty identifier")
        escaped = escape_filter_chars(value)
        matches = "".join(f"({name}={escaped})" for name in USER_ATTRIBUTES)

        def find(session: Session) -> DirectoryUser:
            facts = self.facts(session)
            entries = session.search(
                self.settings.base_dn,
                f"(&{USER_FILTER}(|{matches}))",
                USER_READ,
                size_limit=50,
            )
            entries = [entry for entry in entries if facts.in_scope(entry)]
            for name in dict.fromkeys([self.settings.user_attribute, *USER_ATTRIBUTES]):
                hits = [e for e in entries if (e.text(name) or "").casefold() == value.casefold()]
                if len(hits) == 1:
                    return self._user(hits[0], facts)
                if hits:
                    raise UserNotFound(f"identifier is ambiguous: {len(hits)} users match")
            raise UserNotFound("no user with that identifier in this client's scope")

        return self.ldap.run(find)

    def get_user(self, user_id: str) -> DirectoryUser:
        """Fetch by objectGUID (its string form)."""

        def get(session: Session) -> DirectoryUser:
            entry, facts = self._entry_by_id(session, user_id)
            return self._user(entry, facts)

        return self.ldap.run(get)

    @staticmethod
    def _group_dn(session: Session, group: str, domain_dn: str) -> str:
        if "=" in group:
            entry = session.read(group, ["objectClass"])
            if "group" not in entry.classes():
                raise ConfigurationError(f"{group} is not a group")
            return entry.dn
        name = escape_filter_chars(group)
        found = session.search(
            domain_dn, f"(&(objectClass=group)(|(sAMAccountName={name})(cn={name})))", ["cn"]
        )
        if len(found) != 1:
            raise ConfigurationError(f"no single group named {group!r} in the directory")
        return found[0].dn

    def _user_entries(
        self,
        session: Session,
        facts: DomainFacts,
        group: str | None,
        ou: str | None,
        attributes: Iterable[str],
    ) -> list[Entry]:
        """The users in scope of ``group`` and/or ``ou``, each once (scopes may overlap)."""
        search_filter = USER_FILTER
        if group is not None:
            dn = escape_filter_chars(self._group_dn(session, group, facts.domain_dn))
            search_filter = f"(&{USER_FILTER}(memberOf:{IN_CHAIN}:={dn}))"
        if ou is not None:
            bases = [session.read(ou, ["objectClass"]).dn]
        else:
            bases = search_bases(self.settings, facts)  # only the OUs in scope, if all are OUs
        entries: dict[str, Entry] = {}
        for base in bases:
            for entry in session.paged(base, search_filter, attributes):
                if facts.in_scope(entry):
                    entries.setdefault(norm_dn(entry.dn), entry)
        return list(entries.values())

    def list_users(
        self, *, group: str | None = None, ou: str | None = None
    ) -> Iterator[DirectoryUser]:
        """Users of ``group`` (a DN or a group's name; nested membership, rule
        1.2.840.113556.1.4.1941) and/or under ``ou`` (a DN), within the client's scopes;
        everyone in scope when neither is given.

        Paged; the search runs now, not when the iterator is consumed. An unknown group
        or OU raises ``ConfigurationError``.
        """

        def collect(session: Session) -> list[DirectoryUser]:
            facts = self.facts(session)
            entries = self._user_entries(session, facts, group, ou, USER_READ)
            users = [self._user(entry, facts) for entry in entries]
            return sorted(users, key=lambda user: user.username.casefold())

        return iter(self.ldap.run(collect))

    def count_users(self, *, group: str | None = None, ou: str | None = None) -> int:
        """How many users ``list_users`` gives for the same ``group`` and ``ou``: the same
        paged search, reading only what the scope check needs."""

        def count(session: Session) -> int:
            facts = self.facts(session)
            return len(self._user_entries(session, facts, group, ou, _SCOPE_READ))

        return self.ldap.run(count)

    def list_groups(self, search: str = "", *, limit: int = 50) -> list[DirectoryGroup]:
        """Groups in scope whose name (cn) contains ``search``, ignoring case, by name; the
        id is the group's DN."""
        return self.ldap.run(
            lambda session: browse(
                session, self.settings, self.facts(session), "group", search, limit
            )
        )

    def list_ous(self, search: str = "", *, limit: int = 50) -> list[DirectoryGroup]:
        """OUs in scope whose name contains ``search``, ignoring case, by name; the id is
        the OU's DN. Containers that are not OUs (``CN=Users``) are not listed."""
        return self.ldap.run(
            lambda session: browse(session, self.settings, self.facts(session), "ou", search, limit)
        )

    # -- changing ----------------------------------------------------------------------------

    def _refuse_unmanageable(self, entry: Entry, facts: DomainFacts, action: str) -> None:
        if self.settings.protect_admins and facts.protected(entry):
            raise OperationRefused(
                f"refusing to {action} a protected account ({entry.dn}): an administrator "
                "or a member of a built-in admin group; manage it by hand"
            )
        if entry.number("userAccountControl") & UF_ACCOUNTDISABLE:
            raise OperationRefused(f"refusing to {action} a disabled account ({entry.dn})")

    def _modify(
        self, session: Session, entry: Entry, changes: dict[str, Any], doing: str, *secret: str
    ) -> None:
        result = session.modify(entry.dn, changes)
        if result.get("result") == 0:
            return
        result["message"] = scrub(
            str(result.get("message") or ""), (*secret, self.settings.bind_password)
        )
        right = None
        if result.get("result") == 50:
            right = " and ".join(lacking_rights(session, entry.dn, changes)) or None
        raise result_error(result, doing=f"{doing} {entry.dn}", missing_right=right)

    def set_password(self, user_id: str, password: str, *, must_change: bool, unlock: bool) -> None:
        """An administrator's reset: one modify replacing ``unicodePwd``, plus
        ``pwdLastSet=0`` when ``must_change`` and ``lockoutTime=0`` when ``unlock``.

        Only over TLS. ``PasswordRejected`` when the domain's policy refuses the password,
        ``OperationRefused`` for protected and disabled accounts, ``PermissionDenied``
        naming the missing right.
        """
        if not password:
            raise PasswordRejected("the new password is empty")

        def reset(session: Session) -> None:
            entry, facts = self._entry_by_id(session, user_id)
            self._refuse_unmanageable(entry, facts, "reset the password of")
            if facts.complexity and (
                problem := name_in_password(
                    password, entry.text("sAMAccountName") or "", entry.text("displayName") or ""
                )
            ):
                raise PasswordRejected(f"the domain's complexity rule refuses it: {problem}")
            if not session.encrypted:
                raise ConfigurationError("refusing to send a password over an unencrypted link")
            if must_change and entry.number("userAccountControl") & UF_DONT_EXPIRE_PASSWD:
                log.warning("%s has 'password never expires': AD ignores 'must change'", entry.dn)
            changes: dict[str, Any] = {
                "unicodePwd": [(MODIFY_REPLACE, [encode_password(password)])]
            }
            if must_change:
                changes["pwdLastSet"] = [(MODIFY_REPLACE, ["0"])]
            if unlock:
                changes["lockoutTime"] = [(MODIFY_REPLACE, ["0"])]
            self._modify(session, entry, changes, "resetting the password of", password)

        self.ldap.run(reset)

    def unlock(self, user_id: str) -> None:
        """Clear a lockout (``lockoutTime=0``) without touching the password."""

        def clear(session: Session) -> None:
            entry, facts = self._entry_by_id(session, user_id)
            self._refuse_unmanageable(entry, facts, "unlock")
            self._modify(session, entry, {"lockoutTime": [(MODIFY_REPLACE, ["0"])]}, "unlocking")

        self.ldap.run(clear)

    # -- lockouts and policy -----------------------------------------------------------------

    @staticmethod
    def _locked_at(entry: Entry) -> datetime | None:
        """When a locked account locked, ``None`` if it is not locked now."""
        if not entry.number("msDS-User-Account-Control-Computed") & UF_LOCKOUT:
            return None
        ticks = entry.number("lockoutTime")
        return filetime(ticks) if ticks > 0 else datetime.now(UTC)

    def lockout_state(self, user_id: str) -> LockoutState:
        """Locked now (bit 0x10 of ``msDS-User-Account-Control-Computed``), and since when."""

        def state(session: Session) -> LockoutState:
            entry, _ = self._entry_by_id(session, user_id)
            locked_at = self._locked_at(entry)
            return LockoutState(locked=locked_at is not None, locked_at=locked_at)

        return self.ldap.run(state)

    def locked_out_users(self) -> list[DirectoryUser]:
        """Every locked-out user in scope, in one (paged) search (see :meth:`lockouts`)."""
        return [lockout.user for lockout in self.lockouts()]

    def lockouts(self, since: datetime | None = None) -> list[Lockout]:
        """Every locked-out user in scope with when the lockout began, in one (paged)
        search: ``lockoutTime>=1``, then the computed lockout bit, since ``lockoutTime``
        stays set after a lockout expires. The DC computes that bit with the lockout
        duration that applies to the user: a fine-grained password policy's
        (``msDS-LockoutDuration`` of its ``msDS-ResultantPSO``) where one applies, the
        domain's otherwise. ``since`` is not needed: the directory keeps the state."""

        def locked(session: Session) -> list[Lockout]:
            facts = self.facts(session)
            search_filter = f"(&{USER_FILTER}(lockoutTime>=1))"
            found: list[Lockout] = []
            for entry in session.paged(self.settings.base_dn, search_filter, USER_READ):
                locked_at = self._locked_at(entry)
                if locked_at is not None and facts.in_scope(entry):
                    found.append(Lockout(self._user(entry, facts), locked_at))
            return found

        return self.ldap.run(locked)

    def password_policy(self) -> PasswordPolicy:
        """The domain's policy: ``minPwdLength`` and the complexity bit of ``pwdProperties``."""

        def policy(session: Session) -> PasswordPolicy:
            domain_dn = self.facts(session).domain_dn
            domain = session.read(domain_dn, ["minPwdLength", "pwdProperties"])
            return PasswordPolicy(
                min_length=max(1, domain.number("minPwdLength")),
                complexity=bool(domain.number("pwdProperties") & DOMAIN_PASSWORD_COMPLEX),
            )

        return self.ldap.run(policy)

    # -- password expiry ---------------------------------------------------------------------

    def password_expiries(self, until: datetime) -> list[PasswordExpiry]:
        """Users in scope whose password expires after now and before ``until``, soonest
        first: one paged search per search base (one, unless the scopes are several OUs).

        The DC computes each expiry (``msDS-UserPasswordExpiryTimeComputed``) from
        ``pwdLastSet``, the domain's ``maxPwdAge`` and the fine-grained policy (PSO) that
        applies to the user, so the adapter reads no policy itself. The filter leaves out
        disabled accounts, "password never expires" (0x10000) and passwords that must be
        changed at next logon (``pwdLastSet=0``); a computed 0 or 0x7FFFFFFFFFFFFFFF
        (a domain or PSO whose passwords never expire) is left out too.
        """
        earliest, latest = filetime_ticks(datetime.now(UTC)), filetime_ticks(until)
        search_filter = (
            f"(&{USER_FILTER}(pwdLastSet>=1)"
            f"(!(userAccountControl:{BIT_AND}:={UF_ACCOUNTDISABLE}))"
            f"(!(userAccountControl:{BIT_AND}:={UF_DONT_EXPIRE_PASSWD})))"
        )

        def expiring(session: Session) -> list[PasswordExpiry]:
            facts = self.facts(session)
            found: dict[str, PasswordExpiry] = {}
            for base in search_bases(self.settings, facts):
                for entry in session.paged(base, search_filter, (*USER_READ, EXPIRY_COMPUTED)):
                    ticks = entry.number(EXPIRY_COMPUTED)
                    if ticks == NEVER_EXPIRES or not earliest < ticks < latest:
                        continue
                    if facts.in_scope(entry):
                        expiry = PasswordExpiry(self._user(entry, facts), filetime(ticks))
                        found.setdefault(norm_dn(entry.dn), expiry)
            return sorted(found.values(), key=lambda e: (e.expires_at, e.user.username.casefold()))

        return self.ldap.run(expiring)
