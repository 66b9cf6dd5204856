"""Shared plumbing for commands: run inside an app context built from the environment."""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import ParamSpec, TypeVar

import click

P = ParamSpec("P")
R = TypeVar("R")


def with_app(command: Callable[P, R]) -> Callable[P, R]:
    """Run the command inside an app context (settings from BLINK_* variables)."""

    @functools.wraps(command)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        from ..app import create_app

        with create_app().app_context():
            return command(*args, **kwargs)

    return wrapper


@contextmanager
def refusals() -> Iterator[None]:
    """A service's refusal (bad input, wrong state, unknown object) as one plain line."""
    from ..actors import Forbidden
    from ..services.errors import Conflict, Invalid, NotFound

    try:
        yield
    except (Invalid, Conflict, NotFound, Forbidden) as err:
        raise click.ClickException(str(err)) from None
