"""Twilio's Messages API (2010-04-01) as a real HTTP server on 127.0.0.1.

``fake_twilio`` patches ``requests`` inside one process; a test or benchmark that runs
the product as separate processes (gunicorn, ``blink-sms worker``) needs a socket
instead. Point them at this server with ``BLINK_TWILIO_API_BASE_URL=server.url`` (see
:meth:`TwilioServer.env`): the official SDK, and so ``TwilioSender``, work against it
unchanged::

    with TwilioServer() as twilio:
        start_worker(env={**os.environ, **twilio.env()})
        ...
        assert twilio.bodies_to("+15551230001")

The payloads (a message resource, an error, a list page) come from ``fake_twilio``'s
builders, so both fakes answer in exactly the same shape.

Behaviour the test (or, through ``/_control/...``, another process) can program:
queued failures (:meth:`TwilioServer.fail_next`), a delay per create, a hang that holds
creates until released (to kill a worker in the middle of an SMS call), and dropped
connections after the message is recorded ("Twilio got it, we never heard back").
The server never writes to stdout or stderr.

Where it differs from Twilio, on purpose: a message stays ``queued`` for ever (nothing
is delivered), so the ``DateSent`` filters compare its ``date_created`` while its
``date_sent`` is null; paging uses ``Page`` and ignores ``PageToken``; only the account's
own sid and auth token authenticate (no API keys).
"""

from __future__ import annotations

import base64
import binascii
import hmac
import json
import re
import secrets
import socket
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any
from urllib.parse import parse_qs, urlsplit

from .fake_twilio import (
    API_VERSION,
    ApiError,
    error_payload,
    list_page,
    message_resource,
    new_message_sid,
    rfc2822,
)

HOST = "127.0.0.1"


# --- the server's state -----------------------------------------------------------------------


@dataclass
class _Hold:
    """A create held by the hang, until :meth:`TwilioServer.release` decides its fate."""

    released: threading.Event = field(default_factory=threading.Event)
    accept: bool = True


@dataclass(frozen=True)
class _Failure:
    status: int
    code: int
    message: str | None


class _Dropped(Exception):
    """Close the connection without answering."""


class _NoSuchControl(Exception):
    """An unknown ``/_control/`` action or method."""


def _utcnow() -> datetime:
    return datetime.now(UTC)


