"""Admin console accounts: create and invite, set-up links, passwords, sign-in, management.

The console's pages sit on these functions; the second factor (TOTP, recovery codes,
passkeys) is in :mod:`blink_sms.services.second_factor`.

Set-up links: the token is 32 random bytes; only its SHA-256 is stored (in an
``AdminToken`` with purpose ``"setup"``), so the database cannot rebuild a link. A link
works once and for :data:`SETUP_HOURS`; :func:`check_setup_token` only looks (a mail
scanner opening the link changes nothing), :func:`complete_setup` consumes it.

Passwords are argon2id hashes (one module-level :class:`~argon2.PasswordHasher`);
a hash made with older parameters is replaced at the next sign-in. Sign-in failures are
throttled per typed email address (so unknown addresses are throttled alike) and per IP
address, with the existing fixed-window counters under keyed hashes.
"""

from __future__ import annotations

import functools
import hashlib
import math
import secrets
from datetime import datetime, timedelta
from typing import Any, Literal, cast

import structlog
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import CursorResult, Result, delete, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from ..actors import Actor, Permission, Role, admin_actor
from ..context import Blink
from ..messaging.email import EMAIL_ADDRESS, EmailError, OutgoingEmail
from ..models import Admin, AdminToken, Client, SmsThrottle, utcnow
from . import audit, throttle
from .errors import Conflict, Invalid
from .scope import NotFound

log = structlog.get_logger(__name__)

SETUP_HOURS = 72
SETUP_PURPOSE = "setup"
TOKEN_BYTES = 32
PASSWORD_MIN = 12
PASSWORD_MAX = 256  # argon2 takes any length; the cap keeps a form post from costing more

# Failures within one fixed window. Per account: 5 wrong passwords make a guesser wait
# 15 minutes (~500 guesses a day at most) while a person who mistypes a few times is
# not stopped. Per IP: 20, so one address cannot spray many accounts, yet an MSP's
# office behind one NAT address is not locked out by a few colleagues' typos.
ACCOUNT_FAILURES = 5
IP_FAILURES = 20
THROTTLE_WINDOW = timedelta(minutes=15)

# One hasher for the process: its parameters (argon2id, RFC 9106 low-memory profile)
# are what ``check_needs_rehash`` compares stored hashes against.
HASHER = PasswordHasher()


TokenReason = Literal["expired", "used", "unknown"]
SignInReason = Literal["credentials", "throttled", "disabled"]

# What the console shows; the same words for every way a link or a sign-in fails alike.
TOKEN_MESSAGES: dict[TokenReason, str] = {
    "expired": "this set-up link has expired: ask an MSP owner for a new one",
    "used": "this set-up link was used already: sign in, or ask for a new link",
    "unknown": "this set-up link is not valid: check that it was copied whole",
}
SIGN_IN_MESSAGES: dict[SignInReason, str] = {
    "credentials": "wrong email address or password",
    "throttled": "too many failed attempts: try again later",
    "disabled": "this account is disabled: ask an MSP owner",
}


class TokenInvalid(Exception):
    """A set-up link that does not work: ``reason`` is "expired", "used" or "unknown"."""

    def __init__(self, reason: TokenReason) -> None:
        super().__init__(TOKEN_MESSAGES[reason])
        self.reason: TokenReason = reason
        self.message = TOKEN_MESSAGES[reason]


class SignInRefused(Exception):
    """A refused sign-in or second factor. ``reason`` is "credentials" (wrong email or
    password, one message for both), "throttled" (``retry_after`` seconds) or "disabled"."""

    def __init__(self, reason: SignInReason, retry_after: int | None = None) -> None:
        super().__init__(SIGN_IN_MESSAGES[reason])
        self.reason: SignInReason = reason
        self.message = SIGN_IN_MESSAGES[reason]  # what the console shows
        self.retry_after = retry_after


# --- helpers shared with second_factor ---------------------------------------------------------


def token_hash(token: str) -> str:
    """The stored form of a link token (256 random bits: a plain SHA-256 is enough)."""
    return hashlib.sha256(token.encode("ascii", "replace")).hexdigest()


def actor_for(admin: Admin, source: str | None = None) -> Actor:
    """The actor a signed-in admin acts as (``source``: the request's IP address)."""
    return admin_actor(admin.id, admin.email, admin.role, admin.client_id, source)


