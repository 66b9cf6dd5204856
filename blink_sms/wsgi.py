"""WSGI entry point for gunicorn: ``gunicorn blink_sms.wsgi:app``."""

from __future__ import annotations

import sys

from .app import create_app
from .settings import SettingsError

try:
    app = create_app()
except SettingsError as err:
    sys.exit(f"blink-sms: {err}")

if app.extensions["blink_sms"].redis is None:
    # No Redis, no scheduler process: jobs and periodic work run inside this process.
    from .scheduler import start_in_thread

    start_in_thread(app.extensions["blink_sms"])
