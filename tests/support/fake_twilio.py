"""Twilio's REST API, faked at the HTTP boundary with ``responses``.

Payloads are shaped like the real Messages API (2010-04-01): a created message is
HTTP 201 with the resource JSON; an error is a JSON body with code/message/more_info.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import format_datetime
from typing import Any
from urllib.parse import parse_qs

import responses

API = "https://api.twilio.com"


@dataclass
class FakeTwilio:
    account_sid: str
    base_url: str = API
    sent: list[dict[str, Any]] = field(default_factory=list)
    # Queued failures: (http status, twilio code) returned before succeeding again.
    failures: list[tuple[int, int]] = field(default_factory=list)
    # Called as each create arrives (a test may block it there).
    before_create: Callable[[], object] | None = None

    @property
    def messages_url(self) -> str:
        return f"{self.base_url}/2010-04-01/Accounts/{self.account_sid}/Messages.json"

    def install(self, rsps: responses.RequestsMock) -> FakeTwilio:
        rsps.add_callback(responses.POST, self.messages_url, callback=self._create)
        rsps.add_callback(responses.GET, self.messages_url, callback=self._list)
        return self

    def _list(self, request: Any) -> tuple[int, dict[str, str], str]:
        """GET Messages.json?To=...: Twilio's list page, newest first."""
        query = {k: v[0] for k, v in parse_qs(request.url.partition("?")[2]).items()}
        found = [
            m["Resource"]
            for m in reversed(self.sent)
            if all(m.get(key) == query[key] for key in ("To", "From") if key in query)
        ]
        size = int(query.get("PageSize", "50"))
        path = f"/2010-04-01/Accounts/{self.account_sid}/Messages.json"
        page = {
            "messages": found[:size],
            "end": max(0, min(len(found), size) - 1),
            "first_page_uri": f"{path}?PageSize={size}&Page=0",
            "next_page_uri": None,
            "page": 0,
            "page_size": size,
            "previous_page_uri": None,
            "start": 0,
            "uri": f"{path}?PageSize={size}&Page=0",
        }
        return 200, {"Content-Type": "application/json"}, json.dumps(page)

    def _create(self, request: Any) -> tuple[int, dict[str, str], str]:
        if self.before_create is not None:
            self.before_create()
        form = {k: v[0] for k, v in parse_qs(request.body).items()}
        if self.failures:
            status, code = self.failures.pop(0)
            return (
                status,
                {"Content-Type": "application/json"},
                json.dumps(
                    {
                        "code": code,
                        "message": f"Twilio error {code}",
                        "more_info": f"https://www.twilio.com/docs/errors/{code}",
                        "status": status,
                    }
                ),
            )
        sid = "SM" + secrets.token_hex(16)
        now = format_datetime(datetime.now(UTC), usegmt=True)
        body = {
            "account_sid": self.account_sid,
            "api_version": "2010-04-01",
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
            "subresource_uris": {
                "media": f"/2010-04-01/Accounts/{self.account_sid}/Messages/{sid}/Media.json"
            },
            "to": form.get("To"),
            "uri": f"/2010-04-01/Accounts/{self.account_sid}/Messages/{sid}.json",
        }
        self.sent.append({**form, "Sid": sid, "Resource": body})
        return 201, {"Content-Type": "application/json"}, json.dumps(body)

    def bodies_to(self, number: str) -> list[str]:
        return [m["Body"] for m in self.sent if m.get("To") == number]
