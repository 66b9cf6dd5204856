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
``AuditLog.Read.All`` and an Entra ID P1/P2 licence (lockout watch); ``Domain.Read.All``
(the domains' password validity period, for password-expiry reminders).

Where Entra ID differs from the Protocol:

* there is no unlock: :meth:`EntraIdDirectory.unlock` raises ``OperationNotSupported``
  (smart lockout ends by itself, and a password reset ends it too, which is also why
  ``set_password`` cannot honour ``unlock=False``);
* users synchronised from on-premises AD (``onPremisesSyncEnabled``) are refused with
  :class:`SyncedFromActiveDirectory` and shown as ``protected``: a cloud reset would
  not reach AD, where their password lives;
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
    from .adapter import EntraIdDirectory, PrivilegedAccount, SyncedFromActiveDirectory
    from .diagnosis import Finding, diagnose
    from .graph import ERROR_TABLE, ErrorRule, GraphClient, MsalTokens

# name -> the module that defines it (each imports requests).
_LAZY = {
    "EntraIdDirectory": ".adapter",
    "PrivilegedAccount": ".adapter",
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
    "Finding",
    "GraphClient",
    "MsalTokens",
    "PrivilegedAccount",
    "SyncedFromActiveDirectory",
    "diagnose",
]
