"""Job entry points. Arguments are ids only; the work itself lives in services."""

from __future__ import annotations

import structlog

from .context import blink
from .queue import current_job_id, retries_left
from .services import resets


def perform_request(request_id: int) -> None:
    """Carry out a reset or unlock request (see :func:`blink_sms.services.resets.perform`)."""
    structlog.contextvars.clear_contextvars()
    structlog.contextvars.bind_contextvars(job_id=current_job_id())
    resets.perform(blink(), request_id, retries_left=retries_left())