def throttled_for(session: Session, key: str, *, limit: int, now: datetime) -> int | None:
    """Seconds until ``key``'s window ends if ``limit`` failures fill it, else None.

    Looks without counting: only failures are counted (:func:`count_failure`)."""
    row = session.get(SmsThrottle, key)
    if row is None or row.count < limit:
        return None
    left = row.window_start + THROTTLE_WINDOW - now
    if left <= timedelta(0):
        return None
    return max(1, math.ceil(left.total_seconds()))


def count_failure(session: Session, key: str, *, limit: int, now: datetime) -> None:
    """Count one failure of ``key`` in the current window."""
    throttle.allow(session, key, limit=limit, window=THROTTLE_WINDOW, now=now)


def rowcount(result: Result[Any]) -> int:
    """How many rows an UPDATE or DELETE matched."""
    return cast(CursorResult[Any], result).rowcount


def forget_failures(session: Session, key: str) -> None:
    session.execute(delete(SmsThrottle).where(SmsThrottle.key == key))


def audit_admin(
    session: Session, action: str, actor: Actor | str, admin: Admin, **detail: Any
) -> None:
    """One audit event about ``admin`` (under its client, if it has one)."""
    audit.record(
        session,
        action,
        actor=actor,
        client_id=admin.client_id,
        admin_id=admin.id,
        email=admin.email,
        **detail,
    )


# --- creating accounts and set-up links --------------------------------------------------------


def _normalise_email(email: str) -> str:
    email = email.strip().casefold()
    if len(email) > 320 or not EMAIL_ADDRESS.fullmatch(email):
        raise Invalid("email", "not an email address")
    return email


def _check_role(role: Role, client: Client | None) -> None:
    if role.msp and client is not None:
        raise Invalid("client", f"an {role.display} works for the MSP, not for one client")
    if role is Role.CLIENT_ADMIN and client is None:
        raise Invalid("client", "a client admin needs a client")


def _issue_setup_token(session: Session, admin: Admin, now: datetime) -> tuple[str, AdminToken]:
    """A new set-up token for ``admin``; open older ones stop working (superseded)."""
    session.execute(
        delete(AdminToken).where(
            AdminToken.admin_id == admin.id,
            AdminToken.purpose == SETUP_PURPOSE,
            AdminToken.used_at.is_(None),
        )
    )
    token = secrets.token_urlsafe(TOKEN_BYTES)
    row = AdminToken(
        admin_id=admin.id,
        purpose=SETUP_PURPOSE,
        token_hash=token_hash(token),
        created_at=now,
        expires_at=now + timedelta(hours=SETUP_HOURS),
    )
    session.add(row)
    session.flush()
    return token, row


def setup_url(app: Blink, token: str) -> str:
    return f"{app.settings.public_url}/admin/setup/{token}"


def _new_admin(
    session: Session,
    actor: Actor,
    *,
    email: str,
    role: Role,
    client: Client | None,
    name: str,
    delivery: str,
) -> tuple[Admin, str]:
    actor.require(Permission.MANAGE_ADMINS)
    email = _normalise_email(email)
    name = name.strip()
    if len(name) > 200:
        raise Invalid("name", "at most 200 characters")
    _check_role(role, client)
    if session.execute(select(Admin.id).where(Admin.email == email)).first() is not None:
        raise Invalid("email", "an admin with this email address exists already")
    now = utcnow()
    admin = Admin(
        email=email,
        name=name,
        role=role,
        client_id=client.id if client else None,
        session_epoch=0,
        created_at=now,
    )
    try:
        with session.begin_nested():
            session.add(admin)
    except IntegrityError:  # created at the same moment by someone else
        raise Invalid("email", "an admin with this email address exists already") from None
    token, _ = _issue_setup_token(session, admin, now)
    audit_admin(session, "admin.created", actor, admin, role=role.value, delivery=delivery)
    return admin, token


def create_admin(
    app: Blink,
    session: Session,
    actor: Actor,
    *,
    email: str,
    role: Role,
    client: Client | None = None,
    name: str = "",
) -> tuple[Admin, str]:
    """Create an admin account and return it with its one-time set-up URL. Commits.

    The URL is shown once (to the operator who hands it over); it works once, for
    :data:`SETUP_HOURS` hours. MSP roles have no client; a client admin must have one;
    an auditor may have one (then sees only that client).
    """
    admin, token = _new_admin(
        session, actor, email=email, role=role, client=client, name=name, delivery="link"
    )
    session.commit()
    return admin, setup_url(app, token)


