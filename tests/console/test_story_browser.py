"""The whole console story in real Chromium, from the first account to the audit trail.

The first MSP owner comes from the command line (``blink-sms admins create``, run with
click's runner against the test's database); everything after that is clicked in
Debian's Chromium through Playwright: the set-up link, a password, an authenticator
app (pyotp stands in for it), signing out and in again, a sandbox client and an Active
Directory client (the real Samba DC) added with the wizard and its "Test connection",
a group imported, a user invited (the email reaches a real SMTP server) who activates
on a phone-sized second browser, then "Push a reset", "Unlock" and "Reset User" on the
user's page, and finally the client's audit trail showing each of those steps.

The app runs on a werkzeug thread of this process, so the fake Twilio (``responses``)
catches its REST calls and the in-process job queue can be waited for. A screenshot of
every page goes to $BLINK_SCREENSHOTS (or the test's temp folder).
"""

from __future__ import annotations

import os
import re
import secrets
import time
from collections.abc import Iterator
from pathlib import Path

import pyotp
import pytest
from click.testing import CliRunner
from flask import Flask
from playwright.sync_api import (
    Browser,
    BrowserContext,
    Locator,
    Page,
    ViewportSize,
    expect,
)
from sqlalchemy import select

from blink_sms.cli import cli
from blink_sms.context import Blink
from blink_sms.models import Admin, Client, User, UserStatus
from blink_sms.settings import Settings
from directory_adapters.sandbox import SandboxDirectory
from tests.conftest import GATEWAY, wait_for_jobs
from tests.directory_adapters.samba import SambaDC
from tests.enrollment.smtp import SmtpServer
from tests.enrollment.test_browser import PHONE, shoot
from tests.support.fake_twilio import FakeTwilio
from tests.support.live import launched_chromium, serving
from tests.support.sandbox_probe import SandboxProbe
from tests.support.services import free_port

EMAIL = "owner@msp.example"
PASSWORD = "correct horse battery staple"
MAIL_FROM = "reset@msp.example"
MOBILE = "+31612345678"
ACTIVATION = "Set up password reset by text for your Contoso account"
SETUP_LINK = re.compile(r"set-up link for owner@msp\.example \(MSP owner\): (\S+)")
SIX_DIGITS = re.compile(r"\b(\d{6})\b")
ONE_TIME_PASSWORD = re.compile(r"password: (\S+)")
DESKTOP: ViewportSize = {"width": 1280, "height": 900}


# --- the servers the story needs --------------------------------------------------------------


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with launched_chromium() as launched:
        yield launched


@pytest.fixture
def port() -> int:
    return free_port()


@pytest.fixture
def settings(settings: Settings, port: int, smtp: SmtpServer) -> Settings:
    # Set-up and activation links use the address the browser reaches.
    return settings.with_changes(
        public_url=f"http://127.0.0.1:{port}", smtp_url=smtp.url, mail_from=MAIL_FROM
    )


@pytest.fixture
def live(app: Flask, port: int) -> Iterator[str]:
    with serving(app, port):
        yield f"http://127.0.0.1:{port}"


@pytest.fixture
def shots(tmp_path: Path) -> Path:
    folder = Path(os.environ.get("BLINK_SCREENSHOTS") or tmp_path / "screenshots") / "console"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture
def directory(tmp_path: Path) -> SandboxDirectory:
    """Contoso's sandbox directory: three people in Sales, one in Support."""
    sandbox = SandboxDirectory(tmp_path / "contoso.sqlite")
    for username, group in (("dana", "Sales"), ("erik", "Sales"), ("fay", "Sales")):
        sandbox.add_user(
            username,
            username.title(),
            email=f"{username}@contoso.example",
            password="Start!Pass" + secrets.token_hex(3),
            groups=[group],
        )
    sandbox.add_user("gus", "Gus", email="gus@contoso.example", groups=["Support"])
    return sandbox


@pytest.fixture
def northwind_ou(samba_dc: SambaDC) -> str:
    """An OU of the Samba DC with one user in it (so the diagnosis can check rights)."""
    ou = samba_dc.add_ou(f"Story{secrets.token_hex(3)}")
    samba_dc.add_user(f"nw{secrets.token_hex(4)}", ou, "Own!Passw0rd-" + secrets.token_hex(3))
    return ou


