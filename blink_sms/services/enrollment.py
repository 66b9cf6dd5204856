"""Enrollment: the activation link, the mobile number, the SMS code, the binding.

The pages in :mod:`enrollment` are thin; every rule is here:

- a link is found by the SHA-256 of its token; unknown → not found, used/revoked/
  expired → gone, too many wrong codes → locked;
- a number must be valid for the chosen country and a mobile (or mobile-capable)
  number; it is stored in E.164;
- a number bound to anybody (any client) gets the very answer a free number gets, so a
  link cannot enumerate enrolled numbers: the page moves on to the code step, but no
  text goes out and the stored code can match no input, so every try fails like a wrong
  code and counts toward the link's lock (the code page tells the user what to do);
- SMS pumping: a code goes only to a mobile number of one of the client's allowed
  countries (``Client.allowed_countries``, by default its phone region), never to a
  non-geographic (+881 satellite, +882/+883 networks), premium, shared-cost, UAN, pager
  or VoIP range; besides the per-link and per-number limits below, codes are capped per
  remote address and per client an hour, and over all clients a minute: past that a
  circuit breaker stops every code for a cool-down, with an audit event and an error log;
- a code is 6 random digits, stored as a keyed hash, valid 10 minutes; 5 wrong codes
  over the whole invitation end it (a new code does not reset the count); at most
  3 codes per invitation per hour, one per minute, and 5 per number per day over
  every invitation (a link cannot be used to text a stranger over and over);
- the binding is one UPDATE of ``users.phone``: its unique constraint decides when
  two people race for one number;
- the client's binding policy (``Client.binding_policy``) decides which number a link
  may bind: ``any``; ``directory``, only the directory's own mobile number for the user
  (compared in E.164, read in the client's region; a different number counts as a
  wrong code, so a link cannot probe for it); or ``approval``, where a confirmed code
  only asks, and an admin approves (:func:`approve_binding`) or rejects it;
- where the client asks for a reset PIN (``Client.reset_pin``), the user chooses it on
  the code step, typed twice, and it is set with the binding (:mod:`.pins`); a refused
  PIN costs no code try and leaves the code live.

Every step writes an audit event; codes and tokens never appear in one.
"""

from __future__ import annotations

import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

import phonenumbers
import structlog
from phonenumbers import PhoneNumberType
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from directory_adapters import DirectoryError

from ..actors import Actor, Permission
from ..context import Blink
from ..crypto import mask_phone
from ..messaging import texts
from ..messaging.i18n import translate
from ..messaging.sms import SmsError
from ..models import (
    Client,
    Invitation,
    User,
    UserStatus,
    VerificationCode,
    utcnow,
)
from ..queue import EMAIL_QUEUE
from . import audit, pins, throttle
from .errors import Conflict, NotFound
from .invitations import is_open, send_phone_bound_email, token_hash
from .notices import text_previous_phone
from .outbound import deliver, send_sms
from .reset_job import error_code_of
from .user_details import language_of

log = structlog.get_logger(__name__)

CODE_DIGITS = 6
CODE_TTL = timedelta(minutes=10)
MAX_CODE_FAILURES = 5
CODES_PER_HOUR = 3
RESEND_COOLDOWN = timedelta(seconds=60)
CODES_PER_NUMBER_PER_DAY = 5
MAX_NUMBER_INPUT = 32
_TOKEN = re.compile(r"[A-Za-z0-9_-]{32,64}")
_MOBILE_TYPES = (PhoneNumberType.MOBILE, PhoneNumberType.FIXED_LINE_OR_MOBILE)
# Country calling codes of no country (+800, +870, +881, +882, +883...): satellite phones
# and international networks that bill a premium per text.
_NON_GEOGRAPHIC = "001"
BREAKER = "enroll-breaker"


# --- the link ---------------------------------------------------------------------------------


class LinkProblem(StrEnum):
    NOT_FOUND = "not_found"  # malformed or unknown: HTTP 404
    GONE = "gone"  # used, revoked or expired: HTTP 410
    LOCKED = "locked"  # too many wrong codes: HTTP 410
    AWAITING = "awaiting"  # the code was right; an admin has yet to approve: HTTP 200


@dataclass(frozen=True)
class BadLink:
    problem: LinkProblem
    invitation: Invitation | None = None


