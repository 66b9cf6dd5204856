"""Enrollment in the demo: invite the newcomer, read her activation email, bind a phone.

``POST /demo/invite`` does what an admin's ``blink-sms users invite`` (or, once she is
enrolled, ``users reset-user``) does: the real invitation service and email job. The
email is printed, not sent; ``/demo/mailbox`` shows what the console sender kept, with
the activation link to follow. The enrollment pages are the real ones, and the code SMS
arrives on the phone simulator under the number she typed.
"""

from __future__ import annotations

import re
import time

from flask import abort, flash, redirect, render_template, url_for
from sqlalchemy import select
from sqlalchemy.orm import Session
from werkzeug.wrappers.response import Response as BaseResponse

from ..context import blink
from ..messaging.email import ConsoleEmail, ConsoleEmailSender
from ..models import Client, User, UserStatus
from ..services import invitations
from .seed import DEMO, NEWCOMER
from .views import bp, demo_client

LINK = re.compile(r"https?://\S+/enroll/[A-Za-z0-9_-]+")
EMAIL_WAIT = 3.0  # seconds the invite view waits for the in-process email job


def _outbox() -> ConsoleEmailSender:
    email = blink().email
    if not isinstance(email, ConsoleEmailSender):  # the demo prints emails
        abort(404)
    return email


def _mails_to(address: str) -> list[ConsoleEmail]:
    return [mail for mail in _outbox().outbox if mail.message.to == address]


def _newcomer(db: Session) -> tuple[Client, User]:
    client = demo_client(db)
    user = db.execute(
        select(User).where(User.client_id == client.id, User.username == NEWCOMER.username)
    ).scalar_one_or_none()
    if user is None or not user.email:
        abort(404)
    return client, user


@bp.post("/invite")
def invite() -> BaseResponse:
    services = blink()
    with services.db.session() as db:
        _, user = _newcomer(db)
        address, sent = user.email or "", len(_mails_to(user.email or ""))
        if user.status is UserStatus.ACTIVE:
            # "Reset User": her phone is unbound, so the demo can be walked again.
            invitations.reset_user(services, db, DEMO, user)
            flash(f"{user.display_name}'s phone was unbound (Reset User).", "success")
        else:
            invitations.invite(services, db, DEMO, user)
    end = time.monotonic() + EMAIL_WAIT
    while len(_mails_to(address)) == sent and time.monotonic() < end:
        time.sleep(0.02)
    return redirect(url_for("demo.mailbox"), code=303)


@bp.get("/mailbox")
def mailbox() -> str:
    services = blink()
    with services.db.session() as db:
        client, user = _newcomer(db)
        name, address, status = user.display_name, user.email or "", user.status
        client_name = client.name
    mails = []
    for mail in reversed(_mails_to(address)):
        link = LINK.search(mail.message.text)
        mails.append({"mail": mail.message, "link": link.group() if link else None})
    return render_template(
        "demo/mailbox.html",
        client_name=client_name,
        name=name,
        address=address,
        enrolled=status is UserStatus.ACTIVE,
        mails=mails,
    )
