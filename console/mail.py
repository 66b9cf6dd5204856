"""A client's mail page: its own SMTP server and sender address, and a test email.

The password is write-only: the page shows the server's address without it, and an
empty password box keeps the stored one (see :mod:`blink_sms.services.mail`). "Send
test email" sends a real email the way the client's activation emails go, and says in
plain words whether the server took it, or why not.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from flask import flash, redirect, render_template, request, url_for

from blink_sms.context import blink
from blink_sms.models import Client
from blink_sms.services import mail as service
from blink_sms.services import scope
from blink_sms.services.errors import Conflict, Invalid

from .auth import actor
from .blueprint import bp

LABELS = {
    "url": "Mail server",
    "password": "Password",
    "mail_from": "Sender address",
    "to": "Send the test to",
}
MAX_INPUT = 1000


def _render(
    client: Client,
    *,
    typed: dict[str, str] | None = None,
    errors: dict[str, str] | None = None,
    result: service.TestEmail | None = None,
    to: str = "",
) -> tuple[str, int]:
    app = blink()
    current = service.mail_settings(app.secrets, client)
    values = (
        typed
        if typed is not None
        else {
            "url": current.url or "",
            "mail_from": current.mail_from or "",
        }
    )
    deployment = urlsplit(app.settings.smtp_url).hostname if app.settings.smtp_url else None
    return render_template(
        "console/clients/mail.html",
        client=client,
        current=current,
        values=values,
        deployment_server=deployment,
        deployment_from=app.settings.mail_from,
        errors=errors or {},
        labels=LABELS,
        result=result,
        to=to,
    ), (400 if errors else 200)


@bp.route("/clients/<slug>/mail", methods=["GET", "POST"])
def mail(slug: str) -> Any:
    """Show the mail settings; POST saves them (action=remove goes back to the deployment's)."""
    app = blink()
    with app.db.session() as db:
        client = scope.client(db, actor(), slug)
        if request.method == "GET":
            return _render(client)
        remove = request.form.get("action") == "remove"
        url = "" if remove else request.form.get("url", "").strip()[:MAX_INPUT]
        mail_from = "" if remove else request.form.get("mail_from", "").strip()[:MAX_INPUT]
        try:
            changed = service.set_mail_settings(
                db,
                app.secrets,
                actor(),
                client,
                url,
                mail_from,
                password=request.form.get("password", "")[:MAX_INPUT] or None,
            )
        except Invalid as err:
            db.rollback()
            typed = {"url": url, "mail_from": mail_from}
            return _render(client, typed=typed, errors={err.field: err.message})
        if remove:
            flash("Emails of this client go through the deployment's mail server again", "success")
        else:
            flash(f"Saved: {', '.join(changed)}" if changed else "Nothing changed", "success")
    return redirect(url_for("console.mail", slug=slug), 303)


@bp.post("/clients/<slug>/mail/test")
def mail_test(slug: str) -> Any:
    """Send a test email to the address typed; show whether the server took it."""
    app = blink()
    to = request.form.get("to", "").strip()[:MAX_INPUT]
    with app.db.session() as db:
        client = scope.client(db, actor(), slug)
        try:
            result = service.send_test_email(app, db, actor(), client, to)
        except Invalid as err:
            return _render(client, errors={err.field: err.message}, to=to)
        except Conflict as err:
            return _render(client, result=service.TestEmail(False, str(err)), to=to)
        if not result.ok:
            return _render(client, result=result, to=to)
    flash(result.message + " Check that it arrived.", "success")
    return redirect(url_for("console.mail", slug=slug), 303)
