"""The second factor of a console sign-in: an authenticator app (TOTP), recovery codes and
passkeys (WebAuthn).

An authenticator app is the base factor: MSP roles must have one; other roles may,
and once they do it is required. Confirming it issues ten recovery codes (shown once;
only their SHA-256 is stored). Passkeys are a second option for an admin who has the app
(as GitHub once required), so whether a factor is due is known from the ``Admin`` row.

The TOTP secret is stored encrypted (:class:`~blink_sms.crypto.SecretBox`); a code's time
step is never accepted twice (``Admin.totp_last_step``, moved forward by a conditional
UPDATE, so even two posts at once cannot both pass). Failures of any second factor are
throttled per account, like passwords.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

import pyotp
import segno
from sqlalchemy import delete, func, or_, select, update
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value
from webauthn import (
    generate_authentication_options,
    generate_registration_options,
    options_to_json,
    verify_authentication_response,
    verify_registration_response,
)
from webauthn.helpers import base64url_to_bytes, bytes_to_base64url
from webauthn.helpers.exceptions import WebAuthnException
from webauthn.helpers.parse_authentication_credential_json import (
    parse_authentication_credential_json,
)
from webauthn.helpers.structs import (
    AuthenticatorSelectionCriteria,
    PublicKeyCredentialDescriptor,
    ResidentKeyRequirement,
    UserVerificationRequirement,
)

from ..actors import Actor, Permission
from ..context import Blink
from ..crypto import SecretBoxError
from ..models import Admin, Passkey, RecoveryCode, utcnow
from . import admins
from .admins import SignInRefused
from .errors import Conflict, Invalid
from .scope import NotFound

ISSUER = "Blink SMS"
TOTP_DIGITS = 6
RECOVERY_CODES = 10
# No 0/o, 1/l/i: read off paper and typed by a person in a hurry.
RECOVERY_ALPHABET = "23456789abcdefghjkmnpqrstuvwxyz"
RECOVERY_GROUPS, RECOVERY_GROUP = 3, 4  # "xxxx-xxxx-xxxx": about 59 random bits

# 5 wrong codes per account per window: with three codes valid at a time (valid_window=1)
# a guesser's odds stay near 1 in 1000 a day.
SECOND_FACTOR_FAILURES = 5


@dataclass(frozen=True)
class TotpEnrolment:
    """What the enrolment page shows: the secret (also typed by hand), the otpauth URI
    and a QR code of it as inline SVG (made here, no JavaScript)."""

    secret: str
    uri: str
    qr_svg: str


# --- whether a factor is due ---------------------------------------------------------------


def has_second_factor(admin: Admin) -> bool:
    """Whether ``admin`` has an authenticator app (passkeys come only on top of one)."""
    return admin.totp_confirmed_at is not None and admin.totp_secret_encrypted is not None


def needs_second_factor(admin: Admin) -> bool:
    """Whether a sign-in of ``admin`` must pass a second factor (or set one up first):
    always for MSP roles, and for anyone who has one."""
    return admin.role.msp or has_second_factor(admin)


def has_passkeys(session: Session, admin: Admin) -> bool:
    return bool(
        session.scalar(
            select(func.count()).select_from(Passkey).where(Passkey.admin_id == admin.id)
        )
    )


def _key(admin: Admin) -> str:
    return f"admin-2fa:{admin.id}"


def _check_throttle(session: Session, admin: Admin, now: datetime) -> None:
    wait = admins.throttled_for(session, _key(admin), limit=SECOND_FACTOR_FAILURES, now=now)
    if wait is not None:
        raise SignInRefused("throttled", retry_after=wait)


def _failed(session: Session, admin: Admin, method: str, now: datetime, ip: str | None) -> bool:
    admins.count_failure(session, _key(admin), limit=SECOND_FACTOR_FAILURES, now=now)
    admins.audit_admin(
        session, "admin.second_factor_failed", admins.actor_for(admin, ip), admin, method=method
    )
    session.commit()
    return False


def _passed(session: Session, admin: Admin, method: str, ip: str | None, **detail: Any) -> bool:
    admins.forget_failures(session, _key(admin))
    admins.audit_admin(
        session,
        "admin.second_factor_verified",
        admins.actor_for(admin, ip),
        admin,
        method=method,
        **detail,
    )
    session.commit()
    return True


def verify_second_factor(
    app: Blink, session: Session, admin: Admin, code: str, *, ip: str | None = None
) -> bool:
    """Check what was typed on the second-factor page: an app's code or a recovery code."""
    typed = "".join(code.split())
    if len(typed) == TOTP_DIGITS and typed.isdigit():
        return verify_totp(app, session, admin, typed, ip=ip)
    return use_recovery_code(session, admin, typed, ip=ip)


