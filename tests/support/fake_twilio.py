"""Twilio's REST API, faked at the HTTP boundary with ``responses``.

Payloads are shaped like the real Messages API (2010-04-01): a created message is
HTTP 201 with the resource JSON; an error is a JSON body with code/message/more_info.
The functions that build them (:func:`message_resource`, :func:`error_payload`,
:func:`list_page`) are shared with ``twilio_server``, the same API as a real HTTP server
for tests that run the product in other processes: both answer in exactly one shape.
"""

from __future__ import annotations

import json
import operator
import re
import secrets
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from email.utils import format_datetime, parsedate_to_datetime
from typing import Any
from urllib.parse import parse_qs, unquote, urlencode

import responses

API = "https://api.twilio.com"
API_VERSION = "2010-04-01"
DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 1000

# --- payloads (shared with twilio_server) --------------------------------------------------


class ApiError(Exception):
    """A request Twilio refuses, answered with :func:`error_payload`."""

    def __init__(self, status: int, code: int, message: str | None = None) -> None:
        super().__init__(message or f"Twilio error {code}")
        self.status = status
        self.code = code
        self.message = message

    def payload(self) -> dict[str, Any]:
        return error_payload(self.status, self.code, self.message)


def messages_path(account_sid: str) -> str:
    """``/2010-04-01/Accounts/AC.../Messages``: add ``.json`` or ``/SM....json``."""
    return f"/{API_VERSION}/Accounts/{account_sid}/Messages"


def new_message_sid() -> str:
    return "SM" + secrets.token_hex(16)


def rfc2822(moment: datetime) -> str:
    """Twilio's dates: RFC 2822, whole seconds, GMT."""
    return format_datetime(moment.astimezone(UTC), usegmt=True)


def error_payload(status: int, code: int, message: str | None = None) -> dict[str, Any]:
    """Twilio's error body; the SDK raises ``TwilioRestException`` with its code."""
    return {
        "code": code,
        "message": message or f"Twilio error {code}",
        "more_info": f"https://www.twilio.com/docs/errors/{code}",
        "status": status,
    }


def message_resource(
    account_sid: str, form: Mapping[str, str], *, sid: str, created: datetime
) -> dict[str, Any]:
    """The Message resource a create answers (HTTP 201) and a list or fetch shows."""
    now = rfc2822(created)
    return {
        "account_sid": account_sid,
        "api_version": API_VERSION,
        "body": form.get("Body", ""),
        "date_created": now,
        "date_sent": None,
        "date_updated": now,
        "direction": "outbound-api",
        "error_code": None,
        "error_message": None,
        "from": form.get("From"),
        "messaging_service_sid": form.get("MessagingServiceSid"),
        "num_media": "0",
        "num_segments": "1",
        "price": None,
        "price_unit": "USD",
        "sid": sid,
        "status": "queued",
        "subresource_uris": {"media": f"{messages_path(account_sid)}/{sid}/Media.json"},
        "to": form.get("To"),
        "uri": f"{messages_path(account_sid)}/{sid}.json",
    }


# The list's date filters. In a URL, "DateSent>=2024-03-05" is the key "DateSent>" with
# the value "2024-03-05": on or after. The SDK sends a UTC time; people type a day.
DATE_FILTERS: dict[str, Callable[[Any, Any], bool]] = {
    "DateSent": operator.eq,
    "DateSent>": operator.ge,
    "DateSent<": operator.le,
}
LIST_FILTERS = ("To", "From", *DATE_FILTERS)


def _date_filter(name: str, value: str) -> tuple[datetime, bool]:
    """A DateSent value: ``YYYY-MM-DD`` (a whole day: True) or a time (False)."""
    try:
        if len(value) == 10:
            return datetime.combine(date.fromisoformat(value), datetime.min.time(), UTC), True
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise ApiError(400, 20001, f"Invalid value for {name}: {value!r}") from None
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).astimezone(UTC), False


def _matches(resource: Mapping[str, Any], query: Mapping[str, str]) -> bool:
    if any(key in query and resource[key.lower()] != query[key] for key in ("To", "From")):
        return False
    # These fakes never deliver, so date_sent stays null: date_created stands in for it.
    sent = parsedate_to_datetime(str(resource["date_sent"] or resource["date_created"]))
    for name, compare in DATE_FILTERS.items():
        if name in query:
            bound, whole_day = _date_filter(name, query[name])
            if not (compare(sent.date(), bound.date()) if whole_day else compare(sent, bound)):
                return False
    return True