def find_invitation(
    session: Session, token: str, *, now: datetime, for_update: bool = False
) -> Invitation | BadLink:
    """The open invitation of ``token``, or why there is none. Reads only."""
    if not _TOKEN.fullmatch(token):
        return BadLink(LinkProblem.NOT_FOUND)
    query = select(Invitation).where(Invitation.token_hash == token_hash(token))
    if for_update:
        query = query.with_for_update()
    invitation = session.execute(query).scalar_one_or_none()
    if invitation is None:
        return BadLink(LinkProblem.NOT_FOUND)
    if not is_open(invitation, now) or invitation.user.status is UserStatus.DISABLED:
        return BadLink(LinkProblem.GONE, invitation)
    if invitation.code_failures >= MAX_CODE_FAILURES:
        return BadLink(LinkProblem.LOCKED, invitation)
    if awaiting_approval(invitation):
        return BadLink(LinkProblem.AWAITING, invitation)
    return invitation


# --- the number -------------------------------------------------------------------------------


class NumberProblem(StrEnum):
    EMPTY = "empty"
    TOO_LONG = "too_long"
    INVALID = "invalid"
    LANDLINE = "landline"
    NOT_TEXTABLE = "not_textable"  # premium-rate, toll-free, shared-cost, pagers...
    COUNTRY = "country"  # not one of the client's allowed countries
    NOT_ON_FILE = "not_on_file"  # policy "directory": not the directory's mobile number
    TAKEN = "taken"  # bound to somebody: only the audit says so, the page never does


def parse_mobile(raw: str, region: str) -> str | NumberProblem:  # noqa: PLR0911 - one per problem
    """``raw`` as an E.164 mobile number, read as a number of ``region`` unless it
    starts with +; or what is wrong with it."""
    raw = raw.strip()
    if not raw:
        return NumberProblem.EMPTY
    if len(raw) > MAX_NUMBER_INPUT:
        return NumberProblem.TOO_LONG
    try:
        number = phonenumbers.parse(raw, region.upper())
    except phonenumbers.NumberParseException:
        return NumberProblem.INVALID
    if not phonenumbers.is_valid_number(number):
        return NumberProblem.INVALID
    kind = phonenumbers.number_type(number)
    if phonenumbers.region_code_for_number(number) == _NON_GEOGRAPHIC:
        return NumberProblem.NOT_TEXTABLE
    if kind == PhoneNumberType.FIXED_LINE:
        return NumberProblem.LANDLINE
    if kind not in _MOBILE_TYPES:
        return NumberProblem.NOT_TEXTABLE
    return str(phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164))


class BindingPolicy(StrEnum):
    ANY = "any"
    DIRECTORY = "directory"
    APPROVAL = "approval"


def _directory_mobile(app: Blink, user: User) -> str | None:
    """The user's mobile number in the directory, in E.164 (None: none or not a number)."""
    mobile = app.directories.for_client(user.client).get_user(user.directory_id).mobile
    if not mobile:
        return None
    try:
        number = phonenumbers.parse(mobile, user.client.default_region)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(number):
        return None
    return str(phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164))


def allowed_regions(client: Client) -> frozenset[str]:
    """The regions enrollment codes may go to: the client's list, else its phone region."""
    listed = (client.allowed_countries or "").split(",")
    return frozenset(region for region in listed if region) or frozenset({client.default_region})


def _allowed(client: Client, e164: str) -> bool:
    region = phonenumbers.region_code_for_number(phonenumbers.parse(e164, None))
    return region in allowed_regions(client)


def display_number(e164: str) -> str:
    """+31612345678 → "+31 6 12345678": the number as people write it."""
    number = phonenumbers.parse(e164, None)
    return str(phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.INTERNATIONAL))


# --- codes ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CodeState:
    """What the code page shows: the live code (if any) and when another may be sent."""

    code: VerificationCode | None
    resend_in: timedelta  # zero when a new code may be sent now
    sent_this_hour: int
    failures_left: int


@dataclass(frozen=True)
class CodeSent:
    code_id: int


@dataclass(frozen=True)
class RateLimited:
    retry_after: timedelta
    per_number: bool = False


@dataclass(frozen=True)
class SendFailed:
    permanent: bool


@dataclass(frozen=True)
class Refused:
    problem: NumberProblem


SendOutcome = CodeSent | RateLimited | SendFailed | Refused


