"""The database connection and schema migrations.

One engine per process, one short session per unit of work
(``with db.session() as session``). The schema belongs to Alembic: ``upgrade()``
brings any database to the newest revision.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session, sessionmaker

if TYPE_CHECKING:
    from alembic.config import Config
    from sqlalchemy.engine import ExceptionContext

MIGRATIONS = Path(__file__).parent / "migrations"


def build_engine(url: str, **options: Any) -> Engine:
    """An engine whose errors name no values: not the statement's parameters (phone
    numbers, emails), nor the values PostgreSQL quotes back (see _first_line_only)."""
    engine = create_engine(url, hide_parameters=True, **options)
    event.listen(engine, "handle_error", _first_line_only)
    return engine


def _first_line_only(context: ExceptionContext) -> BaseException | None:
    """Cut a database error's message to its first line.

    PostgreSQL explains a refused row with its values on the next lines ("DETAIL:  Key
    (phone)=(+31612345678) already exists", "Failing row contains (...)"); the first line
    names the constraint, which is what a log needs. The driver's own exception is cut
    too, since a traceback prints it as the cause; its ``diag`` still has the detail.
    SQLite's messages are one line already. A failure to connect or a lost connection
    keeps every line: it names hosts, not rows, and its first line alone says little."""
    error = context.original_exception
    first, newline, _ = str(error).partition("\n")
    wrapped = context.sqlalchemy_exception
    if not newline or context.statement is None or context.is_disconnect:
        return None
    if not isinstance(wrapped, DBAPIError):
        return None
    error.args = (first,)
    return DBAPIError.instance(
        context.statement,
        context.parameters,
        error,
        context.dialect.loaded_dbapi.Error,
        hide_parameters=True,
        connection_invalidated=context.is_disconnect,
        dialect=context.dialect,
        ismulti=wrapped.ismulti,
    )


def _sqlite_pragmas(dbapi_connection: Any, connection_record: object) -> None:
    # Let SQLAlchemy, not the sqlite3 module, decide when transactions begin, so that
    # savepoints work; see _sqlite_begin.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    # WAL lets the web process read while a worker writes; foreign keys are off by default.
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=5000")
    cursor.close()


def _sqlite_begin(connection: Any) -> None:
    # IMMEDIATE takes the write lock up front: two processes that read and then write
    # wait for each other (busy_timeout) instead of failing with SQLITE_BUSY.
    connection.exec_driver_sql("BEGIN IMMEDIATE")


class Database:
    """An engine and its session factory."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine: Engine = build_engine(url, pool_pre_ping=not url.startswith("sqlite"))
        if self.engine.dialect.name == "sqlite":
            event.listen(self.engine, "connect", _sqlite_pragmas)
            event.listen(self.engine, "begin", _sqlite_begin)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A session that rolls back on error and always closes."""
        session = self._sessions()
        try:
            yield session
        except BaseException:
            session.rollback()
            raise
        finally:
            session.close()

    def ping(self) -> None:
        with self.engine.connect() as connection:
            connection.execute(text("SELECT 1"))

    def dispose(self) -> None:
        self.engine.dispose()


def missing_schema(err: BaseException) -> bool:
    """Whether a database error means the schema is missing or behind the code (a table
    or column that migrations create): the fix is ``blink-sms db upgrade``."""
    text = str(getattr(err, "orig", None) or err).lower()
    return (
        "no such table" in text
        or "no such column" in text
        or (("relation" in text or "column" in text) and "does not exist" in text)
    )


def alembic_config(url: str) -> Config:
    # Alembic is imported here, not at the top: the web and worker processes never
    # migrate, and importing it costs start-up time and log lines.
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def upgrade(url: str, revision: str = "head") -> None:
    """Apply migrations up to ``revision``."""
    from alembic import command

    command.upgrade(alembic_config(url), revision)


def insert_ignoring_conflicts(session: Session, table: Any, **conflict: Any) -> Any:
    """``INSERT ... ON CONFLICT DO NOTHING`` for the session's database.

    One statement instead of a savepoint plus a caught IntegrityError; ``conflict``
    names the unique index (``index_elements``, ``index_where``) when needed.
    """
    if session.get_bind().dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        return pg_insert(table).on_conflict_do_nothing(**conflict)
    from sqlalchemy.dialects.sqlite import insert as sqlite_insert

    return sqlite_insert(table).on_conflict_do_nothing(**conflict)
