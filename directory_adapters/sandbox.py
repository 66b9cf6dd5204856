"""The sandbox directory: a real, small directory kept in one SQLite file.

The demo and the tests use it in place of Active Directory. A reset has observable
effects: passwords are stored as scrypt hashes, sign-ins count bad passwords and
lock the account at a threshold, and "must change at next logon" blocks a sign-in
until the user changes their password. The web process, an RQ worker and a test
all open the same file, so every operation is one short transaction on its own
connection (WAL mode, busy timeout): safe across threads and processes.

Beyond the :class:`~directory_adapters.base.DirectoryAdapter` methods it offers
controls for tests and the demo: ``add_user``, ``add_group``, ``authenticate``,
``change_password`` and a simulated outage (``set_outage``). ``latency_ms`` makes each
Protocol call take as long as a round trip to a real directory (LDAPS, Graph), so a
benchmark of the workers is not flattered by a directory that answers in microseconds.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import os
import secrets
import sqlite3
import time
import uuid
from collections.abc import Iterable, Iterator, Mapping
from datetime import UTC, datetime
from typing import Any

from .base import DirectoryUser, LockoutState, PasswordPolicy
from .errors import (
    ConfigurationError,
    DirectoryUnavailable,
    OperationRefused,
    PasswordRejected,
    UserNotFound,
)

OUTAGE_MESSAGE = "sandbox directory unavailable (simulated outage)"
BUSY_TIMEOUT_SECONDS = 10.0
# scrypt cost (log2 of N): ~30-55 ms a hash, a real hash, cheap enough for tests. A
# benchmark that simulates a remote directory (``latency_ms``) sets ``hash_cost`` low:
# a real directory hashes on its own CPU, not on the worker's.
_HASH_COST = 14
_SCRYPT_R, _SCRYPT_P = 8, 1

# *_key columns hold casefolded copies: lookups are case-insensitive beyond ASCII.
_SCHEMA = """
BEGIN IMMEDIATE;
CREATE TABLE IF NOT EXISTS users (
    id TEXT PRIMARY KEY, username TEXT NOT NULL, username_key TEXT NOT NULL UNIQUE,
    display_name TEXT NOT NULL, email TEXT, email_key TEXT, upn TEXT, upn_key TEXT UNIQUE,
    mobile TEXT, ou_key TEXT, password_hash TEXT,
    must_change INTEGER NOT NULL DEFAULT 0, bad_count INTEGER NOT NULL DEFAULT 0,
    locked_at TEXT, disabled INTEGER NOT NULL DEFAULT 0, protected INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS users_email_key ON users (email_key);
CREATE INDEX IF NOT EXISTS users_locked ON users (locked_at) WHERE locked_at IS NOT NULL;
CREATE TABLE IF NOT EXISTS groups (key TEXT PRIMARY KEY, name TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS user_groups (
    user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    group_key TEXT NOT NULL REFERENCES groups (key), PRIMARY KEY (user_id, group_key)
);
CREATE TABLE IF NOT EXISTS group_groups (
    child_key TEXT NOT NULL REFERENCES groups (key),
    parent_key TEXT NOT NULL REFERENCES groups (key), PRIMARY KEY (child_key, parent_key)
);
-- outage: 0 none, N > 0 the next N Protocol calls fail, -1 until cleared.
CREATE TABLE IF NOT EXISTS sandbox_state (
    id INTEGER PRIMARY KEY CHECK (id = 1), outage INTEGER NOT NULL DEFAULT 0
);
INSERT OR IGNORE INTO sandbox_state (id, outage) VALUES (1, 0);
COMMIT;
"""

# Members of a group and of every group nested in it; UNION stops on cycles.
_LIST_USERS = """
WITH RECURSIVE scope(key) AS (
    SELECT key FROM groups WHERE key = :group
    UNION
    SELECT gg.child_key FROM group_groups AS gg JOIN scope ON gg.parent_key = scope.key
)
SELECT u.* FROM users AS u
WHERE (:group IS NULL OR u.id IN (
        SELECT ug.user_id FROM user_groups AS ug JOIN scope ON ug.group_key = scope.key))
  AND (:ou IS NULL OR u.ou_key = :ou OR substr(u.ou_key, 1, length(:ou) + 1) = :ou || '/')
ORDER BY u.username_key
"""


class SignInError(Exception):
    """A sandbox sign-in failed; the subclass says why, as Active Directory would."""


class InvalidCredentials(SignInError):
    """Unknown user or wrong password (counted towards the lockout)."""


class MustChangePassword(SignInError):
    """The password is right but must be changed before signing in."""


class AccountLocked(SignInError):
    """The account is locked out, whatever the password."""


class AccountDisabled(SignInError):
    """The account is disabled."""


def _key(value: str) -> str:
    return value.strip().casefold()


def _now() -> datetime:
    return datetime.now(UTC)


def _hash_password(password: str, cost: int = _HASH_COST) -> str:
    salt, n = secrets.token_bytes(16), 2**cost
    digest = hashlib.scrypt(password.encode(), salt=salt, n=n, r=_SCRYPT_R, p=_SCRYPT_P)
    return f"scrypt${n}${_SCRYPT_R}${_SCRYPT_P}${salt.hex()}${digest.hex()}"


def _verify_password(password: str, stored: str | None) -> bool:
    if stored is None:  # an account created without a usable password
        return False
    _, n, r, p, salt, digest = stored.split("$")
    candidate = hashlib.scrypt(
        password.encode(), salt=bytes.fromhex(salt), n=int(n), r=int(r), p=int(p)
    )
    return hmac.compare_digest(candidate, bytes.fromhex(digest))


def password_problem(policy: PasswordPolicy, username: str, password: str) -> str | None:
    """Why ``password`` breaks ``policy`` for ``username``, or ``None`` if it is fine.

    Like Active Directory, the username check is part of complexity and applies
    to usernames of three characters or more. The reason never quotes the password.
    """
    if len(password) < policy.min_length:
        return f"too short: at least {policy.min_length} characters are required"
    if not policy.complexity:
        return None
    classes = {
        "lower" if c.islower() else "upper" if c.isupper() else "digit" if c.isdigit() else "other"
        for c in password
    }
    if len(classes) < 3:
        return (
            "not complex enough: use 3 of 4 kinds of character "
            "(lowercase, uppercase, digits, symbols)"
        )
    if len(username) >= 3 and username.casefold() in password.casefold():
        return "contains the username"
    return None


def _user(row: sqlite3.Row) -> DirectoryUser:
    return DirectoryUser(
        id=row["id"],
        username=row["username"],
        display_name=row["display_name"],
        email=row["email"],
        upn=row["upn"],
        mobile=row["mobile"],
        disabled=bool(row["disabled"]),
        protected=bool(row["protected"]),
    )


def _setting(settings: Mapping[str, Any], name: str, default: int | bool) -> Any:
    value = settings.get(name, default)
    if type(value) is not type(default):  # bool is an int subclass: compare exact types
        raise ConfigurationError(f"sandbox setting {name!r} must be {type(default).__name__}")
    return value


class SandboxDirectory:
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
        hash_cost: int = _HASH_COST,
    ) -> None:
        if min_length < 1 or lockout_threshold < 0 or latency_ms < 0:
            raise ConfigurationError(
                "sandbox min_length must be >= 1, lockout_threshold and latency_ms >= 0"
            )
        if not 1 <= hash_cost <= 20:
            raise ConfigurationError("sandbox hash_cost must be from 1 to 20")
        self.hash_cost = hash_cost
        self.path = os.fspath(path)
        self.policy = PasswordPolicy(min_length=min_length, complexity=complexity)
        self.lockout_threshold = lockout_threshold
        self.latency_ms = latency_ms
        try:
            conn = self._connect()
            try:
                conn.execute("PRAGMA journal_mode = WAL")  # persists in the file
                conn.executescript(_SCHEMA)
            finally:
                conn.close()
        except sqlite3.Error as err:
            raise ConfigurationError(f"cannot open sandbox directory {self.path!r}: {err}") from err

    @classmethod
    def from_settings(cls, settings: Mapping[str, Any]) -> SandboxDirectory:
        """Build from settings: ``path`` (required), ``min_length``, ``complexity``,
        ``lockout_threshold``, ``latency_ms``, ``hash_cost``. Malformed or missing values raise
        ``ConfigurationError``."""
        path = settings.get("path")
        if not isinstance(path, str | os.PathLike) or not os.fspath(path):
            raise ConfigurationError("sandbox directory needs a 'path' setting: the SQLite file")
        return cls(
            path,
            min_length=_setting(settings, "min_length", 8),
            complexity=_setting(settings, "complexity", True),
            lockout_threshold=_setting(settings, "lockout_threshold", 5),
            latency_ms=_setting(settings, "latency_ms", 0),
            hash_cost=_setting(settings, "hash_cost", _HASH_COST),
        )

    # -- the one way into the file -------------------------------------------------

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_SECONDS, isolation_level=None)
        conn.row_factory = sqlite3.Row
        conn.execute("PRAGMA foreign_keys = ON")
        return conn

    @contextlib.contextmanager
    def _transaction(self, *, guarded: bool = True) -> Iterator[sqlite3.Connection]:
        """One short write transaction on a fresh connection.

        ``guarded`` operations (the Protocol's) first wait out the simulated latency, then
        honour a simulated outage. SQLite failures become directory errors here and
        nowhere else.
        """
        if guarded and self.latency_ms:
            # Before connecting: a round trip must never hold the file's write lock, or
            # every process sharing the file would queue behind this one's sleep.
            time.sleep(self.latency_ms / 1000)
        try:
            conn = self._connect()
        except sqlite3.Error as err:
            raise DirectoryUnavailable(f"sandbox directory file unreachable: {err}") from err
        try:
            # IMMEDIATE takes the write lock up front, so read-then-write is atomic
            # and a busy file waits for the timeout instead of failing at upgrade.
            conn.execute("BEGIN IMMEDIATE")
            if guarded and self._consume_outage(conn):
                conn.execute("COMMIT")
                raise DirectoryUnavailable(OUTAGE_MESSAGE)
            yield conn
            conn.execute("COMMIT")
        except SignInError:
            conn.execute("COMMIT")  # a failed sign-in's bad-password count must stick
            raise
        except sqlite3.OperationalError as err:
            raise DirectoryUnavailable(f"sandbox directory file error: {err}") from err
        except sqlite3.Error as err:
            raise ConfigurationError(f"sandbox directory file unusable: {err}") from err
        finally:
            if conn.in_transaction:
                # An error is already propagating; a failed rollback must not mask it.
                with contextlib.suppress(sqlite3.Error):
                    conn.execute("ROLLBACK")
            conn.close()

    @staticmethod
    def _consume_outage(conn: sqlite3.Connection) -> bool:
        outage: int = conn.execute("SELECT outage FROM sandbox_state WHERE id = 1").fetchone()[0]
        if outage > 0:
            conn.execute("UPDATE sandbox_state SET outage = outage - 1 WHERE id = 1")
        return outage != 0

    @staticmethod
    def _row_by_id(conn: sqlite3.Connection, user_id: str) -> sqlite3.Row:
        row: sqlite3.Row | None = conn.execute(
            "SELECT * FROM users WHERE id = ?", (_key(user_id),)
        ).fetchone()
        if row is None:
            raise UserNotFound("no user with that id in the sandbox directory")
        return row

    @staticmethod
    def _row_for_sign_in(conn: sqlite3.Connection, username: str) -> sqlite3.Row | None:
        row: sqlite3.Row | None = conn.execute(
            "SELECT * FROM users WHERE username_key = :k OR upn_key = :k"
            " ORDER BY username_key = :k DESC",
            {"k": _key(username)},
        ).fetchone()
        return row

    # -- DirectoryAdapter ------------------------------------------------------------

    def check_connection(self) -> None:
        """Prove the file opens and holds the sandbox schema."""
        with self._transaction() as conn:
            conn.execute("SELECT count(*) FROM users").fetchone()

    def find_user(self, identifier: str) -> DirectoryUser:
        """Find by id, username, UPN or email (case-insensitive), in that order of
        precedence; ``UserNotFound`` when nobody or several people match."""
        key = _key(identifier)
        with self._transaction() as conn:
            rows = conn.execute(
                "SELECT * FROM users WHERE id = :k OR username_key = :k"
                " OR upn_key = :k OR email_key = :k",
                {"k": key},
            ).fetchall()
        if key and rows:
            columns = ("id", "username_key", "upn_key", "email_key")
            for column in columns:
                matches = [row for row in rows if row[column] == key]
                if len(matches) == 1:
                    return _user(matches[0])
                if matches:
                    raise UserNotFound(f"identifier is ambiguous: {len(matches)} users match")
        raise UserNotFound("no user with that identifier in the sandbox directory")

    def get_user(self, user_id: str) -> DirectoryUser:
        """Fetch by stable id (a uuid4 string)."""
        with self._transaction() as conn:
            return _user(self._row_by_id(conn, user_id))

    def list_users(
        self, *, group: str | None = None, ou: str | None = None
    ) -> Iterator[DirectoryUser]:
        """Members of ``group`` (nested groups included) and/or users under ``ou``
        (a slash path such as ``"Staff/Sales"``, subtree); everyone when neither.

        An unknown group raises ``ConfigurationError``: an empty answer would hide
        a misspelt scope. The query runs now, not when the iterator is consumed.
        """
        group_key = None if group is None else _key(group)
        ou_key = None if ou is None else _key(ou).strip("/")
        with self._transaction() as conn:
            if (
                group_key is not None
                and not conn.execute("SELECT 1 FROM groups WHERE key = ?", (group_key,)).fetchone()
            ):
                raise ConfigurationError(f"no group {group!r} in the sandbox directory")
            rows = conn.execute(_LIST_USERS, {"group": group_key, "ou": ou_key}).fetchall()
        return iter([_user(row) for row in rows])

    def set_password(self, user_id: str, password: str, *, must_change: bool, unlock: bool) -> None:
        """Reset the password (an administrator's reset: no old password, no history).

        Resets the bad-password count; a locked account stays locked unless ``unlock``.
        """
        hashed = _hash_password(password, self.hash_cost)  # not while holding the file's lock
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
        return [_user(row) for row in rows]

    def password_policy(self) -> PasswordPolicy:
        """The policy this sandbox applies to new passwords."""
        with self._transaction():
            return self.policy

    # -- test and demo controls (not part of the Protocol) ---------------------------

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
        password_hash = None if password is None else _hash_password(password, self.hash_cost)
        with self._transaction(guarded=False) as conn:
            try:
                conn.execute(
                    "INSERT INTO users (id, username, username_key, display_name, email,"
                    " email_key, upn, upn_key, mobile, ou_key, password_hash, disabled,"
                    " protected) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        user_id, username, _key(username), display_name,
                        email, email and _key(email), upn, upn and _key(upn), mobile,
                        ou and _key(ou).strip("/"), password_hash, disabled, protected,
                    ),
                )  # fmt: skip
            except sqlite3.IntegrityError:
                raise ValueError(f"username or UPN already taken: {username!r}") from None
            for group in groups:
                self._ensure_group(conn, group)
                conn.execute(
                    "INSERT OR IGNORE INTO user_groups (user_id, group_key) VALUES (?, ?)",
                    (user_id, _key(group)),
                )
            return _user(self._row_by_id(conn, user_id))

    def add_group(self, name: str, *, member_of: Iterable[str] = ()) -> str:
        """Create ``name`` (if missing) as a member of each of ``member_of``; returns
        the name to pass to ``list_users(group=...)``."""
        with self._transaction(guarded=False) as conn:
            self._ensure_group(conn, name)
            for parent in member_of:
                self._ensure_group(conn, parent)
                conn.execute(
                    "INSERT OR IGNORE INTO group_groups (child_key, parent_key) VALUES (?, ?)",
                    (_key(name), _key(parent)),
                )
        return name

    @staticmethod
    def _ensure_group(conn: sqlite3.Connection, name: str) -> None:
        conn.execute("INSERT OR IGNORE INTO groups (key, name) VALUES (?, ?)", (_key(name), name))

    def _sign_in(self, conn: sqlite3.Connection, username: str, password: str) -> sqlite3.Row:
        """Check a password in Active Directory's order: locked (whatever the password),
        wrong password (counted; the threshold locks), disabled."""
        row = self._row_for_sign_in(conn, username)
        if row is None:
            raise InvalidCredentials("unknown user or wrong password")
        if row["locked_at"] is not None:
            raise AccountLocked("account is locked out")
        if not _verify_password(password, row["password_hash"]):
            bad_count = row["bad_count"] + 1
            locked_at = _now().isoformat() if 0 < self.lockout_threshold <= bad_count else None
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
        return _user(row)

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
                (_hash_password(new_password, self.hash_cost), row["id"]),
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
