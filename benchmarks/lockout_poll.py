"""The lockout watch's poll of a 10,000-user Active Directory with 100 accounts locked.

Run from the repository root, as root the first time (it may install Samba), with the
project's virtualenv::

    .venv/bin/python benchmarks/lockout_poll.py [--users N] [--locked N] [--database-url URL]

What one run does, on loopback addresses and in a temporary folder of its own, cleaned up
afterwards (also on Ctrl+C):

1. Starts a throwaway Samba AD DC with ``scripts/samba-dc start`` and sets its lockout
   policy with ``samba-tool`` (3 bad passwords, locked for 30 minutes).
2. Creates ``--users`` users (default 10,000) in one OU over one LDAP connection, reads
   their objectGUIDs back in one paged search, and enrols them all in a temporary SQLite
   database (or the empty, throwaway PostgreSQL database of ``--database-url``): one
   client on that DC scoped to the OU, every user active with a phone of their own.
3. Locks ``--locked`` of them (default 100) with bad binds.
4. Polls twice with :func:`blink_sms.services.lockout_watch.poll`, as the client's
   worker would (in this process; Twilio is faked with ``responses``, in process too).
   The first poll is of a fresh adapter: it binds and reads the domain's facts (cached
   for ``cache_seconds``), which the second one does not.

For each poll it prints the wall time, the LDAP searches issued (ldap3's
``Connection.search`` counted: the lockout search's pages apart from the domain facts'
reads) with the time spent in them, and the SMS sent. Targets: the lockout search is one
search (plus paging), the poll takes < 1 s, exactly ``--locked`` SMS on the first poll
and none on the second. Exit status 1 if an SMS count is wrong; 0 otherwise, even when
the time target is missed.
"""

from __future__ import annotations

import argparse
import secrets
import shutil
import ssl
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ldap3 import NONE, SUBTREE, Connection, Server

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # the repository's packages, whatever the install

from benchmarks.ldap_set_password import start_dc, stop_dc  # noqa: E402 - the same DC
from directory_adapters.active_directory import VerifiedTls, encode_password  # noqa: E402

UF_NORMAL_ACCOUNT = 0x200
THRESHOLD = 3
TARGET_SECONDS = 1.0
PASSWORD = "Bench!Passw0rd-1"  # noqa: S105 - the throwaway users' password


def set_lockout_policy(folder: Path) -> None:
    subprocess.run(
        ["samba-tool", "domain", "passwordsettings", "set",
         "-H", f"{folder}/private/sam.ldb", "-s", f"{folder}/etc/smb.conf",
         f"--account-lockout-threshold={THRESHOLD}", "--account-lockout-duration=30",
         "--reset-account-lockout-after=30"],
        check=True, capture_output=True, timeout=60,
    )  # fmt: skip


def server(facts: dict[str, str]) -> Server:
    tls = VerifiedTls(validate=ssl.CERT_REQUIRED, ca_certs_file=facts["CA_FILE"])
    return Server(facts["HOST"], port=636, use_ssl=True, tls=tls, get_info=NONE)


def create_users(facts: dict[str, str], count: int) -> tuple[str, dict[str, str]]:
    """An OU with ``count`` users; returns it and sAMAccountName -> objectGUID."""
    admin = Connection(
        server(facts), user=facts["ADMIN_DN"], password=facts["ADMIN_PASSWORD"], auto_bind=True
    )
    ou = f"OU=BenchLockouts,{facts['BASE_DN']}"
    admin.add(ou, ["top", "organizationalUnit"])
    started = time.perf_counter()
    for index in range(count):
        name = f"lock{index:05d}"
        admin.add(
            f"CN={name},{ou}",
            ["top", "person", "organizationalPerson", "user"],
            {
                "sAMAccountName": name,
                "displayName": f"Bench User {index}",
                "unicodePwd": encode_password(PASSWORD),
                "userAccountControl": UF_NORMAL_ACCOUNT,
            },
        )
        if admin.result["result"] != 0:
            raise SystemExit(f"creating {name}: {admin.result}")
    print(f"created {count} users in {time.perf_counter() - started:.1f} s")
    guids: dict[str, str] = {}
    for entry in admin.extend.standard.paged_search(
        ou, "(objectClass=user)", SUBTREE, attributes=["sAMAccountName", "objectGUID"],
        paged_size=1000, generator=True,
    ):  # fmt: skip
        if entry.get("type") == "searchResEntry":
            raw = entry["raw_attributes"]
            guids[raw["sAMAccountName"][0].decode()] = str(uuid.UUID(bytes_le=raw["objectGUID"][0]))
    admin.unbind()
    return ou, guids


def lock_users(facts: dict[str, str], names: list[str]) -> None:
    started = time.perf_counter()
    for name in names:
        for attempt in range(THRESHOLD):
            connection = Connection(
                server(facts), user=f"{facts['DOMAIN']}\\{name}", password=f"Wrong-{attempt}!"
            )
            connection.open()
            if connection.bind():
                raise SystemExit(f"a wrong password bound as {name}")
            connection.unbind()
    print(f"locked {len(names)} users with bad binds in {time.perf_counter() - started:.1f} s")