def invite_admin(
    app: Blink,
    session: Session,
    actor: Actor,
    *,
    email: str,
    role: Role,
    client: Client | None = None,
    name: str = "",
) -> Admin:
    """Create an admin account and email them the set-up link. Commits.

    The email is sent in this process, after the commit (an SMTP exchange must not hold
    the database's write lock). If it fails, the link is withdrawn (it reached nobody),
    the account stays, and :class:`Conflict` says to :func:`resend_invitation`.
    """
    actor.require(Permission.MANAGE_ADMINS)
    if app.email is None:
        raise Conflict(
            "email is off (set BLINK_SMTP_URL and BLINK_MAIL_FROM): create the admin"
            " with a set-up link instead and hand it over yourself"
        )
    admin, token = _new_admin(
        session, actor, email=email, role=role, client=client, name=name, delivery="email"
    )
    session.commit()
    _send_invitation(app, session, actor, admin, token)
    return admin


def resend_invitation(app: Blink, session: Session, actor: Actor, admin: Admin) -> None:
    """Email ``admin`` a new set-up link; earlier links stop working. Commits."""
    actor.require(Permission.MANAGE_ADMINS)
    if app.email is None:
        raise Conflict("email is off (set BLINK_SMTP_URL and BLINK_MAIL_FROM)")
    if admin.disabled_at is not None:
        raise Conflict(f"{admin.email} is disabled: enable the account first")
    token, _ = _issue_setup_token(session, admin, utcnow())
    audit_admin(session, "admin.setup_link_issued", actor, admin, delivery="email")
    session.commit()
    _send_invitation(app, session, actor, admin, token)


def _send_invitation(app: Blink, session: Session, actor: Actor, admin: Admin, token: str) -> None:
    assert app.email is not None  # checked by the callers before anything was created
    message = OutgoingEmail(
        to=admin.email,
        subject="Your Blink SMS console account",
        text=(
            f"Hello{' ' + admin.name if admin.name else ''},\n\n"
            f"You have an account on the Blink SMS console ({admin.role.display}).\n"
            f"Choose your password here (the link works once, for {SETUP_HOURS} hours):\n\n"
            f"{setup_url(app, token)}\n\n"
            "If you did not expect this email, you can ignore it.\n"
        ),
        from_name="Blink SMS",
    )
    del token
    try:
        app.email.send(message)
    except EmailError as err:
        session.execute(
            delete(AdminToken).where(AdminToken.admin_id == admin.id, AdminToken.used_at.is_(None))
        )
        audit_admin(session, "admin.invitation_email_failed", actor, admin, error=err.message[:200])
        session.commit()
        log.error("admin invitation email failed", admin_id=admin.id, error=err.message)
        raise Conflict(
            f"the account for {admin.email} exists, but the email could not be sent"
            f" ({err.message}): send the invitation again later"
        ) from None
    audit_admin(session, "admin.invitation_email_sent", actor, admin)
    session.commit()


def new_setup_link(app: Blink, session: Session, actor: Actor, admin: Admin) -> str:
    """A fresh set-up URL for ``admin`` to hand over; earlier links stop working. Commits."""
    actor.require(Permission.MANAGE_ADMINS)
    if admin.disabled_at is not None:
        raise Conflict(f"{admin.email} is disabled: enable the account first")
    token, _ = _issue_setup_token(session, admin, utcnow())
    audit_admin(session, "admin.setup_link_issued", actor, admin, delivery="link")
    session.commit()
    return setup_url(app, token)


def check_setup_token(session: Session, token: str) -> AdminToken:
    """The open set-up token for ``token``, or :class:`TokenInvalid`. Consumes nothing:
    the console shows its form on GET with this, and acts only on POST."""
    row = session.execute(
        select(AdminToken).where(
            AdminToken.token_hash == token_hash(token), AdminToken.purpose == SETUP_PURPOSE
        )
    ).scalar_one_or_none()
    if row is None:
        raise TokenInvalid("unknown")
    if row.used_at is not None:
        raise TokenInvalid("used")
    if row.expires_at <= utcnow():
        raise TokenInvalid("expired")
    return row


def check_password(password: str, email: str) -> None:
    """Raise :class:`Invalid` ("password") unless ``password`` meets the policy."""
    if len(password) > PASSWORD_MAX:
        raise Invalid("password", f"use at most {PASSWORD_MAX} characters")
    if len(password) < PASSWORD_MIN:
        raise Invalid("password", f"use at least {PASSWORD_MIN} characters")
    local = email.partition("@")[0].casefold()
    # A one- or two-letter name would forbid most passwords while protecting nothing.
    if len(local) >= 3 and local in password.casefold():
        raise Invalid("password", "do not use your email address (or its name part) in it")


