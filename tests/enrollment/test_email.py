"""The activation email job over real SMTP: TLS, refused addresses, an unreachable server."""

from __future__ import annotations

from pathlib import Path

import pytest

from blink_sms.actors import COMMAND_LINE
from blink_sms.context import Blink
from blink_sms.messaging.email import EmailError, OutgoingEmail, SmtpSender
from blink_sms.models import User, UserStatus
from blink_sms.services import invitations
from tests.conftest import World, wait_for_jobs
from tests.support.services import free_port

from .conftest import MAIL_FROM, invitation_of
from .smtp import SmtpServer, self_signed

MESSAGE = OutgoingEmail(to="ann@contoso.example", subject="Hello", text="Plain", html="<p>Rich</p>")


def test_smtp_sender_upgrades_with_starttls_and_sends_text_and_html(tmp_path: Path) -> None:
    server_context, client_context = self_signed(tmp_path)
    server = SmtpServer(tls=server_context)
    try:
        sender = SmtpSender(server.url, MAIL_FROM, ssl_context=client_context)
        message_id = sender.send(MESSAGE)
        [received] = server.mailbox.messages
        assert received.tls, "the message went over a connection without TLS"
        assert received.message["Message-ID"] == message_id
        assert received.text.strip() == "Plain" and "<p>Rich</p>" in received.html
    finally:
        server.stop()


def test_smtp_sender_refuses_a_certificate_it_does_not_trust(tmp_path: Path) -> None:
    server_context, _ = self_signed(tmp_path)
    server = SmtpServer(tls=server_context)
    try:
        with pytest.raises(EmailError) as caught:
            SmtpSender(server.url, MAIL_FROM).send(MESSAGE)
        assert not caught.value.permanent  # maybe a transient TLS problem: retried
        assert server.mailbox.messages == []
    finally:
        server.stop()


def test_smtp_sender_will_not_send_in_clear_to_a_remote_server() -> None:
    # 127.0.0.2 is loopback to the kernel but not "this machine" to the sender's rule.
    server = SmtpServer(host="127.0.0.2")
    try:
        with pytest.raises(EmailError, match="STARTTLS") as caught:
            SmtpSender(server.url, MAIL_FROM).send(MESSAGE)
        assert caught.value.permanent
        assert server.mailbox.messages == []
    finally:
        server.stop()


def test_a_refused_address_is_a_permanent_failure_visible_on_the_invitation(
    services: Blink, world: World, smtp: SmtpServer
) -> None:
    persona = world.person("bounce", None, status=UserStatus.PENDING)
    smtp.mailbox.refuse.add(persona.user.email or "")
    with services.db.session() as session:
        user = session.get(User, persona.user.id)
        assert user is not None
        invitations.invite(services, session, COMMAND_LINE, user)
    wait_for_jobs(services)
    invitation = invitation_of(services, persona.user.id)
    assert invitation.email_status == "failed"
    assert invitation.email_error == "the mail server refused the address (SMTP 550)"
    assert invitation.token_hash is None


def test_an_unreachable_server_is_retried_then_reported(
    services: Blink, world: World, smtp: SmtpServer
) -> None:
    services.email = SmtpSender(f"smtp://127.0.0.1:{free_port()}", MAIL_FROM, timeout=2)
    persona = world.person("offline", None, status=UserStatus.PENDING)
    with services.db.session() as session:
        user = session.get(User, persona.user.id)
        assert user is not None
        invitations.invite(services, session, COMMAND_LINE, user)
    wait_for_jobs(services)
    invitation = invitation_of(services, persona.user.id)
    assert invitation.email_status == "failed"
    assert invitation.email_error == "cannot reach the mail server (ConnectionRefusedError)"


def test_ssl_context_is_the_system_store_by_default() -> None:
    sender = SmtpSender("smtps://mail.example.com", MAIL_FROM)
    assert sender.implicit_tls and sender.port == 465
    assert sender.host == "mail.example.com"
