"""GDPR on a user's page: download everything held about them, or erase their personal data.

The export is a JSON download (a GET: it changes nothing but the trail, which records
who exported); the erasure is a POST that the admin confirms by typing the username, as
a client's removal asks for its slug. The rules and the audit events are in
:mod:`blink_sms.services.privacy`.
"""

from __future__ import annotations

import json

from flask import Response, flash, redirect, request, url_for
from werkzeug.wrappers.response import Response as Redirect

from blink_sms.actors import Permission
from blink_sms.context import blink
from blink_sms.services import privacy, scope
from blink_sms.services.errors import Conflict

from .auth import actor
from .blueprint import bp


@bp.route("/clients/<slug>/users/<user_id>/export.json")
def user_export(slug: str, user_id: str) -> Response:
    """Everything held about the user, as a JSON file."""
    with blink().db.session() as db:
        client = scope.client(db, actor(), slug)
        found = scope.user(db, actor(), client, user_id)
        data = privacy.export_user(db, actor(), found)
    name = f"blink-sms-{client.slug}-user-{found.id}.json"
    return Response(
        json.dumps(data, indent=2, ensure_ascii=False),
        mimetype="application/json",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


@bp.post("/clients/<slug>/users/<user_id>/erase")
def user_erase(slug: str, user_id: str) -> Redirect:
    """Erase the user's personal data once the admin typed their username."""
    with blink().db.session() as db:
        client = scope.client(db, actor(), slug)
        found = scope.user(db, actor(), client, user_id)
        # The role first: one who may not erase learns that, not what to type.
        actor().require(Permission.MANAGE_USERS)
        name = found.username
        if request.form.get("confirm", "").strip()[:300] != name:
            flash(f"Nothing erased: type the username ({name}) to confirm", "error")
            return redirect(url_for("console.user", slug=slug, user_id=user_id), 303)
        try:
            privacy.erase_user(db, actor(), found)
        except Conflict as err:
            flash(str(err), "error")
        else:
            flash(
                f"{name}: personal data erased. The audit trail keeps their events,"
                f" now under {found.username}.",
                "success",
            )
    return redirect(url_for("console.user", slug=slug, user_id=user_id), 303)
