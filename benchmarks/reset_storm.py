"""A storm of RESETs through the real processes: how fast the workers drain it, and at what cost.

Run from the repository root, with the project's virtualenv::

    .venv/bin/python benchmarks/reset_storm.py [--requests N] [--workers M] [--clients C]
        [--latency-ms MS] [--database-url URL] [--no-scheduler] [--time-limit S]

What one run does, all on 127.0.0.1 and cleaned up afterwards (also on Ctrl+C):

1. Starts the Twilio-shaped HTTP server of the tests (``tests.support.twilio_server``)
   in this process, and times creates through the product's ``TwilioSender`` against it.
2. Starts a throwaway ``redis-server``, runs ``blink-sms db upgrade`` on a temporary
   SQLite file (or the empty, throwaway PostgreSQL database of ``--database-url``), and
   seeds one client on a sandbox directory whose every call waits ``--latency-ms`` (an
   LDAPS round trip), with N users in the directory and enrolled (active, a phone each).
3. Starts the production topology: gunicorn with ``blink_sms.wsgi:app`` (2 sync
   workers), M ``blink-sms worker`` processes and one ``blink-sms scheduler``, all with
   ``BLINK_ENV=production`` and ``BLINK_TWILIO_API_BASE_URL`` pointing at the server.
4. Sends N signed RESET webhooks, one per user, as fast as ``--clients`` processes can,
   then waits until the server has received N one-time-password SMS.
5. Prints whether every RESET got exactly one password, the intake rate, the latency
   from webhook to SMS, the drain time against the ideal (N jobs at the per-job floor,
   spread over M workers: target ratio <= 1.25), the workers' CPU per job and their RSS
   (target <= 100 MB each). Exit status 1 if a webhook failed, an SMS is missing or a
   user got two passwords; a missed target still exits 0.

A webhook's time is its reset request's ``created_at``, written by the web process while
it answers; an SMS's time is when the server received the create. Both are this
machine's wall clock. Clients, servers and workers share the machine's CPUs: compare runs
on one machine, do not plan capacity from them.
"""

from __future__ import annotations

import argparse
import contextlib
import math
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any

from webhook_throughput import (
    GATEWAY,
    HOST,
    REPO_ROOT,
    SMS_PATH,
    LoadResult,
    Service,
    accepted_twiml,
    app_spec,
    clean_env,
    free_port,
    gunicorn,
    phone_of,
    run_load,
    running,
    seed_enrolled,
    sign_requests,
    start_redis,
)

if TYPE_CHECKING:
    from tests.support.twilio_server import TwilioServer

WEB_WORKERS = 2  # the Procfile's default (WEB_CONCURRENCY)
# A RESET job calls the directory twice: password_policy() and set_password()
# (blink_sms/services/reset_job.py, _reset_and_text).
DIRECTORY_CALLS_PER_RESET = 2
TARGET_RATIO = 1.25
TARGET_RSS_MB = 100.0
TARGET_OVERHEAD_MS = 15.0
ROUND_TRIP_SAMPLES = 100
SETTLE_SECONDS = 2.0  # after the last password: time for a duplicate SMS to show


# --- what the SMS say ------------------------------------------------------------------------


def otp_templates() -> list[tuple[str, str]]:
    """(before, after) the password in each English one-time-password text."""
    from blink_sms.messaging import texts
    from blink_sms.messaging.i18n import translate

    mark = "\x00"
    found = []
    for message in (texts.OTP, texts.OTP_NO_CHANGE):
        before, after = translate("en", message, password=mark).split(mark)
        found.append((before, after))
    return found


def password_in(body: str, templates: Sequence[tuple[str, str]]) -> str | None:
    """The one-time password an SMS carries, or None when it is another text."""
    for before, after in templates:
        if body.startswith(before) and body.endswith(after):
            return body[len(before) : len(body) - len(after)]
    return None


# --- processes ---------------------------------------------------------------------------------


def blink_sms(name: str, args: list[str], env: dict[str, str], folder: Path) -> Service:
    """``blink-sms ARGS`` from this working tree, in ``folder`` (no .env there)."""
    argv = [sys.executable, "-m", "blink_sms", *args]
    return Service(name, argv, log=folder / f"{name}.log", env=env, cwd=folder)


