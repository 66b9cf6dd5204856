"""The demo: a phone simulator page over the real webhook, jobs and sandbox directory.

Mounted only outside production.
"""

from __future__ import annotations

from flask import Flask


def init_app(app: Flask) -> None:
    from .views import bp

    app.register_blueprint(bp)
