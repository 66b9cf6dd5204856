"""The adapter's reads beyond one user (roles, privileged users, groups, users by id,
counts) and the paging helpers they share.

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
_MAX_PAGE = 999  # Graph's largest page of users or groups


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


def search_literal(text: str) -> str:
    """A ``$search`` clause's text: inside double quotes, with ``"`` and ``\\`` escaped."""
    return text.replace("\\", "\\\\").replace('"', '\\"')


def find_groups(graph: GraphClient, search: str, limit: int) -> list[Json]:
    """Groups (id, displayName) whose name contains ``search``, in Graph's name order, at
    most ``limit``: the first pages of one query, not the whole tenant.

    Graph has no "contains" on names. ``$search`` matches names that have words starting
    with the text (its tokenised search, an advanced query); of those, the names that
    contain it are kept, so "sales" finds "EU Sales" and "Sales-Team", not "Wholesales".
    """
    text = search.strip()
    if limit <= 0:
        return []
    params = {
        "$select": "id,displayName",
        "$orderby": "displayName",
        "$top": str(min(_MAX_PAGE, limit)),
    }
    if text:
        # $search needs ConsistencyLevel: eventual, and with $orderby also $count=true.
        params.update({"$search": f'"displayName:{search_literal(text)}"', "$count": "true"})
    wanted = text.casefold()
    found: list[Json] = []
    for page in graph.pages("/groups", params=params, advanced=bool(text),
                            permission=READ_GROUPS[0]):  # fmt: skip
        found += [row for row in page if wanted in str(row.get("displayName") or "").casefold()]
        if len(found) >= limit:
            break
    return found[:limit]


def count_of(graph: GraphClient, path: str, permission: str) -> int:
    """How many objects the collection at ``path`` holds: Graph's ``@odata.count`` of a
    one-object page (an advanced query), or, if Graph gives none, the ids counted."""
    params = {"$select": "id", "$top": "1", "$count": "true"}
    page = graph.request("GET", path, params=params, advanced=True, permission=permission,
                         not_found=ConfigurationError)  # fmt: skip
    count = page.get("@odata.count")
    if isinstance(count, int) and not isinstance(count, bool):
        return count
    params["$top"] = str(_MAX_PAGE)
    pages = graph.pages(path, params=params, advanced=True, permission=permission,
                        not_found=ConfigurationError)  # fmt: skip
    return len(flatten(pages))
