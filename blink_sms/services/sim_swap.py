"""SIM swap check before a password is texted (issue 13, item 5).

Whoever talks a carrier into moving a number to their own SIM receives its texts, and
so the next one-time password. Before a RESET sets and texts a password, the reset job
asks Twilio Lookup v2 about the user's number (:mod:`..messaging.lookup`), per the
client's ``sim_swap_policy``:

- ``off``: no lookup;
- ``warn``: the reset goes on; a risk is audited (``reset.sim_swap_warning``);
- ``block``: a risk stops it before the directory is touched: no password, the usual
  apology to the user, ``reset.sim_swap_blocked`` in the audit trail, and an email to
  the client's ``lockout_alert_email`` (a logged error when it has none).

A risk is a SIM swap within ``Client.sim_swap_days`` (by ``last_sim_swapped_date``, or,
where the carrier gives no date, any ``swapped_in_period: true``), or a line Lookup
now calls ``nonFixedVoip``: a mobile number moved to an internet phone service is the
same takeover by other means.

When Lookup cannot be asked (network, HTTP error, no Twilio credentials): with
``warn`` the reset goes on (audited ``reset.sim_swap_unchecked``); with ``block`` it
fails closed for now: :class:`SimSwapUnchecked` is a retryable error, so the job tries
again on its usual schedule and, when the attempts are used up, ends with the apology.
A Lookup outage is short; a password texted to a hijacked number cannot be taken back.
A carrier that shares no SIM swap data is not an outage: the reset goes on, audited as
unchecked, whatever the policy, or ``block`` would end texted resets in those countries.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import structlog
from sqlalchemy import select

from .. import queue
from ..context import Blink
from ..crypto import mask_phone
from ..messaging.email import OutgoingEmail
from ..messaging.lookup import LookupFailed, LookupResult, TwilioLookup
from ..messaging.sms import SmsError
from ..models import Client, ResetRequest, User, utcnow
from ..queue import EMAIL_QUEUE
from . import audit
from .leases import Work
from .mail import email_sender_for, send_or_retry

log = structlog.get_logger(__name__)

POLICIES = ("off", "warn", "block")
RISKY_LINE_TYPES = frozenset({"nonFixedVoip"})


class SimSwapError(SmsError):
    """No password may be texted now; ``error_code`` is the request's error code."""

    error_code = "sim_swap"


class SimSwapBlocked(SimSwapError):
    """``block``, and a recent swap: refused (permanent: the job ends with the apology)."""

    def __init__(self) -> None:
        super().__init__("recent SIM swap (policy block)", permanent=True)


class SimSwapUnchecked(SimSwapError):
    """``block``, and Lookup could not be asked: not now, try again later."""

    error_code = "sim_swap_unchecked"

    def __init__(self, reason: str) -> None:
        super().__init__(f"SIM swap check unavailable: {reason}", permanent=False)


@dataclass(frozen=True)
class Risk:
    """Why a number looks taken over; ``None`` from :func:`risk_of` when it does not."""

    swapped_at: datetime | None
    line_type: str | None


def risk_of(result: LookupResult, days: int, now: datetime) -> Risk | None:
    window = timedelta(days=days)
    if result.last_swapped_at is not None:
        swapped = now - result.last_swapped_at <= window
    else:
        # No date: a swap "in period" counts, even when that period is longer than ours
        # (it may have been within ours; we cannot tell, so we assume it was).
        swapped = bool(result.swapped_in_period)
    if swapped or result.line_type in RISKY_LINE_TYPES:
        return Risk(result.last_swapped_at, result.line_type)
    return None


def _lookup(app: Blink, phone: str) -> LookupResult:
    settings = app.settings
    if not (settings.twilio_account_sid and settings.twilio_auth_token):
        raise LookupFailed("Twilio credentials are not configured")
    return TwilioLookup(settings.twilio_account_sid, settings.twilio_auth_token).lookup(phone)


