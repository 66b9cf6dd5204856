"""The settings of one Active Directory connection, parsed and checked once.

The keys are documented in :mod:`directory_adapters.active_directory` and declared for
forms in :data:`SCHEMA`, with what the adapter can do in :data:`CAPABILITIES`. A
malformed or missing value raises ``ConfigurationError`` naming the key; the password
never appears in a message or a ``repr``. Nothing here imports ldap3.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ..base import (
    DIAGNOSE,
    LIST_GROUPS,
    LIST_OUS,
    LOCKOUT_QUERY,
    PASSWORD_EXPIRY,
    PASSWORD_POLICY,
    UNLOCK,
)
from ..errors import ConfigurationError
from ..schema import Field, SettingsSchema
from .values import USER_ATTRIBUTES


def _bool(settings: Mapping[str, Any], name: str, default: bool) -> bool:
    value = settings.get(name, default)
    if not isinstance(value, bool):
        raise ConfigurationError(f"Active Directory setting {name!r} must be true or false")
    return value


def _number(settings: Mapping[str, Any], name: str, default: float, low: float) -> float:
    value = settings.get(name, default)
    if isinstance(value, bool) or not isinstance(value, int | float) or value < low:
        raise ConfigurationError(f"Active Directory setting {name!r} must be a number >= {low}")
    return float(value)


def _text(settings: Mapping[str, Any], name: str, *, required: bool = False) -> str | None:
    value = settings.get(name)
    if value is None or value == "":
        if required:
            raise ConfigurationError(f"Active Directory setting {name!r} is required")
        return None
    if not isinstance(value, str):
        raise ConfigurationError(f"Active Directory setting {name!r} must be text")
    return value if name == "bind_password" else value.strip()


def _host_port(entry: str, default_port: int) -> tuple[str, int]:
    match = re.fullmatch(r"\[([^\]]+)\](?::(\d+))?|([^:\s\[\]]+)(?::(\d+))?", entry.strip())
    if not match:
        raise ConfigurationError(f"Active Directory host {entry!r} is not 'name' or 'name:port'")
    host = match.group(1) or match.group(3)
    port = match.group(2) or match.group(4)
    return host, int(port) if port else default_port


def _hosts(settings: Mapping[str, Any], default_port: int) -> tuple[tuple[str, int], ...]:
    raw = settings.get("hosts")
    if isinstance(raw, str):
        raw = [part for part in re.split(r"[,\s]+", raw) if part]
    if not isinstance(raw, list | tuple) or not raw:
        raise ConfigurationError(
            "Active Directory setting 'hosts' is required: the domain controllers' names"
        )
    if not all(isinstance(host, str) and host.strip() for host in raw):
        raise ConfigurationError("Active Directory setting 'hosts' must list host names")
    return tuple(_host_port(host, default_port) for host in raw)


def _scopes(settings: Mapping[str, Any]) -> tuple[str, ...]:
    scopes = settings.get("scopes", [])
    if isinstance(scopes, str):
        scopes = [scopes]
    if not isinstance(scopes, list | tuple) or not all(
        isinstance(scope, str) and "=" in scope for scope in scopes
    ):
        raise ConfigurationError(
            "Active Directory setting 'scopes' must be a list of OU or group DNs"
        )
    return tuple(scope.strip() for scope in scopes)


def _user_attribute(settings: Mapping[str, Any]) -> str:
    attribute = _text(settings, "user_attribute") or "sAMAccountName"
    known = {name.casefold(): name for name in USER_ATTRIBUTES}
    if attribute.casefold() not in known:
        raise ConfigurationError(
            "Active Directory setting 'user_attribute' must be one of " + ", ".join(USER_ATTRIBUTES)
        )
    return known[attribute.casefold()]


@dataclass(frozen=True)
class ADSettings:
    """The parsed, validated settings of one Active Directory connection."""

    hosts: tuple[tuple[str, int], ...]
    bind_user: str
    bind_password: str = field(repr=False)
    base_dn: str
    use_starttls: bool = False
    ca_file: str | None = None
    ca_pem: str | None = field(default=None, repr=False)
    verify_tls: bool = True
    scopes: tuple[str, ...] = ()
    user_attribute: str = "sAMAccountName"
    protect_admins: bool = True
    connect_timeout: float = 5.0
    receive_timeout: float = 15.0
    page_size: int = 500
    cache_seconds: float = 300.0

    @classmethod
    def parse(cls, settings: Mapping[str, Any]) -> ADSettings:
        """Validate ``settings``; ``ConfigurationError`` names the first bad key."""
        starttls = _bool(settings, "use_starttls", False)
        port = int(_number(settings, "port", 389 if starttls else 636, 1))
        ca_file = _text(settings, "ca_file")
        if ca_file is not None and not os.access(ca_file, os.R_OK):
            raise ConfigurationError(f"the CA file {ca_file!r} does not exist or cannot be read")
        ca_pem = _text(settings, "ca_pem")
        if ca_pem is not None and "-----BEGIN CERTIFICATE-----" not in ca_pem:
            raise ConfigurationError("Active Directory setting 'ca_pem' must be PEM text")
        base_dn = _text(settings, "base_dn", required=True) or ""
        if "=" not in base_dn:
            raise ConfigurationError("Active Directory setting 'base_dn' must be a DN")
        return cls(
            hosts=_hosts(settings, port),
            bind_user=_text(settings, "bind_user", required=True) or "",
            bind_password=_text(settings, "bind_password", required=True) or "",
            base_dn=base_dn,
            use_starttls=starttls,
            ca_file=ca_file,
            ca_pem=ca_pem,
            verify_tls=_bool(settings, "verify_tls", True),
            scopes=_scopes(settings),
            user_attribute=_user_attribute(settings),
            protect_admins=_bool(settings, "protect_admins", True),
            connect_timeout=_number(settings, "connect_timeout", 5.0, 0.1),
            receive_timeout=_number(settings, "receive_timeout", 15.0, 0.1),
            page_size=int(_number(settings, "page_size", 500, 1)),
            cache_seconds=_number(settings, "cache_seconds", 300.0, 0),
        )


SCHEMA = SettingsSchema(
    kind="active_directory",
    title="Active Directory (on premises, LDAPS)",
    fields=(
        Field("hosts", "Domain controllers", "list", required=True,
              help="Names of the domain controllers, tried in this order: dc1.corp.example "
                   "or dc1.corp.example:3269."),
        Field("bind_user", "Service account", required=True,
              help="The account the gateway signs in as: svc-blink@corp.example, "
                   "CORP\\svc-blink or its DN."),
        Field("bind_password", "Service account password", "secret", required=True,
              help="The service account's password."),
        Field("base_dn", "Base DN", required=True,
              help="Where users are searched, such as DC=corp,DC=example."),
        Field("scopes", "Managed OUs and groups", "list", default=(), one_per_line=True,
              help="DNs of the OUs and groups the gateway may manage, one per line; "
                   "empty: everyone under the base DN."),
        Field("user_attribute", "Users are known by", "choice", default="sAMAccountName",
              choices=USER_ATTRIBUTES,
              help="The attribute shown as a user's name and matched first."),
        Field("protect_admins", "Refuse administrators", "boolean", default=True,
              help="Never reset or unlock administrators and members of the built-in "
                   "admin groups."),
        Field("ca_pem", "CA certificate", "pem", advanced=True,
              help="PEM of the CA that issued the domain controllers' certificates; "
                   "empty: the system's trusted CAs."),
        Field("ca_file", "CA certificate file", advanced=True,
              help="Or the path of that PEM file on every machine that runs a worker."),
        Field("use_starttls", "Use StartTLS", "boolean", default=False, advanced=True,
              help="Plain LDAP upgraded by StartTLS (port 389) instead of LDAPS (636)."),
        Field("port", "Port", "number", advanced=True,
              help="The port of domain controllers listed without one: 636, or 389 with "
                   "StartTLS."),
        Field("verify_tls", "Verify certificates", "boolean", default=True, advanced=True,
              help="Check the certificate and the host name; turn off only to test."),
        Field("connect_timeout", "Connect timeout (s)", "number", default=5.0, advanced=True,
              help="Seconds to open a connection to one domain controller."),
        Field("receive_timeout", "Answer timeout (s)", "number", default=15.0, advanced=True,
              help="Seconds to wait for one answer."),
        Field("page_size", "Page size", "number", default=500, advanced=True,
              help="Entries per page of a search (at most 1000)."),
        Field("cache_seconds", "Cache (s)", "number", default=300.0, advanced=True,
              help="How long the domain's policy, admin groups and scopes are kept."),
    ),
)  # fmt: skip

CAPABILITIES: frozenset[str] = frozenset(
    {UNLOCK, LOCKOUT_QUERY, LIST_GROUPS, LIST_OUS, PASSWORD_POLICY, DIAGNOSE, PASSWORD_EXPIRY}
)
