"""One Entra ID tenant, faked at the HTTP boundary with ``responses``: the Microsoft
identity platform (OpenID configuration, token endpoint) and Microsoft Graph v1.0.

It keeps state, so effects are observed the way a real tenant shows them: users,
nested groups, directory roles, passwords with ``forceChangePasswordNextSignIn``,
smart lockout, and sign-in logs. A probe signs users in with the resource-owner
password grant on the token endpoint (AADSTS50126 wrong password, 50053 locked,
50055 password expired / must change, 50057 disabled), as one would in a test tenant.

Shapes follow Microsoft's documentation: OData collections with ``@odata.context``
and ``@odata.nextLink`` (``$skiptoken``), ``@odata.type`` on directoryObject
collections, ``$select`` projections, errors as ``{"error": {"code", "message",
"innerError": {"date", "request-id", "client-request-id"}}}``, token errors as
``{"error", "error_description": "AADSTSnnnn: ...", "error_codes", ...}``. The fake
refuses what Graph refuses: a missing permission in the token's ``roles`` (403
``Authorization_RequestDenied``), an OData cast without ``ConsistencyLevel:
eventual`` and ``$count=true``, an unknown ``$select`` property, a weak password.
"""

from __future__ import annotations

import base64
import json
import re
import secrets
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qsl, quote, urlencode, urlsplit

import jwt
import requests
import responses
from requests import PreparedRequest

Json = dict[str, Any]
Reply = tuple[int, dict[str, str], str]

AUTHORITY = "https://login.microsoftonline.com"
GRAPH = "https://graph.microsoft.com/v1.0"
GRAPH_APP_ID = "00000003-0000-0000-c000-000000000000"
GRAPH_CONTENT_TYPE = (
    "application/json;odata.metadata=minimal;odata.streaming=true;"
    "IEEE754Compatible=false;charset=utf-8"
)
# What a well set-up Blink SMS app registration is granted.
FULL_PERMISSIONS = frozenset(
    {
        "User.Read.All",
        "GroupMember.Read.All",
        "User-PasswordProfile.ReadWrite.All",
        "RoleManagement.Read.Directory",
        "AuditLog.Read.All",
    }
)
ROLE_TEMPLATES = {
    "Global Administrator": "62e90394-69f5-4237-9190-012177145e10",
    "User Administrator": "fe930be7-5e62-47db-91af-98c3a49a38b1",
    "Helpdesk Administrator": "729827e3-9c14-49f7-bb1b-9608f156bbb8",
    "Privileged Authentication Administrator": "7be44c8a-adaf-4e2a-84d6-ab2649e08a13",
    "Exchange Administrator": "29232cdf-9323-42fd-ade2-1d097af3e4de",
}
_RESET_ADMINS = {
    ROLE_TEMPLATES["Global Administrator"],
    ROLE_TEMPLATES["Privileged Authentication Administrator"],
}
READ_USERS = {
    "User.Read.All",
    "User.ReadWrite.All",
    "Directory.Read.All",
    "Directory.ReadWrite.All",
}
READ_GROUPS = READ_USERS - {"User.Read.All", "User.ReadWrite.All"} | {
    "GroupMember.Read.All",
    "Group.Read.All",
    "GroupMember.ReadWrite.All",
    "Group.ReadWrite.All",
}
READ_ROLES = {"RoleManagement.Read.Directory", "RoleManagement.ReadWrite.Directory"} | {
    "Directory.Read.All",
    "Directory.ReadWrite.All",
}
SET_PASSWORDS = {
    "User-PasswordProfile.ReadWrite.All",
    "User.ReadWrite.All",
    "Directory.ReadWrite.All",
}
# Properties Graph returns for a user when there is no $select (the default set).
_DEFAULT_USER_PROPERTIES = ("businessPhones", "displayName", "givenName", "jobTitle", "mail",
                            "mobilePhone", "officeLocation", "preferredLanguage", "surname",
                            "userPrincipalName", "id")  # fmt: skip
# Filtering on these needs an advanced query (ConsistencyLevel: eventual, $count=true).
_ADVANCED_ONLY = {"onPremisesSamAccountName", "employeeId"}
SIGN_IN_FAILURES = {
    50126: "Error validating credentials due to invalid username or password.",
    50053: "Account is locked because user tried to sign in too many times with an incorrect "
    "user ID or password.",
    50055: "The password is expired.",
    50057: "The user account is disabled.",
}
_CLAUSE = re.compile(
    r"(?P<prop>[A-Za-z]+(?:/[A-Za-z]+)?) (?:(?P<op>eq|ge|le) "
    r"(?P<value>'(?:[^']|'')*'|[0-9][0-9TZ:.\-]*|true|false)|in \((?P<list>[^)]*)\))"
)
_JOIN = re.compile(r" (and|or) ")


def _now() -> datetime:
    return datetime.now(UTC)


def graph_time(moment: datetime) -> str:
    """Graph's DateTimeOffset: UTC, seven fractional digits (sign-in logs)."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f") + "0Z"


def graph_seconds(moment: datetime) -> str:
    """Graph's DateTimeOffset to the second (lastPasswordChangeDateTime)."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def password_is_strong(password: str) -> bool:
    """Entra ID's rule for cloud users: 8 to 256 characters, 3 of the 4 kinds."""
    kinds = {
        "lower" if c.islower() else "upper" if c.isupper() else "digit" if c.isdigit() else "other"
        for c in password
    }
    return 8 <= len(password) <= 256 and len(kinds) >= 3


