"""The audit trail pages: every event the admin may see, filtered, and its exports
(CSV, JSON lines).

The filters are a GET form (they change nothing, and a filtered page can be bookmarked
or sent to a colleague). What an admin may see is decided by
:func:`blink_sms.services.audit_log.query_events`; a client in the ``client`` filter
that the admin may not see is a 404, as everywhere.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from datetime import datetime
from typing import Any

from flask import Response, abort, render_template, request, stream_with_context
from sqlalchemy.orm import Session

from blink_sms.context import blink
from blink_sms.models import Client, utcnow
from blink_sms.services import audit_log, scope
from blink_sms.services.errors import Invalid
from blink_sms.services.reports import cause_words

from .auth import actor
from .blueprint import bp

# The form's fields (GET parameters), as typed; "before" is the page (keyset).
FIELDS = ("client", "user", "actor", "action", "outcome", "since", "until")
LABELS = {
    "client": "Client",
    "user": "User",
    "actor": "Who",
    "action": "What",
    "outcome": "Outcome",
    "since": "From",
    "until": "To",
    "before": "Page",
}


@bp.route("/audit")
def audit() -> Any:
    """The trail of every client the admin sees (and, for MSP staff, the MSP's own)."""
    return _page(None)


@bp.route("/clients/<slug>/audit")
def client_audit(slug: str) -> Any:
    """One client's trail."""
    return _page(slug)


@bp.route("/audit.csv")
def audit_csv() -> Response:
    """The events the filters select, every page of them, as CSV (streamed)."""
    return _export(audit_log.csv_lines, "csv", "text/csv")


@bp.route("/audit.jsonl")
def audit_jsonl() -> Response:
    """The events the filters select, every page of them, as JSON lines (streamed)."""
    return _export(audit_log.json_lines, "jsonl", "application/jsonl")


def _export(
    render: Callable[[Iterable[audit_log.EventRow]], Iterator[str]], extension: str, mimetype: str
) -> Response:
    app = blink()
    who = actor()
    form = _form(request.args)
    with app.db.session() as db:
        try:
            filters = _filters(db, form, None)
            # Check the filters now: once streaming has begun, an error cannot be a 400.
            audit_log.query_events(db, who, limit=1, **filters)
        except Invalid as err:
            abort(400, f"{LABELS.get(err.field, err.field)}: {err.message}")

    def lines() -> Iterator[str]:
        with app.db.session() as db:
            yield from render(audit_log.iter_events(db, who, **filters))

    name = f"blink-sms-audit-{utcnow():%Y%m%d-%H%M%S}.{extension}"
    return Response(
        stream_with_context(lines()),
        mimetype=mimetype,
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


def _form(args: Mapping[str, str]) -> dict[str, str]:
    """What the admin typed, trimmed, to filter by and to put back in the form."""
    return {name: (args.get(name) or "").strip()[:200] for name in FIELDS}


def _filters(db: Session, form: dict[str, str], client: Client | None) -> dict[str, Any]:
    """The form as :func:`audit_log.query_events` arguments (``Invalid`` naming a field)."""
    filters: dict[str, Any] = {
        "username": form["user"] or None,
        "actor_text": form["actor"] or None,
        "action": form["action"] or None,
        "outcome": form["outcome"] or None,
        "since": audit_log.parse_day("since", form["since"]),
        "until": audit_log.parse_day("until", form["until"]),
    }
    if client is not None:
        filters["client"] = client
    elif form["client"] == audit_log.NO_CLIENT:
        filters["without_client"] = True
    elif form["client"]:
        # A client the admin may not see (or none of that slug): 404, like its pages.
        filters["client"] = scope.client(db, actor(), form["client"])
    return filters


def _before(text: str | None) -> int | None:
    if not text:
        return None
    if not text.isdigit():
        raise Invalid("before", "not a page of this trail: start again from the newest")
    return int(text)


def _page(slug: str | None) -> Any:
    app = blink()
    form = _form(request.args)
    with app.db.session() as db:
        client = scope.client(db, actor(), slug) if slug is not None else None
        errors: dict[str, str] = {}
        page = audit_log.EventPage([], None)
        before = None
        try:
            filters = _filters(db, form, client)
            before = _before(request.args.get("before"))
            page = audit_log.query_events(db, actor(), before_id=before, **filters)
        except Invalid as err:
            errors[err.field] = err.message
        clients = (
            audit_log.visible_clients(db, actor()) if client is None and actor().msp_wide else []
        )
        body = render_template(
            "console/audit.html",
            client=client,
            clients=clients,
            form=form,
            page=page,
            before=before,
            errors=errors,
            labels=LABELS,
            action_groups=audit_log.ACTION_GROUPS,
            known_actions=audit_log.ACTIONS,
            outcomes=audit_log.OUTCOMES,
            no_client=audit_log.NO_CLIENT,
            query=_query(form, client),
            csv_query=_query(form, client, csv=True),
            ago=_ago,
            show=_show,
            now=utcnow(),
        )
        return body, 400 if errors else 200


def _query(form: dict[str, str], client: Client | None, *, csv: bool = False) -> dict[str, str]:
    """The filters in force, for links to the next page (or to the CSV export, which names
    the client of a client's page as its filter)."""
    query = {name: value for name, value in form.items() if value}
    if client is not None:
        query.pop("client", None)
        if csv:
            query["client"] = client.slug
    return query


def _ago(at: datetime, now: datetime) -> str:
    """How long ago, roughly (the exact UTC time is shown beside it)."""
    seconds = int((now - at).total_seconds())
    if seconds < 60:
        return "just now"
    for size, unit in ((86400, "day"), (3600, "hour"), (60, "minute")):
        if seconds >= size:
            count = seconds // size
            return f"{count} {unit}{'s' if count != 1 else ''} ago"
    return ""  # pragma: no cover -- every case above returns


def _show(key: str, value: object) -> str:
    """A detail value as text (the template escapes it); error codes in words too."""
    if isinstance(value, list | tuple):
        return ", ".join(str(item) for item in value)
    if value is None:
        return "none"
    if key == "error_code" and isinstance(value, str):
        return f"{cause_words(value)} ({value})"
    return str(value)