# --- authenticator app (TOTP) --------------------------------------------------------------


def begin_totp(app: Blink, admin: Admin) -> TotpEnrolment:
    """A new secret to enrol. Nothing is stored: the caller keeps ``secret`` in the
    signed session until :func:`confirm_totp`."""
    secret = pyotp.random_base32()
    uri = pyotp.TOTP(secret).provisioning_uri(name=admin.email, issuer_name=ISSUER)
    qr_svg = segno.make(uri, error="m").svg_inline(scale=4, title="Scan with your authenticator")
    return TotpEnrolment(secret=secret, uri=uri, qr_svg=qr_svg)


def _matching_step(secret: str, code: str, now: float) -> int | None:
    """The time step (now, one before or one after) whose code is ``code``, if any."""
    totp = pyotp.TOTP(secret)
    current = totp.timecode(now)
    found = None
    for step in (current - 1, current, current + 1):  # all three: no early exit to time
        if hmac.compare_digest(totp.generate_otp(step), code):
            found = step
    return found


def confirm_totp(app: Blink, session: Session, admin: Admin, secret: str, code: str) -> list[str]:
    """Store the secret (encrypted) once a code from the app proves it was scanned, and
    return ten fresh recovery codes, to be shown once. Replaces an earlier app and earlier
    recovery codes (the console asks for the current factor first). Commits.

    The code used here cannot sign in later (its time step is spent)."""
    code = "".join(code.split())
    try:
        step = _matching_step(secret, code, time.time()) if len(code) == TOTP_DIGITS else None
    except (ValueError, TypeError):  # a damaged secret from the session (not base32)
        step = None
    if step is None:
        raise Invalid("code", "that code is not right: type the newest code the app shows")
    replaced = admin.totp_confirmed_at is not None
    admin.totp_secret_encrypted = app.secrets.encrypt_json({"totp": secret})
    admin.totp_confirmed_at = utcnow()
    admin.totp_last_step = step
    admins.audit_admin(
        session, "admin.totp_enrolled", admins.actor_for(admin), admin, replaced=replaced
    )
    codes = _new_recovery_codes(session, admin)
    session.commit()
    return codes


def verify_totp(
    app: Blink, session: Session, admin: Admin, code: str, *, ip: str | None = None
) -> bool:
    """Whether ``code`` is the app's code now (or one step either side) and its step was
    not used before. Raises :class:`SignInRefused` ("throttled") after too many failures.
    Commits."""
    now = utcnow()
    _check_throttle(session, admin, now)
    code = "".join(code.split())
    if not has_second_factor(admin) or len(code) != TOTP_DIGITS:
        return _failed(session, admin, "totp", now, ip)
    try:
        secret = app.secrets.decrypt_json(admin.totp_secret_encrypted or "")["totp"]
    except (SecretBoxError, KeyError) as err:
        raise SecretBoxError(f"cannot read the authenticator secret of {admin.email}") from err
    step = _matching_step(secret, code, time.time())
    if step is None:
        return _failed(session, admin, "totp", now, ip)
    # Moves only forward: a replayed code, or an older one after a newer, matches no row.
    moved = session.execute(
        update(Admin)
        .where(
            Admin.id == admin.id,
            or_(Admin.totp_last_step.is_(None), Admin.totp_last_step < step),
        )
        .values(totp_last_step=step)
        .execution_options(synchronize_session=False)
    )
    if admins.rowcount(moved) != 1:
        return _failed(session, admin, "totp", now, ip)
    set_committed_value(admin, "totp_last_step", step)  # what the UPDATE wrote
    return _passed(session, admin, "totp", ip)


# --- recovery codes --------------------------------------------------------------------------


def _normalise_code(code: str) -> str:
    return "".join(ch for ch in code.casefold() if ch.isalnum())


def _code_hash(admin: Admin, code: str) -> str:
    # The admin id as salt: one table of precomputed hashes does not fit every account.
    return hashlib.sha256(f"{admin.id}:{_normalise_code(code)}".encode()).hexdigest()


def _new_recovery_codes(session: Session, admin: Admin) -> list[str]:
    session.execute(delete(RecoveryCode).where(RecoveryCode.admin_id == admin.id))
    size = RECOVERY_GROUPS * RECOVERY_GROUP
    codes = []
    for _ in range(RECOVERY_CODES):
        raw = "".join(secrets.choice(RECOVERY_ALPHABET) for _ in range(size))
        code = "-".join(raw[i : i + RECOVERY_GROUP] for i in range(0, size, RECOVERY_GROUP))
        session.add(RecoveryCode(admin_id=admin.id, code_hash=_code_hash(admin, code)))
        codes.append(code)
    session.flush()
    admins.audit_admin(
        session, "admin.recovery_codes_generated", admins.actor_for(admin), admin, count=len(codes)
    )
    return codes


