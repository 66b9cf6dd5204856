"""The demo's one-click sign-in to the console as the demo MSP owner.

Registered only by ``blink-sms demo`` (printed SMS, not production): the account has
no password and no second factor, and every page says it is a demo account.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, abort, g, redirect, request, url_for
from flask_wtf.csrf import validate_csrf
from sqlalchemy import select
from werkzeug.wrappers.response import Response

from blink_sms.context import blink
from blink_sms.demo.seed import DEMO_OWNER_EMAIL
from blink_sms.models import Admin

from . import auth

# Its own blueprint, registered only on a demo app (a route added to the console's
# blueprint would outlive the demo app in the process).
bp = Blueprint("console_demo", __name__, url_prefix="/admin")


@bp.route("/demo-sign-in", methods=["POST"])
def sign_in() -> Response:
    validate_csrf(request.form.get("csrf_token"))  # a 400 (CSRFError) when missing
    with blink().db.session() as db:
        admin = db.execute(
            select(Admin).where(Admin.email == DEMO_OWNER_EMAIL)
        ).scalar_one_or_none()
        if admin is None:
            abort(404)
        db.expunge(admin)
    auth.start(admin, second_factor_done=True)
    return redirect(url_for("console.home"))


@bp.app_context_processor
def _demo_context() -> dict[str, Any]:
    admin = g.get("admin")
    return {
        "demo_account": admin is not None and admin.email == DEMO_OWNER_EMAIL,
        "demo_sign_in": url_for("console_demo.sign_in"),
    }
