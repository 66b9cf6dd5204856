"""The settings of one Entra ID connection, parsed and checked once.

The keys are documented in :mod:`directory_adapters.entra_id` and declared for forms in
:data:`SCHEMA`, with what the adapter can do in :data:`CAPABILITIES`. A malformed or
missing value raises ``ConfigurationError`` naming the key; the client secret and the
private key never appear in a message or a ``repr``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from ..base import DIAGNOSE, LIST_GROUPS, LOCKOUT_QUERY, PASSWORD_EXPIRY
from ..errors import ConfigurationError
from ..schema import Field, SettingsSchema

DEFAULT_AUTHORITY = "https://login.microsoftonline.com"
DEFAULT_GRAPH_URL = "https://graph.microsoft.com/v1.0"
# The national clouds: each one's sign-in authority and Graph.
CLOUDS = {
    "global": (DEFAULT_AUTHORITY, DEFAULT_GRAPH_URL),
    "usgov": ("https://login.microsoftonline.us", "https://graph.microsoft.us/v1.0"),
    "dod": ("https://login.microsoftonline.us", "https://dod-graph.microsoft.us/v1.0"),
    "china": ("https://login.chinacloudapi.cn", "https://microsoftgraph.chinacloudapi.cn/v1.0"),
}
USER_ATTRIBUTES = ("userPrincipalName", "mail", "mailNickname", "onPremisesSamAccountName",
                   "employeeId")  # fmt: skip
GUID = re.compile(r"^[0-9a-fA-F]{8}(-[0-9a-fA-F]{4}){3}-[0-9a-fA-F]{12}$")
_TENANT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9.-]{0,252}$")
_THUMBPRINT = re.compile(r"^([0-9a-fA-F]{40}|[0-9a-fA-F]{64})$")  # SHA-1 or SHA-256


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
    """Validated settings; see :mod:`directory_adapters.entra_id`. Secrets stay out of ``repr``."""

    tenant_id: str
    client_id: str
    client_secret: str | None = field(default=None, repr=False)
    certificate_key: str | None = field(default=None, repr=False)
    certificate_thumbprint: str | None = None
    cloud: str = "global"
    authority: str = DEFAULT_AUTHORITY
    graph_url: str = DEFAULT_GRAPH_URL
    connect_timeout: float = 5.0
    timeout: float = 30.0
    refuse_privileged: bool = True
    user_attribute: str = "userPrincipalName"
    lockout_window_minutes: int = 15
    force_change_with_mfa: bool = False

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
            raise ConfigurationError(
                "'certificate_thumbprint' must be 64 hex digits (SHA-256) or 40 (SHA-1)"
            )
        if key is not None:
            _check_private_key(key)
        cloud = settings.get("cloud") or "global"
        if cloud not in CLOUDS:
            raise ConfigurationError(f"'cloud' must be one of {', '.join(CLOUDS)}")
        authority, graph_url = CLOUDS[cloud]
        mfa = settings.get("force_change_with_mfa", False)
        if not isinstance(mfa, bool):
            raise ConfigurationError("'force_change_with_mfa' must be true or false")
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
            client_id=_text(settings, "client_id", GUID),
            client_secret=secret,
            certificate_key=key,
            certificate_thumbprint=thumbprint,
            cloud=cloud,
            authority=_https_url(settings, "authority", authority),
            graph_url=_https_url(settings, "graph_url", graph_url),
            connect_timeout=_number(settings, "connect_timeout", 5.0),
            timeout=_number(settings, "timeout", 30.0),
            refuse_privileged=refuse,
            user_attribute=attribute,
            lockout_window_minutes=window,
            force_change_with_mfa=mfa,
        )

    @property
    def credential(self) -> str | dict[str, str]:
        """The client secret, or the certificate: its private key with ``thumbprint``
        (SHA-1, msal's key) or ``thumbprint_sha256`` (see :class:`~.graph.MsalTokens`)."""
        if self.client_secret is not None:
            return self.client_secret
        assert self.certificate_key is not None and self.certificate_thumbprint is not None
        kind = "thumbprint" if len(self.certificate_thumbprint) == 40 else "thumbprint_sha256"
        return {"private_key": self.certificate_key, kind: self.certificate_thumbprint}

    @property
    def scope(self) -> str:
        """The app-only scope of this cloud's Graph, e.g. ``https://graph.microsoft.us/.default``."""
        parts = urlsplit(self.graph_url)
        return f"{parts.scheme}://{parts.netloc}/.default"


SCHEMA = SettingsSchema(
    kind="entra_id",
    title="Entra ID (Azure AD, Microsoft Graph)",
    fields=(
        Field("tenant_id", "Tenant", required=True,
              help="The directory (tenant) id, or its contoso.onmicrosoft.com name."),
        Field("client_id", "Application (client) id", required=True,
              help="The id of the app registration the gateway signs in as."),
        Field("client_secret", "Client secret", "secret",
              help="A client secret of that app; or leave it empty and use a certificate."),
        Field("certificate_key", "Certificate private key", "pem", write_only=True,
              help="Instead of a secret: the unencrypted PEM private key of a certificate "
                   "uploaded to the app."),
        Field("certificate_thumbprint", "Certificate thumbprint",
              help="With the private key: the certificate's SHA-256 thumbprint (64 hex "
                   "digits; or its SHA-1 one, 40)."),
        Field("cloud", "Cloud", "choice", default="global", choices=tuple(CLOUDS),
              help="global, usgov (US Government GCC High), dod (US Government DoD) or "
                   "china (21Vianet): sets the sign-in authority and Graph."),
        Field("force_change_with_mfa", "Require MFA for the password change", "boolean",
              default=False,
              help="With a forced change, the user must also pass MFA to set their "
                   "password (forceChangePasswordNextSignInWithMfa)."),
        Field("user_attribute", "Users are known by", "choice", default="userPrincipalName",
              choices=USER_ATTRIBUTES,
              help="The attribute shown as a user's name and matched first."),
        Field("refuse_privileged", "Refuse administrators", "boolean", default=True,
              help="Never reset users who hold an Entra directory role."),
        Field("lockout_window_minutes", "Lockout window (minutes)", "number", default=15,
              help="How far back the sign-in logs are read for lockouts (1 to 1440)."),
        Field("authority", "Sign-in authority", default=DEFAULT_AUTHORITY, advanced=True,
              help="The identity platform; set by the cloud, change it only to override."),
        Field("graph_url", "Microsoft Graph URL", default=DEFAULT_GRAPH_URL, advanced=True,
              help="Graph; set by the cloud, change it only to override."),
        Field("connect_timeout", "Connect timeout (s)", "number", default=5.0, advanced=True,
              help="Seconds to open a connection, on every HTTP call."),
        Field("timeout", "Answer timeout (s)", "number", default=30.0, advanced=True,
              help="Seconds to wait for an answer, on every HTTP call."),
    ),
)  # fmt: skip

# No unlock (smart lockout ends by itself or with a reset), no OUs, and a fixed password
# rule (Entra ID's for cloud users) rather than one read from the tenant.
CAPABILITIES: frozenset[str] = frozenset({LOCKOUT_QUERY, LIST_GROUPS, DIAGNOSE, PASSWORD_EXPIRY})
