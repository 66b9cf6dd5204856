"""The reset job, and how a reset survives a crash.

The reset request row is the source of truth; the queue carries only its id. Steps 1
to 3 are in :mod:`.leases`, the rest here.

1. **Claim.** One UPDATE moves the request from queued to running with a fresh lease
   (a random token, the holder ``host:pid`` and an expiry ``BLINK_JOB_LEASE_SECONDS``
   ahead) and counts the attempt. Only one job can hold a request; a second copy of the
   job (a duplicate enqueue, RQ re-running an abandoned job) finds nothing to claim.
2. **Heartbeat.** While the job runs, a thread renews the lease every third of its length.
3. **Fence.** The SMS is recorded as 'sending' in the same transaction that checks the
   lease is still ours; a job that lost its lease sends nothing.
4. **Sweep.** If the worker dies, the lease runs out. The scheduler's :func:`sweep`
   queues the request again, and enqueues every queued request that is not on a queue
   (accepted while Redis was down, a retry whose wait is over, a job Redis lost).
5. **Settle.** The next claimant first settles what the dead one left: a final SMS
   with a message id means it left (done); one still 'sending' (the worker died during
   the call) makes it ask Twilio whether a message to that phone left since then that
   has no record here. If so, it was that one: the request is done and nothing more is
   sent. If not, nothing left: a new password is set and texted. So the user gets one
   SMS, with the password that is valid now, never two different ones.

No database transaction is open during a directory or Twilio call: each step is its
own short transaction, and the job works from a snapshot of plain values (``Work``).

The one-time password is generated inside :func:`_reset_and_text`, set in the
directory, put in one SMS and dropped: never stored, logged, queued or raised.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import structlog
from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session

from directory_adapters import (
    DirectoryAdapter,
    DirectoryError,
    OperationNotSupported,
    OperationRefused,
    PasswordRejected,
)

from .. import otp, queue
from ..context import Blink
from ..crypto import SecretBoxError
from ..messaging import texts
from ..messaging.i18n import translate
from ..messaging.sms import SmsError
from ..models import (
    Client,
    OutboundMessage,
    RequestKind,
    RequestStatus,
    ResetRequest,
    User,
    client_queue,
    utcnow,
)
from ..retries import RetryPolicy
from . import audit, sim_swap
from .leases import REQUESTS, LeaseLost, Work, claim, fence, heartbeat, held
from .outbound import deliver

log = structlog.get_logger(__name__)

# Messages that end a request: one of these left, nothing more is sent for it.
DONE_PURPOSES = ("otp", "unlocked")
FAILED_PURPOSES = ("apology", "unlock_not_supported", "disabled")
# How far before its record a lost message may be dated by Twilio (clock skew).
CLOCK_SKEW = timedelta(seconds=60)


def job_id(request_id: int, attempt: int) -> str:
    """The queue's id for attempt ``attempt`` of a request: one per attempt, never reused
    while an earlier attempt's job may still be in Redis."""
    return f"request-{request_id}-{attempt}"


def error_code_of(err: DirectoryError | SmsError) -> str:
    if isinstance(err, SmsError):
        return err.error_code  # a SIM-swap refusal says "sim_swap"
    name = type(err).__name__
    return "".join(f"_{c.lower()}" if c.isupper() else c for c in name).lstrip("_")


def perform_request(request_id: int) -> None:
    """Job: carry out a reset or unlock request (see :func:`perform`)."""
    from ..context import blink

    queue.start_job_logging()
    perform(blink(), request_id)


def perform(app: Blink, request_id: int) -> None:
    """Carry out one reset or unlock request, if it is queued and due. Safe to run twice."""
    structlog.contextvars.bind_contextvars(reset_request=request_id)
    work = claim(app, request_id)
    if work is None:
        return
    with heartbeat(app, work):
        try:
            _run(app, work, RetryPolicy.of(app.settings))
        except LeaseLost:
            log.warning("lease lost: another job holds the request now; stopping")


# --- the work -------------------------------------------------------------------------------