# --- helpers ------------------------------------------------------------------------------------


def create_first_owner(settings: Settings, live: str) -> str:
    """``blink-sms admins create`` against the test's database; returns the printed link."""
    env: dict[str, str | None] = {name: None for name in os.environ if name.startswith("BLINK_")}
    env |= {
        "BLINK_ENV": "test",
        "BLINK_SECRET_KEY": settings.secret_key,
        "BLINK_DATABASE_URL": settings.database_url,
        "BLINK_PUBLIC_URL": live,
    }
    result = CliRunner().invoke(
        cli, ["admins", "create", "--email", EMAIL, "--role", "msp-owner"], env=env
    )
    assert result.exit_code == 0, result.output
    match = SETUP_LINK.search(result.output)
    assert match, result.output
    return match.group(1)


def earlier_code(key: str) -> str:
    """The app's code of the previous time step (accepted: one step either side counts).

    Enrolling with it leaves the current step unspent, so signing in again right away
    can use the code the app shows now: no waiting for the next 30 s step. Just before
    a step boundary the server could already be a step further, so wait that moment out.
    """
    left = 30 - time.time() % 30
    if left < 1.5:
        time.sleep(left + 0.1)
    return pyotp.TOTP(key).at(int(time.time()) - 30)


def texts_to(twilio: FakeTwilio, number: str, pattern: re.Pattern[str]) -> list[str]:
    return [body for body in twilio.bodies_to(number) if pattern.search(body)]


def sign_in(page: Page, live: str, key: str, spent: str) -> None:
    """Password, then the second factor: the spent code is refused, the newest works."""
    page.goto(f"{live}/admin/sign-in")
    page.get_by_label("Email").fill(EMAIL)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(re.compile(r"/admin/sign-in/verify"))
    page.get_by_label("Code from your authenticator app").fill(spent)
    page.get_by_role("button", name="Continue").click()
    expect(page.get_by_role("alert")).to_contain_text("That code did not work")
    page.get_by_label("Code from your authenticator app").fill(pyotp.TOTP(key).now())
    page.get_by_role("button", name="Continue").click()
    expect(page.get_by_role("heading", name="Clients", level=1)).to_be_visible()


def client_nav(page: Page, name: str) -> Locator:
    return page.get_by_role("navigation", name=name)


# --- the story ----------------------------------------------------------------------------------


