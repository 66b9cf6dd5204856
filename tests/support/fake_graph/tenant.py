"""The fake tenant itself: its parts put together, and the set-up API tests use."""

from __future__ import annotations

import re
import uuid
from collections.abc import Sequence
from typing import Any

import responses

from .graph_api import GraphApi
from .model import (
    AUTHORITY,
    GRAPH,
    Failure,
    FakeAdministrativeUnit,
    FakeDomain,
    FakeGroup,
    FakeRole,
    FakeRoleAssignment,
    FakeRoleDefinition,
    FakeUser,
    Json,
)
from .tokens import TokenEndpoint


# The parts, each on the ones it uses: TenantState (state) <- OData <- SignIns <- TokenEndpoint;
# OData <- Resources; Resources + SignIns <- GraphApi.
class FakeEntra(TokenEndpoint, GraphApi):
    """A tenant with one app registration (the gateway's) and a public client (the probe)."""

    # -- set-up ------------------------------------------------------------------------

    def settings(self, **overrides: Any) -> dict[str, Any]:
        """Blink SMS directory settings for this tenant's app registration."""
        values: dict[str, Any] = {
            "tenant_id": self.tenant_id,
            "client_id": self.client_id,
            "client_secret": self.client_secret,
        }
        if self.authority != AUTHORITY:
            values["authority"] = self.authority
        if self.graph_url != GRAPH:
            values["graph_url"] = self.graph_url
        values.update(overrides)
        return {k: v for k, v in values.items() if v is not None}

    def install(self, rsps: responses.RequestsMock) -> FakeEntra:
        login = re.compile(re.escape(self.authority) + r"/[^/]+/")
        graph = re.compile(re.escape(self.graph_url) + r"/")
        rsps.add_callback(responses.GET, login, callback=self._identity)
        rsps.add_callback(responses.POST, login, callback=self._identity)
        for method in (responses.GET, responses.PATCH, responses.POST):
            rsps.add_callback(method, graph, callback=self._graph)
        return self

    def use_certificate(self, public_key: Any, thumbprint: str) -> None:
        """Register a certificate credential (as uploaded to the app registration)."""
        self.certificate = (public_key, thumbprint.upper())

    def add_user(
        self,
        username: str,
        password: str | None = None,
        *,
        display_name: str | None = None,
        mail: str | None = None,
        mobile: str | None = None,
        groups: Sequence[str] = (),
        enabled: bool = True,
        synced: bool = False,
        sam_account_name: str | None = None,
        employee_id: str | None = None,
        domain: str | None = None,
        guest: bool = False,
    ) -> FakeUser:
        """Create ``username@domain`` (the tenant's, or ``domain``); ``groups`` holds group
        ids. A ``guest`` gets a guest's UPN, ``username_fabrikam.example#EXT#@domain``."""
        domain = domain or self.domain
        upn = f"{username}_fabrikam.example#EXT#@{domain}" if guest else f"{username}@{domain}"
        user = FakeUser(
            id=str(uuid.uuid4()),
            user_principal_name=upn,
            user_type="Guest" if guest else "Member",
            display_name=display_name or username.title(),
            mail=mail,
            mobile_phone=mobile,
            account_enabled=enabled,
            on_premises_sync_enabled=True if synced else None,
            on_premises_sam_account_name=sam_account_name,
            employee_id=employee_id,
            password=password,
            last_password_change=self.clock(),
        )
        self.users[user.id] = user
        for group_id in groups:
            self.groups[group_id].members.append(user.id)
        return user

    def add_group(
        self, name: str, *, member_of: Sequence[str] = (), role_assignable: bool = False
    ) -> str:
        group = FakeGroup(str(uuid.uuid4()), name, is_assignable_to_role=role_assignable)
        self.groups[group.id] = group
        for parent in member_of:
            self.groups[parent].members.append(group.id)
        return group.id

    def add_domain(self, name: str, *, federated: bool = False) -> FakeDomain:
        """A verified domain; ``federated``: sign-ins go to an on-premises federation."""
        self.domains[name] = FakeDomain(name, federated=federated)
        return self.domains[name]

    def add_unit(self, name: str, *, members: Sequence[str] = (), restricted: bool = False) -> str:
        """An administrative unit holding ``members`` (object ids); its id."""
        unit = FakeAdministrativeUnit(str(uuid.uuid4()), name, restricted, list(members))
        self.units[unit.id] = unit
        return unit.id

    def add_custom_role(self, name: str) -> str:
        """A custom role definition; its id."""
        definition = FakeRoleDefinition(str(uuid.uuid4()), name, is_built_in=False)
        self.role_definitions[definition.id] = definition
        return definition.id

    def assign_role(
        self,
        principal_id: str,
        role_name: str,
        *,
        administrative_unit: str | None = None,
        eligible: bool = False,
    ) -> FakeRoleAssignment:
        """Assign a built-in or custom role, tenant-wide or scoped to an administrative
        unit, active or PIM-eligible. Only an active, tenant-wide built-in role also
        activates the ``directoryRole`` and shows in its members, as in Entra ID."""
        definition = next(d for d in self.role_definitions.values() if d.display_name == role_name)
        scope = f"/administrativeUnits/{administrative_unit}" if administrative_unit else "/"
        assignment = FakeRoleAssignment(
            str(uuid.uuid4()), principal_id, definition.id, scope, eligible, self.clock()
        )
        self.role_assignments.append(assignment)
        if definition.is_built_in and scope == "/" and not eligible:
            role = next((r for r in self.roles.values() if r.display_name == role_name), None)
            if role is None:
                role = FakeRole(str(uuid.uuid4()), role_name, definition.id)
                self.roles[role.id] = role
            role.members.append(principal_id)
        return assignment

    def fail_next(self, times: int = 1, **failure: Any) -> None:
        """Queue ``times`` Graph failures (see :class:`Failure`)."""
        self.failures.extend(Failure(**failure) for _ in range(times))

    def fail_token_requests(self, status: int, error: str, code: int, description: str) -> None:
        """Queue a token-endpoint error (``AADSTS{code}: {description}``)."""
        self.token_failures.append((status, error, code, description))

    def revoke_tokens(self) -> None:
        """Every access token issued so far is refused from now on (401 at Graph)."""
        self._tokens.clear()

    def patches_of(self, user_id: str) -> list[Json]:
        return [
            call.body or {}
            for call in self.graph_calls
            if call.method == "PATCH" and call.path == f"/users/{user_id}"
        ]

    def lock(self, user: FakeUser) -> None:
        """Lock the account as smart lockout does (without sign-in log entries)."""
        user.locked_until = self.clock() + self.lockout_duration
