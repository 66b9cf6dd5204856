"""The fake tenant's vocabulary: endpoints, permissions and role templates, time and
format helpers, the password rule, and the directory objects with their Graph shapes."""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

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
        "Domain.Read.All",
        "AdministrativeUnit.Read.All",
    }
)
ROLE_TEMPLATES = {
    "Global Administrator": "62e90394-69f5-4237-9190-012177145e10",
    "User Administrator": "fe930be7-5e62-47db-91af-98c3a49a38b1",
    "Helpdesk Administrator": "729827e3-9c14-49f7-bb1b-9608f156bbb8",
    "Privileged Authentication Administrator": "7be44c8a-adaf-4e2a-84d6-ab2649e08a13",
    "Exchange Administrator": "29232cdf-9323-42fd-ade2-1d097af3e4de",
    "Privileged Role Administrator": "e8611ab8-c189-46e8-94e1-60213ab1f814",
    "Password Administrator": "966707d0-3269-4727-9be2-8c3a10f19b9d",
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
READ_UNITS = {"AdministrativeUnit.Read.All", "AdministrativeUnit.ReadWrite.All"} | {
    "Directory.Read.All",
    "Directory.ReadWrite.All",
}
READ_DOMAINS = {"Domain.Read.All", "Domain.ReadWrite.All"} | {
    "Directory.Read.All",
    "Directory.ReadWrite.All",
}
SET_PASSWORDS = {
    "User-PasswordProfile.ReadWrite.All",
    "User.ReadWrite.All",
    "Directory.ReadWrite.All",
}
SIGN_IN_FAILURES = {
    50126: "Error validating credentials due to invalid username or password.",
    50053: "Account is locked because user tried to sign in too many times with an incorrect "
    "user ID or password.",
    50055: "The password is expired.",
    50057: "The user account is disabled.",
}


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
    force_change_with_mfa: bool = False  # the change also needs MFA
    failed_sign_ins: int = 0
    locked_until: datetime | None = None
    last_password_change: datetime = field(default_factory=_now)
    password_policies: str | None = None  # e.g. "DisablePasswordExpiration"
    user_type: str = "Member"  # or "Guest"

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
            "passwordPolicies": self.password_policies,
            "userType": self.user_type,
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
class FakeDomain:
    """A domain of the tenant with its password expiry policy (2147483647: never)."""

    id: str
    password_validity_days: int | None = 2147483647
    federated: bool = False
    is_default: bool = False

    def resource(self) -> Json:
        return {
            "id": self.id,
            "authenticationType": "Federated" if self.federated else "Managed",
            "availabilityStatus": None,
            "isAdminManaged": True,
            "isDefault": self.is_default,
            "isInitial": self.id.endswith(".onmicrosoft.com"),
            "isRoot": True,
            "isVerified": True,
            "passwordNotificationWindowInDays": 14,
            "passwordValidityPeriodInDays": self.password_validity_days,
            "supportedServices": ["Email", "OfficeCommunicationsOnline"],
            "state": None,
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
class FakeAdministrativeUnit:
    """An administrative unit with its direct members; ``restricted``: a
    restricted-management unit (only roles scoped to it manage its members)."""

    id: str
    display_name: str
    restricted: bool = False
    members: list[str] = field(default_factory=list)

    def resource(self) -> Json:
        return {
            "id": self.id,
            "deletedDateTime": None,
            "description": None,
            "displayName": self.display_name,
            "isMemberManagementRestricted": self.restricted,
            "membershipRule": None,
            "membershipRuleProcessingState": None,
            "membershipType": None,
            "visibility": None,
        }


@dataclass
class FakeRoleDefinition:
    """A ``unifiedRoleDefinition``: built-in (its id is the template id) or custom."""

    id: str
    display_name: str
    is_built_in: bool = True

    def resource(self) -> Json:
        return {
            "id": self.id,
            "description": f"{self.display_name} role",
            "displayName": self.display_name,
            "isBuiltIn": self.is_built_in,
            "isEnabled": True,
            "resourceScopes": ["/"],
            "templateId": self.id,
            "version": "1" if self.is_built_in else None,
            "rolePermissions": [],
        }


@dataclass
class FakeRoleAssignment:
    """A role of a principal at a scope ("/" or "/administrativeUnits/{id}"): an active
    ``unifiedRoleAssignment`` or, ``eligible``, a PIM
    ``unifiedRoleEligibilityScheduleInstance``."""

    id: str
    principal_id: str
    role_definition_id: str
    directory_scope_id: str = "/"
    eligible: bool = False
    start: datetime = field(default_factory=_now)

    def resource(self) -> Json:
        row: Json = {
            "id": self.id,
            "principalId": self.principal_id,
            "roleDefinitionId": self.role_definition_id,
            "directoryScopeId": self.directory_scope_id,
            "appScopeId": None,
        }
        if self.eligible:
            row.update(
                startDateTime=graph_seconds(self.start),
                endDateTime=None,
                memberType="Direct",
                roleEligibilityScheduleId=self.id,
            )
        else:
            row["condition"] = None
        return row


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
    def eventual(self) -> bool:
        """``ConsistencyLevel: eventual``: enough for ``$search``; Graph counts only with it."""
        return self.headers.get("ConsistencyLevel") == "eventual"

    @property
    def advanced(self) -> bool:
        """An advanced query: ``ConsistencyLevel: eventual`` and ``$count=true``."""
        return self.eventual and self.query.get("$count") == "true"


class GraphError(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message
