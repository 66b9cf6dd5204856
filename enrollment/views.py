"""The enrollment pages: parse, call :mod:`blink_sms.services.enrollment`, render.

``/enroll/<token>`` asks for the number, ``/enroll/<token>/code`` for the code (and
the reset PIN, where the client asks for one), ``/enroll/done`` shows the gateway
number. A GET only shows a form (mail scanners open links); only a POST with a valid
CSRF token acts.
"""

from __future__ import annotations

import math
import re
from datetime import timedelta
from typing import Any

import structlog
from babel.dates import format_timedelta
from flask import Blueprint, Response, redirect, render_template, request, session, url_for
from sqlalchemy.orm import Session

from blink_sms.context import blink
from blink_sms.messaging.i18n import DEFAULT_LANGUAGE, format_wait
from blink_sms.messaging.pages import Branding, Gettext, gettext_for
from blink_sms.models import Client, Invitation, User, UserStatus, utcnow
from blink_sms.services import enrollment as service
from blink_sms.services import pins
from blink_sms.services.branding import brand_of, msp_branding
from blink_sms.services.user_details import language_of

from .forms import CodeForm, NumberForm, ResendForm, countries

log = structlog.get_logger(__name__)
bp = Blueprint(
    "enrollment",
    __name__,
    url_prefix="/enroll",
    template_folder="templates",
    static_folder="static",
    static_url_path="/static",
)

SESSION_KEY = "enrolled_user"
# No script at all; styles from this origin and the brand colour inline; a logo may
# come from the MSP's https host. The global Referrer-Policy keeps the token private.
CSP = (
    "default-src 'none'; style-src 'self' 'unsafe-inline'; img-src 'self' https: data:; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)


@bp.after_request
def _headers(response: Response) -> Response:
    response.headers["Cache-Control"] = "no-store"
    response.headers["Content-Security-Policy"] = CSP
    return response


def _brand(db: Session, client: Client) -> Branding:
    # The request's session: on SQLite a second one would wait for its write lock.
    return brand_of(blink(), client, db)


def _page(
    template: str,
    db: Session,
    *,
    language: str = DEFAULT_LANGUAGE,
    client: Client | None = None,
    status: int = 200,
    **context: Any,
) -> tuple[str, int]:
    if client is not None:
        brand: Branding | None = _brand(db, client)
    else:  # a page that names no client: the MSP's look, if it has one
        app = blink()
        brand = Branding.for_msp(app.settings, msp_branding(app, db))
    html = render_template(
        f"enrollment/{template}",
        _=gettext_for(language),
        lang=language,
        brand=brand,
        **context,
    )
    return html, status


def _wait(delay: timedelta, language: str) -> str:
    seconds = max(1, math.ceil(delay.total_seconds()))
    if seconds < 120:
        text: str = format_timedelta(
            timedelta(seconds=seconds), granularity="second", threshold=math.inf, locale=language
        )
        return text
    return format_wait(seconds, language)


def _bad_link(db: Session, bad: service.BadLink) -> tuple[str, int]:
    client = bad.invitation.user.client if bad.invitation is not None else None
    language = language_of(bad.invitation.user) if bad.invitation else DEFAULT_LANGUAGE
    if bad.problem is service.LinkProblem.AWAITING:
        return _page("waiting.html", db, language=language, client=client)
    status = 404 if bad.problem is service.LinkProblem.NOT_FOUND else 410
    log.info("enrollment link refused", problem=bad.problem.value)
    return _page(
        "problem.html",
        db,
        language=language,
        client=client,
        status=status,
        locked=bad.problem is service.LinkProblem.LOCKED,
    )


def _open(db: Session, token: str, *, for_update: bool) -> Invitation | service.BadLink:
    return service.find_invitation(db, token, now=utcnow(), for_update=for_update)


def _choices(client: Client, language: str) -> tuple[tuple[str, str], ...]:
    """The country chooser: the regions the client's codes may go to."""
    allowed = service.allowed_regions(client)
    return tuple(choice for choice in countries(language) if choice[0] in allowed)


def _country_names(client: Client, language: str) -> list[str]:
    return [label for _, label in _choices(client, language)]


def _number_error(
    _: Gettext, outcome: service.SendOutcome, client: Client, brand: Branding, language: str
) -> tuple[str, int]:
    if isinstance(outcome, service.Refused):
        messages = {
            service.NumberProblem.EMPTY: _("Enter your mobile number."),
            service.NumberProblem.TOO_LONG: _(
                "This is not a valid mobile number for the country you chose. "
                "Check the number and the country."
            ),
            service.NumberProblem.INVALID: _(
                "This is not a valid mobile number for the country you chose. "
                "Check the number and the country."
            ),
            service.NumberProblem.LANDLINE: _(
                "This looks like a landline number. Enter a mobile number that can receive texts."
            ),
            service.NumberProblem.NOT_TEXTABLE: _(
                "This number cannot receive our texts (toll-free, premium-rate or shared-cost). "
                "Enter your own mobile number."
            ),
            service.NumberProblem.NOT_ON_FILE: _(
                "This is not the mobile number your organisation has on file for you. "
                "Enter that number, or contact {support}.",
                support=brand.support,
            ),
            service.NumberProblem.COUNTRY: _(
                "We can only text mobile numbers from: {countries}. "
                "Use such a number, or contact {support}.",
                countries=", ".join(_country_names(client, language)),
                support=brand.support,
            ),
        }
        return messages[outcome.problem], 422
    if isinstance(outcome, service.RateLimited):
        if outcome.per_number:
            return _(
                "Too many codes were sent to this number today. "
                "Try again tomorrow, or contact {support}.",
                support=brand.support,
            ), 429
        return _(
            "You can ask for a new code in {wait}.", wait=_wait(outcome.retry_after, language)
        ), 429
    if isinstance(outcome, service.SendFailed) and outcome.permanent:
        return _(
            "We could not send a text to this number. Check that it is a mobile number, "
            "or use another one."
        ), 422
    return _("We could not send the text just now. Please try again in a minute."), 503


@bp.route("/<token>", methods=["GET", "POST"])
def number(token: str) -> Any:
    """Step 1: the mobile number."""
    app = blink()
    with app.db.session() as db:
        found = _open(db, token, for_update=request.method == "POST")
        if isinstance(found, service.BadLink):
            return _bad_link(db, found)
        user, client = found.user, found.user.client
        language = language_of(user)
        _ = gettext_for(language)
        brand = _brand(db, client)
        form = NumberForm()
        form.country.choices = _choices(client, language)
        error, status = None, 200
        if request.method == "POST":
            if not form.validate_on_submit():
                error, status = _("This page was open too long. Please try again."), 400
            else:
                outcome = service.submit_number(
                    app,
                    db,
                    found,
                    (form.number.data or "")[: service.MAX_NUMBER_INPUT + 1],
                    (form.country.data or client.default_region)[:2],
                    now=utcnow(),
                    ip=request.remote_addr,
                )
                if isinstance(outcome, service.CodeSent):
                    return redirect(url_for(".code", token=token), 303)
                if found.code_failures >= service.MAX_CODE_FAILURES:
                    return _bad_link(db, service.BadLink(service.LinkProblem.LOCKED, found))
                error, status = _number_error(_, outcome, client, brand, language)
        else:
            form.country.data = _region_of(found.phone) or client.default_region
            form.number.data = _national(found.phone) if found.phone else ""
        return _page(
            "number.html",
            db,
            language=language,
            client=client,
            status=status,
            form=form,
            user=user,
            error=error,
        )


def _region_of(e164: str | None) -> str | None:
    if not e164:
        return None
    import phonenumbers

    region: str | None = phonenumbers.region_code_for_number(phonenumbers.parse(e164, None))
    return region


def _national(e164: str) -> str:
    import phonenumbers

    number = phonenumbers.parse(e164, None)
    return str(phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.NATIONAL))


