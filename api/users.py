"""Users of a client: list and read; import from the directory; invite; Reset User;
push a reset or an unlock; disable or enable."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import request
from spectree import Response as Responses
from sqlalchemy.orm import Session

from blink_sms.context import Blink, blink
from blink_sms.crypto import mask_phone
from blink_sms.models import Invitation as InvitationRow
from blink_sms.models import RequestKind, User, utcnow
from blink_sms.services import imports, invitations, pins, privacy, scope
from blink_sms.services import users as service
from blink_sms.services.user_details import describe_status

from .blueprint import actor, bp, decode_cursor, encode_cursor, spec
from .clients import ERRORS, READ_ERRORS
from .idempotency import idempotent
from .schemas import (
    Changed,
    Erased,
    ImportIn,
    ImportOut,
    Invitation,
    InvitationOut,
    InviteAllOut,
    PersonalData,
    Problem,
    RequestOut,
    UserOut,
    UserPage,
    UserQuery,
)

TAG = "users"
USER = "/clients/<slug>/users/<int:user_id>"
ACTION_ERRORS = {**ERRORS, "HTTP_409": Problem}


def invitation_out(invitation: InvitationRow | None) -> Invitation | None:
    if invitation is None:
        return None
    return Invitation(
        id=invitation.id,
        created_at=invitation.created_at,
        expires_at=invitation.expires_at,
        email_status=invitation.email_status,
        used_at=invitation.used_at,
        revoked_at=invitation.revoked_at,
    )


def user_out(user: User, invitation: InvitationRow | None) -> UserOut:
    return UserOut(
        id=user.id,
        username=user.username,
        display_name=user.display_name,
        email=user.email,
        phone=mask_phone(user.phone),
        status=user.status.value,
        state=str(describe_status(user, invitation)),
        language=user.language,
        created_at=user.created_at,
        invitation=invitation_out(invitation),
        reset_pin=pins.status(user, utcnow()),
    )


@bp.get("/clients/<slug>/users")
@spec.validate(
    query=UserQuery,
    resp=Responses(HTTP_200=UserPage, **READ_ERRORS, HTTP_409=Problem, HTTP_422=Problem),
    tags=[TAG],
)
def list_users(slug: str) -> Any:
    """A client's users by id: search them, filter by state ("locked" asks the directory)."""
    query: UserQuery = request.context.query  # type: ignore[attr-defined]
    after = decode_cursor(query.cursor)
    app = blink()
    with app.db.session() as db:
        client = scope.client(db, actor(), slug)
        rows = _directory(
            lambda: service.users_after(
                app,
                db,
                actor(),
                client,
                search=query.search,
                state=query.state or "",
                after_id=after,
                limit=query.limit + 1,
            )
        )
        more = len(rows) > query.limit
        rows = rows[: query.limit]
        return UserPage(
            items=[user_out(row.user, row.invitation) for row in rows],
            next_cursor=encode_cursor(rows[-1].user.id) if more else None,
        )


def _directory(call: Callable[[], Any]) -> Any:
    """Run ``call``; a directory that fails becomes a 409 saying why in plain words."""
    from blink_sms.crypto import SecretBoxError
    from directory_adapters import DirectoryError

    try:
        return call()
    except (DirectoryError, SecretBoxError) as err:
        raise imports.DirectoryTrouble(imports.plain_words(err)) from err


@bp.get(USER)
@spec.validate(resp=Responses(HTTP_200=UserOut, **READ_ERRORS), tags=[TAG])
def get_user(slug: str, user_id: int) -> Any:
    """One user, with their latest activation email."""
    with blink().db.session() as db:
        client = scope.client(db, actor(), slug)
        found = scope.user(db, actor(), client, user_id)
        latest = service.latest_invitations(db, client, [found.id]).get(found.id)
        return user_out(found, latest)


@bp.post("/clients/<slug>/imports")
@idempotent
@spec.validate(
    json=ImportIn,
    resp=Responses(HTTP_200=ImportOut, **ACTION_ERRORS, HTTP_422=Problem),
    tags=[TAG],
)
def import_users(slug: str) -> Any:
    """Import a group, an OU or everyone from the client's directory, now: new users are
    added, changed ones updated, those the directory disabled are disabled."""
    body: ImportIn = request.context.json  # type: ignore[attr-defined]
    app = blink()
    with app.db.session() as db:
        client = scope.client(db, actor(), slug)
        what = imports.Scope.of(group=body.group, ou=body.ou, everyone=body.everyone)
        summary = imports.run_import(app, db, actor(), client, what)
    return ImportOut(
        new=summary.new,
        updated=summary.updated,
        unchanged=summary.unchanged,
        skipped_no_email=summary.skipped_no_email,
        skipped_disabled=summary.skipped_disabled,
        skipped_protected=summary.skipped_protected,
        disabled=list(summary.disabled),
    )


