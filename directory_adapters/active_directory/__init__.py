"""On-premises Active Directory over LDAPS (636) or StartTLS (389), with ldap3.

Settings (a mapping, stored encrypted per client; ``*`` = required):

==================== =====================================================================
``hosts`` *          domain controllers, tried in this order (ldap3 ``ServerPool``, FIRST):
                     a list or one string; ``"dc1.corp.example"`` or ``"dc1:3269"``
``port``             the default port: 636, or 389 with ``use_starttls``
``use_starttls``     ``false`` (LDAPS, default) or ``true`` (plain LDAP upgraded by StartTLS)
``ca_file``          PEM file of the CA that issued the DCs' certificates
``ca_pem``           the same CA as PEM text (handy when workers run on other machines);
                     without either, the system's trusted CAs are used
``verify_tls``       ``true`` (default): verify the certificate and the host name.
                     ``false`` turns verification off: an explicit choice, logged as a warning
``bind_user`` *      the service account: a DN, a UPN (``svc-blink@corp.example``) or
                     ``DOMAIN\\name``
``bind_password`` *  its password
``base_dn`` *        where users are searched, e.g. ``DC=corp,DC=example``
``scopes``           DNs of OUs and/or groups (nested membership) the gateway may manage;
                     empty (default): everything under ``base_dn``
``user_attribute``   what users are known by: ``sAMAccountName`` (default),
                     ``userPrincipalName`` or ``mail``; it becomes ``DirectoryUser.username``
``protect_admins``   ``true`` (default): refuse to reset or unlock protected accounts
                     (``adminCount=1``, the built-in Administrator, members, even nested,
                     of the built-in admin groups). Disabled accounts are always refused
``connect_timeout``  seconds to open a TCP connection to one DC (default 5)
``receive_timeout``  seconds to wait for one answer (default 15, whole seconds)
``page_size``        entries per page of a paged search (default 500; AD allows up to 1000)
``cache_seconds``    how long the domain's facts (policy, admin groups, scope groups) are
                     kept (default 300)
==================== =====================================================================

The parts: :mod:`.settings` parses these and declares them for forms (``SCHEMA``,
``CAPABILITIES``); :mod:`.connection` is the one way to LDAP (a bound connection reused
per adapter, failover across DCs, TLS that verifies the host name); :mod:`.ldap_errors`
maps LDAP failures to the adapter's errors in one table; :mod:`.facts` learns the domain's
policy, protected groups and scopes; :mod:`.adapter` has the operations; :mod:`.browse`
lists groups and OUs for an import; :mod:`.diagnosis` explains what is wrong with a
connection. No message ever contains a password.

Importing this package does not import ldap3: the settings and the schema are read by
the web process for every client, while ldap3 is needed only where a client of this kind
is used. The names that need it are imported on first use.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from .settings import CAPABILITIES, SCHEMA, ADSettings
from .values import encode_password, sid_text

if TYPE_CHECKING:
    from .adapter import ActiveDirectory
    from .connection import VerifiedTls
    from .diagnosis import Finding, diagnose

# name -> the module that defines it (each imports ldap3).
_LAZY = {
    "ActiveDirectory": ".adapter",
    "VerifiedTls": ".connection",
    "Finding": ".diagnosis",
    "diagnose": ".diagnosis",
}


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(_LAZY[name], __name__), name)
    globals()[name] = value  # the next access is a plain lookup
    return value


__all__ = [
    "CAPABILITIES",
    "SCHEMA",
    "ADSettings",
    "ActiveDirectory",
    "Finding",
    "VerifiedTls",
    "diagnose",
    "encode_password",
    "sid_text",
]
