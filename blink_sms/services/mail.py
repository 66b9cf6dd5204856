"""A client's own mail: an optional SMTP server and sender address, and a test email.

By default every client's emails (activation links, notices) go through the
deployment's server (``BLINK_SMTP_URL``) from ``BLINK_MAIL_FROM``. A client may have its
own server, an ``smtp://`` or ``smtps://`` URL stored encrypted in
``Client.smtp_settings_encrypted`` as ``{"url": ...}``, and its own sender address
(``Client.mail_from``). The password in the URL is write-only: pages show the URL
without it, and an edit that types no password keeps the stored one as long as the
server and the account stay the same (a changed server must be given the password
again, so a stored password is never sent to a host someone else typed).
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import SplitResult, quote, unquote, urlsplit

import structlog
from sqlalchemy.orm import Session

from ..actors import Actor, Permission
from ..context import Blink
from ..crypto import SecretBox, SecretBoxError
from ..messaging.email import EMAIL_ADDRESS, EmailError, EmailSender, OutgoingEmail, sender_for
from ..models import Client
from ..retries import RetryLater
from . import audit
from .branding import brand_of
from .errors import Conflict, Invalid
from .scope import NotFound

log = structlog.get_logger(__name__)

MAX_URL = 1000
MAX_ADDRESS = 320


@dataclass(frozen=True)
class MailSettings:
    """What a page may show of a client's mail settings: never the password."""

    url: str | None  # the client's SMTP URL without its password (None: the deployment's)
    has_password: bool
    mail_from: str | None  # None: the deployment's sender address

    @property
    def own_server(self) -> bool:
        return self.url is not None


def _visible(actor: Actor, client: Client) -> None:
    if not actor.sees(client.id):
        raise NotFound("client")


def stored_url(secrets: SecretBox, client: Client) -> str | None:
    """The client's SMTP URL, password included: for sending, never for a page."""
    if not client.smtp_settings_encrypted:
        return None
    url = secrets.decrypt_json(client.smtp_settings_encrypted).get("url")
    return str(url) if url else None


def _netloc(parts: SplitResult, *, password: str | None) -> str:
    host = parts.hostname or ""
    if ":" in host:  # an IPv6 address goes back in brackets
        host = f"[{host}]"
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    if parts.username is None:
        return host
    user = quote(unquote(parts.username), safe="")
    if password is None:
        return f"{user}@{host}"
    return f"{user}:{quote(password, safe='')}@{host}"


def without_password(url: str) -> str:
    """``url`` with its password left out (what a page may show)."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{_netloc(parts, password=None)}"


def mail_settings(secrets: SecretBox, client: Client) -> MailSettings:
    """The client's mail settings as a page may show them (no password)."""
    try:
        url = stored_url(secrets, client)
    except SecretBoxError:
        url = None  # under a lost key: the page says "deployment's", the admin sets it again
    return MailSettings(
        url=without_password(url) if url else None,
        has_password=bool(url and urlsplit(url).password),
        mail_from=client.mail_from,
    )


def _parse(url: str) -> SplitResult:
    if len(url) > MAX_URL:
        raise Invalid("url", f"at most {MAX_URL} characters")
    parts = urlsplit(url)
    try:
        parts.port  # noqa: B018 -- urlsplit checks the port only when it is read
    except ValueError:
        raise Invalid("url", "the port must be a number from 1 to 65535") from None
    if parts.scheme not in ("smtp", "smtps") or not parts.hostname:
        raise Invalid(
            "url",
            "must look like smtps://user@mail.example.com (TLS from the start, port 465) "
            "or smtp://user@mail.example.com:587 (STARTTLS)",
        )
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise Invalid("url", "give only the scheme, the account, the server and its port")
    return parts


def _port(parts: SplitResult) -> int:
    return parts.port or (465 if parts.scheme == "smtps" else 587)