def regenerate_recovery_codes(session: Session, admin: Admin) -> list[str]:
    """Ten new recovery codes for ``admin`` (shown once); the old ones stop working. Commits."""
    if not has_second_factor(admin):
        raise Conflict("set up an authenticator app first: recovery codes come with it")
    codes = _new_recovery_codes(session, admin)
    session.commit()
    return codes


def recovery_codes_left(session: Session, admin: Admin) -> int:
    return int(
        session.scalar(
            select(func.count())
            .select_from(RecoveryCode)
            .where(RecoveryCode.admin_id == admin.id, RecoveryCode.used_at.is_(None))
        )
        or 0
    )


def use_recovery_code(session: Session, admin: Admin, code: str, *, ip: str | None = None) -> bool:
    """Whether ``code`` is one of the admin's unused recovery codes; it is then used up.
    Throttled like the app's codes. Commits."""
    now = utcnow()
    _check_throttle(session, admin, now)
    wanted = _code_hash(admin, code)
    rows = session.execute(
        select(RecoveryCode.id, RecoveryCode.code_hash).where(
            RecoveryCode.admin_id == admin.id, RecoveryCode.used_at.is_(None)
        )
    ).all()
    found = None
    for row_id, stored in rows:  # compare with every one: the time says nothing of which
        if hmac.compare_digest(stored, wanted):
            found = row_id
    if found is None:
        return _failed(session, admin, "recovery_code", now, ip)
    used = session.execute(
        update(RecoveryCode)
        .where(RecoveryCode.id == found, RecoveryCode.used_at.is_(None))
        .values(used_at=now)
        .execution_options(synchronize_session=False)
    )
    if admins.rowcount(used) != 1:  # the same code posted twice at once
        return _failed(session, admin, "recovery_code", now, ip)
    return _passed(session, admin, "recovery_code", ip, codes_left=len(rows) - 1)


# --- passkeys (WebAuthn) ---------------------------------------------------------------------


def relying_party(app: Blink) -> tuple[str, str]:
    """The WebAuthn RP id (the public URL's host) and origin (its scheme, host, port)."""
    parts = urlsplit(app.settings.public_url)
    return parts.hostname or "localhost", f"{parts.scheme}://{parts.netloc}"


def list_passkeys(session: Session, admin: Admin) -> list[Passkey]:
    return list(
        session.execute(
            select(Passkey).where(Passkey.admin_id == admin.id).order_by(Passkey.created_at)
        ).scalars()
    )


def passkey_registration_options(app: Blink, session: Session, admin: Admin) -> tuple[str, str]:
    """The options for ``navigator.credentials.create()`` as JSON, and the challenge
    (base64url) for the caller to keep in the signed session for :func:`register_passkey`."""
    if not has_second_factor(admin):
        raise Conflict("set up an authenticator app first: a passkey comes on top of it")
    rp_id, _ = relying_party(app)
    options = generate_registration_options(
        rp_id=rp_id,
        rp_name=ISSUER,
        user_id=f"blink-admin-{admin.id}".encode(),  # stable, and no personal data
        user_name=admin.email,
        user_display_name=admin.name or admin.email,
        exclude_credentials=[
            PublicKeyCredentialDescriptor(id=base64url_to_bytes(p.credential_id))
            for p in list_passkeys(session, admin)
        ],
        authenticator_selection=AuthenticatorSelectionCriteria(
            resident_key=ResidentKeyRequirement.DISCOURAGED,
            user_verification=UserVerificationRequirement.PREFERRED,
        ),
    )
    return options_to_json(options), bytes_to_base64url(options.challenge)


def register_passkey(
    app: Blink, session: Session, admin: Admin, *, name: str, credential_json: str, challenge: str
) -> Passkey:
    """Verify the browser's answer to the registration options and store the passkey.
    The caller drops ``challenge`` from its session whatever happens. Commits."""
    if not has_second_factor(admin):
        raise Conflict("set up an authenticator app first: a passkey comes on top of it")
    name = name.strip()
    if not 1 <= len(name) <= 100:
        raise Invalid("name", "give the passkey a name of at most 100 characters")
    rp_id, origin = relying_party(app)
    try:
        verified = verify_registration_response(
            credential=credential_json,
            expected_challenge=base64url_to_bytes(challenge),
            expected_rp_id=rp_id,
            expected_origin=origin,
        )
    except (WebAuthnException, ValueError) as err:
        raise Invalid("credential", "the passkey could not be verified: try again") from err
    credential_id = bytes_to_base64url(verified.credential_id)
    taken = session.execute(select(Passkey.id).where(Passkey.credential_id == credential_id))
    if taken.first() is not None:
        raise Conflict("this passkey is registered already")
    passkey = Passkey(
        admin_id=admin.id,
        name=name,
        credential_id=credential_id,
        public_key=bytes_to_base64url(verified.credential_public_key),
        sign_count=verified.sign_count,
        created_at=utcnow(),
    )
    session.add(passkey)
    session.flush()
    admins.audit_admin(
        session,
        "admin.passkey_registered",
        admins.actor_for(admin),
        admin,
        passkey_id=passkey.id,
        name=name,
    )
    session.commit()
    return passkey


