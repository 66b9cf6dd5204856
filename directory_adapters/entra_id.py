"""Entra ID (Azure AD): users through Microsoft Graph, app-only tokens from msal.

Settings (per client, stored encrypted):

``tenant_id`` (required)
    The directory (tenant) id, a GUID, or its ``contoso.onmicrosoft.com`` name.
``client_id`` (required)
    The application (client) id of the app registration (a GUID).
``client_secret``
    A client secret of that app. Or, instead, a certificate uploaded to the app:
``certificate_key`` and ``certificate_thumbprint``
    its unencrypted PEM private key and its SHA-1 thumbprint (40 hex digits).
``authority`` (default ``https://login.microsoftonline.com``)
    The identity platform; ``https://login.microsoftonline.us`` for US Government,
    ``https://login.chinacloudapi.cn`` for 21Vianet.
``graph_url`` (default ``https://graph.microsoft.com/v1.0``)
    Graph for that cloud, e.g. ``https://graph.microsoft.us/v1.0``. Tokens are asked
    for its host's ``/.default`` scope.
``connect_timeout`` (default 5) and ``timeout`` (default 30)
    Seconds, on every HTTP call (token endpoint and Graph).
``refuse_privileged`` (default ``true``)
    Refuse users who hold an Entra directory role (an active assignment, direct or
    through a role-assignable group) and show them as ``protected``.
``user_attribute`` (default ``userPrincipalName``)
    What ``username`` shows and ``find_user`` also matches: ``userPrincipalName``,
    ``mail``, ``mailNickname``, ``onPremisesSamAccountName`` or ``employeeId``.
``lockout_window_minutes`` (default 15)
    How far back the sign-in logs are read for lockouts.

Application permissions (admin consent), least privileged first; :func:`diagnose`
reads the token's ``roles`` claim and says which are missing: ``User.Read.All``;
``GroupMember.Read.All`` (users of a group); ``User-PasswordProfile.ReadWrite.All``
(set passwords; Microsoft also documents a directory role for the app, such as User
Administrator); ``RoleManagement.Read.Directory`` (privileged users in lists);
``AuditLog.Read.All`` and an Entra ID P1/P2 licence (lockout watch).

Where Entra ID differs from the Protocol:

* there is no unlock: :meth:`EntraIdDirectory.unlock` raises ``OperationNotSupported``
  (smart lockout ends by itself, and a password reset ends it too, which is also why
  ``set_password`` cannot honour ``unlock=False``);
* users synchronised from on-premises AD (``onPremisesSyncEnabled``) are refused with
  :class:`SyncedFromActiveDirectory` and shown as ``protected``: a cloud reset would
  not reach AD, where their password lives;
* there are no OUs: ``list_users(ou=...)`` raises ``OperationNotSupported``;
* lockouts are read from the sign-in logs (error 50053) since the last poll; a
  lockout counts until the window passes or the password changes after it.
"""

from __future__ import annotations

import contextlib
import re
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal
from urllib.parse import urlsplit

import requests

from .base import DirectoryUser, LockoutState, PasswordPolicy
from .errors import (
    ConfigurationError,
    DirectoryError,
    OperationNotSupported,
    OperationRefused,
    PermissionDenied,
    UserNotFound,
)
from .graph import PROFILE_UPDATE, GraphClient, Json, MsalTokens

DEFAULT_AUTHORITY = "https://login.microsoftonline.com"
DEFAULT_GRAPH_URL = "https://graph.microsoft.com/v1.0"
USER_ATTRIBUTES = ("userPrincipalName", "mail", "mailNickname", "onPremisesSamAccountName",
                   "employeeId")  # fmt: skip
# Graph filters these two only as advanced queries (ConsistencyLevel: eventual + $count).
_ADVANCED_ATTRIBUTES = frozenset({"onPremisesSamAccountName", "employeeId"})
_USER_FIELDS = ("id", "userPrincipalName", "displayName", "mail", "mobilePhone",
                "accountEnabled", "onPremisesSyncEnabled")  # fmt: skip