def _same_account(new: SplitResult, old: SplitResult) -> bool:
    return (new.scheme, new.hostname, _port(new), new.username) == (
        old.scheme,
        old.hostname,
        _port(old),
        old.username,
    )


def _full_url(parts: SplitResult, password: str | None, previous: str | None) -> str:
    """The URL to store: the typed password, or the stored one for the same account."""
    if password is None and parts.password is not None:
        password = unquote(parts.password)
    if password is None and parts.username is not None:
        old = urlsplit(previous) if previous else None
        if old is None or old.password is None or not _same_account(parts, old):
            raise Invalid("password", "type the password of this mail account")
        password = unquote(old.password)
    return f"{parts.scheme}://{_netloc(parts, password=password)}"


def set_mail_settings(
    session: Session,
    secrets: SecretBox,
    actor: Actor,
    client: Client,
    url: str,
    mail_from: str,
    *,
    password: str | None = None,
) -> list[str]:
    """Set (or, with both empty, remove) the client's own SMTP server and sender. Commits.

    ``url`` may carry the password, or ``password`` gives it apart (a form's password
    box); with neither, the stored password is kept when the scheme, server, port and
    account are unchanged. A client's own server needs a sender address. Returns what
    changed ("server", "password", "sender"); the audit event names only that.
    """
    _visible(actor, client)
    actor.require(Permission.MANAGE_CLIENT)
    url, mail_from = url.strip(), mail_from.strip()
    password = password or None  # an empty box: keep the stored one
    try:
        previous = stored_url(secrets, client)
    except SecretBoxError:
        previous = None  # saved under a lost key: the password must be typed again
    new_url = _full_url(_parse(url), password, previous) if url else None
    if mail_from and (len(mail_from) > MAX_ADDRESS or not EMAIL_ADDRESS.fullmatch(mail_from)):
        raise Invalid("mail_from", "not an email address, like it@contoso.example")
    if new_url and not mail_from:
        raise Invalid("mail_from", "a server of its own needs the address emails come from")
    changed = []
    if (without_password(new_url) if new_url else None) != (
        without_password(previous) if previous else None
    ):
        changed.append("server")
    old_password = urlsplit(previous).password if previous else None
    new_password = urlsplit(new_url).password if new_url else None
    if new_password != old_password and (new_password or old_password):
        changed.append("password")
    if (mail_from or None) != client.mail_from:
        changed.append("sender")
    if not changed:
        return []
    client.smtp_settings_encrypted = secrets.encrypt_json({"url": new_url}) if new_url else None
    client.mail_from = mail_from or None
    audit.record(
        session,
        "client.mail_changed",
        actor=actor,
        client_id=client.id,
        fields=changed,
        server=urlsplit(new_url).hostname if new_url else None,
    )
    session.commit()
    return changed


def _sender(app: Blink, client: Client) -> EmailSender | None:
    url = stored_url(app.secrets, client)
    if url is None and (client.mail_from is None or app.settings.smtp_url is None):
        # No settings of its own, or only a sender address while the deployment has no
        # server (development): the deployment's sender, the console one included.
        return app.email
    return sender_for(app.settings, url, client.mail_from)


def send_or_retry(
    sender: EmailSender, message: OutgoingEmail, *, retries_left: int, what: str
) -> str | None:
    """Send ``message`` from a job: None when sent; the error when it failed for good
    (logged). A passing failure with retries left raises :class:`RetryLater`, so the
    job runs again later."""
    try:
        sender.send(message)
    except EmailError as err:
        if not err.permanent and retries_left > 0:
            log.warning(f"{what} will be retried", error=err.message)
            raise RetryLater("smtp") from None
        log.error(f"{what} failed", error=err.message)
        return err.message
    return None


def email_sender_for(app: Blink, client: Client) -> EmailSender | None:
    """Where the client's emails go: its own server and sender, or the deployment's.

    ``None`` when email is off for this client: no server or no sender address at all,
    or its own mail settings cannot be decrypted (then it is logged; sending them
    through another server instead would surprise the client).
    """
    try:
        return _sender(app, client)
    except SecretBoxError as err:
        log.error("a client's mail settings cannot be read", client_id=client.id, error=str(err))
        return None


