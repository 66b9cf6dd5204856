"""The adapter's reads beyond one user (roles, privileged users, groups, users by id,
counts) and the paging helpers they share.

Each function takes the adapter's :class:`~.graph.GraphClient`, so every call still goes
through its one chokepoint (token, timeouts, error table, throttling).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from ..errors import ConfigurationError
from .graph import GraphClient, Json
from .permissions import READ_GROUPS, READ_ROLES, READ_UNITS, READ_USERS
from .settings import GUID

_IDS_PER_FILTER = 15  # Graph's limit on values in an "in (...)" filter
_MAX_PAGE = 999  # Graph's largest page of users or groups


def odata_literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def flatten(pages: Iterable[list[Json]]) -> list[Json]:
    return [row for page in pages for row in page]


# Where Entra ID keeps roles beyond the activated tenant-wide directoryRoles: active
# assignments and PIM eligibilities, at every scope (tenant, administrative unit), of
# built-in and custom role definitions.
_ROLE_COLLECTIONS = {
    "/roleManagement/directory/roleAssignments": "",
    "/roleManagement/directory/roleEligibilityScheduleInstances": "eligible",
}
_AU_SCOPE = "/administrativeUnits/"


def memberships_of(graph: GraphClient, user_id: str) -> list[Json]:
    """The user's groups, activated directory roles and administrative units, direct or
    transitive. ``transitiveMemberOf`` without the OData cast is not an advanced query,
    so it is not eventually consistent: a role granted a moment ago is seen."""
    pages = graph.pages(
        f"/users/{user_id}/transitiveMemberOf",
        params={
            "$select": "id,displayName,isAssignableToRole,isMemberManagementRestricted",
            "$top": "999",
        },
        permission=READ_USERS[0],
    )
    return flatten(pages)


def restricted_unit(memberships: list[Json]) -> str | None:
    """The name of a restricted-management administrative unit among ``memberships``."""
    for entry in memberships:
        if (
            entry.get("@odata.type") == "#microsoft.graph.administrativeUnit"
            and entry.get("isMemberManagementRestricted") is True
        ):
            return str(entry.get("displayName") or entry.get("id"))
    return None


def restricted_member_ids(graph: GraphClient) -> set[str]:
    """Every user in a restricted-management administrative unit, for a whole list."""
    params = {"$select": "id,isMemberManagementRestricted"}
    units = flatten(graph.pages("/directory/administrativeUnits", params=params,
                                permission=READ_UNITS[0]))  # fmt: skip
    ids: set[str] = set()
    for unit in units:
        if unit.get("isMemberManagementRestricted") is True:
            members = graph.pages(
                f"/directory/administrativeUnits/{unit['id']}/members",
                params={"$select": "id"},
                permission=READ_UNITS[0],
            )
            ids.update(
                str(member["id"])
                for member in flatten(members)
                if member.get("@odata.type") == "#microsoft.graph.user"
            )
    return ids


def roles_of(graph: GraphClient, user_id: str, memberships: list[Json]) -> list[str]:
    """Directory roles the user holds, directly or through role-assignable groups:
    activated tenant-wide roles first (in ``memberships``, from :func:`memberships_of`);
    when there are none, the role assignments and PIM eligibilities of the user and of
    those groups, at every scope. A role found there is named with how it is held, e.g.
    "User Administrator (administrative unit)" or "Privileged Role Administrator
    (eligible)".
    """
    active = [
        str(entry.get("displayName") or entry.get("id"))
        for entry in memberships
        if entry.get("@odata.type") == "#microsoft.graph.directoryRole"
    ]
    if active:
        return active
    principals = [user_id] + [
        str(entry["id"])
        for entry in memberships
        if entry.get("@odata.type") == "#microsoft.graph.group" and entry.get("isAssignableToRole")
    ]
    found: set[str] = set()
    for principal in principals:
        params = {
            "$filter": f"principalId eq {odata_literal(principal)}",
            "$expand": "roleDefinition($select=displayName)",
        }
        for how, row in _role_rows(graph, params):
            name = (row.get("roleDefinition") or {}).get("displayName") or row["roleDefinitionId"]
            scoped = str(row.get("directoryScopeId") or "/").startswith(_AU_SCOPE)
            notes = [note for note in (how, "administrative unit" if scoped else "") if note]
            found.add(f"{name} ({', '.join(notes)})" if notes else str(name))
    return sorted(found)


def _role_rows(graph: GraphClient, params: dict[str, str]) -> Iterator[tuple[str, Json]]:
    """(how, row) of every role assignment and eligibility matching ``params``."""
    for path, how in _ROLE_COLLECTIONS.items():
        for row in flatten(graph.pages(path, params=params, permission=READ_ROLES[0])):
            yield how, row


def privileged_ids(graph: GraphClient) -> set[str]:
    """Every user holding a directory role, active or PIM-eligible, at any scope, built-in
    or custom, directly or through a role-assignable group: for a whole list at once."""
    ids: set[str] = set()
    groups: set[str] = set()
    for _, row in _role_rows(graph, {"$expand": "principal($select=id)"}):
        principal = str(row["principalId"])
        if (row.get("principal") or {}).get("@odata.type") != "#microsoft.graph.group":
            ids.add(principal)  # users (and service principals, which no list holds)
        elif principal not in groups:
            groups.add(principal)
            users = graph.pages(
                f"/groups/{principal}/transitiveMembers/microsoft.graph.user",
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
