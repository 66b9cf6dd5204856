"""The MSP's admin accounts: list, invite, change role, disable, remove (MSP owners only).

Anyone else gets a 404, as for a page that does not exist.
"""

from __future__ import annotations

from typing import Any

from flask import flash, redirect, render_template, request, url_for
from werkzeug.wrappers.response import Response

from blink_sms.actors import Permission, Role
from blink_sms.context import blink
from blink_sms.models import Client
from blink_sms.services import admins as service
from blink_sms.services import scope
from blink_sms.services.errors import Conflict, Invalid

from .auth import actor, needs
from .blueprint import bp

owners_only = needs(lambda who: who.may(Permission.MANAGE_ADMINS))


def _role(value: str) -> Role:
    try:
        return Role(value)
    except ValueError:
        raise Invalid("role", "choose a role") from None


def _client(db: Any, slug: str) -> Client | None:
    return scope.client(db, actor(), slug) if slug else None


@bp.route("/admins", methods=["GET", "POST"])
@owners_only
def admins() -> Any:
    """Every admin account, and a form to add one (by email, or a set-up link to hand over)."""
    app = blink()
    errors: dict[str, str] = {}
    link = None
    form = request.form
    with app.db.session() as db:
        if request.method == "POST":
            try:
                email, name = form.get("email", ""), form.get("name", "")
                role = _role(form.get("role", ""))
                client = _client(db, form.get("client", ""))
                if form.get("delivery") == "email":
                    service.invite_admin(
                        app, db, actor(), email=email, role=role, client=client, name=name
                    )
                    flash(f"Invitation emailed to {email}.", "success")
                    return redirect(url_for("console.admins"))
                _, link = service.create_admin(
                    app, db, actor(), email=email, role=role, client=client, name=name
                )
            except Invalid as err:
                errors[err.field] = err.message
            except Conflict as err:
                errors["email"] = str(err)
        accounts = service.list_admins(db, actor())
        clients = db.execute(scope.clients(actor()).order_by(Client.name)).scalars().all()
        names = {client.id: client.name for client in clients}
        return render_template(
            "console/admins.html",
            accounts=accounts,
            clients=clients,
            client_names=names,
            roles=list(Role),
            errors=errors,
            form=form if errors else {},
            link=link,
        ), (400 if errors else 200)


def _act(admin_id: int, what: str) -> Response:
    app = blink()
    with app.db.session() as db:
        admin = service.get_admin(db, actor(), admin_id)
        email = admin.email
        try:
            if what == "role":
                client = _client(db, request.form.get("client", ""))
                service.change_role(db, actor(), admin, _role(request.form.get("role", "")),
                                    client=client)  # fmt: skip
                flash(f"{email}: role changed; their sessions were ended.", "success")
            elif what == "disable":
                disabled = request.form.get("disabled") != "0"
                service.disable_admin(db, actor(), admin, disabled=disabled)
                flash(f"{email}: {'disabled' if disabled else 'enabled'}.", "success")
            elif what == "remove":
                service.remove_admin(db, actor(), admin)
                flash(f"{email}: removed.", "success")
            elif what == "reset-2fa":
                url = service_reset(app, db, admin)
                flash(f"{email}: second factors cleared. Hand over this set-up link: {url}", "info")
        except (Invalid, Conflict) as err:
            flash(str(err), "error")
    return redirect(url_for("console.admins"))


def service_reset(app: Any, db: Any, admin: Any) -> str:
    from blink_sms.services.second_factor import reset_second_factors

    return reset_second_factors(app, db, actor(), admin)


@bp.route("/admins/<int:admin_id>/role", methods=["POST"])
@owners_only
def admin_role(admin_id: int) -> Response:
    return _act(admin_id, "role")


@bp.route("/admins/<int:admin_id>/disable", methods=["POST"])
@owners_only
def admin_disable(admin_id: int) -> Response:
    return _act(admin_id, "disable")


@bp.route("/admins/<int:admin_id>/remove", methods=["POST"])
@owners_only
def admin_remove(admin_id: int) -> Response:
    return _act(admin_id, "remove")


@bp.route("/admins/<int:admin_id>/reset-2fa", methods=["POST"])
@owners_only
def admin_reset_2fa(admin_id: int) -> Response:
    return _act(admin_id, "reset-2fa")
