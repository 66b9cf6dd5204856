"""Outbound event webhooks against a real HTTP server on loopback: signed, retried,
scoped to the right endpoints, nothing personal beyond a name, the secret encrypted."""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from click.testing import CliRunner
from sqlalchemy import event, select, text, update

from blink_sms.actors import COMMAND_LINE, Forbidden, Role, admin_actor
from blink_sms.cli import cli
from blink_sms.context import Blink
from blink_sms.models import Client, WebhookDelivery, WebhookEndpoint, utcnow
from blink_sms.services import audit, webhooks
from blink_sms.services import webhook_sender as sender
from blink_sms.services.errors import Conflict, Invalid
from blink_sms.services.scope import NotFound
from tests.conftest import Persona, World, wait_for_jobs
from tests.support.fake_twilio import FakeTwilio


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes

    @property
    def json(self) -> dict[str, Any]:
        payload: dict[str, Any] = json.loads(self.body)
        return payload


@dataclass
class Receiver:
    """A PSA's webhook receiver: a real HTTP server on 127.0.0.1 that answers as told."""

    answers: list[int] = field(default_factory=list)  # statuses in turn, then 200
    delay: float = 0.0
    received: list[Received] = field(default_factory=list)

    def __post_init__(self) -> None:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                receiver.received.append(Received(self.path, dict(self.headers.items()), body))
                time.sleep(receiver.delay)
                status = receiver.answers.pop(0) if receiver.answers else 200
                self.send_response(status)
                if 300 <= status < 400:
                    self.send_header("Location", "/elsewhere")
                answer = b"" if status < 300 else b"no such ticket queue\n"
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, format: str, *args: Any) -> None:
                return None

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def url(self, path: str = "/hook") -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}{path}"

    def at(self, path: str) -> list[Received]:
        return [r for r in self.received if r.path == path]

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver()
    yield server
    server.stop()


def verify(secret: str, header: str, body: bytes, tolerance: int = 300) -> bool:
    """The README's verification snippet, as a receiver would run it."""
    fields = dict(part.split("=", 1) for part in header.split(","))
    expected = hmac.new(secret.encode(), f"{fields['t']}.".encode() + body, hashlib.sha256)
    fresh = abs(time.time() - int(fields["t"])) < tolerance
    return hmac.compare_digest(expected.hexdigest(), fields["v1"]) and fresh


def add(services: Blink, url: str, client: Client | None = None, **options: Any) -> tuple[int, str]:
    with services.db.session() as session:
        row, secret = webhooks.create_endpoint(
            session, services.secrets, COMMAND_LINE, url=url, client=client, **options
        )
        return row.id, secret


def happen(services: Blink, action: str, client: Client, user: Persona | None = None) -> None:
    """An audited action, as the services record it."""
    with services.db.session() as session:
        audit.record(
            session,
            action,
            actor="system",
            client_id=client.id,
            user_id=user.user.id if user else None,
        )
        session.commit()


def send_due(services: Blink, *, later: float = 0) -> list[str | None]:
    """One pass of the sender, synchronously: claim what is due ``later`` seconds from now."""
    now = utcnow() + timedelta(seconds=later)
    claimed = sender.claim_due(services, limit=100, now=now)
    return [sender.deliver(services, delivery_id, attempt) for delivery_id, attempt in claimed]


def deliveries(services: Blink) -> list[WebhookDelivery]:
    with services.db.session() as session:
        query = select(WebhookDelivery).order_by(WebhookDelivery.id)
        return list(session.execute(query).scalars())


