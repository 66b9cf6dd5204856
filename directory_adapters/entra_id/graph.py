"""Microsoft Graph over HTTP: the one chokepoint of the Entra ID adapter.

Every Graph call goes through :meth:`GraphClient.request`: one ``requests.Session``,
a timeout on every call, the bearer token from :class:`MsalTokens`, throttling
honoured in place, and every failure mapped by one table (:data:`ERROR_TABLE`) to
a :mod:`directory_adapters.errors` class. ``DirectoryUnavailable`` is the only
retryable outcome; every other row is permanent.

Tokens come from msal's ``ConfidentialClientApplication`` (client-credentials flow),
built on first use so that creating an adapter never touches the network. msal
keeps the token in memory and renews it before it expires; a 401 from Graph drops
the cached token and asks for a new one, once; a 403 drops it too, so that the call
after a consent or role change is made with a token that carries it.

No request body is ever put in an error or a log line: the password PATCH goes
through here.
"""

from __future__ import annotations

import base64
import binascii
import json
import threading
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import urlsplit

import requests

from ..errors import (
    ConfigurationError,
    DirectoryError,
    DirectoryUnavailable,
    OperationNotSupported,
    OperationRefused,
    PasswordRejected,
    PermissionDenied,
    UserNotFound,
)

Json = dict[str, Any]

# Graph answers these when it is throttling or briefly down; Retry-After says when to retry.
RETRY_STATUSES = frozenset({429, 503, 504})
PROFILE_UPDATE = "passwordProfile"  # the operation a 400 on a password PATCH belongs to
# AADSTS errors on the token endpoint that say "later", not "wrong settings".
_TRANSIENT_TOKEN_ERRORS = frozenset({"temporarily_unavailable", "server_error"})


@dataclass(frozen=True)
class ErrorRule:
    """One row of :data:`ERROR_TABLE`: a Graph answer and the error it becomes.

    ``code`` (Graph's ``error.code``), ``operation`` and ``message_contains`` narrow a
    row; ``None`` matches anything. Whether retrying helps is the error class's
    ``permanent`` flag, shown by :attr:`retryable`.
    """

    status: int
    code: str | None
    error: type[DirectoryError]
    why: str
    operation: str | None = None
    message_contains: str | None = None

    @property
    def retryable(self) -> bool:
        return not self.error.permanent

    def matches(self, status: int, code: str, message: str, operation: str | None) -> bool:
        return (
            self.status == status
            and self.code in (None, code)
            and self.operation in (None, operation)
            and (self.message_contains is None or self.message_contains in message.casefold())
        )


# First matching row wins. 404 becomes the caller's ``not_found`` class (UserNotFound
# for users, ConfigurationError for a group named in the settings).
ERROR_TABLE: tuple[ErrorRule, ...] = (
    ErrorRule(400, None, PasswordRejected, "Entra ID's password policy refused the password",
              operation=PROFILE_UPDATE, message_contains="does not comply"),
    ErrorRule(400, None, OperationRefused, "the user is mastered in on-premises AD",
              message_contains="on-premises mastered"),
    ErrorRule(400, None, ConfigurationError, "Graph refused the request as malformed"),
    ErrorRule(401, None, ConfigurationError,
              "token refused after one renewal: tenant, app registration or consent is wrong"),
    ErrorRule(403, "Authentication_RequestFromNonPremiumTenantOrB2CTenant", OperationNotSupported,
              "the tenant has no Entra ID P1/P2 licence (sign-in logs need one)"),
    ErrorRule(403, None, PermissionDenied,
              "the app lacks a Graph permission (or a directory role for this user)"),
    ErrorRule(404, None, UserNotFound, "no such object"),
    ErrorRule(409, None, DirectoryUnavailable, "concurrent change in the directory; retry"),
    ErrorRule(429, None, DirectoryUnavailable, "throttled; retry after Retry-After"),
    ErrorRule(503, None, DirectoryUnavailable, "service unavailable; retry after Retry-After"),
    ErrorRule(504, None, DirectoryUnavailable, "gateway timeout; retry after Retry-After"),
)  # fmt: skip


