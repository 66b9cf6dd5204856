"""A client's users: the paged list, one user and what an admin can do to them, the import.

Each action is its own POST that calls one service as the signed-in admin and redirects
back with a flash (Post/Redirect/Get). Two answers are pages instead: a form with a bad
field comes back with the error and what was typed, and a generated password is shown
on the response to its POST, once, and kept nowhere.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable
from typing import Any

from flask import flash, make_response, redirect, render_template, request, url_for
from sqlalchemy.orm import Session
from werkzeug.wrappers.response import Response

from blink_sms.context import Blink, blink
from blink_sms.crypto import SecretBoxError, mask_phone
from blink_sms.models import Client, RequestKind, User, utcnow
from blink_sms.services import (
    enrollment,
    imports,
    invitations,
    passwords,
    pins,
    scope,
    user_details,
)
from blink_sms.services import users as service
from blink_sms.services.errors import Conflict, Invalid, NotFound
from directory_adapters import UNLOCK, DirectoryError

from .auth import actor
from .blueprint import bp

# A flash lives in the session cookie (4 kB in all): long lists are cut.
FLASH_ITEMS = 5


def _page_number(value: str | None) -> int:
    try:
        return max(1, int(value or 1))
    except ValueError:
        return 1


def _listing(q: str, state: str) -> dict[str, Any]:
    """The listing's query parameters, for links and redirects that keep them."""
    return {key: value for key, value in (("q", q), ("state", state)) if value}


def _some(items: Iterable[str]) -> str:
    """``items`` counted and cut to a few, for one flash line."""
    counted = Counter(items)
    shown = [
        f"{item} ({n} times)" if n > 1 else item for item, n in counted.most_common(FLASH_ITEMS)
    ]
    rest = sum(counted.values()) - sum(n for _, n in counted.most_common(FLASH_ITEMS))
    return "; ".join(shown) + (f"; and {rest} more" if rest else "")


# --- the list --------------------------------------------------------------------------------


@bp.route("/clients/<slug>/users")
def users(slug: str) -> Any:
    """One page of users: search, a state filter, and paging that keeps both."""
    app = blink()
    q = request.args.get("q", "").strip()[:100]
    state = request.args.get("state", "").strip()
    page = _page_number(request.args.get("page"))
    errors: dict[str, str] = {}
    with app.db.session() as db:
        client = scope.client(db, actor(), slug)
        listing = None
        trouble = None  # the directory failed to say who is locked out
        try:
            listing = service.list_users(app, db, actor(), client, search=q, state=state, page=page)
        except Invalid as err:
            errors[err.field] = err.message
        except (DirectoryError, SecretBoxError) as err:
            trouble = imports.plain_words(err)
        now = utcnow()
        rows = [
            (row.user, user_details.describe_status(row.user, row.invitation, now))
            for row in (listing.rows if listing else [])
        ]
        return render_template(
            "console/users/list.html",
            client=client,
            listing=listing,
            rows=rows,
            q=q,
            state=state,
            states=service.STATES,
            query=_listing(q, state),
            errors=errors,
            trouble=trouble,
            mask_phone=mask_phone,
        ), (400 if errors else 200)


@bp.post("/clients/<slug>/users/invite-pending")
def users_invite_pending(slug: str) -> Response:
    """Invite everyone not yet active whose last invitation is missing, failed or expired."""
    app = blink()
    with app.db.session() as db:
        client = scope.client(db, actor(), slug)
        try:
            sent, problems = invitations.invite_pending(app, db, actor(), client)
        except Conflict as err:
            flash(str(err), "error")
        else:
            flash(f"{sent} activation email{'' if sent == 1 else 's'} queued", "success")
            if problems:
                flash(f"Not invited ({len(problems)}): {_some(problems)}", "error")
    back = _listing(request.form.get("q", "")[:100], request.form.get("state", ""))
    return redirect(url_for("console.users", slug=slug, **back))


# --- one user --------------------------------------------------------------------------------


def _render_user(
    db: Session,
    client: Client,
    user: User,
    *,
    errors: dict[str, str] | None = None,
    form: dict[str, str] | None = None,
) -> tuple[str, int]:
    detail = user_details.user_detail(db, actor(), user)
    pending = enrollment.pending_binding(db, user)
    return render_template(
        "console/users/user.html",
        client=client,
        detail=detail,
        user=user,
        phone=mask_phone(user.phone),
        pending=pending,
        pending_phone=mask_phone(pending.phone) if pending else None,
        pin_state=pins.describe(user, client.reset_pin, utcnow()),
        can_unlock=UNLOCK in imports.capabilities(client),
        errors=errors or {},
        form=form or {},
    ), (400 if errors else 200)


@bp.route("/clients/<slug>/users/<user_id>")
def user(slug: str, user_id: str) -> Any:
    """A user's details, their latest reset requests, and the actions on them."""
    with blink().db.session() as db:
        client = scope.client(db, actor(), slug)
        return _render_user(db, client, scope.user(db, actor(), client, user_id))


