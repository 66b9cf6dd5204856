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

from flask import Response, abort, flash, make_response, redirect, render_template, url_for
from sqlalchemy import select
from sqlalchemy.orm import Session
from werkzeug.wrappers.response import Response as BaseResponse

from ..context import blink
from ..messaging.email import ConsoleEmail, ConsoleEmailSender
from ..models import Client, User, UserStatus
from ..services import invitations
from .seed import DEMO, NEWCOMER
from .views import CSP, bp, demo_client

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


# The HTML part of an email, framed by the mailbox: its own styles and remote images show
# as in a mail client; it runs no script, submits no form and cannot reach its parent.
EMAIL_CSP = (
    "sandbox; default-src 'none'; style-src 'unsafe-inline'; img-src https: data:; "
    "frame-ancestors 'self'"
)


@bp.get("/mailbox")
def mailbox() -> Response:
    services = blink()
    with services.db.session() as db:
        client, user = _newcomer(db)
        name, address, status = user.display_name, user.email or "", user.status
        client_name = client.name
    mails = []
    for number, mail in reversed(list(enumerate(_mails_to(address)))):
        link = LINK.search(mail.message.text)
        mails.append(
            {"mail": mail.message, "number": number, "link": link.group() if link else None}
        )
    response = make_response(
        render_template(
            "demo/mailbox.html",
            client_name=client_name,
            name=name,
            address=address,
            enrolled=status is UserStatus.ACTIVE,
            mails=mails,
        )
    )
    # The demo's policy, plus the frames of the emails' HTML parts (served from here).
    response.headers["Content-Security-Policy"] = CSP + "; frame-src 'self'"
    return response


@bp.get("/mailbox/<int:number>.html")
def mail_html(number: int) -> Response:
    """The HTML part of the newcomer's email ``number`` (oldest 0), for the mailbox's frame."""
    with blink().db.session() as db:
        _, user = _newcomer(db)
        mails = _mails_to(user.email or "")
    if not 0 <= number < len(mails) or mails[number].message.html is None:
        abort(404)
    response = make_response(mails[number].message.html)
    response.headers["Content-Type"] = "text/html; charset=utf-8"
    response.headers["Content-Security-Policy"] = EMAIL_CSP
    response.headers["X-Frame-Options"] = "SAMEORIGIN"
    return response
