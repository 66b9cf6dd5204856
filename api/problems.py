"""Errors as RFC 9457 problem details (``application/problem+json``).

Every refusal of the API has the same shape: ``type`` (a URI naming the kind of
problem, relative to the API), ``title`` (the same for every problem of that kind),
``status``, ``detail`` (this occurrence in plain words) and, for bad input, ``errors``:
one ``{"field", "message"}`` per field. Another client's object and an object that
does not exist are the same 404, word for word.
"""

from __future__ import annotations

import json
from typing import Any

from flask import Response
from werkzeug.exceptions import HTTPException

from blink_sms.actors import Forbidden
from blink_sms.services.errors import Conflict, Invalid, NotFound

from .schemas import FieldError, Problem

__all__ = ["MEDIA_TYPE", "ApiProblem", "Problem", "invalid", "of", "response"]

MEDIA_TYPE = "application/problem+json"
TYPES = "/api/v1/problems/"


class ApiProblem(Exception):
    """Raised by the API's own code to answer with a problem."""

    def __init__(
        self,
        status: int,
        kind: str,
        title: str,
        detail: str | None = None,
        *,
        errors: list[FieldError] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(detail or title)
        self.problem = Problem(
            type=TYPES + kind, title=title, status=status, detail=detail, errors=errors
        )
        self.headers = headers or {}


def response(problem: Problem, headers: dict[str, str] | None = None) -> Response:
    body = json.dumps(problem.model_dump(exclude_none=True), ensure_ascii=False)
    return Response(body, status=problem.status, mimetype=MEDIA_TYPE, headers=headers)


def invalid(errors: list[FieldError], detail: str = "the request has invalid fields") -> ApiProblem:
    return ApiProblem(422, "invalid", "Invalid request", detail, errors=errors)


# The services' refusals: the status, the problem's kind and title, and a fixed detail
# (None: the refusal's own words).
REFUSALS: list[tuple[type[Exception], int, str, str, str | None]] = [
    (NotFound, 404, "not-found", "Not found", None),
    (
        Forbidden,
        403,
        "forbidden",
        "Forbidden",
        "this API key may not do this (a read-only key, or a client's key)",
    ),
    (Conflict, 409, "conflict", "Conflict", None),
]


def of(err: Exception) -> Response | None:
    """The problem response for a refusal of the services (None: not one of theirs)."""
    if isinstance(err, ApiProblem):
        return response(err.problem, err.headers)
    if isinstance(err, Invalid):
        return response(invalid([FieldError(field=err.field, message=err.message)]).problem)
    for kind, status, slug, title, detail in REFUSALS:
        if isinstance(err, kind):
            return response(
                Problem(type=TYPES + slug, title=title, status=status, detail=detail or str(err))
            )
    if isinstance(err, HTTPException) and err.code is not None:
        return _http(err, err.code)
    return None


def _http(err: HTTPException, code: int) -> Response:
    headers: dict[str, str] = {}
    allowed = getattr(err, "valid_methods", None)
    if code == 405 and allowed:
        headers["Allow"] = ", ".join(allowed)
    detail = err.description if code != 404 else "no such resource"
    return response(
        Problem(type="about:blank", title=err.name, status=code, detail=detail), headers
    )


def problem_schema() -> dict[str, Any]:
    """The Problem schema, for documenting error responses."""
    return Problem.model_json_schema()
