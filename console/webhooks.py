"""Outbound event webhooks: add (the signing secret is shown once), test, pause, remove.

``/admin/webhooks`` is MSP staff's page: every endpoint, MSP-wide ones and each
client's, with a form for either. A client admin is sent to their client's page,
``/admin/clients/<slug>/webhooks``, which lists and adds that client's own endpoints
(MSP staff may use it too). Who may do what is decided in
:mod:`blink_sms.services.webhooks`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import flash, redirect, render_template, request, url_for
from sqlalchemy.orm import Session
from werkzeug.wrappers.response import Response

from blink_sms.actors import Actor, Permission
from blink_sms.context import blink
from blink_sms.models import Client
from blink_sms.services import scope
from blink_sms.services import webhooks as service
from blink_sms.services.errors import Conflict, Invalid, NotFound
from blink_sms.services.webhook_events import EVENT_TYPES

from .auth import actor, needs
from .blueprint import bp

managers = needs(lambda who: who.may(Permission.MANAGE_CLIENT))
LABELS = {"url": "Address", "client": "Client", "events": "Events", "description": "Description"}
EVENT_HELP = {
    "reset.completed": "a password was reset",
    "reset.failed": "a reset failed",
    "unlock.completed": "an account was unlocked",
    "unlock.failed": "an unlock failed",
    "lockout.detected": "an enrolled user's account locked out",
    "enrollment.completed": "a user bound their phone",
}


def _page(client: Client | None) -> tuple[str, int]:
    """List, and on POST add an endpoint: MSP-wide page (``client`` None) or a client's."""
    app = blink()
    who = actor()
    errors: dict[str, str] = {}
    shown = None
    form = request.form
    with app.db.session() as db:
        if request.method == "POST":
            try:
                target = client
                if client is None and form.get("client"):
                    target = scope.client(db, who, form.get("client", ""))
                row, shown = service.create_endpoint(
                    db,
                    app.secrets,
                    who,
                    url=form.get("url", "")[: service.MAX_URL + 1],
                    client=target,
                    events=form.getlist("events"),
                    description=form.get("description", "")[: service.MAX_DESCRIPTION + 1],
                )
                flash(f"Webhook endpoint added: {row.url}", "success")
            except Invalid as err:
                errors[err.field] = err.message
            except Conflict as err:
                errors["url"] = str(err)
        listed = service.list_endpoints(db, who, client=client)
        clients = db.execute(scope.clients(who).order_by(Client.name)).scalars().all()
        return render_template(
            "console/webhooks.html",
            client=client,
            listed=listed,
            clients=clients,
            client_names={c.id: c.name for c in clients},
            event_types=EVENT_TYPES,
            event_help=EVENT_HELP,
            labels=LABELS,
            errors=errors,
            form=form if errors else {},
            shown=shown,
        ), (400 if errors else 200)


@bp.route("/webhooks", methods=["GET", "POST"])
@managers
def webhooks() -> Any:
    """MSP staff: every endpoint. A client admin: their client's page."""
    who = actor()
    if not who.msp_wide:
        if request.method == "POST":
            raise NotFound("page")  # MSP-wide endpoints are not theirs to add
        with blink().db.session() as db:
            own = db.execute(scope.clients(who)).scalar_one()
            return redirect(url_for("console.client_webhooks", slug=own.slug))
    return _page(None)


@bp.route("/clients/<slug>/webhooks", methods=["GET", "POST"])
@managers
def client_webhooks(slug: str) -> Any:
    """One client's own endpoints."""
    with blink().db.session() as db:
        client = scope.client(db, actor(), slug)
        db.expunge(client)
    return _page(client)


Action = Callable[[Session, Actor, int], object]


def _act(webhook_id: int, done: str, action: Action) -> Response:
    """Run ``action(db, actor, webhook_id)``, flash ``done`` or the refusal, go back."""
    with blink().db.session() as db:
        try:
            action(db, actor(), webhook_id)
            flash(done, "info")
        except Conflict as err:
            flash(str(err), "error")
    back = request.form.get("back", "")
    if back:
        return redirect(url_for("console.client_webhooks", slug=back))
    return redirect(url_for("console.webhooks"))


@bp.route("/webhooks/<int:webhook_id>/test", methods=["POST"])
@managers
def webhook_test(webhook_id: int) -> Response:
    done = "Test event queued: it goes out within seconds; reload to see how it went."
    return _act(webhook_id, done, service.send_test)


@bp.route("/webhooks/<int:webhook_id>/disable", methods=["POST"])
@managers
def webhook_disable(webhook_id: int) -> Response:
    done = "Endpoint paused: no new events are queued; what is queued waits."

    def disable(db: Session, who: Actor, endpoint_id: int) -> object:
        return service.set_disabled(db, who, endpoint_id, disabled=True)

    return _act(webhook_id, done, disable)


@bp.route("/webhooks/<int:webhook_id>/enable", methods=["POST"])
@managers
def webhook_enable(webhook_id: int) -> Response:
    def enable(db: Session, who: Actor, endpoint_id: int) -> object:
        return service.set_disabled(db, who, endpoint_id, disabled=False)

    return _act(webhook_id, "Endpoint enabled.", enable)


@bp.route("/webhooks/<int:webhook_id>/remove", methods=["POST"])
@managers
def webhook_remove(webhook_id: int) -> Response:
    return _act(webhook_id, "Endpoint removed.", service.remove_endpoint)
