"""What an admin sees of one user: their status in words, latest invitation, recent resets.

The console's users pages and the command line's ``users list`` describe a user's state
the same way (:func:`describe_status`): "invited, link expired" tells an admin what to
do next, where a bare "invited" would not.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from ..actors import Actor, Permission
from ..messaging.i18n import normalize_language
from ..models import Invitation, ResetRequest, User, UserStatus, utcnow
from .scope import NotFound

RECENT_REQUESTS = 10

_TONES = {
    UserStatus.ACTIVE: "ok",
    UserStatus.INVITED: "",
    UserStatus.PENDING: "",
    UserStatus.DISABLED: "bad",
}


@dataclass(frozen=True)
class StatusText:
    """A user's state: ``label`` (the status), ``detail`` (what went wrong, if anything)
    and ``tone`` ("ok", "warn", "bad" or "") for a badge."""

    label: str
    detail: str | None = None
    tone: str = ""

    def __str__(self) -> str:
        return f"{self.label}, {self.detail}" if self.detail else self.label

    @property
    def title(self) -> str:
        """The label for a page, where "pending" reads as what it means."""
        return "not invited" if self.label == UserStatus.PENDING.value else self.label


def describe_status(
    user: User, invitation: Invitation | None, now: datetime | None = None
) -> StatusText:
    """``user``'s status with the state of their newest ``invitation`` when it matters:
    "invited, email failed: ...", "invited, link expired", "invited, email queued"."""
    label = user.status.value
    tone = _TONES[user.status]
    if user.status is not UserStatus.INVITED or invitation is None:
        return StatusText(label, None, tone)
    if invitation.email_status == "failed":
        return StatusText(label, f"email failed: {invitation.email_error or 'unknown'}", "bad")
    if invitation.used_at is None and invitation.expires_at <= (now or utcnow()):
        return StatusText(label, "link expired", "warn")
    if invitation.email_status != "sent":
        return StatusText(label, f"email {invitation.email_status}", "warn")
    return StatusText(label, None, tone)


@dataclass(frozen=True)
class UserDetail:
    user: User
    invitation: Invitation | None
    status: StatusText
    requests: list[ResetRequest]


def user_detail(session: Session, actor: Actor, user: User) -> UserDetail:
    """``user`` with their newest invitation and their last :data:`RECENT_REQUESTS` reset
    and unlock requests, newest first (three queries, whatever the history's length)."""
    if not actor.sees(user.client_id):
        raise NotFound("user")
    actor.require(Permission.VIEW)
    invitation = session.execute(
        select(Invitation)
        .where(Invitation.user_id == user.id)
        .order_by(Invitation.id.desc())
        .limit(1)
    ).scalar_one_or_none()
    requests = list(
        session.execute(
            select(ResetRequest)
            .where(ResetRequest.user_id == user.id)
            .order_by(ResetRequest.created_at.desc(), ResetRequest.id.desc())
            .limit(RECENT_REQUESTS)
        ).scalars()
    )
    return UserDetail(user, invitation, describe_status(user, invitation), requests)


def language_of(user: User) -> str:
    """The language of everything sent to ``user``: their own, else their client's."""
    return normalize_language(user.language or user.client.language)
