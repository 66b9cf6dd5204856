"""The sandbox directory's operations: the directory interface over its SQLite file."""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from typing import Any

from ..base import (
    DirectoryGroup,
    DirectoryUser,
    Lockout,
    LockoutState,
    PasswordExpiry,
    PasswordPolicy,
)
from ..errors import ConfigurationError, OperationRefused, PasswordRejected, UserNotFound
from .controls import SandboxControls
from .passwords import HASH_COST, hash_password, password_problem
from .settings import SandboxSettings
from .store import key, stored_time, user_of

# Members of a group and of every group nested in it; UNION stops on cycles.
_SCOPE = """
WITH RECURSIVE scope(key) AS (
    SELECT key FROM groups WHERE key = :group
    UNION
    SELECT gg.child_key FROM group_groups AS gg JOIN scope ON gg.parent_key = scope.key
)
"""
_IN_SCOPE = """
FROM users AS u
WHERE (:group IS NULL OR u.id IN (
        SELECT ug.user_id FROM user_groups AS ug JOIN scope ON ug.group_key = scope.key))
  AND (:ou IS NULL OR u.ou_key = :ou OR substr(u.ou_key, 1, length(:ou) + 1) = :ou || '/')
"""
_LIST_USERS = _SCOPE + "SELECT u.*" + _IN_SCOPE + "ORDER BY u.username_key"
_COUNT_USERS = _SCOPE + "SELECT count(*)" + _IN_SCOPE


