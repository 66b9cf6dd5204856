"""Active Directory adapter against a real Samba DC: set-password cost and a 10,000-user list.

Run from the repository root, as root (it may install Samba), with the project's
virtualenv::

    .venv/bin/python benchmarks/ldap_set_password.py [--resets N] [--users N] [--page-size N]

What one run does, on loopback addresses of its own, cleaned up afterwards (also on
Ctrl+C):

1. Starts a throwaway Samba AD DC with ``scripts/samba-dc start`` (from its cached
   template) and prints how long that took.
2. Set-password: one user, ``--resets`` resets each way, in alternating rounds after a
   warm-up. *Raw*: ldap3's ``modify`` on one bound LDAPS connection, with the same
   three changes the adapter sends (``unicodePwd``, ``pwdLastSet=0``,
   ``lockoutTime=0``). *Adapter*: ``ActiveDirectory.set_password(..., must_change=True,
   unlock=True)``, which also reads the user (by objectGUID, with ``tokenGroups``) to
   refuse protected, disabled and out-of-scope accounts. Prints ms per reset (median,
   p95) and the ratio adapter / raw.
3. Listing: creates ``--users`` users (default 10,000) as members of one group, over
   one LDAP connection, then times ``list_users(group=...)`` (nested-membership
   filter, paged) on a fresh adapter (bind and domain facts included) and again on
   the warm one.

The DC, the benchmark and its LDAP client share this machine's CPUs: the figures are
for comparing runs on one machine.
"""

from __future__ import annotations

import argparse
import os
import secrets
import shutil
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from ldap3 import MODIFY_ADD, MODIFY_REPLACE, NONE, Connection, Server

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # the repository's packages, whatever the install

from directory_adapters.active_directory import (  # noqa: E402 - after the path fix
    ActiveDirectory,
    VerifiedTls,
    encode_password,
)

SCRIPT = ROOT / "scripts" / "samba-dc"
UF_NORMAL_ACCOUNT = 0x200


def start_dc(folder: Path) -> dict[str, str]:
    result = subprocess.run(
        ["bash", str(SCRIPT), "start", str(folder)],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    if result.returncode != 0:
        raise SystemExit(f"scripts/samba-dc start failed: {result.stderr[-2000:]}")
    return dict(line.split("=", 1) for line in result.stdout.splitlines() if "=" in line)


def stop_dc(folder: Path) -> None:
    subprocess.run(["bash", str(SCRIPT), "stop", str(folder)], check=False, timeout=120)


def admin_connection(facts: dict[str, str]) -> Any:
    tls = VerifiedTls(validate=ssl.CERT_REQUIRED, ca_certs_file=facts["CA_FILE"])
    server = Server(facts["HOST"], port=636, use_ssl=True, tls=tls, get_info=NONE)
    return Connection(
        server, user=facts["ADMIN_DN"], password=facts["ADMIN_PASSWORD"], auto_bind=True
    )


def ok(connection: Any, what: str) -> None:
    if connection.result["result"] != 0:
        raise SystemExit(f"{what}: {connection.result}")


def fresh_password() -> str:
    return f"Bench-{secrets.token_hex(6)}-Xy7!"


def timed(action: Callable[[], object]) -> float:
    started = time.perf_counter()
    action()
    return time.perf_counter() - started


def summary(samples: Sequence[float]) -> str:
    ordered = sorted(samples)
    p95 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.95))]
    return f"median {statistics.median(ordered) * 1000:6.2f} ms   p95 {p95 * 1000:6.2f} ms"