def check(app: Blink, work: Work, *, now: datetime | None = None) -> None:
    """Let a password be texted to ``work.phone``, or raise :class:`SimSwapBlocked`
    (audited and alerted here; the job sends the apology) or :class:`SimSwapUnchecked`."""
    with app.db.session() as session:
        row = session.execute(
            select(Client.sim_swap_policy, Client.sim_swap_days).where(Client.id == work.client_id)
        ).one()
        session.commit()
    policy, days = row
    if policy not in ("warn", "block") or work.phone is None:
        return
    now = now or utcnow()
    try:
        result = _lookup(app, work.phone)
    except LookupFailed as err:
        log.warning("SIM swap check failed", policy=policy, reason=str(err))
        if policy == "block":
            raise SimSwapUnchecked(str(err)) from None
        _audit(app, work, "reset.sim_swap_unchecked", reason="lookup_failed", policy=policy)
        return
    risk = risk_of(result, days, now)
    if risk is None:
        if not result.has_swap_data:
            _audit(app, work, "reset.sim_swap_unchecked", reason="no_data", policy=policy,
                   line_type=result.line_type)  # fmt: skip
        return
    detail = {
        "policy": policy,
        "days": days,
        "swapped_at": risk.swapped_at.isoformat() if risk.swapped_at else None,
        "line_type": risk.line_type,
    }
    if policy == "warn":
        log.warning("recent SIM swap; password texted anyway (policy warn)")
        _audit(app, work, "reset.sim_swap_warning", **detail)
        return
    log.warning("recent SIM swap; no password texted (policy block)")
    _audit(app, work, "reset.sim_swap_blocked", **detail)
    _alert(app, work)
    raise SimSwapBlocked


def _audit(app: Blink, work: Work, action: str, **detail: object) -> None:
    with app.db.session() as session:
        audit.record(
            session,
            action,
            actor="system",
            client_id=work.client_id,
            user_id=work.user_id,
            request_id=work.request_id,
            phone=mask_phone(work.phone),
            **detail,
        )
        session.commit()


# --- the admin alert ------------------------------------------------------------------------


def _alert(app: Blink, work: Work) -> None:
    """Email the client's alert address (on the email queue), or log an error."""
    with app.db.session() as session:
        address = session.execute(
            select(Client.lockout_alert_email).where(Client.id == work.client_id)
        ).scalar_one_or_none()
        session.commit()
    if not address:
        log.error(
            "SIM swap blocked a reset; the client has no alert address to tell",
            client=work.client_slug,
            user_id=work.user_id,
        )
        return

    try:
        app.queue.enqueue(
            EMAIL_QUEUE, send_sim_swap_alert, work.request_id,
            job_id=f"sim-swap-alert-{work.request_id}",
        )  # fmt: skip
    except Exception as err:  # the refusal stands; only the email is lost
        log.error("cannot enqueue the SIM swap alert", error=type(err).__name__)


def send_sim_swap_alert(request_id: int) -> None:
    """Job: email the client's alert address about a reset a SIM swap blocked."""
    from ..context import blink

    queue.start_job_logging()
    deliver_alert(blink(), request_id, retries_left=queue.retries_left())


def deliver_alert(app: Blink, request_id: int, *, retries_left: int) -> bool:
    """Send the alert for request ``request_id``; True when sent."""
    with app.db.session() as session:
        row = session.execute(
            select(Client, User.username, User.display_name, User.phone)
            .join(User, User.client_id == Client.id)
            .join(ResetRequest, ResetRequest.user_id == User.id)
            .where(ResetRequest.id == request_id)
        ).one_or_none()
        if row is None or not row[0].lockout_alert_email:
            session.commit()
            return False
        client, username, display_name, phone = row
        client_id = client.id
        sender = email_sender_for(app, client)
        to = str(client.lockout_alert_email)
        message = OutgoingEmail(
            to=to,
            subject=f"{client.name}: password reset blocked (SIM swap) for {username}",
            text=(
                f"Blink SMS did not text a new password to {username} ({display_name}) at "
                f"{mask_phone(phone)}: Twilio reports that the number's SIM card was "
                f"swapped within the last {client.sim_swap_days} days, or that it now "
                "belongs to an internet phone service. Whoever holds the number now may "
                "not be the user.\n\nCheck with the user in person or by a call to a "
                "number you already know before resetting their password another way. "
                "This email goes to the lockout alert address in the client's settings.\n"
            ),
            from_name="Blink SMS",
        )
        session.commit()
    if sender is None:
        log.error("SIM swap alert not sent: email is off for this client")
        return False
    if send_or_retry(sender, message, retries_left=retries_left, what="SIM swap alert"):
        return False
    with app.db.session() as session:
        audit.record(session, "reset.sim_swap_alert_sent", actor="system",
                     client_id=client_id, request_id=request_id, to=to)  # fmt: skip
        session.commit()
    return True
