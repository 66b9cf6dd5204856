"""The sandbox's SQLite file: its schema, and the one way into it.

Every operation is one short transaction on a connection of its own (WAL mode, busy
timeout), so the web process, RQ workers and tests can share one file safely across
threads and processes. SQLite failures become directory errors here and nowhere else.
"""

from __future__ import annotations

import contextlib
import sqlite3
import time
from collections.abc import Iterator
from datetime import UTC, datetime

from ..base import DirectoryUser, PasswordPolicy
from ..errors import ConfigurationError, DirectoryUnavailable, UserNotFound
from .passwords import SignInError

OUTAGE_MESSAGE = "sandbox directory unavailable (simulated outage)"
BUSY_TIMEOUT_SECONDS = 10.0

# *_key columns hold casefolded copies: lookups are case-insensitive beyond ASCII.
SCHEMA_SQL = """
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
-- When a password expires, as ISO 8601 UTC with microseconds (so text order is time
-- order); a user without a row has a password that never expires. A table of its own, so
-- files made before it existed gain it when opened.
CREATE TABLE IF NOT EXISTS password_expiries (
    user_id TEXT PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    expires_at TEXT NOT NULL
);
-- outage: 0 none, N > 0 the next N Protocol calls fail, -1 until cleared.
CREATE TABLE IF NOT EXISTS sandbox_state (
    id INTEGER PRIMARY KEY CHECK (id = 1), outage INTEGER NOT NULL DEFAULT 0
);
INSERT OR IGNORE INTO sandbox_state (id, outage) VALUES (1, 0);
COMMIT;
"""


def key(value: str) -> str:
    """The casefolded form stored in the ``*_key`` columns."""
    return value.strip().casefold()


def stored_time(moment: datetime) -> str:
    """An aware datetime as ``password_expiries.expires_at`` holds it (fixed width, UTC)."""
    if moment.tzinfo is None:
        raise ValueError("a naive datetime has no place in the sandbox: give a time zone")
    return moment.astimezone(UTC).isoformat(timespec="microseconds")


def user_of(row: sqlite3.Row) -> DirectoryUser:
    """A ``users`` row as the directory interface shows it."""
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


class SandboxFile:
    """The file under a sandbox directory: opening it, and one transaction at a time.

    Each Protocol call first waits ``latency_ms`` milliseconds (a simulated network
    round trip), before it touches the file; test and demo controls do not wait.
    """

    path: str
    policy: PasswordPolicy
    lockout_threshold: int
    latency_ms: int
    hash_cost: int

    def _open(self) -> None:
        """Create the schema if the file is new; ``ConfigurationError`` if it cannot be."""
        try:
            conn = self._connect()
            try:
                conn.execute("PRAGMA journal_mode = WAL")  # persists in the file
                conn.executescript(SCHEMA_SQL)
            finally:
                conn.close()
        except sqlite3.Error as err:
            raise ConfigurationError(f"cannot open sandbox directory {self.path!r}: {err}") from err

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
            "SELECT * FROM users WHERE id = ?", (key(user_id),)
        ).fetchone()
        if row is None:
            raise UserNotFound("no user with that id in the sandbox directory")
        return row

    @staticmethod
    def _row_for_sign_in(conn: sqlite3.Connection, username: str) -> sqlite3.Row | None:
        row: sqlite3.Row | None = conn.execute(
            "SELECT * FROM users WHERE username_key = :k OR upn_key = :k"
            " ORDER BY username_key = :k DESC",
            {"k": key(username)},
        ).fetchone()
        return row