def _fallback_rule(status: int) -> ErrorRule:
    if status >= 500:
        return ErrorRule(status, None, DirectoryUnavailable, "Graph server error; retry")
    return ErrorRule(status, None, ConfigurationError, "unexpected Graph answer")


def rule_for(status: int, code: str, message: str, operation: str | None) -> ErrorRule:
    """The :data:`ERROR_TABLE` row for a Graph error answer."""
    for rule in ERROR_TABLE:
        if rule.matches(status, code, message, operation):
            return rule
    return _fallback_rule(status)


def retry_after_seconds(value: str | None, now: datetime) -> float | None:
    """Retry-After as seconds: Graph sends a number (sometimes fractional) or an HTTP date."""
    if not value:
        return None
    try:
        return max(float(value), 0.0)
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max((when - now).total_seconds(), 0.0)


def jwt_claims(token: str) -> Json:
    """The claims of a JWT access token, unverified: for reporting (``roles``), never trust."""
    try:
        payload = token.split(".")[1]
        decoded = base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))
        claims = json.loads(decoded)
    except (IndexError, ValueError, binascii.Error):
        return {}
    return claims if isinstance(claims, dict) else {}


class _MsalHttp:
    """What msal needs of an HTTP client (get, post, close), on our session and timeouts."""

    def __init__(self, session: requests.Session, timeout: tuple[float, float]) -> None:
        self._session = session
        self._timeout = timeout

    def get(self, url: str, *args: Any, **kwargs: Any) -> requests.Response:
        kwargs.setdefault("timeout", self._timeout)
        return self._session.get(url, *args, **kwargs)

    def post(self, url: str, *args: Any, **kwargs: Any) -> requests.Response:
        kwargs.setdefault("timeout", self._timeout)
        return self._session.post(url, *args, **kwargs)

    def close(self) -> None:
        """The session belongs to the adapter; msal must not close it."""


def _first_line(text: object) -> str:
    return str(text or "").strip().splitlines()[0] if str(text or "").strip() else ""


def _sha256_assertion(credential: Mapping[str, str]) -> dict[str, Any]:
    """A certificate credential by SHA-256 thumbprint, as msal's ``client_assertion``.

    msal (1.39) signs with a SHA-256 thumbprint (``x5t#S256``, PS256) only when given the
    public certificate to compute it from; with a private key it takes a SHA-1
    ``thumbprint``. So the assertion is made here, by msal's own JWT maker, for the
    token endpoint msal discovered (it passes that to a one-argument callable).
    """
    from msal.oauth2cli.assertion import JwtAssertionCreator

    creator = JwtAssertionCreator(credential["private_key"], "PS256",
                                  sha256_thumbprint=credential["thumbprint_sha256"])  # fmt: skip

    def assertion(context: Mapping[str, str]) -> bytes:
        made: bytes = creator.create_normal_assertion(
            audience=context["token_endpoint"], issuer=context["client_id"]
        )
        return made

    return {"client_assertion": assertion}