@bp.post("/clients/<slug>/invitations")
@idempotent
@spec.validate(resp=Responses(HTTP_200=InviteAllOut, **ACTION_ERRORS), tags=[TAG])
def invite_pending(slug: str) -> Any:
    """Send an activation email to every user not yet active without a working one."""
    app = blink()
    with app.db.session() as db:
        client = scope.client(db, actor(), slug)
        queued, refused = invitations.invite_pending(app, db, actor(), client)
    return InviteAllOut(queued=queued, refused=refused)


def _on_user(slug: str, user_id: int, act: Callable[[Blink, Session, User], Any]) -> Any:
    app = blink()
    with app.db.session() as db:
        client = scope.client(db, actor(), slug)
        return act(app, db, scope.user(db, actor(), client, user_id))


def _invitation(user: User, invitation: InvitationRow) -> InvitationOut:
    return InvitationOut(user_id=user.id, invitation=invitation_out(invitation))  # type: ignore[arg-type]


@bp.post(USER + "/invite")
@idempotent
@spec.validate(resp=Responses(HTTP_202=InvitationOut, **ACTION_ERRORS), tags=[TAG])
def invite(slug: str, user_id: int) -> Any:
    """Send the user a new activation email (earlier links stop working)."""
    return _on_user(
        slug,
        user_id,
        lambda app, db, user: (_invitation(user, invitations.invite(app, db, actor(), user)), 202),
    )


@bp.post(USER + "/reset-user")
@idempotent
@spec.validate(resp=Responses(HTTP_202=InvitationOut, **ACTION_ERRORS), tags=[TAG])
def reset_user(slug: str, user_id: int) -> Any:
    """Reset User: unbind the phone and send a new activation email."""
    return _on_user(
        slug,
        user_id,
        lambda app, db, user: (
            _invitation(user, invitations.reset_user(app, db, actor(), user)),
            202,
        ),
    )


def _request(slug: str, user_id: int, kind: RequestKind) -> Any:
    def act(app: Blink, db: Session, user: User) -> Any:
        request_id = service.request(app, db, actor(), user, kind=kind)
        return RequestOut(request_id=request_id, kind=kind.value, status="queued"), 202

    return _on_user(slug, user_id, act)


@bp.post(USER + "/push-reset")
@idempotent
@spec.validate(resp=Responses(HTTP_202=RequestOut, **ACTION_ERRORS), tags=[TAG])
def push_reset(slug: str, user_id: int) -> Any:
    """Reset the user's password: the one-time password goes to their phone by text,
    never into this answer. Send an Idempotency-Key: a retry then texts once."""
    return _request(slug, user_id, RequestKind.RESET)


@bp.post(USER + "/unlock")
@idempotent
@spec.validate(resp=Responses(HTTP_202=RequestOut, **ACTION_ERRORS), tags=[TAG])
def unlock(slug: str, user_id: int) -> Any:
    """Unlock the user's account; they get a text when it is done."""
    return _request(slug, user_id, RequestKind.UNLOCK)


def _set_disabled(slug: str, user_id: int, *, disabled: bool) -> Any:
    return _on_user(
        slug,
        user_id,
        lambda app, db, user: Changed(
            changed=service.set_disabled(db, actor(), user, disabled=disabled)
        ),
    )


@bp.post(USER + "/disable")
@idempotent
@spec.validate(resp=Responses(HTTP_200=Changed, **ACTION_ERRORS), tags=[TAG])
def disable(slug: str, user_id: int) -> Any:
    """Disable the user: their texts get no reset until enabled again."""
    return _set_disabled(slug, user_id, disabled=True)


@bp.post(USER + "/enable")
@idempotent
@spec.validate(resp=Responses(HTTP_200=Changed, **ACTION_ERRORS), tags=[TAG])
def enable(slug: str, user_id: int) -> Any:
    """Enable a disabled user again."""
    return _set_disabled(slug, user_id, disabled=False)


@bp.post(USER + "/export")
@spec.validate(resp=Responses(HTTP_200=PersonalData, **ERRORS), tags=["privacy"])
def export(slug: str, user_id: int) -> Any:
    """GDPR access: everything the gateway holds about the user, as JSON (audited).
    Takes no Idempotency-Key: its answer is personal data, and is stored nowhere."""
    return _on_user(
        slug, user_id, lambda app, db, user: PersonalData(**privacy.export_user(db, actor(), user))
    )


@bp.post(USER + "/erase")
@idempotent
@spec.validate(resp=Responses(HTTP_200=Erased, **ACTION_ERRORS), tags=["privacy"])
def erase(slug: str, user_id: int) -> Any:
    """GDPR erasure: the user's personal data is removed; their audit events stay, with
    the person pseudonymised. Refused (409) while a reset of theirs is on its way."""

    def act(app: Blink, db: Session, user: User) -> Erased:
        privacy.erase_user(db, actor(), user)
        return Erased(user_id=user_id, pseudonym=privacy.pseudonym(user_id))

    return _on_user(slug, user_id, act)
