"""The MSP's settings page: how long the audit trail is kept.

MSP-wide admins see it (a client admin gets 404: it is not theirs to see); only MSP
owners change it (:func:`blink_sms.services.retention.set_audit_retention`).
"""

from __future__ import annotations

from typing import Any

from flask import flash, redirect, render_template, request, url_for

from blink_sms.actors import Permission
from blink_sms.context import blink
from blink_sms.services import retention
from blink_sms.services.errors import Invalid

from .auth import actor, needs
from .blueprint import bp

LABELS = {"audit_retention_days": "Keep audit events"}


@bp.route("/settings", methods=["GET", "POST"])
@needs(lambda who: who.msp_wide)
def msp_settings() -> Any:
    """The settings, and a form to change them (MSP owners)."""
    errors: dict[str, str] = {}
    typed = ""
    with blink().db.session() as db:
        if request.method == "POST":
            actor().require(Permission.MANAGE_ADMINS)  # before the form: 403, not 400
            typed = request.form.get("audit_retention_days", "").strip()[:20]
            try:
                if not typed.isdigit():
                    raise Invalid("audit_retention_days", "a whole number of days")
                changed = retention.set_audit_retention(db, actor(), int(typed))
            except Invalid as err:
                db.rollback()
                errors[err.field] = err.message
            else:
                flash(
                    f"Audit events are kept {typed} days" if changed else "Nothing changed",
                    "success",
                )
                return redirect(url_for("console.msp_settings"), 303)
        days = retention.audit_retention_days(db)
        return render_template(
            "console/msp_settings.html",
            days=days,
            value=typed if errors else str(days),
            default=retention.DEFAULT_RETENTION_DAYS,
            low=retention.MIN_RETENTION_DAYS,
            high=retention.MAX_RETENTION_DAYS,
            errors=errors,
            labels=LABELS,
        ), (400 if errors else 200)
