"""Signed RESET webhooks per second: the real app against a bare Flask endpoint.

Run from the repository root, with the project's virtualenv::

    .venv/bin/python benchmarks/webhook_throughput.py [--requests N] [--workers W]
        [--clients C] [--database-url URL] [--same-user] [--access-log]

What one run does, all on 127.0.0.1 and cleaned up afterwards (also on Ctrl+C):

1. Starts a throwaway ``redis-server`` (no persistence) on a free port, migrates a
   temporary SQLite database (or the PostgreSQL database given by ``--database-url``,
   which should be an empty, throwaway one) and seeds one client on a sandbox
   directory with one enrolled user per request, so that every request is the first
   RESET of a distinct user: the full accept path (MessageSid insert, user lookup,
   rate-limit query, reset request row, audit event, RQ enqueue). No RQ worker runs.
2. Starts the app under gunicorn (``--workers`` sync workers, ``BLINK_ENV=production``,
   ``BLINK_REDIS_URL`` set), sends warm-up requests (not counted), then the timed
   requests, all signed with X-Twilio-Signature and built before the clock starts.
3. Starts ``benchmarks/bare_twiml.py`` under the same gunicorn settings (a Flask view
   that returns the same TwiML body and nothing else) and sends it the same requests.
4. Prints requests per second, latency p50/p99, the CPU milliseconds per request of the
   gunicorn processes and of the load clients (from /proc: Linux only), the ratio
   app / bare against the target (>= 0.6) and, as a check that the accept path really
   ran, the number of jobs on the RQ queue. A missed target still exits 0; any failed
   request (an exception or a status other than 200) exits 1.

The load comes from ``--clients`` processes, each with one persistent
``http.client`` connection (gunicorn's sync workers close it after every response,
so the client reconnects as needed). Each target gets at most ``--requests``
requests and ``--time-limit`` seconds. Client and server share this machine's CPUs,
so the figures are for comparing runs and targets on one machine, not for capacity
planning. ``--same-user`` adds a third row: every request from one user who already
has a pending reset (the pending / reply-throttle path).
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import importlib.util
import math
import multiprocessing as mp
import os
import queue
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import IO, Any
from urllib.parse import urlencode

HOST = "127.0.0.1"
SMS_PATH = "/webhooks/twilio/sms"
GATEWAY = "+15005550006"
CLIENT_SLUG = "bench"
TARGET_RATIO = 0.6
APP_ROW = "blink-sms RESET webhook"
BARE_ROW = "bare Flask TwiML"
SAME_ROW = "blink-sms RESET, same user (pending)"
FLOOR_ROW = "floor: signature + parsing, no I/O"
BENCH_DIR = Path(__file__).resolve().parent
# First on the path, gunicorn's too: the benchmark measures this working tree, whichever
# checkout the virtualenv's editable install points at.
REPO_ROOT = BENCH_DIR.parent


# --- requests -------------------------------------------------------------------------------


@dataclass(frozen=True)
class SignedRequest:
    """One ready-to-send webhook: the form body and the headers Twilio would send."""

    body: bytes
    headers: dict[str, str]


def phone_of(index: int) -> str:
    """The phone of the index-th benchmark user: +1555 and seven digits."""
    return f"+1555{index:07d}"


def sign_requests(
    url: str, auth_token: str, account_sid: str, phones: Sequence[str]
) -> list[SignedRequest]:
    """A signed RESET from each of ``phones``, each with its own MessageSid."""
    from twilio.request_validator import RequestValidator

    validator = RequestValidator(auth_token)
    signed = []
    for phone in phones:
        params = {
            "MessageSid": "SM" + secrets.token_hex(16),
            "AccountSid": account_sid,
            "From": phone,
            "To": GATEWAY,
            "Body": "RESET",
            "NumMedia": "0",
            "NumSegments": "1",
            "SmsStatus": "received",
            "ApiVersion": "2010-04-01",
        }
        headers = {
            "Content-Type": "application/x-www-form-urlencoded",
            "User-Agent": "TwilioProxy/1.1",
            "X-Twilio-Signature": str(validator.compute_signature(url, params)),
        }
        signed.append(SignedRequest(urlencode(params).encode("ascii"), headers))
    return signed


def accepted_twiml() -> bytes:
    """The exact TwiML the app answers to an accepted RESET of an English-speaking user."""
    from blink_sms.messaging import texts
    from blink_sms.messaging.i18n import translate
    from webhooks.views import twiml

    return twiml(translate("en", texts.ACK_RESET)).get_data()


# --- load generator ---------------------------------------------------------------------------


@dataclass
class ClientResult:
    """What one client process saw."""

    latencies: list[float]
    errors: Counter[str]
    unexpected_bodies: int
    started: float
    finished: float
    stopped_by_time: bool
    cpu_seconds: float  # this client process's own user + system time


@dataclass
class LoadResult:
    """All clients of one run against one target."""

    name: str
    ok: int
    errors: Counter[str]
    unexpected_bodies: int
    seconds: float
    latencies: list[float] = field(repr=False)
    stopped_by_time: bool
    client_cpu: float
    server_cpu: float = math.nan  # seconds of the gunicorn processes, set by the caller

    @property
    def rate(self) -> float:
        return self.ok / self.seconds if self.seconds > 0 else 0.0

    @property
    def error_count(self) -> int:
        return sum(self.errors.values())

    def cpu_ms(self, seconds: float) -> float:
        """CPU milliseconds per successful request."""
        return seconds / self.ok * 1000 if self.ok else math.nan

    def percentile_ms(self, percent: float) -> float:
        """Nearest-rank percentile of the successful requests' latencies, in ms."""
        if not self.latencies:
            return math.nan
        rank = max(math.ceil(percent / 100 * len(self.latencies)), 1)
        return self.latencies[rank - 1] * 1000


