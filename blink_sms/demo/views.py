"""The phone simulator at ``/demo/phone``: text the gateway, read its answers, sign in.

A message typed on the simulated phone becomes a real, signed Twilio webhook posted
to the real ``/webhooks/twilio/sms`` view, so the demo runs the signature check, the
keyword parser, the services and the job exactly as production does. What the
gateway says back arrives two ways, as on a real phone: the TwiML reply (kept here,
per app, in :class:`Conversations`) and the SMS the job sends through the REST API
(kept by the :class:`~blink_sms.messaging.sms.ConsoleSender`).

The sign-in card's views are in :mod:`.signin`, the newcomer's enrollment in
:mod:`.enroll`; both add their views to this module's blueprint.

Everything answers 404 unless SMS are printed (the console backend): the blueprint is
not mounted in production anyway.
"""

from __future__ import annotations

import contextvars
import re
import secrets
import threading
import xml.etree.ElementTree as ET
from collections import deque
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import phonenumbers
import structlog
from flask import (
    Blueprint,
    Response,
    abort,
    current_app,
    jsonify,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask.blueprints import BlueprintSetupState
from sqlalchemy import select
from sqlalchemy.orm import Session
from twilio.request_validator import RequestValidator
from werkzeug.wrappers.response import Response as BaseResponse

from directory_adapters.sandbox import SandboxDirectory

from ..context import Blink, blink
from ..keywords import Action, parse_keyword
from ..messaging.sms import ConsoleSender
from ..models import PENDING_STATUSES, Client, ResetRequest, User, UserStatus
from .seed import GATEWAY_NUMBER, NEWCOMER, PEOPLE

log = structlog.get_logger(__name__)

bp = Blueprint(
    "demo",
    __name__,
    url_prefix="/demo",
    template_folder="templates",
    static_folder="static",
)

DEMO_CLIENT = "demo"  # the slug seed() gives the demo client
WEBHOOK_PATH = "/webhooks/twilio/sms"  # the public contract, signed against public_url
STRANGER = "+15557654321"  # a number nobody enrolled: shows the "unknown sender" answer
KEEP = 50  # messages kept and shown per phone
MAX_BODY = 320
# A one-time password SMS in any language: "Your new password: X", "... mot de passe : X".
SECRET_LINE = re.compile(r"^([^\n:]{2,60}:\s)(\S{6,64})(?=\n|$)")
STORE = "blink_sms_demo"  # app.extensions key of the per-app conversation store
SIGN_IN = "demo_sign_in"  # session key: {"username", "name", "state"}; never a password
# In production Twilio itself answers its opt-out and opt-in words (Advanced Opt-Out's
# defaults), and our webhook stays silent: the simulator shows what Twilio would send.
TWILIO_ANSWERS = {
    Action.STOP: "You have successfully been unsubscribed. You will not receive any more"
    " messages from this number. Reply START to resubscribe.",
    Action.START: "You have successfully been re-subscribed to messages from this number."
    " Reply HELP for help. Reply STOP to unsubscribe. Msg&Data Rates May Apply.",
}
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
)


@dataclass(frozen=True)
class Bubble:
    """One message on the simulated phone; ``mine`` when the phone's owner sent it."""

    id: str
    at: datetime
    mine: bool
    body: str
    note: bool = False  # a remark of the simulator, not a text message

    @property
    def time(self) -> str:
        return clock(self.at)

    @property
    def parts(self) -> tuple[str, str, str] | None:
        """``(before, password, after)`` for a one-time password text, to set it apart."""
        if self.mine or self.note:
            return None
        match = SECRET_LINE.match(self.body)
        if match is None:
            return None
        return match.group(1), match.group(2), self.body[match.end() :]

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "at": self.at.isoformat(),
            "time": self.time,
            "mine": self.mine,
            "body": self.body,
            "note": self.note,
            "parts": self.parts,
        }


