"""Console sessions: who is signed in, for how long, and the actor their requests act as.

The session lives in Flask's signed cookie (Secure, HttpOnly, SameSite=Lax). It holds
the admin's id, the account's ``session_epoch`` (so "sign out everywhere" ends every
session at once), when the sign-in happened (12 h absolute limit) and when the admin
was last seen (30 min idle limit), and whether the second factor was passed. A sign-in
clears whatever the session held before, so a session planted before sign-in
(fixation) is never promoted.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from functools import wraps
from typing import Any, ParamSpec, TypeVar

from flask import g, redirect, request, session, url_for
from werkzeug.wrappers.response import Response

from blink_sms.actors import Actor, Role, admin_actor
from blink_sms.context import blink
from blink_sms.models import Admin

from .blueprint import bp

P = ParamSpec("P")
R = TypeVar("R")

KEY = "console"
IDLE_SECONDS = 30 * 60
ABSOLUTE_SECONDS = 12 * 60 * 60

# Endpoints anyone may open: signing in and setting an account up.
PUBLIC: set[str] = set()
# Endpoints a signed-in admin may use before the second factor is set up or passed, and
# that every role may POST to (they act on the admin's own account, not on clients).
SELF_SERVICE: set[str] = set()
# Endpoints about the admin's own account: the second factor is needed, but every role,
# auditors included, may POST to them.
OWN_ACCOUNT: set[str] = set()


def public(view: Callable[P, R]) -> Callable[P, R]:
    PUBLIC.add(f"console.{view.__name__}")
    return view


def self_service(view: Callable[P, R]) -> Callable[P, R]:
    SELF_SERVICE.add(f"console.{view.__name__}")
    return view


def own_account(view: Callable[P, R]) -> Callable[P, R]:
    OWN_ACCOUNT.add(f"console.{view.__name__}")
    return view


def start(admin: Admin, *, second_factor_done: bool) -> None:
    """Begin a fresh session for ``admin`` (whatever the cookie held before is dropped)."""
    session.clear()
    now = int(time.time())
    session[KEY] = {
        "admin": admin.id,
        "epoch": admin.session_epoch,
        "at": now,
        "seen": now,
        "2fa": second_factor_done,
    }
    session.permanent = False


def passed_second_factor() -> None:
    state = dict(session.get(KEY) or {})
    state["2fa"] = True
    session[KEY] = state


def end() -> None:
    session.clear()


def state() -> dict[str, Any] | None:
    value = session.get(KEY)
    return value if isinstance(value, dict) else None


def load_admin() -> Admin | None:
    """The signed-in admin, if the session is still valid (not idle, expired or revoked)."""
    current = state()
    if current is None:
        return None
    now = time.time()
    if now - current.get("seen", 0) > IDLE_SECONDS or now - current.get("at", 0) > (
        ABSOLUTE_SECONDS
    ):
        return None
    with blink().db.session() as db:
        admin = db.get(Admin, current.get("admin"))
        if admin is None or admin.disabled_at is not None:
            return None
        if admin.session_epoch != current.get("epoch"):
            return None  # signed out everywhere since
        db.expunge(admin)
    if now - current.get("seen", 0) > 60:  # one cookie write a minute is enough
        current["seen"] = int(now)
        session[KEY] = current
    return admin


def actor_of(admin: Admin) -> Actor:
    role = Role(admin.role)
    return admin_actor(admin.id, admin.email, role, admin.client_id, request.remote_addr)


@bp.before_request
def _require_sign_in() -> Response | None:
    """Every console page needs a signed-in admin who passed their second factor."""
    endpoint = request.endpoint or ""
    if endpoint in PUBLIC or endpoint == "console.static":
        return None
    admin = load_admin()
    if admin is None:
        end()
        return redirect(url_for("console.sign_in", next=request.full_path.rstrip("?")))
    current = state() or {}
    g.admin = admin
    g.actor = actor_of(admin)
    if endpoint in SELF_SERVICE:
        return None
    if not current.get("2fa"):
        return redirect(url_for("console.second_factor"))
    if request.method == "POST" and g.actor.role is Role.AUDITOR and endpoint not in OWN_ACCOUNT:
        from blink_sms.actors import Forbidden

        raise Forbidden("an auditor may look, not change")
    return None


def actor() -> Actor:
    """The signed-in admin's actor (inside a console request)."""
    current: Actor = g.actor
    return current


def safe_next(value: str | None) -> str:
    """Where to go after sign-in: a path inside the console, never another site."""
    if value and value.startswith("/admin/") and not value.startswith("//"):
        return value
    return url_for("console.home")


def needs(check: Callable[[Actor], bool]) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Hide a page from actors who fail ``check`` (a 404, like an object they cannot see)."""

    def decorate(view: Callable[P, R]) -> Callable[P, R]:
        @wraps(view)
        def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
            if not check(actor()):
                from blink_sms.services.errors import NotFound

                raise NotFound("page")
            return view(*args, **kwargs)

        return wrapper

    return decorate