class TwilioServer:
    """A threaded HTTP server shaped like Twilio's Messages API; see the module docstring.

    Thread-safe: the request threads, the test and its helper threads share one lock.
    Start and stop it with ``with TwilioServer() as twilio:``, or ``start()``/``stop()``
    from a pytest fixture. ``clock`` gives the time messages are stamped with.
    """

    def __init__(
        self,
        account_sid: str | None = None,
        auth_token: str | None = None,
        *,
        clock: Callable[[], datetime] = _utcnow,
    ) -> None:
        self.account_sid = account_sid or "AC" + secrets.token_hex(16)
        self.auth_token = auth_token or secrets.token_hex(16)
        self.clock = clock
        self._lock = threading.Condition()
        self._sent: list[dict[str, Any]] = []
        self._resources: dict[str, dict[str, Any]] = {}  # by sid, oldest first
        self._failures: deque[_Failure] = deque()
        self._delay = 0.0
        self._hanging = False
        self._holds: list[_Hold] = []
        self._drops = 0
        self._errors: list[str] = []
        self._httpd: _HttpServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle ----------------------------------------------------------------

    def start(self) -> TwilioServer:
        """Listen on a free port of 127.0.0.1 and serve from a background thread."""
        if self._httpd is not None:
            raise RuntimeError("the Twilio server is already running")
        self._httpd = _HttpServer(self)
        self._thread = threading.Thread(
            target=self._httpd.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"twilio-server-{self.port}",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving; creates still held by a hang are dropped unrecorded."""
        httpd, self._httpd = self._httpd, None
        if httpd is None:
            return
        self.release(accept=False)
        httpd.shutdown()
        httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def __enter__(self) -> TwilioServer:
        return self.start()

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def port(self) -> int:
        if self._httpd is None:
            raise RuntimeError("the Twilio server is not running")
        return int(self._httpd.server_address[1])

    @property
    def url(self) -> str:
        """The API base URL: what ``BLINK_TWILIO_API_BASE_URL`` should be."""
        return f"http://{HOST}:{self.port}"

    def env(self) -> dict[str, str]:
        """The product's settings that send through this server."""
        return {
            "BLINK_TWILIO_API_BASE_URL": self.url,
            "BLINK_TWILIO_ACCOUNT_SID": self.account_sid,
            "BLINK_TWILIO_AUTH_TOKEN": self.auth_token,
        }

    # -- what was sent --------------------------------------------------------------

    @property
    def sent(self) -> list[dict[str, Any]]:
        """Every message created, oldest first: To, From, MessagingServiceSid, Body,
        StatusCallback, Sid, date_created (RFC 2822) and received_at (epoch seconds, for
        latencies). A snapshot; Body is what was sent, even if later redacted."""
        with self._lock:
            return [dict(m) for m in self._sent]

    def bodies_to(self, number: str) -> list[str]:
        return [m["Body"] for m in self.sent if m["To"] == number]

    def message(self, sid: str) -> dict[str, Any] | None:
        """The Message resource as the API shows it now (redacted or not), or None."""
        with self._lock:
            resource = self._resources.get(sid)
            return None if resource is None else dict(resource)

    @property
    def errors(self) -> list[str]:
        """Unexpected exceptions in request handling (answered with HTTP 500)."""
        with self._lock:
            return list(self._errors)

    # -- programmable behaviour -------------------------------------------------------

    def fail_next(
        self, status: int, code: int, *, times: int = 1, message: str | None = None
    ) -> None:
        """The next ``times`` creates get HTTP ``status`` with Twilio error ``code``
        (queued after any failures already waiting); nothing is recorded for them."""
        if times < 1 or not 400 <= status <= 599:
            raise ValueError("times must be >= 1 and status an HTTP error status")
        with self._lock:
            self._failures.extend([_Failure(status, code, message)] * times)

    def set_delay(self, seconds: float) -> None:
        """Each create waits this long before it is handled (0 for none)."""
        if seconds < 0:
            raise ValueError("the delay cannot be negative")
        with self._lock:
            self._delay = seconds

    def hang(self) -> None:
        """From now on, hold every create (before anything is recorded) until
        :meth:`release`. :meth:`wait_for_pending_create` says when one arrived."""
        with self._lock:
            self._hanging = True

    def release(self, *, accept: bool = True) -> int:
        """End the hang. The held creates go on as usual (``accept``), or are dropped
        unrecorded, their connections closed ("Twilio never got it"). Returns how many
        were held."""
        with self._lock:
            self._hanging = False
            holds, self._holds = self._holds, []
            for hold in holds:
                hold.accept = accept
                hold.released.set()
            self._lock.notify_all()
        return len(holds)

    @property
    def pending_creates(self) -> int:
        """Creates held by the hang right now."""
        with self._lock:
            return len(self._holds)

    def wait_for_pending_create(self, timeout: float) -> bool:
        """Wait until a create is held by the hang; False if none came in ``timeout`` s."""
        with self._lock:
            return self._lock.wait_for(lambda: bool(self._holds), timeout)

    def drop_next(self, times: int = 1) -> None:
        """The next ``times`` creates are recorded, then the connection is closed with
        no answer: Twilio got the message, the sender never heard back."""
        if times < 1:
            raise ValueError("times must be >= 1")
        with self._lock:
            self._drops += times

    def reset(self) -> None:
        """Forget messages, failures, delay and drops; release held creates (dropped)."""
        self.release(accept=False)
        with self._lock:
            self._sent.clear()
            self._resources.clear()
            self._failures.clear()
            self._delay = 0.0
            self._drops = 0
            self._errors.clear()

    def state(self) -> dict[str, Any]:
        """What is programmed now, as ``GET /_control/state`` shows it."""
        with self._lock:
            return {
                "messages": len(self._sent),
                "failures": [[f.status, f.code] for f in self._failures],
                "delay": self._delay,
                "hanging": self._hanging,
                "pending_creates": len(self._holds),
                "drops": self._drops,
            }

    # -- the API ----------------------------------------------------------------------

    def _authenticate(self, account: str, authorization: str | None) -> None:
        user, password = "", ""
        if authorization and authorization[:6].lower() == "basic ":
            try:
                decoded = base64.b64decode(authorization[6:], validate=True).decode()
            except (binascii.Error, UnicodeDecodeError):
                decoded = ""
            user, _, password = decoded.partition(":")
        valid = hmac.compare_digest(user.encode(), self.account_sid.encode()) and (
            hmac.compare_digest(password.encode(), self.auth_token.encode())
        )
        if not valid or account != self.account_sid:
            raise ApiError(401, 20003, "Authenticate")

    def _create(self, form: Mapping[str, str]) -> dict[str, Any]:
        if not form.get("To"):
            raise ApiError(400, 21604, "A 'To' phone number is required.")
        if not (form.get("From") or form.get("MessagingServiceSid")):
            raise ApiError(400, 21603, "A 'From' phone number is required.")
        if not form.get("Body") and not form.get("MediaUrl"):
            raise ApiError(400, 21602, "Message body is required.")
        with self._lock:
            delay = self._delay
        if delay:
            time.sleep(delay)
        with self._lock:
            hold = _Hold() if self._hanging else None
            if hold is not None:
                self._holds.append(hold)
                self._lock.notify_all()
        if hold is not None:
            hold.released.wait()
            if not hold.accept:
                raise _Dropped
        with self._lock:
            if self._failures:
                failure = self._failures.popleft()
                raise ApiError(failure.status, failure.code, failure.message)
            sid = new_message_sid()
            created = self.clock().replace(microsecond=0)
            resource = message_resource(self.account_sid, form, sid=sid, created=created)
            self._resources[sid] = resource
            self._sent.append({
                "To": form.get("To"),
                "From": form.get("From"),
                "MessagingServiceSid": form.get("MessagingServiceSid"),
                "Body": form.get("Body", ""),
                "StatusCallback": form.get("StatusCallback"),
                "Sid": sid,
                "date_created": resource["date_created"],
                "received_at": time.time(),
            })  # fmt: skip
            if self._drops:
                self._drops -= 1
                raise _Dropped
            return dict(resource)

    def _list(self, query: Mapping[str, str]) -> dict[str, Any]:
        with self._lock:
            newest_first = [dict(r) for r in reversed(self._resources.values())]
        return list_page(self.account_sid, newest_first, query)

    def _fetch(self, sid: str, path: str) -> dict[str, Any]:
        resource = self.message(sid)
        if resource is None:
            raise ApiError(404, 20404, f"The requested resource {path} was not found")
        return resource

    def _redact(self, sid: str, path: str, form: Mapping[str, str]) -> dict[str, Any]:
        if form.get("Body", None) != "" or set(form) - {"Body"}:
            raise ApiError(400, 20001, "Only Body='' (redaction) is supported here")
        with self._lock:
            resource = self._resources.get(sid)
            if resource is None:
                raise ApiError(404, 20404, f"The requested resource {path} was not found")
            resource["body"] = ""
            resource["date_updated"] = rfc2822(self.clock())
            return dict(resource)

    def _route_api(
        self, method: str, path: str, query: str, raw: bytes, authorization: str | None
    ) -> tuple[int, dict[str, Any]]:
        """One API request: (status, payload); raises ApiError, or _Dropped for no answer."""
        match = _API_ROUTE.fullmatch(path)
        if match is None:
            raise ApiError(404, 20404, f"The requested resource {path} was not found")
        self._authenticate(match["account"], authorization)
        sid = match["message"]
        if method == "GET":
            if sid is None:
                return 200, self._list(_single(parse_qs(query, keep_blank_values=True)))
            return 200, self._fetch(sid, path)
        if method != "POST":
            raise ApiError(405, 20004, "Method not allowed")
        form = _single(parse_qs(raw.decode("utf-8"), keep_blank_values=True))
        if sid is None:
            return 201, self._create(form)
        return 200, self._redact(sid, path, form)

    def _note_error(self, what: str) -> None:
        with self._lock:
            self._errors.append(what)

    # -- the control API ---------------------------------------------------------------

    def _route_control(self, method: str, action: str, query: Mapping[str, str], body: Any) -> Any:
        """One ``/_control/ACTION`` request; ValueError, KeyError or TypeError for a bad
        body, _NoSuchControl for an unknown action."""
        if (method, action) == ("GET", "messages"):
            return self.sent
        if (method, action) == ("GET", "state"):
            return self.state()
        if (method, action) == ("GET", "pending"):
            timeout = min(float(query.get("timeout", "0")), 60.0)
            pending = self.wait_for_pending_create(timeout)
            return {"pending": pending, "pending_creates": self.pending_creates}
        if method != "POST":
            raise _NoSuchControl
        if not isinstance(body, dict):
            raise ValueError("the body must be a JSON object")
        if action == "reset":
            self.reset()
        elif action == "failures":
            self.fail_next(
                int(body["status"]),
                int(body["code"]),
                times=int(body.get("times", 1)),
                message=body.get("message"),
            )
        elif action == "delay":
            self.set_delay(float(body["seconds"]))
        elif action == "hang":
            self.hang()
        elif action == "release":
            return {"released": self.release(accept=bool(body.get("accept", True)))}
        elif action == "drop":
            self.drop_next(int(body.get("times", 1)))
        else:
            raise _NoSuchControl
        return self.state()


_SID = r"(?P<account>[^/]+)"
_API_ROUTE = re.compile(rf"/{API_VERSION}/Accounts/{_SID}/Messages(?:/(?P<message>[^/]+))?\.json")


def _single(values: Mapping[str, list[str]]) -> dict[str, str]:
    return {key: found[0] for key, found in values.items()}


class _Handler(BaseHTTPRequestHandler):
    """One connection: HTTP/1.1 keep-alive, as the SDK's ``requests`` session expects."""

    protocol_version = "HTTP/1.1"
    server: _HttpServer

    def setup(self) -> None:
        super().setup()
        # Headers and body go out in two writes: without this, Nagle's algorithm and the
        # client's delayed ACK would add ~40 ms to each answer.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: the server writes nothing to stdout or stderr."""

    def do_GET(self) -> None:
        self._handle("GET")

    def do_POST(self) -> None:
        self._handle("POST")

    def _body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _handle(self, method: str) -> None:
        twilio = self.server.twilio
        parts = urlsplit(self.path)
        raw = self._body()
        try:
            if parts.path.startswith("/_control/"):
                self._control(method, parts.path.removeprefix("/_control/"), parts.query, raw)
                return
            status, payload = twilio._route_api(
                method, parts.path, parts.query, raw, self.headers.get("Authorization")
            )
        except ApiError as err:
            status, payload = err.status, err.payload()
        except _Dropped:
            self.close_connection = True
            return
        except Exception as err:  # a bug here must show in the test, not hang the client
            twilio._note_error(f"{method} {parts.path}: {err!r}")
            status, payload = 500, error_payload(500, 20500, "Internal Server Error")
        headers = {"Twilio-Request-Id": "RQ" + secrets.token_hex(16)}
        if status == 401:
            headers["WWW-Authenticate"] = 'Basic realm="Twilio API"'
        self._send_json(status, payload, headers)

    def _control(self, method: str, action: str, query: str, raw: bytes) -> None:
        try:
            body = json.loads(raw) if raw else {}
            result = self.server.twilio._route_control(
                method, action, _single(parse_qs(query)), body
            )
        except _NoSuchControl:
            self._send_json(404, {"error": f"no control {method} /_control/{action}"})
        except (ValueError, KeyError, TypeError) as err:
            self._send_json(400, {"error": f"bad request: {err!r}"})
        else:
            self._send_json(200, result)

    def _send_json(
        self, status: int, payload: Any, headers: Mapping[str, str] | None = None
    ) -> None:
        data = json.dumps(payload).encode("utf-8")
        try:
            self.send_response(status, HTTPStatus(status).phrase)
            self.send_header("Content-Type", "application/json; charset=utf-8")
            self.send_header("Content-Length", str(len(data)))
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(data)
        except OSError:  # the client is gone (a killed worker): nothing to tell it
            self.close_connection = True


class _HttpServer(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128  # a burst of workers connecting at once is not refused

    def __init__(self, twilio: TwilioServer) -> None:
        self.twilio = twilio
        super().__init__((HOST, 0), _Handler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Quiet: a client that hung up mid-request is normal here (killed workers)."""
