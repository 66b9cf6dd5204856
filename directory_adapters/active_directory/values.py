"""Active Directory's constants and values: filters, flags, SIDs, GUIDs, timestamps.

Searches ask for raw values (no schema is read), so binary attributes stay bytes and
the conversions live here, in one place.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from ..errors import ConfigurationError

USER_FILTER = "(&(objectCategory=person)(objectClass=user))"
IN_CHAIN = "1.2.840.113556.1.4.1941"  # LDAP_MATCHING_RULE_IN_CHAIN: nested membership
BIT_AND = "1.2.840.113556.1.4.803"  # LDAP_MATCHING_RULE_BIT_AND
PAGED_RESULTS = "1.2.840.113556.1.4.319"
UF_ACCOUNTDISABLE = 0x2
UF_LOCKOUT = 0x10  # in msDS-User-Account-Control-Computed
UF_DONT_EXPIRE_PASSWD = 0x10000
DOMAIN_PASSWORD_COMPLEX = 0x1  # in pwdProperties
# Constructed by the DC from pwdLastSet, the domain's maxPwdAge and any fine-grained policy
# (PSO); readable in paged subtree searches (Windows Server 2008 and later, Samba 4).
EXPIRY_COMPUTED = "msDS-UserPasswordExpiryTimeComputed"
NEVER_EXPIRES = 0x7FFFFFFFFFFFFFFF  # its value when the password never expires
USER_ATTRIBUTES = ("sAMAccountName", "userPrincipalName", "mail")

# Protected accounts: members (directly or nested) of these groups, the built-in
# Administrator (RID 500) and krbtgt (502), and whatever AdminSDHolder marked adminCount=1.
PROTECTED_BUILTIN_SIDS = (
    "S-1-5-32-544",  # Administrators
    "S-1-5-32-548",  # Account Operators
    "S-1-5-32-549",  # Server Operators
    "S-1-5-32-550",  # Print Operators
    "S-1-5-32-551",  # Backup Operators
    "S-1-5-32-552",  # Replicator
)
# Domain Admins, Domain Controllers, Schema Admins, Enterprise Admins, Read-only Domain
# Controllers, Key Admins, Enterprise Key Admins.
PROTECTED_GROUP_RIDS = (512, 516, 518, 519, 521, 526, 527)
PROTECTED_ACCOUNT_RIDS = (500, 502)

# What is read of a user, in every search.
USER_READ = (
    "objectClass",
    "objectGUID",
    "objectSid",
    "sAMAccountName",
    "userPrincipalName",
    "mail",
    "mobile",
    "displayName",
    "cn",
    "userAccountControl",
    "adminCount",
    "memberOf",
    "primaryGroupID",
    "lockoutTime",
    "msDS-User-Account-Control-Computed",
)

_FILETIME_EPOCH = datetime(1601, 1, 1, tzinfo=UTC)
_NAME_DELIMITERS = re.compile(r"[,.\-_ #\t]+")


def norm_dn(dn: str) -> str:
    """A DN for comparison: case-folded, no spaces around the separators."""
    return ",".join(part.strip() for part in dn.casefold().split(","))


def under(dn: str, container: str) -> bool:
    """Whether the normalised ``dn`` is the normalised ``container`` or lies below it."""
    return dn == container or dn.endswith("," + container)


def sid_text(raw: bytes) -> str:
    """A binary SID as ``S-1-5-21-...``."""
    authority = int.from_bytes(raw[2:8], "big")
    subs = [int.from_bytes(raw[8 + 4 * i : 12 + 4 * i], "little") for i in range(raw[1])]
    return "-".join(["S", str(raw[0]), str(authority), *map(str, subs)])


def filetime(value: int) -> datetime:
    """An AD timestamp (100 ns ticks since 1601) as an aware UTC datetime."""
    return _FILETIME_EPOCH + timedelta(microseconds=value // 10)


def filetime_ticks(moment: datetime) -> int:
    """An aware datetime as an AD timestamp (the inverse of :func:`filetime`)."""
    return (moment - _FILETIME_EPOCH) // timedelta(microseconds=1) * 10


def encode_password(password: str) -> bytes:
    """The ``unicodePwd`` value AD expects: the password in double quotes, UTF-16-LE."""
    return f'"{password}"'.encode("utf-16-le")


def name_in_password(password: str, account: str, display_name: str) -> str | None:
    """AD's complexity rule on names, or ``None`` when the password passes it.

    The account name (3+ characters) must not occur in the password, nor any 3+
    character token of the display name, ignoring case. Windows DCs enforce it; Samba
    does not, so the adapter checks it itself and every DC behaves the same.
    """
    folded = password.casefold()
    if len(account) >= 3 and account.casefold() in folded:
        return "it contains the account name"
    for token in _NAME_DELIMITERS.split(display_name):
        if len(token) >= 3 and token.casefold() in folded:
            return "it contains part of the user's full name"
    return None


@dataclass(frozen=True)
class Entry:
    """One search result: its DN and raw attribute values (names case-folded)."""

    dn: str
    raw: Mapping[str, Sequence[bytes]]

    @classmethod
    def of(cls, item: Mapping[str, Any]) -> Entry:
        """From an ldap3 ``searchResEntry`` response item."""
        raw = {
            str(name).casefold(): [v if isinstance(v, bytes) else str(v).encode() for v in values]
            for name, values in (item.get("raw_attributes") or {}).items()
        }
        return cls(str(item["dn"]), raw)

    def first(self, name: str) -> bytes | None:
        values = self.raw.get(name.casefold())
        return values[0] if values else None

    def text(self, name: str) -> str | None:
        value = self.first(name)
        return value.decode("utf-8", "replace") if value is not None else None

    def texts(self, name: str) -> list[str]:
        return [v.decode("utf-8", "replace") for v in self.raw.get(name.casefold(), ())]

    def number(self, name: str) -> int:
        """An integer attribute; 0 when absent."""
        value = self.text(name)
        try:
            return int(value) if value else 0
        except ValueError:
            return 0

    def classes(self) -> set[str]:
        return {value.casefold() for value in self.texts("objectClass")}

    @property
    def guid(self) -> str:
        """objectGUID in its usual string form (the stable id)."""
        raw = self.first("objectGUID")
        if raw is None or len(raw) != 16:
            raise ConfigurationError(f"the directory returned no objectGUID for {self.dn}")
        return str(uuid.UUID(bytes_le=raw))

    @property
    def sid(self) -> str | None:
        raw = self.first("objectSid")
        return sid_text(raw) if raw else None

    @property
    def sids_of_groups(self) -> set[str]:
        """The SIDs of ``tokenGroups`` (every group, nested and primary; base reads only)."""
        return {sid_text(raw) for raw in self.raw.get("tokengroups", ())}
