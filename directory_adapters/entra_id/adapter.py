"""The Entra ID adapter: the operations of the directory interface, over Microsoft Graph.

Every request goes through :class:`~.graph.GraphClient` (one session, timeouts, the
token, one error table). Where Entra ID differs from the Protocol is documented in
:mod:`directory_adapters.entra_id`.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

import requests

from ..base import (
    DirectoryGroup,
    DirectoryUser,
    Lockout,
    LockoutState,
    PasswordExpiry,
    PasswordPolicy,
)
from ..errors import (
    ConfigurationError,
    DirectoryError,
    OperationNotSupported,
    OperationRefused,
    PermissionDenied,
    UserNotFound,
)
from .graph import PROFILE_UPDATE, GraphClient, Json, MsalTokens
from .lookups import (
    count_of,
    find_groups,
    flatten,
    group_id,
    memberships_of,
    odata_literal,
    privileged_ids,
    restricted_member_ids,
    restricted_unit,
    roles_of,
    users_by_ids,
)
from .permissions import (
    READ_DOMAINS,
    READ_GROUPS,
    READ_SIGN_INS,
    READ_USERS,
    RESET_ROLE_ADVICE,
    SET_PASSWORDS,
)
from .settings import GUID, EntraSettings

# Graph filters these two only as advanced queries (ConsistencyLevel: eventual + $count).
_ADVANCED_ATTRIBUTES = frozenset({"onPremisesSamAccountName", "employeeId"})
_USER_FIELDS = ("id", "userPrincipalName", "displayName", "mail", "mobilePhone",
                "accountEnabled", "onPremisesSyncEnabled", "userType")  # fmt: skip
LOCKED_OUT_ERROR = 50053  # AADSTS50053: account locked (smart lockout)
# What a password's expiry is computed from (see password_expiries).
_EXPIRY_FIELDS = ("userType", "lastPasswordChangeDateTime", "passwordPolicies")
_DEFAULT_VALIDITY_DAYS = 90  # what Entra ID applies when a domain sets no period
_NEVER_EXPIRES_DAYS = 2147483647  # a domain's validity period when passwords never expire
_MAX_LOOKBACK = timedelta(days=1)


class SyncedFromActiveDirectory(OperationRefused):
    """The user is synchronised from on-premises AD: reset them there, not in the cloud."""


class PrivilegedAccount(OperationRefused):
    """The user holds an Entra directory role; the gateway does not reset such accounts."""


class GuestAccount(OperationRefused):
    """A guest (``userType`` Guest, ``#EXT#`` UPN): their password is their own
    organisation's, not this tenant's."""


class ManagementRestricted(OperationRefused):
    """The user is in a restricted-management administrative unit: only roles scoped to
    that unit may manage them, and the gateway must not."""


class FederatedDomain(OperationRefused):
    """The user's domain is federated: the password lives on premises, not in Entra ID."""


_SYNCED = (
    "user is synchronised from on-premises Active Directory (onPremisesSyncEnabled): a "
    "cloud reset would not reach AD, where the password lives; reset it through the "
    "client's Active Directory connection (this client has none)"
)
_GUEST = "guest account (userType Guest): its password belongs to its home organisation"
_RESTRICTED = "user is in the restricted-management administrative unit {}"
_FEDERATED = (
    "the user's domain {} is federated: the password is managed on premises; connect "
    "the client's Active Directory instead"
)
_PRIVILEGED = "account holds Entra directory role(s) {}"


def _is_guest(raw: Json) -> bool:
    return raw.get("userType") == "Guest" or "#EXT#" in str(raw.get("userPrincipalName") or "")


def _domain_of(raw: Json) -> str:
    return str(raw.get("userPrincipalName") or "").rpartition("@")[2].casefold()


def _now() -> datetime:
    return datetime.now(UTC)


def _graph_time(value: object) -> datetime | None:
    try:
        return datetime.fromisoformat(str(value)) if value else None
    except ValueError:
        return None


# -- the adapter -----------------------------------------------------------------------


class EntraIdDirectory:
    """A client's Entra ID tenant, through Graph with an app-only token.

    One instance per client per process: it keeps one HTTP session and msal's
    token cache. ``sleep`` and ``clock`` are injectable for tests.
    """

    kind: str = "entra_id"

    def __init__(
        self,
        settings: EntraSettings,
        *,
        session: requests.Session | None = None,
        sleep: Callable[[float], object] = time.sleep,
        clock: Callable[[], datetime] = _now,
    ) -> None:
        self.settings = settings
        self._clock = clock
        session = session or requests.Session()
        timeout = (settings.connect_timeout, settings.timeout)
        self.tokens = MsalTokens(
            tenant_id=settings.tenant_id,
            client_id=settings.client_id,
            credential=settings.credential,
            authority=settings.authority,
            scope=settings.scope,
            session=session,
            timeout=timeout,
        )
        self.graph = GraphClient(
            base_url=settings.graph_url,
            tokens=self.tokens,
            session=session,
            timeout=timeout,
            sleep=sleep,
            clock=clock,
        )
        self._fields = ",".join(dict.fromkeys((*_USER_FIELDS, settings.user_attribute)))
        self._lock = threading.Lock()
        self._last_poll: datetime | None = None
        # Resets made by this process. Graph gives lastPasswordChangeDateTime to the
        # second only, so a reset in the second after a lockout would not show there.
        self._resets: dict[str, datetime] = {}
        self.lockout_watch_off: str | None = None

    @classmethod
    def from_settings(cls, settings: Mapping[str, Any], **options: Any) -> EntraIdDirectory:
        """Build from a settings mapping (see the package docstring); no network call."""
        return cls(EntraSettings.parse(settings), **options)

    # -- DirectoryAdapter ------------------------------------------------------------

    def check_connection(self) -> None:
        """Get a token and read one user: proves tenant, credentials and User.Read.All."""
        self.graph.request(
            "GET", "/users", params={"$top": "1", "$select": "id"}, permission=READ_USERS[0]
        )

    def find_user(self, identifier: str) -> DirectoryUser:
        """Find by object id, then by ``user_attribute``, UPN or mail (case-insensitive);
        ``UserNotFound`` when nobody or several people match."""
        value = identifier.strip()
        if not value:
            raise UserNotFound("empty identifier")
        if GUID.match(value):
            with contextlib.suppress(UserNotFound):
                return self.get_user(value)
        attributes = tuple(
            dict.fromkeys((self.settings.user_attribute, "userPrincipalName", "mail"))
        )
        advanced = self.settings.user_attribute in _ADVANCED_ATTRIBUTES
        params = {
            "$filter": " or ".join(f"{a} eq {odata_literal(value)}" for a in attributes),
            "$select": self._fields,
            **({"$count": "true"} if advanced else {}),
        }
        rows = flatten(
            self.graph.pages("/users", params=params, advanced=advanced, permission=READ_USERS[0])
        )
        key = value.casefold()
        for attribute in attributes:
            matches = [row for row in rows if str(row.get(attribute) or "").casefold() == key]
            if len(matches) == 1:
                return self._user(matches[0])
            if matches:
                raise UserNotFound(f"identifier is ambiguous: {len(matches)} users match")
        raise UserNotFound("no user with that identifier in Entra ID")

    def get_user(self, user_id: str) -> DirectoryUser:
        """Fetch by object id."""
        return self._user(self._fetch(user_id))

    def list_users(
        self, *, group: str | None = None, ou: str | None = None
    ) -> Iterator[DirectoryUser]:
        """Users of ``group`` (object id or exact display name; nested groups included)
        or, with no group, every user of the tenant. Runs now, following every page.

        An unknown group raises ``ConfigurationError``; ``ou`` raises
        ``OperationNotSupported`` (Entra ID has no OUs).
        """
        if ou is not None:
            raise OperationNotSupported("Entra ID has no organisational units: scope by group")
        if group is None:
            pages = self.graph.pages(
                "/users", params={"$select": self._fields, "$top": "999"}, permission=READ_USERS[0]
            )
        else:
            # The OData cast is an advanced query: ConsistencyLevel eventual and $count.
            pages = self.graph.pages(
                f"/groups/{group_id(self.graph, group)}/transitiveMembers/microsoft.graph.user",
                params={"$select": self._fields, "$top": "999", "$count": "true"},
                advanced=True,
                permission=READ_GROUPS[0],
            )
        rows = flatten(pages)
        reasons = self._refusals(rows)
        return iter([self._user(row, reason=reasons.get(row["id"], "")) for row in rows])

    def count_users(self, *, group: str | None = None, ou: str | None = None) -> int:
        """How many users ``list_users`` gives for the same ``group``: Graph's count (an
        advanced query, so eventually consistent: a user made seconds ago may be missed)."""
        if ou is not None:
            raise OperationNotSupported("Entra ID has no organisational units: scope by group")
        if group is None:
            return count_of(self.graph, "/users", READ_USERS[0])
        path = f"/groups/{group_id(self.graph, group)}/transitiveMembers/microsoft.graph.user"
        return count_of(self.graph, path, READ_GROUPS[0])

    def list_groups(self, search: str = "", *, limit: int = 50) -> list[DirectoryGroup]:
        """Groups whose name has a word starting with ``search`` and contains it (see
        :func:`~.lookups.find_groups`), by name; the id is the group's object id."""
        rows = find_groups(self.graph, search, limit)
        groups = [DirectoryGroup(id=str(row["id"]), name=str(row.get("displayName") or ""))
                  for row in rows]  # fmt: skip
        return sorted(groups, key=lambda group: (group.name.casefold(), group.id))

    def list_ous(self, search: str = "", *, limit: int = 50) -> list[DirectoryGroup]:
        """Entra ID has no organisational units: ``OperationNotSupported``."""
        raise OperationNotSupported("Entra ID has no organisational units: import by group")

    def set_password(self, user_id: str, password: str, *, must_change: bool, unlock: bool) -> None:
        """``PATCH /users/{id}`` with a ``passwordProfile``. A reset also ends a smart
        lockout, so ``unlock`` cannot be honoured as ``False``.

        Refuses, before any change: disabled accounts, users synchronised from
        on-premises AD (:class:`SyncedFromActiveDirectory`), guests
        (:class:`GuestAccount`), users of a federated domain (:class:`FederatedDomain`),
        users in a restricted-management administrative unit
        (:class:`ManagementRestricted`) and, unless ``refuse_privileged`` is off, holders
        of a directory role (:class:`PrivilegedAccount`).
        """
        raw = self._fetch(user_id)
        if raw.get("accountEnabled") is False:
            raise OperationRefused("account is disabled")
        refusal = self._refusal(raw)
        if isinstance(refusal, PrivilegedAccount):
            raise PrivilegedAccount(
                f"{refusal.message}: the gateway does not reset privileged accounts "
                "(refuse_privileged)"
            )
        if refusal is not None:
            raise refusal
        profile: dict[str, object] = {"forceChangePasswordNextSignIn": must_change,
                                      "password": password}  # fmt: skip
        if must_change and self.settings.force_change_with_mfa:
            profile["forceChangePasswordNextSignInWithMfa"] = True
        try:
            self.graph.request(
                "PATCH",
                f"/users/{raw['id']}",
                body={"passwordProfile": profile},
                permission=SET_PASSWORDS[0],
                operation=PROFILE_UPDATE,
            )
        except PermissionDenied as err:
            raise self._explain_password_denial(err) from err
        with self._lock:
            self._resets[raw["id"]] = self._clock()

    def unlock(self, user_id: str) -> None:
        """Entra ID has no unlock call: smart lockout ends by itself or with a reset."""
        raise OperationNotSupported(
            "Entra ID cannot unlock an account; a password reset (RESET) clears a lockout"
        )

    def lockout_state(self, user_id: str) -> LockoutState:
        """Locked when the user's latest sign-in within the window failed with 50053 and
        the password has not changed since. Needs AuditLog.Read.All and P1/P2."""
        uid = self._checked_id(user_id)
        since = self._clock() - timedelta(minutes=self.settings.lockout_window_minutes)
        page = self._sign_ins(
            {"$filter": f"userId eq '{uid}' and createdDateTime ge {_iso(since)}", "$top": "1"}
        )
        latest = next(iter(page), None)
        if latest is None or (latest.get("status") or {}).get("errorCode") != LOCKED_OUT_ERROR:
            return LockoutState(locked=False)
        locked_at = _graph_time(latest.get("createdDateTime"))
        raw = self._fetch(uid, extra=("lastPasswordChangeDateTime",))
        if locked_at is None or self._ended(raw, locked_at):
            return LockoutState(locked=False)
        return LockoutState(locked=True, locked_at=locked_at)

    def locked_out_users(self) -> list[DirectoryUser]:
        """Users with a lockout (50053) in the sign-in logs since the last poll (and at
        least the window), whose password has not changed since."""
        now = self._clock()
        with self._lock:
            since = self._last_poll
        lockouts = self.lockouts(since)
        with self._lock:
            self._last_poll = now
        return [lockout.user for lockout in lockouts]

    def lockouts(self, since: datetime | None = None) -> list[Lockout]:
        """Users with a 50053 in the sign-in logs since ``since`` and at least the lockout
        window (``lockout_window_minutes``; at most a day back), whose password has not
        changed since their latest one; by username. One paged query of the logs, then
        the users by id (15 a query).

        ``locked_at`` is the user's latest 50053. ``kind`` is "blocked_ip" when every one
        of them was a sign-in blocked because it came from an address with malicious
        activity (the log's failure reason or details say so), "lockout" otherwise.
        Without AuditLog.Read.All or a P1/P2 licence: ``PermissionDenied`` or
        ``OperationNotSupported``, and ``lockout_watch_off`` says why.
        """
        now = self._clock()
        window_start = now - timedelta(minutes=self.settings.lockout_window_minutes)
        start = max(min(since or now, window_start), now - _MAX_LOOKBACK)
        query = f"status/errorCode eq {LOCKED_OUT_ERROR} and createdDateTime ge {_iso(start)}"
        latest: dict[str, datetime] = {}
        locked_out: set[str] = set()  # users with a 50053 that was not a blocked address
        for event in self._sign_ins({"$filter": query, "$top": "1000"}, every_page=True):
            uid, when = str(event.get("userId") or ""), _graph_time(event.get("createdDateTime"))
            if not GUID.match(uid) or when is None:
                continue
            if uid not in latest or when > latest[uid]:
                latest[uid] = when
            if not _from_malicious_address(event):
                locked_out.add(uid)
        found = [
            Lockout(
                self._user(raw),
                latest[raw["id"]],
                "lockout" if raw["id"] in locked_out else "blocked_ip",
            )
            for raw in users_by_ids(self.graph, sorted(latest), self._fields)
            if not self._ended(raw, latest[raw["id"]])
        ]
        with self._lock:
            self._resets = {k: v for k, v in self._resets.items() if v >= now - _MAX_LOOKBACK}
        return sorted(found, key=lambda lockout: lockout.user.username.casefold())

    def password_policy(self) -> PasswordPolicy:
        """Entra ID's rules for cloud users: 8 to 256 characters, 3 of 4 kinds."""
        return PasswordPolicy(min_length=8, complexity=True)

    def password_expiries(self, until: datetime) -> list[PasswordExpiry]:
        """Enabled cloud users whose password expires after now and before ``until``,
        soonest first: one query of the domains, then one paged query of the users.

        A password expires ``passwordValidityPeriodInDays`` (of the domain of the user's
        UPN; 90 when Graph gives none) after ``lastPasswordChangeDateTime``. Left out: a
        domain whose passwords never expire (2147483647) or whose sign-ins are federated,
        users whose ``passwordPolicies`` hold ``DisablePasswordExpiration``, users
        synchronised from on-premises AD (their password expires there), guests, and
        disabled accounts. Needs Domain.Read.All besides User.Read.All.
        """
        now = self._clock()
        validity = self._password_validity()
        if not validity:  # no domain's passwords expire: no need to read the users
            return []
        fields = ",".join((self._fields, *_EXPIRY_FIELDS))
        rows = flatten(
            self.graph.pages(
                "/users", params={"$select": fields, "$top": "999"}, permission=READ_USERS[0]
            )
        )
        due = [
            (row, expires_at)
            for row in rows
            if (expires_at := _password_expiry(row, validity)) is not None
            and now < expires_at < until
        ]
        # Refusals are looked up for the whole list at once, and only when needed.
        reasons = self._refusals([row for row, _ in due]) if due else {}
        found = [
            PasswordExpiry(self._user(row, reason=reasons.get(row["id"], "")), expires_at)
            for row, expires_at in due
        ]
        return sorted(found, key=lambda e: (e.expires_at, e.user.username.casefold()))

    def _password_validity(self) -> dict[str, int]:
        """Days a password lasts, by domain name (casefolded), for each managed domain whose
        passwords expire."""
        rows = flatten(
            self.graph.pages(
                "/domains",
                params={"$select": "id,authenticationType,passwordValidityPeriodInDays"},
                permission=READ_DOMAINS[0],
            )
        )
        days: dict[str, int] = {}
        for row in rows:
            value = row.get("passwordValidityPeriodInDays")
            value = _DEFAULT_VALIDITY_DAYS if value is None else value
            managed = str(row.get("authenticationType") or "Managed") == "Managed"
            if managed and isinstance(value, int) and 0 < value < _NEVER_EXPIRES_DAYS:
                days[str(row.get("id") or "").casefold()] = value
        return days

    # -- Graph helpers ---------------------------------------------------------------

    @staticmethod
    def _checked_id(user_id: str) -> str:
        value = user_id.strip()
        if not GUID.match(value):  # also keeps anything but an id out of the URL path
            raise UserNotFound("Entra ID user ids are object ids (GUIDs)")
        return value

    def _fetch(self, user_id: str, extra: tuple[str, ...] = ()) -> Json:
        fields = ",".join((self._fields, *extra))
        return self.graph.request(
            "GET",
            f"/users/{self._checked_id(user_id)}",
            params={"$select": fields},
            permission=READ_USERS[0],
        )

    def _user(self, raw: Json, *, reason: str | None = None) -> DirectoryUser:
        """A :class:`DirectoryUser`; ``reason`` is why it is protected ("" for not),
        looked up here when not given."""
        if reason is None:
            refusal = self._refusal(raw)
            reason = refusal.message if refusal is not None else ""
        upn = str(raw.get("userPrincipalName") or "")
        return DirectoryUser(
            id=str(raw["id"]),
            username=str(raw.get(self.settings.user_attribute) or upn),
            display_name=str(raw.get("displayName") or upn),
            email=raw.get("mail"),
            upn=upn or None,
            mobile=raw.get("mobilePhone"),
            disabled=raw.get("accountEnabled") is False,
            protected=bool(reason),
            protected_reason=reason or None,
        )

    def _refusal(self, raw: Json) -> OperationRefused | None:
        """Why the gateway must not reset this user (the first reason found), or ``None``:
        cheapest checks first, then the user's domain, memberships and roles."""
        if raw.get("onPremisesSyncEnabled"):
            return SyncedFromActiveDirectory(_SYNCED)
        if _is_guest(raw):
            return GuestAccount(_GUEST)
        domain = _domain_of(raw)
        if domain in self._federated_domains([domain]):
            return FederatedDomain(_FEDERATED.format(domain))
        memberships = memberships_of(self.graph, raw["id"])
        if unit := restricted_unit(memberships):
            return ManagementRestricted(_RESTRICTED.format(unit))
        if self.settings.refuse_privileged and (
            roles := roles_of(self.graph, raw["id"], memberships)
        ):
            return PrivilegedAccount(_PRIVILEGED.format(", ".join(sorted(roles))))
        return None

    def _refusals(self, rows: list[Json]) -> dict[str, str]:
        """Why each of ``rows`` is protected, by id (the unprotected left out): the same
        reasons as :meth:`_refusal`, with one lookup of each kind for the whole list."""
        reasons: dict[str, str] = {}
        todo = []
        for row in rows:
            if row.get("onPremisesSyncEnabled"):
                reasons[row["id"]] = _SYNCED
            elif _is_guest(row):
                reasons[row["id"]] = _GUEST
            else:
                todo.append(row)
        if not todo:
            return reasons
        federated = self._federated_domains(_domain_of(row) for row in todo)
        restricted = restricted_member_ids(self.graph)
        privileged = privileged_ids(self.graph) if self.settings.refuse_privileged else set()
        for row in todo:
            if _domain_of(row) in federated:
                reasons[row["id"]] = _FEDERATED.format(_domain_of(row))
            elif row["id"] in restricted:
                reasons[row["id"]] = "user is in a restricted-management administrative unit"
            elif row["id"] in privileged:
                reasons[row["id"]] = "account holds an Entra directory role (active or eligible)"
        return reasons

    def _federated_domains(self, names: Iterable[str]) -> set[str]:
        """Which of the domain ``names`` (casefolded) are federated: one GET for one name,
        one list of the tenant's domains for more."""
        wanted = set(names)
        if len(wanted) == 1:
            [name] = wanted
            rows = [
                self.graph.request(
                    "GET",
                    f"/domains/{quote(name, safe='')}",
                    params={"$select": "id,authenticationType"},
                    permission=READ_DOMAINS[0],
                    not_found=ConfigurationError,
                )
            ]
        else:
            params = {"$select": "id,authenticationType"}
            rows = flatten(self.graph.pages("/domains", params=params, permission=READ_DOMAINS[0]))
        return {
            str(row.get("id") or "").casefold()
            for row in rows
            if row.get("authenticationType") == "Federated"
        } & wanted

    def _sign_ins(self, params: Mapping[str, str], *, every_page: bool = False) -> list[Json]:
        """Sign-in log entries; a missing permission or licence turns the watch off."""
        try:
            pages = self.graph.pages(
                "/auditLogs/signIns", params=params, permission=READ_SIGN_INS[0]
            )
            if every_page:
                return flatten(pages)
            return next(pages, [])
        except PermissionDenied as err:
            self.lockout_watch_off = "lockout watch off: AuditLog.Read.All missing"
            raise PermissionDenied(
                f"{self.lockout_watch_off} ({err.message})", missing_right=READ_SIGN_INS[0]
            ) from err
        except OperationNotSupported as err:
            self.lockout_watch_off = (
                "lockout watch off: the tenant has no Entra ID P1/P2 licence, which sign-in "
                "logs need"
            )
            raise OperationNotSupported(f"{self.lockout_watch_off} ({err.message})") from err

    def _ended(self, raw: Json, locked_at: datetime) -> bool:
        """Whether the password changed after the lockout (which ends a smart lockout)."""
        with self._lock:
            reset = self._resets.get(str(raw.get("id")))
        return _changed_since(raw, locked_at) or (reset is not None and reset >= locked_at)

    def _explain_password_denial(self, err: PermissionDenied) -> PermissionDenied:
        """A 403 on a password PATCH: a missing permission, or a user above the app's role."""
        try:
            roles = set(self.tokens.claims().get("roles") or [])
        except DirectoryError:
            return err
        finally:
            self.tokens.renew()  # that token too may predate the admin's fix: not kept
        if not roles & set(SET_PASSWORDS):
            return err
        return PermissionDenied(
            f"{err.message}; the app has {SET_PASSWORDS[0]}, so the app's directory role "
            f"does not cover this user: {RESET_ROLE_ADVICE}",
            missing_right="directory role: Password Administrator, Helpdesk Administrator "
            "or User Administrator",
        )


def _password_expiry(row: Json, validity: Mapping[str, int]) -> datetime | None:
    """When a user's password expires (see ``password_expiries``), ``None`` for never."""
    policies = {p.strip().casefold() for p in str(row.get("passwordPolicies") or "").split(",")}
    if (
        row.get("accountEnabled") is False
        or row.get("onPremisesSyncEnabled")
        or row.get("userType") == "Guest"
        or "disablepasswordexpiration" in policies
    ):
        return None
    domain = str(row.get("userPrincipalName") or "").rpartition("@")[2].casefold()
    days = validity.get(domain)
    changed = _graph_time(row.get("lastPasswordChangeDateTime"))
    if days is None or changed is None:
        return None
    try:
        return changed + timedelta(days=days)
    except OverflowError:  # beyond the year 9999: as good as never
        return None


def _iso(moment: datetime) -> str:
    """A Graph $filter DateTimeOffset literal (UTC, no quotes)."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _from_malicious_address(event: Json) -> bool:
    """Whether a 50053 sign-in was blocked for its address ("Sign-in was blocked because
    it came from an IP address with malicious activity"), not for bad passwords."""
    status = event.get("status") or {}
    text = f"{status.get('failureReason') or ''} {status.get('additionalDetails') or ''}"
    return "malicious" in text.casefold()


def _changed_since(raw: Json, moment: datetime) -> bool:
    changed = _graph_time(raw.get("lastPasswordChangeDateTime"))
    return changed is not None and changed > moment
