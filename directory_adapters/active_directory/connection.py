"""The one way to LDAP: a bound, encrypted connection per adapter, reused, with failover.

:class:`Ldap` is the connection factory and chokepoint. ``Ldap.run(operation)`` hands
``operation`` a :class:`Session` on the adapter's bound connection (one per adapter,
behind a lock, so one per client per process), binds again when it was dropped (a DC
restart, an idle timeout, a fork), and on a socket error or a timeout moves on to the
next DC before giving up with a retryable ``DirectoryUnavailable``. ldap3's
``ServerPool`` (FIRST, active) skips DCs that do not accept TCP.
"""

from __future__ import annotations

import logging
import math
import os
import re
import socket
import ssl
import threading
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

from ldap3 import (
    BASE,
    FIRST,
    NONE,
    SIMPLE,
    SUBTREE,
    Connection,
    Server,
    ServerPool,
    Tls,
    set_config_parameter,
)
from ldap3.core.exceptions import (
    LDAPCertificateError,
    LDAPCommunicationError,
    LDAPException,
    LDAPResponseTimeoutError,
    LDAPServerPoolExhaustedError,
    LDAPStartTLSError,
)

from ..errors import ConfigurationError, DirectoryError, DirectoryUnavailable
from .ldap_errors import bind_error, result_error, scrub
from .settings import ADSettings
from .values import PAGED_RESULTS, Entry

log = logging.getLogger(__name__)

# ldap3 sleeps this many seconds (default 10) after a round of unreachable DCs before
# it gives up. The job queue's retry schedule is the back-off: fail at once.
set_config_parameter("POOLING_LOOP_TIMEOUT", 0)

T = TypeVar("T")
TLS_FAILED = "TLS to the domain controllers failed"
_COMMUNICATION = (LDAPCommunicationError, LDAPResponseTimeoutError, OSError)
_TLS_REFUSALS = (
    "wrong version number",
    "unsupported protocol",
    "handshake failure",
    "no protocols available",
    "tlsv1 alert",
    "sslv3 alert",
    "no shared cipher",
    "dh key too small",
)


class VerifiedTls(Tls):  # type: ignore[misc]  # ldap3 has no type hints
    """ldap3's ``Tls`` with Python's own certificate and host name check.

    ldap3 turns the context's ``check_hostname`` off and calls ``ssl.match_hostname``
    afterwards (deprecated, and gone in Python 3.12, where ldap3's fallback ignores IP
    addresses). Here the handshake itself checks the chain and the name, with SNI.
    """

    def wrap_socket(self, connection: Any, do_handshake: bool = False) -> None:
        context = ssl.create_default_context(
            purpose=ssl.Purpose.SERVER_AUTH, cafile=self.ca_certs_file, cadata=self.ca_certs_data
        )
        verify = self.validate != ssl.CERT_NONE
        context.check_hostname = verify
        context.verify_mode = ssl.CERT_REQUIRED if verify else ssl.CERT_NONE
        connection.socket = context.wrap_socket(
            connection.socket,
            server_side=False,
            do_handshake_on_connect=do_handshake,
            server_hostname=connection.server.host,
        )


def tls_problem(err: BaseException) -> str | None:
    """What a TLS refusal means, in words; ``None`` if ``err`` is not one (a reset or a
    timeout during the handshake is a network problem, so retryable)."""
    # ldap3 nests the ssl error's text in tuple reprs: quotes may come escaped.
    text = str(err).replace("\\", "")
    lowered = text.lower()
    if "mismatch" in lowered or isinstance(err, LDAPCertificateError):
        host = re.search(r"not valid for '([^']+)'", text)
        return (
            f"the certificate is not valid for {host.group(1) if host else 'this host'!r}: "
            "connect with a name the certificate contains (usually the DC's full DNS name)"
        )
    if "certificate verify failed" in lowered:
        reason = re.search(r"certificate verify failed: ([^(]+)", text)
        why = reason.group(1).strip(" .'\"") if reason else "untrusted"
        return (
            f"the certificate is not trusted ({why}): set 'ca_file' or 'ca_pem' to the CA "
            "that issued the domain controller's certificate"
        )
    if "timed out" not in lowered and any(refusal in lowered for refusal in _TLS_REFUSALS):
        return f"the TLS handshake failed ({text[:200]})"
    return None


def network_problem(err: BaseException) -> str:
    """A socket failure in words."""
    lowered = str(err).lower()
    if "invalid server address" in lowered or "name or service not known" in lowered:
        return "the name does not resolve"
    if "refused" in lowered:
        return "the connection was refused (is the DC up and listening on this port?)"
    if "timed out" in lowered or isinstance(err, LDAPResponseTimeoutError):
        return "it did not answer in time"
    return f"{type(err).__name__}: {str(err)[:200]}"