@dataclass
class FakeUser:
    id: str
    user_principal_name: str
    display_name: str
    mail: str | None = None
    mobile_phone: str | None = None
    account_enabled: bool = True
    on_premises_sync_enabled: bool | None = None
    on_premises_sam_account_name: str | None = None
    employee_id: str | None = None
    password: str | None = field(default=None, repr=False)
    force_change: bool = False
    failed_sign_ins: int = 0
    locked_until: datetime | None = None
    last_password_change: datetime = field(default_factory=_now)

    def resource(self) -> Json:
        nickname = self.user_principal_name.split("@")[0]
        given, _, surname = self.display_name.partition(" ")
        return {
            "id": self.id,
            "businessPhones": [],
            "displayName": self.display_name,
            "givenName": given or None,
            "jobTitle": None,
            "mail": self.mail,
            "mailNickname": nickname,
            "mobilePhone": self.mobile_phone,
            "officeLocation": None,
            "preferredLanguage": "en-GB",
            "surname": surname or None,
            "userPrincipalName": self.user_principal_name,
            "accountEnabled": self.account_enabled,
            "onPremisesSyncEnabled": self.on_premises_sync_enabled,
            "onPremisesSamAccountName": self.on_premises_sam_account_name,
            "employeeId": self.employee_id,
            "lastPasswordChangeDateTime": graph_seconds(self.last_password_change),
            "userType": "Member",
        }


@dataclass
class FakeGroup:
    id: str
    display_name: str
    members: list[str] = field(default_factory=list)
    is_assignable_to_role: bool = False

    def resource(self) -> Json:
        return {
            "id": self.id,
            "displayName": self.display_name,
            "description": None,
            "groupTypes": [],
            "mail": None,
            "mailEnabled": False,
            "mailNickname": self.display_name.replace(" ", ""),
            "securityEnabled": True,
            "isAssignableToRole": self.is_assignable_to_role,
        }


@dataclass
class FakeRole:
    """An activated directory role (``directoryRole``), with its direct members."""

    id: str
    display_name: str
    role_template_id: str
    members: list[str] = field(default_factory=list)

    def resource(self) -> Json:
        return {
            "id": self.id,
            "deletedDateTime": None,
            "description": f"{self.display_name} role",
            "displayName": self.display_name,
            "roleTemplateId": self.role_template_id,
        }


@dataclass
class Failure:
    """A queued failure: the next matching request gets it instead of an answer."""

    status: int = 503
    code: str = "serviceNotAvailable"
    message: str = "The service is temporarily unavailable."
    retry_after: str | None = None
    exception: Exception | None = None
    method: str | None = None
    path: str | None = None

    def matches(self, method: str, path: str) -> bool:
        return self.method in (None, method) and (self.path is None or self.path in path)


@dataclass
class GraphCall:
    """A Graph request as the fake received it (the PATCH body included, for assertions)."""

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: Json | None

    @property
    def advanced(self) -> bool:
        """An advanced query: ``ConsistencyLevel: eventual`` and ``$count=true``."""
        return (
            self.headers.get("ConsistencyLevel") == "eventual"
            and self.query.get("$count") == "true"
        )