def _live_code(session: Session, invitation: Invitation) -> VerificationCode | None:
    return session.execute(
        select(VerificationCode)
        .where(VerificationCode.invitation_id == invitation.id, VerificationCode.ended_at.is_(None))
        .order_by(VerificationCode.created_at.desc(), VerificationCode.id.desc())
        .limit(1)
    ).scalar_one_or_none()


def code_state(session: Session, invitation: Invitation, *, now: datetime) -> CodeState:
    recent = list(
        session.execute(
            select(VerificationCode.created_at)
            .where(
                VerificationCode.invitation_id == invitation.id,
                VerificationCode.created_at > now - timedelta(hours=1),
            )
            .order_by(VerificationCode.created_at)
        ).scalars()
    )
    wait = timedelta(0)
    if recent:
        wait = max(wait, recent[-1] + RESEND_COOLDOWN - now)
    if len(recent) >= CODES_PER_HOUR:
        wait = max(wait, recent[-CODES_PER_HOUR] + timedelta(hours=1) - now)
    code = _live_code(session, invitation)
    if code is not None and code.expires_at <= now:
        code = None
    return CodeState(
        code=code,
        resend_in=wait,
        sent_this_hour=len(recent),
        failures_left=max(0, MAX_CODE_FAILURES - invitation.code_failures),
    )


def _code_hash(app: Blink, invitation: Invitation, phone: str, code: str) -> str:
    # Keyed: six digits are a million guesses for anyone holding a plain hash.
    return app.secrets.keyed_hash(f"enrollment-code:{invitation.id}:{phone}:{code}")


def _end(code: VerificationCode, outcome: str, now: datetime) -> None:
    code.ended_at, code.outcome = now, outcome


def _actor(invitation: Invitation) -> str:
    return f"enrollment:user:{invitation.user_id}"


def _audit(session: Session, invitation: Invitation, action: str, **detail: Any) -> None:
    audit.record(
        session,
        action,
        actor=_actor(invitation),
        client_id=invitation.user.client_id,
        user_id=invitation.user_id,
        invitation_id=invitation.id,
        **detail,
    )


def submit_number(
    app: Blink,
    session: Session,
    invitation: Invitation,
    raw: str,
    region: str,
    *,
    now: datetime,
    ip: str | None = None,
) -> SendOutcome:
    """Step 1: check the number and text it a code. Commits."""
    parsed = parse_mobile(raw, region)
    if not isinstance(parsed, NumberProblem) and not _allowed(invitation.user.client, parsed):
        parsed = NumberProblem.COUNTRY
    if not isinstance(parsed, NumberProblem) and invitation.user.client.binding_policy == (
        BindingPolicy.DIRECTORY
    ):
        try:
            on_file = _directory_mobile(app, invitation.user)
        except DirectoryError as err:
            log.warning("directory unavailable for the binding policy", error=type(err).__name__)
            return SendFailed(permanent=False)
        if on_file != parsed:
            invitation.code_failures += 1  # a few tries, not an oracle of the user's number
            parsed = NumberProblem.NOT_ON_FILE
            if invitation.code_failures >= MAX_CODE_FAILURES:
                _audit(session, invitation, "enrollment.locked")
    if isinstance(parsed, NumberProblem):
        _audit(session, invitation, "enrollment.number_refused", reason=parsed.value)
        session.commit()
        return Refused(parsed)
    invitation.phone = parsed
    return send_code(app, session, invitation, now=now, ip=ip)