def test_an_msp_owner_sets_up_clients_users_and_resets_in_the_console(
    live: str,
    browser: Browser,
    settings: Settings,
    services: Blink,
    twilio: FakeTwilio,
    smtp: SmtpServer,
    directory: SandboxDirectory,
    samba_dc: SambaDC,
    northwind_ou: str,
    shots: Path,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    smtp.mailbox.messages.clear()
    monkeypatch.chdir(tmp_path)  # no .env file of the checkout reaches the command

    # 1. The first admin, from the command line: the printed link points at this server.
    link = create_first_owner(settings, live)
    assert link.startswith(f"{live}/admin/setup/")

    context = browser.new_context(viewport=DESKTOP, locale="en-US")
    page = context.new_page()

    # 2. Set-up link → password → authenticator app → recovery codes.
    page.goto(link)
    expect(page.get_by_role("heading", name="Welcome to Blink SMS")).to_be_visible()
    expect(page.get_by_role("main")).to_contain_text(EMAIL)
    shoot(page, shots, "01-setup")
    page.get_by_label("New password").fill(PASSWORD)
    page.get_by_label("The same password again").fill(PASSWORD)
    page.get_by_role("button", name="Set password").click()
    expect(page).to_have_url(f"{live}/admin/account/two-factor")
    expect(page.get_by_text("Your password is set.")).to_be_visible()
    expect(page.get_by_text("Your role needs a second factor")).to_be_visible()
    expect(page.get_by_role("heading", name="Set up your authenticator app")).to_be_visible()
    shoot(page, shots, "02-two-factor")
    key = page.locator(".secret").inner_text().strip()
    assert re.fullmatch(r"[A-Z2-7]{16,}", key), key
    enrolled_with = earlier_code(key)
    page.get_by_label("6-digit code").fill(enrolled_with)
    page.get_by_role("button", name="Turn on two-factor sign-in").click()
    expect(page.get_by_role("heading", name="Your recovery codes")).to_be_visible()
    expect(page.locator("ul.codes li")).to_have_count(10)
    shoot(page, shots, "03-recovery-codes")
    page.get_by_role("link", name="I have saved them").click()
    expect(page.get_by_role("heading", name="Clients", level=1)).to_be_visible()
    expect(page.get_by_text("No clients yet.")).to_be_visible()
    shoot(page, shots, "04-no-clients")

    # Sign out, and in again with the password and the app's newest code (not the one
    # that confirmed the app: a time step is never accepted twice).
    page.get_by_role("button", name="Sign out", exact=True).click()
    expect(page).to_have_url(f"{live}/admin/sign-in")
    expect(page.get_by_text("You are signed out.")).to_be_visible()
    page.goto(f"{live}/admin/")
    expect(page).to_have_url(re.compile(r"/admin/sign-in\?next="))  # signed out for real
    sign_in(page, live, key, spent=enrolled_with)
    with services.db.session() as session:
        owner = session.execute(select(Admin)).scalar_one()
        assert owner.email == EMAIL and owner.last_sign_in_at is not None

    # 3a. A sandbox client through the wizard, its connection tested before saving.
    page.get_by_role("link", name="Add a client").click()
    expect(page.get_by_role("heading", name="Add a client")).to_be_visible()
    page.get_by_label("Sandbox directory (demo and tests)").check()
    page.get_by_label(re.compile(r"^Name\b")).fill("Contoso")
    page.get_by_label("Gateway number").fill(GATEWAY)
    page.get_by_label("Phone region").fill("NL")  # Dana's Dutch mobile may get the code
    page.get_by_label("Support contact").fill("Contoso IT, +1 555 0100")
    shoot(page, shots, "05-new-client-step1")
    page.get_by_role("button", name="Next: directory settings").click()
    expect(page.get_by_role("heading", name="Add Contoso")).to_be_visible()
    page.get_by_label("Directory file").fill(str(directory.path))
    page.get_by_role("button", name="Test connection").click()
    expect(page.get_by_role("heading", name="Connection test: no problems")).to_be_visible()
    expect(page.locator(".findings")).to_contain_text("the directory answers to these settings")
    shoot(page, shots, "06-new-client-sandbox-tested")
    page.get_by_role("button", name="Save the client").click()
    expect(page).to_have_url(f"{live}/admin/clients/contoso")
    expect(page.get_by_text("Contoso added. Next: import the users")).to_be_visible()
    shoot(page, shots, "07-client-contoso")

    # 3b. An Active Directory client: the test shows what is wrong, in words, then passes.
    page.goto(f"{live}/admin/")
    page.get_by_role("link", name="Add a client").click()
    page.get_by_label("Active Directory (on premises, LDAPS)").check()
    page.get_by_label(re.compile(r"^Name\b")).fill("Northwind")
    page.get_by_label("Support contact").fill("Northwind IT")
    page.get_by_role("button", name="Next: directory settings").click()
    expect(page.get_by_role("heading", name="Add Northwind")).to_be_visible()
    page.get_by_label("Domain controllers").fill(samba_dc.host)
    page.get_by_label(re.compile(r"^Service account\W*$")).fill(samba_dc.admin_dn)
    page.get_by_label(re.compile(r"^Service account password")).fill(samba_dc.admin_password)
    page.get_by_label("Base DN").fill(samba_dc.base_dn)
    page.get_by_label("Managed OUs and groups").fill(northwind_ou)
    page.get_by_role("button", name="Test connection").click()
    findings = page.locator(".findings")
    expect(
        page.get_by_role("heading", name=re.compile(r"Connection test: \d+ problems?"))
    ).to_be_visible()
    expect(findings).to_contain_text("the certificate is not trusted")
    expect(findings).to_contain_text("set 'ca_file' or 'ca_pem'")
    # The password typed before the test is kept (sealed), never shown back.
    expect(page.get_by_text("Typed already and kept (encrypted)")).to_be_visible()
    assert samba_dc.admin_password not in page.content()
    shoot(page, shots, "08-new-client-ad-untrusted")
    page.get_by_text("Advanced settings").click()
    page.get_by_label("CA certificate", exact=True).fill(Path(samba_dc.ca_file).read_text())
    page.get_by_role("button", name="Test connection").click()
    expect(page.get_by_role("heading", name="Connection test: no problems")).to_be_visible()
    expect(findings).to_contain_text("certificate verified")
    expect(findings).to_contain_text("signs in")
    shoot(page, shots, "09-new-client-ad-tested")
    page.get_by_role("button", name="Save the client").click()
    expect(page).to_have_url(f"{live}/admin/clients/northwind")
    expect(page.get_by_text("Northwind added.")).to_be_visible()
    shoot(page, shots, "10-client-northwind")
    with services.db.session() as session:
        kinds = dict(session.execute(select(Client.slug, Client.directory_kind)).all())
    assert kinds == {"contoso": "sandbox", "northwind": "active_directory"}

    # 4. Import Contoso's Sales group: search, preview the count, import.
    page.goto(f"{live}/admin/clients/contoso")
    client_nav(page, "Contoso").get_by_role("link", name="Import").click()
    page.get_by_label("Find a group").fill("sal")
    page.get_by_role("button", name="Search").click()
    sales = page.get_by_role("row").filter(has_text="Sales")
    expect(sales).to_have_count(1)
    expect(page.get_by_role("row").filter(has_text="Support")).to_have_count(0)
    shoot(page, shots, "11-import-search")
    sales.get_by_role("link", name="Preview").click()
    expect(page.get_by_role("heading", name="Group Sales")).to_be_visible()
    expect(page.get_by_text("3 users in the directory.")).to_be_visible()
    shoot(page, shots, "12-import-preview")
    page.get_by_role("button", name="Import 3 users").click()
    expect(page).to_have_url(f"{live}/admin/clients/contoso/users")
    expect(page.get_by_text("Imported Sales: 3 new, 0 updated, 0 unchanged")).to_be_visible()
    expect(page.get_by_role("row")).to_have_count(4)  # the header and three users
    shoot(page, shots, "13-users")

    # 5. Invite Dana: the email reaches the SMTP server; she activates on her phone.
    page.get_by_role("link", name="Dana").click()
    expect(page.get_by_role("heading", name=re.compile(r"^Dana"))).to_be_visible()
    page.get_by_role("button", name="Send activation email").click()
    expect(page.get_by_text("Activation email queued for dana@contoso.example")).to_be_visible()
    user_page = page.url
    wait_for_jobs(services)
    [mail] = smtp.mailbox.to("dana@contoso.example", subject=ACTIVATION)
    assert mail.link.startswith(f"{live}/enroll/")
    page.reload()
    expect(page.locator("dl.facts")).to_contain_text("sent")
    shoot(page, shots, "14-user-invited")

    phone: BrowserContext = browser.new_context(
        viewport=PHONE, device_scale_factor=2, is_mobile=True, has_touch=True, locale="en-US"
    )
    handset = phone.new_page()
    handset.set_content(mail.html)  # the email as the phone's mail app shows it
    shoot(handset, shots, "15-phone-email")
    handset.goto(mail.link)
    expect(handset).to_have_title(re.compile("Add your mobile number"))
    handset.get_by_label("Mobile number").fill("+31 6 12345678")
    handset.get_by_role("button", name="Text me a code").click()
    expect(handset).to_have_url(mail.link + "/code")
    shoot(handset, shots, "16-phone-code")
    wait_for_jobs(services)
    [code_text] = texts_to(twilio, MOBILE, SIX_DIGITS)
    code = SIX_DIGITS.search(code_text)
    assert code, code_text
    handset.get_by_label("Code").fill(code.group(1))
    handset.get_by_role("button", name="Confirm").click()
    expect(handset).to_have_url(f"{live}/enroll/done")
    expect(handset.get_by_role("heading", level=1)).to_have_text("Your phone is set up")
    shoot(handset, shots, "17-phone-done")
    phone.close()
    with services.db.session() as session:
        dana = session.execute(select(User).where(User.username == "dana")).scalar_one()
        assert (dana.phone, dana.status) == (MOBILE, UserStatus.ACTIVE)
    wait_for_jobs(services)
    registered = "A phone was registered for your password resets"
    assert smtp.mailbox.to("dana@contoso.example", subject=registered)

    # 6a. Push a reset: a one-time password by text, which the directory says must change.
    page.goto(user_page)
    expect(page.locator("dl.facts")).not_to_contain_text("none registered")
    page.get_by_role("button", name=re.compile(r"^Push a reset")).click()
    expect(page.get_by_text("Reset queued: dana gets a one-time password by text")).to_be_visible()
    wait_for_jobs(services)
    [password_text] = texts_to(twilio, MOBILE, ONE_TIME_PASSWORD)
    password = ONE_TIME_PASSWORD.search(password_text)
    assert password, password_text
    probe = SandboxProbe(directory)
    assert directory.must_change("dana")
    assert probe.sign_in("dana", password.group(1)) == "must_change"
    page.reload()
    history = page.get_by_role("table")
    expect(history.get_by_role("row").filter(has_text="reset")).to_contain_text("done")
    shoot(page, shots, "18-user-reset-pushed")

    # 6b. Dana locked herself out: Unlock, and a text says so.
    probe.lock("dana")
    page.get_by_role("button", name="Unlock the account").click()
    expect(page.get_by_text("Unlock queued: dana gets a text when it is done")).to_be_visible()
    wait_for_jobs(services)
    assert not directory.is_locked("dana")
    assert twilio.bodies_to(MOBILE)[-1] == "Your account is unlocked. You can sign in again."
    page.reload()
    expect(history.get_by_role("row").filter(has_text="unlock")).to_contain_text("done")
    shoot(page, shots, "19-user-unlocked")

    # 6c. Reset User: the phone is forgotten and a new activation email goes out.
    page.get_by_role("button", name=re.compile(r"^Reset User")).click()
    expect(
        page.get_by_text("dana: phone unbound, new activation email queued for dana@contoso")
    ).to_be_visible()
    expect(page.locator("dl.facts")).to_contain_text("none registered")
    wait_for_jobs(services)
    first, second = smtp.mailbox.to("dana@contoso.example", subject=ACTIVATION)
    assert second.link != first.link and second.link.startswith(f"{live}/enroll/")
    with services.db.session() as session:
        dana = session.execute(select(User).where(User.username == "dana")).scalar_one()
        assert dana.phone is None and dana.status is not UserStatus.ACTIVE
    shoot(page, shots, "20-user-reset")

    # 7. Contoso's audit trail shows each step, by whom.
    client_nav(page, "Contoso").get_by_role("link", name="Audit").click()
    expect(page.get_by_role("heading", name="Audit trail of Contoso")).to_be_visible()
    for action in (
        "client.created",
        "user.imported",
        "invitation.created",
        "invitation.email_sent",
        "enrollment.phone_bound",
        "reset.requested",
        "reset.completed",
        "unlock.requested",
        "unlock.completed",
        "user.phone_unbound",
    ):
        expect(page.locator(f'tr[data-action="{action}"]').first).to_be_visible()
    expect(page.locator('tr[data-action="user.imported"]')).to_have_count(3)
    expect(page.locator('tr[data-action="users.import_run"]')).to_contain_text("sales")
    expect(page.locator('tr[data-action="client.created"]')).to_contain_text(EMAIL)
    expect(page.locator('tr[data-action="reset.requested"]')).to_contain_text(EMAIL)
    expect(page.locator('tr[data-action="user.phone_unbound"]')).to_contain_text("dana")
    shoot(page, shots, "21-audit-contoso")
    # The MSP-wide trail has the rest: the account made on the command line, Northwind.
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Audit").click()
    created = page.locator('tr[data-action="admin.created"]')
    expect(created).to_contain_text("the command line")
    northwind = page.locator('tr[data-action="client.created"]').filter(has_text="Northwind")
    expect(northwind).to_have_count(1)
    shoot(page, shots, "22-audit-all")
    context.close()
