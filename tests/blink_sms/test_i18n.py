"""The SMS texts, their four translations and the localised waiting times."""

from __future__ import annotations

import string
from pathlib import Path

import pytest
from babel.messages.catalog import Catalog
from babel.messages.pofile import read_po

from blink_sms.messaging import i18n, texts

TRANSLATIONS = Path(i18n.__file__).with_name("translations")
TRANSLATED_LANGUAGES = [lang for lang in i18n.SUPPORTED_LANGUAGES if lang != "en"]
TEXTS = {
    name: value
    for name, value in vars(texts).items()
    if name.isupper() and not name.startswith("_") and isinstance(value, str)
}
PARAMS = {
    "password": "Kp7#mxR4Ta",
    "support": "+31 20 123 4567",
    "wait": "45 minutes",
    "code": "123456",
    "username": "j.vandenberg",
    "when": "3 days",
}
KEYWORDS = ("RESET", "UNLOCK")

# GSM 03.38 basic character set, without ESC: one septet per character. Deliberately a
# separate copy from the one in the code under test.
GSM7_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)


def not_gsm7(text: str) -> set[str]:
    return {char for char in text if char not in GSM7_BASIC}


def placeholders(text: str) -> set[str]:
    return {field for _, field, _, _ in string.Formatter().parse(text) if field is not None}


def load(path: Path, locale: str | None = None) -> Catalog:
    with path.open("rb") as source:
        return read_po(source, locale=locale)


def catalog(language: str) -> Catalog:
    return load(TRANSLATIONS / language / "LC_MESSAGES" / "messages.po", language)


def rendered(language: str) -> dict[str, str]:
    wait = i18n.format_wait(2700, language)
    return {
        name: i18n.translate(language, text, **{**PARAMS, "wait": wait})
        for name, text in TEXTS.items()
    }


def test_there_are_texts() -> None:
    assert len(TEXTS) == 25
    assert {"OTP", "OTP_NO_CHANGE", "RATE_LIMITED", "APOLOGY", "HELP"} <= set(TEXTS)


def test_template_matches_the_texts() -> None:
    template = load(TRANSLATIONS / "messages.pot")
    assert {message.id for message in template if message.id} == set(TEXTS.values())


@pytest.mark.parametrize("language", TRANSLATED_LANGUAGES)
def test_catalog_header(language: str) -> None:
    cat = catalog(language)
    headers = dict(cat.mime_headers)
    assert headers["Language"] == language
    assert "charset=utf-8" in headers["Content-Type"]
    assert headers["Plural-Forms"].startswith("nplurals=2;")
    assert not cat.fuzzy


@pytest.mark.parametrize("language", TRANSLATED_LANGUAGES)
def test_every_text_is_translated(language: str) -> None:
    cat = catalog(language)
    assert not cat.obsolete
    for name, text in TEXTS.items():
        message = cat.get(text)
        assert message is not None, f"{language}: {name} is missing"
        assert not message.fuzzy, f"{language}: {name} is fuzzy"
        assert isinstance(message.string, str)
        assert message.string.strip(), f"{language}: {name} is empty"
        assert message.string != text, f"{language}: {name} is not translated"
        # The catalog is really used: the rendered text is the translation.
        assert i18n.translate(language, text, **PARAMS) == message.string.format(**PARAMS)


@pytest.mark.parametrize("language", TRANSLATED_LANGUAGES)
def test_placeholders_and_keywords_are_kept(language: str) -> None:
    cat = catalog(language)
    for name, text in TEXTS.items():
        message = cat.get(text)
        assert message is not None
        translation = message.string
        assert isinstance(translation, str)
        assert placeholders(translation) == placeholders(text), f"{language}: {name}"
        for keyword in KEYWORDS:
            assert translation.count(keyword) == text.count(keyword), f"{language}: {name}"
        assert translation.count("\n") == text.count("\n"), f"{language}: {name}"


@pytest.mark.parametrize("language", i18n.SUPPORTED_LANGUAGES)
def test_every_rendered_text_is_gsm7_basic(language: str) -> None:
    for name, text in rendered(language).items():
        assert not not_gsm7(text), f"{language}: {name}: {text!r}"


@pytest.mark.parametrize("language", i18n.SUPPORTED_LANGUAGES)
def test_otp_fits_one_sms(language: str) -> None:
    texts_ = rendered(language)
    assert len(texts_["OTP"]) <= 160
    assert len(texts_["OTP_NO_CHANGE"]) <= 160
    # Room for a much longer password than the sample, too.
    assert len(texts_["OTP"]) - len(PARAMS["password"]) <= 160 - 32


@pytest.mark.parametrize("language", i18n.SUPPORTED_LANGUAGES)
def test_every_text_fits_one_sms(language: str) -> None:
    for name, text in rendered(language).items():
        assert len(text) <= 160, f"{language}: {name} is {len(text)} characters"


def test_english_is_the_source_text() -> None:
    assert i18n.translate("en", texts.OTP, password="Kp7#mxR4Ta") == (
        "Your new password: Kp7#mxR4Ta\nYou must change it when you sign in."
    )
    assert i18n.translate("en", texts.HELP) == texts.HELP