def _run(app: Blink, work: Work, policy: RetryPolicy) -> None:
    try:
        # Only a request that an earlier attempt worked on can have left messages.
        settled = _settle(app, work) if work.attempt > 1 else None
        if settled is not None:
            _finish(app, work, settled)  # a failed one keeps the error code it had
            if settled is RequestStatus.DONE:
                _queue_notice(app, work)
            return
        if work.attempt > policy.attempts:
            # Every attempt was used by workers that died: give up, politely.
            log.error("request abandoned too often; giving up", attempts=work.attempt - 1)
            _fail(app, work, "abandoned")
            return
        if work.client_disabled:
            # Disabled after the request was accepted: nothing may reach the directory.
            log.warning("client disabled; request not carried out", client=work.client_slug)
            body = translate(work.language, texts.CLIENT_DISABLED, support=work.support_contact)
            _send(app, work, body, purpose="disabled")
            _finish(app, work, RequestStatus.FAILED, error_code="client_disabled")
            return
        if work.opted_out or work.phone is None:
            raise SmsError("the user has no reachable phone (not enrolled or opted out)",
                           permanent=True)  # fmt: skip
        directory = app.directories.for_client(work.directory)
        if work.kind is RequestKind.UNLOCK:
            try:
                directory.unlock(work.directory_id)
            except OperationNotSupported:
                _offer_reset(app, work)
                return
            _send(
                app, work, translate(work.language, texts.UNLOCKED), purpose="unlocked",
                completes=True,
            )  # fmt: skip
        else:
            _reset_and_text(app, work, directory)
    except SecretBoxError:
        log.error(
            "cannot decrypt the client's directory settings",
            client=work.client_slug,
            likely_cause="BLINK_SECRET_KEY is not the key they were saved with; set the old "
            "one as BLINK_SECRET_KEY_PREVIOUS, or save the settings again",
        )
        _fail(app, work, "secret_key_mismatch")
        return
    except (DirectoryError, SmsError) as err:
        _after_failure(app, work, err, policy)
        return
    _queue_notice(app, work)
    log.info("request completed", kind=work.kind.value)


def _queue_notice(app: Blink, work: Work) -> None:
    """The completion is committed: queue the user's notice email (never fails the reset)."""
    # Imported here: notices reads users through resets, which imports this module.
    from .notices import queue_reset_notice

    queue_reset_notice(app, work.request_id)


def _reset_and_text(app: Blink, work: Work, directory: DirectoryAdapter) -> None:
    """Set a fresh one-time password and text it. The password lives only here.

    First, per the client's policy, a SIM swap check (raises ``SimSwapError``)."""
    sim_swap.check(app, work)
    policy = directory.password_policy()
    avoid = [work.username, work.display_name]
    password = otp.generate_password(policy, length=work.password_length, avoid=avoid)
    try:
        directory.set_password(
            work.directory_id,
            password,
            must_change=work.must_change_at_next_logon,
            unlock=work.unlock_on_reset,
        )
    except PasswordRejected:
        # A fine-grained policy may ask for more than the domain policy says: once, longer.
        log.warning("password rejected by policy, trying once more, longer")
        password = otp.generate_password(
            policy, length=max(work.password_length, policy.min_length) + 6, avoid=avoid
        )
        directory.set_password(
            work.directory_id,
            password,
            must_change=work.must_change_at_next_logon,
            unlock=work.unlock_on_reset,
        )
    message = texts.OTP if work.must_change_at_next_logon else texts.OTP_NO_CHANGE
    body = translate(work.language, message, password=password)
    del password
    _send(app, work, body, purpose="otp", completes=True)


def _send(app: Blink, work: Work, body: str, *, purpose: str, completes: bool = False) -> str:
    """Text the user, fenced by the lease. With ``completes`` the request is marked done
    in the transaction that records the message as sent (one commit instead of two)."""
    if work.phone is None or work.opted_out:
        raise SmsError("the user has no reachable phone (not enrolled or opted out)",
                       permanent=True)  # fmt: skip
    with app.db.session() as session:
        return deliver(
            app,
            session,
            to=work.phone,
            client=work,
            body=body,
            purpose=purpose,
            user_id=work.user_id,
            request_id=work.request_id,
            reply_from=work.reply_from,
            fence=fence(work),
            then=(
                (lambda tx, sid: _record_outcome(tx, work, RequestStatus.DONE, outbound_sid=sid))
                if completes
                else None
            ),
        )


