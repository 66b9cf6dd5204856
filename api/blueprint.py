"""The API's blueprint: bearer-key authentication, the rate limit per key, problem
answers for every error, keyset cursors, and the SpecTree instance that validates the
operations and writes the OpenAPI document.

SpecTree was picked over APIFlask and flask-smorest: it decorates plain Flask views in
a plain blueprint (APIFlask wants its own app class), its models are pydantic v2,
whose JSON Schema 2020-12 is exactly OpenAPI 3.1's dialect (flask-smorest's
marshmallow and apispec write 3.0-style schemas), and it validates responses too, so
the document cannot drift from what the views return.
"""

from __future__ import annotations

import base64
import binascii
import json
import time
from typing import Any

import structlog
from flask import Blueprint, Flask, Response, current_app, g, request
from pydantic import ValidationError
from spectree import SecurityScheme, SecuritySchemeData, SpecTree
from spectree.models import SecureType
from werkzeug.exceptions import HTTPException

from blink_sms.actors import Actor
from blink_sms.context import blink
from blink_sms.services import api_keys

from . import problems
from .schemas import FieldError, Problem

log = structlog.get_logger(__name__)

PREFIX = "/api/v1"
# Reachable without a key: the document and its browsable page.
PUBLIC_ENDPOINTS = frozenset({"api.openapi", "api.docs"})
LIMITER = "blink_api_limiter"

bp = Blueprint("api", __name__, url_prefix=PREFIX)


def _invalid_request(
    req: Any, resp: Any, err: Exception | None, instance: Any, adapter: Any
) -> None:
    """SpecTree found the request invalid: answer with a problem naming each field."""
    if err is None:
        return
    errors = []
    if isinstance(err, ValidationError):
        for item in err.errors(include_url=False):
            field = ".".join(str(part) for part in item["loc"]) or "body"
            errors.append(FieldError(field=field, message=item["msg"]))
    else:
        errors.append(FieldError(field="body", message=str(err)[:200]))
    raise problems.invalid(errors)


spec = SpecTree(
    "flask",
    title="Blink SMS API",
    version="1",
    description=(
        "Onboard clients, import and invite users, push resets and unlocks, and read the "
        "audit trail and monthly reports. Authenticate with an API key "
        "(`Authorization: Bearer blk_…`), created in the console or with "
        "`blink-sms api-keys create`. Errors are RFC 9457 problem details. Lists are paged "
        "with `cursor`/`next_cursor`. POSTs that act accept an `Idempotency-Key` header: a "
        "retry with the same key gets the first answer and does nothing twice."
    ),
    mode="strict",
    annotations=False,
    path="api/v1/docs-spectree",  # unused: the document and page are served below
    before=_invalid_request,
    validation_error_status=422,
    security_schemes=[
        SecurityScheme(
            name="bearer",
            data=SecuritySchemeData(
                type=SecureType.HTTP, scheme="bearer", bearer_format="blk_<prefix>_<secret>"
            ),
        )
    ],
    security={"bearer": []},
)


def actor() -> Actor:
    """The actor of the API key making this call."""
    found: Actor = g.api_actor
    return found


def key_id() -> int:
    found: int = g.api_key_id
    return found


# --- authentication and the rate limit ------------------------------------------------------


def _unauthorized(detail: str) -> Response:
    raise problems.ApiProblem(
        401,
        "unauthorized",
        "Unauthorized",
        detail,
        headers={"WWW-Authenticate": 'Bearer realm="blink-sms"'},
    )


@bp.before_request
def _authenticate() -> None:
    if request.endpoint in PUBLIC_ENDPOINTS:
        return
    scheme, _, presented = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not presented.strip():
        _unauthorized("send an API key as 'Authorization: Bearer blk_…'")
    with blink().db.session() as db:
        identity = api_keys.identify(db, presented)
    if identity is None:
        # Unknown, malformed and revoked keys are the same answer.
        _unauthorized("the API key is not valid (revoked, or mistyped)")
    assert identity is not None
    g.api_key_id = identity.key_id
    g.api_actor = identity.actor.at(request.remote_addr)
    structlog.contextvars.bind_contextvars(api_key=identity.key_id)
    _rate_limit(identity.key_id)
    _clean_input()


def _no_nul(value: Any) -> bool:
    """Whether no string in ``value`` (a JSON value) holds a NUL character."""
    if isinstance(value, str):
        return "\x00" not in value
    if isinstance(value, dict):
        return all(_no_nul(k) and _no_nul(v) for k, v in value.items())
    if isinstance(value, list):
        return all(_no_nul(item) for item in value)
    return True


