"""The console's blueprint, its security headers, CSRF check and error pages."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, abort, render_template, request
from flask_wtf.csrf import CSRFError, validate_csrf
from werkzeug.exceptions import HTTPException

from blink_sms.actors import Forbidden
from blink_sms.services.errors import NotFound

bp = Blueprint(
    "console",
    __name__,
    url_prefix="/admin",
    template_folder="templates",
    static_folder="static",
    static_url_path="/static",
)

# Scripts and styles from this origin only: no inline script, no inline style. Logos
# may come from the MSP's https host.
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' https: data:; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)


@bp.before_request
def _csrf() -> None:
    """Every POST to the console carries the form's CSRF token (one check for all forms)."""
    if request.method == "POST":
        token = request.form.get("csrf_token") or request.headers.get("X-CSRF-Token")
        try:
            validate_csrf(token)
        except Exception:  # any invalid token is a 400, whatever the cause
            abort(400, "the form expired or came from elsewhere: go back, reload and try again")


@bp.after_request
def _headers(response: Response) -> Response:
    # A view that needs another policy (a sandboxed preview) sets its own, explicitly.
    response.headers.setdefault("Content-Security-Policy", CSP)
    response.headers["Cache-Control"] = "no-store"
    return response


def _error(status: int, message: str) -> tuple[str, int]:
    return render_template("console/error.html", status=status, message=message), status


@bp.errorhandler(NotFound)
def _not_found(err: NotFound) -> tuple[str, int]:
    return _error(404, "There is nothing here, or it is not yours to see.")


@bp.errorhandler(Forbidden)
def _forbidden(err: Forbidden) -> tuple[str, int]:
    return _error(403, f"Your role does not allow this: {err}.")


@bp.errorhandler(CSRFError)
def _csrf_error(err: CSRFError) -> tuple[str, int]:
    return _error(400, "The form expired or came from elsewhere: go back, reload and try again.")


@bp.errorhandler(HTTPException)
def _http(err: HTTPException) -> Any:
    if err.code in (301, 302, 303, 307, 308):
        return err
    return _error(err.code or 500, err.description or "")
