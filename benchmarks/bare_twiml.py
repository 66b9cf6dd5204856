"""The baseline for ``webhook_throughput.py``: a bare Flask endpoint answering fixed TwiML.

Served by gunicorn exactly like the real app (``gunicorn bare_twiml:app`` with this
folder on the Python path). It answers ``POST /webhooks/twilio/sms`` with the body
given in ``BENCH_TWIML_BODY`` (the benchmark passes the TwiML the real app answers to
an accepted RESET), without reading the form, checking a signature or touching a
database: what is left is the cost of gunicorn, Werkzeug and Flask themselves.
"""

from __future__ import annotations

import os

from flask import Flask, Response

EMPTY_TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response />'
TWIML_BODY = os.environ.get("BENCH_TWIML_BODY", EMPTY_TWIML).encode("utf-8")

app = Flask(__name__)


@app.post("/webhooks/twilio/sms")
def sms() -> Response:
    return Response(TWIML_BODY, mimetype="text/xml")