def remove_passkey(session: Session, actor: Actor, admin: Admin, passkey_id: int) -> None:
    """Remove one of ``admin``'s passkeys (their own, or an owner's decision). Commits."""
    if actor.admin_id != admin.id:
        actor.require(Permission.MANAGE_ADMINS)
    passkey = session.get(Passkey, passkey_id)
    if passkey is None or passkey.admin_id != admin.id:
        raise NotFound("passkey")
    admins.audit_admin(
        session, "admin.passkey_removed", actor, admin, passkey_id=passkey.id, name=passkey.name
    )
    session.delete(passkey)
    session.commit()


def passkey_authentication_options(app: Blink, session: Session, admin: Admin) -> tuple[str, str]:
    """The options for ``navigator.credentials.get()`` as JSON (``admin``'s passkeys), and
    the challenge for :func:`verify_passkey`. Keep it in the signed session; use it once."""
    passkeys = list_passkeys(session, admin)
    if not passkeys:
        raise Conflict("no passkey is registered for this account")
    rp_id, _ = relying_party(app)
    options = generate_authentication_options(
        rp_id=rp_id,
        allow_credentials=[
            PublicKeyCredentialDescriptor(id=base64url_to_bytes(p.credential_id)) for p in passkeys
        ],
        user_verification=UserVerificationRequirement.PREFERRED,
    )
    return options_to_json(options), bytes_to_base64url(options.challenge)


def verify_passkey(
    app: Blink,
    session: Session,
    admin: Admin,
    credential_json: str,
    challenge: str,
    *,
    ip: str | None = None,
) -> bool:
    """Whether the browser's assertion is signed by one of ``admin``'s passkeys over
    ``challenge``; its signature counter is then moved on. Throttled. Commits."""
    now = utcnow()
    _check_throttle(session, admin, now)
    rp_id, origin = relying_party(app)
    try:
        credential = parse_authentication_credential_json(credential_json)
        passkey = session.execute(
            select(Passkey).where(
                Passkey.admin_id == admin.id,
                Passkey.credential_id == bytes_to_base64url(credential.raw_id),
            )
        ).scalar_one_or_none()
        if passkey is None:
            return _failed(session, admin, "passkey", now, ip)
        verified = verify_authentication_response(
            credential=credential,
            expected_challenge=base64url_to_bytes(challenge),
            expected_rp_id=rp_id,
            expected_origin=origin,
            credential_public_key=base64url_to_bytes(passkey.public_key),
            credential_current_sign_count=passkey.sign_count,
        )
    except (WebAuthnException, ValueError):
        return _failed(session, admin, "passkey", now, ip)
    # Conditional on the counter read above: of two uses at once, one passes.
    moved = session.execute(
        update(Passkey)
        .where(Passkey.id == passkey.id, Passkey.sign_count == passkey.sign_count)
        .values(sign_count=verified.new_sign_count, last_used_at=now)
        .execution_options(synchronize_session=False)
    )
    if admins.rowcount(moved) != 1:
        return _failed(session, admin, "passkey", now, ip)
    set_committed_value(passkey, "sign_count", verified.new_sign_count)
    set_committed_value(passkey, "last_used_at", now)
    return _passed(session, admin, "passkey", ip, passkey_id=passkey.id)


# --- the way back in -------------------------------------------------------------------------


def reset_second_factors(app: Blink, session: Session, actor: Actor, admin: Admin) -> str:
    """For an admin locked out of their second factor: clear the app, passkeys, recovery
    codes and the password, end their sessions, and return a new set-up URL. Commits.

    The password goes too, so that until the set-up link is used nobody (not someone who
    learnt the password) can sign in and enrol their own authenticator."""
    actor.require(Permission.MANAGE_ADMINS)
    if admin.disabled_at is not None:
        raise Conflict(f"{admin.email} is disabled: enable the account first")
    session.execute(delete(Passkey).where(Passkey.admin_id == admin.id))
    session.execute(delete(RecoveryCode).where(RecoveryCode.admin_id == admin.id))
    admin.totp_secret_encrypted = admin.totp_confirmed_at = admin.totp_last_step = None
    admin.password_hash = None
    admin.session_epoch += 1
    admins.audit_admin(session, "admin.second_factors_reset", actor, admin)
    return admins.new_setup_link(app, session, actor, admin)  # audits and commits