def _refuse_nul(field: str) -> None:
    # No text the gateway keeps may hold one, and PostgreSQL refuses them outright.
    raise problems.invalid([FieldError(field=field, message="may not contain NUL characters")])


def _clean_input() -> None:
    """No NUL in the query or the body; a body, where one is sent, must be JSON (SpecTree
    would read a body it cannot parse as no body at all, and a call meant to change
    something would change nothing)."""
    for name, value in request.args.items(multi=True):
        if not _no_nul(name) or not _no_nul(value):
            _refuse_nul(name.replace("\x00", ""))
    if request.method not in ("POST", "PATCH", "PUT"):
        return
    if not request.content_length and not request.headers.get("Transfer-Encoding"):
        return
    if request.mimetype != "application/json":
        raise problems.ApiProblem(
            415, "unsupported-media-type", "Unsupported Media Type", "send JSON (application/json)"
        )
    body = request.get_json(silent=True)
    if body is None and request.get_data():
        raise problems.ApiProblem(400, "malformed-json", "Malformed JSON", "the body is not JSON")
    if not _no_nul(body):
        _refuse_nul("body")


def _limiter() -> tuple[Any, Any]:
    """The rate limiter (in Redis when there is one, so every web process counts
    together) and this deployment's limit."""
    state = current_app.extensions.get(LIMITER)
    if state is None:
        from limits import RateLimitItemPerMinute
        from limits.storage import MemoryStorage, RedisStorage
        from limits.strategies import FixedWindowRateLimiter

        app = blink()
        storage: Any
        if app.redis is not None:
            storage = RedisStorage(
                "redis://", connection_pool=app.redis.connection_pool, key_prefix="blink:api"
            )
        else:
            storage = MemoryStorage()
        item = RateLimitItemPerMinute(app.settings.api_requests_per_minute)
        state = current_app.extensions[LIMITER] = (FixedWindowRateLimiter(storage), item)
    return state


def _rate_limit(api_key: int) -> None:
    limiter, item = _limiter()
    try:
        allowed = limiter.hit(item, str(api_key))
        stats = limiter.get_window_stats(item, str(api_key))
    except Exception as err:  # Redis down: serve (each action has its own limits)
        log.warning("api rate limit not checked", error=type(err).__name__)
        return
    reset = max(0, int(stats.reset_time - time.time() + 0.999))
    g.rate_headers = {
        "RateLimit-Limit": str(item.amount),
        "RateLimit-Remaining": str(max(0, stats.remaining)),
        "RateLimit-Reset": str(reset),
    }
    if not allowed:
        raise problems.ApiProblem(
            429,
            "rate-limited",
            "Too many requests",
            f"this key may make {item.amount} calls a minute; try again in {reset} s",
            headers={**g.rate_headers, "Retry-After": str(max(1, reset))},
        )


@bp.after_request
def _headers(response: Response) -> Response:
    for name, value in getattr(g, "rate_headers", {}).items():
        response.headers.setdefault(name, value)
    response.headers.setdefault("Cache-Control", "no-store")
    return response


# --- errors ------------------------------------------------------------------------------------


def init_errors(app: Flask) -> None:
    """Problem answers for every error under ``/api/v1``, unknown URLs and methods too
    (those never reach the blueprint, so the handler is the app's)."""

    @app.errorhandler(HTTPException)
    def _http_error(err: HTTPException) -> Any:
        if not request.path.startswith(PREFIX + "/") and request.path != PREFIX:
            return err
        return problems.of(err)


@bp.errorhandler(Exception)
def _error(err: Exception) -> Response:
    answer = problems.of(err)
    if answer is None:
        log.exception("api call failed", error=type(err).__name__)
        return problems.response(
            Problem(
                type="about:blank",
                title="Internal Server Error",
                status=500,
                detail="the server failed; its log says why",
            )
        )
    return answer


# --- keyset cursors ------------------------------------------------------------------------------


def encode_cursor(last_id: int) -> str:
    """An opaque cursor for "after this id"."""
    raw = json.dumps({"after": last_id}, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str | None) -> int:
    """The id a cursor stands for (0 for none); a cursor not made here is a 422."""
    if not cursor:
        return 0
    try:
        data = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        value = data["after"]
    except (binascii.Error, ValueError, TypeError, KeyError):
        value = None
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value < 2**53:
        raise problems.invalid(
            [FieldError(field="cursor", message="not a cursor from this API")],
            "pass the next_cursor of the previous page unchanged",
        )
    return value