def unreachable(host: str, port: int) -> str:
    """Why a DC did not accept a TCP connection: its name, or its port."""
    try:
        socket.getaddrinfo(host, port, proto=socket.IPPROTO_TCP)
    except OSError:
        return f"{host}:{port}: the name does not resolve"
    return f"{host}:{port}: no answer on the port (refused or timed out)"


class Session:
    """LDAP requests on one bound connection; results become entries or errors."""

    def __init__(self, connection: Any, settings: ADSettings) -> None:
        self.connection = connection
        self.settings = settings

    @property
    def encrypted(self) -> bool:
        return bool(self.connection.server.ssl or self.connection.tls_started)

    def _check(self, doing: str, not_found: type[DirectoryError]) -> None:
        result = self.connection.result
        if result.get("result") not in (0, 4):  # 4 sizeLimitExceeded: asked for (size_limit)
            raise result_error(result, doing=doing, not_found=not_found)

    def _entries(self) -> list[Entry]:
        response = self.connection.response or []
        return [Entry.of(item) for item in response if item.get("type") == "searchResEntry"]

    def search(
        self,
        base: str,
        search_filter: str,
        attributes: Iterable[str],
        *,
        scope: str = SUBTREE,
        not_found: type[DirectoryError] = ConfigurationError,
        size_limit: int = 0,
    ) -> list[Entry]:
        """One search (not paged: for answers known to be small)."""
        self.connection.search(
            base, search_filter, scope, attributes=list(attributes), size_limit=size_limit
        )
        self._check(f"searching {base}", not_found)
        return self._entries()

    def paged(self, base: str, search_filter: str, attributes: Iterable[str]) -> list[Entry]:
        """Every entry of a subtree search, page by page (AD gives at most 1000 a page)."""
        entries: list[Entry] = []
        cookie: bytes | None = None
        while True:
            self.connection.search(
                base,
                search_filter,
                SUBTREE,
                attributes=list(attributes),
                paged_size=self.settings.page_size,
                paged_cookie=cookie,
            )
            self._check(f"searching {base}", ConfigurationError)
            entries += self._entries()
            control = (self.connection.result.get("controls") or {}).get(PAGED_RESULTS) or {}
            cookie = (control.get("value") or {}).get("cookie")
            if not cookie:
                return entries

    def read(
        self,
        dn: str,
        attributes: Iterable[str],
        *,
        not_found: type[DirectoryError] = ConfigurationError,
    ) -> Entry:
        """One object by DN, ``<GUID=...>`` or ``""`` (the root DSE)."""
        found = self.search(
            dn, "(objectClass=*)", attributes, scope=BASE, not_found=not_found, size_limit=1
        )
        if not found:
            raise not_found(f"{dn or 'the root DSE'} cannot be read by the service account")
        return found[0]

    def modify(self, dn: str, changes: dict[str, Any]) -> dict[str, Any]:
        """One modify; returns the LDAP result (the caller maps a failure)."""
        self.connection.modify(dn, changes)
        return dict(self.connection.result)


class _DCFailed(Exception):
    """Opening, securing or binding to one DC failed at the socket or TLS level."""

    def __init__(self, index: int, reason: str, *, tls: bool) -> None:
        super().__init__(reason)
        self.index, self.reason, self.tls = index, reason, tls


