"""The tenant's state, defined once for every part of :class:`~.tenant.FakeEntra`."""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Callable, Iterable
from datetime import datetime, timedelta
from typing import Any

from .model import (
    AUTHORITY,
    FULL_PERMISSIONS,
    GRAPH,
    ROLE_TEMPLATES,
    Failure,
    FakeAdministrativeUnit,
    FakeDomain,
    FakeGroup,
    FakeRole,
    FakeRoleAssignment,
    FakeRoleDefinition,
    FakeUser,
    GraphCall,
    Json,
    _now,
)


class TenantState:
    """The attributes the parts share; the constructor's arguments are FakeEntra's."""

    def __init__(
        self,
        *,
        tenant_id: str | None = None,
        domain: str = "contoso.onmicrosoft.com",
        client_id: str | None = None,
        client_secret: str | None = None,
        authority: str = AUTHORITY,
        graph_url: str = GRAPH,
        permissions: Iterable[str] = FULL_PERMISSIONS,
        app_roles: Iterable[str] = ("User Administrator",),
        premium: bool = True,
        page_size: int = 100,
        lockout_threshold: int = 10,
        lockout_duration: timedelta = timedelta(seconds=60),
        clock: Callable[[], datetime] = _now,
    ) -> None:
        self.tenant_id = tenant_id or str(uuid.uuid4())
        self.domain = domain
        self.client_id = client_id or str(uuid.uuid4())
        self.client_secret = client_secret or "Kx8Q~" + secrets.token_urlsafe(30)
        self.certificate: tuple[Any, str] | None = None  # (public key, SHA-1 thumbprint)
        self.probe_client_id = str(uuid.uuid4())
        self.authority = authority.rstrip("/")
        self.graph_url = graph_url.rstrip("/")
        self.permissions = set(permissions)
        self.app_roles = {ROLE_TEMPLATES[name] for name in app_roles}
        self.premium = premium
        self.page_size = page_size
        self.lockout_threshold = lockout_threshold
        self.lockout_duration = lockout_duration
        self.clock = clock
        self.users: dict[str, FakeUser] = {}
        self.groups: dict[str, FakeGroup] = {}
        self.roles: dict[str, FakeRole] = {}
        self.role_definitions = {
            template: FakeRoleDefinition(template, name)
            for name, template in ROLE_TEMPLATES.items()
        }
        self.role_assignments: list[FakeRoleAssignment] = []
        self.units: dict[str, FakeAdministrativeUnit] = {}
        # The initial domain, whose passwords never expire until a test sets a period.
        self.domains: dict[str, FakeDomain] = {domain: FakeDomain(domain, is_default=True)}
        self.sign_in_log: list[Json] = []
        self.failures: list[Failure] = []
        self.token_failures: list[tuple[int, str, int, str]] = []
        self.graph_calls: list[GraphCall] = []
        self.token_requests: list[dict[str, str]] = []
        self.reject_all_tokens = False
        self._tokens: dict[str, tuple[datetime, frozenset[str]]] = {}
        self._pages: dict[str, tuple[list[Json], int, str, str, dict[str, str]]] = {}
