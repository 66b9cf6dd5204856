"""Microsoft Graph v1.0 over HTTP: each request is recorded, queued failures are
served, the bearer token is checked, and the route table picks a handler; errors go
out as Graph's error bodies."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from urllib.parse import parse_qsl, urlsplit

from requests import PreparedRequest

from .model import (
    GRAPH_CONTENT_TYPE,
    READ_DOMAINS,
    READ_GROUPS,
    READ_ROLES,
    READ_UNITS,
    READ_USERS,
    GraphCall,
    GraphError,
    Json,
    Reply,
)
from .resources import Resources
from .sign_ins import SignIns

# Collections whose second segment is a name, not an object id.
_NO_KEY = ("auditLogs", "roleManagement")
_ROLE_COLLECTIONS = {
    "roleAssignments": ("unifiedRoleAssignment", False),
    "roleEligibilityScheduleInstances": ("unifiedRoleEligibilityScheduleInstance", True),
}


class GraphApi(Resources, SignIns):
    # -- Graph ---------------------------------------------------------------------------

    def _graph(self, request: PreparedRequest) -> Reply:
        url = urlsplit(str(request.url))
        path = url.path.removeprefix(urlsplit(self.graph_url).path)
        query = dict(parse_qsl(url.query))
        headers = {k: str(v) for k, v in request.headers.items()}
        raw = request.body
        body = json.loads(raw) if isinstance(raw, str | bytes) and raw else None
        self.graph_calls.append(GraphCall(str(request.method), path, query, headers, body))
        failure = next((f for f in self.failures if f.matches(str(request.method), path)), None)
        if failure is not None:
            self.failures.remove(failure)
            if failure.exception is not None:
                raise failure.exception
            extra = {"Retry-After": failure.retry_after} if failure.retry_after else {}
            return self._error(failure.status, failure.code, failure.message, headers, extra)
        try:
            roles = self._authorise(headers)
            status, payload = self._route(self.graph_calls[-1], roles)
        except GraphError as err:
            return self._error(err.status, err.code, err.message, headers)
        reply_headers = {"Content-Type": GRAPH_CONTENT_TYPE, **self._ids(headers)}
        if status == 204:
            return 204, self._ids(headers), ""
        return status, reply_headers, json.dumps(payload)

    def _ids(self, headers: dict[str, str]) -> dict[str, str]:
        request_id = str(uuid.uuid4())
        return {
            "request-id": request_id,
            "client-request-id": headers.get("client-request-id", request_id),
        }

    def _error(
        self,
        status: int,
        code: str,
        message: str,
        headers: dict[str, str],
        extra: dict[str, str] | None = None,
    ) -> Reply:
        ids = self._ids(headers)
        body = {
            "error": {
                "code": code,
                "message": message,
                "innerError": {
                    "date": self.clock().strftime("%Y-%m-%dT%H:%M:%S"),
                    "request-id": ids["request-id"],
                    "client-request-id": ids["client-request-id"],
                },
            }
        }
        return (
            status,
            {"Content-Type": GRAPH_CONTENT_TYPE, **ids, **(extra or {})},
            json.dumps(body),
        )

    def _authorise(self, headers: dict[str, str]) -> frozenset[str]:
        auth = headers.get("Authorization", "")
        if not auth.startswith("Bearer ") or not auth[7:]:
            raise GraphError(401, "InvalidAuthenticationToken", "Access token is empty.")
        issued = self._tokens.get(auth[7:])
        if self.reject_all_tokens or issued is None or issued[0] <= self.clock():
            raise GraphError(
                401, "InvalidAuthenticationToken", "Access token has expired or is not yet valid."
            )
        return issued[1]

    def _route(self, call: GraphCall, roles: frozenset[str]) -> tuple[int, Json]:
        if "$skiptoken" in call.query:
            return 200, self._next_page(call.query["$skiptoken"])
        parts = call.path.strip("/").split("/")
        at = 2 if parts[0] == "directory" else 1  # /directory/administrativeUnits/{id}
        key = parts[at] if len(parts) > at and parts[0] not in _NO_KEY else ""
        shape = (call.method, *("{id}" if key and i == at else p for i, p in enumerate(parts)))
        handlers: dict[
            tuple[str, ...], Callable[[GraphCall, str, frozenset[str]], tuple[int, Json]]
        ]
        handlers = {
            ("GET", "users"): self._list_users,
            ("GET", "users", "{id}"): self._get_user,
            ("PATCH", "users", "{id}"): self._patch_user,
            ("GET", "users", "{id}", "transitiveMemberOf"): self._list_member_of,
            ("GET", "groups"): self._list_groups,
            ("GET", "groups", "{id}"): self._get_group,
            ("GET", "groups", "{id}", "transitiveMembers", "microsoft.graph.user"): self._members,
            ("GET", "directoryRoles"): self._list_roles,
            ("GET", "directoryRoles", "{id}", "members"): self._role_members,
            ("GET", "auditLogs", "signIns"): self._sign_ins,
            ("GET", "domains"): self._list_domains,
            ("GET", "domains", "{id}"): self._get_domain,
            ("GET", "directory", "administrativeUnits"): self._list_units,
            ("GET", "directory", "administrativeUnits", "{id}", "members"): self._unit_members,
            **{
                ("GET", "roleManagement", "directory", name): self._role_assignments
                for name in _ROLE_COLLECTIONS
            },
        }
        handler = handlers.get(shape)
        if handler is None:
            raise GraphError(
                400, "BadRequest", f"Resource not found for the segment '{parts[-1]}'."
            )
        return handler(call, key, roles)

    def _list_users(self, call: GraphCall, _: str, roles: frozenset[str]) -> tuple[int, Json]:
        self._need(roles, READ_USERS)
        rows = self._filtered([u.resource() for u in self.users.values()], call, "User")
        return 200, self._collection("users", rows, call.query, call.path, eventual=call.eventual)

    def _get_user(self, call: GraphCall, key: str, roles: frozenset[str]) -> tuple[int, Json]:
        self._need(roles, READ_USERS)
        return 200, self._entity("users", self._user(key).resource(), call.query)

    def _patch_user(self, call: GraphCall, key: str, roles: frozenset[str]) -> tuple[int, Json]:
        self._update_user(self._user(key), call.body or {}, roles)
        return 204, {}

    def _list_member_of(self, call: GraphCall, key: str, roles: frozenset[str]) -> tuple[int, Json]:
        self._need(roles, READ_USERS)
        rows = self._member_of(self._user(key).id, roles)
        return 200, self._collection(
            "directoryObjects", rows, call.query, call.path, eventual=call.eventual
        )

    def _list_groups(self, call: GraphCall, _: str, roles: frozenset[str]) -> tuple[int, Json]:
        self._need(roles, READ_GROUPS)
        rows = self._filtered([g.resource() for g in self.groups.values()], call, "Group")
        rows = self._ordered(self._searched(rows, call), call)
        return 200, self._collection("groups", rows, call.query, call.path, eventual=call.eventual)

    def _get_group(self, call: GraphCall, key: str, roles: frozenset[str]) -> tuple[int, Json]:
        self._need(roles, READ_GROUPS)
        return 200, self._entity("groups", self._group(key).resource(), call.query)

    def _members(self, call: GraphCall, key: str, roles: frozenset[str]) -> tuple[int, Json]:
        self._need(roles, READ_GROUPS)
        if not call.advanced:
            raise GraphError(
                400,
                "Request_UnsupportedQuery",
                "The specified OData cast is only supported with advanced query parameters "
                "(ConsistencyLevel: eventual and $count=true).",
            )
        members = self._transitive_members(self._group(key).id)
        rows = [self.users[member].resource() for member in members]
        return 200, self._collection("users", rows, call.query, call.path, eventual=True)

    def _list_roles(self, call: GraphCall, _: str, roles: frozenset[str]) -> tuple[int, Json]:
        self._need(roles, READ_ROLES)
        rows = [role.resource() for role in self.roles.values()]
        return 200, self._collection("directoryRoles", rows, {}, call.path)

    def _role_members(self, call: GraphCall, key: str, roles: frozenset[str]) -> tuple[int, Json]:
        self._need(roles, READ_ROLES)
        role = self.roles.get(key)
        if role is None:
            raise self._not_found(key)
        rows = [self._typed(member) for member in role.members]
        return 200, self._collection("directoryObjects", rows, {}, call.path)

    def _list_domains(self, call: GraphCall, _: str, roles: frozenset[str]) -> tuple[int, Json]:
        self._need(roles, READ_DOMAINS)
        rows = [domain.resource() for domain in self.domains.values()]
        return 200, self._collection("domains", rows, call.query, call.path)

    def _role_assignments(self, call: GraphCall, _: str, roles: frozenset[str]) -> tuple[int, Json]:
        """Active role assignments or PIM eligibility instances, every scope, with
        ``$filter`` and ``$expand`` of ``roleDefinition`` or ``principal``."""
        self._need(roles, READ_ROLES)
        collection = call.path.rsplit("/", 1)[-1]
        kind, eligible = _ROLE_COLLECTIONS[collection]
        rows = []
        for assignment in self.role_assignments:
            if assignment.eligible != eligible:
                continue
            row = assignment.resource()
            expand = call.query.get("$expand", "")
            if expand.startswith("roleDefinition"):
                definition = self.role_definitions[assignment.role_definition_id]
                row["roleDefinition"] = definition.resource()
            elif expand.startswith("principal"):
                row["principal"] = self._typed(assignment.principal_id)
            elif expand:
                raise GraphError(400, "BadRequest", f"Could not find a property named '{expand}'.")
            rows.append(row)
        rows = self._filtered(rows, call, kind)
        return 200, self._collection(f"roleManagement/directory/{collection}", rows, call.query,
                                     call.path)  # fmt: skip

    def _get_domain(self, call: GraphCall, key: str, roles: frozenset[str]) -> tuple[int, Json]:
        self._need(roles, READ_DOMAINS)
        domain = self.domains.get(key.casefold())
        if domain is None:
            raise self._not_found(key)
        return 200, self._entity("domains", domain.resource(), call.query)

    def _list_units(self, call: GraphCall, _: str, roles: frozenset[str]) -> tuple[int, Json]:
        self._need(roles, READ_UNITS)
        rows = self._filtered([unit.resource() for unit in self.units.values()], call, "Unit")
        return 200, self._collection("directory/administrativeUnits", rows, call.query,
                                     call.path)  # fmt: skip

    def _unit_members(self, call: GraphCall, key: str, roles: frozenset[str]) -> tuple[int, Json]:
        self._need(roles, READ_UNITS)
        unit = self.units.get(key)
        if unit is None:
            raise self._not_found(key)
        rows = [self._typed(member) for member in unit.members]
        return 200, self._collection("directoryObjects", rows, call.query, call.path)