def _code_page(
    db: Session,
    found: Invitation,
    *,
    token: str,
    error: str | None = None,
    status: int = 200,
    notice: str | None = None,
    pin_error: bool = False,
    code_value: str = "",
) -> Any:
    language = language_of(found.user)
    state = service.code_state(db, found, now=utcnow())
    if state.code is None and error is None and notice is None:
        # No live code (expired, or none asked for): back to the number.
        return redirect(url_for(".number", token=token), 303)
    return _page(
        "code.html",
        db,
        language=language,
        client=found.user.client,
        status=status,
        form=CodeForm(formdata=None),
        resend=ResendForm(formdata=None),
        phone=service.display_number(found.phone) if found.phone else "",
        resend_in=_wait(state.resend_in, language) if state.resend_in > timedelta(0) else None,
        error=error,
        notice=notice,
        token=token,
        pin_policy=found.user.client.reset_pin,
        pin_error=pin_error,
        code_value=code_value,
    )


def _pin_error(_: Gettext, problem: pins.PinProblem) -> str:
    messages = {
        pins.PinProblem.MISSING: _("Choose a reset PIN: your organisation asks for one."),
        pins.PinProblem.MALFORMED: _("A reset PIN is 4 to 8 digits, nothing else."),
        pins.PinProblem.MISMATCH: _("The two PINs are not the same. Type your PIN twice."),
        pins.PinProblem.EASY: _(
            "This PIN is too easy to guess. Avoid one digit repeated and runs such as 1234."
        ),
    }
    return messages[problem]


