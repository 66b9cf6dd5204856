"""Outbound event webhooks: a PSA registers where resets, unlocks, lockouts and
enrolments are POSTed (signed with a secret shown once), tests and removes them."""

from __future__ import annotations

from typing import Any

from flask import Response, request
from spectree import Response as Responses

from blink_sms.context import blink
from blink_sms.models import Client, WebhookDelivery, WebhookEndpoint
from blink_sms.services import scope
from blink_sms.services import webhooks as service

from .blueprint import actor, bp, spec
from .clients import ERRORS, READ_ERRORS
from .idempotency import idempotent
from .schemas import (
    Changed,
    Delivery,
    Problem,
    TestQueued,
    WebhookCreated,
    WebhookIn,
    WebhookList,
    WebhookOut,
    WebhookQuery,
)

TAG = "webhooks"
WEBHOOK = "/webhooks/<int:webhook_id>"
ACTION_ERRORS = {**ERRORS, "HTTP_409": Problem}


def webhook_out(
    endpoint: WebhookEndpoint, last: WebhookDelivery | None, slugs: dict[int, str]
) -> WebhookOut:
    return WebhookOut(
        id=endpoint.id,
        url=endpoint.url,
        client=slugs.get(endpoint.client_id) if endpoint.client_id else None,
        events=list(endpoint.events or []),
        description=endpoint.description,
        disabled=endpoint.disabled_at is not None,
        created_at=endpoint.created_at,
        last_delivery=(
            Delivery(
                event=last.event,
                status=last.status,
                attempts=last.attempts,
                last_status=last.last_status,
                created_at=last.created_at,
                delivered_at=last.delivered_at,
            )
            if last
            else None
        ),
    )


def _slugs(db: Any) -> dict[int, str]:
    return dict(db.execute(scope.clients(actor()).with_only_columns(Client.id, Client.slug)).all())


@bp.get("/webhooks")
@spec.validate(
    query=WebhookQuery,
    resp=Responses(HTTP_200=WebhookList, **READ_ERRORS, HTTP_403=Problem, HTTP_422=Problem),
    tags=[TAG],
)
def list_webhooks() -> Any:
    """The endpoints this key may manage (read keys may not: URLs can hold tokens), with
    each one's latest delivery."""
    query: WebhookQuery = request.context.query  # type: ignore[attr-defined]
    with blink().db.session() as db:
        client = scope.client(db, actor(), query.client) if query.client else None
        listed = service.list_endpoints(db, actor(), client=client)
        slugs = _slugs(db)
        return WebhookList(items=[webhook_out(i.endpoint, i.last, slugs) for i in listed])


@bp.post("/webhooks")
@spec.validate(
    json=WebhookIn,
    resp=Responses(HTTP_201=WebhookCreated, **ACTION_ERRORS, HTTP_422=Problem),
    tags=[TAG],
)
def create_webhook() -> Any:
    """Add an endpoint; the answer carries its signing secret, this once. Takes no
    Idempotency-Key: the answer holds a secret, and is stored nowhere."""
    body: WebhookIn = request.context.json  # type: ignore[attr-defined]
    app = blink()
    with app.db.session() as db:
        client = scope.client(db, actor(), body.client) if body.client else None
        row, secret = service.create_endpoint(
            db,
            app.secrets,
            actor(),
            url=body.url,
            client=client,
            events=body.events,
            description=body.description,
        )
        out = webhook_out(row, None, _slugs(db))
        return WebhookCreated(**out.model_dump(), secret=secret), 201


@bp.get(WEBHOOK)
@spec.validate(resp=Responses(HTTP_200=WebhookOut, **READ_ERRORS, HTTP_403=Problem), tags=[TAG])
def get_webhook(webhook_id: int) -> Any:
    """One endpoint with its latest delivery."""
    with blink().db.session() as db:
        found = service.get_endpoint(db, actor(), webhook_id)
        return webhook_out(found.endpoint, found.last, _slugs(db))


@bp.delete(WEBHOOK)
@spec.validate(resp=Responses(HTTP_204=None, **ERRORS), tags=[TAG])
def remove_webhook(webhook_id: int) -> Any:
    """Remove an endpoint and whatever was still to be sent to it."""
    with blink().db.session() as db:
        service.remove_endpoint(db, actor(), webhook_id)
    return Response(status=204)


def _set_disabled(webhook_id: int, *, disabled: bool) -> Changed:
    with blink().db.session() as db:
        service.set_disabled(db, actor(), webhook_id, disabled=disabled)
    return Changed(changed=True)


@bp.post(WEBHOOK + "/disable")
@idempotent
@spec.validate(resp=Responses(HTTP_200=Changed, **ACTION_ERRORS), tags=[TAG])
def disable_webhook(webhook_id: int) -> Any:
    """Pause an endpoint: no new events; what is queued waits (409 if paused already)."""
    return _set_disabled(webhook_id, disabled=True)


@bp.post(WEBHOOK + "/enable")
@idempotent
@spec.validate(resp=Responses(HTTP_200=Changed, **ACTION_ERRORS), tags=[TAG])
def enable_webhook(webhook_id: int) -> Any:
    """Resume a paused endpoint (409 if it is not paused)."""
    return _set_disabled(webhook_id, disabled=False)


@bp.post(WEBHOOK + "/test")
@idempotent
@spec.validate(resp=Responses(HTTP_202=TestQueued, **ACTION_ERRORS), tags=[TAG])
def test_webhook(webhook_id: int) -> Any:
    """Queue a webhook.test event to the endpoint; it is sent within seconds."""
    with blink().db.session() as db:
        delivery = service.send_test(db, actor(), webhook_id)
        return TestQueued(event_id=delivery.event_id), 202