class GraphError(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


class FakeEntra:
    """A tenant with one app registration (the gateway's) and a public client (the probe)."""

    def __init__(
        self,
        *,
        tenant_id: str | None = None,
        domain: str = "contoso.onmicrosoft.com",
        client_id: str | None = None,
        client_secret: str | None = None,
        authority: str = AUTHORITY,
        graph_url: str = GRAPH,
        permissions: Iterable[str] = FULL_PERMISSIONS,
        app_roles: Iterable[str] = ("User Administrator",),
        premium: bool = True,
        page_size: int = 100,
        lockout_threshold: int = 10,
        lockout_duration: timedelta = timedelta(seconds=60),
        clock: Callable[[], datetime] = _now,
    ) -> None:
        self.tenant_id = tenant_id or str(uuid.uuid4())
        self.domain = domain
        self.client_id = client_id or str(uuid.uuid4())
        self.client_secret = client_secret or "Kx8Q~" + secrets.token_urlsafe(30)
        self.certificate: tuple[Any, str] | None = None  # (public key, SHA-1 thumbprint)
        self.probe_client_id = str(uuid.uuid4())
        self.authority = authority.rstrip("/")
        self.graph_url = graph_url.rstrip("/")
        self.permissions = set(permissions)
        self.app_roles = {ROLE_TEMPLATES[name] for name in app_roles}
        self.premium = premium
        self.page_size = page_size
        self.lockout_threshold = lockout_threshold
        self.lockout_duration = lockout_duration
        self.clock = clock
        self.users: dict[str, FakeUser] = {}
        self.groups: dict[str, FakeGroup] = {}
        self.roles: dict[str, FakeRole] = {}
        self.sign_in_log: list[Json] = []
        self.failures: list[Failure] = []
        self.token_failures: list[tuple[int, str, int, str]] = []
        self.graph_calls: list[GraphCall] = []
        self.token_requests: list[dict[str, str]] = []
        self.reject_all_tokens = False
        self._tokens: dict[str, tuple[datetime, frozenset[str]]] = {}
        self._pages: dict[str, tuple[list[Json], int, str, str, dict[str, str]]] = {}

    # -- set-up ------------------------------------------------------------------------

    def settings(self, **overrides: Any) -> dict[str, Any]:
        """Blink SMS directory settings for this tenant's app registration."""
        values: dict[str, Any] = {
            "tenant_id": self.tenant_id,
            "client_id": self.client_id,
            "client_secret": self.client_secret,
        }
        if self.authority != AUTHORITY:
            values["authority"] = self.authority
        if self.graph_url != GRAPH:
            values["graph_url"] = self.graph_url
        values.update(overrides)
        return {k: v for k, v in values.items() if v is not None}

    def install(self, rsps: responses.RequestsMock) -> FakeEntra:
        login = re.compile(re.escape(self.authority) + r"/[^/]+/")
        graph = re.compile(re.escape(self.graph_url) + r"/")
        rsps.add_callback(responses.GET, login, callback=self._identity)
        rsps.add_callback(responses.POST, login, callback=self._identity)
        for method in (responses.GET, responses.PATCH, responses.POST):
            rsps.add_callback(method, graph, callback=self._graph)
        return self

    def use_certificate(self, public_key: Any, thumbprint: str) -> None:
        """Register a certificate credential (as uploaded to the app registration)."""
        self.certificate = (public_key, thumbprint.upper())

    def add_user(
        self,
        username: str,
        password: str | None = None,
        *,
        display_name: str | None = None,
        mail: str | None = None,
        mobile: str | None = None,
        groups: Sequence[str] = (),
        enabled: bool = True,
        synced: bool = False,
        sam_account_name: str | None = None,
        employee_id: str | None = None,
    ) -> FakeUser:
        """Create ``username@domain``; ``groups`` holds group ids."""
        user = FakeUser(
            id=str(uuid.uuid4()),
            user_principal_name=f"{username}@{self.domain}",
            display_name=display_name or username.title(),
            mail=mail,
            mobile_phone=mobile,
            account_enabled=enabled,
            on_premises_sync_enabled=True if synced else None,
            on_premises_sam_account_name=sam_account_name,
            employee_id=employee_id,
            password=password,
            last_password_change=self.clock(),
        )
        self.users[user.id] = user
        for group_id in groups:
            self.groups[group_id].members.append(user.id)
        return user

    def add_group(
        self, name: str, *, member_of: Sequence[str] = (), role_assignable: bool = False
    ) -> str:
        group = FakeGroup(str(uuid.uuid4()), name, is_assignable_to_role=role_assignable)
        self.groups[group.id] = group
        for parent in member_of:
            self.groups[parent].members.append(group.id)
        return group.id

    def assign_role(self, principal_id: str, role_name: str) -> FakeRole:
        """An active assignment of a built-in role (activating the directoryRole)."""
        role = next((r for r in self.roles.values() if r.display_name == role_name), None)
        if role is None:
            role = FakeRole(str(uuid.uuid4()), role_name, ROLE_TEMPLATES[role_name])
            self.roles[role.id] = role
        role.members.append(principal_id)
        return role

    def fail_next(self, times: int = 1, **failure: Any) -> None:
        """Queue ``times`` Graph failures (see :class:`Failure`)."""
        self.failures.extend(Failure(**failure) for _ in range(times))

    def fail_token_requests(self, status: int, error: str, code: int, description: str) -> None:
        """Queue a token-endpoint error (``AADSTS{code}: {description}``)."""
        self.token_failures.append((status, error, code, description))

    def revoke_tokens(self) -> None:
        """Every access token issued so far is refused from now on (401 at Graph)."""
        self._tokens.clear()

    def patches_of(self, user_id: str) -> list[Json]:
        return [
            call.body or {}
            for call in self.graph_calls
            if call.method == "PATCH" and call.path == f"/users/{user_id}"
        ]

    def lock(self, user: FakeUser) -> None:
        """Lock the account as smart lockout does (without sign-in log entries)."""
        user.locked_until = self.clock() + self.lockout_duration

    # -- identity platform ---------------------------------------------------------------

    def _identity(self, request: PreparedRequest) -> Reply:
        path = urlsplit(str(request.url)).path
        tenant, _, rest = path.lstrip("/").partition("/")
        if tenant.casefold() not in (self.tenant_id, self.domain):
            return self._token_error(
                400,
                "invalid_tenant",
                90002,
                f"Tenant '{tenant}' not found. Check to make sure you have the correct "
                "tenant ID and are signing into the correct cloud.",
            )
        if request.method == "GET" and rest == "v2.0/.well-known/openid-configuration":
            return (
                200,
                {"Content-Type": "application/json; charset=utf-8"},
                json.dumps(self._openid_configuration()),
            )
        if request.method == "POST" and rest == "oauth2/v2.0/token":
            form = dict(parse_qsl(str(request.body or "")))
            if self.token_failures:
                status, error, code, description = self.token_failures.pop(0)
                return self._token_error(status, error, code, description)
            if form.get("grant_type") == "password":
                return self._password_grant(form)
            return self._client_credentials(form)
        return 404, {}, ""

    def _openid_configuration(self) -> Json:
        base = f"{self.authority}/{self.tenant_id}"
        return {
            "token_endpoint": f"{base}/oauth2/v2.0/token",
            "token_endpoint_auth_methods_supported": [
                "client_secret_post", "private_key_jwt", "client_secret_basic",
            ],
            "jwks_uri": f"{base}/discovery/v2.0/keys",
            "response_modes_supported": ["query", "fragment", "form_post"],
            "subject_types_supported": ["pairwise"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
            "scopes_supported": ["openid", "profile", "email", "offline_access"],
            "issuer": f"{base}/v2.0",
            "request_uri_parameter_supported": False,
            "userinfo_endpoint": f"https://{urlsplit(self.graph_url).netloc}/oidc/userinfo",
            "authorization_endpoint": f"{base}/oauth2/v2.0/authorize",
            "device_authorization_endpoint": f"{base}/oauth2/v2.0/devicecode",
            "http_logout_supported": True,
            "frontchannel_logout_supported": True,
            "end_session_endpoint": f"{base}/oauth2/v2.0/logout",
            "claims_supported": [
                "sub", "iss", "cloud_instance_name", "cloud_instance_host_name",
                "cloud_graph_host_name", "msgraph_host", "aud", "exp", "iat", "auth_time",
                "acr", "nonce", "preferred_username", "name", "tid", "ver", "at_hash",
                "c_hash", "email",
            ],
            "kerberos_endpoint": f"{base}/kerberos",
            "tenant_region_scope": "EU",
            "cloud_instance_name": urlsplit(self.authority).netloc.removeprefix("login."),
            "cloud_graph_host_name": "graph.windows.net",
            "msgraph_host": urlsplit(self.graph_url).netloc,
            "rbac_url": "https://pas.windows.net",
        }  # fmt: skip

    def _token_error(self, status: int, error: str, code: int, description: str) -> Reply:
        trace, correlation = str(uuid.uuid4()), str(uuid.uuid4())
        stamp = self.clock().strftime("%Y-%m-%d %H:%M:%SZ")
        body = {
            "error": error,
            "error_description": f"AADSTS{code}: {description}\r\nTrace ID: {trace}\r\n"
            f"Correlation ID: {correlation}\r\nTimestamp: {stamp}",
            "error_codes": [code],
            "timestamp": stamp,
            "trace_id": trace,
            "correlation_id": correlation,
            "error_uri": f"{self.authority}/error?code={code}",
        }
        return status, {"Content-Type": "application/json; charset=utf-8"}, json.dumps(body)

    def _client_credentials(self, form: dict[str, str]) -> Reply:
        logged = {k: v for k, v in form.items() if k not in ("client_secret", "client_assertion")}
        self.token_requests.append(logged)
        if form.get("client_id") != self.client_id:
            return self._token_error(
                400,
                "unauthorized_client",
                700016,
                f"Application with identifier '{form.get('client_id')}' was not found in the "
                f"directory '{self.domain}'.",
            )
        if not self._client_authenticated(form):
            if "client_assertion" in form:
                return self._token_error(
                    401,
                    "invalid_client",
                    700027,
                    "Client assertion failed signature validation.",
                )
            return self._token_error(
                401,
                "invalid_client",
                7000215,
                "Invalid client secret provided. Ensure the secret being sent in the request "
                "is the client secret value, not the client secret ID, for a secret added to "
                f"app '{self.client_id}'.",
            )
        expected_scope = f"{urlsplit(self.graph_url)._replace(path='').geturl()}/.default"
        if form.get("scope") != expected_scope:
            return self._token_error(
                400,
                "invalid_scope",
                1002012,
                f"The provided value for scope {form.get('scope')} is not valid.",
            )
        token = self._issue(frozenset(self.permissions))
        body = {"token_type": "Bearer", "expires_in": 3599, "ext_expires_in": 3599,
                "access_token": token}  # fmt: skip
        return 200, {"Content-Type": "application/json; charset=utf-8"}, json.dumps(body)

    def _client_authenticated(self, form: dict[str, str]) -> bool:
        if "client_secret" in form:
            return secrets.compare_digest(form["client_secret"], self.client_secret)
        assertion = form.get("client_assertion")
        if assertion is None or self.certificate is None:
            return False
        public_key, thumbprint = self.certificate
        header = jwt.get_unverified_header(assertion)
        x5t = base64.urlsafe_b64decode(str(header.get("x5t", "")) + "==").hex().upper()
        try:
            claims = jwt.decode(
                assertion,
                public_key,
                algorithms=["RS256", "PS256"],
                audience=f"{self.authority}/{self.tenant_id}/oauth2/v2.0/token",
            )
        except jwt.PyJWTError:
            return False
        return x5t == thumbprint and claims.get("iss") == claims.get("sub") == self.client_id

    def _issue(self, roles: frozenset[str]) -> str:
        now = self.clock()
        claims = {
            "aud": urlsplit(self.graph_url)._replace(path="").geturl(),
            "iss": f"https://sts.windows.net/{self.tenant_id}/",
            "iat": int(now.timestamp()),
            "nbf": int(now.timestamp()),
            "exp": int(now.timestamp()) + 3599,
            "aio": secrets.token_urlsafe(16),
            "app_displayname": "Blink SMS",
            "appid": self.client_id,
            "appidacr": "2" if self.certificate else "1",
            "idp": f"https://sts.windows.net/{self.tenant_id}/",
            "idtyp": "app",
            "oid": str(uuid.uuid4()),
            "rh": secrets.token_urlsafe(12),
            "roles": sorted(roles),
            "sub": str(uuid.uuid4()),
            "tid": self.tenant_id,
            "uti": secrets.token_urlsafe(12),
            "ver": "1.0",
            "wids": sorted(self.app_roles | {"0997a1d0-0d1d-4acb-b408-d5ca73121e90"}),
        }
        header = {"typ": "JWT", "alg": "RS256", "x5t": _b64url(secrets.token_bytes(20))}
        token = (
            ".".join(_b64url(json.dumps(part).encode()) for part in (header, claims))
            + "."
            + _b64url(secrets.token_bytes(64))
        )
        self._tokens[token] = (now + timedelta(seconds=3599), roles)
        return token

    def _password_grant(self, form: dict[str, str]) -> Reply:
        code = self.sign_in(form.get("username", ""), form.get("password", ""))
        if code:
            return self._token_error(400, "invalid_grant", code, SIGN_IN_FAILURES[code])
        token = _b64url(secrets.token_bytes(32))
        body = {"token_type": "Bearer", "scope": form.get("scope", ""), "expires_in": 4372,
                "ext_expires_in": 4372, "access_token": token}  # fmt: skip
        return 200, {"Content-Type": "application/json; charset=utf-8"}, json.dumps(body)

    def sign_in(self, username: str, password: str) -> int:
        """Entra's answer to a sign-in: 0, or the AADSTS code; logged like the real logs."""
        user = next(
            (
                u
                for u in self.users.values()
                if u.user_principal_name.casefold() == username.casefold()
            ),
            None,
        )
        if user is None:
            return 50126
        now = self.clock()
        if user.locked_until is not None and now < user.locked_until:
            code = 50053
        elif user.password is None or not secrets.compare_digest(user.password, password):
            user.failed_sign_ins += 1
            if user.failed_sign_ins >= self.lockout_threshold:
                user.failed_sign_ins, user.locked_until = 0, now + self.lockout_duration
            code = 50126
        elif not user.account_enabled:
            code = 50057
        elif user.force_change:
            code = 50055
        else:
            user.failed_sign_ins, code = 0, 0
        self.sign_in_log.append(self._sign_in_event(user, code, now))
        return code

    def _sign_in_event(self, user: FakeUser, code: int, when: datetime) -> Json:
        return {
            "id": str(uuid.uuid4()),
            "createdDateTime": graph_time(when),
            "userDisplayName": user.display_name,
            "userPrincipalName": user.user_principal_name,
            "userId": user.id,
            "appId": self.probe_client_id,
            "appDisplayName": "Blink SMS contract probe",
            "ipAddress": "203.0.113.7",
            "clientAppUsed": "Mobile Apps and Desktop clients",
            "correlationId": str(uuid.uuid4()),
            "conditionalAccessStatus": "notApplied",
            "isInteractive": True,
            "riskDetail": "none",
            "riskLevelAggregated": "none",
            "riskLevelDuringSignIn": "none",
            "riskState": "none",
            "riskEventTypes": [],
            "resourceDisplayName": "Microsoft Graph",
            "resourceId": GRAPH_APP_ID,
            "status": {
                "errorCode": code,
                "failureReason": SIGN_IN_FAILURES.get(code, "Other."),
                "additionalDetails": None,
            },
            "deviceDetail": {
                "deviceId": "",
                "displayName": None,
                "operatingSystem": "Linux",
                "browser": "Python Requests",
                "isCompliant": None,
                "isManaged": None,
                "trustType": None,
            },
            "location": {
                "city": "London",
                "state": "England",
                "countryOrRegion": "GB",
                "geoCoordinates": {"altitude": None, "latitude": 51.5, "longitude": -0.12},
            },
            "appliedConditionalAccessPolicies": [],
        }

    # -- Graph ---------------------------------------------------------------------------

    def _graph(self, request: PreparedRequest) -> Reply:
        url = urlsplit(str(request.url))
        path = url.path.removeprefix(urlsplit(self.graph_url).path)
        query = dict(parse_qsl(url.query))
        headers = {k: str(v) for k, v in request.headers.items()}
        raw = request.body
        body = json.loads(raw) if isinstance(raw, str | bytes) and raw else None
        self.graph_calls.append(GraphCall(str(request.method), path, query, headers, body))
        failure = next((f for f in self.failures if f.matches(str(request.method), path)), None)
        if failure is not None:
            self.failures.remove(failure)
            if failure.exception is not None:
                raise failure.exception
            extra = {"Retry-After": failure.retry_after} if failure.retry_after else {}
            return self._error(failure.status, failure.code, failure.message, headers, extra)
        try:
            roles = self._authorise(headers)
            status, payload = self._route(self.graph_calls[-1], roles)
        except GraphError as err:
            return self._error(err.status, err.code, err.message, headers)
        reply_headers = {"Content-Type": GRAPH_CONTENT_TYPE, **self._ids(headers)}
        if status == 204:
            return 204, self._ids(headers), ""
        return status, reply_headers, json.dumps(payload)

    def _ids(self, headers: dict[str, str]) -> dict[str, str]:
        request_id = str(uuid.uuid4())
        return {
            "request-id": request_id,
            "client-request-id": headers.get("client-request-id", request_id),
        }

    def _error(
        self,
        status: int,
        code: str,
        message: str,
        headers: dict[str, str],
        extra: dict[str, str] | None = None,
    ) -> Reply:
        ids = self._ids(headers)
        body = {
            "error": {
                "code": code,
                "message": message,
                "innerError": {
                    "date": self.clock().strftime("%Y-%m-%dT%H:%M:%S"),
                    "request-id": ids["request-id"],
                    "client-request-id": ids["client-request-id"],
                },
            }
        }
        return (
            status,
            {"Content-Type": GRAPH_CONTENT_TYPE, **ids, **(extra or {})},
            json.dumps(body),
        )

    def _authorise(self, headers: dict[str, str]) -> frozenset[str]:
        auth = headers.get("Authorization", "")
        if not auth.startswith("Bearer ") or not auth[7:]:
            raise GraphError(401, "InvalidAuthenticationToken", "Access token is empty.")
        issued = self._tokens.get(auth[7:])
        if self.reject_all_tokens or issued is None or issued[0] <= self.clock():
            raise GraphError(
                401, "InvalidAuthenticationToken", "Access token has expired or is not yet valid."
            )
        return issued[1]

    @staticmethod
    def _need(roles: frozenset[str], allowed: set[str]) -> None:
        if not roles & allowed:
            raise GraphError(
                403,
                "Authorization_RequestDenied",
                "Insufficient privileges to complete the operation.",
            )

    def _route(self, call: GraphCall, roles: frozenset[str]) -> tuple[int, Json]:
        if "$skiptoken" in call.query:
            return 200, self._next_page(call.query["$skiptoken"])
        parts = call.path.strip("/").split("/")
        key = parts[1] if len(parts) > 1 and parts[0] != "auditLogs" else ""
        shape = (call.method, *("{id}" if key and i == 1 else p for i, p in enumerate(parts)))
        handlers: dict[
            tuple[str, ...], Callable[[GraphCall, str, frozenset[str]], tuple[int, Json]]
        ]
        handlers = {
            ("GET", "users"): self._list_users,
            ("GET", "users", "{id}"): self._get_user,
            ("PATCH", "users", "{id}"): self._patch_user,
            ("GET", "users", "{id}", "transitiveMemberOf"): self._list_member_of,
            ("GET", "groups"): self._list_groups,
            ("GET", "groups", "{id}"): self._get_group,
            ("GET", "groups", "{id}", "transitiveMembers", "microsoft.graph.user"): self._members,
            ("GET", "directoryRoles"): self._list_roles,
            ("GET", "directoryRoles", "{id}", "members"): self._role_members,
            ("GET", "auditLogs", "signIns"): self._sign_ins,
        }
        handler = handlers.get(shape)
        if handler is None:
            raise GraphError(
                400, "BadRequest", f"Resource not found for the segment '{parts[-1]}'."
            )
        return handler(call, key, roles)

    def _list_users(self, call: GraphCall, _: str, roles: frozenset[str]) -> tuple[int, Json]:
        self._need(roles, READ_USERS)
        rows = self._filtered([u.resource() for u in self.users.values()], call, "User")
        return 200, self._collection("users", rows, call.query, call.path)

    def _get_user(self, call: GraphCall, key: str, roles: frozenset[str]) -> tuple[int, Json]:
        self._need(roles, READ_USERS)
        return 200, self._entity("users", self._user(key).resource(), call.query)

    def _patch_user(self, call: GraphCall, key: str, roles: frozenset[str]) -> tuple[int, Json]:
        self._update_user(self._user(key), call.body or {}, roles)
        return 204, {}

    def _list_member_of(self, call: GraphCall, key: str, roles: frozenset[str]) -> tuple[int, Json]:
        self._need(roles, READ_USERS)
        rows = self._member_of(self._user(key).id, roles)
        return 200, self._collection("directoryObjects", rows, call.query, call.path)

    def _list_groups(self, call: GraphCall, _: str, roles: frozenset[str]) -> tuple[int, Json]:
        self._need(roles, READ_GROUPS)
        rows = self._filtered([g.resource() for g in self.groups.values()], call, "Group")
        return 200, self._collection("groups", rows, call.query, call.path)

    def _get_group(self, call: GraphCall, key: str, roles: frozenset[str]) -> tuple[int, Json]:
        self._need(roles, READ_GROUPS)
        return 200, self._entity("groups", self._group(key).resource(), call.query)

    def _members(self, call: GraphCall, key: str, roles: frozenset[str]) -> tuple[int, Json]:
        self._need(roles, READ_GROUPS)
        if not call.advanced:
            raise GraphError(
                400,
                "Request_UnsupportedQuery",
                "The specified OData cast is only supported with advanced query parameters "
                "(ConsistencyLevel: eventual and $count=true).",
            )
        members = self._transitive_members(self._group(key).id)
        rows = [self.users[member].resource() for member in members]
        return 200, self._collection("users", rows, call.query, call.path)

    def _list_roles(self, call: GraphCall, _: str, roles: frozenset[str]) -> tuple[int, Json]:
        self._need(roles, READ_ROLES)
        rows = [role.resource() for role in self.roles.values()]
        return 200, self._collection("directoryRoles", rows, {}, call.path)

    def _role_members(self, call: GraphCall, key: str, roles: frozenset[str]) -> tuple[int, Json]:
        self._need(roles, READ_ROLES)
        role = self.roles.get(key)
        if role is None:
            raise self._not_found(key)
        rows = [self._typed(member) for member in role.members]
        return 200, self._collection("directoryObjects", rows, {}, call.path)

    # -- Graph resources -----------------------------------------------------------------

    def _not_found(self, key: str) -> GraphError:
        return GraphError(
            404,
            "Request_ResourceNotFound",
            f"Resource '{key}' does not exist or one of its queried reference-property "
            "objects are not present.",
        )

    def _user(self, key: str) -> FakeUser:
        for user in self.users.values():
            if key.casefold() in (user.id, user.user_principal_name.casefold()):
                return user
        raise self._not_found(key)

    def _group(self, key: str) -> FakeGroup:
        group = self.groups.get(key.casefold())
        if group is None:
            raise self._not_found(key)
        return group

    def _typed(self, object_id: str) -> Json:
        if object_id in self.users:
            return {"@odata.type": "#microsoft.graph.user", **self.users[object_id].resource()}
        return {"@odata.type": "#microsoft.graph.group", **self.groups[object_id].resource()}

    def _transitive_members(self, group_id: str) -> list[str]:
        users: list[str] = []
        seen, todo = {group_id}, [group_id]
        while todo:
            for member in self.groups[todo.pop()].members:
                if member in self.users and member not in users:
                    users.append(member)
                elif member in self.groups and member not in seen:
                    seen.add(member)
                    todo.append(member)
        return users

    def _member_of(self, user_id: str, roles: frozenset[str]) -> list[Json]:
        groups = [g for g in self.groups.values() if user_id in self._transitive_members(g.id)]
        principals = {user_id, *(g.id for g in groups)}
        rows = [{"@odata.type": "#microsoft.graph.group", **g.resource()} for g in groups]
        for role in self.roles.values():
            if principals & set(role.members):
                entry = {"@odata.type": "#microsoft.graph.directoryRole", **role.resource()}
                if not roles & READ_ROLES:  # limited information: the type and id only
                    entry = {"@odata.type": entry["@odata.type"], "id": role.id}
                rows.append(entry)
        return rows

    def _update_user(self, user: FakeUser, body: Json, roles: frozenset[str]) -> None:
        profile = body.get("passwordProfile")
        if set(body) != {"passwordProfile"} or not isinstance(profile, dict):
            raise GraphError(400, "Request_BadRequest", "This fake only updates passwordProfile.")
        self._need(roles, SET_PASSWORDS)
        holds_role = any(
            entry["@odata.type"] == "#microsoft.graph.directoryRole"
            for entry in self._member_of(user.id, frozenset(READ_ROLES))
        )
        if holds_role and not self.app_roles & _RESET_ADMINS:
            # Resetting an administrator needs a higher role than the app's own.
            raise GraphError(
                403,
                "Authorization_RequestDenied",
                "Insufficient privileges to complete the operation.",
            )
        if user.on_premises_sync_enabled:
            raise GraphError(
                400,
                "Request_BadRequest",
                "Unable to update the specified properties for on-premises mastered Directory "
                "Sync objects or objects currently undergoing migration.",
            )
        password = profile.get("password")
        if password is None:
            return  # Graph answers 204 and changes nothing
        if not isinstance(password, str) or not password_is_strong(password):
            raise GraphError(
                400,
                "Request_BadRequest",
                "The specified password does not comply with password complexity requirements. "
                "Please provide a different password.",
            )
        user.password = password
        user.force_change = bool(profile.get("forceChangePasswordNextSignIn", True))
        user.failed_sign_ins, user.locked_until = 0, None
        user.last_password_change = self.clock()

    def _sign_ins(self, call: GraphCall, _: str, roles: frozenset[str]) -> tuple[int, Json]:
        if "AuditLog.Read.All" not in roles:
            raise GraphError(
                403,
                "Authentication_MSGraphPermissionMissing",
                "Calling principal does not have required MSGraph permissions AuditLog.Read.All",
            )
        if not self.premium:
            raise GraphError(
                403,
                "Authentication_RequestFromNonPremiumTenantOrB2CTenant",
                "Neither tenant is B2C or tenant doesn't have premium license",
            )
        # Newest first; within one timestamp, the later entry first (as it was later).
        ordered = sorted(enumerate(self.sign_in_log), key=lambda p: (p[1]["createdDateTime"], p[0]))
        events = [event for _, event in reversed(ordered)]
        rows = self._filtered(events, call, "SignIn")
        top = {"$top": call.query.get("$top", "1000")}
        return 200, self._collection("auditLogs/signIns", rows, top, call.path)

    # -- OData ---------------------------------------------------------------------------

    def _filtered(self, rows: list[Json], call: GraphCall, kind: str) -> list[Json]:
        text = call.query.get("$filter")
        if not text:
            return rows
        test = self._parse_filter(text, call.advanced or kind == "SignIn", kind)
        return [row for row in rows if test(row)]

    def _parse_filter(self, text: str, advanced: bool, kind: str) -> Callable[[Json], bool]:
        tests: list[Callable[[Json], bool]] = []
        joins: set[str] = set()
        position = 0
        while True:
            clause = _CLAUSE.match(text, position)
            if clause is None:
                raise GraphError(400, "BadRequest", f"Invalid filter clause: {text[position:]!r}")
            prop = clause["prop"]
            if prop in _ADVANCED_ONLY and not advanced:
                raise GraphError(
                    400,
                    "Request_UnsupportedQuery",
                    f"Unsupported or invalid query filter clause specified for property "
                    f"'{prop}' of resource '{kind}'.",
                )
            tests.append(self._clause_test(clause))
            position = clause.end()
            if position == len(text):
                break
            join = _JOIN.match(text, position)
            if join is None:
                raise GraphError(400, "BadRequest", f"Syntax error at position {position}.")
            joins.add(join[1])
            position = join.end()
        if len(joins) > 1:
            raise GraphError(400, "BadRequest", "This fake does not mix 'and' with 'or'.")
        if joins == {"or"}:
            return lambda row: any(t(row) for t in tests)
        return lambda row: all(t(row) for t in tests)

    @staticmethod
    def _clause_test(clause: re.Match[str]) -> Callable[[Json], bool]:
        def value_of(row: Json) -> Any:
            value: Any = row
            for step in clause["prop"].split("/"):
                value = value.get(step) if isinstance(value, dict) else None
            return value

        if clause["list"] is not None:
            wanted = {v.strip().strip("'").casefold() for v in clause["list"].split(",")}
            return lambda row: str(value_of(row) or "").casefold() in wanted
        raw = clause["value"]
        if raw.startswith("'"):
            text = raw[1:-1].replace("''", "'").casefold()
            return lambda row: str(value_of(row) or "").casefold() == text
        if raw in ("true", "false"):
            return lambda row: value_of(row) is (raw == "true")
        if raw.isdigit():
            return lambda row: value_of(row) == int(raw)
        moment = datetime.fromisoformat(raw)
        if clause["op"] == "ge":
            return lambda row: datetime.fromisoformat(str(value_of(row))) >= moment
        return lambda row: datetime.fromisoformat(str(value_of(row))) <= moment

    def _project(self, row: Json, select: str | None, kind: str) -> Json:
        if select is None:
            if kind != "users":
                return row
            fields = [f for f in _DEFAULT_USER_PROPERTIES if f in row]
        else:
            fields = [f for f in select.split(",") if f]
            if kind == "directoryObjects":  # mixed types: each shows what it has
                fields = [f for f in fields if f in row]
            for name in fields:
                if name not in row:
                    raise GraphError(
                        400,
                        "Request_BadRequest",
                        f"Could not find a property named '{name}' on type 'microsoft.graph.user'.",
                    )
        typed = {"@odata.type": row["@odata.type"]} if "@odata.type" in row else {}
        return {**typed, **{name: row[name] for name in fields}}

    def _entity(self, kind: str, row: Json, query: dict[str, str]) -> Json:
        select = query.get("$select")
        context = f"{self.graph_url}/$metadata#{kind}" + (f"({select})" if select else "")
        return {"@odata.context": context + "/$entity", **self._project(row, select, kind)}

    def _collection(self, kind: str, rows: list[Json], query: dict[str, str], path: str) -> Json:
        select = query.get("$select") or None
        projected = [self._project(row, select, kind) for row in rows]
        context = f"{self.graph_url}/$metadata#{kind}" + (f"({select})" if select else "")
        size = max(1, min(int(query.get("$top") or 100), self.page_size))
        kept = {k: v for k, v in query.items() if k in ("$select", "$top", "$filter", "$count")}
        page = self._page(projected, size, context, path, kept)
        if query.get("$count") == "true":
            page = {"@odata.context": context, "@odata.count": len(projected), **page}
        return page

    def _page(
        self, rows: list[Json], size: int, context: str, path: str, kept: dict[str, str]
    ) -> Json:
        result: Json = {"@odata.context": context}
        if rows[size:]:
            token = _b64url(secrets.token_bytes(24))
            self._pages[token] = (rows[size:], size, context, path, kept)
            result["@odata.nextLink"] = f"{self.graph_url}{path}?" + urlencode(
                {**kept, "$skiptoken": token}, safe="$,'()", quote_via=quote
            )
        result["value"] = rows[:size]
        return result

    def _next_page(self, token: str) -> Json:
        stored = self._pages.pop(token, None)
        if stored is None:
            raise GraphError(400, "Request_BadRequest", "The skip token is invalid or has expired.")
        rows, size, context, path, kept = stored
        return self._page(rows, size, context, path, kept)


class EntraProbe:
    """The directory contract's view of the fake tenant: users are made in the tenant,
    and signing in uses the password grant on the token endpoint, as a test tenant
    would be probed."""

    def __init__(self, tenant: FakeEntra, adapter: Any) -> None:
        self.tenant = tenant
        self._adapter = adapter

    @property
    def adapter(self) -> Any:
        return self._adapter

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
    ) -> Any:
        from directory_adapters import DirectoryUser

        user = self.tenant.add_user(
            username, password, mail=email, mobile=mobile, groups=groups, enabled=not disabled
        )
        if protected:
            self.tenant.assign_role(user.id, "Exchange Administrator")
        return DirectoryUser(
            id=user.id,
            username=user.user_principal_name,
            display_name=user.display_name,
            email=email,
            upn=user.user_principal_name,
            mobile=mobile,
            disabled=disabled,
            protected=protected,
        )

    def create_group(self, name: str, member_of: Sequence[str] = ()) -> str:
        return self.tenant.add_group(name, member_of=member_of)

    def sign_in(self, username: str, password: str) -> str:
        """ok, must_change, locked or bad, from the token endpoint's answer."""
        upn = username if "@" in username else f"{username}@{self.tenant.domain}"
        response = requests.post(
            f"{self.tenant.authority}/{self.tenant.tenant_id}/oauth2/v2.0/token",
            data={
                "client_id": self.tenant.probe_client_id,
                "grant_type": "password",
                "username": upn,
                "password": password,
                "scope": "openid profile",
            },
            timeout=10,
        )
        if response.status_code == 200:
            return "ok"
        codes = response.json().get("error_codes", [])
        return {50055: "must_change", 50053: "locked"}.get(codes[0] if codes else 0, "bad")

    def lock(self, username: str) -> None:
        """Fail sign-ins until smart lockout answers 50053, as an attacker would."""
        for _ in range(self.tenant.lockout_threshold + 1):
            if self.sign_in(username, "not-the-password") == "locked":
                return
        raise AssertionError(f"{username} did not lock out")
