"""One Entra ID tenant, faked at the HTTP boundary with ``responses``: the Microsoft
identity platform (OpenID configuration, token endpoint) and Microsoft Graph v1.0.

It keeps state, so effects are observed the way a real tenant shows them: users,
nested groups, directory roles (activated ``directoryRoles``, and role assignments and
PIM eligibility instances of built-in and custom roles at tenant or administrative-unit
scope), administrative units (restricted-management ones too), guests, federated
domains, passwords with ``forceChangePasswordNextSignIn``,
smart lockout, and sign-in logs. A probe signs users in with the resource-owner
password grant on the token endpoint (AADSTS50126 wrong password, 50053 locked,
50055 password expired / must change, 50057 disabled), as one would in a test tenant.

Shapes follow Microsoft's documentation: OData collections with ``@odata.context``
and ``@odata.nextLink`` (``$skiptoken``), ``@odata.type`` on directoryObject
collections, ``$select`` projections, errors as ``{"error": {"code", "message",
"innerError": {"date", "request-id", "client-request-id"}}}``, token errors as
``{"error", "error_description": "AADSTSnnnn: ...", "error_codes", ...}``. The fake
refuses what Graph refuses: a missing permission in the token's ``roles`` (403
``Authorization_RequestDenied``), an OData cast without ``ConsistencyLevel:
eventual`` and ``$count=true``, ``$search`` without ``ConsistencyLevel: eventual``,
``$orderby`` with ``$search`` or ``$filter`` outside an advanced query, an unknown
``$select`` property, a weak password. ``$search`` on names is tokenised as Graph's is
(words that start with the text, not any part of a name), and ``@odata.count`` comes
only with ``ConsistencyLevel: eventual``, as Graph ignores ``$count`` without it.
"""

from __future__ import annotations

from .clock import Clock
from .model import (
    AUTHORITY,
    FULL_PERMISSIONS,
    GRAPH,
    GRAPH_APP_ID,
    GRAPH_CONTENT_TYPE,
    READ_DOMAINS,
    READ_GROUPS,
    READ_ROLES,
    READ_UNITS,
    READ_USERS,
    ROLE_TEMPLATES,
    SET_PASSWORDS,
    SIGN_IN_FAILURES,
    Failure,
    FakeDomain,
    FakeGroup,
    FakeRole,
    FakeUser,
    GraphCall,
    GraphError,
    Json,
    Reply,
    graph_seconds,
    graph_time,
    password_is_strong,
)
from .probe import EntraProbe
from .tenant import FakeEntra

__all__ = [
    "AUTHORITY",
    "FULL_PERMISSIONS",
    "GRAPH",
    "GRAPH_APP_ID",
    "GRAPH_CONTENT_TYPE",
    "READ_DOMAINS",
    "READ_GROUPS",
    "READ_ROLES",
    "READ_UNITS",
    "READ_USERS",
    "ROLE_TEMPLATES",
    "SET_PASSWORDS",
    "SIGN_IN_FAILURES",
    "Clock",
    "EntraProbe",
    "Failure",
    "FakeDomain",
    "FakeEntra",
    "FakeGroup",
    "FakeRole",
    "FakeUser",
    "GraphCall",
    "GraphError",
    "Json",
    "Reply",
    "graph_seconds",
    "graph_time",
    "password_is_strong",
]