LOCKED_OUT_ERROR = 50053  # AADSTS50053: account locked (smart lockout)
_MAX_LOOKBACK = timedelta(days=1)
_IDS_PER_FILTER = 15  # Graph's limit on values in an "in (...)" filter

# Application permissions that allow each capability, least privileged first.
READ_USERS = ("User.Read.All", "User.ReadWrite.All", "Directory.Read.All",
              "Directory.ReadWrite.All")  # fmt: skip
READ_GROUPS = ("GroupMember.Read.All", "Group.Read.All", "GroupMember.ReadWrite.All",
               "Group.ReadWrite.All", "Directory.Read.All", "Directory.ReadWrite.All")  # fmt: skip
SET_PASSWORDS = ("User-PasswordProfile.ReadWrite.All", "User.ReadWrite.All",
                 "Directory.ReadWrite.All")  # fmt: skip
READ_ROLES = ("RoleManagement.Read.Directory", "RoleManagement.ReadWrite.Directory",
              "Directory.Read.All", "Directory.ReadWrite.All")  # fmt: skip
READ_SIGN_INS = ("AuditLog.Read.All",)
# Directory roles (template ids, as in the token's "wids") that can reset passwords.
PASSWORD_ROLES = {
    "fe930be7-5e62-47db-91af-98c3a49a38b1": "User Administrator",
    "729827e3-9c14-49f7-bb1b-9608f156bbb8": "Helpdesk Administrator",
    "966707d0-3269-4727-9be2-8c3a10f19b9d": "Password Administrator",
    "c4e39bd9-1100-46d3-8c65-fb160da0071f": "Authentication Administrator",
    "7be44c8a-adaf-4e2a-84d6-ab2649e08a13": "Privileged Authentication Administrator",
    "62e90394-69f5-4237-9190-012177145e10": "Global Administrator",
}
_GUID = re.compile(r"^[0-9a-fA-F]{8}(-[0-9a-fA-F]{4}){3}-[0-9a-fA-F]{12}$")
_TENANT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9.-]{0,252}$")
_THUMBPRINT = re.compile(r"^[0-9a-fA-F]{40}$")


class SyncedFromActiveDirectory(OperationRefused):
    """The user is synchronised from on-premises AD: reset them there, not in the cloud."""


class PrivilegedAccount(OperationRefused):
    """The user holds an Entra directory role; the gateway does not reset such accounts."""


def _now() -> datetime:
    return datetime.now(UTC)


def _graph_time(value: object) -> datetime | None:
    try:
        return datetime.fromisoformat(str(value)) if value else None
    except ValueError:
        return None


def _odata_literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _flatten(pages: Iterable[list[Json]]) -> list[Json]:
    return [row for page in pages for row in page]


# -- settings ------------------------------------------------------------------------


def _text(settings: Mapping[str, Any], name: str, pattern: re.Pattern[str] | None = None) -> str:
    value = settings.get(name)
    if not isinstance(value, str) or not value.strip():
        raise ConfigurationError(f"Entra ID setting {name!r} is required (a string)")
    value = value.strip()
    if pattern is not None and not pattern.match(value):
        raise ConfigurationError(f"Entra ID setting {name!r} is malformed")
    return value


def _optional_text(settings: Mapping[str, Any], name: str) -> str | None:
    return _text(settings, name) if settings.get(name) not in (None, "") else None


def _number(settings: Mapping[str, Any], name: str, default: float) -> float:
    value = settings.get(name, default)
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
        raise ConfigurationError(f"Entra ID setting {name!r} must be a positive number")
    return float(value)


def _https_url(settings: Mapping[str, Any], name: str, default: str) -> str:
    value = settings.get(name, default)
    parts = urlsplit(value) if isinstance(value, str) else None
    if parts is None or parts.scheme != "https" or not parts.netloc or parts.query:
        raise ConfigurationError(f"Entra ID setting {name!r} must be an https URL")
    return str(value).rstrip("/")


def _check_private_key(pem: str) -> None:
    from cryptography.hazmat.primitives.serialization import load_pem_private_key

    try:
        load_pem_private_key(pem.encode(), password=None)
    except (ValueError, TypeError) as err:  # the message never quotes the key
        raise ConfigurationError(
            "'certificate_key' must be an unencrypted PEM private key"
        ) from err


