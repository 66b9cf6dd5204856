"""The users list of a client with 10,000 users, in the console and through the REST API:
server time per request.

Run from the repository root, with the project's virtualenv::

    .venv/bin/python benchmarks/console_users_page.py [--users N] [--rounds R]
        [--database-url URL]

What one run does, in this process and a temporary folder (cleaned up afterwards):

1. Migrates a temporary SQLite database (or the empty, throwaway PostgreSQL database of
   ``--database-url``), adds one sandbox client and N users (default 10,000) in one bulk
   insert: a third active with a phone, a third invited (with an invitation), a third
   not invited yet.
2. Creates an MSP technician and signs a Flask test client in as them (the session the
   console's sign-in writes): requests go through the whole app (routing, session,
   CSRF-free GETs, the service, the template), without a network in between.
3. Renders, R rounds each (default 30, after 3 warm-up renders): the first page, the
   100th page, a name search, a search by the last 4 digits of a phone and the
   "invited" filter. Then the same through the REST API with an MSP key (50 users a
   page; a page deep in the list by its cursor). Prints the median and the 95th
   percentile server time of each, and whether the target (median < 300 ms) is met.
   Exit status 1 if an answer is not a 200 listing users.
"""

from __future__ import annotations

import argparse
import secrets
import statistics
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

TARGET_MS = 300.0


def seed(app: object, users: int, directory: Path) -> tuple[str, str]:
    from sqlalchemy import insert

    from blink_sms.actors import COMMAND_LINE, Role
    from blink_sms.context import blink
    from blink_sms.models import Admin, Invitation, User, UserStatus, utcnow
    from blink_sms.services import api_keys
    from blink_sms.services.clients import create_client

    services = blink()
    now = utcnow()
    with services.db.session() as session:
        client = create_client(
            session,
            services.secrets,
            COMMAND_LINE,
            slug="bigco",
            name="Big Co",
            directory_kind="sandbox",
            directory_settings={"path": str(directory)},
            sender_number="+15005550006",
        )
        rows = []
        for n in range(users):
            status = (UserStatus.ACTIVE, UserStatus.INVITED, UserStatus.PENDING)[n % 3]
            rows.append(
                {
                    "client_id": client.id,
                    "directory_id": f"id-{n:06}",
                    "username": f"user{n:06}",
                    "display_name": f"User {n:06} {secrets.token_hex(2)}",
                    "email": f"user{n:06}@bigco.example",
                    "phone": f"+1555{n:07}" if status is UserStatus.ACTIVE else None,
                    "status": status,
                    "sms_opted_out": False,
                    "created_at": now,
                    "updated_at": now,
                }
            )
        session.execute(insert(User), rows)
        invited = session.execute(
            User.__table__.select().where(User.status == UserStatus.INVITED)
        ).all()
        session.execute(
            insert(Invitation),
            [
                {
                    "user_id": row.id,
                    "token_hash": secrets.token_hex(32),
                    "actor": "benchmark",
                    "created_at": now,
                    "expires_at": now + timedelta(hours=72),
                    "email_status": "sent",
                    "code_failures": 0,
                }
                for row in invited
            ],
        )
        admin = Admin(email="tech@msp.example", role=Role.MSP_TECHNICIAN, totp_confirmed_at=now)
        session.add(admin)
        session.commit()
        _, key = api_keys.create_key(session, COMMAND_LINE, name="bench", client=None, writes=True)
        return str(admin.id), key


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--users", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--database-url", help="an empty, throwaway PostgreSQL database")
    args = parser.parse_args()

    from blink_sms.app import create_app
    from blink_sms.db import upgrade
    from blink_sms.settings import Settings

    with tempfile.TemporaryDirectory(prefix="blink-bench-") as folder:
        url = args.database_url or f"sqlite:///{folder}/blink.sqlite"
        upgrade(url)
        settings = Settings(
            secret_key=secrets.token_urlsafe(32),
            env="test",
            database_url=url,
            public_url="https://sms.example.com",
            sms_backend="console",
            log_level="WARNING",
            api_requests_per_minute=1_000_000,  # the benchmark is one busy key
        )
        app = create_app(settings)
        with app.app_context():
            admin, key = seed(app, args.users, Path(folder) / "directory.sqlite")
        admin_id = int(admin)
        http = app.test_client()
        now = int(time.time())
        with http.session_transaction() as session:
            session["console"] = {
                "admin": admin_id,
                "epoch": 0,
                "at": now,
                "seen": now,
                "2fa": True,
            }
        from api.blueprint import encode_cursor

        api = "/api/v1/clients/bigco/users"
        pages = {
            "first page": "/admin/clients/bigco/users",
            "page 100": "/admin/clients/bigco/users?page=100",
            "name search": "/admin/clients/bigco/users?q=User+0042",
            "phone digits": "/admin/clients/bigco/users?q=4242",
            "invited filter": "/admin/clients/bigco/users?state=invited",
            "API first page": api,
            "API deep page": f"{api}?cursor={encode_cursor(args.users // 2)}",
            "API name search": f"{api}?search=User+0042",
            "API phone digits": f"{api}?search=4242",
            "API invited": f"{api}?state=invited",
        }
        bearer = {"Authorization": f"Bearer {key}"}
        database = "PostgreSQL" if args.database_url else "SQLite"
        print(f"users list, {args.users:,} users, {database}, {args.rounds} rounds")
        failed = False
        for name, path in pages.items():
            headers = bearer if path.startswith("/api/") else {}
            for _ in range(3):
                http.get(path, headers=headers)
            times = []
            for _ in range(args.rounds):
                start = time.perf_counter()
                response = http.get(path, headers=headers)
                times.append((time.perf_counter() - start) * 1000)
                # A page that answers 200 but lists nobody would flatter the figures.
                failed |= response.status_code != 200 or b"@bigco.example" not in response.data
            times.sort()
            median = statistics.median(times)
            p95 = times[int(len(times) * 0.95) - 1]
            verdict = "met" if median < TARGET_MS else "MISSED"
            print(f"  {name:<17} median {median:7.1f} ms   p95 {p95:7.1f} ms   target {verdict}")
        if failed:
            print("an answer was not a 200 with users in it")
        return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
