"""Monthly client reports: resets, unlocks, time to password, failures, enrollment, SMS."""

from __future__ import annotations

from typing import Any

from flask import Response, request
from spectree import Response as Responses

from blink_sms.context import blink
from blink_sms.services import monthly, scope

from .blueprint import actor, bp, spec
from .clients import READ_ERRORS
from .schemas import MonthlyReport, MonthQuery, Problem

TAG = "reports"


def _report(slug: str) -> monthly.MonthlyReport:
    query: MonthQuery = request.context.query  # type: ignore[attr-defined]
    month = monthly.month_of(query.month) if query.month else monthly.last_month()
    with blink().db.session() as db:
        client = scope.client(db, actor(), slug)
        return monthly.report(db, actor(), client, month)


@bp.get("/clients/<slug>/reports/monthly")
@spec.validate(
    query=MonthQuery,
    resp=Responses(HTTP_200=MonthlyReport, **READ_ERRORS, HTTP_422=Problem),
    tags=[TAG],
)
def monthly_report(slug: str) -> Any:
    """One client's month: resets (self-service and admin), unlocks, median time from
    text to password, failures by cause, users enrolled and imported, texts sent and
    their cost."""
    return MonthlyReport.model_validate(_report(slug).as_dict())


@bp.get("/clients/<slug>/reports/monthly.csv")
@spec.validate(
    query=MonthQuery, resp=Responses(HTTP_200=None, **READ_ERRORS, HTTP_422=Problem), tags=[TAG]
)
def monthly_report_csv(slug: str) -> Any:
    """The same month as CSV, for a spreadsheet or an invoice."""
    report = _report(slug)
    return Response(
        "".join(monthly.csv_lines(report)),
        mimetype="text/csv",
        headers={"Content-Disposition": f'attachment; filename="{slug}-{report.label}.csv"'},
    )
