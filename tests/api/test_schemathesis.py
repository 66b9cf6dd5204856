"""A property-based run over every API operation against a real HTTP server.

Schemathesis reads the live OpenAPI document and, with hypothesis, sends each operation
requests made from its schemas: valid ones, and invalid ones that must be refused. No
answer may be a server error, and every answer must match what the document says of
it: its status, its media type, its headers and its body's schema. Each operation is
run twice: with any path parameters (mostly unknown objects), and on a real client and
user, so that the actions themselves run too.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import hypothesis
import pytest
import responses
import schemathesis
from flask import Flask
from hypothesis import HealthCheck, given
from schemathesis import GenerationMode, checks
from sqlalchemy import select

from blink_sms.actors import COMMAND_LINE
from blink_sms.context import Blink
from blink_sms.models import AuditEvent, UserStatus
from blink_sms.services import webhooks
from blink_sms.settings import Settings
from tests.conftest import ACCOUNT_SID, World
from tests.support.fake_twilio import FakeTwilio
from tests.support.live import serving

from .conftest import Api

CHECKS = [
    checks.not_a_server_error,
    checks.status_code_conformance,
    checks.content_type_conformance,
    checks.response_headers_conformance,
    checks.response_schema_conformance,
    checks.negative_data_rejection,
]
EXAMPLES = 15


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """The run is not rate limited."""
    return settings.with_changes(api_requests_per_minute=1_000_000)


@pytest.fixture
def twilio() -> Iterator[FakeTwilio]:
    """Twilio faked at the HTTP boundary; requests to the live server pass through."""
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        rsps.add_passthru("http://127.0.0.1")
        yield FakeTwilio(ACCOUNT_SID).install(rsps)


@pytest.fixture
def live_api(app: Flask, twilio: FakeTwilio) -> Iterator[str]:
    """The app on a real socket."""
    with serving(app) as port:
        yield f"http://127.0.0.1:{port}"


def run(operation: Any, mode: GenerationMode, base_url: str, **fixed: Any) -> None:
    @given(case=operation.as_strategy(mode, path_parameters=fixed or None))
    @hypothesis.settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    def check(case: Any) -> None:
        case.call_and_validate(base_url=base_url, checks=CHECKS)

    check()


@pytest.mark.filterwarnings("ignore::hypothesis.errors.HypothesisDeprecationWarning")
def test_every_operation_answers_as_documented_and_never_fails(
    live_api: str, world: World, msp: Api, services: Blink
) -> None:
    alice = world.person("alice", "+14155550123")
    world.person("bob", None, status=UserStatus.PENDING)
    with services.db.session() as session:
        hook, _ = webhooks.create_endpoint(
            session, services.secrets, COMMAND_LINE, url="https://psa.example/hook"
        )
    # The key goes in through the document's security scheme: negative cases may leave it
    # out, and must then be refused.
    config = schemathesis.Config.from_dict({"auth": {"openapi": {"bearer": {"bearer": msp.key}}}})
    schema = schemathesis.openapi.from_url(f"{live_api}/api/v1/openapi.json", config=config)
    failures: list[str] = []
    operations = 0
    # Alice is acted on for real: erase her last, disable her after the resets.
    last = {"/erase": 2, "/disable": 1, "{webhook_id}": 1}
    found = [result.ok() for result in schema.get_all_operations()]
    found.sort(
        key=lambda op: max((n for end, n in last.items() if op.path.endswith(end)), default=0)
    )
    for operation in found:
        operations += 1
        params = {p.name for p in operation.path_parameters}
        real = {"slug": "contoso", "user_id": alice.user.id, "webhook_id": hook.id}
        fixed = {name: real[name] for name in params}
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            for path_parameters in ({}, fixed) if fixed else ({},):
                try:
                    run(operation, mode, live_api, **path_parameters)
                except Exception as failure:  # collect every operation's, then fail
                    failures.append(f"{operation.label} ({mode.value}): {failure}")
    assert operations >= 20
    assert not failures, "\n\n".join(failures)
    # The key was used: the actions ran as the key (a run refused with 401 throughout
    # would match the document too, and prove nothing).
    with services.db.session() as session:
        acted = set(
            session.execute(
                select(AuditEvent.action).where(AuditEvent.actor.like("api_key:%"))
            ).scalars()
        )
    assert {"user.disabled", "client.disabled"} <= acted, acted
    assert acted & {"reset.requested", "unlock.requested"}, acted