class SandboxDirectory(SandboxControls):
    """A directory in a SQLite file, shared by every process that opens the same path.

    ``lockout_threshold`` bad passwords in a row lock the account (0 never locks);
    a lockout lasts until ``unlock`` or ``set_password(..., unlock=True)``. Each
    Protocol call first waits ``latency_ms`` milliseconds (a simulated network round
    trip), before it touches the file; test and demo controls do not wait.
    """

    kind: str = "sandbox"

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        min_length: int = 8,
        complexity: bool = True,
        lockout_threshold: int = 5,
        latency_ms: int = 0,
        hash_cost: int = HASH_COST,
    ) -> None:
        settings = SandboxSettings(
            os.fspath(path),
            min_length=min_length,
            complexity=complexity,
            lockout_threshold=lockout_threshold,
            latency_ms=latency_ms,
            hash_cost=hash_cost,
        )
        self.path = settings.path
        self.policy = PasswordPolicy(min_length=min_length, complexity=complexity)
        self.lockout_threshold = lockout_threshold
        self.latency_ms = latency_ms
        self.hash_cost = hash_cost
        self._open()

    @classmethod
    def from_settings(cls, settings: Mapping[str, Any]) -> SandboxDirectory:
        """Build from settings (see :data:`~.settings.SCHEMA`): ``path`` (required),
        ``min_length``, ``complexity``, ``lockout_threshold``, ``latency_ms``,
        ``hash_cost``. Malformed or missing values raise ``ConfigurationError``."""
        parsed = SandboxSettings.parse(settings)
        return cls(
            parsed.path,
            min_length=parsed.min_length,
            complexity=parsed.complexity,
            lockout_threshold=parsed.lockout_threshold,
            latency_ms=parsed.latency_ms,
            hash_cost=parsed.hash_cost,
        )

    # -- DirectoryAdapter ------------------------------------------------------------

    def check_connection(self) -> None:
        """Prove the file opens and holds the sandbox schema."""
        with self._transaction() as conn:
            conn.execute("SELECT count(*) FROM users").fetchone()

    def find_user(self, identifier: str) -> DirectoryUser:
        """Find by id, username, UPN or email (case-insensitive), in that order of
        precedence; ``UserNotFound`` when nobody or several people match."""
        wanted = key(identifier)
        with self._transaction() as conn:
            rows = conn.execute(
                "SELECT * FROM users WHERE id = :k OR username_key = :k"
                " OR upn_key = :k OR email_key = :k",
                {"k": wanted},
            ).fetchall()
        if wanted and rows:
            columns = ("id", "username_key", "upn_key", "email_key")
            for column in columns:
                matches = [row for row in rows if row[column] == wanted]
                if len(matches) == 1:
                    return user_of(matches[0])
                if matches:
                    raise UserNotFound(f"identifier is ambiguous: {len(matches)} users match")
        raise UserNotFound("no user with that identifier in the sandbox directory")

    def get_user(self, user_id: str) -> DirectoryUser:
        """Fetch by stable id (a uuid4 string)."""
        with self._transaction() as conn:
            return user_of(self._row_by_id(conn, user_id))

    @staticmethod
    def _scope(conn: sqlite3.Connection, group: str | None, ou: str | None) -> dict[str, Any]:
        """The query parameters for ``group`` and ``ou``; an unknown group is refused."""
        group_key = None if group is None else key(group)
        if (
            group_key is not None
            and not conn.execute("SELECT 1 FROM groups WHERE key = ?", (group_key,)).fetchone()
        ):
            raise ConfigurationError(f"no group {group!r} in the sandbox directory")
        return {"group": group_key, "ou": None if ou is None else key(ou).strip("/")}

    def list_users(
        self, *, group: str | None = None, ou: str | None = None
    ) -> Iterator[DirectoryUser]:
        """Members of ``group`` (nested groups included) and/or users under ``ou``
        (a slash path such as ``"Staff/Sales"``, subtree); everyone when neither.

        An unknown group raises ``ConfigurationError``: an empty answer would hide
        a misspelt scope. The query runs now, not when the iterator is consumed.
        """
        with self._transaction() as conn:
            rows = conn.execute(_LIST_USERS, self._scope(conn, group, ou)).fetchall()
        return iter([user_of(row) for row in rows])

    def count_users(self, *, group: str | None = None, ou: str | None = None) -> int:
        """How many users ``list_users`` gives for the same ``group`` and ``ou``."""
        with self._transaction() as conn:
            count: int = conn.execute(_COUNT_USERS, self._scope(conn, group, ou)).fetchone()[0]
        return count

    def list_groups(self, search: str = "", *, limit: int = 50) -> list[DirectoryGroup]:
        """Groups whose name contains ``search`` (ignoring case), by name; the id is the
        group's key, which ``list_users(group=...)`` takes."""
        with self._transaction() as conn:
            rows = conn.execute(
                "SELECT key, name FROM groups WHERE instr(key, ?) > 0 ORDER BY key LIMIT ?",
                (key(search), max(limit, 0)),
            ).fetchall()
        return [DirectoryGroup(id=row["key"], name=row["name"]) for row in rows]

    def list_ous(self, search: str = "", *, limit: int = 50) -> list[DirectoryGroup]:
        """OUs whose last part contains ``search`` (ignoring case), by name. The sandbox
        knows an OU from its users' ``ou`` paths (``"staff/sales"`` also makes
        ``"staff"``), stored casefolded; the id is the path ``list_users(ou=...)`` takes."""
        with self._transaction() as conn:
            rows = conn.execute(
                "SELECT DISTINCT ou_key FROM users WHERE ou_key IS NOT NULL AND ou_key != ''"
            ).fetchall()
        paths: set[str] = set()
        for (ou_key,) in rows:
            parts = [part for part in ou_key.split("/") if part]
            paths.update("/".join(parts[: end + 1]) for end in range(len(parts)))
        wanted = key(search)
        found = [
            DirectoryGroup(id=path, name=path.rsplit("/", 1)[-1], path=path, kind="ou")
            for path in paths
            if wanted in path.rsplit("/", 1)[-1]
        ]
        found.sort(key=lambda ou: (ou.name, ou.id))
        return found[: max(limit, 0)]

    def set_password(self, user_id: str, password: str, *, must_change: bool, unlock: bool) -> None:
        """Reset the password (an administrator's reset: no old password, no history).

        Resets the bad-password count; a locked account stays locked unless ``unlock``.
        """
        hashed = hash_password(password, self.hash_cost)  # not while holding the file's lock
        with self._transaction() as conn:
            row = self._row_by_id(conn, user_id)
            self._refuse_if_unmanageable(row)
            problem = password_problem(self.policy, row["username"], password)
            if problem:
                raise PasswordRejected(f"password refused: {problem}")
            conn.execute(
                "UPDATE users SET password_hash = ?, must_change = ?, bad_count = 0,"
                " locked_at = CASE WHEN ? THEN NULL ELSE locked_at END WHERE id = ?",
                (hashed, must_change, unlock, row["id"]),
            )
            # The expiry was the old password's (see ``set_password_expiry``).
            conn.execute("DELETE FROM password_expiries WHERE user_id = ?", (row["id"],))

    def unlock(self, user_id: str) -> None:
        """Clear a lockout and the bad-password count; the password is untouched."""
        with self._transaction() as conn:
            row = self._row_by_id(conn, user_id)
            self._refuse_if_unmanageable(row)
            conn.execute(
                "UPDATE users SET locked_at = NULL, bad_count = 0 WHERE id = ?", (row["id"],)
            )

    @staticmethod
    def _refuse_if_unmanageable(row: sqlite3.Row) -> None:
        if row["protected"]:
            raise OperationRefused("account is protected: the gateway does not manage it")
        if row["disabled"]:
            raise OperationRefused("account is disabled")

    def lockout_state(self, user_id: str) -> LockoutState:
        """Whether the account is locked, and since when (UTC)."""
        with self._transaction() as conn:
            locked_at = self._row_by_id(conn, user_id)["locked_at"]
        if locked_at is None:
            return LockoutState(locked=False)
        return LockoutState(locked=True, locked_at=datetime.fromisoformat(locked_at))

    def locked_out_users(self) -> list[DirectoryUser]:
        """Every locked-out user, in one query."""
        with self._transaction() as conn:
            rows = conn.execute(
                "SELECT * FROM users WHERE locked_at IS NOT NULL ORDER BY username_key"
            ).fetchall()
        return [user_of(row) for row in rows]

    def lockouts(self, since: datetime | None = None) -> list[Lockout]:
        """Every locked-out user with when the lockout began, in one query (``since``
        is not needed: the file keeps the state)."""
        with self._transaction() as conn:
            rows = conn.execute(
                "SELECT * FROM users WHERE locked_at IS NOT NULL ORDER BY username_key"
            ).fetchall()
        return [Lockout(user_of(row), datetime.fromisoformat(row["locked_at"])) for row in rows]

    def password_policy(self) -> PasswordPolicy:
        """The policy this sandbox applies to new passwords."""
        with self._transaction():
            return self.policy

    def password_expiries(self, until: datetime) -> list[PasswordExpiry]:
        """Enabled users whose password expires after now and before ``until`` (as set by
        ``set_password_expiry``), soonest first, in one query."""
        with self._transaction() as conn:
            rows = conn.execute(
                "SELECT u.*, e.expires_at AS password_expires_at"
                " FROM password_expiries AS e JOIN users AS u ON u.id = e.user_id"
                " WHERE e.expires_at > ? AND e.expires_at < ?"
                " AND NOT u.disabled AND NOT u.must_change"
                " ORDER BY e.expires_at, u.username_key",
                (stored_time(datetime.now(UTC)), stored_time(until)),
            ).fetchall()
        return [
            PasswordExpiry(user_of(row), datetime.fromisoformat(row["password_expires_at"]))
            for row in rows
        ]
