"""One structlog set-up for the web process, the worker and the CLI.

JSON lines in production, readable console lines in development; records from the
standard library (Flask, RQ; gunicorn with blink_sms.serving's logger class) pass
through the same processors. The redaction processor removes secrets by key, masks
phone numbers and cuts activation link tokens out of URLs, and tracebacks are rendered
plainly, without local variables.
"""

from __future__ import annotations

import logging
import re
import sys
from typing import Any

import structlog
from structlog.typing import EventDict, Processor

from .crypto import mask_phone

# Keys whose values never reach a log line, whatever the caller passes.
SECRET_KEYS = frozenset(
    {
        "password",
        "new_password",
        "otp",
        "code",
        "token",
        "secret",
        "auth_token",
        "body",
        "sms_body",
        "text",
        "authorization",
    }
)
PHONE_KEYS = frozenset({"phone", "from_", "from", "to", "sender", "reply_from", "number"})
_E164 = re.compile(r"\+\d{6,15}")


# An activation link's token travels in the URL path (/enroll/<token>, .../code, ...).
_LINK_TOKEN = re.compile(r"(/enroll/)[A-Za-z0-9_-]{20,}")


def redact_url(text: str) -> str:
    """``text`` with the token of any activation link in it replaced."""
    return _LINK_TOKEN.sub(r"\1[redacted]", text) if "/enroll/" in text else text


def redact(logger: object, method_name: str, event_dict: EventDict) -> EventDict:
    """Drop secret values, mask phone numbers and cut link tokens out of URLs, in keys
    and in free text."""
    for key in list(event_dict):
        lowered = key.lower()
        value = event_dict[key]
        if lowered in SECRET_KEYS or "password" in lowered:
            event_dict[key] = "[redacted]"
        elif isinstance(value, str):
            if lowered in PHONE_KEYS:
                event_dict[key] = mask_phone(value)
            elif "/enroll/" in value:
                event_dict[key] = redact_url(value)
    message = event_dict.get("event")
    if isinstance(message, str) and "+" in message:
        event_dict["event"] = _E164.sub(lambda m: mask_phone(m.group()) or "", message)
    return event_dict


def _drop_color_message(logger: object, method_name: str, event_dict: EventDict) -> EventDict:
    event_dict.pop("color_message", None)
    return event_dict


def configure(*, log_format: str = "console", level: str = "INFO") -> None:
    """Configure structlog and the standard library root logger. Safe to call twice."""
    shared: list[Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        _drop_color_message,
        redact,
    ]
    renderer: Processor
    if log_format == "json":
        renderer = structlog.processors.JSONRenderer()
        # structlog's ready-made dict_tracebacks includes every frame's local variables
        # (a password being set, an OTP being sent); render the frames without them.
        shared.append(
            structlog.processors.ExceptionRenderer(
                structlog.tracebacks.ExceptionDictTransformer(show_locals=False)
            )
        )
    else:
        renderer = structlog.dev.ConsoleRenderer(
            colors=sys.stderr.isatty(),
            exception_formatter=structlog.dev.plain_traceback,
        )
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=False,
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared,
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer],
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter)
    handler.set_name("blink-sms")
    root = logging.getLogger()
    root.handlers = [h for h in root.handlers if h.get_name() != "blink-sms"]
    root.addHandler(handler)
    root.setLevel(level)
    # The Twilio SDK logs every request at INFO; its errors surface as exceptions.
    logging.getLogger("twilio").setLevel(logging.WARNING)
    logging.getLogger("werkzeug").setLevel(logging.WARNING)


def bind(**values: Any) -> None:
    structlog.contextvars.bind_contextvars(**values)


def clear() -> None:
    structlog.contextvars.clear_contextvars()


def get(name: str | None = None) -> Any:
    return structlog.stdlib.get_logger(name)


__all__ = ["bind", "clear", "configure", "get", "redact"]