def _int_param(query: Mapping[str, str], name: str, default: int, low: int, high: int) -> int:
    try:
        value = int(query.get(name, default))
    except ValueError:
        value = low - 1
    if not low <= value <= high:
        raise ApiError(400, 20001, f"{name} must be an integer from {low} to {high}")
    return value


def list_page(
    account_sid: str, newest_first: Sequence[Mapping[str, Any]], query: Mapping[str, str]
) -> dict[str, Any]:
    """One page of ``GET .../Messages.json``: ``newest_first`` filtered by ``To``, ``From``
    and the :data:`DATE_FILTERS`, paged by ``PageSize`` and ``Page`` (``PageToken`` is
    ignored). Raises :class:`ApiError` (400) for a malformed parameter."""
    size = _int_param(query, "PageSize", DEFAULT_PAGE_SIZE, 1, MAX_PAGE_SIZE)
    page = _int_param(query, "Page", 0, 0, 10**6)
    found = [dict(r) for r in newest_first if _matches(r, query)]
    start = page * size
    items = found[start : start + size]
    filters = [(name, query[name]) for name in LIST_FILTERS if name in query]

    def uri(number: int) -> str:
        params = urlencode([*filters, ("PageSize", size), ("Page", number)])
        return f"{messages_path(account_sid)}.json?{params}"

    return {
        "messages": items,
        "end": max(start, start + len(items) - 1),
        "first_page_uri": uri(0),
        "next_page_uri": uri(page + 1) if start + size < len(found) else None,
        "page": page,
        "page_size": size,
        "previous_page_uri": uri(page - 1) if page > 0 else None,
        "start": start,
        "uri": uri(page),
    }


# Twilio keeps a message's body until it is redacted, and refuses to change a message
# still on its way: HTTP 400 with error 20009 (as it answers a DELETE of one).
UNFINISHED = frozenset({"accepted", "scheduled", "queued", "sending"})
CANNOT_CHANGE_YET = 20009


def redact_resource(resource: dict[str, Any], form: Mapping[str, str], now: datetime) -> None:
    """``POST .../Messages/SM....json`` with ``Body=""``: blank the body in place.

    Raises :class:`ApiError` as Twilio answers: 30400 without an empty Body (a body can
    only be redacted, not rewritten), 20009 while the message is still on its way."""
    if form.get("Body", None) != "":
        raise ApiError(400, 30400, "Parameters are not valid: Body must be empty to redact")
    if resource["status"] in UNFINISHED:
        raise ApiError(400, CANNOT_CHANGE_YET, "Cannot change a message that is not complete")
    resource["body"] = ""
    resource["date_updated"] = rfc2822(now)


# --- Lookup v2 (lookups.twilio.com) ---------------------------------------------------------

LOOKUP_API = "https://lookups.twilio.com"


def lookup_resource(
    number: str,
    *,
    swapped_at: datetime | None = None,
    swapped_period: str = "PT15282H33M44S",
    swapped_in_period: bool | None = None,
    line_type: str = "mobile",
    sim_swap: bool = True,
) -> dict[str, Any]:
    """``GET /v2/PhoneNumbers/{number}?Fields=sim_swap,line_type_intelligence`` as Twilio
    answers it. Without ``swapped_at``, the carrier gives only ``swapped_in_period``;
    ``sim_swap=False``: the carrier shares no SIM swap data (the field is null)."""
    last_swap = {
        "last_sim_swapped_date": swapped_at.strftime("%Y-%m-%dT%H:%M:%SZ") if swapped_at else None,
        "swapped_period": swapped_period,
        "swapped_in_period": swapped_in_period,
    }
    return {
        "calling_country_code": "1",
        "country_code": "US",
        "phone_number": number,
        "national_format": number,
        "valid": True,
        "validation_errors": [],
        "caller_name": None,
        "sim_swap": {
            "last_sim_swap": last_swap,
            "carrier_name": "Example Wireless",
            "mobile_country_code": "310",
            "mobile_network_code": "260",
            "error_code": None,
        }
        if sim_swap
        else None,
        "call_forwarding": None,
        "line_status": None,
        "line_type_intelligence": {
            "carrier_name": "Example Wireless",
            "error_code": None,
            "mobile_country_code": "310",
            "mobile_network_code": "260",
            "type": line_type,
        },
        "identity_match": None,
        "reassigned_number": None,
        "sms_pumping_risk": None,
        "phone_number_quality_score": None,
        "pre_fill": None,
        "url": f"{LOOKUP_API}/v2/PhoneNumbers/{number}",
    }


