"""The MSP's branding page: the look of every client that sets none of its own.

Like a client's branding page (:mod:`console.branding`): "Preview" re-renders the page
with the form's values, "Save" saves them, and the previews are the real activation
email and enrollment pages, here of a sample client without branding of its own, served
by :func:`msp_branding_preview` into sandboxed frames under their own policy. MSP-wide
admins only: a client admin gets 404 (the page is not theirs to see), an auditor may
look.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from flask import flash, make_response, redirect, render_template, request, url_for
from werkzeug.wrappers.response import Response

from blink_sms.context import blink
from blink_sms.messaging.pages import DEFAULT_COLOR, MspBrand, gettext_for
from blink_sms.services import branding as service
from blink_sms.services import previews
from blink_sms.services.errors import Invalid
from blink_sms.settings import Settings

from .auth import actor
from .blueprint import bp
from .branding import MAX_INPUT, PAGE_CSP, PREVIEW_CSP, enrollment_html

FIELDS = {
    "brand_name": "Your name",
    "brand_logo_url": "Logo address",
    "brand_color": "Colour",
    "support_email": "Support email",
    "email_message": "Your paragraph in the activation email",
}
PAGES = ("email", "enrollment", "unknown")


def _values(saved: MspBrand) -> dict[str, str]:
    return {name: getattr(saved, name) or "" for name in FIELDS}


def _empty_means(settings: Settings) -> dict[str, str]:
    """What a client without its own value shows when this page leaves a field empty."""
    return {
        "brand_logo_url": settings.brand_logo_url or "no logo: the client's name in letters",
        "brand_color": settings.brand_color or DEFAULT_COLOR,
        "support_email": settings.brand_support_email or "the client's support contact",
        "email_message": "the deployment's BLINK_BRAND_MESSAGE"
        if settings.brand_message
        else "no paragraph",
    }


def _render(
    values: dict[str, str], saved: dict[str, str], *, errors: dict[str, str] | None = None
) -> Response:
    errors = errors or {}
    # With errors, the frames show what is saved: the typed values could not be previewed.
    shown = saved if errors else values
    frames = {
        page: url_for("console.msp_branding_preview", page=page) + "&" + urlencode(shown)
        for page in PAGES
    }
    response = make_response(
        render_template(
            "console/msp_branding.html",
            values=values,
            fields=FIELDS,
            labels=FIELDS,
            empty_means=_empty_means(blink().settings),
            sample=previews.SAMPLE_CLIENT.name,
            frames=frames,
            unsaved=values != saved,
            errors=errors,
        ),
        400 if errors else 200,
    )
    response.headers["Content-Security-Policy"] = PAGE_CSP
    return response


@bp.route("/branding", methods=["GET", "POST"])
def msp_branding() -> Any:
    """The MSP's branding; POST action=preview shows the form's values, action=save saves."""
    app = blink()
    with app.db.session() as db:
        saved = _values(service.read_msp_branding(db, actor()))
        if request.method == "GET":
            return _render(saved, saved)
        typed = {name: request.form.get(name, "").strip()[:MAX_INPUT] for name in FIELDS}
        if request.form.get("action") != "save":
            try:
                previews.msp_preview(actor(), app.settings, typed)
            except Invalid as err:
                return _render(typed, saved, errors={err.field: err.message})
            return _render(typed, saved)
        try:
            changed = service.set_msp_branding(app, db, actor(), **typed)
        except Invalid as err:
            db.rollback()
            return _render(typed, saved, errors={err.field: err.message})
    flash(
        f"Branding saved: {', '.join(label for name, label in FIELDS.items() if name in changed)}"
        if changed
        else "Nothing changed",
        "success",
    )
    return redirect(url_for("console.msp_branding"), 303)


def _unknown_link_html(seen: previews.Preview) -> str:
    """The page of a link that names no client (mistyped, unknown): the MSP's own look."""
    return render_template(
        "enrollment/problem.html",
        _=gettext_for(seen.language),
        lang=seen.language,
        brand=seen.msp_only,
        locked=False,
    )


@bp.route("/branding/preview")
def msp_branding_preview() -> Response:
    """``page=email``, ``enrollment`` or ``unknown``, the MSP's branding in the query (GET)."""
    app = blink()
    page = request.args.get("page", "email")
    changes = {name: request.args[name][:MAX_INPUT] for name in FIELDS if name in request.args}
    try:
        seen = previews.msp_preview(actor(), app.settings, changes)
    except Invalid as err:
        html = render_template(
            "console/clients/preview_problem.html",
            label=FIELDS.get(err.field, err.field),
            message=err.message,
        )
    else:
        if page == "enrollment":
            html = enrollment_html(previews.SAMPLE_CLIENT.default_region, seen)
        elif page == "unknown":
            html = _unknown_link_html(seen)
        else:
            html = previews.activation_email_html(seen, app.settings.public_url)
    response = make_response(html)
    response.headers["Content-Security-Policy"] = PREVIEW_CSP
    response.headers["X-Frame-Options"] = "SAMEORIGIN"
    return response
