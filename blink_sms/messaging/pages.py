"""What people read on a screen (emails, enrollment pages): branding and languages.

The SMS texts live in the ``messages`` catalogs (GSM-7, one SMS each); these longer
texts have their own gettext domain, ``web``, in the same ``translations/`` folder.
Templates call ``_("Hello {name}", name=...)``: the English text is the msgid and
``str.format`` fills it in after translation. To refresh the catalogs, write a
mapping file ``web.cfg`` listing ``[python: blink_sms/services/invitations.py]``,
``[python: blink_sms/services/notices.py]``, ``[python: enrollment/**.py]``,
``[jinja2: blink_sms/messaging/templates/**.html]``,
``[jinja2: blink_sms/messaging/templates/**.txt]`` and
``[jinja2: enrollment/templates/**.html]``, then, from the repository root::

    pybabel extract --no-location -F web.cfg -k _ \
        -o blink_sms/messaging/translations/web.pot .
    pybabel update --no-fuzzy-matching --ignore-obsolete -D web \
        -i blink_sms/messaging/translations/web.pot -d blink_sms/messaging/translations

and translate the new entries (not SMS: any character is fine here).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from jinja2 import Environment, PackageLoader, select_autoescape

from .i18n import catalog, normalize_language

if TYPE_CHECKING:
    from ..models import Client
    from ..settings import Settings

DOMAIN = "web"
DEFAULT_COLOR = "#1f5fbf"
HEX_COLOR = re.compile(r"#[0-9a-fA-F]{6}")

Gettext = Callable[..., str]


def gettext_for(language: str) -> Gettext:
    """``_(text, **params)`` for ``language``: translated, then ``str.format``-ed."""
    translations = catalog(normalize_language(language), DOMAIN)

    def _(message: str, **params: object) -> str:
        translated = translations.gettext(message)
        return translated.format(**params) if params else translated

    return _


@dataclass(frozen=True)
class MspBrand:
    """The MSP's own branding, saved in the console: every part optional.

    Plain values, loaded (and cached) by :func:`blink_sms.services.branding.msp_branding`,
    so that this module never reads the database. The names are the columns' (the same
    as a client's), so it reads like a client's branding.
    """

    brand_name: str | None = None
    brand_logo_url: str | None = None
    brand_color: str | None = None
    support_email: str | None = None
    email_message: str | None = None


NO_MSP_BRAND = MspBrand()
# The help desk, when a page names no client and the MSP gives no support email: the
# words a client's ``support_contact`` has by default.
GENERIC_SUPPORT = "your IT support desk"


def _color(*candidates: str | None) -> str:
    """The first valid ``#rrggbb`` of ``candidates``, lower case, else the product's own."""
    color = next((c for c in candidates if c and HEX_COLOR.fullmatch(c)), DEFAULT_COLOR)
    return color.lower()


@dataclass(frozen=True)
class Branding:
    """How a client's emails and pages look; every part may be set per client."""

    name: str
    color: str
    logo_url: str | None
    message: str | None
    support_email: str | None
    support_contact: str

    @classmethod
    def of(cls, client: Client, defaults: Settings, msp: MspBrand | None = None) -> Branding:
        """The client's branding; each part it leaves empty comes from the MSP.

        In order: the client's own value, the MSP's branding saved in the console
        (``msp``: pass it, this module reads no database), the ``BLINK_BRAND_*``
        settings (``defaults``), the product's own. The name is the client's own
        display name or its name: users know their organisation, not their MSP.
        """
        msp = msp or NO_MSP_BRAND
        return cls(
            name=client.brand_name or client.name,
            color=_color(client.brand_color, msp.brand_color, defaults.brand_color),
            logo_url=client.brand_logo_url or msp.brand_logo_url or defaults.brand_logo_url,
            message=client.email_message or msp.email_message or defaults.brand_message,
            support_email=(
                client.support_email or msp.support_email or defaults.brand_support_email
            ),
            support_contact=client.support_contact,
        )

    @classmethod
    def for_msp(cls, defaults: Settings, msp: MspBrand) -> Branding | None:
        """The MSP's branding for a page that belongs to no client (an unknown link).

        None (the product's neutral look) unless the MSP saved a name: the logo and
        colour alone would stand for nobody.
        """
        if not msp.brand_name:
            return None
        return cls(
            name=msp.brand_name,
            color=_color(msp.brand_color, defaults.brand_color),
            logo_url=msp.brand_logo_url or defaults.brand_logo_url,
            message=msp.email_message or defaults.brand_message,
            support_email=msp.support_email or defaults.brand_support_email,
            support_contact=GENERIC_SUPPORT,
        )

    @property
    def on_color(self) -> str:
        """Black or white, whichever reads better on :attr:`color` (WCAG luminance)."""
        channels = [int(self.color[i : i + 2], 16) / 255 for i in (1, 3, 5)]
        linear = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
        luminance = 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]
        return "#000000" if luminance > 0.179 else "#ffffff"

    @property
    def support(self) -> str:
        """How to reach the help desk, in one phrase."""
        return self.support_email or self.support_contact


@functools.cache
def email_templates() -> Environment:
    """The Jinja environment of the email templates (``.html`` escaped, ``.txt`` not)."""
    return Environment(
        loader=PackageLoader(__package__ or "blink_sms.messaging", "templates"),
        autoescape=select_autoescape(["html"]),
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
