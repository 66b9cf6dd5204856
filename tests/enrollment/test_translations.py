"""The web catalogs (emails and pages): complete, placeholders and keywords kept."""

from __future__ import annotations

import string
from pathlib import Path

import pytest
from babel.messages.pofile import read_po

from blink_sms.messaging import i18n, pages

TRANSLATIONS = Path(i18n.__file__).with_name("translations")
LANGUAGES = [lang for lang in i18n.SUPPORTED_LANGUAGES if lang != "en"]


def placeholders(text: str) -> set[str]:
    return {field for _, field, _, _ in string.Formatter().parse(text) if field is not None}


def msgids() -> set[str]:
    with (TRANSLATIONS / "web.pot").open("rb") as source:
        return {m.id for m in read_po(source) if isinstance(m.id, str) and m.id}


@pytest.mark.parametrize("language", LANGUAGES)
def test_every_web_text_is_translated_with_its_placeholders(language: str) -> None:
    with (TRANSLATIONS / language / "LC_MESSAGES" / "web.po").open("rb") as source:
        catalog = read_po(source, locale=language)
    assert not catalog.fuzzy and not catalog.obsolete
    ids = msgids()
    assert {m.id for m in catalog if isinstance(m.id, str) and m.id} == ids
    for text in ids:
        message = catalog.get(text)
        assert message is not None and isinstance(message.string, str) and message.string
        assert placeholders(message.string) == placeholders(text), f"{language}: {text}"
        for keyword in ("RESET", "UNLOCK"):
            assert message.string.count(keyword) == text.count(keyword), f"{language}: {text}"
    _ = pages.gettext_for(language)
    assert _("Confirm") != "Confirm"


def test_english_passes_through_and_fills_placeholders() -> None:
    _ = pages.gettext_for("en-GB")
    assert _("Hello {name},", name="Ann {x}") == "Hello Ann {x},"
    assert _("Confirm") == "Confirm"