class Conversations:
    """The texts each phone sent and the TwiML replies it got: the last ``KEEP`` each."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._threads: dict[str, deque[Bubble]] = {}

    def add(self, phone: str, bubble: Bubble) -> None:
        with self._lock:
            self._threads.setdefault(phone, deque(maxlen=KEEP)).append(bubble)

    def of(self, phone: str) -> list[Bubble]:
        with self._lock:
            return list(self._threads.get(phone, ()))


@dataclass(frozen=True)
class Phone:
    """A phone the simulator can hold: an enrolled demo person's, or a stranger's."""

    number: str
    owner: str
    username: str | None

    @property
    def pretty(self) -> str:
        return pretty_number(self.number)

    @property
    def initials(self) -> str:
        return "".join(part[0] for part in self.owner.split()[:2]).upper() or "?"


@bp.record_once
def _setup(state: BlueprintSetupState) -> None:
    state.app.extensions[STORE] = Conversations()


@bp.before_request
def _only_with_printed_sms() -> None:
    services = blink()
    if (
        services.settings.production
        or services.settings.sms_backend != "console"
        or not isinstance(services.sms, ConsoleSender)
    ):
        abort(404)


@bp.after_request
def _headers(response: Response) -> Response:
    # The pages and the JSON carry one-time passwords: keep them out of every cache.
    response.headers["Cache-Control"] = "no-store"
    response.headers.setdefault("Content-Security-Policy", CSP)
    return response


# -- helpers ---------------------------------------------------------------------------


def clock(at: datetime) -> str:
    """``14:05`` in the machine's local time: the demo runs on the viewer's machine."""
    return at.astimezone().strftime("%H:%M")


def pretty_number(e164: str) -> str:
    try:
        parsed = phonenumbers.parse(e164, None)
    except phonenumbers.NumberParseException:
        return e164
    return str(phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.INTERNATIONAL))


def _sender() -> ConsoleSender:
    sms = blink().sms
    if not isinstance(sms, ConsoleSender):  # checked before every request; for mypy
        abort(404)
    return sms


def _conversations() -> Conversations:
    store: Conversations = current_app.extensions[STORE]
    return store


def demo_client(db: Session) -> Client:
    client = db.execute(select(Client).where(Client.slug == DEMO_CLIENT)).scalar_one_or_none()
    if client is None:
        abort(404)
    return client


def directory_of(services: Blink, client: Client) -> SandboxDirectory:
    directory = services.directories.for_client(client)
    if not isinstance(directory, SandboxDirectory):
        abort(404)
    return directory


def _phones(db: Session, client: Client) -> list[Phone]:
    users = db.execute(
        select(User)
        .where(
            User.client_id == client.id,
            User.status == UserStatus.ACTIVE,
            User.phone.is_not(None),
        )
        .order_by(User.id)
    ).scalars()
    phones = [Phone(u.phone, u.display_name, u.username) for u in users if u.phone]
    # A number typed on an enrollment page gets its code before it is anyone's.
    known = {phone.number for phone in phones} | {STRANGER}
    new = [Phone(n, "New phone", None) for n in _sender().numbers() if n not in known]
    return [*phones, *new, Phone(STRANGER, "Not enrolled", None)]


def pick(phones: list[Phone], raw: str | None) -> Phone:
    """The phone asked for, or the first. A ``+`` in a hand-typed URL arrives as a space."""
    wanted = (raw or "").strip()
    if wanted and not wanted.startswith("+"):
        wanted = "+" + wanted
    return next((p for p in phones if p.number == wanted), phones[0])


def demo_context() -> tuple[Blink, Client, list[Phone]]:
    services = blink()
    with services.db.session() as db:
        client = demo_client(db)
        return services, client, _phones(db, client)


def _pending(services: Blink, phone: str) -> bool:
    """Whether a reset or unlock for this phone's owner is queued or running."""
    with services.db.session() as db:
        found = db.execute(
            select(ResetRequest.id)
            .join(User, ResetRequest.user_id == User.id)
            .where(User.phone == phone, ResetRequest.status.in_(PENDING_STATUSES))
            .limit(1)
        ).first()
    return found is not None


def conversation(phone: str) -> list[Bubble]:
    """The phone's side of the conversation: what it sent, the TwiML replies and the SMS
    the gateway sent it through the REST API, oldest first."""
    texts = [Bubble(m.sid, m.at, False, m.body) for m in _sender().messages_to(phone)]
    merged = sorted([*_conversations().of(phone), *texts], key=lambda b: b.at)
    return merged[-KEEP:]


def _state(services: Blink, phone: str) -> dict[str, Any]:
    return {
        "messages": [bubble.as_json() for bubble in conversation(phone)],
        "pending": _pending(services, phone),
        "clock": clock(datetime.now(UTC)),
    }


def _twiml_messages(xml: bytes) -> list[str]:
    """The texts of a TwiML answer; none if it is not TwiML."""
    try:
        # The XML is our own webhook's answer, built by the Twilio SDK, not outside input.
        root = ET.fromstring(xml)  # noqa: S314
    except ET.ParseError:
        return []
    return ["".join(message.itertext()).strip() for message in root.iter("Message")]


