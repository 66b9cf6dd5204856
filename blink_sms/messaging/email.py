"""The email boundary: one sender interface, an SMTP implementation and a console one.

``EmailSender.send`` hands one message to a mail server or raises :class:`EmailError`,
which says whether trying again can help: a refused address is permanent, an
unreachable or busy server is not. :func:`build_email_sender` picks the
implementation from the settings (``BLINK_SMTP_URL``, ``BLINK_MAIL_FROM``).
"""

from __future__ import annotations

import re
import smtplib
import ssl
import sys
import threading
from collections import deque
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formataddr, make_msgid
from typing import TYPE_CHECKING, Protocol, TextIO
from urllib.parse import unquote, urlsplit

import structlog

from .errors import DeliveryError

if TYPE_CHECKING:
    from ..settings import Settings

log = structlog.get_logger(__name__)

LOOPBACK_HOSTS = frozenset({"localhost", "127.0.0.1", "::1"})

# An email address as far as the gateway checks one: something@domain.tld, no spaces.
EMAIL_ADDRESS = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")


class EmailError(DeliveryError):
    """Sending an email failed; ``code`` is the SMTP reply code."""


@dataclass(frozen=True)
class OutgoingEmail:
    to: str
    subject: str
    text: str
    html: str | None = None
    from_name: str | None = None
    reply_to: str | None = None


class EmailSender(Protocol):
    """Sends one email. Returns its Message-ID; raises :class:`EmailError`."""

    def send(self, message: OutgoingEmail) -> str: ...


def _mime(message: OutgoingEmail, sender: str) -> EmailMessage:
    mime = EmailMessage()
    mime["From"] = formataddr((message.from_name or "", sender))
    mime["To"] = message.to
    mime["Subject"] = message.subject
    if message.reply_to:
        mime["Reply-To"] = message.reply_to
    mime["Message-ID"] = make_msgid(domain=sender.rpartition("@")[2] or None)
    # Mail scanners and auto-responders: this is a transactional message.
    mime["Auto-Submitted"] = "auto-generated"
    mime.set_content(message.text)
    if message.html is not None:
        mime.add_alternative(message.html, subtype="html")
    return mime


def classify_smtp_error(code: int | None) -> bool:
    """True when an SMTP reply code is permanent (5xx); 4xx and no code may pass later."""
    return code is not None and 500 <= code < 600