class Ldap:
    """The connection factory and chokepoint of one adapter. Thread-safe."""

    def __init__(self, settings: ADSettings) -> None:
        self.settings = settings
        if not settings.verify_tls:
            log.warning(
                "TLS certificate verification is OFF for the domain controllers %s "
                "(verify_tls=false): the connection is encrypted but not authenticated",
                ", ".join(host for host, _ in settings.hosts),
            )
        tls = VerifiedTls(
            validate=ssl.CERT_REQUIRED if settings.verify_tls else ssl.CERT_NONE,
            ca_certs_file=settings.ca_file,
            ca_certs_data=settings.ca_pem,
        )
        self._servers = [
            Server(
                host,
                port=port,
                use_ssl=not settings.use_starttls,
                tls=tls,
                get_info=NONE,  # no schema reads: every value is handled raw
                connect_timeout=settings.connect_timeout,
            )
            for host, port in settings.hosts
        ]
        self._lock = threading.RLock()
        self._connection: Any = None
        self._pid = 0
        self.binds = 0  # how often the service account bound: a measure of reuse

    def close(self) -> None:
        """Unbind; the next operation binds again."""
        with self._lock:
            self._drop()

    def _drop(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None and self._pid == os.getpid():
            try:
                connection.unbind()
            except (LDAPException, OSError):
                log.debug("unbinding a broken connection failed, as expected")

    def _index(self, server: Any) -> int:
        return next((i for i, s in enumerate(self._servers) if s is server), 0)

    def _name(self, index: int) -> str:
        host, port = self.settings.hosts[index]
        return f"{host}:{port}"

    def _secrets(self) -> tuple[str, ...]:
        return (self.settings.bind_password,)

    def _connect(self, start: int) -> Any:
        """Open, secure and bind a connection, preferring the DCs from ``start`` on.

        A DC that accepts TCP but fails TLS or goes silent raises :class:`_DCFailed`,
        so that the caller can move on to the next one.
        """
        order = self._servers[start:] + self._servers[:start]
        connection = Connection(
            ServerPool(order, FIRST, active=1, exhaust=False),
            user=self.settings.bind_user,
            password=self.settings.bind_password,
            authentication=SIMPLE,
            raise_exceptions=False,
            # ldap3 packs it into SO_RCVTIMEO, as whole seconds.
            receive_timeout=max(1, math.ceil(self.settings.receive_timeout)),
            auto_referrals=False,  # never follow a referral with our credentials
            return_empty_attributes=False,
        )
        try:
            connection.open()
            if self.settings.use_starttls:
                connection.start_tls()
            secure = bool(connection.server.ssl or connection.tls_started)
            bound = secure and connection.bind()
        except LDAPServerPoolExhaustedError:
            raise
        except (*_COMMUNICATION, LDAPStartTLSError, LDAPCertificateError) as err:
            index = self._index(connection.server)
            problem = tls_problem(err)
            reason = scrub(
                f"{self._name(index)}: {problem or network_problem(err)}", self._secrets()
            )
            raise _DCFailed(index, reason, tls=problem is not None) from err
        if not secure:
            connection.unbind()
            raise ConfigurationError("the connection to the DC is not encrypted: refusing to bind")
        if not bound:
            result = dict(connection.result)
            connection.unbind()
            raise bind_error(result, self.settings.bind_user)
        self._connection, self._pid = connection, os.getpid()
        self.binds += 1
        return connection

    def _unexpected(self, err: LDAPException) -> ConfigurationError:
        """ldap3 refused to make the request (a malformed DN or filter in the settings)."""
        message = scrub(f"{type(err).__name__}: {err}", self._secrets())
        return ConfigurationError(f"the LDAP request could not be made: {message}")

    def run(self, operation: Callable[[Session], T]) -> T:
        """Run ``operation`` on the bound connection: every LDAP request goes through here.

        A dropped connection is replaced; a DC that fails at the socket or TLS level is
        left for the next. When every DC failed: ``DirectoryUnavailable`` (retryable), or
        ``ConfigurationError`` when every failure was a TLS refusal.
        """
        with self._lock:
            reasons: list[str] = []
            only_tls = True
            start, fresh = 0, 0
            while True:
                connection = self._connection if self._pid == os.getpid() else None
                if connection is None:
                    if fresh == len(self._servers):
                        break
                    fresh += 1
                    try:
                        connection = self._connect(start)
                    except _DCFailed as failed:
                        reasons.append(failed.reason)
                        only_tls = only_tls and failed.tls
                        start = (failed.index + 1) % len(self._servers)
                        continue
                    except LDAPServerPoolExhaustedError:
                        hosts = "; ".join(unreachable(h, p) for h, p in self.settings.hosts)
                        reasons.append(f"no domain controller accepted a connection: {hosts}")
                        only_tls = False
                        break
                    except LDAPException as err:
                        raise self._unexpected(err) from err
                try:
                    return operation(Session(connection, self.settings))
                except (*_COMMUNICATION, DirectoryUnavailable) as err:
                    # A broken connection, a timeout, or a DC that says it is busy or
                    # unavailable: the next DC is tried (requests here are idempotent).
                    index = self._index(connection.server)
                    problem = err.message if isinstance(err, DirectoryError) else None
                    reasons.append(f"{self._name(index)}: {problem or network_problem(err)}")
                    only_tls = False
                    self._drop()
                    start = (index + 1) % len(self._servers)
                except LDAPException as err:
                    raise self._unexpected(err) from err
            detail = "; ".join(reasons)
            if reasons and only_tls:
                raise ConfigurationError(f"{TLS_FAILED}: {detail}")
            raise DirectoryUnavailable(f"Active Directory is unavailable: {detail}")
