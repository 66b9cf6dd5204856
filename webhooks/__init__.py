"""The HTTP edge for Twilio: inbound SMS and delivery status callbacks."""

from __future__ import annotations

from flask import Flask


def init_app(app: Flask) -> None:
    from .views import bp

    app.register_blueprint(bp)
