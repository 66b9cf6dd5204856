"""A client's monthly report: the page (numbers, charts, printable) and its CSV.

Any admin who can see the client may read it. The month is a GET parameter
(``?month=YYYY-MM``, last month by default), so a report can be bookmarked or sent on;
a malformed or future month is a 400 page that says so.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from flask import Response, abort, render_template, request

from blink_sms.context import blink
from blink_sms.services import monthly, scope
from blink_sms.services.errors import Invalid

from . import charts
from .auth import actor
from .blueprint import bp


def _month() -> date:
    """The month asked for, last month by default (``Invalid`` for a bad one)."""
    text = request.args.get("month", "").strip()
    return monthly.month_of(text[:20]) if text else monthly.last_month()


@bp.route("/clients/<slug>/report")
def client_report(slug: str) -> Any:
    with blink().db.session() as db:
        client = scope.client(db, actor(), slug)
        try:
            month = _month()
        except Invalid as err:
            body = render_template(
                "console/report.html", client=client, error=err.message, found=None
            )
            return body, 400
        found = monthly.report(db, actor(), client, month)
        following = monthly.next_month(month)
        return render_template(
            "console/report.html",
            client=client,
            error=None,
            found=found,
            previous=monthly.previous_month(month),
            following=following if following <= monthly.current_month() else None,
            day_chart=charts.month(found.days),
            cause_chart=charts.causes(found.failures),
            purpose_words=monthly.purpose_words,
            duration=duration,
        )


@bp.route("/clients/<slug>/report.csv")
def client_report_csv(slug: str) -> Response:
    with blink().db.session() as db:
        client = scope.client(db, actor(), slug)
        try:
            month = _month()
        except Invalid as err:
            abort(400, f"Month: {err.message}.")
        found = monthly.report(db, actor(), client, month)
    name = f"blink-sms-{found.client}-{found.label}.csv"
    return Response(
        "".join(monthly.csv_lines(found)),
        mimetype="text/csv",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


def duration(seconds: float | None) -> str:
    """A duration for people: "42 s", "3 min 5 s", "1 h 2 min"; "none" without any."""
    if seconds is None:
        return "none"
    whole = round(seconds)
    if whole < 60:
        return f"{seconds:.1f} s".replace(".0 s", " s")
    minutes, secs = divmod(whole, 60)
    if minutes < 60:
        return f"{minutes} min {secs} s" if secs else f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min" if minutes else f"{hours} h"
