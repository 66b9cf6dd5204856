"""The SMS boundary: one sender interface, a Twilio implementation and a console one.

``SmsSender.send`` returns the provider's message id or raises :class:`SmsError`,
which says whether trying again can help. Vendor error codes map to that in one
table, :data:`TWILIO_ERRORS`.
"""

from __future__ import annotations

import sys
import threading
from collections import defaultdict, deque
from collections.abc import Collection
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any, Protocol, TextIO
from uuid import uuid4

from .errors import DeliveryError


class SmsError(DeliveryError):
    """Sending an SMS failed; ``code`` is Twilio's error code."""

    @property
    def error_code(self) -> str:
        """What a failed request records: ``sms_<Twilio's code>``, or ``sms_failed``."""
        return f"sms_{self.code}" if self.code else "sms_failed"


@dataclass(frozen=True)
class OutgoingSms:
    to: str
    body: str
    from_: str | None = None
    messaging_service_sid: str | None = None
    status_callback: str | None = None


class SmsSender(Protocol):
    """Sends one SMS. Returns the message id; raises :class:`SmsError`."""

    def send(self, message: OutgoingSms) -> str: ...

    def find_sent(self, to: str, since: datetime, known: Collection[str]) -> str | None:
        """The id of a message sent through the API to ``to`` since ``since`` whose id is
        not in ``known``, or None. A job that died while handing over an SMS asks this
        to learn whether the message left. Raises :class:`SmsError` (retryable) when the
        provider cannot be asked."""
        ...

    def redact(self, sid: str) -> None:
        """Blank the body of sent message ``sid`` in the provider's records. Raises
        :class:`SmsError`; :data:`NOT_FINAL_YET` when the message is still on its way."""
        ...


# Twilio's answer to redacting a message that is still queued or sending (its error
# "cannot delete or change this resource before it is complete").
NOT_FINAL_YET = 20009
# Twilio's answer for a message it does not have (deleted, or another account's).
NOT_FOUND = 20404

# Twilio error code -> (permanent?, short reason). Anything not listed: 4xx permanent,
# 5xx and network errors retryable.
TWILIO_ERRORS: dict[int, tuple[bool, str]] = {
    20003: (True, "Twilio rejected the account credentials"),
    20429: (False, "Twilio rate limit reached"),
    21211: (True, "invalid 'To' phone number"),
    21408: (True, "sending to this region is not enabled on the account"),
    21606: (True, "the 'From' number cannot send SMS"),
    21610: (True, "the recipient has opted out (replied STOP)"),
    21612: (True, "this route cannot deliver to the recipient"),
    21614: (True, "the 'To' number is not a mobile number"),
    30001: (False, "Twilio queue overflow"),
    NOT_FINAL_YET: (False, "the message is still on its way; it cannot be changed yet"),
}


def classify_twilio_error(status: int | None, code: int | None) -> tuple[bool, str]:
    if code is not None and code in TWILIO_ERRORS:
        return TWILIO_ERRORS[code]
    if status is None or status >= 500 or status == 429:
        return False, f"Twilio unavailable (HTTP {status})"
    return True, f"Twilio refused the message (HTTP {status}, code {code})"