def send_code(  # noqa: PLR0911 - one return per limit reads best
    app: Blink, session: Session, invitation: Invitation, *, now: datetime, ip: str | None = None
) -> SendOutcome:
    """Text a new code to the invitation's candidate number, within the limits. Commits.

    A number bound to somebody goes through the same limits, then gets a decoy."""
    phone = invitation.phone
    if phone is None:
        return Refused(NumberProblem.EMPTY)
    if not _allowed(invitation.user.client, phone):  # the client's list changed since
        return Refused(NumberProblem.COUNTRY)
    settings = app.settings
    cooldown = timedelta(seconds=settings.enrollment_breaker_seconds)
    if throttle.tripped(session, BREAKER, cooldown=cooldown, now=now):
        _audit(session, invitation, "enrollment.code_rate_limited", scope="breaker")
        session.commit()
        return SendFailed(permanent=False)
    state = code_state(session, invitation, now=now)
    if state.resend_in > timedelta(0):
        _audit(session, invitation, "enrollment.code_rate_limited", scope="invitation")
        session.commit()
        return RateLimited(state.resend_in)
    if not throttle.allow(
        session,
        f"enroll-code:{app.secrets.keyed_hash(phone)}",
        limit=CODES_PER_NUMBER_PER_DAY,
        window=timedelta(days=1),
        now=now,
    ):
        _audit(session, invitation, "enrollment.code_rate_limited", scope="number")
        session.commit()
        return RateLimited(timedelta(days=1), per_number=True)
    hour = timedelta(hours=1)
    for scope, key, limit in (
        (
            "address",
            f"enroll-ip:{app.secrets.keyed_hash(ip or 'unknown')}",
            settings.enrollment_codes_per_ip,
        ),
        (
            "client",
            f"enroll-client:{invitation.user.client_id}",
            settings.enrollment_codes_per_client,
        ),
    ):
        if not throttle.allow(session, key, limit=limit, window=hour, now=now):
            _audit(session, invitation, "enrollment.code_rate_limited", scope=scope)
            session.commit()
            return RateLimited(hour)
    if not throttle.allow(
        session,
        "enroll-all",
        limit=settings.enrollment_codes_per_minute,
        window=timedelta(minutes=1),
        now=now,
    ):
        _trip_breaker(session, invitation, settings.enrollment_codes_per_minute, cooldown, now)
        return SendFailed(permanent=False)
    previous = _live_code(session, invitation)
    if previous is not None:
        _end(previous, "replaced", now)
    if _bound_elsewhere(session, invitation, phone):
        return _decoy(app, session, invitation, phone, now=now)
    code = f"{secrets.randbelow(10**CODE_DIGITS):0{CODE_DIGITS}d}"
    record = VerificationCode(
        invitation_id=invitation.id,
        phone=phone,
        code_hash=_code_hash(app, invitation, phone, code),
        created_at=now,
        expires_at=now + CODE_TTL,
    )
    session.add(record)
    session.flush()
    _audit(session, invitation, "enrollment.code_sent", code_id=record.id, phone=mask_phone(phone))
    session.commit()
    body = translate(language_of(invitation.user), texts.VERIFICATION_CODE, code=code)
    del code
    try:
        _text_candidate(app, session, invitation, phone, body)
    except SmsError as err:
        _end(record, "not_sent", utcnow())
        _audit(session, invitation, "enrollment.code_not_sent", error_code=error_code_of(err))
        session.commit()
        log.warning("verification code not sent", error_code=error_code_of(err))
        return SendFailed(permanent=err.permanent)
    return CodeSent(record.id)


def _trip_breaker(
    session: Session, invitation: Invitation, limit: int, cooldown: timedelta, now: datetime
) -> None:
    """More codes a minute than ``limit`` over all clients: stop them all, tell the operator."""
    throttle.trip(session, BREAKER, now=now)
    audit.record(
        session,
        "enrollment.breaker_tripped",
        actor="system",
        per_minute=limit,
        cooldown_seconds=int(cooldown.total_seconds()),
        client_id_at_trip=invitation.user.client_id,
    )
    session.commit()
    log.error(
        "enrollment code breaker tripped: no codes are sent until it cools down",
        per_minute=limit,
        cooldown_seconds=int(cooldown.total_seconds()),
    )


def _bound_elsewhere(session: Session, invitation: Invitation, phone: str) -> bool:
    return (
        session.execute(
            select(User.id).where(User.phone == phone, User.id != invitation.user_id)
        ).first()
        is not None
    )


def _decoy(
    app: Blink, session: Session, invitation: Invitation, phone: str, *, now: datetime
) -> CodeSent:
    """A number bound to somebody: answer as if a code went out, text nothing.

    The stored hash is of 32 random bytes, never of six digits, so no code the user
    types can match it: every try is a wrong code. Within the same limits as a real
    code, so the limits cannot tell the two apart either."""
    record = VerificationCode(
        invitation_id=invitation.id,
        phone=phone,
        code_hash=app.secrets.keyed_hash(f"enrollment-decoy:{secrets.token_hex(32)}"),
        created_at=now,
        expires_at=now + CODE_TTL,
    )
    session.add(record)
    session.flush()
    _audit(
        session,
        invitation,
        "enrollment.number_refused",
        reason=NumberProblem.TAKEN.value,
        code_id=record.id,
        phone=mask_phone(phone),
    )
    session.commit()
    log.info("number bound elsewhere: no code sent", invitation_id=invitation.id)
    return CodeSent(record.id)