@dataclass(frozen=True)
class EntraSettings:
    """Validated settings; see the module docstring. Secrets stay out of ``repr``."""

    tenant_id: str
    client_id: str
    client_secret: str | None = field(default=None, repr=False)
    certificate_key: str | None = field(default=None, repr=False)
    certificate_thumbprint: str | None = None
    authority: str = DEFAULT_AUTHORITY
    graph_url: str = DEFAULT_GRAPH_URL
    connect_timeout: float = 5.0
    timeout: float = 30.0
    refuse_privileged: bool = True
    user_attribute: str = "userPrincipalName"
    lockout_window_minutes: int = 15

    @classmethod
    def parse(cls, settings: Mapping[str, Any]) -> EntraSettings:
        """Refuse missing, unknown or malformed settings with ``ConfigurationError``."""
        known = set(cls.__dataclass_fields__)
        if unknown := sorted(set(settings) - known):
            raise ConfigurationError(f"unknown Entra ID settings: {', '.join(unknown)}")
        secret = _optional_text(settings, "client_secret")
        key = _optional_text(settings, "certificate_key")
        thumbprint = _optional_text(settings, "certificate_thumbprint")
        if thumbprint is not None:
            thumbprint = thumbprint.replace(":", "").replace(" ", "").upper()
        if (secret is None) == (key is None) or (key is None) != (thumbprint is None):
            raise ConfigurationError(
                "Entra ID needs either 'client_secret' or both 'certificate_key' and "
                "'certificate_thumbprint', not both kinds"
            )
        if thumbprint is not None and not _THUMBPRINT.match(thumbprint):
            raise ConfigurationError("'certificate_thumbprint' must be 40 hex digits (SHA-1)")
        if key is not None:
            _check_private_key(key)
        refuse = settings.get("refuse_privileged", True)
        attribute = settings.get("user_attribute", "userPrincipalName")
        window = settings.get("lockout_window_minutes", 15)
        if not isinstance(refuse, bool):
            raise ConfigurationError("Entra ID setting 'refuse_privileged' must be true or false")
        if attribute not in USER_ATTRIBUTES:
            raise ConfigurationError(
                f"'user_attribute' must be one of {', '.join(USER_ATTRIBUTES)}"
            )
        if isinstance(window, bool) or not isinstance(window, int) or not 1 <= window <= 1440:
            raise ConfigurationError("'lockout_window_minutes' must be an integer from 1 to 1440")
        return cls(
            tenant_id=_text(settings, "tenant_id", _TENANT),
            client_id=_text(settings, "client_id", _GUID),
            client_secret=secret,
            certificate_key=key,
            certificate_thumbprint=thumbprint,
            authority=_https_url(settings, "authority", DEFAULT_AUTHORITY),
            graph_url=_https_url(settings, "graph_url", DEFAULT_GRAPH_URL),
            connect_timeout=_number(settings, "connect_timeout", 5.0),
            timeout=_number(settings, "timeout", 30.0),
            refuse_privileged=refuse,
            user_attribute=attribute,
            lockout_window_minutes=window,
        )

    @property
    def credential(self) -> str | dict[str, str]:
        """What msal takes as ``client_credential``."""
        if self.client_secret is not None:
            return self.client_secret
        assert self.certificate_key is not None and self.certificate_thumbprint is not None
        return {"private_key": self.certificate_key, "thumbprint": self.certificate_thumbprint}

    @property
    def scope(self) -> str:
        """The app-only scope of this cloud's Graph, e.g. ``https://graph.microsoft.us/.default``."""
        parts = urlsplit(self.graph_url)
        return f"{parts.scheme}://{parts.netloc}/.default"


# -- diagnosis -----------------------------------------------------------------------

Level = Literal["ok", "warning", "problem"]


@dataclass(frozen=True)
class Finding:
    """One line of ``blink-sms clients test`` (the same shape as Active Directory's):
    how it went, what was checked, in words an MSP technician understands, and the
    permission, role or licence to grant when one is missing."""

    level: Level
    topic: str
    message: str
    missing: str | None = None