class MsalTokens:
    """App-only tokens for Graph from msal (client credentials), cached in this process.

    ``credential`` is the client secret, or msal's certificate mapping
    (``{"private_key": PEM, "thumbprint": SHA-1 hex}``), or the same with
    ``thumbprint_sha256`` (SHA-256 hex) instead, signed as :func:`_sha256_assertion` says.
    """

    def __init__(
        self,
        *,
        tenant_id: str,
        client_id: str,
        credential: str | Mapping[str, str],
        authority: str,
        scope: str,
        session: requests.Session,
        timeout: tuple[float, float],
    ) -> None:
        self._authority = f"{authority.rstrip('/')}/{tenant_id}"
        self._client_id = client_id
        self._credential = credential
        self._scope = scope
        self._http = _MsalHttp(session, timeout)
        self._app: Any = None
        self._lock = threading.Lock()

    def _application(self) -> Any:
        if self._app is None:
            import msal

            # instance_discovery=False: the authority is the admin's explicit choice
            # (public or national cloud); msal must not ask login.microsoftonline.com
            # about it. msal still reads the tenant's OpenID configuration.
            credential = self._credential
            if not isinstance(credential, str) and "thumbprint_sha256" in credential:
                credential = _sha256_assertion(credential)
            self._app = msal.ConfidentialClientApplication(
                self._client_id,
                client_credential=(credential if isinstance(credential, str) else dict(credential)),
                authority=self._authority,
                http_client=self._http,
                instance_discovery=False,
            )
        return self._app

    def token(self) -> str:
        """A valid access token (from msal's cache when it has one)."""
        from jwt import PyJWTError  # msal signs certificate assertions with PyJWT
        from msal.exceptions import MsalServiceError

        with self._lock:
            try:
                result = self._application().acquire_token_for_client(scopes=[self._scope])
            except MsalServiceError as err:  # msal raises on HTTP 5xx from the endpoint
                raise DirectoryUnavailable(f"token endpoint failed: {_first_line(err)}") from err
            except requests.RequestException as err:
                raise DirectoryUnavailable(
                    f"token endpoint unreachable ({type(err).__name__})"
                ) from err
            except (ValueError, PyJWTError) as err:  # tenant discovery refused, unusable key
                raise ConfigurationError(
                    f"cannot get a token from {self._authority}: {_first_line(err)}"
                ) from err
            if not isinstance(result, dict) or "access_token" not in result:
                raise self._token_error(result if isinstance(result, dict) else {})
            token: str = result["access_token"]
            return token

    def renew(self) -> None:
        """Forget the cached token, so that the next :meth:`token` asks for a new one."""
        with self._lock:
            if self._app is None:
                return
            cache = self._app.token_cache
            for entry in list(cache.search(cache.CredentialType.ACCESS_TOKEN)):
                cache.remove_at(entry)

    def claims(self) -> Json:
        """The claims of the current token (``roles``: the app's Graph permissions)."""
        return jwt_claims(self.token())

    def _token_error(self, result: Mapping[str, Any]) -> DirectoryError:
        error = str(result.get("error") or "no token")
        detail = _first_line(result.get("error_description")) or error
        message = f"token request refused by {self._authority}: {error}: {detail}"
        if error in _TRANSIENT_TOKEN_ERRORS:
            return DirectoryUnavailable(message)
        return ConfigurationError(message)


