"""Passkeys (WebAuthn) as a second factor: JSON endpoints for ``console.js``.

The options endpoints keep the challenge in the signed session; each challenge is used
once. Registering needs the second factor already passed (an authenticator app comes
first); signing in with a passkey passes it.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from flask import g, jsonify, request, session
from sqlalchemy.orm import Session
from werkzeug.wrappers.response import Response

from blink_sms.context import Blink, blink
from blink_sms.models import Admin
from blink_sms.services import second_factor as factors
from blink_sms.services.admins import SignInRefused
from blink_sms.services.errors import Conflict, Invalid

from . import auth
from .auth import own_account, self_service
from .blueprint import bp

REGISTER, SIGN_IN = "console_passkey_register", "console_passkey_sign_in"


def _options(body: str) -> Response:
    return Response(body, mimetype="application/json")


def _refused(message: str, status: int = 400) -> tuple[Response, int]:
    return jsonify({"error": message}), status


def _fresh(db: Session) -> Admin:
    admin = db.get(Admin, g.admin.id)
    assert admin is not None
    return admin


def _begin(make: Callable[[Blink, Session, Admin], tuple[str, str]], key: str) -> Any:
    """Options for the browser; the challenge waits in the signed session, for one use."""
    app = blink()
    with app.db.session() as db:
        try:
            options, challenge = make(app, db, _fresh(db))
        except Conflict as err:
            return _refused(str(err), 409)
    session[key] = challenge
    return _options(options)


@bp.route("/account/passkeys/options", methods=["POST"])
@own_account
def passkey_register_options() -> Any:
    return _begin(factors.passkey_registration_options, REGISTER)


@bp.route("/account/passkeys", methods=["POST"])
@own_account
def passkey_register() -> Any:
    challenge = session.pop(REGISTER, None)
    payload = request.get_json(silent=True) or {}
    if challenge is None:
        return _refused("start again: the passkey request expired")
    app = blink()
    with app.db.session() as db:
        try:
            factors.register_passkey(
                app,
                db,
                _fresh(db),
                name=str(payload.get("name") or "Passkey"),
                credential_json=json.dumps(payload.get("credential")),
                challenge=challenge,
            )
        except (Invalid, Conflict) as err:
            return _refused(getattr(err, "message", str(err)))
    return jsonify({"ok": True})


@bp.route("/sign-in/passkey/options", methods=["POST"])
@self_service
def passkey_sign_in_options() -> Any:
    return _begin(factors.passkey_authentication_options, SIGN_IN)


@bp.route("/sign-in/passkey", methods=["POST"])
@self_service
def passkey_sign_in() -> Any:
    challenge = session.pop(SIGN_IN, None)
    payload = request.get_json(silent=True) or {}
    if challenge is None:
        return _refused("start again: the passkey request expired")
    app = blink()
    with app.db.session() as db:
        try:
            ok = factors.verify_passkey(
                app,
                db,
                _fresh(db),
                json.dumps(payload.get("credential")),
                challenge,
                ip=request.remote_addr,
            )
        except SignInRefused as err:
            return _refused(err.message, 429)
    if not ok:
        return _refused("that passkey did not work", 401)
    auth.passed_second_factor()
    return jsonify({"redirect": auth.safe_next(request.args.get("next"))})