def _text_the_gateway(services: Blink, phone: str, gateway: str, body: str) -> None:
    """Send ``body`` from ``phone`` as Twilio would: a signed webhook to the real view."""
    settings = services.settings
    token = settings.twilio_auth_token
    if not token:
        abort(404)
    params = {
        "MessageSid": "SM" + secrets.token_hex(16),
        "AccountSid": settings.twilio_account_sid or "AC" + "0" * 32,
        "From": phone,
        "To": gateway,
        "Body": body,
        "NumMedia": "0",
        "NumSegments": "1",
        "SmsStatus": "received",
        "ApiVersion": "2010-04-01",
    }
    url = settings.public_url.rstrip("/") + WEBHOOK_PATH
    signature = RequestValidator(token).compute_signature(url, params)
    sent_at = datetime.now(UTC)
    store = _conversations()
    store.add(phone, Bubble(params["MessageSid"], sent_at, True, body))
    headers = {"X-Twilio-Signature": signature}
    request_id = structlog.contextvars.get_contextvars().get("request_id")
    if isinstance(request_id, str):
        headers["X-Request-Id"] = request_id
    # The inner request clears the log context it binds; run it in a copy of ours.
    response = contextvars.copy_context().run(
        current_app.test_client().post, WEBHOOK_PATH, data=params, headers=headers
    )
    # The TwiML answer belongs right after the text it answers, even when the job's
    # SMS was printed before the webhook returned.
    replied_at = sent_at + timedelta(microseconds=1)
    if response.status_code != 200:
        log.warning("demo: the webhook refused the message", status=response.status_code)
        note = f"The gateway refused this message (HTTP {response.status_code})."
        store.add(phone, Bubble("note-" + secrets.token_hex(8), replied_at, False, note, True))
        return
    for number, text in enumerate(_twiml_messages(response.get_data())):
        if text:
            reply_id = f"{params['MessageSid']}-reply-{number}"
            store.add(phone, Bubble(reply_id, replied_at, False, text))
    if twilio_answer := TWILIO_ANSWERS.get(parse_keyword(body).action):
        store.add(phone, Bubble(f"{params['MessageSid']}-twilio", replied_at, False, twilio_answer))


def _wants_json() -> bool:
    best = request.accept_mimetypes.best_match(["text/html", "application/json"])
    return best == "application/json"


def back_to(phone: Phone) -> BaseResponse:
    return redirect(url_for(".phone", phone=phone.number), code=303)


def _sign_in_state(phone: Phone) -> dict[str, str] | None:
    state = session.get(SIGN_IN)
    if not isinstance(state, dict) or not phone.username:
        return None
    if str(state.get("username", "")).casefold() != phone.username.casefold():
        return None
    return {k: str(v) for k, v in state.items()}


def remember(username: str, name: str, state: str) -> None:
    session[SIGN_IN] = {"username": username, "name": name, "state": state}


# -- views ------------------------------------------------------------------------------


@bp.get("/")
def start() -> str:
    """The demo's start page: the phone simulator, the mailbox, the console, the API docs."""
    _, client, _ = demo_context()
    return render_template(
        "demo/start.html", client_name=client.name, newcomer=NEWCOMER.display_name
    )


@bp.get("/phone")
def phone() -> str:
    services, client, phones = demo_context()
    selected = pick(phones, request.args.get("phone"))
    directory = directory_of(services, client)
    old_passwords = {person.username: person.password for person in (*PEOPLE, NEWCOMER)}
    return render_template(
        "demo/phone.html",
        client=client,
        gateway=pretty_number(client.sender_number or GATEWAY_NUMBER),
        phones=phones,
        selected=selected,
        bubbles=conversation(selected.number),
        pending=_pending(services, selected.number),
        now=clock(datetime.now(UTC)),
        sign_in=_sign_in_state(selected),
        policy=directory.policy,
        old_password=old_passwords.get(selected.username or ""),
        max_body=MAX_BODY,
        newcomer=NEWCOMER.display_name,
    )


@bp.get("/phone/messages")
def messages() -> Response:
    services, _, phones = demo_context()
    return jsonify(_state(services, pick(phones, request.args.get("phone")).number))


@bp.post("/phone/send")
def send() -> BaseResponse:
    services, client, phones = demo_context()
    selected = pick(phones, request.form.get("phone"))
    body = request.form.get("body", "").strip()[:MAX_BODY]
    if body:
        _text_the_gateway(services, selected.number, client.sender_number or GATEWAY_NUMBER, body)
    if _wants_json():
        return jsonify(_state(services, selected.number))
    return back_to(selected)