def test_a_reset_is_posted_signed_with_the_secret_shown_once(
    services: Blink, world: World, alice: Persona, receiver: Receiver
) -> None:
    _, secret = add(services, receiver.url())
    assert secret.startswith("whsec_") and len(secret) == 6 + 43
    happen(services, "reset.completed", world.client, alice)
    assert send_due(services) == ["delivered"]
    [request] = receiver.received
    assert request.headers["Content-Type"] == "application/json"
    assert request.headers["Blink-Event"] == "reset.completed"
    assert request.headers["Blink-Delivery"] == request.json["id"]
    assert verify(secret, request.headers["Blink-Signature"], request.body)
    assert not verify(secret, request.headers["Blink-Signature"], request.body + b" ")
    assert not verify("whsec_" + "A" * 43, request.headers["Blink-Signature"], request.body)
    payload = request.json
    assert payload["type"] == "reset.completed"
    assert payload["client"] == {"slug": "contoso", "name": "Contoso"}
    assert payload["user"] == {"id": alice.user.id, "username": "alice", "display_name": "Alice"}
    [row] = deliveries(services)
    assert row.status == "delivered" and row.attempts == 1 and row.last_status == 200


def test_a_500_is_retried_after_a_wait_and_delivered_once(
    services: Blink, world: World, alice: Persona, receiver: Receiver
) -> None:
    add(services, receiver.url())
    receiver.answers = [500]
    happen(services, "unlock.failed", world.client, alice)
    assert send_due(services) == ["pending"]
    [row] = deliveries(services)
    assert row.last_status == 500 and row.last_error == "HTTP 500: no such ticket queue"
    assert row.next_attempt_at is not None
    wait = (row.next_attempt_at - utcnow()).total_seconds()
    assert sender.RETRY_DELAYS[0] - 5 < wait <= sender.RETRY_DELAYS[0]
    assert send_due(services) == []  # not before its time
    assert send_due(services, later=sender.RETRY_DELAYS[0] + 1) == ["delivered"]
    assert send_due(services, later=86_400) == []
    first, second = receiver.received
    assert first.headers["Blink-Delivery"] == second.headers["Blink-Delivery"]
    assert first.body == second.body
    [row] = deliveries(services)
    assert row.status == "delivered" and row.attempts == 2 and row.last_error is None


def test_after_the_last_attempt_a_delivery_is_failed(
    services: Blink, world: World, receiver: Receiver
) -> None:
    add(services, receiver.url())
    receiver.answers = [503] * 20
    happen(services, "enrollment.phone_bound", world.client)
    outcomes = []
    for _ in range(sender.MAX_ATTEMPTS + 2):
        outcomes += send_due(services, later=7 * 3600)
    assert outcomes == ["pending"] * (sender.MAX_ATTEMPTS - 1) + ["failed"]
    assert len(receiver.received) == sender.MAX_ATTEMPTS == 8
    [row] = deliveries(services)
    assert row.status == "failed" and row.attempts == 8 and row.next_attempt_at is None


def test_an_event_reaches_its_clients_and_the_msp_wide_endpoints_only(
    services: Blink, world: World, alice: Persona, receiver: Receiver
) -> None:
    fabrikam = world.another_client("fabrikam")
    add(services, receiver.url("/contoso"), world.client)
    add(services, receiver.url("/msp"))
    add(services, receiver.url("/fabrikam"), fabrikam)
    add(services, receiver.url("/failures-only"), events=["reset.failed"])
    paused, _ = add(services, receiver.url("/paused"))
    with services.db.session() as session:
        webhooks.set_disabled(session, COMMAND_LINE, paused, disabled=True)
    happen(services, "reset.completed", world.client, alice)
    happen(services, "client.updated", world.client)  # not an event for webhooks
    assert send_due(services) == ["delivered", "delivered"]
    assert sorted(r.path for r in receiver.received) == ["/contoso", "/msp"]
    happen(services, "reset.failed", fabrikam)
    send_due(services)
    assert len(receiver.at("/fabrikam")) == len(receiver.at("/failures-only")) == 1
    assert receiver.at("/fabrikam")[0].json["client"]["slug"] == "fabrikam"
    assert len(receiver.at("/msp")) == 2 and not receiver.at("/paused")