def bench_set_password(facts: dict[str, str], admin: Any, resets: int) -> None:
    base = facts["BASE_DN"]
    ou = f"OU=BenchReset,{base}"
    admin.add(ou, ["top", "organizationalUnit"])
    dn = f"CN=bench-user,{ou}"
    admin.add(
        dn,
        ["top", "person", "organizationalPerson", "user"],
        {
            "sAMAccountName": "bench-user",
            "unicodePwd": encode_password(fresh_password()),
            "userAccountControl": UF_NORMAL_ACCOUNT,
        },
    )
    ok(admin, "create the user")
    admin.search(dn, "(objectClass=*)", "BASE", attributes=["objectGUID"])
    guid = str(uuid.UUID(bytes_le=admin.response[0]["raw_attributes"]["objectGUID"][0]))
    adapter = ActiveDirectory.from_settings(
        {
            "hosts": [facts["HOST"]],
            "ca_file": facts["CA_FILE"],
            "bind_user": facts["ADMIN_DN"],
            "bind_password": facts["ADMIN_PASSWORD"],
            "base_dn": base,
        }
    )

    def raw() -> None:
        admin.modify(
            dn,
            {
                "unicodePwd": [(MODIFY_REPLACE, [encode_password(fresh_password())])],
                "pwdLastSet": [(MODIFY_REPLACE, ["0"])],
                "lockoutTime": [(MODIFY_REPLACE, ["0"])],
            },
        )
        ok(admin, "raw reset")

    def through_adapter() -> None:
        adapter.set_password(guid, fresh_password(), must_change=True, unlock=True)

    for _ in range(10):  # warm-up: connections bound, domain facts read
        raw()
        through_adapter()
    raw_times: list[float] = []
    adapter_times: list[float] = []
    rounds = 4
    for _ in range(rounds):
        raw_times += [timed(raw) for _ in range(resets // rounds)]
        adapter_times += [timed(through_adapter) for _ in range(resets // rounds)]
    ratio = statistics.median(adapter_times) / statistics.median(raw_times)
    print(f"set password, {len(raw_times)} resets each, Samba over LDAPS:")
    print(f"  raw ldap3 modify        {summary(raw_times)}")
    print(f"  adapter set_password    {summary(adapter_times)}")
    print(f"  ratio adapter / raw     {ratio:.2f} (median)   binds by the adapter: {adapter.binds}")
    adapter.close()


def bench_list(facts: dict[str, str], admin: Any, users: int, page_size: int) -> None:
    base = facts["BASE_DN"]
    ou = f"OU=BenchList,{base}"
    admin.add(ou, ["top", "organizationalUnit"])
    group = f"CN=bench-all,{ou}"
    admin.add(group, ["top", "group"], {"sAMAccountName": "bench-all"})
    ok(admin, "create the group")
    started = time.perf_counter()
    members: list[str] = []
    for index in range(users):
        dn = f"CN=bench{index:05d},{ou}"
        admin.add(
            dn,
            ["top", "person", "organizationalPerson", "user"],
            {
                "sAMAccountName": f"bench{index:05d}",
                "displayName": f"Bench User {index}",
                "mail": f"bench{index:05d}@mail.example.test",
                "mobile": f"+3161{index:07d}",
            },
        )
        ok(admin, "create a user")
        members.append(dn)
    for start in range(0, users, 1000):
        admin.modify(group, {"member": [(MODIFY_ADD, members[start : start + 1000])]})
        ok(admin, "add members")
    print(f"created {users} users in one group in {time.perf_counter() - started:.1f} s")
    adapter = ActiveDirectory.from_settings(
        {
            "hosts": [facts["HOST"]],
            "ca_file": facts["CA_FILE"],
            "bind_user": facts["ADMIN_DN"],
            "bind_password": facts["ADMIN_PASSWORD"],
            "base_dn": base,
            "page_size": page_size,
        }
    )
    listed: list[Any] = []
    cold = timed(lambda: listed.extend(adapter.list_users(group=group)))
    if len(listed) != users:
        raise SystemExit(f"listed {len(listed)} users, expected {users}")
    warm = timed(lambda: list(adapter.list_users(group=group)))
    print(f"list_users(group=...) of {users} users, page size {page_size}:")
    print(f"  fresh adapter (bind + domain facts)  {cold:6.2f} s  ({users / cold:,.0f} users/s)")
    print(f"  warm adapter                         {warm:6.2f} s  ({users / warm:,.0f} users/s)")
    adapter.close()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--resets", type=int, default=200, help="resets each way (default 200)")
    parser.add_argument("--users", type=int, default=10_000, help="users in the listed group")
    parser.add_argument("--page-size", type=int, default=500)
    args = parser.parse_args(argv)
    folder = Path(tempfile.mkdtemp(prefix="blink-bench-samba-"))
    try:
        started = time.perf_counter()
        facts = start_dc(folder / "dc")
        print(f"Samba AD DC up in {time.perf_counter() - started:.2f} s at {facts['HOST']}")
        admin = admin_connection(facts)
        bench_set_password(facts, admin, args.resets)
        bench_list(facts, admin, args.users, args.page_size)
        admin.unbind()
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    finally:
        stop_dc(folder / "dc")
        shutil.rmtree(folder, ignore_errors=True)
    return 0


if __name__ == "__main__":
    if os.geteuid() != 0:
        print("note: not root; scripts/samba-dc needs Samba installed already", file=sys.stderr)
    sys.exit(main())
