"""The languages of outbound SMS: gettext catalogs and localised waiting times.

The catalogs are the ``.po`` files under ``translations/``. Each one is read at first
use, compiled to ``.mo`` in memory and cached, so the repository holds no compiled
files and there is no build step. English is the source language: its texts are the
msgids in :mod:`blink_sms.messaging.texts` and pass through unchanged.
"""

from __future__ import annotations

import functools
import gettext
import math
import re
import unicodedata
from datetime import timedelta
from importlib import resources
from io import BytesIO
from typing import Literal

from babel.dates import format_timedelta
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import Translations

SUPPORTED_LANGUAGES: tuple[str, ...] = ("en", "nl", "es", "de", "fr")
DEFAULT_LANGUAGE = "en"
DOMAIN = "messages"

# The GSM 03.38 basic character set (without ESC, the escape to the extension table):
# every character of it costs one septet, so a 160-character text fits one SMS.
_GSM7_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
_LANGUAGE_SEPARATORS = re.compile(r"[-_.@]")


def normalize_language(value: str | None, default: str = DEFAULT_LANGUAGE) -> str:
    """The supported language code for ``value``: ``"NL"``, ``"nl-BE"``, ``"nl_NL"`` → ``"nl"``.

    Anything empty, missing or unsupported gives ``default``.
    """
    if not value:
        return default
    primary = _LANGUAGE_SEPARATORS.split(value.strip(), maxsplit=1)[0].lower()
    return primary if primary in SUPPORTED_LANGUAGES else default


@functools.cache
def catalog(language: str, domain: str = DOMAIN) -> gettext.NullTranslations:
    """The compiled catalog of a supported ``language`` for ``domain`` (``messages`` for
    SMS texts, ``web`` for pages and emails); English passes texts through."""
    if language == DEFAULT_LANGUAGE:
        return gettext.NullTranslations()
    po_file = resources.files(__package__).joinpath(
        "translations", language, "LC_MESSAGES", f"{domain}.po"
    )
    with po_file.open("rb") as source:
        parsed = read_po(source, locale=language, domain=domain)
    compiled = BytesIO()
    write_mo(compiled, parsed)  # fuzzy entries are left out and fall back to English
    compiled.seek(0)
    translations: gettext.NullTranslations = Translations(fp=compiled, domain=domain)
    return translations


def translate(language: str, message: str, **params: object) -> str:
    """``message`` (a constant of :mod:`~blink_sms.messaging.texts`) in ``language``.

    The translation is then filled in with ``str.format(**params)``. An unsupported
    ``language`` gets English; so does a text that has no translation yet.
    """
    return catalog(normalize_language(language)).gettext(message).format(**params)


def format_wait(seconds: float, language: str) -> str:
    """A waiting time in words, e.g. 2700 → ``"45 minutes"`` or ``"45 minuten"``.

    Always rounded *up* so that a user who retries after the stated time is not turned
    away again: at least one minute; whole minutes below an hour (and below three hours
    unless the wait is a whole number of hours); whole hours below two days; whole days
    beyond. The result uses only GSM-7 basic characters: the no-break spaces and the
    accents Babel uses that GSM-7 lacks (Spanish "día") are replaced.
    """
    if not math.isfinite(seconds):
        raise ValueError(f"cannot format a wait of {seconds} seconds")
    minutes = max(1, math.ceil(seconds / 60))
    unit: Literal["minute", "hour", "day"]
    if minutes < 60 or (minutes < 180 and minutes % 60):
        duration, unit = timedelta(minutes=minutes), "minute"
    elif minutes < 48 * 60:
        duration, unit = timedelta(hours=math.ceil(minutes / 60)), "hour"
    else:
        duration, unit = timedelta(days=math.ceil(minutes / (24 * 60))), "day"
    # An infinite threshold makes Babel count in exactly ``unit`` (its granularity).
    text: str = format_timedelta(
        duration,
        granularity=unit,
        threshold=math.inf,
        format="long",
        locale=normalize_language(language),
    )
    return _to_gsm7(text)


def _to_gsm7(text: str) -> str:
    """``text`` with spaces made plain and accents GSM-7 lacks dropped: "día" → "dia"."""
    folded = []
    for char in text:
        if char in _GSM7_BASIC:
            folded.append(char)
        elif unicodedata.category(char) == "Zs":
            folded.append(" ")
        else:
            decomposed = unicodedata.normalize("NFKD", char)
            folded.append("".join(part for part in decomposed if part in _GSM7_BASIC))
    return "".join(folded)