def db_upgrade(env: dict[str, str], folder: Path) -> None:
    """The Procfile's release step: ``blink-sms db upgrade``."""
    done = subprocess.run(
        [sys.executable, "-m", "blink_sms", "db", "upgrade"],
        env=env, cwd=folder, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    if done.returncode != 0:
        raise SystemExit(f"blink-sms db upgrade failed:\n{done.stdout}{done.stderr}"[-2000:])


def wait_for_workers(redis_url: str, workers: Sequence[Service], deadline: float) -> None:
    """Until every worker has registered with RQ (so none misses the start of the storm)."""
    from redis import Redis
    from rq import Worker

    connection = Redis.from_url(redis_url)
    try:
        while Worker.count(connection=connection) < len(workers):
            for worker in workers:
                worker.check_running()
            if time.monotonic() > deadline:
                raise RuntimeError("the workers did not register with Redis in time")
            time.sleep(0.1)
    finally:
        connection.close()


def tree(pid: int) -> list[int]:
    """``pid`` and its children (Linux /proc), as ``Service.cpu_seconds`` counts them."""
    pids = [pid]
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                stat = (entry / "stat").read_text()
                if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                    pids.append(int(entry.name))
    return pids


def rss_mb(pid: int) -> float:
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return math.nan


# --- setup ---------------------------------------------------------------------------------


def create_round_trip(twilio: TwilioServer) -> tuple[float, float]:
    """Mean seconds of one create through the product's sender (over HTTP), and the CPU
    seconds the sending side spends on it."""
    from blink_sms.messaging.sms import OutgoingSms, TwilioSender

    sender = TwilioSender(twilio.account_sid, twilio.auth_token, api_base_url=twilio.url)
    message = OutgoingSms(to=phone_of(9_999_999), body="warm-up", from_=GATEWAY)
    sender.send(message)  # the connection is open from now on, as in a worker
    started, cpu = time.perf_counter(), time.thread_time()
    for _ in range(ROUND_TRIP_SAMPLES):
        sender.send(message)
    cpu = (time.thread_time() - cpu) / ROUND_TRIP_SAMPLES
    seconds = (time.perf_counter() - started) / ROUND_TRIP_SAMPLES
    twilio.reset()
    return seconds, cpu


def directory_cpu(folder: Path, hash_cost: int) -> float:
    """CPU seconds a reset's directory calls cost the calling process (the sandbox runs
    in the worker, its latency is a sleep): to tell the worker's own overhead apart."""
    from directory_adapters.sandbox import SandboxDirectory

    sandbox = SandboxDirectory(folder / "cpu-probe.sqlite", hash_cost=hash_cost)
    entry = sandbox.add_user("probe", "Probe")
    started = time.thread_time()
    for _ in range(ROUND_TRIP_SAMPLES):
        sandbox.password_policy()
        sandbox.set_password(entry.id, "Kx7!mQ2pLw9z", must_change=True, unlock=True)
    return (time.thread_time() - started) / ROUND_TRIP_SAMPLES


def seed(
    database_url: str, secret_key: str, directory: Path, users: int, latency: int, hash_cost: int
) -> None:
    """One client on a sandbox directory with ``latency`` ms per call; ``users`` people
    in the directory and enrolled: active, each with the phone ``phone_of(i)``."""
    from directory_adapters.sandbox import SandboxDirectory

    sandbox = SandboxDirectory(directory)
    entries = [sandbox.add_user(f"user{i}", f"User {i}") for i in range(users)]
    settings = {"path": str(directory), "latency_ms": latency, "hash_cost": hash_cost}
    people = [(entry.id, entry.username, entry.display_name) for entry in entries]
    seed_enrolled(database_url, secret_key, settings, people)


def webhook_times(database_url: str) -> tuple[dict[str, float], Counter[str]]:
    """Each phone's reset request's ``created_at`` (epoch seconds), and the requests by status."""
    from sqlalchemy import select

    from blink_sms.db import Database
    from blink_sms.models import ResetRequest, User

    db = Database(database_url)
    try:
        with db.session() as session:
            rows = session.execute(
                select(User.phone, ResetRequest.created_at, ResetRequest.status).join(
                    ResetRequest, ResetRequest.user_id == User.id
                )
            ).all()
    finally:
        db.dispose()
    times = {str(phone): created.timestamp() for phone, created, _ in rows}
    return times, Counter(status.value for _, _, status in rows)


# --- the run -------------------------------------------------------------------------------


@dataclass
class Figures:
    """What one storm measured."""

    load: LoadResult
    sent: list[dict[str, Any]]  # the server's record of every create
    done: int  # password SMS received when the CPU and RSS were measured
    arrived_at: float  # when the last expected password arrived (epoch), NaN if never
    worker_cpu: float  # seconds, all workers and their children, until ``done``
    rss: dict[str, list[tuple[int, float]]]  # worker name -> (pid, MB) of it and children
    round_trip: float  # seconds, mean create through TwilioSender
    sms_cpu: float  # CPU seconds of one such create, on the sending side
    directory_cpu: float  # CPU seconds of a reset's directory calls, in the caller
    webhooks: dict[str, float]
    statuses: Counter[str]


def start_product(
    stack: contextlib.ExitStack,
    args: argparse.Namespace,
    env: dict[str, str],
    folder: Path,
    port: int,
) -> tuple[Service, list[Service]]:
    """gunicorn, the workers and the scheduler, stopped when ``stack`` closes."""
    web = gunicorn("web", app_spec(), port, workers=WEB_WORKERS, env=env, folder=folder)
    stack.enter_context(running(web))
    workers = []
    for n in range(1, args.workers + 1):
        workers.append(
            stack.enter_context(running(blink_sms(f"worker-{n}", ["worker"], env, folder)))
        )
    if args.scheduler:
        stack.enter_context(running(blink_sms("scheduler", ["scheduler"], env, folder)))
    return web, workers


def wait_for_passwords(
    twilio: TwilioServer, expected: int, services: Sequence[Service], deadline: float
) -> tuple[int, float]:
    """Until the server has ``expected`` password SMS, or the deadline: how many arrived,
    and when the last of them did (epoch; NaN if fewer than ``expected``)."""
    templates = otp_templates()
    while True:
        arrivals = [m["received_at"] for m in twilio.sent if password_in(m["Body"], templates)]
        if len(arrivals) >= expected:
            return len(arrivals), max(arrivals, default=math.nan)
        if time.monotonic() >= deadline:
            return len(arrivals), math.nan
        for service in services:
            service.check_running()
        time.sleep(0.05)


def storm(args: argparse.Namespace, folder: Path, deadline: float) -> Figures:
    """The whole run inside ``folder``: every process is stopped when it returns or raises."""
    from tests.support.twilio_server import TwilioServer

    database_url = args.database_url or f"sqlite:///{folder / 'blink-sms.sqlite'}"
    secret_key = secrets.token_urlsafe(36)
    port = free_port()
    public_url = f"https://{HOST}:{port}"  # as if a TLS proxy stood in front of gunicorn
    phones = [phone_of(i) for i in range(args.requests)]
    with TwilioServer() as twilio, contextlib.ExitStack() as stack:
        round_trip, sms_cpu = create_round_trip(twilio)
        sandbox_cpu = directory_cpu(folder, args.hash_cost)
        signed = sign_requests(public_url + SMS_PATH, twilio.auth_token, twilio.account_sid, phones)
        redis, redis_url = start_redis(folder)
        stack.enter_context(running(redis))
        env = clean_env({
            **twilio.env(),
            "BLINK_SECRET_KEY": secret_key,
            "BLINK_DATABASE_URL": database_url,
            "BLINK_REDIS_URL": redis_url,
            "BLINK_PUBLIC_URL": public_url,
            "BLINK_ENV": "production",
            "BLINK_LOG_LEVEL": "warning",
            "PYTHONPATH": str(REPO_ROOT),
        })  # fmt: skip
        db_upgrade(env, folder)
        directory = folder / "directory.sqlite"
        seed(database_url, secret_key, directory, args.requests, args.latency_ms, args.hash_cost)
        web, workers = start_product(stack, args, env, folder, port)
        web.wait_http(port, "/healthz")
        wait_for_workers(redis_url, workers, deadline)
        cpu_before = sum(w.cpu_seconds() for w in workers)
        load = run_load(
            "RESET storm",
            port,
            signed,
            clients=args.clients,
            time_limit=max(1.0, deadline - time.monotonic()),
            expected=accepted_twiml(),
        )
        done, arrived_at = wait_for_passwords(twilio, load.ok, [web, *workers], deadline)
        worker_cpu = sum(w.cpu_seconds() for w in workers) - cpu_before
        rss = {w.name: [(p, rss_mb(p)) for p in tree(w.process.pid)] for w in workers}
        time.sleep(min(SETTLE_SECONDS, max(0.0, deadline - time.monotonic())))
        sent = twilio.sent
    webhooks, statuses = webhook_times(database_url)
    return Figures(
        load, sent, done, arrived_at, worker_cpu, rss, round_trip, sms_cpu, sandbox_cpu,
        webhooks, statuses,
    )  # fmt: skip


# --- report --------------------------------------------------------------------------------


def percentile(values: Sequence[float], percent: float) -> float:
    """Nearest rank, of sorted ``values``."""
    if not values:
        return math.nan
    return values[max(math.ceil(percent / 100 * len(values)), 1) - 1]


def report(args: argparse.Namespace, figures: Figures) -> int:
    """Print the figures; the exit status (1: a webhook failed, a password is missing or
    doubled)."""
    load = figures.load
    database = "PostgreSQL" if args.database_url else "SQLite (temp file)"
    print(
        f"reset storm: {args.requests} RESETs from distinct users; gunicorn {app_spec()} "
        f"({WEB_WORKERS} sync workers), {args.workers} blink-sms workers, scheduler "
        f"{'on' if args.scheduler else 'off (--no-scheduler)'}; {database}; directory "
        f"latency {args.latency_ms} ms; {args.clients} clients; {os.cpu_count()} CPUs; "
        f"Python {sys.version.split()[0]}\n"
    )
    templates = otp_templates()
    per_phone: dict[str, list[str]] = {}
    other = 0
    for message in figures.sent:
        password = password_in(message["Body"], templates)
        if password is None:
            other += 1
        else:
            per_phone.setdefault(message["To"], []).append(password)
    received = sum(len(p) for p in per_phone.values())
    doubled = {phone: p for phone, p in per_phone.items() if len(p) > 1}
    extra = sum(len(p) - 1 for p in doubled.values())
    errors = ", ".join(f"{kind} x{n}" for kind, n in load.errors.most_common()) or "none"
    print(f"webhooks: {load.ok} answered 200 of {args.requests}; errors: {errors}")
    if load.unexpected_bodies:
        print(f"  {load.unexpected_bodies} answers were not the accepted TwiML")
    same = received == load.ok == args.requests
    print(f"password SMS received: {received} for {load.ok} webhooks: "
          f"{'equal' if same else 'NOT EQUAL'}")  # fmt: skip
    print(f"duplicate passwords: {extra} (users texted more than once: {len(doubled)}); "
          f"other SMS: {other}")  # fmt: skip
    print(f"webhook intake: {load.rate:.1f} req/s (load p50 {load.percentile_ms(50):.1f} ms)")
    latencies = sorted(
        message["received_at"] - figures.webhooks[message["To"]]
        for message in figures.sent
        if message["To"] in figures.webhooks and password_in(message["Body"], templates)
    )
    print(
        f"webhook -> SMS latency: p50 {percentile(latencies, 50) * 1000:.0f} ms, "
        f"p95 {percentile(latencies, 95) * 1000:.0f} ms, max {percentile(latencies, 100):.2f} s"
    )
    first = min(figures.webhooks.values(), default=math.nan)
    drain = figures.arrived_at - first
    floor = args.latency_ms / 1000 * DIRECTORY_CALLS_PER_RESET + figures.round_trip
    ideal = args.requests * floor / args.workers
    if math.isnan(drain):
        print(f"drain time: not drained within --time-limit ({figures.done} of {load.ok} "
              "passwords arrived)")  # fmt: skip
    else:
        print(f"drain time (first webhook -> last password SMS): {drain:.2f} s")
    print(
        f"ideal drain: {args.requests} x ({DIRECTORY_CALLS_PER_RESET} x {args.latency_ms} ms "
        f"directory + {figures.round_trip * 1000:.2f} ms Twilio create) / {args.workers} "
        f"workers = {ideal:.2f} s"
    )
    ratio = drain / ideal if ideal > 0 else math.nan
    print(f"ratio {ratio:.2f} (target <= {TARGET_RATIO}: "
          f"{'met' if ratio <= TARGET_RATIO else 'missed'})")  # fmt: skip
    per_job = figures.worker_cpu / figures.done * 1000 if figures.done else math.nan
    print(f"worker CPU per job: {per_job:.1f} ms ({figures.worker_cpu:.2f} s over "
          f"{figures.done} jobs, {args.workers} workers)")  # fmt: skip
    calls = (figures.directory_cpu + figures.sms_cpu) * 1000
    overhead = per_job - calls
    print(
        f"  beyond the directory and SMS calls ({figures.directory_cpu * 1000:.1f} + "
        f"{figures.sms_cpu * 1000:.1f} ms, measured in this process): {overhead:.1f} ms "
        f"(target <= {TARGET_OVERHEAD_MS:.0f} ms: "
        f"{'met' if overhead <= TARGET_OVERHEAD_MS else 'missed'})"
    )
    for name, processes in figures.rss.items():
        for n, (pid, mb) in enumerate(processes):
            role = name if n == 0 else f"{name} child"
            verdict = "met" if mb <= TARGET_RSS_MB else "missed"
            print(f"RSS {role} (pid {pid}): {mb:.1f} MB (target <= {TARGET_RSS_MB:.0f} MB: "
                  f"{verdict})")  # fmt: skip
    print("reset requests: " + ", ".join(f"{k} {v}" for k, v in sorted(figures.statuses.items())))
    sys.stdout.flush()
    if load.stopped_by_time:
        print("stopped at the time limit before sending every webhook", file=sys.stderr)
    if load.error_count or not same or extra:
        print("FAILED: every RESET must get exactly one password", file=sys.stderr)
        return 1
    return 0


# --- main --------------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="N RESETs through gunicorn, RQ workers and the scheduler: drain time, "
        "latency, CPU and memory per job."
    )
    parser.add_argument("--requests", type=int, default=1000, help="RESETs, one per user")
    parser.add_argument("--workers", type=int, default=2, help="blink-sms worker processes")
    parser.add_argument("--clients", type=int, default=4, help="webhook client processes")
    parser.add_argument(
        "--latency-ms", type=int, default=50, help="sandbox directory latency per call"
    )
    parser.add_argument(
        "--hash-cost",
        type=int,
        default=1,
        help="the sandbox's scrypt cost (log2 N, 1-20). A real directory hashes a new "
        "password on its own CPU, not the worker's: the default 1 keeps the simulated "
        "directory's cost to its latency; 14 is the sandbox's own default (~55 ms CPU)",
    )
    parser.add_argument(
        "--database-url",
        help="an empty PostgreSQL database, e.g. postgresql+psycopg://u@127.0.0.1/bench "
        "(default: a temporary SQLite file)",
    )
    parser.add_argument(
        "--no-scheduler", dest="scheduler", action="store_false",
        help="do not start blink-sms scheduler",
    )  # fmt: skip
    parser.add_argument("--time-limit", type=float, default=300.0, help="seconds, whole run")
    args = parser.parse_args(argv)
    for name in ("requests", "workers", "clients"):
        if getattr(args, name) < 1:
            parser.error(f"--{name} must be at least 1")
    if args.requests > 9_999_998 or args.latency_ms < 0 or not 0 < args.time_limit <= 3600:
        parser.error("--requests < 9999999, --latency-ms >= 0, --time-limit in (0, 3600]")
    return args


def _stop_on_sigterm(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    sys.path.insert(0, str(REPO_ROOT))  # this working tree, and the tests' Twilio server
    signal.signal(signal.SIGTERM, _stop_on_sigterm)
    deadline = time.monotonic() + args.time_limit
    folder = Path(tempfile.mkdtemp(prefix="blink-storm-"))
    try:
        return report(args, storm(args, folder, deadline))
    except KeyboardInterrupt:
        print("interrupted; cleaned up", file=sys.stderr)
        return 130
    finally:
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
