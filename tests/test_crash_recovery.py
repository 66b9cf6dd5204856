"""Resets that are never lost, proven with real processes.

Real ``blink-sms worker`` and ``blink-sms scheduler`` processes, a real redis-server
(restarted mid-burst), the database of the run (SQLite or PostgreSQL), a sandbox
directory and a Twilio-shaped HTTP server that the worker processes call. A worker is
killed with SIGKILL at each point of the job:

- before the directory write (the sandbox directory answers slowly);
- after the write, during the SMS call, before Twilio has the message;
- during the SMS call, after Twilio has the message (its answer never comes back).

Each time the user must get exactly one SMS, whose password is the one valid now.
"""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from itertools import pairwise
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, update

from blink_sms.context import Blink
from blink_sms.models import Client, RequestStatus, ResetRequest
from blink_sms.settings import Settings
from tests.conftest import Persona, World, reply_text
from tests.support.services import RedisServer
from tests.support.twilio_server import TwilioServer
from tests.support.worker import ROOT, Send, worker_env

LEASE = 3  # seconds: a dead worker's request is queued again within LEASE + SWEEP
SWEEP = 1
RECOVERY = 60  # what the product promises: seconds from a worker being available again


@pytest.fixture
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """A Redis of this module's own: the tests stop and restart it."""
    server = RedisServer(tmp_path_factory.mktemp("redis-crash"))
    yield server
    server.stop()


@pytest.fixture
def twilio_server(settings: Settings) -> Iterator[TwilioServer]:
    from tests.conftest import ACCOUNT_SID

    with TwilioServer(ACCOUNT_SID, settings.twilio_auth_token or "") as server:
        yield server


@pytest.fixture
def settings(settings: Settings, redis_server: RedisServer) -> Settings:
    return settings.with_changes(
        redis_url=redis_server.url,
        job_retry_intervals=(1, 1, 1),
        job_lease_seconds=LEASE,
        sweep_seconds=SWEEP,
    )


@pytest.fixture
def env(settings: Settings, twilio_server: TwilioServer) -> dict[str, str]:
    return {**worker_env(settings), "BLINK_TWILIO_API_BASE_URL": twilio_server.url}


