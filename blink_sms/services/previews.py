"""What a client's users would see with branding that is typed but not saved yet.

The console's branding pages preview the activation email and the enrollment page
with the form's values: the same checks as :func:`blink_sms.services.branding.set_branding`
(``Invalid`` names the field), the same templates as the real email, a sample user and
a link that opens nothing. A client's page previews that client; the MSP's page
(:func:`msp_preview`) a sample client that sets no branding of its own. Nothing is
written.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from datetime import timedelta
from types import SimpleNamespace
from typing import Any

from babel.dates import format_timedelta

from ..actors import Actor
from ..messaging.pages import GENERIC_SUPPORT, Branding, MspBrand, email_templates, gettext_for
from ..models import Client
from ..settings import Settings
from . import branding
from .errors import Invalid
from .scope import NotFound

SAMPLE_NAME = "Jamie Doe"
# The client of the MSP page's previews: one that leaves all of its branding to the MSP.
SAMPLE_CLIENT = SimpleNamespace(
    name="Example Ltd",
    support_contact=GENERIC_SUPPORT,
    default_region="US",
    language="en",
    invitation_hours=72,
    **dict.fromkeys(branding.FIELDS),
)


@dataclasses.dataclass(frozen=True)
class Preview:
    brand: Branding
    invitation_hours: int
    language: str
    # The MSP's branding on a page that names no client (None: the neutral look).
    msp_only: Branding | None = None


def preview(
    actor: Actor,
    client: Client,
    defaults: Settings,
    changes: Mapping[str, Any],
    msp: MspBrand | None = None,
) -> Preview:
    """The client's branding with ``changes`` (branding fields, ``invitation_hours``) applied.

    An empty value falls back to the default, as saving it would: ``msp`` (the MSP's
    saved branding, :func:`~blink_sms.services.branding.msp_branding`), then the
    settings. ``Invalid`` for a value :func:`~blink_sms.services.branding.set_branding`
    would refuse.
    """
    if not actor.sees(client.id):
        raise NotFound("client")
    hours = client.invitation_hours
    state: dict[str, Any] = {name: getattr(client, name) for name in branding.FIELDS}
    for name, value in changes.items():
        if name == "invitation_hours":
            hours = _hours(value)
        elif name in branding.FIELDS:
            state[name] = branding.clean(name, value)  # the very checks set_branding makes
        else:
            raise Invalid(name, "is not a branding field")
    unsaved: Any = SimpleNamespace(
        name=client.name, support_contact=client.support_contact, **state
    )
    return Preview(Branding.of(unsaved, defaults, msp), hours, client.language)


def msp_preview(actor: Actor, defaults: Settings, changes: Mapping[str, Any]) -> Preview:
    """What a client without branding of its own would show with the MSP's ``changes``.

    ``changes`` are the MSP's branding fields (all of them: an empty or missing one is
    no MSP default, as saving it would be). MSP-wide actors only; ``Invalid`` for a
    value :func:`~blink_sms.services.branding.set_msp_branding` would refuse.
    """
    if not actor.msp_wide:
        raise NotFound("page")
    state: dict[str, str | None] = dict.fromkeys(branding.FIELDS)
    for name, value in changes.items():
        if name not in branding.FIELDS:
            raise Invalid(name, "is not a branding field")
        state[name] = branding.clean(name, value)
    msp = MspBrand(**state)
    sample: Any = SAMPLE_CLIENT
    return Preview(
        Branding.of(sample, defaults, msp),
        sample.invitation_hours,
        sample.language,
        msp_only=Branding.for_msp(defaults, msp),
    )


def _hours(value: Any) -> int:
    """How long a link works, checked as set_branding checks it."""
    try:
        hours = int(value)
    except (TypeError, ValueError):
        hours = 0
    if not 1 <= hours <= 24 * 30:
        raise Invalid("invitation_hours", "a whole number of hours from 1 to 720")
    return hours


def activation_email_html(seen: Preview, public_url: str) -> str:
    """The activation email's HTML, rendered by the real template for a sample user."""
    _ = gettext_for(seen.language)
    valid_for = format_timedelta(
        timedelta(hours=seen.invitation_hours), format="long", locale=seen.language
    )
    html: str = (
        email_templates()
        .get_template("email/activation.html")
        .render(
            _=_,
            lang=seen.language,
            brand=seen.brand,
            user=SimpleNamespace(display_name=SAMPLE_NAME),
            link=f"{public_url}/enroll/sample-link",
            valid_for=valid_for,
            subject=_(
                "Set up password reset by text for your {client} account",
                client=seen.brand.name,
            ),
        )
    )
    return html