class TwilioSender:
    """Sends through Twilio's Messages API (2010-04-01): one chokepoint, :meth:`_call`.

    Plain HTTPS with ``requests`` rather than the official SDK: the gateway uses two
    endpoints (create, list), and the SDK's REST client adds about 10 MB to every worker
    and web process and a few milliseconds per message for nothing we use. The SDK still
    checks webhook signatures and writes TwiML (``webhooks``). A third, the message
    instance update, blanks a sent message's body (:meth:`redact`).

    ``api_base_url`` replaces https://api.twilio.com (a regional edge, or a test server).
    """

    def __init__(
        self, account_sid: str, auth_token: str, *, api_base_url: str, timeout: float = 10.0
    ) -> None:
        import requests

        self._session = requests.Session()  # keeps the TLS connection to Twilio alive
        self._session.auth = (account_sid, auth_token)
        self._session.headers.update({"Accept": "application/json", "User-Agent": "blink-sms"})
        self._base = f"{api_base_url}/2010-04-01/Accounts/{account_sid}/Messages"
        self._messages = f"{self._base}.json"
        self._timeout = timeout

    def _call(self, method: str, url: str | None = None, **request: Any) -> dict[str, Any]:
        """One request to the Messages resource (or ``url``, one message of it); Twilio's
        errors become :class:`SmsError`."""
        from requests import RequestException

        try:
            response = self._session.request(
                method, url or self._messages, timeout=self._timeout, **request
            )
            if response.status_code < 400:
                answer: dict[str, Any] = response.json()
                return answer
        except (RequestException, ValueError) as err:
            # The exception text can carry the request; keep only its type.
            raise SmsError(f"cannot reach Twilio ({type(err).__name__})", permanent=False) from None
        try:
            code = int(response.json().get("code"))
        except (ValueError, TypeError, AttributeError):
            code = None
        permanent, reason = classify_twilio_error(response.status_code, code)
        raise SmsError(reason, code=code, permanent=permanent)

    def send(self, message: OutgoingSms) -> str:
        if not (message.from_ or message.messaging_service_sid):
            raise SmsError("no sender number or messaging service configured", permanent=True)
        form = {"To": message.to, "Body": message.body}
        # With both, Twilio sends from that number within the Messaging Service.
        if message.messaging_service_sid:
            form["MessagingServiceSid"] = message.messaging_service_sid
        if message.from_:
            form["From"] = message.from_
        if message.status_callback:
            form["StatusCallback"] = message.status_callback
        return str(self._call("POST", data=form)["sid"])

    def redact(self, sid: str) -> None:
        # Twilio's documented redaction: update the message with an empty Body.
        self._call("POST", f"{self._base}/{sid}.json", data={"Body": ""})

    def find_sent(self, to: str, since: datetime, known: Collection[str]) -> str | None:
        try:
            # One page of the messages to this number, newest first: a user gets few.
            page = self._call("GET", params={"To": to, "PageSize": 50})
        except SmsError as err:
            raise SmsError(err.message, code=err.code, permanent=False) from None
        for message in page.get("messages") or []:
            try:
                created = parsedate_to_datetime(message["date_created"])
            except (KeyError, TypeError, ValueError):
                continue
            if (
                str(message.get("direction") or "").startswith("outbound-api")
                and created >= since
                and message.get("sid") not in known
            ):
                return str(message["sid"])
        return None


@dataclass(frozen=True)
class ConsoleMessage:
    sid: str
    to: str
    from_: str | None
    body: str
    at: datetime


class ConsoleSender:
    """Prints each SMS instead of sending it: the demo and local development only.

    It keeps the last messages per number in memory so the demo's phone simulator
    can show them.
    """

    def __init__(self, stream: TextIO | None = None, keep: int = 50) -> None:
        self._stream = stream
        self._lock = threading.Lock()
        self._inbox: dict[str, deque[ConsoleMessage]] = defaultdict(lambda: deque(maxlen=keep))

    def send(self, message: OutgoingSms) -> str:
        sid = "SM" + uuid4().hex
        record = ConsoleMessage(sid, message.to, message.from_, message.body, datetime.now(UTC))
        with self._lock:
            self._inbox[message.to].append(record)
        stream = self._stream or sys.stdout
        print(
            f"--- SMS {message.from_ or 'gateway'} -> {message.to}\n{message.body}\n---",
            file=stream,
        )
        stream.flush()
        return sid

    def find_sent(self, to: str, since: datetime, known: Collection[str]) -> str | None:
        for message in reversed(self.messages_to(to)):
            if message.at >= since and message.sid not in known:
                return message.sid
        return None

    def redact(self, sid: str) -> None:
        """Nothing to do: no provider keeps these, and the demo's phone shows its texts."""

    def messages_to(self, number: str) -> list[ConsoleMessage]:
        with self._lock:
            return list(self._inbox.get(number, ()))

    def numbers(self) -> list[str]:
        """The numbers that were texted, in the order they were first texted."""
        with self._lock:
            return list(self._inbox)