class Processes:
    """The product's processes, started and killed as an operator (or a crash) would."""

    def __init__(self, env: dict[str, str], folder: Path) -> None:
        self.env = env
        self.folder = folder
        self.running: list[subprocess.Popen[bytes]] = []
        self.count = 0

    def start(self, *command: str) -> subprocess.Popen[bytes]:
        self.count += 1
        log = (self.folder / f"{command[0]}-{self.count}.log").open("wb")
        process = subprocess.Popen(
            [sys.executable, "-m", "blink_sms", *command],
            cwd=ROOT,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        self.running.append(process)
        return process

    def kill(self, process: subprocess.Popen[bytes]) -> None:
        process.send_signal(signal.SIGKILL)
        process.wait(10)

    def logs(self) -> str:
        return "\n".join(p.read_text(errors="replace") for p in sorted(self.folder.glob("*.log")))

    def stop_all(self) -> None:
        for process in self.running:
            if process.poll() is None:
                process.terminate()
        for process in self.running:
            try:
                process.wait(20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


@pytest.fixture
def processes(env: dict[str, str], tmp_path: Path) -> Iterator[Processes]:
    folder = tmp_path / "logs"
    folder.mkdir()
    running = Processes(env, folder)
    yield running
    running.stop_all()


def wait_for(
    condition: Callable[[], Any], seconds: float, what: str, logs: Callable[[], str]
) -> Any:
    end = time.monotonic() + seconds
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > end:
            pytest.fail(f"{what}: not within {seconds} s\n{logs()[-6000:]}")
        time.sleep(0.1)


def request_status(services: Blink) -> RequestStatus:
    with services.db.session() as session:
        return session.execute(select(ResetRequest.status)).scalar_one()


def password_of(body: str) -> str:
    match = re.search(r"password: (\S+)", body)
    assert match, body
    return match.group(1)


def slow_directory(world: World, latency_ms: int, *, hash_cost: int = 14) -> None:
    """The sandbox directory answers each call after ``latency_ms`` (an LDAPS round trip),
    and hashes new passwords at ``hash_cost`` (cheap ones for bursts: see ``enrolled``)."""
    with world.services.db.session() as session:
        client = session.get(Client, world.client.id)
        assert client is not None
        settings = world.services.secrets.decrypt_json(client.directory_settings_encrypted)
        encrypted = world.services.secrets.encrypt_json(
            {**settings, "latency_ms": latency_ms, "hash_cost": hash_cost}
        )
        session.execute(
            update(Client)
            .where(Client.id == client.id)
            .values(directory_settings_encrypted=encrypted)
        )
        session.commit()


# --- one worker killed at each point of the job ------------------------------------------------


def test_a_worker_killed_before_the_directory_write_leaves_one_sms_after_a_restart(
    text_gateway: Send,
    alice: Persona,
    world: World,
    processes: Processes,
    twilio_server: TwilioServer,
) -> None:
    slow_directory(world, 3000)
    processes.start("scheduler")
    worker = processes.start("worker")
    assert "arrive" in (reply_text(text_gateway(alice.phone, "RESET")) or "")
    wait_for(lambda: request_status(world.services) is RequestStatus.RUNNING, 30,
             "the worker claims the request", processes.logs)  # fmt: skip
    processes.kill(worker)  # inside the slow directory call: nothing written yet
    assert world.sign_in(alice.username, alice.password) == "ok"
    processes.start("worker")
    wait_for(lambda: twilio_server.bodies_to(alice.phone or ""), RECOVERY,
             "the SMS after the restart", processes.logs)  # fmt: skip
    time.sleep(LEASE + SWEEP + 1)  # nothing more may come
    [body] = twilio_server.bodies_to(alice.phone or "")
    assert world.sign_in(alice.username, password_of(body)) == "must_change"
    assert request_status(world.services) is RequestStatus.DONE


@pytest.mark.parametrize("twilio_has_it", [False, True], ids=["before-twilio", "after-twilio"])
def test_a_worker_killed_during_the_sms_call_leaves_exactly_one_valid_password(
    text_gateway: Send,
    alice: Persona,
    world: World,
    processes: Processes,
    twilio_server: TwilioServer,
    twilio_has_it: bool,
) -> None:
    twilio_server.hang()
    processes.start("scheduler")
    worker = processes.start("worker")
    text_gateway(alice.phone, "RESET")
    wait_for(lambda: twilio_server.wait_for_pending_create(0.1), 30,
             "the worker calls Twilio", processes.logs)  # fmt: skip
    # The password is set in the directory by now; the SMS is in flight.
    assert world.sign_in(alice.username, alice.password) == "bad"
    processes.kill(worker)
    # Twilio got the message (its answer goes to a dead worker), or never did.
    twilio_server.release(accept=twilio_has_it)
    processes.start("worker")
    wait_for(lambda: request_status(world.services) is RequestStatus.DONE, RECOVERY,
             "the request is done after the restart", processes.logs)  # fmt: skip
    time.sleep(LEASE + SWEEP + 1)  # nothing more may come
    [body] = twilio_server.bodies_to(alice.phone or "")
    assert world.sign_in(alice.username, password_of(body)) == "must_change"


def test_a_retry_scheduled_before_a_crash_runs_after_the_restart(
    text_gateway: Send,
    alice: Persona,
    world: World,
    processes: Processes,
    twilio_server: TwilioServer,
) -> None:
    twilio_server.fail_next(503, 20500)  # the first SMS fails: retry in 1 s
    processes.start("scheduler")
    worker = processes.start("worker")
    text_gateway(alice.phone, "RESET")
    wait_for(lambda: "request will be retried" in processes.logs(), 30,
             "the first attempt fails", processes.logs)  # fmt: skip
    processes.kill(worker)
    time.sleep(2)  # the retry falls due while no worker runs
    processes.start("worker")
    wait_for(lambda: request_status(world.services) is RequestStatus.DONE, RECOVERY,
             "the retry after the restart", processes.logs)  # fmt: skip
    [body] = twilio_server.bodies_to(alice.phone or "")
    assert world.sign_in(alice.username, password_of(body)) == "must_change"


# --- bursts --------------------------------------------------------------------------------


def enrolled(world: World, count: int) -> list[Persona]:
    """``count`` enrolled users whose passwords hash cheaply: hundreds of sign-ins at the
    sandbox's real scrypt cost would take most of the test's time."""
    world.directory.hash_cost = 4
    return [world.person(f"burst{n:03}", f"+1555200{n:04}") for n in range(count)]


def all_done(services: Blink, count: int) -> bool:
    with services.db.session() as session:
        statuses = list(session.execute(select(ResetRequest.status)).scalars())
    return len(statuses) == count and all(s is RequestStatus.DONE for s in statuses)


def check_one_valid_password_each(world: World, people: list[Persona], server: Any) -> None:
    for person in people:
        bodies = server.bodies_to(person.phone or "")
        assert len(bodies) == 1, (person.username, bodies)
        assert world.sign_in(person.username, password_of(bodies[0])) == "must_change"


def test_two_workers_one_killed_mid_burst_deliver_every_reset_once(
    text_gateway: Send,
    world: World,
    processes: Processes,
    twilio_server: TwilioServer,
) -> None:
    people = enrolled(world, 200)
    slow_directory(world, 20, hash_cost=4)
    processes.start("scheduler")
    doomed = processes.start("worker")
    processes.start("worker")
    for person in people:
        assert "arrive" in (reply_text(text_gateway(person.phone, "RESET")) or "")
    wait_for(lambda: len(twilio_server.sent) >= 40, 60, "the burst is under way", processes.logs)
    processes.kill(doomed)
    wait_for(lambda: all_done(world.services, len(people)), RECOVERY + 60,
             "all 200 done", processes.logs)  # fmt: skip
    time.sleep(LEASE + SWEEP + 1)
    assert len(twilio_server.sent) == len(people)
    check_one_valid_password_each(world, people, twilio_server)


def test_redis_restarted_mid_burst_loses_no_reset_and_no_worker(
    text_gateway: Send,
    world: World,
    processes: Processes,
    twilio_server: TwilioServer,
    redis_server: RedisServer,
) -> None:
    people = enrolled(world, 60)
    slow_directory(world, 50, hash_cost=4)
    processes.start("scheduler")
    workers = [processes.start("worker"), processes.start("worker")]
    for person in people[:40]:
        text_gateway(person.phone, "RESET")
    wait_for(lambda: len(twilio_server.sent) >= 5, 60, "the burst is under way", processes.logs)
    redis_server.kill()  # the jobs still queued are gone with it
    for person in people[40:]:  # accepted while Redis is down, answered at once
        assert "arrive" in (reply_text(text_gateway(person.phone, "RESET")) or "")
    time.sleep(6)  # longer than a worker's heartbeat: the outage is noticed
    redis_server.start()
    wait_for(lambda: all_done(world.services, len(people)), RECOVERY + 60,
             "all done after the Redis restart", processes.logs)  # fmt: skip
    assert [w.poll() for w in workers] == [None, None]  # no worker exited
    check_one_valid_password_each(world, people, twilio_server)
    assert "redis is reachable again" in processes.logs()


def test_no_sms_goes_out_twice_when_the_phone_is_texted_again_during_recovery(
    text_gateway: Send,
    alice: Persona,
    world: World,
    processes: Processes,
    twilio_server: TwilioServer,
) -> None:
    slow_directory(world, 3000)
    worker = processes.start("worker")
    text_gateway(alice.phone, "RESET")
    wait_for(lambda: request_status(world.services) is RequestStatus.RUNNING, 30,
             "the worker claims the request", processes.logs)  # fmt: skip
    processes.kill(worker)
    again = reply_text(text_gateway(alice.phone, "RESET"))
    assert again is not None and "already on its way" in again  # and it is: see below
    processes.start("scheduler")
    processes.start("worker")
    wait_for(lambda: request_status(world.services) is RequestStatus.DONE, RECOVERY,
             "the first request recovered", processes.logs)  # fmt: skip
    [body] = twilio_server.bodies_to(alice.phone or "")
    assert world.sign_in(alice.username, password_of(body)) == "must_change"


def test_a_worker_started_while_redis_is_down_waits_for_it_then_serves(
    text_gateway: Send,
    alice: Persona,
    world: World,
    processes: Processes,
    twilio_server: TwilioServer,
    redis_server: RedisServer,
) -> None:
    redis_server.kill()
    worker = processes.start("worker")
    wait_for(lambda: "redis unreachable" in processes.logs(), 30,
             "the worker notices Redis is down", processes.logs)  # fmt: skip
    time.sleep(2)
    assert "reachable again" not in processes.logs()  # said only when it is true
    redis_server.start()
    text_gateway(alice.phone, "RESET")
    wait_for(lambda: twilio_server.bodies_to(alice.phone or ""), RECOVERY,
             "the SMS once Redis is up", processes.logs)  # fmt: skip
    assert worker.poll() is None
    # One line per state change: down, up (a flap while Redis loads would add a pair).
    states = re.findall(r"redis unreachable|redis is reachable again", processes.logs())
    assert states[0] == "redis unreachable" and states[-1] == "redis is reachable again"
    assert all(a != b for a, b in pairwise(states)), states
