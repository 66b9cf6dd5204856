"""Entra ID (Azure AD): users through Microsoft Graph, app-only tokens from msal.

Settings (per client, stored encrypted):

``tenant_id`` (required)
    The directory (tenant) id, a GUID, or its ``contoso.onmicrosoft.com`` name.
``client_id`` (required)
    The application (client) id of the app registration (a GUID).
``client_secret``
    A client secret of that app. Or, instead, a certificate uploaded to the app:
``certificate_key`` and ``certificate_thumbprint``
    its unencrypted PEM private key and its SHA-256 thumbprint (64 hex digits; the
    assertion is then signed PS256 with ``x5t#S256``), or its SHA-1 one (40, RS256).
``cloud`` (default ``global``)
    A preset of ``authority`` and ``graph_url``: ``global`` (login.microsoftonline.com,
    graph.microsoft.com), ``usgov`` (US Government GCC High: login.microsoftonline.us,
    graph.microsoft.us), ``dod`` (login.microsoftonline.us, dod-graph.microsoft.us) or
    ``china`` (21Vianet: login.chinacloudapi.cn, microsoftgraph.chinacloudapi.cn).
``authority`` and ``graph_url`` (default: the cloud's)
    To override the preset. Tokens are asked for the Graph host's ``/.default`` scope.
``force_change_with_mfa`` (default ``false``)
    When a reset forces a change at next sign-in, also send
    ``forceChangePasswordNextSignInWithMfa``: the user passes MFA before changing it.
``connect_timeout`` (default 5) and ``timeout`` (default 30)
    Seconds, on every HTTP call (token endpoint and Graph).
``refuse_privileged`` (default ``true``)
    Refuse users who hold an Entra directory role and show them as ``protected``:
    active or PIM-eligible, tenant-wide or scoped to an administrative unit, built-in
    or custom, direct or through a role-assignable group (``roleManagement/directory``
    ``roleAssignments`` and ``roleEligibilityScheduleInstances``).
``user_attribute`` (default ``userPrincipalName``)
    What ``username`` shows and ``find_user`` also matches: ``userPrincipalName``,
    ``mail``, ``mailNickname``, ``onPremisesSamAccountName`` or ``employeeId``.
``lockout_window_minutes`` (default 15)
    How far back the sign-in logs are read for lockouts.

Application permissions (admin consent), least privileged first; :func:`diagnose`
reads the token's ``roles`` claim and says which are missing: ``User.Read.All``;
``GroupMember.Read.All`` (users of a group); ``User-PasswordProfile.ReadWrite.All``
(set passwords; Microsoft also documents a directory role for the app, such as User
Administrator); ``RoleManagement.Read.Directory`` (role assignments and PIM eligibilities: without
it no user can be told apart from an administrator, so lookups fail);
``AuditLog.Read.All`` and an Entra ID P1/P2 licence (lockout watch); ``Domain.Read.All``
(federated domains, and the password validity period for expiry reminders);
``AdministrativeUnit.Read.All`` (restricted-management administrative units).

Where Entra ID differs from the Protocol:

* there is no unlock: :meth:`EntraIdDirectory.unlock` raises ``OperationNotSupported``
  (smart lockout ends by itself, and a password reset ends it too, which is also why
  ``set_password`` cannot honour ``unlock=False``);
* users synchronised from on-premises AD (``onPremisesSyncEnabled``) are refused with
  :class:`SyncedFromActiveDirectory` and shown as ``protected``: a cloud reset would
  not reach AD, where their password lives; so are users of a federated domain
  (:class:`FederatedDomain`: connect the client's AD instead), guests
  (:class:`GuestAccount`) and members of a restricted-management administrative unit
  (:class:`ManagementRestricted`); ``protected_reason`` says which;
* there are no OUs: ``list_ous``, ``list_users(ou=...)`` and ``count_users(ou=...)``
  raise ``OperationNotSupported``;
* group names are searched by Graph's ``$search``, which matches words that start with
  the text, not any part of a name (:func:`.lookups.find_groups`);
* lockouts are read from the sign-in logs (error 50053) since the last poll; a
  lockout counts until the window passes or the password changes after it. A 50053
  for a sign-in blocked from a malicious address is a lockout of kind "blocked_ip".

The parts: :mod:`.settings` parses these and declares them for forms (``SCHEMA``,
``CAPABILITIES``); :mod:`.graph` is the one way to Graph (one session, timeouts, msal's
tokens, throttling, one error table, :data:`ERROR_TABLE`); :mod:`.permissions` names the
permissions and roles each capability needs; :mod:`.lookups` reads roles, privileged
users and groups; :mod:`.adapter` has the operations; :mod:`.diagnosis` explains what is
wrong with a connection. No message ever contains a secret or a password.

Importing this package imports neither requests nor msal: the settings and the schema
are read by the web process for every client, the HTTP stack only where a client of this
kind is used. The names that need it are imported on first use.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from .settings import CAPABILITIES, SCHEMA, EntraSettings

if TYPE_CHECKING:
    from .adapter import (
        EntraIdDirectory,
        FederatedDomain,
        GuestAccount,
        ManagementRestricted,
        PrivilegedAccount,
        SyncedFromActiveDirectory,
    )
    from .diagnosis import Finding, diagnose
    from .graph import ERROR_TABLE, ErrorRule, GraphClient, MsalTokens

# name -> the module that defines it (each imports requests).
_LAZY = {
    "EntraIdDirectory": ".adapter",
    "PrivilegedAccount": ".adapter",
    "GuestAccount": ".adapter",
    "ManagementRestricted": ".adapter",
    "FederatedDomain": ".adapter",
    "SyncedFromActiveDirectory": ".adapter",
    "Finding": ".diagnosis",
    "diagnose": ".diagnosis",
    "ERROR_TABLE": ".graph",
    "ErrorRule": ".graph",
    "GraphClient": ".graph",
    "MsalTokens": ".graph",
}


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(_LAZY[name], __name__), name)
    globals()[name] = value  # the next access is a plain lookup
    return value


__all__ = [
    "CAPABILITIES",
    "ERROR_TABLE",
    "SCHEMA",
    "EntraIdDirectory",
    "EntraSettings",
    "ErrorRule",
    "FederatedDomain",
    "Finding",
    "GraphClient",
    "GuestAccount",
    "ManagementRestricted",
    "MsalTokens",
    "PrivilegedAccount",
    "SyncedFromActiveDirectory",
    "diagnose",
]
