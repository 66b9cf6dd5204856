"""The demo: a phone simulator page over the real webhook, jobs and sandbox directory,
and the newcomer's mailbox for trying enrollment.

Mounted only outside production.
"""

from __future__ import annotations

from flask import Flask, redirect, url_for


def init_app(app: Flask) -> None:
    from . import enroll, signin  # noqa: F401 - their views join the blueprint
    from .views import bp

    app.register_blueprint(bp)
    # The site's root is the demo's start page (there is no root outside the demo).
    app.add_url_rule("/", "demo_root", lambda: redirect(url_for("demo.start"), code=302))
