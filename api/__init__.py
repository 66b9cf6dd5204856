"""The REST API at ``/api/v1/``: PSA and RMM tools onboard clients, import and invite
users, push resets and unlocks, and read the audit trail and the monthly reports.

An edge like the console: each call authenticates a bearer API key
(:mod:`blink_sms.services.api_keys`), acts as that key's actor through the same
services, and is scoped by them. Requests and responses are pydantic models; SpecTree
validates them and generates the OpenAPI 3.1 document at ``/api/v1/openapi.json``
(browsable at ``/api/v1/docs``). Errors are RFC 9457 ``application/problem+json``.
"""

from __future__ import annotations

from flask import Flask


def init_app(app: Flask) -> None:
    from . import (  # noqa: F401 -- each adds its operations to the blueprint
        audit,
        clients,
        docs,
        reports,
        users,
        webhooks,
    )
    from .blueprint import bp, init_errors

    app.register_blueprint(bp)
    init_errors(app)
