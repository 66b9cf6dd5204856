"""``diagnose(settings)``: what is wrong with an Active Directory connection, in words an
MSP technician understands. ``blink-sms clients test`` prints it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from ldap3.utils.conv import escape_filter_chars

from ..errors import ConfigurationError, DirectoryError, DirectoryUnavailable
from .adapter import ActiveDirectory, lacking_rights
from .connection import TLS_FAILED, Session
from .facts import DomainFacts
from .ldap_errors import RIGHT_FOR_ATTRIBUTE
from .settings import ADSettings
from .values import BIT_AND, IN_CHAIN, UF_ACCOUNTDISABLE, USER_FILTER, USER_READ, Entry

Level = Literal["ok", "warning", "problem"]
NEEDED = ["unicodePwd", *RIGHT_FOR_ATTRIBUTE]
NEEDED_WORDS = '"Reset Password" and write access to pwdLastSet and lockoutTime'


@dataclass(frozen=True)
class Finding:
    """One step of the check. A ``problem`` means resets will fail. ``missing`` is there
    for the same shape as Entra ID's findings; the message names a missing right."""

    level: Level
    topic: str
    message: str
    missing: str | None = None


def _check_dc(settings: ADSettings, index: int) -> tuple[Finding, ActiveDirectory | None]:
    """Reach, secure and bind to one DC alone."""
    adapter = ActiveDirectory(dataclasses.replace(settings, hosts=(settings.hosts[index],)))
    host, port = settings.hosts[index]
    name = f"{host}:{port}"
    transport = "StartTLS" if settings.use_starttls else "LDAPS"
    try:
        adapter.ldap.run(lambda session: None)
    except ConfigurationError as err:
        if err.message.startswith(TLS_FAILED):
            return Finding("problem", "TLS", f"{transport} failed: {err.message}"), None
        return Finding("problem", "service account", err.message), None
    except DirectoryUnavailable as err:
        return Finding("problem", "connection", f"{name} is unreachable: {err.message}"), None
    except DirectoryError as err:
        return Finding("problem", "connection", f"{name}: {err.message}"), None
    verified = "certificate verified" if settings.verify_tls else "certificate NOT verified"
    message = (
        f"{name} answers over {transport} ({verified}); "
        f"the service account {settings.bind_user} signs in"
    )
    return Finding("ok", "connection", message), adapter


def _samples(session: Session, settings: ADSettings, facts: DomainFacts) -> list[Entry]:
    """One enabled, unprotected user per scope (or under the base DN) to check rights on."""
    manageable = (
        f"(&{USER_FILTER}(!(adminCount=1))(!(userAccountControl:{BIT_AND}:={UF_ACCOUNTDISABLE})))"
    )
    plans = [] if settings.scopes else [(settings.base_dn, manageable)]
    for scope in settings.scopes:
        entry = session.read(scope, ["objectClass"])
        if "group" in entry.classes():
            chain = f"(memberOf:{IN_CHAIN}:={escape_filter_chars(entry.dn)})"
            plans.append((settings.base_dn, f"(&{manageable}{chain})"))
        else:
            plans.append((entry.dn, manageable))
    samples: list[Entry] = []
    for base, search_filter in plans:
        entries = session.search(base, search_filter, USER_READ, size_limit=20)
        usable = [e for e in entries if facts.in_scope(e) and not facts.protected(e)]
        samples += usable[:1]
    return samples


def _inspect(adapter: ActiveDirectory, session: Session) -> list[Finding]:
    settings = adapter.settings
    try:
        facts = adapter.facts(session)
    except DirectoryError as err:
        return [Finding("problem", "base DN and scopes", err.message)]
    where = ", ".join(settings.scopes) or settings.base_dn
    complexity = "on" if facts.complexity else "off"
    found = [
        Finding("ok", "base DN and scopes", f"users are managed in {where}"),
        Finding(
            "ok",
            "password policy",
            f"the domain asks for at least {facts.min_length} characters, complexity {complexity}",
        ),
    ]
    samples = _samples(session, settings, facts)
    if not samples:
        found.append(Finding("warning", "rights", "no enabled user in scope to check rights on"))
    for entry in samples:
        container = entry.dn.split(",", 1)[1]
        checked = f"checked on {entry.text('sAMAccountName')}"
        missing = lacking_rights(session, entry.dn, NEEDED)
        if missing:
            lacks = ", ".join(f'"{right}"' for right in missing)
            message = (
                f"the service account lacks {lacks} on {container} ({checked}): "
                f"delegate {NEEDED_WORDS} on that OU"
            )
            found.append(Finding("problem", "rights", message))
        else:
            found.append(Finding("ok", "rights", f"{NEEDED_WORDS} on {container} ({checked})"))
    return found


def diagnose(settings: Mapping[str, Any]) -> list[Finding]:
    """Check a client's Active Directory settings, step by step; one finding per step.

    The settings parse; each DC is reachable, its certificate is trusted and names the
    host; the service account signs in; the base DN and every scope exist; the domain's
    password policy is readable; and, on one real user per scope, the service account
    holds "Reset Password" and write access to pwdLastSet and lockoutTime. Nothing is
    changed in the directory.
    """
    try:
        parsed = ADSettings.parse(settings)
    except ConfigurationError as err:
        return [Finding("problem", "settings", err.message)]
    findings: list[Finding] = []
    if not parsed.verify_tls:
        findings.append(
            Finding("warning", "TLS", "certificate verification is off (verify_tls=false)")
        )
    working: ActiveDirectory | None = None
    for index in range(len(parsed.hosts)):
        finding, adapter = _check_dc(parsed, index)
        findings.append(finding)
        if working is None:
            working = adapter
        elif adapter is not None:
            adapter.close()
    if working is None:
        return findings
    adapter = working
    try:
        findings += adapter.ldap.run(lambda session: _inspect(adapter, session))
    except DirectoryError as err:
        findings.append(Finding("problem", "directory", err.message))
    finally:
        adapter.close()
    return findings