def complete_setup(app: Blink, session: Session, token: str, password: str) -> Admin:
    """Set the admin's password from a set-up link and use the link up. Commits.

    The policy is checked before the link is consumed, so a refused password can be
    corrected with the same link. Raises :class:`TokenInvalid` or :class:`Invalid`.
    """
    row = check_setup_token(session, token)
    admin = session.get(Admin, row.admin_id)
    if admin is None or admin.disabled_at is not None:
        raise TokenInvalid("unknown")
    check_password(password, admin.email)
    now = utcnow()
    # The conditional UPDATE makes the link single-use even for two posts at once.
    used = session.execute(
        update(AdminToken)
        .where(AdminToken.id == row.id, AdminToken.used_at.is_(None))
        .values(used_at=now)
        .execution_options(synchronize_session=False)
    )
    if rowcount(used) != 1:
        session.rollback()
        raise TokenInvalid("used")
    set_committed_value(row, "used_at", now)  # what the UPDATE wrote, for later reads
    admin.password_hash = HASHER.hash(password)
    audit_admin(session, "admin.setup_completed", actor_for(admin), admin)
    session.commit()
    return admin


# --- signing in ----------------------------------------------------------------------------------


@functools.cache
def _dummy_hash() -> str:
    """A hash to verify against when there is no account: an unknown email address
    then costs the same time as a wrong password."""
    return HASHER.hash(secrets.token_urlsafe(16))


def _verify(password_hash: str | None, password: str) -> bool:
    try:
        return HASHER.verify(password_hash or _dummy_hash(), password) and bool(password_hash)
    except (VerificationError, InvalidHashError):
        return False


def authenticate(
    app: Blink, session: Session, *, email: str, password: str, ip: str | None
) -> Admin:
    """Check an email address and password; the admin, or :class:`SignInRefused`. Commits.

    The second factor is the caller's next step (:func:`second_factor.needs_second_factor`).
    Only failures count toward the limits; a success clears the account's count, not
    the IP address's. A disabled account is named only after the right password.
    """
    _dummy_hash()  # made once per process, before the first timing an attacker can see
    now = utcnow()
    typed = email.strip().casefold()
    account_key = "admin-signin:" + app.secrets.keyed_hash(typed)
    ip_key = "admin-signin-ip:" + app.secrets.keyed_hash(ip) if ip else None
    waits = [
        throttled_for(session, account_key, limit=ACCOUNT_FAILURES, now=now),
        throttled_for(session, ip_key, limit=IP_FAILURES, now=now) if ip_key else None,
    ]
    if any(waits):
        log.warning("admin sign-in throttled", source=ip)
        raise SignInRefused("throttled", retry_after=max(w or 0 for w in waits))
    admin = session.execute(select(Admin).where(Admin.email == typed)).scalar_one_or_none()
    if not _verify(admin.password_hash if admin else None, password):
        count_failure(session, account_key, limit=ACCOUNT_FAILURES, now=now)
        if ip_key:
            count_failure(session, ip_key, limit=IP_FAILURES, now=now)
        if admin is None:  # what was typed may be a password: not recorded
            audit.record(
                session, "admin.sign_in_failed", actor="anonymous", account="unknown", source=ip
            )
        else:
            audit_admin(session, "admin.sign_in_failed", "anonymous", admin, source=ip)
        session.commit()
        raise SignInRefused("credentials")
    assert admin is not None and admin.password_hash is not None  # _verify passed
    if admin.disabled_at is not None:
        audit_admin(
            session, "admin.sign_in_failed", "anonymous", admin, reason="disabled", source=ip
        )
        session.commit()
        raise SignInRefused("disabled")
    if HASHER.check_needs_rehash(admin.password_hash):
        admin.password_hash = HASHER.hash(password)
    admin.last_sign_in_at = now
    forget_failures(session, account_key)
    audit_admin(session, "admin.signed_in", actor_for(admin, ip), admin)
    session.commit()
    return admin


# --- sessions ----------------------------------------------------------------------------------


def session_is_current(admin: Admin, epoch: int) -> bool:
    """Whether a console session made at ``epoch`` still holds (not signed out
    everywhere since, and the account not disabled)."""
    return admin.disabled_at is None and admin.session_epoch == epoch


