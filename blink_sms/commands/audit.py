"""``blink-sms audit``: read the audit trail from the command line (a table, CSV or JSON lines)."""

from __future__ import annotations

import itertools
import json
from typing import Any

import click

from ..actors import COMMAND_LINE
from ..context import blink
from ..services import audit_log, scope
from .base import refusals, with_app


@click.command()
@click.option("--client", "slug", help="Only this client's events.")
@click.option("--user", "username", help="Only events about this user (username).")
@click.option("--action", help="An action (reset.requested) or a topic (reset.*).")
@click.option("--actor", "actor_text", help="Who acted (text in the actor, e.g. an email).")
@click.option(
    "--outcome",
    type=click.Choice(sorted(audit_log.OUTCOMES)),
    help="problem: what went wrong; ok: the rest.",
)
@click.option("--since", help="From this day (YYYY-MM-DD, UTC).")
@click.option("--until", help="Up to and including this day (YYYY-MM-DD, UTC).")
@click.option("--limit", default=50, show_default=True, type=click.IntRange(min=1))
@click.option("--csv", "as_csv", is_flag=True, help="Every matching event as CSV (no limit).")
@click.option(
    "--jsonl", "as_jsonl", is_flag=True, help="Every matching event as JSON lines (no limit)."
)
@with_app
def audit(
    slug: str | None,
    username: str | None,
    action: str | None,
    actor_text: str | None,
    outcome: str | None,
    since: str | None,
    until: str | None,
    limit: int,
    as_csv: bool,
    as_jsonl: bool,
) -> None:
    """Show the audit trail, newest first."""
    if as_csv and as_jsonl:
        raise click.UsageError("give --csv or --jsonl, not both")
    with blink().db.session() as session, refusals():
        filters: dict[str, Any] = {
            "client": scope.client(session, COMMAND_LINE, slug) if slug else None,
            "username": username,
            "actor_text": actor_text,
            "action": action,
            "outcome": outcome,
            "since": audit_log.parse_day("since", since),
            "until": audit_log.parse_day("until", until),
        }
        events = audit_log.iter_events(session, COMMAND_LINE, **filters)
        if as_csv or as_jsonl:
            lines = audit_log.csv_lines(events) if as_csv else audit_log.json_lines(events)
            for line in lines:
                click.echo(line, nl=False)
            return
        shown = list(itertools.islice(events, limit))
    if not shown:
        click.echo("no events match")
        return
    for event in shown:
        where = event.client_slug or "-"
        who = event.username or "-"
        detail = json.dumps(event.detail, ensure_ascii=False, sort_keys=True)
        click.echo(
            f"{event.at:%Y-%m-%d %H:%M:%S} {where:<16} {event.action:<28} {who:<20} "
            f"{event.actor}  {detail}"
        )
