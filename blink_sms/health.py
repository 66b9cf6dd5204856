"""Liveness (/healthz: the process answers) and readiness (/readyz: database and Redis)."""

from __future__ import annotations

import structlog
from flask import Blueprint, jsonify
from flask.typing import ResponseReturnValue

from .context import blink

log = structlog.get_logger(__name__)
bp = Blueprint("health", __name__)


@bp.get("/healthz")
def healthz() -> ResponseReturnValue:
    return jsonify(status="ok")


@bp.get("/readyz")
def readyz() -> ResponseReturnValue:
    app = blink()
    checks: dict[str, str] = {}
    for name, probe in (("database", app.db.ping), ("queue", app.queue.ping)):
        try:
            probe()
            checks[name] = "ok"
        except Exception as err:  # any failure means not ready; the type is enough to act on
            log.warning("readiness check failed", check=name, error=type(err).__name__)
            checks[name] = "unavailable"
    ready = all(v == "ok" for v in checks.values())
    return jsonify(status="ok" if ready else "unavailable", checks=checks), 200 if ready else 503