def sign_out_everywhere(session: Session, actor: Actor, admin: Admin) -> int:
    """End every console session of ``admin`` (their own, or an owner's decision).
    Returns the new epoch. Commits."""
    if actor.admin_id != admin.id:
        actor.require(Permission.MANAGE_ADMINS)
    admin.session_epoch += 1
    audit_admin(session, "admin.signed_out_everywhere", actor, admin)
    session.commit()
    return admin.session_epoch


# --- managing accounts -------------------------------------------------------------------------


def list_admins(session: Session, actor: Actor) -> list[Admin]:
    """Every admin account, by email address (MSP owners only)."""
    actor.require(Permission.MANAGE_ADMINS)
    return list(session.execute(select(Admin).order_by(Admin.email)).scalars())


def get_admin(session: Session, actor: Actor, admin_id: int) -> Admin:
    """The admin with ``admin_id`` (MSP owners only), or :class:`NotFound`."""
    actor.require(Permission.MANAGE_ADMINS)
    admin = session.get(Admin, admin_id)
    if admin is None:
        raise NotFound("admin")
    return admin


def find_admin(session: Session, actor: Actor, email: str) -> Admin:
    """The admin with ``email`` (any case; MSP owners only), or :class:`NotFound`."""
    actor.require(Permission.MANAGE_ADMINS)
    admin = session.execute(
        select(Admin).where(Admin.email == email.strip().casefold())
    ).scalar_one_or_none()
    if admin is None:
        raise NotFound("admin")
    return admin


def _active_owner(admin: Admin) -> bool:
    """An owner who can sign in: not disabled, set-up finished."""
    return (
        admin.role is Role.MSP_OWNER
        and admin.disabled_at is None
        and admin.password_hash is not None
    )


def _keep_an_owner(session: Session, admin: Admin) -> None:
    """Refuse to take ``admin`` away if no other owner who can sign in would be left."""
    if not _active_owner(admin):
        return
    # Locking every other active owner serialises two owners removing each other.
    others = session.execute(
        select(Admin.id)
        .where(
            Admin.role == Role.MSP_OWNER,
            Admin.disabled_at.is_(None),
            Admin.password_hash.is_not(None),
            Admin.id != admin.id,
        )
        .with_for_update()
    ).all()
    if not others:
        raise Conflict(
            f"{admin.email} is the last active MSP owner: make another admin an owner first"
        )


def change_role(
    session: Session, actor: Actor, admin: Admin, role: Role, *, client: Client | None = None
) -> bool:
    """Give ``admin`` another role (and client). Commits; False when nothing changed.

    Their sessions end: the next request signs in with the new rights."""
    actor.require(Permission.MANAGE_ADMINS)
    _check_role(role, client)
    client_id = client.id if client else None
    if admin.role is role and admin.client_id == client_id:
        return False
    if role is not Role.MSP_OWNER:
        _keep_an_owner(session, admin)
    before = admin.role
    admin.role, admin.client_id = role, client_id
    admin.session_epoch += 1
    audit_admin(session, "admin.role_changed", actor, admin, role=role.value, previous=before.value)
    session.commit()
    return True


def disable_admin(session: Session, actor: Actor, admin: Admin, *, disabled: bool = True) -> bool:
    """Disable an account (its sessions end, open set-up links stop working), or enable it
    again. Commits; False when nothing changed."""
    actor.require(Permission.MANAGE_ADMINS)
    if (admin.disabled_at is not None) == disabled:
        return False
    if disabled:
        if actor.admin_id == admin.id:
            raise Conflict("you cannot disable your own account")
        _keep_an_owner(session, admin)
        admin.disabled_at = utcnow()
        admin.session_epoch += 1
        session.execute(
            delete(AdminToken).where(AdminToken.admin_id == admin.id, AdminToken.used_at.is_(None))
        )
    else:
        admin.disabled_at = None
    audit_admin(session, "admin.disabled" if disabled else "admin.enabled", actor, admin)
    session.commit()
    return True


def remove_admin(session: Session, actor: Actor, admin: Admin) -> None:
    """Delete an account with its links and second factors (the audit stays). Commits."""
    actor.require(Permission.MANAGE_ADMINS)
    if actor.admin_id == admin.id:
        raise Conflict("you cannot remove your own account")
    _keep_an_owner(session, admin)
    audit_admin(session, "admin.removed", actor, admin, role=admin.role.value)
    session.execute(delete(Admin).where(Admin.id == admin.id))
    session.commit()
    session.expunge(admin)
