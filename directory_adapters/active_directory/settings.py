"""The settings of one Active Directory connection, parsed and checked once.

The keys are documented in :mod:`directory_adapters.active_directory`. A malformed
or missing value raises ``ConfigurationError`` naming the key; the password never
appears in a message or a ``repr``.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ..errors import ConfigurationError
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
