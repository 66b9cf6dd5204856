"""A client's branding page, with a preview of what its users will see.

"Preview" re-renders the page with the form's values (nothing is saved); "Save" saves
them. The previews are the real activation email and the real enrollment page, served
by :func:`branding_preview` into sandboxed frames: the email is full of inline styles,
which the console's policy forbids, so the preview answers with its own policy (styles
inline, no script, framed only by the console) and the branding page allows frames from
its own origin. The blueprint's hook keeps a policy a view set.
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any
from urllib.parse import urlencode

from flask import flash, make_response, redirect, render_template, request, url_for
from werkzeug.wrappers.response import Response

from blink_sms.context import blink
from blink_sms.messaging.pages import gettext_for
from blink_sms.models import Client
from blink_sms.services import branding as service
from blink_sms.services import previews, scope
from blink_sms.services.errors import Invalid
from enrollment.forms import NumberForm, countries

from .auth import actor
from .blueprint import CSP, bp

FIELDS = {
    "brand_name": "Display name",
    "brand_logo_url": "Logo address",
    "brand_color": "Colour",
    "support_email": "Support email",
    "email_message": "Your paragraph in the activation email",
    "invitation_hours": "Activation links work for (hours)",
}
MAX_INPUT = 2100  # the longest field (the paragraph) takes 2,000 characters
# The branding page frames its previews; everything else stays as the console's policy.
PAGE_CSP = CSP + "; frame-src 'self'"
# The previews: the email's inline styles and the enrollment page's brand colour, images
# from https (a logo), no script, no form, framed by the console only.
PREVIEW_CSP = (
    "default-src 'none'; style-src 'self' 'unsafe-inline'; img-src 'self' https: data:; "
    "form-action 'none'; frame-ancestors 'self'; base-uri 'none'"
)
PAGES = ("email", "enrollment")


def _stored(client: Client) -> dict[str, str]:
    return {
        name: "" if getattr(client, name) is None else str(getattr(client, name)) for name in FIELDS
    }


def _render(
    client: Client, values: dict[str, str], *, errors: dict[str, str] | None = None
) -> Response:
    errors = errors or {}
    # With errors, the frames show what is saved: the typed values could not be previewed.
    shown = _stored(client) if errors else values
    frames = {
        page: url_for("console.branding_preview", slug=client.slug, page=page)
        + "&"
        + urlencode(shown)
        for page in PAGES
    }
    response = make_response(
        render_template(
            "console/clients/branding.html",
            client=client,
            values=values,
            fields=FIELDS,
            frames=frames,
            unsaved=values != _stored(client),
            errors=errors,
            labels=FIELDS,
        ),
        400 if errors else 200,
    )
    response.headers["Content-Security-Policy"] = PAGE_CSP
    return response


@bp.route("/clients/<slug>/branding", methods=["GET", "POST"])
def branding(slug: str) -> Any:
    """The client's branding; POST action=preview shows the form's values, action=save saves."""
    app = blink()
    with app.db.session() as db:
        client = scope.client(db, actor(), slug)
        if request.method == "GET":
            return _render(client, _stored(client))
        typed = {name: request.form.get(name, "").strip()[:MAX_INPUT] for name in FIELDS}
        if request.form.get("action") != "save":
            try:
                previews.preview(actor(), client, app.settings, typed)
            except Invalid as err:
                return _render(client, typed, errors={err.field: err.message})
            return _render(client, typed)
        try:
            changed = service.set_branding(db, actor(), client, **typed)
        except Invalid as err:
            db.rollback()
            return _render(client, typed, errors={err.field: err.message})
        flash(
            f"Branding saved: {', '.join(FIELDS[name] for name in changed)}"
            if changed
            else "Nothing changed",
            "success",
        )
    return redirect(url_for("console.branding", slug=slug), 303)


def enrollment_html(region: str, seen: previews.Preview) -> str:
    """The enrollment page's first step as users will see it (also the MSP's preview)."""
    form = NumberForm(formdata=None)
    form.country.choices = countries(seen.language)
    form.country.data = region
    return render_template(
        "enrollment/number.html",
        _=gettext_for(seen.language),
        lang=seen.language,
        brand=seen.brand,
        form=form,
        user=SimpleNamespace(display_name=previews.SAMPLE_NAME),
        error=None,
        # The template builds its form's address from the link's token: a sample one.
        request=SimpleNamespace(view_args={"token": "sample-link"}),
    )


@bp.route("/clients/<slug>/branding/preview")
def branding_preview(slug: str) -> Response:
    """``page=email`` or ``page=enrollment`` with the branding in the query (GET: no change)."""
    app = blink()
    page = request.args.get("page", "email")
    changes = {name: request.args[name][:MAX_INPUT] for name in FIELDS if name in request.args}
    with app.db.session() as db:
        client = scope.client(db, actor(), slug)
        try:
            seen = previews.preview(
                actor(), client, app.settings, changes, service.msp_branding(app, db)
            )
        except Invalid as err:
            html = render_template(
                "console/clients/preview_problem.html",
                label=FIELDS.get(err.field, err.field),
                message=err.message,
            )
        else:
            if page == "enrollment":
                html = enrollment_html(client.default_region, seen)
            else:
                html = previews.activation_email_html(seen, app.settings.public_url)
    response = make_response(html)
    response.headers["Content-Security-Policy"] = PREVIEW_CSP
    response.headers["X-Frame-Options"] = "SAMEORIGIN"
    return response
