"""The adapter's reads beyond one user (roles, privileged users, groups, users by id)
and the paging helpers they share.

Each function takes the adapter's :class:`~.graph.GraphClient`, so every call still goes
through its one chokepoint (token, timeouts, error table, throttling).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from ..errors import ConfigurationError
from .graph import GraphClient, Json
from .permissions import READ_GROUPS, READ_ROLES, READ_USERS
from .settings import GUID

_IDS_PER_FILTER = 15  # Graph's limit on values in an "in (...)" filter


def odata_literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def flatten(pages: Iterable[list[Json]]) -> list[Json]:
    return [row for page in pages for row in page]


def roles_of(graph: GraphClient, user_id: str) -> list[str]:
    """Directory roles the user holds, directly or through role-assignable groups.

    ``transitiveMemberOf`` without the OData cast is not an advanced query, so it
    is not eventually consistent: a role granted a moment ago is seen.
    """
    pages = graph.pages(
        f"/users/{user_id}/transitiveMemberOf",
        params={"$select": "id,displayName", "$top": "999"},
        permission=READ_USERS[0],
    )
    return [
        str(entry.get("displayName") or entry.get("id"))
        for entry in flatten(pages)
        if entry.get("@odata.type") == "#microsoft.graph.directoryRole"
    ]


def privileged_ids(graph: GraphClient) -> set[str]:
    """Every user holding an activated directory role, for a whole list at once."""
    ids: set[str] = set()
    for role in flatten(graph.pages("/directoryRoles", permission=READ_ROLES[0])):
        members = graph.pages(f"/directoryRoles/{role['id']}/members", permission=READ_ROLES[0])
        for member in flatten(members):
            if member.get("@odata.type") != "#microsoft.graph.group":
                ids.add(str(member["id"]))
                continue
            users = graph.pages(
                f"/groups/{member['id']}/transitiveMembers/microsoft.graph.user",
                params={"$select": "id", "$count": "true"},
                advanced=True,
                permission=READ_GROUPS[0],
            )
            ids.update(str(user["id"]) for user in flatten(users))
    return ids


def group_id(graph: GraphClient, group: str) -> str:
    name = group.strip()
    if GUID.match(name):
        found = graph.request(
            "GET",
            f"/groups/{name}",
            params={"$select": "id,displayName"},
            permission=READ_GROUPS[0],
            not_found=ConfigurationError,
        )
        return str(found["id"])
    rows = flatten(
        graph.pages(
            "/groups",
            params={"$filter": f"displayName eq {odata_literal(name)}", "$select": "id"},
            permission=READ_GROUPS[0],
        )
    )
    if len(rows) != 1:
        raise ConfigurationError(
            f"{len(rows) or 'no'} groups named {group!r} in Entra ID: use the group's object id"
        )
    return str(rows[0]["id"])


def users_by_ids(graph: GraphClient, ids: list[str], select: str) -> Iterator[Json]:
    fields = f"{select},lastPasswordChangeDateTime"
    for start in range(0, len(ids), _IDS_PER_FILTER):
        chunk = ", ".join(f"'{uid}'" for uid in ids[start : start + _IDS_PER_FILTER])
        params = {"$filter": f"id in ({chunk})", "$select": fields}
        yield from flatten(graph.pages("/users", params=params, permission=READ_USERS[0]))