def test_a_real_reset_by_text_sends_its_origin_and_no_phone(
    services: Blink,
    world: World,
    alice: Persona,
    receiver: Receiver,
    text_gateway: Callable[..., Any],
    twilio: FakeTwilio,
) -> None:
    add(services, receiver.url())
    text_gateway(alice.phone, "RESET")
    wait_for_jobs(services)
    assert send_due(services) == ["delivered"]
    [request] = receiver.received
    payload = request.json
    assert payload["type"] == "reset.completed" and payload["origin"] == "sms"
    assert isinstance(payload["request_id"], int)
    assert set(payload) == {"id", "type", "created_at", "client", "user", "request_id", "origin"}
    assert alice.phone is not None
    body = request.body.decode()
    assert alice.phone not in body and alice.phone[-4:] not in body and "phone" not in body
    password = re.search(r":\s*(\S+)", twilio.sent[0]["Body"])
    assert password and password.group(1) not in body


def test_the_secret_is_stored_encrypted_and_never_audited(
    services: Blink, world: World, receiver: Receiver
) -> None:
    endpoint_id, secret = add(services, receiver.url(), world.client, description="PSA")
    with services.db.engine.connect() as connection:
        stored = " ".join(
            str(v) for v in connection.execute(text("SELECT * FROM webhook_endpoints")).one()
        )
        trail = " ".join(
            str(v) for row in connection.execute(text("SELECT * FROM audit_events")) for v in row
        )
    raw = secret.removeprefix("whsec_")
    assert raw not in stored and raw not in trail and "whsec_" not in stored
    with services.db.session() as session:
        row = session.get(WebhookEndpoint, endpoint_id)
        assert row is not None
        assert services.secrets.decrypt_json(row.secret_encrypted) == {"secret": secret}


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("http://psa.example.com/hook", "https is required"),
        ("http://10.0.0.5/hook", "https is required"),
        ("https://user:pw@psa.example.com/hook", "no user name or password"),
        ("ftp://psa.example.com/hook", "an https:// address"),
        ("https:///hook", "an https:// address"),
        ("https://psa.example.com:99999/", "not a valid address"),
        ("https://psa.example.com/a b", "at most 500"),
        ("https://psa.example.com/" + "a" * 500, "at most 500"),
    ],
)
def test_an_address_must_be_https_or_loopback(url: str, problem: str) -> None:
    with pytest.raises(Invalid) as refused:
        webhooks.clean_url(url)
    assert refused.value.field == "url" and problem in refused.value.message


def test_loopback_addresses_may_be_plain_http() -> None:
    for url in ("http://localhost:8080/hook", "http://127.0.0.1/x", "http://[::1]:9/"):
        assert webhooks.clean_url(f"  {url} ") == url


def test_unknown_events_are_refused(services: Blink, world: World) -> None:
    with pytest.raises(Invalid) as refused:
        add(services, "https://psa.example.com/hook", events=["reset.done"])
    assert refused.value.field == "events" and "reset.completed" in refused.value.message


def test_who_may_manage_which_endpoints(services: Blink, world: World) -> None:
    fabrikam = world.another_client("fabrikam")
    theirs, _ = add(services, "https://psa.example.com/f", fabrikam)
    msp_wide, _ = add(services, "https://psa.example.com/all")
    contoso_admin = admin_actor(7, "it@contoso.example", Role.CLIENT_ADMIN, world.client.id)
    technician = admin_actor(8, "tech@msp.example", Role.MSP_TECHNICIAN, None)
    auditor = admin_actor(9, "audit@msp.example", Role.AUDITOR, None)
    url = "https://psa.example.com/c"
    with services.db.session() as session:
        mine, _ = webhooks.create_endpoint(
            session, services.secrets, contoso_admin, url=url, client=world.client
        )
        listed = webhooks.list_endpoints(session, contoso_admin)
        assert [item.endpoint.id for item in listed] == [mine.id]
        for other in (theirs, msp_wide, 10_000, 10**20, "x"):
            with pytest.raises(NotFound):
                webhooks.remove_endpoint(session, contoso_admin, other)
            with pytest.raises(NotFound):
                webhooks.send_test(session, contoso_admin, other)
        with pytest.raises(Forbidden):
            webhooks.create_endpoint(session, services.secrets, contoso_admin, url=url)
        with pytest.raises(NotFound):
            webhooks.create_endpoint(
                session, services.secrets, contoso_admin, url=url, client=fabrikam
            )
        webhooks.create_endpoint(session, services.secrets, technician, url=url)
        assert len(webhooks.list_endpoints(session, technician)) == 4
        with pytest.raises(Forbidden):
            webhooks.list_endpoints(session, auditor)
        webhooks.remove_endpoint(session, contoso_admin, mine.id)
    with services.db.session() as session:
        actions = session.execute(
            text("SELECT action FROM audit_events WHERE action LIKE 'webhook.%' ORDER BY id")
        ).scalars()
        assert list(actions) == ["webhook.created"] * 4 + ["webhook.removed"]


