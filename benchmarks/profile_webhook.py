"""Where a signed RESET webhook spends its time: the app in-process, under cProfile.

Run from the repository root::

    .venv/bin/python benchmarks/profile_webhook.py [--requests N] [--database-url URL]
        [--top K] [--pstats FILE] [--pyinstrument]

Same set-up as ``webhook_throughput.py`` (throwaway redis-server, migrated temporary
SQLite database or the given empty PostgreSQL one, one enrolled user per request,
``env=production``, RQ queue), but no HTTP server: each request goes through
``app.test_client()`` in this process, so the profile shows the app and its libraries
only. It prints the in-process rate, how long each request holds a database
transaction (on SQLite: the write lock, as the app begins with ``BEGIN IMMEDIATE``) and
waits for the RQ enqueue, then the cumulative share of the main parts of the path and
the top functions under cProfile. ``--pstats`` keeps the raw profile for ``snakeviz``
or ``python -m pstats``. ``--pyinstrument`` uses the sampling profiler instead (far
less overhead than cProfile on SQLAlchemy's many small calls); install it in a
throwaway virtualenv, not the project's, and put that on the path::

    python3.11 -m venv /tmp/prof-venv && /tmp/prof-venv/bin/pip install pyinstrument
    PYTHONPATH=/tmp/prof-venv/lib/python3.11/site-packages \\
        .venv/bin/python benchmarks/profile_webhook.py --pyinstrument
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import shutil
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from webhook_throughput import (
    REPO_ROOT,
    SMS_PATH,
    SignedRequest,
    accepted_twiml,
    migrate_and_seed,
    phone_of,
    running,
    sign_requests,
    start_redis,
)

# (label, file suffix, function name): cumulative time of these frames, share of the total.
PARTS = (
    ("signature check (twilio RequestValidator)", "twilio/request_validator.py", "validate"),
    ("phone parsing (phonenumbers, From + To)", "webhooks/views.py", "_e164"),
    ("inbound.handle (DB work + enqueue)", "services/inbound.py", "handle"),
    ("  request_reset", "services/resets.py", "request_reset"),
    ("  RQ enqueue (Redis)", "blink_sms/queue.py", "enqueue"),
    ("  Session.commit", "sqlalchemy/orm/session.py", "commit"),
    ("  Session.flush", "sqlalchemy/orm/session.py", "flush"),
    ("  Session.execute", "sqlalchemy/orm/session.py", "execute"),
    ("  Session.close", "sqlalchemy/orm/session.py", "close"),
    ("  sqlite3 Cursor.execute", "~", "<method 'execute' of 'sqlite3.Cursor' objects>"),
    ("  sqlite3 Connection.commit", "~", "<method 'commit' of 'sqlite3.Connection' objects>"),
    ("structlog (all log calls)", "structlog/_base.py", "_process_event"),
    ("TwiML rendering", "webhooks/views.py", "twiml"),
    ("Flask before_request (request id)", "blink_sms/app.py", "_bind_request_id"),
    ("request.form parsing", "werkzeug/wrappers/request.py", "_load_form_data"),
)


def cumulative(stats: pstats.Stats, suffix: str, name: str) -> tuple[float, int]:
    """Cumulative seconds and primitive calls of the frames matching file suffix and name."""
    total, calls = 0.0, 0
    table = stats.stats  # type: ignore[attr-defined]
    for (filename, _line, function), (primitive, _n, _tt, ct, _callers) in table.items():
        if function == name and filename.endswith(suffix):
            total += ct
            calls += primitive
    return total, calls


def send_all(client: Any, requests: Sequence[SignedRequest], expected: bytes) -> float:
    """Send ``requests`` through the test client; the seconds it took."""
    started = time.perf_counter()
    for item in requests:
        response = client.post(SMS_PATH, data=item.body, headers=item.headers)
        if response.status_code != 200 or response.data != expected:
            raise RuntimeError(f"unexpected answer {response.status_code}: {response.data!r}")
    return time.perf_counter() - started


@dataclass
class Stopwatch:
    """Time spent between paired events, summed."""

    seconds: float = 0.0
    count: int = 0
    _open: float | None = None

    def start(self, *_: object) -> None:
        self._open = time.perf_counter()

    def stop(self, *_: object) -> None:
        if self._open is not None:
            self.seconds += time.perf_counter() - self._open
            self.count += 1
            self._open = None


def instrument(services: Any) -> tuple[Stopwatch, Stopwatch, Counter[str]]:
    """Time the database transactions and the RQ enqueues of the app; count statements."""
    from sqlalchemy import event

    transactions, enqueues = Stopwatch(), Stopwatch()
    statements: Counter[str] = Counter()
    engine = services.db.engine

    def count(conn: Any, cursor: Any, statement: str, *_: Any) -> None:
        statements[" ".join(statement.split())[:70]] += 1

    def count_begin(conn: Any) -> None:
        if conn.dialect.name != "sqlite":  # SQLite's BEGIN IMMEDIATE is a statement already
            statements["BEGIN (sent by the driver)"] += 1

    def count_commit(conn: Any) -> None:
        statements["COMMIT"] += 1

    event.listen(engine, "before_cursor_execute", count)
    event.listen(engine, "begin", count_begin)
    event.listen(engine, "commit", count_commit)
    event.listen(engine, "begin", transactions.start)
    event.listen(engine, "commit", transactions.stop)
    event.listen(engine, "rollback", transactions.stop)
    queue = services.queue
    original = queue.enqueue

    def timed_enqueue(*args: Any, **kwargs: Any) -> None:
        enqueues.start()
        try:
            original(*args, **kwargs)
        finally:
            enqueues.stop()

    queue.enqueue = timed_enqueue
    return transactions, enqueues, statements


def print_cprofile(profiler: cProfile.Profile, requests: int, top: int, dump: Path | None) -> None:
    stats = pstats.Stats(profiler)
    if dump:
        stats.dump_stats(dump)
    total = stats.total_tt  # type: ignore[attr-defined]
    print(
        f"{'part of the path (cumulative, cProfile)':<48} {'ms/req':>7} {'share':>6} {'calls':>6}"
    )
    for label, suffix, name in PARTS:
        seconds, calls = cumulative(stats, suffix, name)
        print(
            f"{label:<48} {seconds / requests * 1000:>7.3f} {seconds / total:>6.1%} "
            f"{calls / requests:>6.1f}"
        )
    print()
    stats.sort_stats("tottime").print_stats(top)
    stats.sort_stats("cumulative").print_stats(top)


def settings_for(folder: Path, database_url: str, redis_url: str) -> Any:
    import secrets

    from blink_sms.settings import Settings

    return Settings(
        secret_key=secrets.token_urlsafe(36),
        env="production",
        database_url=database_url,
        redis_url=redis_url,
        public_url="https://127.0.0.1:8000",  # as behind a TLS proxy
        twilio_account_sid="AC" + secrets.token_hex(16),
        twilio_auth_token=secrets.token_hex(16),
        log_format="json",
        log_level="WARNING",
    )


def profile(args: argparse.Namespace, folder: Path, redis_url: str) -> None:
    from blink_sms.app import create_app

    database_url = args.database_url or f"sqlite:///{folder / 'blink-sms.sqlite'}"
    settings = settings_for(folder, database_url, redis_url)
    warm, n = 50, args.requests
    migrate_and_seed(database_url, settings.secret_key, folder / "dir.sqlite", warm + 2 * n)
    requests = sign_requests(
        settings.public_url + SMS_PATH,
        settings.twilio_auth_token,
        settings.twilio_account_sid,
        [phone_of(i) for i in range(warm + 2 * n)],
    )
    app = create_app(settings)
    services = app.extensions["blink_sms"]
    client = app.test_client()
    expected = accepted_twiml()
    send_all(client, requests[:warm], expected)

    # 1. Plain: the in-process rate, transaction and enqueue times.
    transactions, enqueues, statements = instrument(services)
    services.redis.config_resetstat()
    elapsed = send_all(client, requests[warm : warm + n], expected)
    commands = {
        name.removeprefix("cmdstat_"): int(value["calls"])
        for name, value in services.redis.info("commandstats").items()
    }
    database = "PostgreSQL" if database_url.startswith("postgresql") else "SQLite"
    print(f"in-process, {database}, one process, no HTTP server: {n / elapsed:.0f} req/s")
    print(f"  whole request           {elapsed / n * 1000:6.2f} ms")
    print(
        f"  DB transactions         {transactions.seconds / n * 1000:6.2f} ms "
        f"({transactions.count / n:.1f} per request; begin to commit)"
    )
    print(f"  RQ enqueue (after commit) {enqueues.seconds / n * 1000:4.2f} ms")
    per_request = ", ".join(
        f"{name} {calls / n:g}" for name, calls in sorted(commands.items()) if calls >= n / 2
    )
    print(f"  Redis commands per request: {per_request}")
    print(f"  SQL statements per request: {sum(statements.values()) / n:g}")
    for statement, calls in statements.most_common():
        if calls >= n / 2:
            print(f"    {calls / n:4g} x {statement}")
    print()

    # 2. Profiled.
    if args.pyinstrument:
        from pyinstrument import Profiler

        sampler = Profiler(interval=0.0005)
        sampler.start()
        elapsed = send_all(client, requests[warm + n :], expected)
        sampler.stop()
        print(f"under pyinstrument: {n / elapsed:.0f} req/s")
        print(sampler.output_text(unicode=False, color=False, show_all=False))
    else:
        profiler = cProfile.Profile()
        profiler.enable()
        elapsed = send_all(client, requests[warm + n :], expected)
        profiler.disable()
        print(f"under cProfile: {n / elapsed:.0f} req/s (cProfile inflates many-small-call code)")
        print_cprofile(profiler, n, args.top, args.pstats)
    services.db.dispose()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--database-url", help="an empty PostgreSQL database (default: SQLite)")
    parser.add_argument("--top", type=int, default=30)
    parser.add_argument("--pstats", type=Path, help="write the raw cProfile data here")
    parser.add_argument("--pyinstrument", action="store_true", help="sample with pyinstrument")
    args = parser.parse_args(argv)
    sys.path.insert(0, str(REPO_ROOT))  # see REPO_ROOT
    folder = Path(tempfile.mkdtemp(prefix="blink-profile-"))
    try:
        redis, redis_url = start_redis(folder)
        with running(redis):
            profile(args, folder, redis_url)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
