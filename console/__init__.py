"""The admin console at ``/admin/``: server-rendered pages over :mod:`blink_sms.services`.

Views parse a form, call a service as the signed-in admin's actor, and render. Who may
do what, and what is audited, is decided in the services; the console adds sign-in,
sessions and CSRF. Pages work without JavaScript; the only script (``console.js``,
same origin) adds passkeys and small conveniences.
"""

from __future__ import annotations

from flask import Flask


def init_app(app: Flask) -> None:
    from flask_wtf.csrf import generate_csrf

    from . import (  # noqa: F401 -- each adds its routes to the blueprint
        account,
        admins,
        api_keys,
        audit,
        clients,
        dashboard,
        msp_branding,
        msp_settings,
        passkeys,
        privacy,
        reports,
        users,
        webhooks,
    )

    # Every console form carries {{ csrf_token() }}; blueprint.py checks it on every POST.
    app.jinja_env.globals["csrf_token"] = generate_csrf
    from .blueprint import bp

    app.register_blueprint(bp)
    settings = app.extensions["blink_sms"].settings
    if settings.sms_backend == "console" and not settings.production:
        from . import demo  # the demo's one-click sign-in

        app.register_blueprint(demo.bp)