def _client_main(
    port: int,
    work: Sequence[SignedRequest],
    time_limit: float,
    expected: bytes | None,
    barrier: Any,
    results: Any,
) -> None:
    """One client process: send ``work`` in order over a persistent connection."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent handles Ctrl+C and stops us
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    connection = http.client.HTTPConnection(HOST, port, timeout=30)
    latencies: list[float] = []
    errors: Counter[str] = Counter()
    unexpected = 0
    stopped_by_time = False
    barrier.wait()
    cpu = os.times()
    started = time.monotonic()
    deadline = started + time_limit
    for item in work:
        if time.monotonic() >= deadline:
            stopped_by_time = True
            break
        begin = time.perf_counter()
        try:
            # http.client reconnects by itself when the server closed the connection.
            connection.request("POST", SMS_PATH, body=item.body, headers=item.headers)
            response = connection.getresponse()
            data = response.read()
        except (OSError, http.client.HTTPException) as err:
            errors[type(err).__name__] += 1
            connection.close()
            continue
        elapsed = time.perf_counter() - begin
        if response.status != 200:
            errors[f"HTTP {response.status}"] += 1
            continue
        latencies.append(elapsed)
        if expected is not None and data != expected:
            unexpected += 1
    finished = time.monotonic()
    connection.close()
    spent = os.times()
    cpu_seconds = spent.user - cpu.user + spent.system - cpu.system
    results.put(
        ClientResult(latencies, errors, unexpected, started, finished, stopped_by_time, cpu_seconds)
    )


def run_load(
    name: str,
    port: int,
    requests: Sequence[SignedRequest],
    *,
    clients: int,
    time_limit: float,
    expected: bytes | None,
) -> LoadResult:
    """Send ``requests`` from ``clients`` processes started together; gather the figures."""
    context = mp.get_context("fork")
    chunks = [list(requests[i::clients]) for i in range(clients)]
    chunks = [chunk for chunk in chunks if chunk]
    barrier = context.Barrier(len(chunks))
    results = context.Queue()
    processes = [
        context.Process(
            target=_client_main,
            args=(port, chunk, time_limit, expected, barrier, results),
            daemon=True,
        )
        for chunk in chunks
    ]
    collected: list[ClientResult] = []
    try:
        for process in processes:
            process.start()
        while len(collected) < len(processes):
            try:
                collected.append(results.get(timeout=1.0))
            except queue.Empty:
                if not any(p.is_alive() for p in processes) and results.empty():
                    raise RuntimeError(f"{name}: a load client died without a result") from None
        for process in processes:
            process.join(10)
    finally:
        for process in processes:
            if process.is_alive():
                process.terminate()
                process.join(5)
    errors: Counter[str] = Counter()
    for result in collected:
        errors.update(result.errors)
    return LoadResult(
        name=name,
        ok=sum(len(r.latencies) for r in collected),
        errors=errors,
        unexpected_bodies=sum(r.unexpected_bodies for r in collected),
        seconds=max(r.finished for r in collected) - min(r.started for r in collected),
        latencies=sorted(latency for r in collected for latency in r.latencies),
        stopped_by_time=any(r.stopped_by_time for r in collected),
        client_cpu=sum(r.cpu_seconds for r in collected),
    )


# --- services ---------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


class Service:
    """A server subprocess in its own session, output to a log file, stopped for sure."""

    def __init__(
        self, name: str, argv: list[str], *, log: Path, env: dict[str, str] | None, cwd: Path
    ) -> None:
        self.name = name
        self.log = log
        self._log_file: IO[bytes] = log.open("wb")
        self.process = subprocess.Popen(
            argv,
            stdout=self._log_file,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=cwd,
            start_new_session=True,  # Ctrl+C reaches us only; we stop it in order
        )

    def check_running(self) -> None:
        if self.process.poll() is not None:
            tail = self.log.read_text(errors="replace")[-2000:]
            raise RuntimeError(f"{self.name} exited ({self.process.returncode}):\n{tail}")

    def cpu_seconds(self) -> float:
        """User + system time of the process and its children so far (Linux /proc), or NaN."""
        ticks = os.sysconf("SC_CLK_TCK")
        total = 0.0
        try:
            stats = [Path(f"/proc/{self.process.pid}/stat").read_text()]
            for entry in Path("/proc").iterdir():
                if entry.name.isdigit():
                    with contextlib.suppress(OSError):
                        stat = (entry / "stat").read_text()
                        if int(stat.rsplit(")", 1)[1].split()[1]) == self.process.pid:
                            stats.append(stat)
        except OSError:
            return math.nan
        for stat in stats:
            fields = stat.rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / ticks  # utime, stime
        return total

    def wait_http(self, port: int, path: str, timeout: float = 30.0) -> None:
        """Wait until a worker answers any HTTP response on ``path``."""
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            self.check_running()
            connection = http.client.HTTPConnection(HOST, port, timeout=5)
            try:
                connection.request("GET", path)
                connection.getresponse().read()
                return
            except OSError:
                time.sleep(0.05)
            finally:
                connection.close()
        raise RuntimeError(f"{self.name} did not answer on port {port} within {timeout} s")

    def wait_port(self, port: int, timeout: float = 15.0) -> None:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            self.check_running()
            with socket.socket() as sock:
                if sock.connect_ex((HOST, port)) == 0:
                    return
            time.sleep(0.02)
        raise RuntimeError(f"{self.name}: nothing listening on port {port} after {timeout} s")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                # The whole session we started: gunicorn's master and its workers.
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(5)
        self._log_file.close()


@contextlib.contextmanager
def running(service: Service) -> Iterator[Service]:
    try:
        yield service
    finally:
        service.stop()


def start_redis(folder: Path) -> tuple[Service, str]:
    binary = shutil.which("redis-server")
    if binary is None:
        raise SystemExit(
            "redis-server is not installed: apt-get install -y --no-install-recommends redis-server"
        )
    port = free_port()
    argv = [binary, "--port", str(port), "--bind", HOST, "--save", "", "--appendonly", "no"]
    service = Service(
        "redis-server",
        [*argv, "--dir", str(folder)],
        log=folder / "redis.log",
        env=None,
        cwd=folder,
    )
    try:
        service.wait_port(port)
    except BaseException:
        service.stop()
        raise
    return service, f"redis://{HOST}:{port}/0"


def gunicorn(
    name: str,
    app: str,
    port: int,
    *,
    workers: int,
    env: dict[str, str],
    folder: Path,
    pythonpath: Sequence[Path] = (),
    access_log: bool = False,
) -> Service:
    """``gunicorn -w W -k sync -b 127.0.0.1:PORT APP``, run from ``folder`` (no .env there)."""
    argv = [
        sys.executable, "-m", "gunicorn",
        "--workers", str(workers),
        "--worker-class", "sync",
        "--bind", f"{HOST}:{port}",
        "--log-level", "warning",
    ]  # fmt: skip
    argv += ["--pythonpath", ",".join(str(p) for p in [*pythonpath, REPO_ROOT])]
    if access_log:
        argv += ["--access-logfile", str(folder / f"{name}-access.log")]
    return Service(name, [*argv, app], log=folder / f"{name}.log", env=env, cwd=folder)


def app_spec() -> str:
    """``blink_sms.wsgi:app`` when the module exists, else gunicorn's factory syntax."""
    if importlib.util.find_spec("blink_sms.wsgi") is not None:
        return "blink_sms.wsgi:app"
    return "blink_sms.app:create_app()"