# --- the fake, inside this process ---------------------------------------------------------


def _json(status: int, payload: Any) -> tuple[int, dict[str, str], str]:
    return status, {"Content-Type": "application/json"}, json.dumps(payload)


@dataclass
class FakeTwilio:
    account_sid: str
    base_url: str = API
    sent: list[dict[str, Any]] = field(default_factory=list)
    # Queued failures: (http status, twilio code) returned before succeeding again.
    failures: list[tuple[int, int]] = field(default_factory=list)
    # Called as each create arrives (a test may block it there).
    before_create: Callable[[], object] | None = None
    # Lookup v2: number -> its resource (default: a mobile never swapped); each number
    # asked; and whether Lookup answers 503.
    lookups: dict[str, dict[str, Any]] = field(default_factory=dict)
    looked_up: list[str] = field(default_factory=list)
    lookup_down: bool = False

    @property
    def messages_url(self) -> str:
        return f"{self.base_url}{messages_path(self.account_sid)}.json"

    def install(self, rsps: responses.RequestsMock) -> FakeTwilio:
        rsps.add_callback(responses.POST, self.messages_url, callback=self._create)
        rsps.add_callback(responses.GET, self.messages_url, callback=self._list)
        one = re.escape(f"{self.base_url}{messages_path(self.account_sid)}/") + r"[^/]+\.json"
        rsps.add_callback(responses.POST, re.compile(one), callback=self._update)
        lookup = re.escape(f"{LOOKUP_API}/v2/PhoneNumbers/") + r"[^/?]+(\?.*)?"
        rsps.add_callback(responses.GET, re.compile(lookup), callback=self._lookup)
        return self

    def _lookup(self, request: Any) -> tuple[int, dict[str, str], str]:
        path, _, query = request.url.partition("?")
        number = unquote(path.rsplit("/", 1)[1])
        if self.lookup_down:
            return _json(503, error_payload(503, 20503, "Service unavailable"))
        if parse_qs(query).get("Fields") != ["sim_swap,line_type_intelligence"]:
            return _json(400, error_payload(400, 60001, "Invalid Fields"))
        self.looked_up.append(number)
        return _json(200, self.lookups.get(number) or lookup_resource(number))

    def resource(self, sid: str) -> dict[str, Any]:
        """Twilio's record of message ``sid`` (its ``body`` is blank once redacted)."""
        resource: dict[str, Any] = next(m["Resource"] for m in self.sent if m["Sid"] == sid)
        return resource

    def set_status(self, sid: str, status: str) -> None:
        """The carrier moved the message on ("sent", "delivered", ...)."""
        self.resource(sid)["status"] = status

    def _update(self, request: Any) -> tuple[int, dict[str, str], str]:
        """POST Messages/SM....json: redaction; an unknown sid is Twilio's 404 (20404)."""
        sid = request.url.rsplit("/", 1)[1].removesuffix(".json")
        form = {k: v[0] for k, v in parse_qs(request.body or "", keep_blank_values=True).items()}
        if self.failures:
            status, code = self.failures.pop(0)
            return _json(status, error_payload(status, code))
        try:
            resource = self.resource(sid)
        except StopIteration:
            return _json(
                404, error_payload(404, 20404, f"The requested resource {sid} was not found")
            )
        try:
            redact_resource(resource, form, datetime.now(UTC))
        except ApiError as err:
            return _json(err.status, err.payload())
        return _json(200, resource)

    def _list(self, request: Any) -> tuple[int, dict[str, str], str]:
        """GET Messages.json?To=...: Twilio's list page, newest first."""
        query = {k: v[0] for k, v in parse_qs(request.url.partition("?")[2]).items()}
        newest_first = [m["Resource"] for m in reversed(self.sent)]
        try:
            return _json(200, list_page(self.account_sid, newest_first, query))
        except ApiError as err:
            return _json(err.status, err.payload())

    def _create(self, request: Any) -> tuple[int, dict[str, str], str]:
        if self.before_create is not None:
            self.before_create()
        form = {k: v[0] for k, v in parse_qs(request.body).items()}
        if self.failures:
            status, code = self.failures.pop(0)
            return _json(status, error_payload(status, code))
        sid = new_message_sid()
        body = message_resource(self.account_sid, form, sid=sid, created=datetime.now(UTC))
        self.sent.append({**form, "Sid": sid, "Resource": body})
        return _json(201, body)

    def bodies_to(self, number: str) -> list[str]:
        return [m["Body"] for m in self.sent if m.get("To") == number]
