"""The sign-in card of the phone simulator: the demo client's sandbox directory answers
as Active Directory would to Windows: a one-time password signs in only after it has
been changed. Passwords pass through these views and are never stored, logged or put
in the session.
"""

from __future__ import annotations

from flask import flash, request, session
from werkzeug.wrappers.response import Response as BaseResponse

from directory_adapters import DirectoryError, PasswordRejected
from directory_adapters.sandbox import (
    AccountDisabled,
    AccountLocked,
    InvalidCredentials,
    MustChangePassword,
    SignInError,
)

from .seed import GATEWAY_NUMBER
from .views import (
    SIGN_IN,
    Phone,
    back_to,
    bp,
    demo_context,
    directory_of,
    log,
    pick,
    pretty_number,
    remember,
)


def phone_of(phones: list[Phone], username: str, fallback: str | None) -> Phone:
    """After a sign-in, show the phone of the person who signed in, if they have one."""
    key = username.casefold()
    owner = next((p for p in phones if p.username and p.username.casefold() == key), None)
    return owner or pick(phones, fallback)


@bp.post("/signin")
def signin() -> BaseResponse:
    services, client, phones = demo_context()
    username = request.form.get("username", "").strip()[:256]
    password = request.form.get("password", "")
    selected = phone_of(phones, username, request.form.get("phone"))
    name = selected.owner if selected.username else username
    gateway = pretty_number(client.sender_number or GATEWAY_NUMBER)
    session.pop(SIGN_IN, None)
    if not username or not password:
        flash("Enter your user name and password.", "error")
        return back_to(selected)
    try:
        user = directory_of(services, client).authenticate(username, password)
    except MustChangePassword:
        remember(username, name, "must_change")
        flash("Password must be changed before you can sign in.", "warning")
        outcome = "must_change"
    except AccountLocked:
        flash(f"Account locked. Text UNLOCK to {gateway} to unlock it.", "error")
        outcome = "locked"
    except AccountDisabled:
        flash("This account is disabled. Contact your IT support desk.", "error")
        outcome = "disabled"
    except InvalidCredentials:
        flash("Wrong password (or unknown user name).", "error")
        outcome = "wrong_password"
    except DirectoryError:
        flash("The directory is not answering. Try again in a moment.", "error")
        outcome = "unavailable"
    else:
        remember(user.username, user.display_name, "signed_in")
        outcome = "signed_in"
    log.info("demo sign-in", username=username, outcome=outcome)
    return back_to(selected)


@bp.post("/change-password")
def change_password() -> BaseResponse:
    services, client, phones = demo_context()
    form = request.form
    username = form.get("username", "").strip()[:256]
    old, new = form.get("old_password", ""), form.get("new_password", "")
    confirm = form.get("confirm", "")
    selected = phone_of(phones, username, form.get("phone"))
    name = selected.owner if selected.username else username
    directory = directory_of(services, client)
    if not (username and old and new and confirm):
        flash("Fill in your current password and the new one twice.", "error")
        return back_to(selected)
    if new != confirm:
        flash("The new passwords do not match.", "error")
        return back_to(selected)
    try:
        directory.change_password(username, old, new)
    except InvalidCredentials:
        flash("The current password is wrong.", "error")
        outcome = "wrong_password"
    except AccountLocked:
        session.pop(SIGN_IN, None)
        flash("Account locked. Text UNLOCK to the gateway to unlock it.", "error")
        outcome = "locked"
    except AccountDisabled:
        session.pop(SIGN_IN, None)
        flash("This account is disabled. Contact your IT support desk.", "error")
        outcome = "disabled"
    except PasswordRejected as err:
        reason = str(err)
        flash(reason[:1].upper() + reason[1:] + ".", "error")
        outcome = "rejected"
    except DirectoryError:
        flash("The directory is not answering. Try again in a moment.", "error")
        outcome = "unavailable"
    else:
        outcome = "changed"
        try:
            user = directory.authenticate(username, new)
        except (DirectoryError, SignInError):
            session.pop(SIGN_IN, None)
            flash("Password changed. Sign in with your new password.", "success")
        else:
            remember(user.username, user.display_name or name, "signed_in")
            flash("Password changed, signed in.", "success")
    log.info("demo password change", username=username, outcome=outcome)
    return back_to(selected)


@bp.post("/signout")
def signout() -> BaseResponse:
    _, _, phones = demo_context()
    session.pop(SIGN_IN, None)
    return back_to(pick(phones, request.form.get("phone")))