def clean_env(extra: dict[str, str]) -> dict[str, str]:
    """This environment without any inherited BLINK_* variable, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("BLINK_")}
    env.update(extra)
    return env


# --- database ---------------------------------------------------------------------------------


def migrate_and_seed(database_url: str, secret_key: str, directory: Path, users: int) -> None:
    """Migrate, then add one sandbox client and ``users`` active users with distinct phones."""
    from blink_sms.db import upgrade

    upgrade(database_url)
    people = [(f"bench-{i}", f"user{i}", f"User {i}") for i in range(users)]
    seed_enrolled(database_url, secret_key, {"path": str(directory)}, people)


def seed_enrolled(
    database_url: str,
    secret_key: str,
    directory_settings: dict[str, Any],
    people: Sequence[tuple[str, str, str]],
) -> None:
    """One sandbox client with ``directory_settings``, and for each (directory id, username,
    display name) of ``people`` an active user with the phone ``phone_of(i)``."""
    from sqlalchemy import insert
    from sqlalchemy.exc import IntegrityError

    from blink_sms.actors import COMMAND_LINE
    from blink_sms.crypto import SecretBox
    from blink_sms.db import Database
    from blink_sms.models import User, UserStatus
    from blink_sms.services.clients import create_client

    db = Database(database_url)
    try:
        with db.session() as session:
            client = create_client(
                session,
                SecretBox(secret_key),
                COMMAND_LINE,
                slug=CLIENT_SLUG,
                name="Benchmark",
                directory_kind="sandbox",
                directory_settings=directory_settings,
                sender_number=GATEWAY,
                support_contact="the benchmark desk",
            )
            rows = [
                {
                    "client_id": client.id,
                    "directory_id": directory_id,
                    "username": username,
                    "display_name": display_name,
                    "email": f"{username}@bench.example",
                    "phone": phone_of(i),
                    "status": UserStatus.ACTIVE,
                    "language": "en",
                }
                for i, (directory_id, username, display_name) in enumerate(people)
            ]
            session.execute(insert(User), rows)
            session.commit()
    except IntegrityError:
        raise SystemExit(
            "the database already holds benchmark data: give --database-url an empty database"
        ) from None
    finally:
        db.dispose()


def queued_jobs(redis_url: str) -> int:
    from redis import Redis
    from rq import Queue

    connection = Redis.from_url(redis_url)
    try:
        return int(Queue(f"client-{CLIENT_SLUG}", connection=connection).count)
    finally:
        connection.close()


# --- report -----------------------------------------------------------------------------------


def print_table(rows: Sequence[LoadResult]) -> None:
    print(
        f"{'target':<38} {'req/s':>7} {'p50 ms':>7} {'p99 ms':>7} {'ok':>5} {'errors':>6}"
        f" {'CPU ms/req: server':>18} {'client':>6}"
    )
    for row in rows:
        print(
            f"{row.name:<38} {row.rate:>7.1f} {row.percentile_ms(50):>7.2f} "
            f"{row.percentile_ms(99):>7.2f} {row.ok:>5} {row.error_count:>6} "
            f"{row.cpu_ms(row.server_cpu):>18.2f} {row.cpu_ms(row.client_cpu):>6.2f}"
        )
    for row in rows:
        if row.errors:
            detail = ", ".join(f"{kind} x{n}" for kind, n in row.errors.most_common())
            print(f"  {row.name}: errors: {detail}")
        if row.unexpected_bodies:
            print(f"  {row.name}: {row.unexpected_bodies} answers were not the accepted TwiML")
        if row.stopped_by_time:
            print(f"  {row.name}: stopped at the time limit before sending every request")


# --- main -------------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Signed RESET webhooks/s of the app under gunicorn vs a bare Flask endpoint."
    )
    parser.add_argument("--requests", type=int, default=2000, help="timed requests per target")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn sync workers")
    parser.add_argument("--clients", type=int, default=4, help="load client processes")
    parser.add_argument("--warmup", type=int, default=40, help="uncounted requests per target")
    parser.add_argument("--time-limit", type=float, default=60.0, help="seconds per target, max")
    parser.add_argument(
        "--database-url",
        help="an empty PostgreSQL database, e.g. postgresql+psycopg://u@127.0.0.1/bench "
        "(default: a temporary SQLite file)",
    )
    parser.add_argument(
        "--same-user", action="store_true", help="also time requests from one user (pending path)"
    )
    parser.add_argument(
        "--access-log", action="store_true", help="gunicorn access logs (to files) on both targets"
    )
    args = parser.parse_args(argv)
    for name in ("requests", "workers", "clients"):
        if getattr(args, name) < 1:
            parser.error(f"--{name} must be at least 1")
    if args.warmup < 0 or not 0 < args.time_limit <= 600:
        parser.error("--warmup must be >= 0 and --time-limit between 0 and 600 s")
    return args


def _stop_on_sigterm(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)


@dataclass
class Run:
    """One benchmark run: its secrets, ports, pre-signed requests and results."""

    args: argparse.Namespace
    folder: Path
    secret_key: str = field(default_factory=lambda: secrets.token_urlsafe(36))
    auth_token: str = field(default_factory=lambda: secrets.token_hex(16))
    account_sid: str = field(default_factory=lambda: "AC" + secrets.token_hex(16))
    app_port: int = field(default_factory=free_port)
    bare_port: int = field(default_factory=free_port)
    rows: dict[str, LoadResult] = field(default_factory=dict)
    warmups: list[LoadResult] = field(default_factory=list)
    accepted: int = 0
    jobs: int = 0

    def __post_init__(self) -> None:
        args = self.args
        self.database_url = args.database_url or f"sqlite:///{self.folder / 'blink-sms.sqlite'}"
        # The address Twilio would sign, as if a TLS proxy stood in front of gunicorn
        # (production requires https); requests go to gunicorn over plain HTTP.
        self.public_url = f"https://{HOST}:{self.app_port}"
        # Users: the warm-up ones, one per timed request, then the --same-user one.
        self.users = args.warmup + args.requests + 1
        url = self.public_url + SMS_PATH
        warm_phones = [phone_of(i) for i in range(args.warmup)]
        timed_phones = [phone_of(args.warmup + i) for i in range(args.requests)]
        same_phones = [phone_of(self.users - 1)] * (args.requests + 1)
        self.warm = sign_requests(url, self.auth_token, self.account_sid, warm_phones)
        self.timed = sign_requests(url, self.auth_token, self.account_sid, timed_phones)
        self.same = sign_requests(url, self.auth_token, self.account_sid, same_phones)
        self.expected = accepted_twiml()

    def load(
        self,
        name: str,
        server: Service,
        port: int,
        requests: Sequence[SignedRequest],
        *,
        check: bool = True,
        warmup: bool = False,
    ) -> None:
        cpu_before = server.cpu_seconds()
        result = run_load(
            name,
            port,
            requests,
            clients=self.args.clients,
            time_limit=self.args.time_limit,
            expected=self.expected if check else None,
        )
        result.server_cpu = server.cpu_seconds() - cpu_before
        if warmup:
            self.warmups.append(result)
        else:
            self.rows[name] = result

    def app_env(self, redis_url: str) -> dict[str, str]:
        return clean_env({
            "BLINK_SECRET_KEY": self.secret_key,
            "BLINK_DATABASE_URL": self.database_url,
            "BLINK_REDIS_URL": redis_url,
            "BLINK_PUBLIC_URL": self.public_url,
            "BLINK_TWILIO_ACCOUNT_SID": self.account_sid,
            "BLINK_TWILIO_AUTH_TOKEN": self.auth_token,
            "BLINK_ENV": "production",
            "BLINK_LOG_LEVEL": "warning",
        })  # fmt: skip

    def run_app(self) -> None:
        """Redis, database, then the app under gunicorn: warm-up and timed requests."""
        args, port = self.args, self.app_port
        redis, redis_url = start_redis(self.folder)
        with running(redis):
            started = time.perf_counter()
            migrate_and_seed(
                self.database_url, self.secret_key, self.folder / "dir.sqlite", self.users
            )
            print(
                f"migrated and seeded {self.users} users in {time.perf_counter() - started:.1f} s"
            )
            app = gunicorn(
                "app",
                app_spec(),
                port,
                workers=args.workers,
                env=self.app_env(redis_url),
                folder=self.folder,
                access_log=args.access_log,
            )
            with running(app):
                app.wait_http(port, "/healthz")
                if self.warm:
                    self.load("app warm-up", app, port, self.warm, warmup=True)
                self.load(APP_ROW, app, port, self.timed)
                if args.same_user:
                    self.load("same-user first RESET", app, port, self.same[:1], warmup=True)
                    self.load(SAME_ROW, app, port, self.same[1:], check=False)
            # Each accepted RESET is one job on the client's queue: the path really ran.
            self.accepted = sum(r.ok for r in self.warmups) + self.rows[APP_ROW].ok
            self.jobs = queued_jobs(redis_url)

    def run_bare(self) -> None:
        port = self.bare_port
        env = clean_env({"BENCH_TWIML_BODY": self.expected.decode("utf-8")})
        bare = gunicorn(
            "bare",
            "bare_twiml:app",
            port,
            workers=self.args.workers,
            env=env,
            folder=self.folder,
            pythonpath=[BENCH_DIR],
            access_log=self.args.access_log,
        )
        with running(bare):
            bare.wait_http(port, "/")
            if self.warm:
                self.load("bare warm-up", bare, port, self.warm, warmup=True)
            self.load(BARE_ROW, bare, port, self.timed)
        floor = gunicorn(
            "floor",
            "bare_twiml:floor",
            port,
            workers=self.args.workers,
            env=clean_env(
                {"BENCH_AUTH_TOKEN": self.auth_token, "BENCH_PUBLIC_URL": self.public_url}
            ),
            folder=self.folder,
            pythonpath=[BENCH_DIR],
            access_log=self.args.access_log,
        )
        with running(floor):
            floor.wait_http(port, "/")
            if self.warm:
                self.load("floor warm-up", floor, port, self.warm, warmup=True)
            self.load(FLOOR_ROW, floor, port, self.timed)

    def report(self) -> int:
        """Print the table and the verdict; the exit status: 1 if any request errored."""
        args = self.args
        database = (
            "PostgreSQL" if self.database_url.startswith("postgresql") else "SQLite (temp file)"
        )
        print(
            f"gunicorn {app_spec()} vs bare_twiml:app, {args.workers} sync workers; "
            f"{args.clients} clients; {args.requests} requests per target; {database}; "
            f"{os.cpu_count()} CPUs; Python {sys.version.split()[0]}\n"
        )
        order = [APP_ROW, BARE_ROW, FLOOR_ROW, SAME_ROW]
        print_table([self.rows[name] for name in order if name in self.rows])
        app, bare = self.rows[APP_ROW], self.rows[BARE_ROW]
        ratio = app.rate / bare.rate if bare.rate else 0.0
        verdict = "met" if ratio >= TARGET_RATIO else "missed"
        print(f"ratio {ratio:.2f} (target >= {TARGET_RATIO}: {verdict})")
        floor = self.rows.get(FLOOR_ROW)
        if floor is not None and bare.rate:
            print(
                f"floor ratio {floor.rate / bare.rate:.2f}: the most any handler that checks "
                "the signature and parses the numbers could reach"
            )
        print(f"RQ jobs queued: {self.jobs} (accepted RESETs incl. warm-up: {self.accepted})")
        for warm in self.warmups:
            if warm.errors:
                print(f"  {warm.name}: errors: {dict(warm.errors)}")
        failed = sum(r.error_count for r in [*self.warmups, *self.rows.values()])
        if failed:
            print(f"FAILED: {failed} requests errored", file=sys.stderr)
            return 1
        return 0


def benchmark(args: argparse.Namespace, folder: Path) -> int:
    """The whole run inside ``folder``; returns the exit status."""
    run = Run(args, folder)
    run.run_app()
    run.run_bare()
    return run.report()


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    sys.path.insert(0, str(REPO_ROOT))  # see REPO_ROOT
    signal.signal(signal.SIGTERM, _stop_on_sigterm)
    folder = Path(tempfile.mkdtemp(prefix="blink-bench-"))
    try:
        return benchmark(args, folder)
    except KeyboardInterrupt:
        print("interrupted; cleaned up", file=sys.stderr)
        return 130
    finally:
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