Action = Callable[[Blink, Session, User], str]


def _act(slug: str, user_id: str, action: Action) -> Response:
    """Run ``action`` on the user; flash what it says, or why it was refused; go back."""
    app = blink()
    with app.db.session() as db:
        client = scope.client(db, actor(), slug)
        found = scope.user(db, actor(), client, user_id)
        try:
            done = action(app, db, found)
        except Conflict as err:
            flash(str(err), "error")
        except (DirectoryError, SecretBoxError) as err:
            flash(imports.plain_words(err), "error")
        else:
            flash(done, "success")
    return redirect(url_for("console.user", slug=slug, user_id=user_id))


@bp.post("/clients/<slug>/users/<user_id>/invite")
def user_invite(slug: str, user_id: str) -> Response:
    def invite(app: Blink, db: Session, user: User) -> str:
        invitations.invite(app, db, actor(), user)
        return f"Activation email queued for {user.email}"

    return _act(slug, user_id, invite)


@bp.post("/clients/<slug>/users/<user_id>/reset")
def user_reset(slug: str, user_id: str) -> Response:
    def reset(app: Blink, db: Session, user: User) -> str:
        invitations.reset_user(app, db, actor(), user)
        return f"{user.username}: phone unbound, new activation email queued for {user.email}"

    return _act(slug, user_id, reset)


@bp.post("/clients/<slug>/users/<user_id>/approve-binding")
def user_approve_binding(slug: str, user_id: str) -> Response:
    def approve(app: Blink, db: Session, user: User) -> str:
        phone = enrollment.approve_binding(app, db, actor(), user)
        return f"{user.username}: phone {phone} approved and bound; welcome text sent"

    return _act(slug, user_id, approve)


@bp.post("/clients/<slug>/users/<user_id>/reject-binding")
def user_reject_binding(slug: str, user_id: str) -> Response:
    def reject(app: Blink, db: Session, user: User) -> str:
        phone = enrollment.reject_binding(db, actor(), user)
        return f"{user.username}: phone {phone} rejected; the link no longer works"

    return _act(slug, user_id, reject)


@bp.post("/clients/<slug>/users/<user_id>/push-reset")
def user_push_reset(slug: str, user_id: str) -> Response:
    def push(app: Blink, db: Session, user: User) -> str:
        service.request(app, db, actor(), user, kind=RequestKind.RESET)
        return f"Reset queued: {user.username} gets a one-time password by text"

    return _act(slug, user_id, push)


@bp.post("/clients/<slug>/users/<user_id>/unlock")
def user_unlock(slug: str, user_id: str) -> Response:
    def unlock(app: Blink, db: Session, user: User) -> str:
        service.request(app, db, actor(), user, kind=RequestKind.UNLOCK)
        return f"Unlock queued: {user.username} gets a text when it is done"

    return _act(slug, user_id, unlock)


@bp.post("/clients/<slug>/users/<user_id>/disable")
def user_disable(slug: str, user_id: str) -> Response:
    disable = request.form.get("disabled", "1") != "0"

    def change(app: Blink, db: Session, user: User) -> str:
        changed = service.set_disabled(db, actor(), user, disabled=disable)
        state = "disabled" if disable else "enabled"
        return f"{user.username}: {state}" if changed else f"{user.username} was already {state}"

    return _act(slug, user_id, change)


@bp.post("/clients/<slug>/users/<user_id>/email")
def user_email(slug: str, user_id: str) -> Any:
    """Change the activation email address; a bad one comes back with what was typed."""
    email = request.form.get("email", "")[:400]
    with blink().db.session() as db:
        client = scope.client(db, actor(), slug)
        found = scope.user(db, actor(), client, user_id)
        try:
            service.set_email(db, actor(), found, email)
        except Invalid as err:
            db.rollback()
            return _render_user(
                db, client, found, errors={err.field: err.message}, form=request.form.to_dict()
            )
        except Conflict as err:
            flash(str(err), "error")
        else:
            flash(f"Email set to {found.email}: send a new activation if they need one", "success")
    return redirect(url_for("console.user", slug=slug, user_id=user_id))


@bp.post("/clients/<slug>/users/<user_id>/remove")
def user_remove(slug: str, user_id: str) -> Any:
    """Remove the user from the gateway, once the admin ticked the confirmation."""
    with blink().db.session() as db:
        client = scope.client(db, actor(), slug)
        found = scope.user(db, actor(), client, user_id)
        if request.form.get("confirm") != "yes":
            message = "tick the box to confirm that the user should be removed"
            return _render_user(db, client, found, errors={"confirm": message})
        name = found.username
        try:
            service.remove_user(db, actor(), found)
        except Conflict as err:
            flash(str(err), "error")
            return redirect(url_for("console.user", slug=slug, user_id=user_id))
    flash(f"{name} removed from the gateway (the directory account is kept)", "success")
    return redirect(url_for("console.users", slug=slug))