def _text_candidate(
    app: Blink, session: Session, invitation: Invitation, phone: str, body: str
) -> None:
    """Text a number that is not bound yet: the one exception to "enrolled numbers only",
    allowed for a code tied to an open activation link and limited by :func:`send_code`."""
    deliver(
        app,
        session,
        to=phone,
        client=invitation.user.client,
        body=body,
        purpose="verification",
        user_id=invitation.user_id,
    )


# --- the code and the binding -----------------------------------------------------------------


class CodeProblem(StrEnum):
    MALFORMED = "malformed"  # not six digits: not counted as a try
    WRONG = "wrong"
    EXPIRED = "expired"
    NO_CODE = "no_code"
    LOCKED = "locked"
    TAKEN = "taken"  # somebody bound the number first


@dataclass(frozen=True)
class CodeRejected:
    problem: CodeProblem
    failures_left: int = 0


@dataclass(frozen=True)
class PinRejected:
    """The code was not checked: the PIN chosen with it is refused first."""

    problem: pins.PinProblem


@dataclass(frozen=True)
class Bound:
    user_id: int


@dataclass(frozen=True)
class AwaitingApproval:
    """Policy "approval": the code was right; an admin now approves the binding."""


VerifyOutcome = Bound | CodeRejected | PinRejected | AwaitingApproval


def verify_code(  # noqa: PLR0911 - one return per outcome reads best
    app: Blink,
    session: Session,
    invitation: Invitation,
    raw: str,
    *,
    now: datetime,
    pin: str | None = None,
    pin_again: str | None = None,
) -> VerifyOutcome:
    """Step 2: check the code (and the reset PIN chosen with it, where the client asks
    for one); on success bind the phone, set the PIN and use the invitation. Commits."""
    digits = re.sub(r"[\s-]", "", raw)
    left = MAX_CODE_FAILURES - invitation.code_failures
    if left <= 0:
        return CodeRejected(CodeProblem.LOCKED)
    code = _live_code(session, invitation)
    if code is None:
        return CodeRejected(CodeProblem.NO_CODE, left)
    if code.expires_at <= now:
        _end(code, "expired", now)
        _audit(session, invitation, "enrollment.code_expired", code_id=code.id)
        session.commit()
        return CodeRejected(CodeProblem.EXPIRED, left)
    if not re.fullmatch(rf"\d{{{CODE_DIGITS}}}", digits):
        return CodeRejected(CodeProblem.MALFORMED, left)
    chosen = pins.choose(pin, pin_again, policy=invitation.user.client.reset_pin)
    if isinstance(chosen, pins.PinProblem):
        _audit(session, invitation, "enrollment.pin_refused", reason=chosen.value)
        session.commit()
        return PinRejected(chosen)
    expected = _code_hash(app, invitation, code.phone, digits)
    if not hmac.compare_digest(expected, code.code_hash):
        invitation.code_failures += 1
        left -= 1
        _audit(session, invitation, "enrollment.code_rejected", code_id=code.id, tries_left=left)
        if left <= 0:
            _end(code, "failed", now)
            _audit(session, invitation, "enrollment.locked")
            session.commit()
            return CodeRejected(CodeProblem.LOCKED)
        session.commit()
        return CodeRejected(CodeProblem.WRONG, left)
    if invitation.user.client.binding_policy == BindingPolicy.APPROVAL:
        _end(code, "used", now)
        invitation.phone, invitation.approval_requested_at = code.phone, now
        _audit(session, invitation, "enrollment.approval_requested", phone=mask_phone(code.phone))
        # Set now, unusable until the phone is bound: approval binds the phone alone.
        pins.set_at_enrollment(session, invitation.user, chosen, actor=_actor(invitation))
        session.commit()
        return AwaitingApproval()
    return _bind(app, session, invitation, code, chosen, now=now)


def _bind(
    app: Blink,
    session: Session,
    invitation: Invitation,
    code: VerificationCode,
    pin: str | None,
    *,
    now: datetime,
) -> VerifyOutcome:
    if not _set_phone(session, invitation.user, code.phone):
        _end(code, "taken", now)
        _audit(session, invitation, "enrollment.number_refused", reason=NumberProblem.TAKEN.value)
        session.commit()
        return CodeRejected(CodeProblem.TAKEN)
    _end(code, "used", now)
    pins.set_at_enrollment(session, invitation.user, pin, actor=_actor(invitation))
    _bound(app, session, invitation, code.phone, now=now)
    return Bound(invitation.user_id)


