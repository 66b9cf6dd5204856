"""Reset PINs: a second factor for texted resets, against spoofed sender numbers.

A text's sender number can be forged, so a client may ask for a PIN as well
(``Client.reset_pin``):

- ``off``: RESET and UNLOCK act on the sender number alone (any PIN is ignored);
- ``optional``: a user may choose a PIN; once chosen, every RESET and UNLOCK must carry it;
- ``required``: every RESET and UNLOCK must carry one; a user without a PIN (enrolled
  before the client asked for one) is told to ask for a new activation link.

A user chooses the PIN on the activation page, with the SMS code (:func:`choose`), so
it is set by whoever holds the link *and* the phone, never by a text: a text's sender
can be forged, and a spoofer who texted ``PIN 4821`` first would own the PIN. Then the
user texts ``RESET 4821`` or ``UNLOCK 4821``. The PIN is stored as an argon2id hash
(``User.pin_hash``), never in clear, and never logged or audited. To change it, the
user asks for a new activation link (an admin's Reset User).

Wrong PINs count like Entra ID's smart lockout counts wrong passwords: the first
failure opens a 24-hour window; the 5th failure within it blocks texted resets for
24 hours, whatever PIN comes next. A right PIN clears the count. An admin's Reset User
clears the PIN, the count and the block (:func:`clear`).
"""

from __future__ import annotations

import enum
import hmac
import itertools
import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

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


class PinProblem(enum.StrEnum):
    """Why a PIN chosen on the activation page is refused (nothing is counted)."""

    MISSING = "missing"  # required, and none given
    MALFORMED = "malformed"  # not 4 to 8 digits
    MISMATCH = "mismatch"  # the two entries differ
    EASY = "easy"  # one digit repeated, or a run such as 1234 or 9876


def _easy(pin: str) -> bool:
    steps = {int(b) - int(a) for a, b in itertools.pairwise(pin)}
    return steps in ({0}, {1}, {-1})


def choose(pin: str | None, again: str | None, *, policy: str) -> str | PinProblem | None:
    """The PIN a user typed twice on the activation page: the PIN to set, None for no
    PIN (policy off, or optional and left empty), or what is wrong with it."""
    if policy not in ("optional", "required"):
        return None
    pin, again = (pin or "").strip(), (again or "").strip()
    if not pin and not again:
        return PinProblem.MISSING if policy == "required" else None
    if not PIN.fullmatch(pin):
        return PinProblem.MALFORMED
    if not hmac.compare_digest(pin, again):
        return PinProblem.MISMATCH
    if _easy(pin):
        return PinProblem.EASY
    return pin


def set_at_enrollment(session: Session, user: User, pin: str | None, *, actor: str) -> None:
    """Give ``user`` the PIN chosen with their SMS code, or none; any earlier PIN, wrong
    tries and block go. Audited when a PIN is set, never the PIN itself."""
    had = clear(user)
    if pin is None:
        return
    user.pin_hash = hash_pin(pin)
    audit.record(
        session,
        "user.pin_set",
        actor=actor,
        client_id=user.client_id,
        user_id=user.id,
        replaced=had,
    )


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


def status(user: User, now: datetime) -> Literal["set", "blocked"] | None:
    """``"blocked"`` (too many wrong PINs, for now), ``"set"``, or None (no PIN)."""
    if user.pin_blocked_until is not None and user.pin_blocked_until > now:
        return "blocked"
    return "set" if user.pin_hash else None


def describe(user: User, policy: str, now: datetime) -> str | None:
    """The user's PIN as an admin's page says it; None where PINs play no part."""
    if policy not in ("optional", "required") and not user.pin_hash:
        return None
    if status(user, now) == "blocked" and user.pin_blocked_until is not None:
        until = user.pin_blocked_until.strftime("%Y-%m-%d %H:%M")
        wrong = user.pin_failures
        return f"blocked until {until} UTC after {wrong} wrong PINs (Reset User clears it)"
    if user.pin_hash:
        wrong = user.pin_failures
        return "set" + (f", {wrong} wrong in the last 24 hours" if wrong else "")
    if policy == "required":
        return "not set: texted resets are refused until the user chooses one (Reset User)"
    return "not set (optional)"


def clear(user: User) -> bool:
    """Forget ``user``'s PIN, failures and block (Reset User); True if there was any."""
    had = bool(user.pin_hash or user.pin_failures or user.pin_blocked_until)
    user.pin_hash, user.pin_failures = None, 0
    user.pin_failed_since = user.pin_blocked_until = None
    return had
