"""What a service refuses, for every edge to map the same way (console, CLI, API).

``NotFound`` (404) covers objects outside the actor's clients too; ``Forbidden`` (403)
is a role that may see but not act; ``Invalid`` (400) is bad input, naming the field;
``Conflict`` (409) is a state that does not allow the action now. Messages are for
the admin who asked, in plain words, and never carry a secret.
"""

from __future__ import annotations

from ..actors import Forbidden
from .scope import NotFound


class Invalid(ValueError):
    """Bad input: ``field`` names the form field or option, ``message`` says what is wrong."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


class Conflict(Exception):
    """The object's state does not allow this now (the message says what to do instead)."""


__all__ = ["Conflict", "Forbidden", "Invalid", "NotFound"]
