"""``diagnose(settings)``: what is wrong with an Entra ID connection, in words an MSP
technician understands. ``blink-sms clients test`` prints it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from ..errors import ConfigurationError, DirectoryError
from .adapter import EntraIdDirectory
from .graph import Json
from .permissions import (
    PASSWORD_ROLES,
    READ_DOMAINS,
    READ_GROUPS,
    READ_ROLES,
    READ_SIGN_INS,
    READ_UNITS,
    READ_USERS,
    RESET_ROLE_ADVICE,
    SET_PASSWORDS,
)

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
    return findings_for(adapter)


def findings_for(adapter: EntraIdDirectory) -> list[Finding]:
    """What :func:`diagnose` finds, for an adapter already built."""
    try:
        claims = adapter.tokens.claims()
    except DirectoryError as err:
        return [Finding("problem", "token", err.message)]
    roles = {str(role) for role in claims.get("roles") or []}
    findings = [
        Finding(
            "ok",
            "token",
            f"app {claims.get('appid', adapter.settings.client_id)} got a token for tenant "
            f"{claims.get('tid', adapter.settings.tenant_id)}",
        )
    ]
    findings += [
        _permission_finding(need, roles) for need in _needs(adapter.settings.refuse_privileged)
    ]
    findings.append(_password_role_finding(claims))
    findings += _live_findings(adapter, roles)
    return findings


def _needs(refuse_privileged: bool) -> list[_Need]:
    return [
        _Need("read users", READ_USERS, "find users and read their attributes", "problem"),
        _Need("list groups", READ_GROUPS, "list the users of a group", "warning"),
        _Need("set passwords", SET_PASSWORDS, "set one-time passwords", "problem"),
        _Need(
            "spot privileged users",
            READ_ROLES,
            "refuse holders of directory roles, active or eligible",
            "problem" if refuse_privileged else "warning",
        ),
        _Need(
            "spot restricted users",
            READ_UNITS,
            "refuse users of restricted-management administrative units",
            "problem",
        ),
        _Need("lockout watch", READ_SIGN_INS, "read sign-in logs for lockouts", "warning"),
        _Need(
            "read domains",
            READ_DOMAINS,
            "refuse users of federated domains and read the password validity period",
            "problem",
        ),
    ]


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


def _password_role_finding(claims: Json) -> Finding:
    wids = {str(w) for w in claims.get("wids") or []}
    held = sorted(PASSWORD_ROLES[w] for w in wids if w in PASSWORD_ROLES)
    if held:
        return Finding("ok", "directory role", f"the app holds {', '.join(held)}")
    return Finding(
        "warning",
        "directory role",
        "the token shows no directory role that can reset passwords; if resets are "
        f"refused with 403, assign the app one: {RESET_ROLE_ADVICE}",
        missing="Password Administrator, Helpdesk Administrator or User Administrator",
    )


def _live_findings(adapter: EntraIdDirectory, roles: set[str]) -> list[Finding]:
    findings: list[Finding] = []
    try:
        adapter.check_connection()
        findings.append(Finding("ok", "reach", f"read users from {adapter.settings.graph_url}"))
    except DirectoryError as err:
        findings.append(Finding("problem", "reach", err.message))
    if READ_SIGN_INS[0] not in roles:
        return findings
    try:
        adapter._sign_ins({"$top": "1"})
        findings.append(Finding("ok", "lockout watch", "sign-in logs readable: watch on"))
    except DirectoryError:
        findings.append(
            Finding(
                "warning",
                "lockout watch",
                adapter.lockout_watch_off or "sign-in logs unreadable",
                missing="Entra ID P1 or P2 licence",
            )
        )
    return findings
