"""Delivery status callbacks: what became of a message the gateway sent, and its price."""

from __future__ import annotations

import re
from dataclasses import dataclass

import structlog
from sqlalchemy import select

from ..context import Blink
from ..models import OutboundMessage, ResetRequest

log = structlog.get_logger(__name__)

STATUSES = frozenset(
    {
        "accepted",
        "scheduled",
        "queued",
        "sending",
        "sent",
        "delivered",
        "undelivered",
        "failed",
        "read",
        "canceled",
    }
)


# Twilio's prices are decimal strings, negative for a charge ("-0.00790"): at most 16
# characters, the column's size. Currencies are ISO 4217 codes.
_AMOUNT = re.compile(r"-?\d{1,6}(\.\d{1,8})?")
_CURRENCY = re.compile(r"[A-Z]{3}")


@dataclass(frozen=True)
class Price:
    """What Twilio charged for a message, as it reports it: ``-0.00790`` ``USD``."""

    amount: str
    unit: str


def price_of(amount: str | None, unit: str | None) -> Price | None:
    """The price a status callback carries, or None when it carries none (Twilio sends
    the price once it is known) or a malformed one (nothing to store, the status still is)."""
    amount, unit = (amount or "").strip(), (unit or "").strip().upper()
    if not _AMOUNT.fullmatch(amount) or not _CURRENCY.fullmatch(unit):
        return None
    return Price(amount, unit)


def record_status(
    app: Blink, sid: str, status: str, error_code: str | None, *, price: Price | None = None
) -> bool:
    """Store the status of message ``sid`` (and its price, when the callback reports one);
    False when the message is not ours."""
    with app.db.session() as session:
        message = session.execute(
            select(OutboundMessage).where(OutboundMessage.sid == sid)
        ).scalar_one_or_none()
        if message is None:
            log.info("status callback for an unknown message", message_sid=sid)
            return False
        message.status, message.error_code = status, error_code
        if price is not None:
            message.price, message.price_unit = price.amount, price.unit
        if message.request_id is not None and message.purpose in ("otp", "unlocked"):
            request = session.get(ResetRequest, message.request_id)
            if request is not None:
                request.delivery_status = status
        session.commit()
        log.info(
            "delivery status recorded",
            message_sid=sid,
            status=status,
            error_code=error_code,
            price=f"{price.amount} {price.unit}" if price else None,
        )
        return True