def test_each_scope_has_at_most_ten_endpoints(services: Blink, world: World) -> None:
    for number in range(webhooks.MAX_ENDPOINTS):
        add(services, f"https://psa.example.com/{number}", world.client)
    with pytest.raises(Conflict):
        add(services, "https://psa.example.com/more", world.client)
    add(services, "https://psa.example.com/msp")  # MSP-wide ones count apart


def test_only_mapped_actions_cost_a_query(services: Blink, world: World) -> None:
    statements: list[str] = []

    def count(*args: Any) -> None:
        statements.append(args[2])

    event.listen(services.db.engine, "before_cursor_execute", count)
    try:
        for action in ("client.updated", "reset.completed"):
            with services.db.session() as session:
                session.connection()  # the transaction's BEGIN is not the event's cost
                statements.clear()
                audit.record(session, action, actor="system", client_id=world.client.id)
                session.commit()
                cost = [s for s in statements if not s.startswith("COMMIT")]
                assert len(cost) == (1 if action == "client.updated" else 2), cost
    finally:
        event.remove(services.db.engine, "before_cursor_execute", count)


def test_redirects_are_not_followed(
    services: Blink, world: World, alice: Persona, receiver: Receiver
) -> None:
    add(services, receiver.url())
    receiver.answers = [302]
    happen(services, "reset.completed", world.client, alice)
    assert send_due(services) == ["pending"]
    assert [r.path for r in receiver.received] == ["/hook"]
    [row] = deliveries(services)
    assert row.last_status == 302 and "redirects are not followed" in (row.last_error or "")


def test_an_unreachable_receiver_is_an_error_to_retry(services: Blink, world: World) -> None:
    gone = Receiver()
    url = gone.url()
    gone.stop()
    add(services, url)
    happen(services, "lockout.detected", world.client)
    assert send_due(services) == ["pending"]
    [row] = deliveries(services)
    assert row.last_status is None and "ConnectionRefusedError" in (row.last_error or "")


def test_a_sender_that_died_is_fenced_off_and_its_row_claimed_again(
    services: Blink, world: World, receiver: Receiver
) -> None:
    add(services, receiver.url())
    happen(services, "reset.completed", world.client)
    [(delivery_id, attempt)] = sender.claim_due(services, limit=10)
    assert sender.claim_due(services, limit=10) == []  # leased
    later = utcnow() + sender.LEASE + timedelta(seconds=1)
    assert sender.claim_due(services, limit=10, now=later) == [(delivery_id, attempt + 1)]
    assert sender.deliver(services, delivery_id, attempt) is None  # the dead one's turn
    assert sender.deliver(services, delivery_id, attempt + 1) == "delivered"
    assert len(receiver.received) == 1


