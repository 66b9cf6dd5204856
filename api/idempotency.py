"""``Idempotency-Key`` on the POSTs that act: a retried call does its work once.

The first call with a key claims it (a row, unique per API key and key) before it acts,
and stores its answer when done. A retry with the same key and the same request gets
that answer again, with ``Idempotent-Replayed: true``; a retry while the first call still
runs gets 409; the same key for a different request gets 422. An answer of 500 or more
is not kept, so the call can be retried for real. Keys are kept for 24 hours.

No stored answer carries a secret: the actions that take a key return ids and states,
never a password, a link or a key.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from datetime import timedelta
from functools import wraps
from typing import Any

from flask import Response, make_response, request
from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError

from blink_sms.context import blink
from blink_sms.models import IdempotencyKey, utcnow

from . import problems
from .blueprint import key_id
from .schemas import FieldError

HEADER = "Idempotency-Key"
KEEP = timedelta(hours=24)
KEY = re.compile(r"[\x21-\x7e]{1,200}")  # visible ASCII, like a UUID or a ticket number


def _fingerprint() -> str:
    digest = hashlib.sha256()
    for part in (request.method.encode(), request.path.encode(), request.get_data()):
        digest.update(len(part).to_bytes(8, "big"))
        digest.update(part)
    return digest.hexdigest()


def _replay(row: IdempotencyKey, fingerprint: str) -> Response:
    if row.fingerprint != fingerprint:
        raise problems.ApiProblem(
            422,
            "idempotency-key-reused",
            "Idempotency-Key reused",
            "this Idempotency-Key was used for a different request; use a new key",
        )
    if row.status_code is None:
        raise problems.ApiProblem(
            409,
            "idempotency-key-in-use",
            "Request in progress",
            "a request with this Idempotency-Key is still running; retry in a moment",
            headers={"Retry-After": "1"},
        )
    mimetype = problems.MEDIA_TYPE if row.status_code >= 400 else "application/json"
    return Response(
        row.response_body or "",
        status=row.status_code,
        mimetype=mimetype,
        headers={"Idempotent-Replayed": "true"},
    )


def idempotent(view: Callable[..., Any]) -> Callable[..., Any]:
    """Honour an ``Idempotency-Key`` header on this operation."""

    @wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        key = request.headers.get(HEADER)
        if key is None:
            return view(*args, **kwargs)
        if not KEY.fullmatch(key):
            raise problems.invalid(
                [FieldError(field=HEADER, message="1 to 200 visible ASCII characters")]
            )
        fingerprint = _fingerprint()
        owner = key_id()
        app = blink()
        with app.db.session() as db:
            db.execute(delete(IdempotencyKey).where(IdempotencyKey.created_at < utcnow() - KEEP))
            row = IdempotencyKey(
                api_key_id=owner,
                key=key,
                method=request.method,
                path=request.path[:500],
                fingerprint=fingerprint,
            )
            db.add(row)
            try:
                db.commit()
            except IntegrityError:
                db.rollback()
                first = db.execute(
                    select(IdempotencyKey).where(
                        IdempotencyKey.api_key_id == owner, IdempotencyKey.key == key
                    )
                ).scalar_one_or_none()
                if first is None:  # expired and deleted in between: extremely unlikely
                    raise problems.ApiProblem(
                        409, "idempotency-key-in-use", "Request in progress", "retry"
                    ) from None
                return _replay(first, fingerprint)
            claimed = row.id
        try:
            answer = make_response(view(*args, **kwargs))
        except Exception as err:
            refusal = problems.of(err)
            if refusal is None or (
                isinstance(err, problems.ApiProblem) and err.problem.status >= 500
            ):
                _forget(claimed)
                raise
            answer = refusal
        if answer.status_code >= 500:
            _forget(claimed)
            return answer
        with app.db.session() as db:
            db.execute(
                update(IdempotencyKey)
                .where(IdempotencyKey.id == claimed)
                .values(status_code=answer.status_code, response_body=answer.get_data(as_text=True))
            )
            db.commit()
        return answer

    return wrapper


def _forget(claimed: int) -> None:
    with blink().db.session() as db:
        db.execute(delete(IdempotencyKey).where(IdempotencyKey.id == claimed))
        db.commit()
