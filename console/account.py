"""Signing in and out, the set-up link, the second factor and the admin's own account."""

from __future__ import annotations

from typing import Any

from flask import flash, g, redirect, render_template, request, session, url_for
from werkzeug.wrappers.response import Response

from blink_sms.context import blink
from blink_sms.crypto import SecretBoxError
from blink_sms.models import Admin, Client
from blink_sms.services import admins as service
from blink_sms.services import second_factor as factors
from blink_sms.services.errors import Invalid

from . import auth
from .auth import own_account, public, self_service
from .blueprint import bp

ENROLMENT = "console_totp"  # the secret being enrolled, encrypted, until it is confirmed


def _client_ip() -> str:
    return request.remote_addr or "unknown"


def _after_password(admin: Admin, said: str | None = None) -> Response:
    """The password was right: go on to the second factor, or set one up, or in."""
    enrolled = factors.has_second_factor(admin)
    needed = factors.needs_second_factor(admin)
    auth.start(admin, second_factor_done=not enrolled and not needed)
    if said:  # after start(): it clears the session, pending flashes included
        flash(said, "success")
    if enrolled:
        return redirect(url_for("console.second_factor", next=request.args.get("next")))
    if needed:
        flash("Your role needs a second factor: set up an authenticator app to go on.", "info")
        return redirect(url_for("console.two_factor"))
    return redirect(auth.safe_next(request.args.get("next")))


@bp.route("/sign-in", methods=["GET", "POST"])
@public
def sign_in() -> Any:
    error = None
    email = ""
    if request.method == "POST":
        email = request.form.get("email", "").strip()
        app = blink()
        with app.db.session() as db:
            try:
                admin = service.authenticate(
                    app, db, email=email, password=request.form.get("password", ""),
                    ip=_client_ip(),
                )  # fmt: skip
            except service.SignInRefused as err:
                error = err.message
            else:
                db.expunge(admin)
                return _after_password(admin)
    status = 429 if error and "try again" in error else (401 if error else 200)
    return render_template("console/sign_in.html", error=error, email=email), status


@bp.route("/sign-in/verify", methods=["GET", "POST"])
@self_service
def second_factor() -> Any:
    admin: Admin = g.admin
    if (auth.state() or {}).get("2fa"):
        return redirect(url_for("console.home"))
    if not factors.has_second_factor(admin):
        # Nothing to check yet (an MSP role that must set one up): the set-up page.
        return redirect(url_for("console.two_factor"))
    error = None
    app = blink()
    if request.method == "POST":
        code = request.form.get("code", "")
        with app.db.session() as db:
            fresh = db.get(Admin, admin.id)
            assert fresh is not None
            try:
                ok = factors.verify_second_factor(app, db, fresh, code, ip=_client_ip())
            except service.SignInRefused as err:
                ok, error = False, err.message
        if ok:
            auth.passed_second_factor()
            return redirect(auth.safe_next(request.args.get("next")))
        error = error or "That code did not work. Use the newest code, or a recovery code."
    with app.db.session() as db:
        passkeys = factors.has_passkeys(db, admin)
    return render_template("console/second_factor.html", error=error, passkeys=passkeys), (
        401 if error else 200
    )


@bp.route("/account/two-factor", methods=["GET", "POST"])
@self_service
def two_factor() -> Any:
    """Set up an authenticator app (TOTP); the recovery codes are shown once, here."""
    admin: Admin = g.admin
    app = blink()
    passed = bool((auth.state() or {}).get("2fa"))
    if factors.has_second_factor(admin) and not passed:
        # Replacing a second factor needs the current one first.
        return redirect(url_for("console.second_factor"))
    error = None
    if request.method == "POST":
        try:
            secret = app.secrets.decrypt_json(session.get(ENROLMENT, ""))["secret"]
        except (SecretBoxError, KeyError, TypeError):
            secret = None
        if secret is None:
            error = "The set-up expired: scan the new code below."
        else:
            with app.db.session() as db:
                fresh = db.get(Admin, admin.id)
                assert fresh is not None
                try:
                    codes = factors.confirm_totp(
                        app, db, fresh, secret, request.form.get("code", "")
                    )
                except Invalid as err:
                    error = err.message
                else:
                    session.pop(ENROLMENT, None)
                    auth.passed_second_factor()
                    return render_template("console/recovery_codes.html", codes=codes)
    enrolment = factors.begin_totp(app, admin)
    session[ENROLMENT] = app.secrets.encrypt_json({"secret": enrolment.secret})
    return render_template("console/two_factor.html", enrolment=enrolment, error=error), (
        400 if error else 200
    )


@bp.route("/setup/<token>", methods=["GET", "POST"])
@public
def setup(token: str) -> Any:
    """The one-time set-up link: choose a password (GET only shows the form)."""
    app = blink()
    with app.db.session() as db:
        try:
            link = service.check_setup_token(db, token)
        except service.TokenInvalid as err:
            return render_template("console/setup_invalid.html", reason=err.reason), 404
        email = db.get(Admin, link.admin_id).email  # type: ignore[union-attr]
        error = None
        if request.method == "POST":
            password = request.form.get("password", "")
            if password != request.form.get("confirm", ""):
                error = "The two passwords are not the same."
            else:
                try:
                    admin = service.complete_setup(app, db, token, password)
                except Invalid as err:
                    error = err.message
                except service.TokenInvalid as err:
                    return render_template("console/setup_invalid.html", reason=err.reason), 404
                else:
                    db.expunge(admin)
                    return _after_password(admin, said="Your password is set.")
    return render_template("console/setup.html", email=email, error=error), (400 if error else 200)


@bp.route("/sign-out", methods=["POST"])
@self_service
def sign_out() -> Response:
    auth.end()
    flash("You are signed out.", "info")
    return redirect(url_for("console.sign_in"))


@bp.route("/account")
@own_account
def account() -> Any:
    admin: Admin = g.admin
    with blink().db.session() as db:
        client = db.get(Client, admin.client_id) if admin.client_id else None
        codes_left = factors.recovery_codes_left(db, admin)
        passkeys = [(p.name, p.created_at) for p in factors.list_passkeys(db, admin)]
    return render_template(
        "console/account.html",
        admin=admin,
        client=client,
        codes_left=codes_left,
        passkeys=passkeys,
    )


@bp.route("/account/sign-out-everywhere", methods=["POST"])
@own_account
def sign_out_everywhere() -> Response:
    app = blink()
    with app.db.session() as db:
        admin = db.get(Admin, g.admin.id)
        assert admin is not None
        service.sign_out_everywhere(db, auth.actor(), admin)
    auth.end()
    flash("Every session of your account is signed out, this one too.", "info")
    return redirect(url_for("console.sign_in"))


@bp.route("/account/recovery-codes", methods=["POST"])
@own_account
def new_recovery_codes() -> Any:
    app = blink()
    with app.db.session() as db:
        admin = db.get(Admin, g.admin.id)
        assert admin is not None
        codes = factors.regenerate_recovery_codes(db, admin)
    return render_template("console/recovery_codes.html", codes=codes)
