"""The README's onboarding section, run as written: its commands are read from README.md
itself and run top to bottom in a fresh folder against a fresh SQLite database, so the
README cannot drift from the product."""

from __future__ import annotations

import os
import re
import secrets
import shlex
from pathlib import Path

import pytest
from click.testing import CliRunner

from blink_sms.app import create_app
from blink_sms.cli import cli
from blink_sms.context import Blink
from blink_sms.models import Invitation, utcnow
from blink_sms.services import enrollment
from directory_adapters.sandbox import SandboxDirectory

from .conftest import ACCOUNT_SID, AUTH_TOKEN
from .enrollment.smtp import SmtpServer
from .support.fake_twilio import FakeTwilio

README = Path(__file__).parent.parent / "README.md"
SECTION = "### Onboard a client and enrol its users"

# What a test cannot reach, and what stands in for it (README text -> text run): no
# Microsoft tenant here, so the sandbox directory plays Contoso's Entra ID; the sandbox has
# no secret to rotate, so its path goes through the same hidden prompt.
STAND_INS = {
    "--directory entra_id --setting tenant_id=... --setting client_id=... --secret client_secret": (
        "--directory sandbox --setting path=directory.sqlite"
    ),
    "set-directory contoso --secret client_secret": "set-directory contoso --secret path",
}
# What the operator types at a prompt, by command.
ANSWERS = {
    "clients set-directory": "directory.sqlite\n",
    "users remove": "y\n",
    "clients remove": "contoso\n",
}


def enrol(smtp: SmtpServer, twilio: FakeTwilio, number: str) -> None:
    """What jdoe does with the activation email (the README's prose, after the invite):
    open the link, give a mobile number, confirm the texted code."""
    token = smtp.mailbox.to("jdoe@contoso.example")[-1].link.rsplit("/", 1)[1]
    with create_app().app_context() as context:
        services: Blink = context.app.extensions["blink_sms"]
        with services.db.session() as session:
            invitation = enrollment.find_invitation(session, token, now=utcnow())
            assert isinstance(invitation, Invitation), invitation
            sent = enrollment.submit_number(
                services, session, invitation, number, "NL", now=utcnow()
            )
            assert isinstance(sent, enrollment.CodeSent), sent
            code = re.search(r"\b(\d{6})\b", twilio.bodies_to(number)[-1])
            assert code
            bound = enrollment.verify_code(services, session, invitation, code[1], now=utcnow())
            assert isinstance(bound, enrollment.Bound), bound
        services.db.dispose()


def readme_commands() -> list[str]:
    """The ``sh`` blocks of the onboarding section, one command a line, comments gone."""
    text = README.read_text()
    section = text[text.index(SECTION) :]
    section = re.split(r"\n##+ ", section[len(SECTION) :])[0]
    blocks = re.findall(r"```sh\n(.*?)```", section, re.DOTALL)
    assert blocks, f"no sh block in the README's {SECTION!r}"
    joined = "\n".join(blocks).replace("\\\n", " ")
    return [
        " ".join(line.split())
        for line in joined.splitlines()
        if line.strip() and not line.startswith("#")
    ]


def test_the_readme_onboarding_commands_run_as_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, smtp: SmtpServer, twilio: FakeTwilio
) -> None:
    monkeypatch.chdir(tmp_path)
    directory = SandboxDirectory(tmp_path / "directory.sqlite")
    directory.add_user("jdoe", "Jan Doe", email="jdoe@contoso.example", groups=["SSPR users"])
    for name in os.environ:
        if name.startswith("BLINK_"):
            monkeypatch.delenv(name)
    env = {
        "BLINK_SECRET_KEY": secrets.token_urlsafe(32),
        "BLINK_DATABASE_URL": f"sqlite:///{tmp_path / 'blink.sqlite'}",
        "BLINK_SMTP_URL": smtp.url,
        "BLINK_MAIL_FROM": "reset@msp.example",
        "BLINK_PUBLIC_URL": "https://sms.example.com",
        "BLINK_TWILIO_ACCOUNT_SID": ACCOUNT_SID,
        "BLINK_TWILIO_AUTH_TOKEN": AUTH_TOKEN,
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    commands = readme_commands()
    assert len(commands) > 10
    unused = dict(STAND_INS)
    for written in commands:
        line = written
        for readme_text, stand_in in STAND_INS.items():
            if readme_text in line:
                line = line.replace(readme_text, stand_in)
                unused.pop(readme_text, None)
        args = shlex.split(line, comments=True)
        assert args[0] == "blink-sms", line
        answer = next((a for cmd, a in ANSWERS.items() if " ".join(args[1:3]) == cmd), None)
        result = CliRunner().invoke(cli, args[1:], input=answer)
        assert result.exit_code == 0, f"{line}\n{result.output}"
        if args[1:3] == ["users", "invite"]:
            enrol(smtp, twilio, "+31612345678")
    assert not unused, f"the README no longer says {list(unused)}: update STAND_INS"
