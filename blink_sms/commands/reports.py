"""``blink-sms reports monthly``: a client's monthly report as text, CSV or JSON."""

from __future__ import annotations

import json

import click

from ..actors import COMMAND_LINE
from ..context import blink
from ..services import monthly, scope
from .base import refusals, with_app


@click.group()
def reports() -> None:
    """Reports for billing and reviews."""


@reports.command("monthly")
@click.option("--client", "slug", required=True, help="The client's slug.")
@click.option("--month", "month_text", help="YYYY-MM (UTC); default: last month.")
@click.option("--csv", "as_csv", is_flag=True, help="As CSV (metric, item, value, description).")
@click.option("--json", "as_json", is_flag=True, help="As JSON (the REST API's shape).")
@with_app
def monthly_(slug: str, month_text: str | None, as_csv: bool, as_json: bool) -> None:
    """One client's month: resets, unlocks, time to password, failures, users, SMS."""
    if as_csv and as_json:
        raise click.UsageError("--csv or --json, not both")
    with blink().db.session() as session, refusals():
        client = scope.client(session, COMMAND_LINE, slug)
        month = monthly.month_of(month_text) if month_text else monthly.last_month()
        found = monthly.report(session, COMMAND_LINE, client, month)
        name = client.name
    if as_csv:
        for line in monthly.csv_lines(found):
            click.echo(line, nl=False)
    elif as_json:
        click.echo(json.dumps(found.as_dict(), indent=2))
    else:
        click.echo(summary(found, name))


def summary(found: monthly.MonthlyReport, name: str) -> str:
    """The report as a few readable lines."""
    median = found.median_seconds_to_password
    lines = [
        f"{name} ({found.client}), {found.label} (UTC)",
        f"resets:      {found.resets} ({found.resets_self_service} self-service, "
        f"{found.resets_admin} by an admin)",
        f"unlocks:     {found.unlocks}",
        "median time from text to password: "
        + ("none (no self-service reset)" if median is None else f"{median} s"),
        f"failures:    {found.failed}",
        *(f"  {cause.count:>5}  {cause.words} ({cause.code})" for cause in found.failures),
        f"users:       {found.users_enrolled} enrolled of {found.users_imported} imported "
        f"({found.enrolled_this_month} enrolled this month)",
        f"SMS sent:    {found.sms_sent}",
        *(
            f"  {count:>5}  {monthly.purpose_words(purpose)}"
            for purpose, count in found.sms_by_purpose.items()
        ),
        "SMS cost:    "
        + (
            ", ".join(f"{cost.amount} {cost.unit}" for cost in found.cost)
            or "no prices reported by Twilio"
        ),
    ]
    return "\n".join(lines)