@bp.post("/clients/<slug>/users/<user_id>/password")
def user_set_password(slug: str, user_id: str) -> Any:
    """Set a generated password and show it on this response only: no redirect, no flash,
    nothing in the session; the page is ``Cache-Control: no-store``."""
    must_change = request.form.get("must_change") == "yes"
    app = blink()
    with app.db.session() as db:
        client = scope.client(db, actor(), slug)
        found = scope.user(db, actor(), client, user_id)
        try:
            password = passwords.set_generated_password(
                app, db, actor(), found, must_change=must_change
            )
        except Conflict as err:
            flash(str(err), "error")
            return redirect(url_for("console.user", slug=slug, user_id=user_id))
        return render_template(
            "console/users/password.html",
            client=client,
            user=found,
            password=password,
            must_change=must_change,
        )


# --- import ----------------------------------------------------------------------------------


@bp.route("/clients/<slug>/import", methods=["GET", "POST"])
def import_users(slug: str) -> Any:
    """Search groups and OUs (GET ?q=), preview one (GET ?group= / ?ou= / ?all=1) and
    import it (POST); a queued import's progress is GET ?job=. Works without JavaScript:
    every step is a link or a form."""
    app = blink()
    args = request.form if request.method == "POST" else request.args
    picked = {
        "group": args.get("group", "").strip()[:1000],
        "ou": args.get("ou", "").strip()[:1000],
        "all": "1" if args.get("all") else "",
        "name": args.get("name", "").strip()[:200],
    }
    q = request.args.get("q", "").strip()[:200]
    with app.db.session() as db:
        client = scope.client(db, actor(), slug)
        if request.method == "POST":
            return _run_import(app, db, client, picked)
        if "job" in request.args:
            return _progress(app, client, request.args["job"])
        errors: dict[str, str] = {}
        found = count = target = None
        try:
            if picked["group"] or picked["ou"] or picked["all"]:
                target = imports.Scope.of(
                    group=picked["group"], ou=picked["ou"], everyone=bool(picked["all"])
                )
                count = imports.preview(app, actor(), client, target)
            else:
                found = imports.browse(app, actor(), client, q)
        except Invalid as err:
            errors[err.field] = err.message
        except Conflict as err:
            errors["directory"] = str(err)
        return render_template(
            "console/users/import.html",
            client=client,
            q=q,
            found=found,
            target=target,
            count=count,
            picked=picked,
            errors=errors,
        ), (400 if "scope" in errors else 200)


def _run_import(app: Blink, db: Session, client: Client, picked: dict[str, str]) -> Response:
    back: dict[str, Any] = {key: value for key, value in picked.items() if value}
    try:
        target = imports.Scope.of(
            group=picked["group"], ou=picked["ou"], everyone=bool(picked["all"])
        )
        import_id = imports.start_import(app, actor(), client, target, name=picked["name"])
        if import_id is not None:
            return redirect(url_for("console.import_users", slug=client.slug, job=import_id))
        summary = imports.run_import(app, db, actor(), client, target)
    except Invalid as err:
        flash(err.message, "error")
        return redirect(url_for("console.import_users", slug=client.slug))
    except Conflict as err:
        flash(str(err), "error")
        return redirect(url_for("console.import_users", slug=client.slug, **back))
    what = picked["name"] or target.group or target.ou or "everyone in the directory's scope"
    flash(f"Imported {what}: {_summary_line(summary)}", "success")
    if summary.disabled:
        flash(f"Now disabled, as in the directory: {_some(summary.disabled)}", "info")
    return redirect(url_for("console.users", slug=client.slug))


def _summary_line(summary: service.ImportSummary) -> str:
    skipped = summary.total - summary.new - summary.updated - summary.unchanged
    return (
        f"{summary.new} new, {summary.updated} updated, {summary.unchanged} unchanged, "
        f"{skipped} skipped ({summary.skipped_no_email} without email, "
        f"{summary.skipped_disabled} disabled in the directory, "
        f"{summary.skipped_protected} protected)"
    )


def _progress(app: Blink, client: Client, job: str) -> Response:
    """A queued import's progress; the page reloads itself every 2 s until it is done."""
    if not job.isdigit():
        raise NotFound("import")
    progress = imports.import_progress(app, actor(), client, int(job))
    page = render_template(
        "console/users/import_progress.html",
        client=client,
        progress=progress,
        summary_line=_summary_line(progress.summary) if progress.summary else None,
    )
    response = make_response(page)
    if not progress.finished:
        # The Refresh header is what <meta http-equiv="refresh"> stands for, without
        # touching the shared layout's <head>; no script needed.
        response.headers["Refresh"] = "2"
    return response
