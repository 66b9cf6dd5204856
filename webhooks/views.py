"""Twilio webhooks: verify, parse into a strict model, call a service, answer TwiML fast."""

from __future__ import annotations

import re

import phonenumbers
import structlog
from flask import Blueprint, Response, abort, request
from twilio.twiml.messaging_response import MessagingResponse

from blink_sms.context import blink
from blink_sms.services import delivery, inbound

from .signature import twilio_signed

log = structlog.get_logger(__name__)
bp = Blueprint("webhooks", __name__, url_prefix="/webhooks/twilio")

# Matched with fullmatch: "$" would also accept a trailing newline.
_MESSAGE_SID = re.compile(r"(SM|MM)[0-9a-fA-F]{32}")
_ACCOUNT_SID = re.compile(r"AC[0-9a-fA-F]{32}")


def twiml(text: str | None = None) -> Response:
    """A TwiML answer; empty when there is nothing to say (Twilio then sends nothing)."""
    response = MessagingResponse()
    if text:
        response.message(text)
    return Response(str(response), mimetype="text/xml")


def _e164(value: str) -> str | None:
    try:
        number = phonenumbers.parse(value, None)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_possible_number(number):
        return None
    return str(phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164))


def _ignore(reason: str) -> Response:
    """A recognised but unusable payload: 200 and empty TwiML, so Twilio does not retry."""
    log.info("inbound SMS ignored", reason=reason)
    return twiml()


@bp.post("/sms")
@twilio_signed
def sms() -> Response:
    form = request.form
    sid, sender, to = form.get("MessageSid", ""), form.get("From", ""), form.get("To", "")
    body = form.get("Body")
    if not sid or not sender or not to or body is None:
        log.info("inbound SMS refused: missing fields")
        abort(400)
    if not _MESSAGE_SID.fullmatch(sid):
        log.info("inbound SMS refused: malformed MessageSid")
        abort(400)
    app = blink()
    account = form.get("AccountSid", "")
    expected = app.settings.twilio_account_sid
    if expected and account != expected:
        # Signed with our token but for another account: a misconfigured number (or a
        # sub-account) pointing here. Refuse it loudly rather than drop it quietly.
        log.warning("inbound SMS refused: AccountSid is not this deployment's account")
        abort(403)
    if account and not _ACCOUNT_SID.fullmatch(account):
        return _ignore("malformed AccountSid")
    sender_e164, to_e164 = _e164(sender), _e164(to)
    if sender_e164 is None or to_e164 is None:
        return _ignore("From or To is not a phone number")
    if len(body) > app.settings.max_body_chars:
        return _ignore("body too long")
    reply = inbound.handle(app, inbound.InboundSms(sid, sender_e164, to_e164, body))
    return twiml(reply.text)


@bp.post("/status")
@twilio_signed
def status() -> Response:
    form = request.form
    sid = form.get("MessageSid", "")
    state = form.get("MessageStatus", "").lower()
    if not _MESSAGE_SID.fullmatch(sid) or state not in delivery.STATUSES:
        log.info("status callback refused: malformed", status=state[:20])
        abort(400)
    error_code = form.get("ErrorCode") or None
    if error_code is not None and not error_code.isdigit():
        error_code = None
    price = delivery.price_of(form.get("Price"), form.get("PriceUnit"))
    delivery.record_status(blink(), sid, state, error_code, price=price)
    return Response(status=204)
