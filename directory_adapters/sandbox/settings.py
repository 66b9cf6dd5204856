"""The sandbox's settings: parsed and checked without touching its file, and declared as a
schema (:data:`SCHEMA`) for forms, with what the sandbox can do (:data:`CAPABILITIES`)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..base import LIST_GROUPS, LIST_OUS, LOCKOUT_QUERY, PASSWORD_EXPIRY, PASSWORD_POLICY, UNLOCK
from ..errors import ConfigurationError
from ..schema import Field, SettingsSchema
from .passwords import HASH_COST

SCHEMA = SettingsSchema(
    kind="sandbox",
    title="Sandbox directory (demo and tests)",
    fields=(
        Field("path", "Directory file", required=True,
              help="The SQLite file that holds the sandbox directory; its folder must exist."),
        Field("min_length", "Minimum password length", "number", default=8,
              help="New passwords need at least this many characters."),
        Field("complexity", "Require complex passwords", "boolean", default=True,
              help="New passwords use 3 of 4 kinds of character and not the username."),
        Field("lockout_threshold", "Bad passwords before a lockout", "number", default=5,
              help="This many wrong passwords in a row lock the account; 0 never locks."),
        Field("latency_ms", "Simulated latency (ms)", "number", default=0, advanced=True,
              help="Each directory call first waits this long, like a real directory."),
        Field("hash_cost", "Password hash cost", "number", default=HASH_COST, advanced=True,
              help="scrypt work factor (log2 of N), from 1 to 20; lower is faster."),
    ),
)  # fmt: skip

CAPABILITIES: frozenset[str] = frozenset(
    {UNLOCK, LOCKOUT_QUERY, LIST_GROUPS, LIST_OUS, PASSWORD_POLICY, PASSWORD_EXPIRY}
)


def _setting(settings: Mapping[str, Any], name: str, default: int | bool) -> Any:
    value = settings.get(name, default)
    if type(value) is not type(default):  # bool is an int subclass: compare exact types
        raise ConfigurationError(f"sandbox setting {name!r} must be {type(default).__name__}")
    return value


@dataclass(frozen=True)
class SandboxSettings:
    """The validated settings of a sandbox directory (see :data:`SCHEMA`)."""

    path: str
    min_length: int = 8
    complexity: bool = True
    lockout_threshold: int = 5
    latency_ms: int = 0
    hash_cost: int = HASH_COST

    def __post_init__(self) -> None:
        if self.min_length < 1 or self.lockout_threshold < 0 or self.latency_ms < 0:
            raise ConfigurationError(
                "sandbox min_length must be >= 1, lockout_threshold and latency_ms >= 0"
            )
        if not 1 <= self.hash_cost <= 20:
            raise ConfigurationError("sandbox hash_cost must be from 1 to 20")

    @classmethod
    def parse(cls, settings: Mapping[str, Any]) -> SandboxSettings:
        """Check ``settings`` without creating or opening the file: ``path`` must name a
        file (existing or not) in a folder that exists. ``ConfigurationError`` names the
        first bad key."""
        path = settings.get("path")
        if not isinstance(path, str | os.PathLike) or not os.fspath(path):
            raise ConfigurationError("sandbox directory needs a 'path' setting: the SQLite file")
        path = os.fspath(path)
        if os.path.isdir(path):
            raise ConfigurationError(f"sandbox setting 'path' names a folder: {path!r}")
        folder = os.path.dirname(os.path.abspath(path))
        if not os.path.isdir(folder):
            raise ConfigurationError(
                f"sandbox setting 'path': the folder {folder!r} does not exist"
            )
        return cls(
            path,
            min_length=_setting(settings, "min_length", 8),
            complexity=_setting(settings, "complexity", True),
            lockout_threshold=_setting(settings, "lockout_threshold", 5),
            latency_ms=_setting(settings, "latency_ms", 0),
            hash_cost=_setting(settings, "hash_cost", HASH_COST),
        )
