"""Graph's directory objects as the routes see them: lookups, group nesting,
memberships, permission checks, and the one update the fake allows (passwordProfile)."""

from __future__ import annotations

from .model import (
    _RESET_ADMINS,
    READ_ROLES,
    SET_PASSWORDS,
    FakeGroup,
    FakeUser,
    GraphError,
    Json,
    password_is_strong,
)
from .odata import OData


class Resources(OData):
    # -- Graph resources -----------------------------------------------------------------

    def _not_found(self, key: str) -> GraphError:
        return GraphError(
            404,
            "Request_ResourceNotFound",
            f"Resource '{key}' does not exist or one of its queried reference-property "
            "objects are not present.",
        )

    def _user(self, key: str) -> FakeUser:
        for user in self.users.values():
            if key.casefold() in (user.id, user.user_principal_name.casefold()):
                return user
        raise self._not_found(key)

    def _group(self, key: str) -> FakeGroup:
        group = self.groups.get(key.casefold())
        if group is None:
            raise self._not_found(key)
        return group

    def _typed(self, object_id: str) -> Json:
        if object_id in self.users:
            return {"@odata.type": "#microsoft.graph.user", **self.users[object_id].resource()}
        return {"@odata.type": "#microsoft.graph.group", **self.groups[object_id].resource()}

    def _transitive_members(self, group_id: str) -> list[str]:
        users: list[str] = []
        seen, todo = {group_id}, [group_id]
        while todo:
            for member in self.groups[todo.pop()].members:
                if member in self.users and member not in users:
                    users.append(member)
                elif member in self.groups and member not in seen:
                    seen.add(member)
                    todo.append(member)
        return users

    def _member_of(self, user_id: str, roles: frozenset[str]) -> list[Json]:
        groups = [g for g in self.groups.values() if user_id in self._transitive_members(g.id)]
        principals = {user_id, *(g.id for g in groups)}
        rows = [{"@odata.type": "#microsoft.graph.group", **g.resource()} for g in groups]
        rows += [
            {"@odata.type": "#microsoft.graph.administrativeUnit", **unit.resource()}
            for unit in self.units.values()
            if principals & set(unit.members)
        ]
        for role in self.roles.values():
            if principals & set(role.members):
                entry = {"@odata.type": "#microsoft.graph.directoryRole", **role.resource()}
                if not roles & READ_ROLES:  # limited information: the type and id only
                    entry = {"@odata.type": entry["@odata.type"], "id": role.id}
                rows.append(entry)
        return rows

    def _update_user(self, user: FakeUser, body: Json, roles: frozenset[str]) -> None:
        profile = body.get("passwordProfile")
        if set(body) != {"passwordProfile"} or not isinstance(profile, dict):
            raise GraphError(400, "Request_BadRequest", "This fake only updates passwordProfile.")
        self._need(roles, SET_PASSWORDS)
        holds_role = any(
            entry["@odata.type"] == "#microsoft.graph.directoryRole"
            for entry in self._member_of(user.id, frozenset(READ_ROLES))
        )
        if holds_role and not self.app_roles & _RESET_ADMINS:
            # Resetting an administrator needs a higher role than the app's own.
            raise GraphError(
                403,
                "Authorization_RequestDenied",
                "Insufficient privileges to complete the operation.",
            )
        if user.on_premises_sync_enabled:
            raise GraphError(
                400,
                "Request_BadRequest",
                "Unable to update the specified properties for on-premises mastered Directory "
                "Sync objects or objects currently undergoing migration.",
            )
        password = profile.get("password")
        if password is None:
            return  # Graph answers 204 and changes nothing
        if not isinstance(password, str) or not password_is_strong(password):
            raise GraphError(
                400,
                "Request_BadRequest",
                "The specified password does not comply with password complexity requirements. "
                "Please provide a different password.",
            )
        user.password = password
        user.force_change = bool(profile.get("forceChangePasswordNextSignIn", True))
        user.force_change_with_mfa = bool(profile.get("forceChangePasswordNextSignInWithMfa"))
        user.failed_sign_ins, user.locked_until = 0, None
        user.last_password_change = self.clock()

    @staticmethod
    def _need(roles: frozenset[str], allowed: set[str]) -> None:
        if not roles & allowed:
            raise GraphError(
                403,
                "Authorization_RequestDenied",
                "Insufficient privileges to complete the operation.",
            )
