"""Twilio request signatures: every webhook is verified before anything else runs."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import ParamSpec, TypeVar

import structlog
from flask import Response, abort, request
from twilio.request_validator import RequestValidator

from blink_sms.context import blink

log = structlog.get_logger(__name__)
P = ParamSpec("P")
R = TypeVar("R")


def public_url() -> str:
    """The URL Twilio signed: the public address, not the one behind the proxy."""
    url = blink().settings.public_url + request.path
    if request.query_string:
        url += "?" + request.query_string.decode("latin-1")
    return url


def twilio_signed(view: Callable[P, R]) -> Callable[P, R | Response]:
    """Refuse (403) any request whose X-Twilio-Signature does not match."""

    @functools.wraps(view)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R | Response:
        token = blink().settings.twilio_auth_token
        if not token:
            log.error("Twilio webhook refused: BLINK_TWILIO_AUTH_TOKEN is not set")
            abort(503)
        signature = request.headers.get("X-Twilio-Signature", "")
        validator = RequestValidator(token)
        if not signature or not validator.validate(public_url(), request.form, signature):
            log.warning("Twilio webhook refused: bad or missing signature", path=request.path)
            abort(403)
        return view(*args, **kwargs)

    return wrapper
