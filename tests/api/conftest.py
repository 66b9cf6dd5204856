"""Fixtures for the REST API: keys of every scope, and a client that sends them."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from flask.testing import FlaskClient

from blink_sms.actors import COMMAND_LINE
from blink_sms.context import Blink
from blink_sms.models import Client
from blink_sms.services import api_keys


@dataclass
class Api:
    """The Flask test client with one API key in every request."""

    http: FlaskClient
    key: str

    def headers(self, extra: dict[str, str] | None = None) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key}", **(extra or {})}

    def get(self, path: str, **kwargs: Any) -> Any:
        return self.http.get(path, headers=self.headers(kwargs.pop("headers", None)), **kwargs)

    def post(self, path: str, json: Any = None, **kwargs: Any) -> Any:
        headers = self.headers(kwargs.pop("headers", None))
        return self.http.post(path, json=json, headers=headers, **kwargs)

    def patch(self, path: str, json: Any = None, **kwargs: Any) -> Any:
        headers = self.headers(kwargs.pop("headers", None))
        return self.http.patch(path, json=json, headers=headers, **kwargs)

    def request(self, method: str, path: str, **kwargs: Any) -> Any:
        headers = self.headers(kwargs.pop("headers", None))
        return self.http.open(path, method=method, headers=headers, **kwargs)


MakeKey = Callable[..., Api]


@pytest.fixture
def api_key(services: Blink, http: FlaskClient) -> MakeKey:
    """An API client with a new key: ``api_key(client=None, writes=True)``."""

    def make(*, client: Client | None = None, writes: bool = True, name: str = "PSA") -> Api:
        with services.db.session() as session:
            _, key = api_keys.create_key(
                session, COMMAND_LINE, name=name, client=client, writes=writes
            )
        return Api(http, key)

    return make


@pytest.fixture
def msp(api_key: MakeKey) -> Api:
    """An MSP-wide read-write key (a PSA's)."""
    return api_key()
