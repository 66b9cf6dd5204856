"""What a client's users would see with branding that is typed but not saved yet.

The console's branding page previews the activation email and the enrollment page
with the form's values: the same checks as :func:`blink_sms.services.branding.set_branding`
(``Invalid`` names the field), the same templates as the real email, a sample user and
a link that opens nothing. Nothing is written.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from datetime import timedelta
from types import SimpleNamespace
from typing import Any

from babel.dates import format_timedelta

from ..actors import Actor
from ..messaging.pages import Branding, email_templates, gettext_for
from ..models import Client
from ..settings import Settings
from . import branding
from .errors import Invalid
from .scope import NotFound

SAMPLE_NAME = "Jamie Doe"


@dataclasses.dataclass(frozen=True)
class Preview:
    brand: Branding
    invitation_hours: int
    language: str


def preview(
    actor: Actor, client: Client, defaults: Settings, changes: Mapping[str, Any]
) -> Preview:
    """The client's branding with ``changes`` (branding fields, ``invitation_hours``) applied.

    An empty value falls back to the default, as saving it would. ``Invalid`` for a
    value :func:`~blink_sms.services.branding.set_branding` would refuse.
    """
    if not actor.sees(client.id):
        raise NotFound("client")
    hours = client.invitation_hours
    state: dict[str, Any] = {name: getattr(client, name) for name in branding.FIELDS}
    for name, value in changes.items():
        if name == "invitation_hours":
            hours = _hours(value)
        elif name in branding.FIELDS:
            # The very checks set_branding makes (a private helper of the same package).
            state[name] = branding._clean(name, value)
        else:
            raise Invalid(name, "is not a branding field")
    unsaved: Any = SimpleNamespace(
        name=client.name, support_contact=client.support_contact, **state
    )
    return Preview(Branding.of(unsaved, defaults), hours, client.language)


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
