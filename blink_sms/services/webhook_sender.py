"""Sending outbound event webhooks: signed POSTs, retried, from the scheduler.

The ``webhooks`` task of the scheduler is a :class:`Sender`: every two seconds it claims
due rows of the outbox that :func:`blink_sms.services.webhook_events.emit` fills (an UPDATE
that counts the attempt and leases the row for :data:`LEASE`) and hands them to a few
threads of its own that POST them, 10 s timeout, no redirects followed. The tick itself
only queries, so a slow or dead receiver never delays the scheduler's other tasks nor
holds its Redis lock past its renewal. RQ jobs were the other way; they are not used
because a worker runs one job at a time and reset jobs must not wait behind a PSA that
does not answer. Without Redis, each web process runs a scheduler: the claim is a
conditional UPDATE, so two of them never send the same attempt. A sender that dies
mid-flight leaves its rows leased; when the lease runs out they are claimed again (at
least once: receivers de-duplicate on ``Blink-Delivery``). A 2xx answer delivers;
anything else is tried again after :data:`RETRY_DELAYS`, then marked failed.

Each POST carries ``Blink-Event``, ``Blink-Delivery`` (the event's id, the same on
every retry) and ``Blink-Signature: t=<unix time>,v1=<hex HMAC-SHA256 of "t.body">``
keyed with the endpoint's secret.
"""

from __future__ import annotations

import hashlib
import hmac
import http.client
import json
import threading
import time
import urllib.error
import urllib.request
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import structlog
from sqlalchemy import and_, delete, select, update

from ..crypto import SecretBoxError
from ..models import WebhookDelivery, WebhookEndpoint, utcnow
from .webhook_events import DELIVERIES, PENDING

if TYPE_CHECKING:
    from ..context import Blink

log = structlog.get_logger(__name__)

SENDING, DELIVERED, FAILED = "sending", "delivered", "failed"
# Seconds to wait after the 1st, 2nd, ... failed attempt; one attempt more than delays.
RETRY_DELAYS = (30, 120, 600, 3600, 6 * 3600, 6 * 3600, 6 * 3600)
MAX_ATTEMPTS = len(RETRY_DELAYS) + 1
TIMEOUT_SECONDS = 10
# A claimed row no sender finished within this is claimed again (its sender died).
LEASE = timedelta(minutes=5)
KEEP = timedelta(days=30)  # delivered and failed rows, for "last delivery" in the console
MAX_ERROR = 200
SENDER_STOPPED = "no answer recorded: the sender stopped during the last attempt"


def claim_due(app: Blink, *, limit: int, now: datetime | None = None) -> list[tuple[int, int]]:
    """Claim up to ``limit`` due deliveries of enabled endpoints: (delivery id, attempt).

    A claim counts the attempt and leases the row; a row whose attempts are used up and
    whose sender died is marked failed instead."""
    now = now or utcnow()
    claimed: list[tuple[int, int]] = []
    with app.db.session() as session:
        connection = session.connection()
        due = connection.execute(
            select(WebhookDelivery.id, WebhookDelivery.status, WebhookDelivery.attempts)
            .join(WebhookEndpoint, WebhookEndpoint.id == WebhookDelivery.endpoint_id)
            .where(
                WebhookDelivery.status.in_((PENDING, SENDING)),
                WebhookDelivery.next_attempt_at <= now,
                WebhookEndpoint.disabled_at.is_(None),
            )
            .order_by(WebhookDelivery.next_attempt_at)
            .limit(limit)
        ).all()
        for delivery_id, status, attempts in due:
            unchanged = and_(
                WebhookDelivery.id == delivery_id,
                WebhookDelivery.status == status,
                WebhookDelivery.attempts == attempts,
            )
            if attempts >= MAX_ATTEMPTS:
                connection.execute(
                    update(DELIVERIES)
                    .where(unchanged)
                    .values(status=FAILED, next_attempt_at=None, last_error=SENDER_STOPPED)
                )
                continue
            result = connection.execute(
                update(DELIVERIES)
                .where(unchanged)
                .values(status=SENDING, attempts=attempts + 1, next_attempt_at=now + LEASE)
            )
            if result.rowcount == 1:  # else another scheduler took it first
                claimed.append((delivery_id, attempts + 1))
        session.commit()
    return claimed