@dataclass(frozen=True)
class TestEmail:
    """How a test email went, in plain words for the admin who sent it."""

    ok: bool
    message: str


def _server_name(app: Blink, client: Client) -> str:
    url = stored_url(app.secrets, client)
    if url is None:
        return "the deployment's mail server"
    parts = urlsplit(url)
    return f"{parts.hostname}:{_port(parts)}"


# What the exception types behind "cannot reach the mail server (...)" mean.
_UNREACHABLE = {
    "ConnectionRefusedError": "nothing answers on that port",
    "TimeoutError": "no answer in time",
    "gaierror": "the name does not resolve",
    "SSLCertVerificationError": "its TLS certificate is not trusted",
    "SSLError": "TLS failed",
    "SMTPServerDisconnected": "it closed the connection",
}


def _plain_words(err: EmailError, server: str, to: str) -> str:
    code = err.code
    if code in (530, 534, 535) or "credentials" in err.message:
        return (
            f"{server} refused the account or its password (SMTP {code}): check the user "
            "name in the address and type the password again"
        )
    if "address" in err.message:
        return f"{server} refused the address {to} (SMTP {code}): check it, or try another"
    if "STARTTLS" in err.message:
        return (
            f"{server} does not offer STARTTLS, so the password would travel in clear: "
            "use smtps:// (port 465), or the server's submission port (587) with STARTTLS"
        )
    if "cannot reach" in err.message:
        kind = err.message.rpartition("(")[2].rstrip(")")
        why = _UNREACHABLE.get(kind, kind)
        return (
            f"could not reach {server} ({why}): check the server's name and port, and that "
            "this deployment may connect to it"
        )
    return f"{server} refused the message ({err.message}): users would not get emails like it"


def send_test_email(
    app: Blink, session: Session, actor: Actor, client: Client, to: str
) -> TestEmail:
    """Send a short email to ``to`` the way the client's activation emails go. Commits.

    ``Invalid`` for an address that is not one, ``Conflict`` when email is off for the
    client. A refusal by the mail server is not an exception: the result says, in plain
    words, what failed and what to check. Audited (it uses the client's mail account).
    """
    _visible(actor, client)
    actor.require(Permission.MANAGE_CLIENT)
    to = to.strip()
    if len(to) > MAX_ADDRESS or not EMAIL_ADDRESS.fullmatch(to):
        raise Invalid("to", "not an email address, like you@msp.example")
    try:
        sender = _sender(app, client)
        server = _server_name(app, client)
    except SecretBoxError:
        raise Conflict(
            "the client's mail settings cannot be read with this deployment's secret key: "
            "enter them again"
        ) from None
    if sender is None:
        raise Conflict(
            "email is off for this client: give it a mail server here, or set BLINK_SMTP_URL "
            "and BLINK_MAIL_FROM for the deployment"
        )
    brand = brand_of(app, client, session)
    message = OutgoingEmail(
        to=to,
        subject=f"Test email for {brand.name} from Blink SMS",
        text=(
            f"This is a test email sent by {actor.label.split(':')[-1]} from the Blink SMS "
            f"console, through {server}.\n\nIf you can read it, {brand.name}'s activation "
            "emails can be delivered the same way.\n"
        ),
        from_name=brand.name,
        reply_to=brand.support_email,
    )
    try:
        sender.send(message)
    except EmailError as err:
        result = TestEmail(False, _plain_words(err, server, to))
    else:
        result = TestEmail(True, f"A test email to {to} was accepted by {server}.")
    audit.record(
        session,
        "client.mail_tested",
        actor=actor,
        client_id=client.id,
        to=to,
        ok=result.ok,
        server=server,
    )
    session.commit()
    return result
