"""What a directory's settings look like, declared once, for forms and checks.

Each adapter declares a :class:`SettingsSchema` beside the code that parses its settings
(``SCHEMA`` in ``active_directory/settings.py``, ``entra_id/settings.py`` and
``sandbox/settings.py``). An admin console builds its forms from the fields, turns what
a browser posts back into typed settings with :meth:`SettingsSchema.parse_form`, and
shows stored settings with :meth:`SettingsSchema.public`, which leaves the secrets out.
The adapter's own parser stays the judge of what is valid
(:func:`directory_adapters.validate`); the schema only says what there is to fill in.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal, get_args

from .errors import ConfigurationError

FieldKind = Literal["text", "secret", "number", "boolean", "list", "choice", "pem"]
KINDS: frozenset[str] = frozenset(get_args(FieldKind))
# A checkbox that is ticked sends "on"; one that is not ticked sends nothing at all.
_FALSE_WORDS = frozenset({"", "off", "false", "0", "no"})
_LIST_SEPARATORS = re.compile(r"[,\s]+")
_NUMBER = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?")


@dataclass(frozen=True)
class Field:
    """One setting: its key, how a form shows it, and what the parser assumes without it.

    ``kind`` is how the value is entered: ``text`` (one line), ``secret`` (a password
    input, never shown back), ``number``, ``boolean`` (a checkbox), ``list`` (several
    values: split on commas, spaces and new lines, or only on new lines when
    ``one_per_line``, for values such as DNs that hold commas and spaces), ``choice`` (one
    of ``choices``) and ``pem`` (PEM text in a text area; ``write_only`` for a private key).
    ``default`` is what the adapter uses when the key is absent (``None``: nothing, or a
    value that depends on another setting, which ``help`` then explains).
    """

    name: str
    label: str
    kind: FieldKind = "text"
    required: bool = False
    default: Any = None
    help: str = ""
    choices: tuple[str, ...] = ()
    advanced: bool = False
    one_per_line: bool = False
    write_only: bool = False

    def __post_init__(self) -> None:
        # A schema is code: a mistake in one should fail at import, not in a form.
        if self.kind not in KINDS:
            raise ValueError(f"field {self.name!r}: unknown kind {self.kind!r}")
        if (self.kind == "choice") != bool(self.choices):
            raise ValueError(f"field {self.name!r}: choices go with kind 'choice' only")
        if self.required and self.default is not None:
            raise ValueError(f"field {self.name!r}: a required field has no default")

    @property
    def secret(self) -> bool:
        """Whether the value is write-only: never put back in a page, kept when left empty."""
        return self.kind == "secret" or self.write_only

    def parse(self, raw: str | None) -> Any:
        """The typed value of what a form sent (``None``: nothing was entered)."""
        if self.kind == "boolean":
            return raw is not None and raw.strip().casefold() not in _FALSE_WORDS
        if raw is None or not raw.strip():
            return None
        if self.kind == "secret":
            return raw  # taken as typed: spaces at either end may belong to a password
        return self._typed(raw.strip())

    def _typed(self, text: str) -> Any:
        if self.kind == "number":
            return self._number(text)
        if self.kind == "list":
            parts = text.splitlines() if self.one_per_line else _LIST_SEPARATORS.split(text)
            return [part.strip() for part in parts if part.strip()] or None
        if self.kind == "choice" and text not in self.choices:
            raise ConfigurationError(f"{self.label}: choose one of {', '.join(self.choices)}")
        return text

    def _number(self, text: str) -> int | float:
        if not _NUMBER.fullmatch(text):
            raise ConfigurationError(f"{self.label}: {text[:40]!r} is not a number")
        if re.fullmatch(r"[+-]?\d+", text):
            return int(text)
        value = float(text)
        if not math.isfinite(value):
            raise ConfigurationError(f"{self.label}: {text[:40]!r} is not a number")
        return value


@dataclass(frozen=True)
class SettingsSchema:
    """The settings of one kind of directory, in the order a form shows them."""

    kind: str
    title: str
    fields: tuple[Field, ...]

    def __post_init__(self) -> None:
        names = [field.name for field in self.fields]
        if len(names) != len(set(names)):
            raise ValueError(f"schema {self.kind!r}: a field name is used twice")

    def names(self) -> tuple[str, ...]:
        """Every settings key, in form order."""
        return tuple(field.name for field in self.fields)

    def secrets(self) -> frozenset[str]:
        """The keys whose values are write-only (passwords, client secrets, private keys)."""
        return frozenset(field.name for field in self.fields if field.secret)

    def field(self, name: str) -> Field:
        """The field for ``name``; ``KeyError`` when the schema has none."""
        for candidate in self.fields:
            if candidate.name == name:
                return candidate
        raise KeyError(name)

    def parse_form(
        self, form: Mapping[str, str], *, previous: Mapping[str, Any] | None = None
    ) -> dict[str, Any]:
        """Typed settings from an HTML form's strings.

        Numbers become ``int`` or ``float``; a checkbox is ``True`` when sent (``"on"``)
        and ``False`` when missing; lists are split. A secret left empty keeps
        ``previous[name]``: secrets are never shown in a form, so an empty box means
        "unchanged". Any other optional field left empty is omitted, so the adapter's
        default applies. ``ConfigurationError`` names the field's label for a required
        value that is missing or a number that is not one. Keys the schema does not
        know (a CSRF token, a submit button) are ignored. Whether the values are valid
        together is for :func:`directory_adapters.validate` to say.
        """
        settings: dict[str, Any] = {}
        for field in self.fields:
            value = field.parse(form.get(field.name))
            if value is None and field.secret and previous is not None:
                value = previous.get(field.name)
            if value is None:
                if field.required:
                    raise ConfigurationError(f"{field.label}: a value is required")
                continue
            settings[field.name] = value
        return settings

    def public(self, settings: Mapping[str, Any]) -> dict[str, Any]:
        """``settings`` without the secrets, to show back on a page or in an API answer."""
        hidden = self.secrets()
        return {name: value for name, value in settings.items() if name not in hidden}