def test_a_paused_endpoint_keeps_what_was_queued_until_enabled(
    services: Blink, world: World, receiver: Receiver
) -> None:
    endpoint_id, _ = add(services, receiver.url())
    happen(services, "reset.completed", world.client)
    with services.db.session() as session:
        webhooks.set_disabled(session, COMMAND_LINE, endpoint_id, disabled=True)
        with pytest.raises(Conflict):
            webhooks.set_disabled(session, COMMAND_LINE, endpoint_id, disabled=True)
        with pytest.raises(Conflict):
            webhooks.send_test(session, COMMAND_LINE, endpoint_id)
    happen(services, "reset.failed", world.client)  # while paused: not queued
    assert send_due(services) == [] and len(deliveries(services)) == 1
    with services.db.session() as session:
        webhooks.set_disabled(session, COMMAND_LINE, endpoint_id, disabled=False)
    assert send_due(services) == ["delivered"]
    assert [r.json["type"] for r in receiver.received] == ["reset.completed"]


def test_the_scheduler_task_sends_on_threads_and_never_waits_for_a_receiver(
    services: Blink, world: World, receiver: Receiver
) -> None:
    add(services, receiver.url())
    receiver.delay = 1.5
    for _ in range(3):
        happen(services, "reset.completed", world.client)
    task = sender.Sender()
    started = time.monotonic()
    assert task(services) == 3
    assert time.monotonic() - started < 1.0  # the tick only claims
    assert task(services) == 0  # claimed already: not sent twice
    task.drain()
    assert [d.status for d in deliveries(services)] == ["delivered"] * 3
    assert len(receiver.received) == 3


def test_old_finished_deliveries_are_pruned(
    services: Blink, world: World, receiver: Receiver
) -> None:
    add(services, receiver.url())
    happen(services, "reset.completed", world.client)
    happen(services, "reset.failed", world.client)
    send_due(services)
    with services.db.session() as session:
        session.execute(update(WebhookDelivery).where(WebhookDelivery.event == "reset.failed")
                        .values(status="pending"))  # fmt: skip
        session.commit()
    assert sender.prune(services) == 0
    assert sender.prune(services, now=utcnow() + sender.KEEP + timedelta(days=1)) == 1
    assert [d.event for d in deliveries(services)] == ["reset.failed"]


def test_webhooks_from_the_command_line(services: Blink, world: World, receiver: Receiver) -> None:
    env = {
        "BLINK_SECRET_KEY": services.settings.secret_key,
        "BLINK_DATABASE_URL": services.settings.database_url,
        "BLINK_PUBLIC_URL": services.settings.public_url,
    }
    runner = CliRunner()
    made = runner.invoke(
        cli,
        ["webhooks", "add", "--url", receiver.url(), "--client", "contoso",
         "--event", "reset.failed", "--event", "lockout.detected"],
        env=env,
    )  # fmt: skip
    assert made.exit_code == 0, made.output
    secret = next(line for line in made.output.splitlines() if line.startswith("whsec_"))
    assert "lockout.detected, reset.failed" in made.output
    tested = runner.invoke(cli, ["webhooks", "test", "1"], env=env)
    assert tested.exit_code == 0 and "queued" in tested.output
    assert send_due(services) == ["delivered"]
    [request] = receiver.received
    assert request.json["type"] == "webhook.test" and request.json["client"]["slug"] == "contoso"
    assert verify(secret, request.headers["Blink-Signature"], request.body)
    listed = runner.invoke(cli, ["webhooks", "list"], env=env)
    assert "contoso" in listed.output and "delivered" in listed.output
    assert "HTTP 200" in listed.output and secret not in listed.output
    paused = runner.invoke(cli, ["webhooks", "disable", "1"], env=env)
    assert paused.exit_code == 0 and "disabled" in paused.output
    assert "disabled" in runner.invoke(cli, ["webhooks", "list"], env=env).output
    refused = runner.invoke(cli, ["webhooks", "add", "--url", "http://psa.example.com/"], env=env)
    assert refused.exit_code == 1 and "https is required" in refused.output
    removed = runner.invoke(cli, ["webhooks", "remove", "1"], env=env)
    assert removed.exit_code == 0 and "removed" in removed.output
    again = runner.invoke(cli, ["webhooks", "remove", "1"], env=env)
    assert again.exit_code == 1 and "no such webhook endpoint" in again.output
    assert deliveries(services) == []
