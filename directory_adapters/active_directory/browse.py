"""Groups and OUs to import users from, as an admin picks them on the import screen.

One paged search per search base, on the adapter's connection (the caller runs it
through :meth:`~.connection.Ldap.run`), limited to what the client's settings let the
gateway manage: the base DN and, when scopes are set, the scopes.
"""

from __future__ import annotations

import re
from typing import Literal

from ldap3.core.exceptions import LDAPInvalidDnError
from ldap3.utils.conv import escape_filter_chars
from ldap3.utils.dn import parse_dn

from ..base import DirectoryGroup
from .connection import Session
from .facts import DomainFacts
from .settings import ADSettings
from .values import norm_dn, under

Kind = Literal["group", "ou"]
# kind -> (objectClass, the attribute that names it)
_CLASSES: dict[Kind, tuple[str, str]] = {
    "group": ("group", "cn"),
    "ou": ("organizationalUnit", "ou"),
}
_ESCAPED = re.compile(r"\\(.)")


def canonical_path(dn: str) -> str:
    """Where an object is, as Active Directory's tools show it: the domain's DNS name,
    then each container from the top (``corp.example/Staff/Sales``)."""
    try:
        parts = parse_dn(dn)
    except LDAPInvalidDnError:
        return dn
    domain = ".".join(value for attribute, value, _ in parts if attribute.casefold() == "dc")
    names = [
        _ESCAPED.sub(r"\1", value)
        for attribute, value, _ in reversed(parts)
        if attribute.casefold() != "dc"
    ]
    return "/".join([domain, *names]) if domain else "/".join(names)


def search_bases(settings: ADSettings, facts: DomainFacts) -> list[str]:
    """Where users (and so their groups and OUs) are searched: the scoped OUs when every
    scope is an OU, the base DN otherwise (members of a scoped group can be anywhere)."""
    if facts.scoped and not facts.scope_groups:
        return list(facts.scope_containers)
    return [settings.base_dn]


def _visible(facts: DomainFacts, dn: str, kind: Kind) -> bool:
    """Whether the gateway may import from ``dn`` (normalised) under the client's scopes."""
    if not under(dn, facts.base_dn):
        return False
    if not facts.scoped or any(under(dn, container) for container in facts.scope_containers):
        return True
    if kind == "group":
        return dn in facts.scope_groups
    # A scoped group's members may sit in any OU: every OU under the base DN can be picked,
    # and list_users keeps only the users in scope.
    return bool(facts.scope_groups)


def browse(
    session: Session,
    settings: ADSettings,
    facts: DomainFacts,
    kind: Kind,
    search: str,
    limit: int,
) -> list[DirectoryGroup]:
    """Groups (or OUs) whose name contains ``search``, ignoring case, sorted by name then
    place, at most ``limit``. The id is the DN, which ``list_users`` takes."""
    if limit <= 0:
        return []
    object_class, naming = _CLASSES[kind]
    text = search.strip()
    search_filter = f"(objectClass={object_class})"
    if text:
        # A substring filter on cn/ou: case-insensitive by the attribute's matching rule.
        search_filter = f"(&{search_filter}({naming}=*{escape_filter_chars(text)}*))"
    found: dict[str, DirectoryGroup] = {}
    for base in search_bases(settings, facts):
        for entry in session.paged(base, search_filter, [naming]):
            dn = norm_dn(entry.dn)
            name = entry.text(naming) or ""
            if dn in found or not _visible(facts, dn, kind):
                continue
            # LDAP matched already; casefold keeps the rule the other directories follow.
            if text.casefold() in name.casefold():
                path = canonical_path(entry.dn)
                found[dn] = DirectoryGroup(id=entry.dn, name=name, path=path, kind=kind)
    ordered = sorted(found.values(), key=lambda item: (item.name.casefold(), item.path or ""))
    return ordered[: max(limit, 0)]
