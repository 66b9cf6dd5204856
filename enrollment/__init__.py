"""Activation links, enrollment pages and phone verification (not built yet)."""

from __future__ import annotations

from flask import Flask


def init_app(app: Flask) -> None:
    """Nothing to mount until the enrollment pages exist."""
