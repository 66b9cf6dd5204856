"""Who acts: the typed actor every admin service takes, its role and its client scope.

An actor is an admin signed in to the console, the command line on the server, an API
key (later), a user texting from their phone, or the system itself (jobs, the
scheduler). Services authorise with :meth:`Actor.require` and look rows up through
:mod:`blink_sms.services.scope`, so code acting for a client admin never loads
another client's rows. The audit trail records :attr:`Actor.label`.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass


class Role(enum.StrEnum):
    MSP_OWNER = "msp-owner"  # everything, admins included
    MSP_TECHNICIAN = "msp-technician"  # every client, not the admins
    CLIENT_ADMIN = "client-admin"  # one client: its users, branding, mail, audit
    AUDITOR = "auditor"  # read-only, MSP-wide or one client

    @property
    def display(self) -> str:
        return _TITLES[self]

    @property
    def msp(self) -> bool:
        """Roles that belong to the MSP's staff (a second factor is mandatory)."""
        return self in (Role.MSP_OWNER, Role.MSP_TECHNICIAN)


_TITLES = {
    Role.MSP_OWNER: "MSP owner",
    Role.MSP_TECHNICIAN: "MSP technician",
    Role.CLIENT_ADMIN: "client admin",
    Role.AUDITOR: "auditor",
}


class Permission(enum.StrEnum):
    VIEW = "view"  # clients, users, dashboards, the audit trail of what one may see
    MANAGE_USERS = "manage-users"  # import, invite, Reset User, push reset, unlock, ...
    MANAGE_CLIENT = "manage-client"  # a client's branding and mail
    ONBOARD = "onboard"  # add, edit, rotate, disable and remove clients and directories
    MANAGE_ADMINS = "manage-admins"  # invite, change and remove admin accounts


GRANTS: dict[Role, frozenset[Permission]] = {
    Role.MSP_OWNER: frozenset(Permission),
    Role.MSP_TECHNICIAN: frozenset(Permission) - {Permission.MANAGE_ADMINS},
    Role.CLIENT_ADMIN: frozenset(
        {Permission.VIEW, Permission.MANAGE_USERS, Permission.MANAGE_CLIENT}
    ),
    Role.AUDITOR: frozenset({Permission.VIEW}),
}


class Forbidden(Exception):
    """The actor may see the object but not do this to it (HTTP 403)."""


@dataclass(frozen=True)
class Actor:
    """Who is acting, with what role, over which clients (``client_id`` None: all)."""

    kind: str  # "admin", "cli", "api_key", "system"
    label: str  # what the audit trail records, e.g. "admin:3:ann@msp.example"
    role: Role
    client_id: int | None = None
    admin_id: int | None = None
    source: str | None = None  # the IP address a request came from

    @property
    def msp_wide(self) -> bool:
        return self.client_id is None

    def sees(self, client_id: int | None) -> bool:
        """Whether a row of this client is visible (client admins see only their own)."""
        return self.client_id is None or self.client_id == client_id

    def may(self, permission: Permission) -> bool:
        return permission in GRANTS[self.role]

    def require(self, permission: Permission) -> None:
        """Raise :class:`Forbidden` unless the role grants ``permission``."""
        if not self.may(permission):
            raise Forbidden(f"a {self.role.display} may not do this")

    def at(self, source: str | None) -> Actor:
        """The same actor, acting from ``source`` (an IP address)."""
        return Actor(self.kind, self.label, self.role, self.client_id, self.admin_id, source)


# The operator with a shell on the server can do everything, like the MSP owner.
COMMAND_LINE = Actor(kind="cli", label="cli", role=Role.MSP_OWNER)
SYSTEM = Actor(kind="system", label="system", role=Role.MSP_OWNER)


def admin_actor(
    admin_id: int, email: str, role: Role, client_id: int | None, source: str | None = None
) -> Actor:
    return Actor(
        kind="admin",
        label=f"admin:{admin_id}:{email}",
        role=role,
        client_id=client_id,
        admin_id=admin_id,
        source=source,
    )
