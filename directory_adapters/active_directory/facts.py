"""What the adapter learns about a domain once per ``cache_seconds``: its policy, its
protected groups and the client's scopes, with nested groups expanded.

With the groups expanded once, a user's scope and protection follow from the user's own
entry (DN, ``memberOf``, ``adminCount``, ``tokenGroups``) without a query per user, so
lists and the lockout watch stay one search.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from ldap3.utils.conv import escape_filter_chars

from ..errors import ConfigurationError
from .connection import Session
from .settings import ADSettings
from .values import (
    DOMAIN_PASSWORD_COMPLEX,
    IN_CHAIN,
    PROTECTED_ACCOUNT_RIDS,
    PROTECTED_BUILTIN_SIDS,
    PROTECTED_GROUP_RIDS,
    Entry,
    norm_dn,
    under,
)


@dataclass(frozen=True)
class DomainFacts:
    """A domain as one client's adapter sees it."""

    domain_dn: str
    domain_sid: str
    min_length: int
    complexity: bool
    base_dn: str  # normalised
    protected_sids: frozenset[str]
    protected_groups: frozenset[str]  # normalised DNs, nested groups included
    scope_containers: tuple[str, ...]  # normalised DNs of OUs and containers
    scope_groups: frozenset[str]  # normalised DNs, nested groups included
    scoped: bool
    loaded_at: float

    def in_scope(self, entry: Entry) -> bool:
        """Whether a user (not a computer) is under the base DN and in a scope."""
        classes = entry.classes()
        if classes and ("user" not in classes or "computer" in classes):
            return False
        dn = norm_dn(entry.dn)
        if not under(dn, self.base_dn):
            return False
        if not self.scoped:
            return True
        if any(under(dn, container) for container in self.scope_containers):
            return True
        return any(norm_dn(group) in self.scope_groups for group in entry.texts("memberOf"))

    def protected(self, entry: Entry) -> bool:
        """adminCount=1, the built-in Administrator or krbtgt, or a member (nested too)
        of a built-in admin group, by ``memberOf``, primary group or ``tokenGroups``."""
        if entry.number("adminCount") == 1:
            return True
        sid = entry.sid or ""
        if any(sid == f"{self.domain_sid}-{rid}" for rid in PROTECTED_ACCOUNT_RIDS):
            return True
        if entry.number("primaryGroupID") in PROTECTED_GROUP_RIDS:
            return True
        if any(norm_dn(group) in self.protected_groups for group in entry.texts("memberOf")):
            return True
        return bool(entry.sids_of_groups & self.protected_sids)


def with_nested(session: Session, domain_dn: str, groups: list[str]) -> frozenset[str]:
    """``groups`` and every group nested in them, as normalised DNs (one search)."""
    if not groups:
        return frozenset()
    chain = "".join(f"(memberOf:{IN_CHAIN}:={escape_filter_chars(g)})" for g in groups)
    nested = session.paged(domain_dn, f"(&(objectClass=group)(|{chain}))", ["cn"])
    return frozenset(norm_dn(dn) for dn in [*groups, *(e.dn for e in nested)])


def load_facts(session: Session, settings: ADSettings) -> DomainFacts:
    """Read the domain: its root and policy, the base DN, the protected groups and the
    scopes. A missing base DN or scope raises ``ConfigurationError`` naming it."""
    root = session.read("", ["defaultNamingContext"])
    domain_dn = root.text("defaultNamingContext") or settings.base_dn
    domain = session.read(domain_dn, ["objectSid", "minPwdLength", "pwdProperties"])
    try:
        session.read(settings.base_dn, ["objectClass"])
    except ConfigurationError as err:
        raise ConfigurationError(f"the base DN {settings.base_dn} does not exist: {err}") from err
    domain_sid = domain.sid or ""
    protected_sids = frozenset(
        [*PROTECTED_BUILTIN_SIDS, *(f"{domain_sid}-{rid}" for rid in PROTECTED_GROUP_RIDS)]
    )
    wanted = "".join(f"(objectSid={sid})" for sid in sorted(protected_sids))
    protected = session.search(domain_dn, f"(&(objectClass=group)(|{wanted}))", ["cn"])
    containers: list[str] = []
    groups: list[str] = []
    for scope in settings.scopes:
        try:
            entry = session.read(scope, ["objectClass"])
        except ConfigurationError as err:
            raise ConfigurationError(f"the scope {scope} does not exist: {err}") from err
        (groups if "group" in entry.classes() else containers).append(entry.dn)
    return DomainFacts(
        domain_dn=domain_dn,
        domain_sid=domain_sid,
        min_length=max(1, domain.number("minPwdLength")),
        complexity=bool(domain.number("pwdProperties") & DOMAIN_PASSWORD_COMPLEX),
        base_dn=norm_dn(settings.base_dn),
        protected_sids=protected_sids,
        protected_groups=with_nested(session, domain_dn, [e.dn for e in protected]),
        scope_containers=tuple(norm_dn(dn) for dn in containers),
        scope_groups=with_nested(session, domain_dn, groups),
        scoped=bool(settings.scopes),
        loaded_at=time.monotonic(),
    )