class SmtpSender:
    """Sends over SMTP: ``smtps://`` is TLS from the first byte; ``smtp://`` upgrades with
    STARTTLS, which is required unless the server is on this machine (a local relay).

    Credentials come from the URL (``smtp://user:password@host:587``) and are only
    sent over TLS. ``ssl_context`` replaces the system trust store (tests, private CAs).
    """

    def __init__(
        self,
        url: str,
        mail_from: str,
        *,
        ssl_context: ssl.SSLContext | None = None,
        timeout: float = 15.0,
    ) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("smtp", "smtps") or not parts.hostname:
            raise ValueError("BLINK_SMTP_URL must be smtp://host[:port] or smtps://host[:port]")
        self.implicit_tls = parts.scheme == "smtps"
        self.host = parts.hostname
        self.port = parts.port or (465 if self.implicit_tls else 587)
        self._username = unquote(parts.username) if parts.username else None
        self._password = unquote(parts.password) if parts.password else None
        self.mail_from = mail_from
        self._context = ssl_context or ssl.create_default_context()
        self.timeout = timeout

    def _connect(self) -> smtplib.SMTP:
        if self.implicit_tls:
            return smtplib.SMTP_SSL(
                self.host, self.port, timeout=self.timeout, context=self._context
            )
        smtp = smtplib.SMTP(self.host, self.port, timeout=self.timeout)
        smtp.ehlo()
        if smtp.has_extn("starttls"):
            smtp.starttls(context=self._context)
            smtp.ehlo()
        elif self.host not in LOOPBACK_HOSTS or self._username:
            smtp.close()
            raise EmailError(
                f"{self.host} does not offer STARTTLS; refusing to send in clear",
                permanent=True,
            )
        return smtp

    def send(self, message: OutgoingEmail) -> str:
        mime = _mime(message, self.mail_from)
        try:
            with self._connect() as smtp:
                if self._username:
                    smtp.login(self._username, self._password or "")
                refused = smtp.send_message(mime, from_addr=self.mail_from, to_addrs=[message.to])
        except EmailError:
            raise
        except smtplib.SMTPRecipientsRefused as err:
            code = next(iter(err.recipients.values()))[0] if err.recipients else None
            raise EmailError(
                f"the mail server refused the address (SMTP {code})",
                code=code,
                permanent=classify_smtp_error(code),
            ) from None
        except smtplib.SMTPAuthenticationError as err:
            raise EmailError(
                f"the mail server refused the credentials (SMTP {err.smtp_code})",
                code=err.smtp_code,
                permanent=True,
            ) from None
        except smtplib.SMTPResponseException as err:
            raise EmailError(
                f"the mail server refused the message (SMTP {err.smtp_code})",
                code=err.smtp_code,
                permanent=classify_smtp_error(err.smtp_code),
            ) from None
        except (smtplib.SMTPException, OSError) as err:
            # Connection refused, timeouts, TLS failures: the text may name the host only,
            # but keep just the type so nothing of the message leaks into logs.
            raise EmailError(
                f"cannot reach the mail server ({type(err).__name__})", permanent=False
            ) from None
        if refused:
            raise EmailError("the mail server refused the address", permanent=True)
        return str(mime["Message-ID"])


@dataclass(frozen=True)
class ConsoleEmail:
    message_id: str
    message: OutgoingEmail


class ConsoleEmailSender:
    """Prints each email's plain text instead of sending it: the demo and development.

    It keeps the last messages in memory so a demo page or a test can show them.
    """

    def __init__(self, stream: TextIO | None = None, keep: int = 50) -> None:
        self._stream = stream
        self._lock = threading.Lock()
        self.outbox: deque[ConsoleEmail] = deque(maxlen=keep)

    def send(self, message: OutgoingEmail) -> str:
        message_id = make_msgid(domain="console.invalid")
        with self._lock:
            self.outbox.append(ConsoleEmail(message_id, message))
        stream = self._stream or sys.stdout
        print(
            f"--- email to {message.to}: {message.subject}\n{message.text}\n---",
            file=stream,
        )
        stream.flush()
        return message_id


def sender_for(
    settings: Settings, smtp_url: str | None, mail_from: str | None
) -> EmailSender | None:
    """An SMTP sender for one client's own mail settings, each falling back to the deployment's.

    ``smtp_url`` is the client's server (``None``: ``BLINK_SMTP_URL``) and ``mail_from`` its
    sender address (``None``: ``BLINK_MAIL_FROM``). ``None`` when a server or a sender is
    missing even so: email is off for that client, as :func:`build_email_sender` says for
    the deployment. ``ValueError`` for a URL that is not ``smtp://`` or ``smtps://``.
    """
    url = smtp_url or settings.smtp_url
    sender = mail_from or settings.mail_from
    if not url or not sender:
        return None
    return SmtpSender(url, sender)


def build_email_sender(settings: Settings) -> EmailSender | None:
    """The sender the settings ask for; ``None`` (email off) when SMTP is not configured.

    Development without ``BLINK_SMTP_URL`` prints emails to the console instead.
    """
    if settings.smtp_url:
        if not settings.mail_from:
            log.warning("email is off: BLINK_SMTP_URL is set but BLINK_MAIL_FROM is not")
            return None
        return SmtpSender(settings.smtp_url, settings.mail_from)
    if settings.production:
        log.warning("email is off: BLINK_SMTP_URL and BLINK_MAIL_FROM are not set")
        return None
    return ConsoleEmailSender()