def _settle(app: Blink, work: Work) -> RequestStatus | None:
    """What earlier attempts of this request left behind: DONE or FAILED when a final
    SMS already left (nothing more may be sent), None when the work is still to do."""
    with app.db.session() as session:
        records = session.execute(
            select(OutboundMessage).where(
                OutboundMessage.request_id == work.request_id,
                OutboundMessage.purpose.in_(DONE_PURPOSES + FAILED_PURPOSES),
            )
        ).scalars().all()  # fmt: skip
        session.commit()
    left = [r for r in records if r.sid is not None]
    lost = [r for r in records if r.sid is None and r.status == "sending"]
    if not left and lost and work.phone is not None and app.sms is not None:
        # An attempt died while handing a message to Twilio: did it leave?
        since = min(r.created_at for r in lost) - CLOCK_SKEW
        with app.db.session() as session:
            known: set[str] = set(
                session.execute(
                    select(OutboundMessage.sid).where(
                        OutboundMessage.user_id == work.user_id,
                        OutboundMessage.sid.is_not(None),
                        OutboundMessage.created_at >= since,
                    )
                ).scalars()  # type: ignore[arg-type]  # sid IS NOT NULL
            )
            session.commit()
        sid = app.sms.find_sent(work.phone, since, known)  # SmsError: retried as usual
        with app.db.session() as session:
            record = lost[-1]
            values: dict[str, Any] = (
                {"sid": sid, "status": "sent"}
                if sid
                else {"status": "failed", "error_code": "not_sent"}
            )
            session.execute(
                update(OutboundMessage).where(OutboundMessage.id == record.id).values(**values)
            )
            if sid:
                session.execute(
                    update(ResetRequest)
                    .where(ResetRequest.id == work.request_id)
                    .values(outbound_sid=sid)
                )
            session.commit()
        if sid is None:
            log.warning("the dead attempt's SMS never left; doing the work again")
            return None
        log.warning("the dead attempt's SMS did leave; nothing more to send")
        left = [record]
    if not left:
        return None
    return RequestStatus.DONE if left[-1].purpose in DONE_PURPOSES else RequestStatus.FAILED


def _after_failure(
    app: Blink, work: Work, err: DirectoryError | SmsError, policy: RetryPolicy
) -> None:
    code = error_code_of(err)
    retry_after = err.retry_after if isinstance(err, DirectoryError) else None
    wait = None if err.permanent else policy.wait_after(work.attempt, retry_after)
    if wait is None:
        log.error("request failed", error_code=code, detail=err.message)
        # The directory will not reset this account (privileged, synced, guest,
        # disabled...): say so, rather than an apology that invites a retry.
        refused = isinstance(err, OperationRefused) and work.kind is RequestKind.RESET
        _fail(app, work, code, text=texts.RESET_REFUSED if refused else texts.APOLOGY)
        return
    now = utcnow()
    at_once = wait <= timedelta(0)
    with app.db.session() as session:
        result = session.execute(
            update(ResetRequest)
            .where(ResetRequest.id == work.request_id, ResetRequest.lease_token == work.token)
            .values(
                status=RequestStatus.QUEUED,
                error_code=code,
                next_attempt_at=now + wait,
                # A retry due now goes straight back on the queue; a later one waits in
                # the outbox for the scheduler's sweep (RQ's own scheduler is not needed).
                enqueued_at=now if at_once else None,
                lease_token=None,
                lease_holder=None,
                lease_expires_at=None,
            )
            .execution_options(synchronize_session=False)
        )
        if result.rowcount != 1:  # type: ignore[attr-defined]
            session.rollback()
            raise LeaseLost
        session.commit()
    log.warning(
        "request will be retried",
        error_code=code,
        wait_seconds=int(wait.total_seconds()),
        attempt=work.attempt,
    )
    if at_once:
        due = [(work.request_id, work.attempt, client_queue(work.client_slug))]
        enqueue(app, due, noted=True)


