"""Liveness (/healthz: the process answers) and readiness (/readyz: database and Redis).

``/readyz`` also says which clients' queues have had no live worker for a minute
(``workers``). That does not make this web process unready (it still takes texts, and
the requests wait in the queue), so the status code stays 200; an MSP's monitor should
alert on ``"workers": "missing"``.
"""

from __future__ import annotations

import structlog
from flask import Blueprint, jsonify
from flask.typing import ResponseReturnValue

from .context import blink
from .liveness import queue_health

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
    body: dict[str, object] = {"status": "ok" if ready else "unavailable", "checks": checks}
    if ready and app.redis is not None:
        try:
            health = queue_health(app)
        except Exception as err:  # reported, but never a reason to be unready
            log.warning("worker liveness unknown", error=type(err).__name__)
        else:
            stale = {h.client: h.describe() for h in health if not h.live}
            body["workers"] = "missing" if stale else "ok"
            if stale:
                body["clients_without_worker"] = stale
    return jsonify(body), 200 if ready else 503
