"""Clients: list, read, onboard, change, disable or enable, test the directory."""

from __future__ import annotations

from typing import Any

from flask import request
from spectree import Response as Responses
from sqlalchemy import select

from blink_sms.context import blink
from blink_sms.models import Client
from blink_sms.services import clients as service
from blink_sms.services import scope

from .blueprint import actor, bp, decode_cursor, encode_cursor, spec
from .idempotency import idempotent
from .schemas import (
    Changed,
    ClientCreate,
    ClientOptions,
    ClientOut,
    ClientPage,
    ConnectionReport,
    Finding,
    Me,
    PageQuery,
    Problem,
)

TAG = "clients"
# Every action may answer these (400 and 415: a body that is not JSON); documented so
# that clients can rely on them.
ERRORS = {
    "HTTP_400": Problem,
    "HTTP_401": Problem,
    "HTTP_403": Problem,
    "HTTP_404": Problem,
    "HTTP_415": Problem,
    "HTTP_429": Problem,
}
READ_ERRORS = {"HTTP_401": Problem, "HTTP_404": Problem, "HTTP_429": Problem}


def client_out(client: Client) -> ClientOut:
    return ClientOut(
        slug=client.slug,
        name=client.name,
        directory_kind=client.directory_kind,
        default_region=client.default_region,
        language=client.language,
        sender_number=client.sender_number,
        support_contact=client.support_contact,
        password_length=client.password_length,
        unlock_on_reset=client.unlock_on_reset,
        must_change_at_next_logon=client.must_change_at_next_logon,
        resets_per_hour=client.resets_per_hour,
        resets_per_day=client.resets_per_day,
        invitation_hours=client.invitation_hours,
        lockout_watch=client.lockout_watch,
        lockout_poll_seconds=client.lockout_poll_seconds,
        lockout_alert_email=client.lockout_alert_email,
        reset_notices=client.reset_notices,
        expiry_reminder_days=client.expiry_reminder_days,
        allowed_countries=client.allowed_countries,
        binding_policy=client.binding_policy,
        reset_pin=client.reset_pin,
        sim_swap_policy=client.sim_swap_policy,
        sim_swap_days=client.sim_swap_days,
        disabled=client.disabled_at is not None,
        created_at=client.created_at,
    )


@bp.get("/me")
@spec.validate(resp=Responses(HTTP_200=Me, **READ_ERRORS), tags=["keys"])
def me() -> Any:
    """The API key making the call: its role and scope."""
    who = actor()
    slug = None
    if who.client_id is not None:
        with blink().db.session() as db:
            slug = db.execute(select(Client.slug).where(Client.id == who.client_id)).scalar()
    return Me(key=who.label, role=who.role.value, client=slug, writes=who.role.value != "auditor")


@bp.get("/clients")
@spec.validate(
    query=PageQuery,
    resp=Responses(HTTP_200=ClientPage, **READ_ERRORS, HTTP_422=Problem),
    tags=[TAG],
)
def list_clients() -> Any:
    """The clients this key may see, oldest first."""
    query: PageQuery = request.context.query  # type: ignore[attr-defined]
    after = decode_cursor(query.cursor)
    with blink().db.session() as db:
        found = (
            db.execute(
                scope.clients(actor())
                .where(Client.id > after)
                .order_by(Client.id)
                .limit(query.limit + 1)
            )
            .scalars()
            .all()
        )
        more = len(found) > query.limit
        found = found[: query.limit]
        return ClientPage(
            items=[client_out(client) for client in found],
            next_cursor=encode_cursor(found[-1].id) if more else None,
        )


@bp.post("/clients")
@idempotent
@spec.validate(
    json=ClientCreate,
    resp=Responses(HTTP_201=ClientOut, **ERRORS, HTTP_409=Problem, HTTP_422=Problem),
    tags=[TAG],
)
def create_client() -> Any:
    """Onboard a client with its directory (MSP-wide read-write keys)."""
    body: ClientCreate = request.context.json  # type: ignore[attr-defined]
    options = body.model_dump(exclude_none=True, exclude={"slug", "name", "directory"})
    app = blink()
    with app.db.session() as db:
        client = service.create_client(
            db,
            app.secrets,
            actor(),
            slug=body.slug,
            name=body.name,
            directory_kind=body.directory.kind,
            directory_settings=body.directory.settings,
            **options,
        )
        db.commit()
        return client_out(client), 201


@bp.get("/clients/<slug>")
@spec.validate(resp=Responses(HTTP_200=ClientOut, **READ_ERRORS), tags=[TAG])
def get_client(slug: str) -> Any:
    """One client."""
    with blink().db.session() as db:
        return client_out(scope.client(db, actor(), slug))


@bp.patch("/clients/<slug>")
@idempotent
@spec.validate(
    json=ClientOptions, resp=Responses(HTTP_200=ClientOut, **ERRORS, HTTP_422=Problem), tags=[TAG]
)
def update_client(slug: str) -> Any:
    """Change a client's options (only the fields sent)."""
    body: ClientOptions = request.context.json  # type: ignore[attr-defined]
    with blink().db.session() as db:
        client = scope.client(db, actor(), slug)
        service.update_client(db, actor(), client, **body.model_dump(exclude_none=True))
        return client_out(client)


def _set_disabled(slug: str, *, disabled: bool) -> Changed:
    with blink().db.session() as db:
        client = scope.client(db, actor(), slug)
        return Changed(changed=service.set_disabled(db, actor(), client, disabled=disabled))


@bp.post("/clients/<slug>/disable")
@idempotent
@spec.validate(resp=Responses(HTTP_200=Changed, **ERRORS), tags=[TAG])
def disable_client(slug: str) -> Any:
    """Disable a client: its users are told by text; nothing reaches its directory."""
    return _set_disabled(slug, disabled=True)


@bp.post("/clients/<slug>/enable")
@idempotent
@spec.validate(resp=Responses(HTTP_200=Changed, **ERRORS), tags=[TAG])
def enable_client(slug: str) -> Any:
    """Enable a disabled client again."""
    return _set_disabled(slug, disabled=False)


@bp.post("/clients/<slug>/test-connection")
@spec.validate(resp=Responses(HTTP_200=ConnectionReport, **ERRORS), tags=[TAG])
def test_connection(slug: str) -> Any:
    """Check the client's directory step by step; nothing changes."""
    app = blink()
    with app.db.session() as db:
        client = scope.client(db, actor(), slug)
        report = service.test_connection(app, actor(), client)
    return ConnectionReport(
        kind=report.kind,
        ok=report.problems == 0,
        findings=[
            Finding(level=f.level, topic=f.topic, message=f.message, missing=f.missing)  # type: ignore[arg-type]
            for f in report.findings
        ],
    )