class GraphClient:
    """Every Graph request of one adapter: one session, timeouts, token, errors, retries.

    ``sleep`` and ``clock`` are injectable so that tests of throttling stay fast.
    A 429/503/504 is retried in place up to ``max_attempts`` times when its
    Retry-After (or, without one, exponential backoff) is at most ``max_retry_after``
    seconds; otherwise ``DirectoryUnavailable(retry_after=...)`` goes to the job.
    """

    def __init__(
        self,
        *,
        base_url: str,
        tokens: MsalTokens,
        session: requests.Session,
        timeout: tuple[float, float],
        sleep: Callable[[float], object],
        clock: Callable[[], datetime],
        max_attempts: int = 3,
        max_retry_after: float = 30.0,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.tokens = tokens
        self._session = session
        self._timeout = timeout
        self._sleep = sleep
        self._clock = clock
        self._max_attempts = max_attempts
        self._max_retry_after = max_retry_after

    def request(
        self,
        method: str,
        path: str,
        *,
        permission: str,
        params: Mapping[str, str] | None = None,
        body: Json | None = None,
        advanced: bool = False,
        operation: str | None = None,
        not_found: type[DirectoryError] = UserNotFound,
    ) -> Json:
        """Send one request (``path`` under the base URL, or a full ``@odata.nextLink``).

        ``permission`` names the least-privileged Graph permission the call needs, for
        ``PermissionDenied.missing_right``; ``advanced`` adds Graph's advanced-query
        header (``ConsistencyLevel: eventual``). Returns the JSON body (``{}`` for 204).
        """
        url = self._url(path)
        renewed = False
        attempt = 0
        while True:
            response = self._send(method, url, params, body, advanced)
            status = response.status_code
            if status == 401 and not renewed:
                self.tokens.renew()
                renewed = True
                continue
            if status in RETRY_STATUSES and attempt + 1 < self._max_attempts:
                delay = retry_after_seconds(response.headers.get("Retry-After"), self._clock())
                delay = 2.0**attempt if delay is None else delay
                if delay <= self._max_retry_after:
                    self._sleep(delay)
                    attempt += 1
                    continue
            if status < 300:
                return self._json(response, method, url)
            raise self._error(response, method, url, permission, operation, not_found)

    def pages(
        self,
        path: str,
        *,
        permission: str,
        params: Mapping[str, str] | None = None,
        advanced: bool = False,
        not_found: type[DirectoryError] = UserNotFound,
    ) -> Iterator[list[Json]]:
        """The ``value`` of each page of a collection, following ``@odata.nextLink``."""
        next_url: str | None = path
        query = params
        while next_url:
            page = self.request(
                "GET",
                next_url,
                permission=permission,
                params=query,
                advanced=advanced,
                not_found=not_found,
            )
            value = page.get("value", [])
            yield value if isinstance(value, list) else []
            link = page.get("@odata.nextLink")
            next_url, query = (link if isinstance(link, str) else None), None

    def _url(self, path: str) -> str:
        if path.startswith("/"):
            return self.base_url + path
        base, link = urlsplit(self.base_url), urlsplit(path)
        # A nextLink is followed with our token: it must point back to the same Graph.
        if (link.scheme, link.netloc) != (base.scheme, base.netloc):
            raise ConfigurationError(f"Graph sent a link to another host: {link.netloc!r}")
        return path

    def _send(
        self,
        method: str,
        url: str,
        params: Mapping[str, str] | None,
        body: Json | None,
        advanced: bool,
    ) -> requests.Response:
        headers = {
            "Authorization": f"Bearer {self.tokens.token()}",
            "Accept": "application/json",
            "client-request-id": str(uuid.uuid4()),
        }
        if advanced:
            headers["ConsistencyLevel"] = "eventual"
        try:
            return self._session.request(
                method,
                url,
                params=params,
                json=body,
                headers=headers,
                timeout=self._timeout,
                allow_redirects=False,
            )
        except requests.Timeout as err:
            raise DirectoryUnavailable(f"Graph timed out: {method} {urlsplit(url).path}") from err
        except requests.RequestException as err:
            # The exception text may quote the URL and its query (a UPN); keep to the type.
            raise DirectoryUnavailable(
                f"Graph unreachable ({type(err).__name__}): {method} {urlsplit(url).path}"
            ) from err

    @staticmethod
    def _json(response: requests.Response, method: str, url: str) -> Json:
        if response.status_code == 204 or not response.content:
            return {}
        try:
            data = response.json()
        except ValueError as err:
            raise DirectoryUnavailable(
                f"Graph sent an unreadable answer to {method} {urlsplit(url).path}"
            ) from err
        return data if isinstance(data, dict) else {}

    def _error(
        self,
        response: requests.Response,
        method: str,
        url: str,
        permission: str,
        operation: str | None,
        not_found: type[DirectoryError],
    ) -> DirectoryError:
        status = response.status_code
        try:
            error = response.json().get("error", {})
        except (ValueError, AttributeError):
            error = {}
        error = error if isinstance(error, dict) else {}
        code, message = str(error.get("code") or ""), str(error.get("message") or "")
        inner = error.get("innerError")
        request_id = inner.get("request-id") if isinstance(inner, dict) else None
        rule = rule_for(status, code, message, operation)
        detail = (
            f"Graph {method} {urlsplit(url).path}: HTTP {status} {code or '-'}: "
            f"{message or rule.why} (request-id {request_id or response.headers.get('request-id')})"
        )
        retry_after = retry_after_seconds(response.headers.get("Retry-After"), self._clock())
        if rule.error is PermissionDenied:
            # A token keeps the permissions ("roles") and directory roles ("wids") it was
            # issued with, for about an hour: drop it, so that the next call after the
            # admin grants consent or a role gets a new token that has them.
            self.tokens.renew()
            return PermissionDenied(
                f"{detail}; the app needs {permission}", missing_right=permission
            )
        if rule.error is UserNotFound:
            return not_found(detail)
        return rule.error(detail, retry_after=retry_after)
