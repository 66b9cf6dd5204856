"""The audit trail: filter events page by page, or export them as CSV or JSON lines."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from flask import Response, request, stream_with_context
from spectree import Response as Responses

from blink_sms.context import blink
from blink_sms.services import audit_log, scope

from .blueprint import actor, bp, decode_cursor, encode_cursor, spec
from .clients import READ_ERRORS
from .schemas import Event, EventPage, EventQuery, ExportQuery, Problem

TAG = "audit"


def event_out(row: audit_log.EventRow) -> Event:
    return Event(
        id=row.id,
        at=row.at,
        client=row.client_slug,
        user_id=row.user_id,
        username=row.username,
        request_id=row.request_id,
        actor=row.actor,
        action=row.action,
        outcome="problem" if row.problem else "ok",
        detail=row.detail,
    )


def _filters(query: EventQuery | ExportQuery, db: Any) -> dict[str, Any]:
    return {
        "client": scope.client(db, actor(), query.client) if query.client else None,
        "username": query.user,
        "user_id": query.user_id,
        "actor_text": query.actor,
        "action": query.action,
        "outcome": query.outcome,
        "since": audit_log.parse_day("since", query.since),
        "until": audit_log.parse_day("until", query.until),
    }


@bp.get("/audit-events")
@spec.validate(
    query=EventQuery,
    resp=Responses(HTTP_200=EventPage, **READ_ERRORS, HTTP_422=Problem),
    tags=[TAG],
)
def list_events() -> Any:
    """Audit events this key may see, newest first; filter by client, user, actor,
    action (or topic, "reset.*"), outcome and days."""
    query: EventQuery = request.context.query  # type: ignore[attr-defined]
    before = decode_cursor(query.cursor) or None
    with blink().db.session() as db:
        page = audit_log.query_events(
            db, actor(), **_filters(query, db), before_id=before, limit=query.limit
        )
        return EventPage(
            items=[event_out(row) for row in page.events],
            next_cursor=encode_cursor(page.older) if page.older else None,
        )


@bp.get("/audit-events/export")
@spec.validate(
    query=ExportQuery,
    resp=Responses(HTTP_200=None, **READ_ERRORS, HTTP_422=Problem),
    tags=[TAG],
)
def export_events() -> Any:
    """Every matching event, streamed: CSV, or JSON lines (one event per line)."""
    query: ExportQuery = request.context.query  # type: ignore[attr-defined]
    app = blink()
    who = actor()
    with app.db.session() as db:
        filters = _filters(query, db)  # bad filters are refused before streaming starts

    def lines() -> Iterator[str]:
        with app.db.session() as db:
            events = audit_log.iter_events(db, who, **filters)
            if query.format == "csv":
                yield from audit_log.csv_lines(events)
            else:
                yield from audit_log.json_lines(events)

    media = "text/csv" if query.format == "csv" else "application/jsonl"
    name = f"audit-events.{query.format}"
    return Response(
        stream_with_context(lines()),
        mimetype=media,
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )
