"""The console's home: every client with its health, and one client's overview."""

from __future__ import annotations

from typing import Any

from flask import redirect, render_template, url_for

from blink_sms.context import blink
from blink_sms.services import overview, reports, scope

from . import charts
from .auth import actor
from .blueprint import bp


@bp.route("/")
def home() -> Any:
    """MSP staff: all clients at a glance. A client admin goes straight to their client."""
    app = blink()
    with app.db.session() as db:
        rows = overview.client_health(app, db, actor())
        if not actor().msp_wide and len(rows) == 1:
            return redirect(url_for("console.client", slug=rows[0].client.slug))
        drawn = charts.render(reports.dashboard(db, actor())) if rows else None
        return render_template("console/home.html", rows=rows, charts=drawn)


@bp.route("/clients/<slug>")
def client(slug: str) -> Any:
    app = blink()
    with app.db.session() as db:
        found = scope.client(db, actor(), slug)
        [health] = overview.client_health(app, db, actor(), only=found)
        return render_template(
            "console/client.html",
            client=found,
            health=health,
            charts=charts.render(reports.dashboard(db, actor(), client=found)),
            # The directory is asked here only, one query: every client at once would be slow.
            locked=reports.locked_now(app, db, actor(), found),
        )
