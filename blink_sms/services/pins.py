"""Reset PINs: a second factor for texted resets, against spoofed sender numbers.

A text's sender number can be forged, so a client may ask for a PIN as well
(``Client.reset_pin``):

- ``off``: RESET and UNLOCK act on the sender number alone (any PIN is ignored);
- ``optional``: a user may set a PIN; once set, every RESET and UNLOCK must carry it;
- ``required``: every RESET and UNLOCK must carry one; a user without a PIN is told
  to set it first.

A user sets their PIN by texting ``PIN 4821`` (4 to 8 digits) from the enrolled phone
while they have none; then texts ``RESET 4821`` or ``UNLOCK 4821``. The PIN is stored
as an argon2id hash (``User.pin_hash``), never in clear, and never logged or audited.

Wrong PINs count like Entra ID's smart lockout counts wrong passwords: the first
failure opens a 24-hour window; the 5th failure within it blocks texted resets for
24 hours, whatever PIN comes next. A right PIN clears the count. An admin's Reset User
clears the PIN, the count and the block (:func:`clear`).
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass
from datetime import datetime, timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import update
from sqlalchemy.orm import Session

from ..models import User
from . import audit

PIN = re.compile(r"[0-9]{4,8}")
FAILURE_LIMIT = 5
FAILURE_WINDOW = timedelta(hours=24)
BLOCK = timedelta(hours=24)
POLICIES = ("off", "optional", "required")

# Low cost on purpose: a PIN has at most 10^8 values, so the hash protects it by its
# salt and by the failure limit, not by slowness; this keeps the webhook fast.
HASHER = PasswordHasher(time_cost=2, memory_cost=19_456, parallelism=1)


class PinCheck(enum.Enum):
    """What a RESET or UNLOCK's PIN (or its absence) allows."""

    OK = "ok"  # act
    NOT_SET = "not_set"  # required, and the user has none yet
    MISSING = "missing"  # the user has one; the text carried none (not a failure)
    WRONG = "wrong"  # counted
    BLOCKED = "blocked"  # too many wrong PINs: refused until the block ends


@dataclass(frozen=True)
class PinState:
    """A user's PIN columns, as the inbound query reads them."""

    pin_hash: str | None = None
    failures: int = 0
    failed_since: datetime | None = None
    blocked_until: datetime | None = None


def hash_pin(pin: str) -> str:
    if not PIN.fullmatch(pin):
        raise ValueError("a PIN is 4 to 8 digits")
    return HASHER.hash(pin)


def check(
    session: Session,
    *,
    policy: str,
    state: PinState,
    pin: str | None,
    user_id: int,
    client_id: int,
    source: str | None,
    now: datetime,
) -> PinCheck:
    """Check the PIN of a RESET or UNLOCK; records a failure (and a block) in the session."""
    if policy not in ("optional", "required") or (policy == "optional" and not state.pin_hash):
        return PinCheck.OK
    if not state.pin_hash:
        return PinCheck.NOT_SET
    if state.blocked_until is not None and state.blocked_until > now:
        return PinCheck.BLOCKED
    if pin is None:
        return PinCheck.MISSING
    right: bool
    try:
        right = HASHER.verify(state.pin_hash, pin)
    except (VerificationError, InvalidHashError):
        right = False
    user = update(User).where(User.id == user_id)
    if right:
        if state.failures or state.blocked_until is not None:
            session.execute(
                user.values(pin_failures=0, pin_failed_since=None, pin_blocked_until=None)
            )
        return PinCheck.OK
    window_open = state.failed_since is not None and state.failed_since > now - FAILURE_WINDOW
    failures = state.failures + 1 if window_open else 1
    blocked = failures >= FAILURE_LIMIT
    session.execute(
        user.values(
            pin_failures=failures,
            pin_failed_since=state.failed_since if window_open else now,
            pin_blocked_until=now + BLOCK if blocked else None,
        )
    )
    actor = f"sms:user:{user_id}"
    audit.record(
        session,
        "user.pin_blocked" if blocked else "user.pin_failed",
        actor=actor,
        client_id=client_id,
        user_id=user_id,
        failures=failures,
        source=source,
    )
    return PinCheck.BLOCKED if blocked else PinCheck.WRONG


def set_by_text(
    session: Session, *, pin: str, user_id: int, client_id: int, source: str | None
) -> None:
    """Store a PIN the user texted (the caller checked they had none). Audited, never
    the PIN itself."""
    session.execute(
        update(User)
        .where(User.id == user_id)
        .values(
            pin_hash=hash_pin(pin), pin_failures=0, pin_failed_since=None, pin_blocked_until=None
        )
    )
    audit.record(
        session,
        "user.pin_set",
        actor=f"sms:user:{user_id}",
        client_id=client_id,
        user_id=user_id,
        source=source,
    )


def clear(user: User) -> bool:
    """Forget ``user``'s PIN, failures and block (Reset User); True if there was any."""
    had = bool(user.pin_hash or user.pin_failures or user.pin_blocked_until)
    user.pin_hash, user.pin_failures = None, 0
    user.pin_failed_since = user.pin_blocked_until = None
    return had