def signature(secret: str, timestamp: int, body: bytes) -> str:
    """The ``Blink-Signature`` header: ``t=<unix time>,v1=<HMAC-SHA256 of "t.body">``."""
    mac = hmac.new(secret.encode("utf-8"), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"t={timestamp},v1={mac.hexdigest()}"


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    """A redirect is an answer, not a new address to send the event (and its signature) to."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


_OPENER = urllib.request.build_opener(_NoRedirects)


def _one_line(text: str) -> str:
    return " ".join(text.split())[:MAX_ERROR]


@dataclass(frozen=True)
class Outcome:
    """How an attempt went: the HTTP status if there was one, and what went wrong if it did."""

    status: int | None
    error: str | None


def post(url: str, secret: str, event: str, event_id: str, payload: dict[str, Any]) -> Outcome:
    """POST one event, signed. A 2xx answer is delivered; anything else is an error.

    urllib rather than requests: no redirects, a timeout, proxies from the environment,
    certificates verified, and nothing else in the way."""
    body = json.dumps(payload, separators=(",", ":"), sort_keys=True).encode()
    request = urllib.request.Request(  # noqa: S310 -- the scheme was checked: http(s) only
        url,
        data=body,
        method="POST",
        headers={
            "Content-Type": "application/json",
            "User-Agent": "Blink-SMS-Webhooks/1",
            "Blink-Event": event,
            "Blink-Delivery": event_id,
            "Blink-Signature": signature(secret, int(time.time()), body),
        },
    )
    try:
        with _OPENER.open(request, timeout=TIMEOUT_SECONDS) as response:
            status = int(response.status)
            return Outcome(status, None if 200 <= status < 300 else f"HTTP {status}")
    except urllib.error.HTTPError as err:
        if 300 <= err.code < 400:
            return Outcome(err.code, f"HTTP {err.code}: redirects are not followed")
        # The receiver's own words, shortened: they often say what it disliked.
        try:
            excerpt = err.read(MAX_ERROR).decode("utf-8", "replace")
        except (OSError, http.client.HTTPException):
            excerpt = ""
        finally:
            err.close()
        return Outcome(err.code, _one_line(f"HTTP {err.code}: {excerpt}".rstrip(": ")))
    except urllib.error.URLError as err:
        return Outcome(None, _one_line(f"{type(err.reason).__name__}: {err.reason}"))
    except (OSError, http.client.HTTPException, ValueError) as err:
        return Outcome(None, _one_line(f"{type(err).__name__}: {err}"))


def deliver(app: Blink, delivery_id: int, attempt: int) -> str | None:
    """Send attempt ``attempt`` of a claimed delivery and record how it went.

    The new status, or None when the row is no longer this attempt's (removed, or
    claimed again after the lease ran out)."""
    mine = and_(
        WebhookDelivery.id == delivery_id,
        WebhookDelivery.status == SENDING,
        WebhookDelivery.attempts == attempt,
    )
    with app.db.session() as session:
        row = session.execute(
            select(
                WebhookDelivery.event,
                WebhookDelivery.event_id,
                WebhookDelivery.payload,
                WebhookDelivery.endpoint_id,
                WebhookEndpoint.url,
                WebhookEndpoint.secret_encrypted,
            )
            .join(WebhookEndpoint, WebhookEndpoint.id == WebhookDelivery.endpoint_id)
            .where(mine)
        ).one_or_none()
    if row is None:
        return None
    event, event_id, payload, endpoint_id, url, secret_encrypted = row
    try:
        secret = str(app.secrets.decrypt_json(secret_encrypted)["secret"])
    except (SecretBoxError, KeyError):
        outcome = Outcome(None, "the signing secret cannot be read with this BLINK_SECRET_KEY")
    else:
        outcome = post(url, secret, event, event_id, payload)
    now = utcnow()
    values: dict[str, Any] = {"last_status": outcome.status, "last_error": outcome.error}
    if outcome.error is None:
        status = DELIVERED
        values.update(delivered_at=now, next_attempt_at=None)
    elif attempt >= MAX_ATTEMPTS:
        status = FAILED
        values.update(next_attempt_at=None)
    else:
        status = PENDING
        values.update(next_attempt_at=now + timedelta(seconds=RETRY_DELAYS[attempt - 1]))
    with app.db.session() as session:
        session.connection().execute(update(DELIVERIES).where(mine).values(status=status, **values))
        session.commit()
    context = {
        "delivery_id": delivery_id,
        "endpoint_id": endpoint_id,
        "webhook_event": event,
        "attempt": attempt,
        "host": urlsplit(url).hostname,
    }
    if status == DELIVERED:
        log.info("webhook delivered", status=outcome.status, **context)
    elif status == FAILED:
        log.error("webhook failed for good", error=outcome.error, **context)
    else:
        retry_in = RETRY_DELAYS[attempt - 1]
        log.warning("webhook not delivered yet", error=outcome.error, retry_in=retry_in, **context)
    return status


def prune(app: Blink, *, now: datetime | None = None) -> int:
    """Delete delivered and failed rows older than :data:`KEEP`; the number deleted."""
    before = (now or utcnow()) - KEEP
    with app.db.session() as session:
        result = session.connection().execute(
            delete(DELIVERIES).where(
                WebhookDelivery.status.in_((DELIVERED, FAILED)),
                WebhookDelivery.created_at < before,
            )
        )
        session.commit()
    return int(result.rowcount)


class Sender:
    """The scheduler's ``webhooks`` task: claims due deliveries and sends them on a few
    threads of its own, at most ``in_flight`` at a time; prunes old rows once an hour."""

    def __init__(self, *, threads: int = 4, in_flight: int = 32) -> None:
        self.threads = threads
        self.in_flight = in_flight
        self._pool: ThreadPoolExecutor | None = None
        self._lock = threading.Lock()
        self._futures: set[Future[str | None]] = set()
        self._pruned_at: float | None = None

    def __call__(self, app: Blink) -> int:
        """One tick: the number of deliveries handed to the threads."""
        with self._lock:
            self._futures = {f for f in self._futures if not f.done()}
            free = self.in_flight - len(self._futures)
        now = time.monotonic()
        if self._pruned_at is None or now - self._pruned_at >= 3600:
            self._pruned_at = now
            prune(app)
        if free <= 0:
            return 0
        claimed = claim_due(app, limit=free)
        if not claimed:
            return 0
        if self._pool is None:
            self._pool = ThreadPoolExecutor(self.threads, thread_name_prefix="blink-webhook")
        pool = self._pool
        for delivery_id, attempt in claimed:
            future = pool.submit(deliver, app, delivery_id, attempt)
            future.add_done_callback(_log_crash)
            with self._lock:
                self._futures.add(future)
        return len(claimed)

    def drain(self, timeout: float = 30.0) -> None:
        """Wait for the deliveries handed out so far (for tests)."""
        with self._lock:
            pending = set(self._futures)
        wait(pending, timeout=timeout)


def _log_crash(future: Future[str | None]) -> None:
    # A database error while recording: the lease runs out and the row is claimed again.
    err = future.exception()
    if err is not None:
        log.error("webhook sender failed", error=type(err).__name__)