@bp.route("/<token>/code", methods=["GET", "POST"])
def code(token: str) -> Any:  # noqa: PLR0911 - one answer per outcome of the service
    """Step 2: the code we texted."""
    app = blink()
    with app.db.session() as db:
        found = _open(db, token, for_update=request.method == "POST")
        if isinstance(found, service.BadLink):
            return _bad_link(db, found)
        if request.method == "GET":
            return _code_page(db, found, token=token)
        language = language_of(found.user)
        _ = gettext_for(language)
        brand = _brand(db, found.user.client)
        form = CodeForm()
        if not form.validate_on_submit():
            return _code_page(
                db,
                found,
                token=token,
                error=_("This page was open too long. Please try again."),
                status=400,
            )
        outcome = service.verify_code(
            app,
            db,
            found,
            (form.code.data or "")[:32],
            now=utcnow(),
            pin=(form.pin.data or "")[:32],
            pin_again=(form.pin_again.data or "")[:32],
        )
        if isinstance(outcome, service.PinRejected):  # the code is still live: keep it
            error = _pin_error(_, outcome.problem)
            typed = re.sub(r"\D", "", form.code.data or "")[: service.CODE_DIGITS]
            return _code_page(
                db, found, token=token, error=error, status=422, pin_error=True, code_value=typed
            )
        if isinstance(outcome, service.Bound):
            session[SESSION_KEY] = outcome.user_id
            return redirect(url_for(".done"), 303)
        if isinstance(outcome, service.AwaitingApproval):
            return redirect(url_for(".number", token=token), 303)  # now the waiting page
        problem = outcome.problem
        if problem is service.CodeProblem.LOCKED:
            return _bad_link(db, service.BadLink(service.LinkProblem.LOCKED, found))
        if problem is service.CodeProblem.NO_CODE:
            return redirect(url_for(".number", token=token), 303)
        if problem is service.CodeProblem.TAKEN:
            form_number = NumberForm(formdata=None)
            form_number.country.choices = _choices(found.user.client, language)
            form_number.country.data = found.user.client.default_region
            return _page(
                "number.html",
                db,
                language=language,
                client=found.user.client,
                status=409,
                form=form_number,
                user=found.user,
                error=_(
                    "This number is already registered for password resets. "
                    "Use another number, or contact {support}.",
                    support=brand.support,
                ),
            )
        messages = {
            service.CodeProblem.MALFORMED: _("Enter the 6 digits from the text message."),
            service.CodeProblem.WRONG: _(
                "That code is not right. Tries left: {count}.", count=outcome.failures_left
            ),
            service.CodeProblem.EXPIRED: _("This code has expired. Ask for a new code below."),
        }
        return _code_page(db, found, token=token, error=messages[problem], status=422)


@bp.post("/<token>/resend")
def resend(token: str) -> Any:
    """Another code to the same number, within the limits."""
    app = blink()
    with app.db.session() as db:
        found = _open(db, token, for_update=True)
        if isinstance(found, service.BadLink):
            return _bad_link(db, found)
        language = language_of(found.user)
        _ = gettext_for(language)
        if not ResendForm().validate_on_submit():
            return _code_page(
                db,
                found,
                token=token,
                error=_("This page was open too long. Please try again."),
                status=400,
            )
        outcome = service.send_code(app, db, found, now=utcnow(), ip=request.remote_addr)
        if isinstance(outcome, service.CodeSent):
            return _code_page(db, found, token=token, notice=_("We sent you a new code."))
        if isinstance(outcome, service.Refused):
            return redirect(url_for(".number", token=token), 303)
        client = found.user.client
        error, status = _number_error(_, outcome, client, _brand(db, client), language)
        return _code_page(db, found, token=token, error=error, status=status)


def _enrolled(db: Session) -> User | None:
    user_id = session.get(SESSION_KEY)
    if not isinstance(user_id, int):
        return None
    user = db.get(User, user_id)
    if user is None or user.status is not UserStatus.ACTIVE or user.phone is None:
        return None
    return user


@bp.get("/done")
def done() -> Any:
    """Step 3: the gateway number, large, and what to do with it."""
    with blink().db.session() as db:
        user = _enrolled(db)
        if user is None:
            return _page("problem.html", db, status=404, locked=False)
        client = user.client
        gateway = client.sender_number or ""
        return _page(
            "done.html",
            db,
            language=language_of(user),
            client=client,
            gateway=service.display_number(gateway) if gateway else "",
            gateway_e164=gateway,
            has_pin=user.pin_hash is not None,
        )


@bp.get("/done/contact.vcf")
def contact() -> Any:
    """The gateway as a contact card, so "text RESET" finds it by name."""
    with blink().db.session() as db:
        user = _enrolled(db)
        if user is None or not user.client.sender_number:
            return _page("problem.html", db, status=404, locked=False)
        language = language_of(user)
        _ = gettext_for(language)
        brand = _brand(db, user.client)
        name = _("{name} password reset", name=brand.name)
        if user.pin_hash is not None:
            note = _("Text RESET and your PIN to this number for a new password.")
        else:
            note = _("Text RESET to this number for a new password.")
        card = "\r\n".join(
            [
                "BEGIN:VCARD",
                "VERSION:3.0",
                f"FN:{_vcard_escape(name)}",
                f"N:;{_vcard_escape(name)};;;",
                f"ORG:{_vcard_escape(brand.name)}",
                f"TEL;TYPE=CELL:{user.client.sender_number}",
                f"NOTE:{_vcard_escape(note)}",
                "END:VCARD",
                "",
            ]
        )
    return Response(
        card,
        mimetype="text/vcard",
        headers={"Content-Disposition": 'attachment; filename="password-reset.vcf"'},
    )


def _vcard_escape(value: str) -> str:
    return (
        value.replace("\\", "\\\\")
        .replace(",", "\\,")
        .replace(";", "\\;")
        .replace("\r", "")
        .replace("\n", "\\n")
    )
