"""The fake tenant itself: its parts put together, and the set-up API tests use."""

from __future__ import annotations

import re
import uuid
from collections.abc import Sequence
from typing import Any

import responses

from .graph_api import GraphApi
from .model import AUTHORITY, GRAPH, ROLE_TEMPLATES, Failure, FakeGroup, FakeRole, FakeUser, Json
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
    ) -> FakeUser:
        """Create ``username@domain``; ``groups`` holds group ids."""
        user = FakeUser(
            id=str(uuid.uuid4()),
            user_principal_name=f"{username}@{self.domain}",
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

    def assign_role(self, principal_id: str, role_name: str) -> FakeRole:
        """An active assignment of a built-in role (activating the directoryRole)."""
        role = next((r for r in self.roles.values() if r.display_name == role_name), None)
        if role is None:
            role = FakeRole(str(uuid.uuid4()), role_name, ROLE_TEMPLATES[role_name])
            self.roles[role.id] = role
        role.members.append(principal_id)
        return role

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