def _fail(app: Blink, work: Work, code: str, *, text: str = texts.APOLOGY) -> None:
    """Give up: the apology (or another ``text`` with {support}) first, so a crash cannot
    skip it, then the record."""
    if work.phone is not None and not work.opted_out:
        body = translate(work.language, text, support=work.support_contact)
        try:
            _send(app, work, body, purpose="apology")
        except SmsError as err:
            log.error("apology SMS failed", error_code=error_code_of(err))
    _finish(app, work, RequestStatus.FAILED, error_code=code)


def _offer_reset(app: Blink, work: Work) -> None:
    """The directory has no unlock (Entra ID): say so and offer RESET, which ends a lockout.

    Not an apology: nothing went wrong, the user is told what works instead.
    """
    log.info("directory cannot unlock; offering RESET instead")
    try:
        _send(
            app, work, translate(work.language, texts.UNLOCK_NOT_SUPPORTED),
            purpose="unlock_not_supported",
        )  # fmt: skip
    except SmsError as err:
        log.error("unlock-not-supported SMS failed", error_code=error_code_of(err))
    _finish(app, work, RequestStatus.FAILED, error_code="unlock_not_supported")


def _finish(
    app: Blink, work: Work, status: RequestStatus, *, error_code: str | None = None
) -> None:
    with app.db.session() as session:
        _record_outcome(session, work, status, error_code=error_code)
        session.commit()


def _record_outcome(
    session: Session,
    work: Work,
    status: RequestStatus,
    *,
    error_code: str | None = None,
    outbound_sid: str | None = None,
) -> None:
    """The request ends (in the caller's transaction): its status, lease released, audit."""
    values: dict[str, Any] = {
        "status": status,
        "finished_at": utcnow(),
        "lease_token": None,
        "lease_holder": None,
        "lease_expires_at": None,
    }
    if error_code is not None or status is RequestStatus.DONE:
        values["error_code"] = error_code  # a failed request may keep the code it had
    if outbound_sid is not None:
        values["outbound_sid"] = outbound_sid
    result = session.connection().execute(update(REQUESTS).where(held(work)).values(**values))
    if result.rowcount != 1:
        session.rollback()
        raise LeaseLost
    outcome = "completed" if status is RequestStatus.DONE else "failed"
    detail: dict[str, Any] = {}
    if error_code:
        detail["error_code"] = error_code
    if error_code == "secret_key_mismatch":
        detail["cause"] = "BLINK_SECRET_KEY differs from the key the settings were saved with"
    audit.record(
        session,
        f"{work.kind.value}.{outcome}",
        actor="system",
        client_id=work.client_id,
        user_id=work.user_id,
        request_id=work.request_id,
        **detail,
    )


# --- the queue and the sweep ----------------------------------------------------------------


def enqueue(app: Blink, due: list[tuple[int, int, str]], *, noted: bool = False) -> int:
    """Put (request id, attempts so far, queue name) on the queue; the number enqueued.

    Each row's ``enqueued_at`` says it is on a queue: set here after the enqueue, or
    already set by the caller in the transaction that queued it (``noted``, the webhook's
    hot path, which saves the UPDATE). Stops at the first queue error: what is left goes
    back to the outbox (``enqueued_at`` NULL) for the scheduler's next sweep.
    """
    done: list[int] = []
    try:
        for request_id, attempts, queue_name in due:
            app.queue.enqueue(
                queue_name,
                perform_request,
                request_id,
                job_id=job_id(request_id, attempts + 1),
                retry=False,
            )
            done.append(request_id)
    except Exception as err:  # Redis down: the rows stay in the outbox for the next sweep
        log.warning("queue unavailable; requests wait in the outbox", error=type(err).__name__)
        failed = [r for r, _, _ in due if r not in done]
        if failed:
            _mark_enqueued(app, failed, None)
    if done and not noted:
        _mark_enqueued(app, done, utcnow())
    return len(done)


