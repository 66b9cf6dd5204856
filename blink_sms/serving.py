"""Gunicorn in the gateway's log format: ``--logger-class blink_sms.serving.GunicornLogger``.

Gunicorn writes its own messages and its access lines through handlers of its own, in a
text format of its own, and its access line carries the raw URL: an activation link's
token (``/enroll/<token>``) would be written to the log in clear. With this logger class
both go through the structlog set-up of :mod:`blink_sms.logging` (JSON lines in
production, on stderr), and each request is one structured event whose path has the
link token cut out and no query string.
"""

from __future__ import annotations

import datetime
from typing import Any

import structlog
from gunicorn.glogging import Logger

from . import logging as blink_logging
from .settings import Settings, SettingsError

access_log = structlog.get_logger("gunicorn.access")


class GunicornLogger(Logger):  # type: ignore[misc]  # gunicorn ships no type information
    def setup(self, cfg: Any) -> None:
        super().setup(cfg)
        try:
            settings = Settings.from_env()
        except SettingsError:
            # Loading the app reports the bad value in one line; log in the production
            # format until then.
            log_format, level = "json", "INFO"
        else:
            log_format, level = settings.log_format, settings.log_level
        blink_logging.configure(log_format=log_format, level=level)
        for log in (self.error_log, self.access_log):
            for handler in list(log.handlers):
                if getattr(handler, "_gunicorn", False):
                    log.removeHandler(handler)
            log.propagate = True  # to the root handler that configure() installed

    def access(
        self, resp: Any, req: Any, environ: dict[str, Any], request_time: datetime.timedelta
    ) -> None:
        if not self.access_log_enabled:
            return
        status = resp.status
        code = int(status.split(None, 1)[0]) if isinstance(status, str) else status
        access_log.info(
            "request",
            method=environ.get("REQUEST_METHOD"),
            path=blink_logging.redact_url(environ.get("PATH_INFO", "")),
            status=code,
            bytes=getattr(resp, "sent", None),
            duration_ms=round(request_time.total_seconds() * 1000, 1),
            remote_addr=environ.get("REMOTE_ADDR"),
        )
        # The request is over: its request_id must not tag gunicorn's next lines.
        structlog.contextvars.clear_contextvars()
