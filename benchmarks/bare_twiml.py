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


# The floor: what any correct handler of this webhook must do before touching a
# database or a queue (parse the form, check the signature, parse both numbers,
# render TwiML). ``gunicorn bare_twiml:floor``. The gap between this and the real
# app is the cost of the decisions that need state (dedupe, sender, limits, queue).
floor = Flask("floor")
_TOKEN = os.environ.get("BENCH_AUTH_TOKEN", "")
_URL = os.environ.get("BENCH_PUBLIC_URL", "") + "/webhooks/twilio/sms"


@floor.post("/webhooks/twilio/sms")
def floor_sms() -> Response:
    import phonenumbers
    from flask import abort, request
    from twilio.request_validator import RequestValidator
    from twilio.twiml.messaging_response import MessagingResponse

    signature = request.headers.get("X-Twilio-Signature", "")
    if not RequestValidator(_TOKEN).validate(_URL, request.form, signature):
        abort(403)
    for field in ("From", "To"):
        phonenumbers.parse(request.form[field], None)
    reply = MessagingResponse()
    reply.message("Got it. Your new password will arrive in a moment.")
    return Response(str(reply), mimetype="text/xml")
