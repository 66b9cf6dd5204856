"""The composition root: builds the services from settings and mounts the blueprints."""

from __future__ import annotations

import uuid

import structlog
from flask import Flask, Response, request
from werkzeug.middleware.proxy_fix import ProxyFix

from . import logging as blink_logging
from .context import EXTENSION, Blink
from .crypto import SecretBox, session_key
from .db import Database
from .messaging.email import build_email_sender
from .messaging.sms import ConsoleSender, SmsSender, TwilioSender
from .queue import InProcessQueue, JobQueue, RqQueue
from .settings import Settings

log = structlog.get_logger(__name__)


def _sms_sender(settings: Settings) -> SmsSender | None:
    if settings.sms_backend == "console":
        return ConsoleSender()
    if not (settings.twilio_account_sid and settings.twilio_auth_token):
        log.warning("SMS sending is off: BLINK_TWILIO_ACCOUNT_SID and _AUTH_TOKEN are not set")
        return None
    return TwilioSender(
        settings.twilio_account_sid,
        settings.twilio_auth_token,
        api_base_url=settings.twilio_api_base_url,
    )


def build_services(app: Flask, settings: Settings) -> Blink:
    queue: JobQueue
    redis = None
    if settings.redis_url:
        from redis import Redis

        redis = Redis.from_url(settings.redis_url, socket_timeout=5, socket_connect_timeout=5)
        queue = RqQueue(redis, settings.job_retry_intervals)
    else:
        queue = InProcessQueue(app, settings.job_retry_intervals)
    return Blink(
        settings=settings,
        db=Database(settings.database_url),
        secrets=SecretBox(settings.secret_key, previous=settings.secret_key_previous),
        queue=queue,
        sms=_sms_sender(settings),
        redis=redis,
        email=build_email_sender(settings),
    )


def _warn_of_an_unannounced_proxy(app: Flask) -> None:
    """Requests that came through a proxy while BLINK_PROXY_HOPS is 0: say so, once."""
    warned = False

    @app.before_request
    def _check_forwarded() -> None:
        nonlocal warned
        if not warned and "X-Forwarded-For" in request.headers:
            warned = True
            log.warning(
                "requests come through a proxy (X-Forwarded-For) but BLINK_PROXY_HOPS is 0: "
                "every user counts as the proxy's address for per-address limits"
            )


def create_app(settings: Settings | None = None) -> Flask:
    """Build the WSGI app. With no settings, read them from the environment."""
    settings = settings or Settings.from_env()
    blink_logging.configure(log_format=settings.log_format, level=settings.log_level)
    app = Flask(__name__)
    app.config.update(
        # A key of its own for cookies and CSRF tokens (crypto.session_key). Those signed
        # under a previous key stay valid across a key change.
        SECRET_KEY=session_key(settings.secret_key),
        SECRET_KEY_FALLBACKS=[session_key(key) for key in settings.secret_key_previous],
        MAX_CONTENT_LENGTH=64 * 1024,
        MAX_FORM_MEMORY_SIZE=64 * 1024,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SECURE=settings.public_url.startswith("https://"),
    )
    app.extensions[EXTENSION] = build_services(app, settings)
    if settings.proxy_hops:
        # Behind a TLS proxy every request's TCP peer is the proxy: the per-address limits
        # (enrollment codes, sign-in) would be one shared bucket, and the audit trail's
        # addresses all the proxy's. Trust exactly that many X-Forwarded-For hops.
        app.wsgi_app = ProxyFix(  # type: ignore[method-assign]
            app.wsgi_app, x_for=settings.proxy_hops, x_proto=settings.proxy_hops
        )
    else:
        _warn_of_an_unannounced_proxy(app)

    @app.before_request
    def _bind_request_id() -> None:
        structlog.contextvars.clear_contextvars()
        structlog.contextvars.bind_contextvars(
            request_id=request.headers.get("X-Request-Id", "")[:64] or uuid.uuid4().hex
        )

    @app.after_request
    def _security_headers(response: Response) -> Response:
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("Referrer-Policy", "no-referrer")
        response.headers.setdefault("X-Frame-Options", "DENY")
        if settings.production:
            # Production is https only (BLINK_PUBLIC_URL): a browser that saw this once uses
            # only https here for a year, even when a link or a network says http://.
            response.headers.setdefault(
                "Strict-Transport-Security", "max-age=31536000; includeSubDomains"
            )
        return response

    from . import health

    app.register_blueprint(health.bp)

    import api
    import console
    import enrollment
    import webhooks

    webhooks.init_app(app)
    enrollment.init_app(app)
    console.init_app(app)
    api.init_app(app)
    if settings.sms_backend == "console" and not settings.production:
        from . import demo

        demo.init_app(app)
    return app