def _mark_enqueued(app: Blink, request_ids: list[int], at: datetime | None) -> None:
    with app.db.session() as session:
        session.execute(
            update(ResetRequest)
            .where(ResetRequest.id.in_(request_ids), ResetRequest.status == RequestStatus.QUEUED)
            .values(enqueued_at=at)
            .execution_options(synchronize_session=False)
        )
        session.commit()


@dataclass(frozen=True)
class SweepResult:
    abandoned: int
    enqueued: int


def sweep(app: Blink, *, now: datetime | None = None) -> SweepResult:
    """Requeue requests whose worker died; enqueue queued requests that are on no queue.

    Run by the scheduler every ``BLINK_SWEEP_SECONDS``. Safe to run anywhere, any number
    of times: a request enqueued twice is still claimed once.
    """
    now = now or utcnow()
    abandoned = _requeue_abandoned(app, now)
    grace = timedelta(seconds=max(10, 2 * app.settings.sweep_seconds))
    pending = (
        select(ResetRequest.id, ResetRequest.attempts, Client.slug, ResetRequest.enqueued_at)
        .join(User, User.id == ResetRequest.user_id)
        .join(Client, Client.id == User.client_id)
        .where(
            ResetRequest.status == RequestStatus.QUEUED,
            or_(ResetRequest.next_attempt_at.is_(None), ResetRequest.next_attempt_at <= now),
            or_(ResetRequest.enqueued_at.is_(None), ResetRequest.enqueued_at < now - grace),
        )
        .order_by(ResetRequest.id)
        .limit(1000)
    )
    with app.db.session() as session:
        rows = session.execute(pending).all()
        session.commit()
    due = [(r, a, client_queue(slug)) for r, a, slug, at in rows if at is None]
    # Enqueued a while ago and still queued: the job is either waiting its turn on a
    # busy queue, or lost (Redis restarted without it, a web process died before it
    # enqueued). Ask the queue which.
    waiting = {job_id(r, a + 1): (r, a, client_queue(slug)) for r, a, slug, at in rows if at}
    if waiting:
        try:
            missing = app.queue.missing(list(waiting))
        except Exception as err:  # Redis down: nothing can be enqueued anyway
            log.warning("queue unavailable; sweep postponed", error=type(err).__name__)
            return SweepResult(abandoned, 0)
        due += [waiting[j] for j in sorted(missing)]
    enqueued = enqueue(app, due) if due else 0
    if enqueued:
        log.info("sweep enqueued requests", enqueued=enqueued)
    return SweepResult(abandoned, enqueued)


def _requeue_abandoned(app: Blink, now: datetime) -> int:
    with app.db.session() as session:
        expired = session.execute(
            select(ResetRequest.id, ResetRequest.lease_holder, User.id, User.client_id)
            .join(User, User.id == ResetRequest.user_id)
            .where(
                ResetRequest.status == RequestStatus.RUNNING,
                ResetRequest.lease_expires_at < now,
            )
        ).all()
        for request_id, holder, user_id, client_id in expired:
            result = session.execute(
                update(ResetRequest)
                .where(
                    ResetRequest.id == request_id,
                    ResetRequest.status == RequestStatus.RUNNING,
                    ResetRequest.lease_expires_at < now,
                )
                .values(
                    status=RequestStatus.QUEUED,
                    lease_token=None,
                    lease_holder=None,
                    lease_expires_at=None,
                    next_attempt_at=None,
                    enqueued_at=None,
                )
                .execution_options(synchronize_session=False)
            )
            if result.rowcount == 1:  # type: ignore[attr-defined]
                log.warning("worker died holding a request; queued again",
                            reset_request=request_id, holder=holder)  # fmt: skip
                audit.record(
                    session, "request.requeued", actor="system", client_id=client_id,
                    user_id=user_id, request_id=request_id, holder=holder or "",
                    reason="lease_expired",
                )  # fmt: skip
        session.commit()
    return len(expired)