def test_translate_examples() -> None:
    assert i18n.translate("nl", texts.OTP_NO_CHANGE, password="Kp7#mxR4Ta") == (
        "Je nieuwe wachtwoord: Kp7#mxR4Ta"
    )
    assert i18n.translate("de", texts.APOLOGY, support="+31 20 123 4567").endswith(
        "+31 20 123 4567."
    )
    # The password is inserted as it is, even if it has braces of its own.
    assert "{x}" in i18n.translate("fr", texts.OTP, password="a{x}b")


def test_translate_normalizes_the_language() -> None:
    assert i18n.translate("nl-BE", texts.UNLOCKED) == i18n.translate("nl", texts.UNLOCKED)
    assert i18n.translate("ES_mx", texts.UNLOCKED) == i18n.translate("es", texts.UNLOCKED)


def test_translate_unknown_language_or_text_falls_back_to_english() -> None:
    assert i18n.translate("pt", texts.UNLOCKED) == texts.UNLOCKED
    assert i18n.translate("", texts.UNLOCKED) == texts.UNLOCKED
    assert i18n.translate("de", "Not in any catalog {n}", n=1) == "Not in any catalog 1"


def test_translate_missing_parameter_raises() -> None:
    with pytest.raises(KeyError):
        i18n.translate("de", texts.OTP)


def test_catalogs_are_cached() -> None:
    assert i18n.catalog("de") is i18n.catalog("de")


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("nl", "nl"),
        ("NL", "nl"),
        ("nl-BE", "nl"),
        ("nl_NL", "nl"),
        (" de-CH ", "de"),
        ("fr_CA.UTF-8", "fr"),
        ("es-419", "es"),
        ("en-GB", "en"),
        ("pt-BR", "en"),
        ("xx", "en"),
        ("dutch", "en"),
        ("", "en"),
        (None, "en"),
    ],
)
def test_normalize_language(value: str | None, expected: str) -> None:
    assert i18n.normalize_language(value) == expected


def test_normalize_language_default() -> None:
    assert i18n.normalize_language("pt", default="nl") == "nl"
    assert i18n.normalize_language(None, default="de") == "de"
    assert i18n.normalize_language("FR", default="de") == "fr"


WAITS = {
    # seconds: (en, nl, es, de, fr)
    2700: ("45 minutes", "45 minuten", "45 minutos", "45 Minuten", "45 minutes"),
    0: ("1 minute", "1 minuut", "1 minuto", "1 Minute", "1 minute"),
    1: ("1 minute", "1 minuut", "1 minuto", "1 Minute", "1 minute"),
    60: ("1 minute", "1 minuut", "1 minuto", "1 Minute", "1 minute"),
    61: ("2 minutes", "2 minuten", "2 minutos", "2 Minuten", "2 minutes"),
    2699.5: ("45 minutes", "45 minuten", "45 minutos", "45 Minuten", "45 minutes"),
    3600: ("1 hour", "1 uur", "1 hora", "1 Stunde", "1 heure"),
    3601: ("61 minutes", "61 minuten", "61 minutos", "61 Minuten", "61 minutes"),
    5400: ("90 minutes", "90 minuten", "90 minutos", "90 Minuten", "90 minutes"),
    7200: ("2 hours", "2 uur", "2 horas", "2 Stunden", "2 heures"),
    10801: ("4 hours", "4 uur", "4 horas", "4 Stunden", "4 heures"),
    86400: ("24 hours", "24 uur", "24 horas", "24 Stunden", "24 heures"),
    2 * 86400: ("2 days", "2 dagen", "2 dias", "2 Tage", "2 jours"),
    -5: ("1 minute", "1 minuut", "1 minuto", "1 Minute", "1 minute"),
}


@pytest.mark.parametrize("seconds", list(WAITS))
@pytest.mark.parametrize("language", i18n.SUPPORTED_LANGUAGES)
def test_format_wait(seconds: float, language: str) -> None:
    expected = WAITS[seconds][i18n.SUPPORTED_LANGUAGES.index(language)]
    assert i18n.format_wait(seconds, language) == expected


UNIT_SECONDS = {
    **dict.fromkeys(
        ["minute", "minutes", "minuut", "minuten", "minuto", "minutos", "Minute", "Minuten"], 60
    ),
    **dict.fromkeys(
        ["hour", "hours", "uur", "hora", "horas", "Stunde", "Stunden", "heure", "heures"], 3600
    ),
    **dict.fromkeys(
        ["day", "days", "dag", "dagen", "dia", "dias", "Tag", "Tage", "jour", "jours"], 86400
    ),
}


@pytest.mark.parametrize("language", i18n.SUPPORTED_LANGUAGES)
def test_format_wait_is_gsm7_and_never_too_short(language: str) -> None:
    for seconds in [*range(0, 4 * 3600, 59), *range(0, 10 * 86400, 3599)]:
        text = i18n.format_wait(seconds, language)
        assert not not_gsm7(text), f"{language}: {seconds}: {text!r}"
        count, word = text.split(" ")
        assert int(count) * UNIT_SECONDS[word] >= seconds, f"{language}: {seconds}: {text!r}"


def test_format_wait_normalizes_the_language() -> None:
    assert i18n.format_wait(2700, "de-AT") == "45 Minuten"
    assert i18n.format_wait(2700, "pt") == "45 minutes"


def test_format_wait_rejects_infinity() -> None:
    with pytest.raises(ValueError, match="wait"):
        i18n.format_wait(float("inf"), "en")
