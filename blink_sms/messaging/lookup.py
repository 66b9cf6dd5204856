"""Twilio Lookup v2: has this number's SIM been swapped lately, and what line is it?

One request, ``GET https://lookups.twilio.com/v2/PhoneNumbers/{number}?Fields=sim_swap,
line_type_intelligence``, answered as Twilio documents it::

    {"phone_number": "+447772000001", "valid": true, ...,
     "sim_swap": {"last_sim_swap": {"last_sim_swapped_date": "2020-04-27T10:18:50Z",
                                    "swapped_period": "PT15282H33M44S",
                                    "swapped_in_period": true},
                  "carrier_name": "Vodafone UK", "mobile_country_code": "276",
                  "mobile_network_code": "02", "error_code": null},
     "line_type_intelligence": {"type": "mobile", "carrier_name": "...", ...,
                                "error_code": null}}

Where a carrier shares no date, only ``swapped_in_period`` says whether a swap happened
within ``swapped_period`` (an ISO 8601 duration). A package the account lacks, or a
carrier without the data, gives ``sim_swap: null`` or a non-null ``error_code``: that
is "no data", not a failure. A network error or an HTTP error is :class:`LookupFailed`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import quote

LOOKUP_API = "https://lookups.twilio.com"
FIELDS = "sim_swap,line_type_intelligence"

# PnDTnHnMnS (the subset Twilio writes: days, hours, minutes, seconds).
_DURATION = re.compile(
    r"P(?:(?P<d>\d+)D)?(?:T(?:(?P<h>\d+)H)?(?:(?P<m>\d+)M)?(?:(?P<s>\d+(?:\.\d+)?)S)?)?"
)


class LookupFailed(Exception):
    """Lookup could not be asked, or refused the request; the message names no number."""


@dataclass(frozen=True)
class LookupResult:
    """What Lookup says about a number. ``None`` fields: Lookup had no data."""

    last_swapped_at: datetime | None = None
    swapped_period: timedelta | None = None
    swapped_in_period: bool | None = None
    line_type: str | None = None

    @property
    def has_swap_data(self) -> bool:
        return self.last_swapped_at is not None or self.swapped_in_period is not None


def parse_duration(text: str | None) -> timedelta | None:
    match = _DURATION.fullmatch(text or "")
    if not text or match is None:
        return None
    parts = {k: float(v) if v else 0.0 for k, v in match.groupdict().items()}
    return timedelta(days=parts["d"], hours=parts["h"], minutes=parts["m"], seconds=parts["s"])


def _date(text: Any) -> datetime | None:
    if not isinstance(text, str):
        return None
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None


def parse(payload: dict[str, Any]) -> LookupResult:
    """The fields of a Lookup answer that matter here; anything missing is None."""
    swap = payload.get("sim_swap") or {}
    last = swap.get("last_sim_swap") or {} if not swap.get("error_code") else {}
    line = payload.get("line_type_intelligence") or {}
    in_period = last.get("swapped_in_period")
    return LookupResult(
        last_swapped_at=_date(last.get("last_sim_swapped_date")),
        swapped_period=parse_duration(last.get("swapped_period")),
        swapped_in_period=in_period if isinstance(in_period, bool) else None,
        line_type=None if line.get("error_code") else line.get("type"),
    )


class TwilioLookup:
    """Asks Lookup v2 with the account's credentials (plain HTTPS, like the SMS sender)."""

    def __init__(
        self, account_sid: str, auth_token: str, *, api_base_url: str = LOOKUP_API,
        timeout: float = 5.0,
    ) -> None:  # fmt: skip
        import requests

        self._session = requests.Session()
        self._session.auth = (account_sid, auth_token)
        self._session.headers.update({"Accept": "application/json", "User-Agent": "blink-sms"})
        self._base = f"{api_base_url}/v2/PhoneNumbers/"
        self._timeout = timeout

    def lookup(self, number: str) -> LookupResult:
        from requests import RequestException

        try:
            response = self._session.get(
                self._base + quote(number, safe=""),
                params={"Fields": FIELDS},
                timeout=self._timeout,
            )
            payload = response.json() if response.content else {}
        except (RequestException, ValueError) as err:
            raise LookupFailed(f"cannot reach Twilio Lookup ({type(err).__name__})") from None
        if response.status_code >= 400 or not isinstance(payload, dict):
            code = payload.get("code") if isinstance(payload, dict) else None
            raise LookupFailed(f"Twilio Lookup refused (HTTP {response.status_code}, code {code})")
        return parse(payload)