@dataclass(frozen=True)
class _Need:
    topic: str
    permissions: tuple[str, ...]
    purpose: str
    level: Level


def diagnose(settings: Mapping[str, Any]) -> list[Finding]:
    """Check a client's Entra ID settings: token, Graph permissions (the token's ``roles``
    claim), the app's directory role (``wids``), reach, and whether the lockout watch
    can run (AuditLog.Read.All and a P1/P2 licence). Never raises a DirectoryError."""
    try:
        adapter = EntraIdDirectory.from_settings(settings)
    except ConfigurationError as err:
        return [Finding("problem", "settings", err.message)]
    return adapter.diagnose()


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
        """Build from a settings mapping (see the module docstring); no network call."""
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
        if _GUID.match(value):
            with contextlib.suppress(UserNotFound):
                return self.get_user(value)
        attributes = tuple(
            dict.fromkeys((self.settings.user_attribute, "userPrincipalName", "mail"))
        )
        advanced = self.settings.user_attribute in _ADVANCED_ATTRIBUTES
        params = {
            "$filter": " or ".join(f"{a} eq {_odata_literal(value)}" for a in attributes),
            "$select": self._fields,
            **({"$count": "true"} if advanced else {}),
        }
        rows = _flatten(
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
                f"/groups/{self._group_id(group)}/transitiveMembers/microsoft.graph.user",
                params={"$select": self._fields, "$top": "999", "$count": "true"},
                advanced=True,
                permission=READ_GROUPS[0],
            )
        rows = _flatten(pages)
        privileged = self._privileged_ids() if self.settings.refuse_privileged else set()
        return iter([self._user(row, privileged=row["id"] in privileged) for row in rows])

    def set_password(self, user_id: str, password: str, *, must_change: bool, unlock: bool) -> None:
        """``PATCH /users/{id}`` with a ``passwordProfile``. A reset also ends a smart
        lockout, so ``unlock`` cannot be honoured as ``False``.

        Refuses disabled accounts, users synchronised from on-premises AD
        (:class:`SyncedFromActiveDirectory`) and, unless ``refuse_privileged`` is off,
        holders of a directory role (:class:`PrivilegedAccount`), before any change.
        """
        raw = self._fetch(user_id)
        if raw.get("accountEnabled") is False:
            raise OperationRefused("account is disabled")
        if raw.get("onPremisesSyncEnabled"):
            raise SyncedFromActiveDirectory(
                "user is synchronised from on-premises Active Directory "
                "(onPremisesSyncEnabled): a cloud reset would not reach AD, where the "
                "password lives; reset it through the client's Active Directory connection "
                "(this client has none)"
            )
        if self.settings.refuse_privileged and (roles := self._roles_of(raw["id"])):
            raise PrivilegedAccount(
                f"account holds Entra directory role(s) {', '.join(sorted(roles))}: "
                "the gateway does not reset privileged accounts (refuse_privileged)"
            )
        profile = {"forceChangePasswordNextSignIn": must_change, "password": password}
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
        window_start = now - timedelta(minutes=self.settings.lockout_window_minutes)
        with self._lock:
            since = max(min(self._last_poll or now, window_start), now - _MAX_LOOKBACK)
        query = f"status/errorCode eq {LOCKED_OUT_ERROR} and createdDateTime ge {_iso(since)}"
        latest: dict[str, datetime] = {}
        for event in self._sign_ins({"$filter": query, "$top": "1000"}, every_page=True):
            uid, when = str(event.get("userId") or ""), _graph_time(event.get("createdDateTime"))
            if _GUID.match(uid) and when is not None and (uid not in latest or when > latest[uid]):
                latest[uid] = when
        users = [
            self._user(raw)
            for raw in self._users_by_ids(sorted(latest))
            if not self._ended(raw, latest[raw["id"]])
        ]
        with self._lock:
            self._last_poll = now
            self._resets = {k: v for k, v in self._resets.items() if v >= since}
        return sorted(users, key=lambda user: user.username.casefold())

    def password_policy(self) -> PasswordPolicy:
        """Entra ID's rules for cloud users: 8 to 256 characters, 3 of 4 kinds."""
        return PasswordPolicy(min_length=8, complexity=True)

    # -- clients test ----------------------------------------------------------------

    def diagnose(self) -> list[Finding]:
        """See :func:`diagnose`."""
        try:
            claims = self.tokens.claims()
        except DirectoryError as err:
            return [Finding("problem", "token", err.message)]
        roles = {str(role) for role in claims.get("roles") or []}
        findings = [
            Finding(
                "ok",
                "token",
                f"app {claims.get('appid', self.settings.client_id)} got a token for tenant "
                f"{claims.get('tid', self.settings.tenant_id)}",
            )
        ]
        findings += [self._permission_finding(need, roles) for need in self._needs()]
        findings.append(self._password_role_finding(claims))
        findings += self._live_findings(roles)
        return findings

    def _needs(self) -> list[_Need]:
        return [
            _Need("read users", READ_USERS, "find users and read their attributes", "problem"),
            _Need("list groups", READ_GROUPS, "list the users of a group", "warning"),
            _Need("set passwords", SET_PASSWORDS, "set one-time passwords", "problem"),
            _Need(
                "spot privileged users",
                READ_ROLES,
                "mark directory-role holders in user lists",
                "problem" if self.settings.refuse_privileged else "warning",
            ),
            _Need("lockout watch", READ_SIGN_INS, "read sign-in logs for lockouts", "warning"),
        ]

    @staticmethod
    def _permission_finding(need: _Need, roles: set[str]) -> Finding:
        granted = [p for p in need.permissions if p in roles]
        if granted:
            return Finding("ok", need.topic, f"{granted[0]} granted")
        off = "lockout watch off: " if need.topic == "lockout watch" else ""
        return Finding(
            need.level,
            need.topic,
            f"{off}{need.permissions[0]} missing: grant it (application permission, "
            f"admin consent) to {need.purpose}",
            missing=need.permissions[0],
        )

    @staticmethod
    def _password_role_finding(claims: Json) -> Finding:
        wids = {str(w) for w in claims.get("wids") or []}
        held = sorted(PASSWORD_ROLES[w] for w in wids if w in PASSWORD_ROLES)
        if held:
            return Finding("ok", "directory role", f"the app holds {', '.join(held)}")
        return Finding(
            "warning",
            "directory role",
            "the token shows no directory role that can reset passwords; if resets are "
            "refused with 403, assign the app the User Administrator role (or Helpdesk "
            "Administrator; Privileged Authentication Administrator for administrators)",
            missing="User Administrator",
        )

    def _live_findings(self, roles: set[str]) -> list[Finding]:
        findings: list[Finding] = []
        try:
            self.check_connection()
            findings.append(Finding("ok", "reach", f"read users from {self.settings.graph_url}"))
        except DirectoryError as err:
            findings.append(Finding("problem", "reach", err.message))
        if READ_SIGN_INS[0] not in roles:
            return findings
        try:
            self._sign_ins({"$top": "1"})
            findings.append(Finding("ok", "lockout watch", "sign-in logs readable: watch on"))
        except DirectoryError:
            findings.append(
                Finding(
                    "warning",
                    "lockout watch",
                    self.lockout_watch_off or "sign-in logs unreadable",
                    missing="Entra ID P1 or P2 licence",
                )
            )
        return findings

    # -- Graph helpers ---------------------------------------------------------------

    @staticmethod
    def _checked_id(user_id: str) -> str:
        value = user_id.strip()
        if not _GUID.match(value):  # also keeps anything but an id out of the URL path
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

    def _user(self, raw: Json, *, privileged: bool | None = None) -> DirectoryUser:
        synced = bool(raw.get("onPremisesSyncEnabled"))
        if privileged is None:
            privileged = (
                self.settings.refuse_privileged and not synced and bool(self._roles_of(raw["id"]))
            )
        upn = str(raw.get("userPrincipalName") or "")
        return DirectoryUser(
            id=str(raw["id"]),
            username=str(raw.get(self.settings.user_attribute) or upn),
            display_name=str(raw.get("displayName") or upn),
            email=raw.get("mail"),
            upn=upn or None,
            mobile=raw.get("mobilePhone"),
            disabled=raw.get("accountEnabled") is False,
            protected=synced or privileged,
        )

    def _roles_of(self, user_id: str) -> list[str]:
        """Directory roles the user holds, directly or through role-assignable groups.

        ``transitiveMemberOf`` without the OData cast is not an advanced query, so it
        is not eventually consistent: a role granted a moment ago is seen.
        """
        pages = self.graph.pages(
            f"/users/{user_id}/transitiveMemberOf",
            params={"$select": "id,displayName", "$top": "999"},
            permission=READ_USERS[0],
        )
        return [
            str(entry.get("displayName") or entry.get("id"))
            for entry in _flatten(pages)
            if entry.get("@odata.type") == "#microsoft.graph.directoryRole"
        ]

    def _privileged_ids(self) -> set[str]:
        """Every user holding an activated directory role, for a whole list at once."""
        ids: set[str] = set()
        for role in _flatten(self.graph.pages("/directoryRoles", permission=READ_ROLES[0])):
            members = self.graph.pages(
                f"/directoryRoles/{role['id']}/members", permission=READ_ROLES[0]
            )
            for member in _flatten(members):
                if member.get("@odata.type") != "#microsoft.graph.group":
                    ids.add(str(member["id"]))
                    continue
                users = self.graph.pages(
                    f"/groups/{member['id']}/transitiveMembers/microsoft.graph.user",
                    params={"$select": "id", "$count": "true"},
                    advanced=True,
                    permission=READ_GROUPS[0],
                )
                ids.update(str(user["id"]) for user in _flatten(users))
        return ids

    def _group_id(self, group: str) -> str:
        name = group.strip()
        if _GUID.match(name):
            found = self.graph.request(
                "GET",
                f"/groups/{name}",
                params={"$select": "id,displayName"},
                permission=READ_GROUPS[0],
                not_found=ConfigurationError,
            )
            return str(found["id"])
        rows = _flatten(
            self.graph.pages(
                "/groups",
                params={"$filter": f"displayName eq {_odata_literal(name)}", "$select": "id"},
                permission=READ_GROUPS[0],
            )
        )
        if len(rows) != 1:
            raise ConfigurationError(
                f"{len(rows) or 'no'} groups named {group!r} in Entra ID: use the group's object id"
            )
        return str(rows[0]["id"])

    def _users_by_ids(self, ids: list[str]) -> Iterator[Json]:
        fields = f"{self._fields},lastPasswordChangeDateTime"
        for start in range(0, len(ids), _IDS_PER_FILTER):
            chunk = ", ".join(f"'{uid}'" for uid in ids[start : start + _IDS_PER_FILTER])
            params = {"$filter": f"id in ({chunk})", "$select": fields}
            yield from _flatten(self.graph.pages("/users", params=params, permission=READ_USERS[0]))

    def _sign_ins(self, params: Mapping[str, str], *, every_page: bool = False) -> list[Json]:
        """Sign-in log entries; a missing permission or licence turns the watch off."""
        try:
            pages = self.graph.pages(
                "/auditLogs/signIns", params=params, permission=READ_SIGN_INS[0]
            )
            if every_page:
                return _flatten(pages)
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
        if not roles & set(SET_PASSWORDS):
            return err
        return PermissionDenied(
            f"{err.message}; the app has {SET_PASSWORDS[0]}, so the app's directory role "
            "does not cover this user (User Administrator resets users; administrators "
            "need Privileged Authentication Administrator)",
            missing_right="directory role: User Administrator or Privileged Authentication "
            "Administrator",
        )


def _iso(moment: datetime) -> str:
    """A Graph $filter DateTimeOffset literal (UTC, no quotes)."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _changed_since(raw: Json, moment: datetime) -> bool:
    changed = _graph_time(raw.get("lastPasswordChangeDateTime"))
    return changed is not None and changed > moment
