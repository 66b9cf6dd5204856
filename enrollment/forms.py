"""The enrollment forms (CSRF through Flask-WTF) and the country chooser."""

from __future__ import annotations

import functools
import unicodedata

import phonenumbers
from babel import Locale
from flask_wtf import FlaskForm
from wtforms import PasswordField, SelectField, StringField


class NumberForm(FlaskForm):  # type: ignore[misc]  # Flask-WTF ships no type hints
    country = SelectField(validate_choice=False)
    number = StringField()


class CodeForm(FlaskForm):  # type: ignore[misc]
    """The SMS code, and the reset PIN typed twice where the client asks for one."""

    code = StringField()
    pin = PasswordField()
    pin_again = PasswordField()


class ResendForm(FlaskForm):  # type: ignore[misc]
    """Only the CSRF token: asking for another code."""


def _sort_key(label: str) -> str:
    decomposed = unicodedata.normalize("NFKD", label.casefold())
    return "".join(c for c in decomposed if not unicodedata.combining(c))


@functools.cache
def countries(language: str) -> tuple[tuple[str, str], ...]:
    """(region, "Netherlands (+31)") for every region phonenumbers knows, by name."""
    names = Locale.parse(language).territories
    choices = []
    for region in phonenumbers.SUPPORTED_REGIONS:
        code = phonenumbers.country_code_for_region(region)
        choices.append((region, f"{names.get(region, region)} (+{code})"))
    return tuple(sorted(choices, key=lambda choice: _sort_key(choice[1])))
