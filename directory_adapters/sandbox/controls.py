"""The sandbox's controls for tests and the demo (not part of the directory interface):
creating users and groups, signing in and changing one's own password as a user would,
and simulating an outage. They do not wait out the simulated latency."""

from __future__ import annotations

import sqlite3
import uuid
from collections.abc import Iterable
from datetime import UTC, datetime

from ..base import DirectoryUser
from ..errors import PasswordRejected, UserNotFound
from .passwords import (
    AccountDisabled,
    AccountLocked,
    InvalidCredentials,
    MustChangePassword,
    hash_password,
    password_problem,
    verify_password,
)
from .store import SandboxFile, key, stored_time, user_of


class SandboxControls(SandboxFile):
    """What tests and the demo do to a sandbox directory besides the Protocol's calls."""

    def add_user(
        self,
        username: str,
        display_name: str,
        *,
        email: str | None = None,
        upn: str | None = None,
        mobile: str | None = None,
        password: str | None = None,
        disabled: bool = False,
        protected: bool = False,
        groups: Iterable[str] = (),
        ou: str | None = None,
    ) -> DirectoryUser:
        """Create a user; ``password=None`` leaves no usable password. The password
        policy does not apply here (an administrator may create anything). Missing
        groups are created. ``ValueError`` if the username or UPN is taken."""
        user_id = str(uuid.uuid4())
        password_hash = None if password is None else hash_password(password, self.hash_cost)
        with self._transaction(guarded=False) as conn:
            try:
                conn.execute(
                    "INSERT INTO users (id, username, username_key, display_name, email,"
                    " email_key, upn, upn_key, mobile, ou_key, password_hash, disabled,"
                    " protected) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        user_id, username, key(username), display_name,
                        email, email and key(email), upn, upn and key(upn), mobile,
                        ou and key(ou).strip("/"), password_hash, disabled, protected,
                    ),
                )  # fmt: skip
            except sqlite3.IntegrityError:
                raise ValueError(f"username or UPN already taken: {username!r}") from None
            for group in groups:
                self._ensure_group(conn, group)
                conn.execute(
                    "INSERT OR IGNORE INTO user_groups (user_id, group_key) VALUES (?, ?)",
                    (user_id, key(group)),
                )
            return user_of(self._row_by_id(conn, user_id))

    def add_group(self, name: str, *, member_of: Iterable[str] = ()) -> str:
        """Create ``name`` (if missing) as a member of each of ``member_of``; returns
        the name to pass to ``list_users(group=...)``."""
        with self._transaction(guarded=False) as conn:
            self._ensure_group(conn, name)
            for parent in member_of:
                self._ensure_group(conn, parent)
                conn.execute(
                    "INSERT OR IGNORE INTO group_groups (child_key, parent_key) VALUES (?, ?)",
                    (key(name), key(parent)),
                )
        return name

    @staticmethod
    def _ensure_group(conn: sqlite3.Connection, name: str) -> None:
        conn.execute("INSERT OR IGNORE INTO groups (key, name) VALUES (?, ?)", (key(name), name))

    def _sign_in(self, conn: sqlite3.Connection, username: str, password: str) -> sqlite3.Row:
        """Check a password in Active Directory's order: locked (whatever the password),
        wrong password (counted; the threshold locks), disabled."""
        row = self._row_for_sign_in(conn, username)
        if row is None:
            raise InvalidCredentials("unknown user or wrong password")
        if row["locked_at"] is not None:
            raise AccountLocked("account is locked out")
        if not verify_password(password, row["password_hash"]):
            bad_count = row["bad_count"] + 1
            locked = 0 < self.lockout_threshold <= bad_count
            locked_at = datetime.now(UTC).isoformat() if locked else None
            conn.execute(
                "UPDATE users SET bad_count = ?, locked_at = ? WHERE id = ?",
                (bad_count, locked_at, row["id"]),
            )
            raise InvalidCredentials("unknown user or wrong password")
        if row["disabled"]:
            raise AccountDisabled("account is disabled")
        conn.execute("UPDATE users SET bad_count = 0 WHERE id = ?", (row["id"],))
        return row

    def authenticate(self, username: str, password: str) -> DirectoryUser:
        """Sign in by username or UPN; raises a :class:`SignInError` subclass:
        locked, then wrong password, then disabled, then must change."""
        with self._transaction(guarded=False) as conn:
            row = self._sign_in(conn, username, password)
            if row["must_change"]:
                raise MustChangePassword("password must be changed before signing in")
        return user_of(row)

    def change_password(self, username: str, old_password: str, new_password: str) -> None:
        """The user's own change (after "must change"): the old password is checked
        like a sign-in, the new one against the policy (``PasswordRejected``)."""
        with self._transaction(guarded=False) as conn:
            row = self._sign_in(conn, username, old_password)
            if new_password == old_password:
                raise PasswordRejected("password refused: the new password must differ")
            if problem := password_problem(self.policy, row["username"], new_password):
                raise PasswordRejected(f"password refused: {problem}")
            conn.execute(
                "UPDATE users SET password_hash = ?, must_change = 0 WHERE id = ?",
                (hash_password(new_password, self.hash_cost), row["id"]),
            )
            # The expiry was the old password's: the new one never expires unless set.
            conn.execute("DELETE FROM password_expiries WHERE user_id = ?", (row["id"],))

    def set_password_expiry(self, username: str, expires_at: datetime | None) -> None:
        """Make ``username``'s current password expire at ``expires_at`` (aware), or never
        (``None``). A new password (``set_password``, ``change_password``) drops it, as a
        new password starts a new life in a real directory. ``UserNotFound`` if unknown."""
        with self._transaction(guarded=False) as conn:
            row = self._row_for_sign_in(conn, username)
            if row is None:
                raise UserNotFound("no user with that username in the sandbox directory")
            if expires_at is None:
                conn.execute("DELETE FROM password_expiries WHERE user_id = ?", (row["id"],))
            else:
                conn.execute(
                    "INSERT OR REPLACE INTO password_expiries (user_id, expires_at) VALUES (?, ?)",
                    (row["id"], stored_time(expires_at)),
                )

    def set_outage(self, failures: int | None = None) -> None:
        """Make Protocol calls raise ``DirectoryUnavailable``: the next ``failures``
        calls (then it recovers by itself), or every call until ``clear_outage``.
        Kept in the file, so every process sharing it sees the outage."""
        if failures is not None and failures < 1:
            raise ValueError("failures must be at least 1 (or None for until cleared)")
        with self._transaction(guarded=False) as conn:
            conn.execute("UPDATE sandbox_state SET outage = ? WHERE id = 1", (failures or -1,))

    def clear_outage(self) -> None:
        """End a simulated outage."""
        with self._transaction(guarded=False) as conn:
            conn.execute("UPDATE sandbox_state SET outage = 0 WHERE id = 1")

    def is_locked(self, username: str) -> bool:
        """Whether ``username`` is locked out (``UserNotFound`` if unknown)."""
        return bool(self._flag(username, "locked_at"))

    def must_change(self, username: str) -> bool:
        """Whether ``username`` must change their password at next sign-in."""
        return bool(self._flag(username, "must_change"))

    def _flag(self, username: str, column: str) -> object:
        with self._transaction(guarded=False) as conn:
            row = self._row_for_sign_in(conn, username)
        if row is None:
            raise UserNotFound("no user with that username in the sandbox directory")
        return row[column]