def _set_phone(session: Session, user: User, phone: str) -> bool:
    """Bind ``phone``; False when the unique constraint says somebody bound it first."""
    try:
        with session.begin_nested():
            user.phone, user.status = phone, UserStatus.ACTIVE
            session.flush()
    except IntegrityError:
        session.refresh(user)
        return False
    return True


def _bound(
    app: Blink, session: Session, invitation: Invitation, phone: str, *, now: datetime
) -> None:
    """After the UPDATE: use the link, record, commit, and tell the user."""
    user = invitation.user
    invitation.used_at = now
    _audit(session, invitation, "enrollment.phone_bound", phone=mask_phone(phone))
    session.commit()
    log.info("phone bound", user_id=user.id)
    _welcome(app, session, user, invitation.id)
    text_previous_phone(app, session, user)  # the number Reset User unbound, if another


# --- approval (policy "approval") -------------------------------------------------------------


def awaiting_approval(invitation: Invitation) -> bool:
    return invitation.approval_requested_at is not None and invitation.approved_at is None


def pending_binding(session: Session, user: User) -> Invitation | None:
    """The user's confirmed binding that waits for an admin, if any."""
    return session.execute(
        select(Invitation)
        .where(
            Invitation.user_id == user.id,
            Invitation.approval_requested_at.is_not(None),
            Invitation.approved_at.is_(None),
            Invitation.used_at.is_(None),
            Invitation.revoked_at.is_(None),
        )
        .order_by(Invitation.id.desc())
        .limit(1)
    ).scalar_one_or_none()


def _pending_for(session: Session, actor: Actor, user: User) -> Invitation:
    if not actor.sees(user.client_id):
        raise NotFound("user")
    actor.require(Permission.MANAGE_USERS)
    invitation = pending_binding(session, user)
    if invitation is None or invitation.phone is None:
        raise Conflict(f"{user.username}: no phone binding waits for approval")
    return invitation


def approve_binding(app: Blink, session: Session, actor: Actor, user: User) -> str:
    """Bind the phone the user confirmed, send the welcome SMS and the email. Commits.

    Returns the masked number. ``Conflict`` when nothing waits, the user is disabled,
    or somebody else bound the number meanwhile."""
    invitation = _pending_for(session, actor, user)
    phone = invitation.phone or ""
    if user.status is UserStatus.DISABLED:
        raise Conflict(f"{user.username} is disabled: enable the user, or reject the binding")
    if not _set_phone(session, user, phone):
        raise Conflict("another user has bound this number since: reject the binding")
    now = utcnow()
    invitation.approved_at, invitation.approved_by = now, actor.label
    audit.record(
        session,
        "enrollment.binding_approved",
        actor=actor,
        client_id=user.client_id,
        user_id=user.id,
        invitation_id=invitation.id,
        phone=mask_phone(phone),
    )
    _bound(app, session, invitation, phone, now=now)
    return mask_phone(phone) or ""


def reject_binding(session: Session, actor: Actor, user: User) -> str:
    """Refuse the waiting binding: the link is revoked, the phone stays unbound. Commits."""
    invitation = _pending_for(session, actor, user)
    invitation.revoked_at, invitation.revoked_reason = utcnow(), "binding_rejected"
    pins.clear(user)  # chosen with the rejected binding
    audit.record(
        session,
        "enrollment.binding_rejected",
        actor=actor,
        client_id=user.client_id,
        user_id=user.id,
        invitation_id=invitation.id,
        phone=mask_phone(invitation.phone),
    )
    session.commit()
    return mask_phone(invitation.phone) or ""


def _welcome(app: Blink, session: Session, user: User, invitation_id: int) -> None:
    """The welcome SMS from the gateway number, and the "a phone was bound" email."""
    try:
        welcome = texts.WELCOME_PIN if user.pin_hash else texts.WELCOME
        send_sms(app, session, user, translate(language_of(user), welcome), purpose="welcome")
    except SmsError as err:
        log.warning("welcome SMS not sent", error_code=error_code_of(err))
    try:
        app.queue.enqueue(
            EMAIL_QUEUE,
            send_phone_bound_email,
            invitation_id,
            job_id=f"phone-bound-{invitation_id}",
        )
    except Exception as err:  # Redis down: the binding stands; the log says what was missed
        log.error("cannot enqueue the phone-bound email", error=type(err).__name__)