@dataclass
class SearchCounter:
    """Counts ldap3 searches (each page is one search) and the time spent in them."""

    calls: list[tuple[str, float]] = field(default_factory=list)

    def install(self) -> None:
        original: Callable[..., Any] = Connection.search

        def counted(
            connection: Connection, base: str, search_filter: str, *a: Any, **k: Any
        ) -> Any:
            started = time.perf_counter()
            try:
                return original(connection, base, search_filter, *a, **k)
            finally:
                self.calls.append((search_filter, time.perf_counter() - started))

        Connection.search = counted  # type: ignore[method-assign]

    def report(self) -> str:
        lockout = [seconds for text, seconds in self.calls if "lockoutTime>=1" in text]
        other = [seconds for text, seconds in self.calls if "lockoutTime>=1" not in text]
        return (
            f"{len(self.calls)} LDAP searches: the lockout search in {len(lockout)} page(s) "
            f"({sum(lockout) * 1000:.0f} ms), {len(other)} reads of the domain's facts "
            f"({sum(other) * 1000:.0f} ms)"
        )


def seed(services: Any, facts: dict[str, str], ou: str, guids: dict[str, str]) -> int:
    from sqlalchemy import insert

    from blink_sms.actors import COMMAND_LINE
    from blink_sms.models import User, UserStatus, utcnow
    from blink_sms.services.clients import create_client

    now = utcnow()
    with services.db.session() as session:
        client = create_client(
            session, services.secrets, COMMAND_LINE, slug="bigco", name="Big Co",
            directory_kind="active_directory",
            directory_settings={
                "hosts": [facts["HOST"]], "ca_file": facts["CA_FILE"],
                "bind_user": facts["ADMIN_DN"], "bind_password": facts["ADMIN_PASSWORD"],
                "base_dn": facts["BASE_DN"], "scopes": [ou],
            },
            sender_number="+15005550006",
        )  # fmt: skip
        rows = [
            {
                "client_id": client.id,
                "directory_id": guid,
                "username": name,
                "display_name": name,
                "phone": f"+1555{index:07d}",
                "status": UserStatus.ACTIVE,
                "sms_opted_out": False,
                "created_at": now,
                "updated_at": now,
            }
            for index, (name, guid) in enumerate(sorted(guids.items()))
        ]
        session.execute(insert(User), rows)
        session.commit()
        return client.id


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--users", type=int, default=10_000)
    parser.add_argument("--locked", type=int, default=100)
    parser.add_argument("--database-url", help="an empty, throwaway PostgreSQL database")
    args = parser.parse_args()

    import responses

    from blink_sms.app import create_app
    from blink_sms.context import blink
    from blink_sms.db import upgrade
    from blink_sms.services import lockout_watch
    from blink_sms.settings import Settings
    from tests.support.fake_twilio import FakeTwilio

    folder = Path(tempfile.mkdtemp(prefix="blink-bench-lockouts-"))
    dc_folder = folder / "dc"
    try:
        started = time.perf_counter()
        facts = start_dc(dc_folder)
        set_lockout_policy(dc_folder)
        print(f"Samba DC started in {time.perf_counter() - started:.1f} s at {facts['HOST']}")
        ou, guids = create_users(facts, args.users)
        lock_users(facts, sorted(guids)[:: max(1, len(guids) // args.locked)][: args.locked])

        url = args.database_url or f"sqlite:///{folder}/blink.sqlite"
        upgrade(url)
        account = "AC" + secrets.token_hex(16)
        settings = Settings(
            secret_key=secrets.token_urlsafe(32), env="test", database_url=url,
            public_url="https://sms.example.com", twilio_account_sid=account,
            twilio_auth_token=secrets.token_hex(16), log_level="WARNING", log_format="json",
            replies_per_hour=10,
        )  # fmt: skip
        app = create_app(settings)
        failed = False
        with app.app_context(), responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
            twilio = FakeTwilio(account).install(rsps)
            services = blink()
            client_id = seed(services, facts, ou, guids)
            print(
                f"enrolled {len(guids)} users ({'PostgreSQL' if args.database_url else 'SQLite'})"
            )
            counter = SearchCounter()
            counter.install()
            for number, expected in ((1, args.locked), (2, 0)):
                counter.calls.clear()
                before = len(twilio.sent)
                started = time.perf_counter()
                result = lockout_watch.poll(services, client_id)
                elapsed = time.perf_counter() - started
                sent = len(twilio.sent) - before
                verdict = "met" if elapsed < TARGET_SECONDS else "missed"
                print(
                    f"poll {number}: {elapsed * 1000:.0f} ms (target < 1 s: {verdict}); "
                    f"{counter.report()}; {result.locked} locked, {sent} SMS sent "
                    f"(expected {expected})"
                )
                failed = failed or sent != expected or result.status != "ok"
        services.db.dispose()
        return 1 if failed else 0
    finally:
        stop_dc(dc_folder)
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        sys.exit(130)
