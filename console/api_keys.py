"""API keys for PSA/RMM tools: create (the key is shown once), list, revoke. MSP owners only."""

from __future__ import annotations

from typing import Any

from flask import flash, redirect, render_template, request, url_for
from werkzeug.wrappers.response import Response

from blink_sms.actors import Permission
from blink_sms.context import blink
from blink_sms.models import Client
from blink_sms.services import api_keys as service
from blink_sms.services import scope
from blink_sms.services.errors import Conflict, Invalid

from .auth import actor, needs
from .blueprint import bp

owners_only = needs(lambda who: who.may(Permission.MANAGE_ADMINS))


@bp.route("/api-keys", methods=["GET", "POST"])
@owners_only
def api_keys() -> Any:
    """Every key with its scope, access and last use; a form to create one."""
    app = blink()
    errors: dict[str, str] = {}
    shown = None
    form = request.form
    with app.db.session() as db:
        if request.method == "POST":
            slug = form.get("client", "")
            try:
                client = scope.client(db, actor(), slug) if slug else None
                _, shown = service.create_key(
                    db,
                    actor(),
                    name=form.get("name", ""),
                    client=client,
                    writes=form.get("access") == "read-write",
                )
            except Invalid as err:
                errors[err.field] = err.message
        keys = service.list_keys(db, actor())
        clients = db.execute(scope.clients(actor()).order_by(Client.name)).scalars().all()
        return render_template(
            "console/api_keys.html",
            keys=keys,
            clients=clients,
            client_names={client.id: client.name for client in clients},
            errors=errors,
            form=form if errors else {},
            shown=shown,
        ), (400 if errors else 200)


@bp.route("/api-keys/<int:key_id>/revoke", methods=["POST"])
@owners_only
def api_key_revoke(key_id: int) -> Response:
    with blink().db.session() as db:
        try:
            row = service.revoke_key(db, actor(), key_id)
            flash(f"API key {row.name!r} revoked: it is refused from its next request on.", "info")
        except Conflict as err:
            flash(str(err), "error")
    return redirect(url_for("console.api_keys"))
