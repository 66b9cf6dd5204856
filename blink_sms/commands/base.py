"""Shared plumbing for commands: run inside an app context built from the environment."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import ParamSpec, TypeVar

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
