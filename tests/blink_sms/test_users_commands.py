"""``blink-sms users``: import from the directory, invite, Reset User, set-email, list."""

from __future__ import annotations

import csv
import io
import json
import os
import secrets
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from sqlalchemy import create_engine, text

from blink_sms.cli import cli
from directory_adapters.sandbox import SandboxDirectory
from tests.enrollment.smtp import SmtpServer

KEY = secrets.token_urlsafe(32)
Run = Callable[..., Result]


@pytest.fixture
def smtp() -> Iterator[SmtpServer]:
    server = SmtpServer()
    yield server
    server.stop()


@pytest.fixture
def directory(tmp_path: Path) -> SandboxDirectory:
    sandbox = SandboxDirectory(tmp_path / "directory.sqlite")
    sandbox.add_user("ann", "Ann Archer", email="ann@contoso.example", groups=["Sales"])
    sandbox.add_user("ben", "Ben Baker", email="ben@contoso.example", groups=["Sales"], ou="Staff")
    sandbox.add_user("cid", "Cid Cole", groups=["Sales"])  # no email
    sandbox.add_user(
        "dee", "Dee Dunn", email="dee@contoso.example", disabled=True, groups=["Sales"]
    )
    sandbox.add_user("adm", "Admin", email="adm@contoso.example", protected=True, groups=["Sales"])
    sandbox.add_user("eve", "Eve Ellis", email="eve@contoso.example", ou="Staff/Support")
    return sandbox


@pytest.fixture
def run(
    database_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    smtp: SmtpServer,
    directory: SandboxDirectory,
) -> Run:
    monkeypatch.chdir(tmp_path)
    env: dict[str, str | None] = {k: None for k in os.environ if k.startswith("BLINK_")}
    env |= {
        "BLINK_SECRET_KEY": KEY,
        "BLINK_DATABASE_URL": database_url,
        "BLINK_SMTP_URL": smtp.url,
        "BLINK_MAIL_FROM": "reset@msp.example",
        "BLINK_PUBLIC_URL": "https://sms.example.com",
        "BLINK_JOB_RETRY_INTERVALS": "0",
    }

    def invoke(*args: str) -> Result:
        return CliRunner().invoke(cli, list(args), env=env)

    added = invoke(
        "clients", "add", "--slug", "contoso", "--name", "Contoso", "--directory", "sandbox",
        "--setting", f"path={directory.path}", "--sender", "+15005550006", "--region", "NL",
    )  # fmt: skip
    assert added.exit_code == 0, added.output
    return invoke


def rows(database_url: str, sql: str) -> list[tuple[object, ...]]:
    engine = create_engine(database_url)
    with engine.connect() as connection:
        result = [tuple(row) for row in connection.execute(text(sql))]
    engine.dispose()
    return result


def test_import_creates_users_once_and_reports_what_it_skipped(run: Run, database_url: str) -> None:
    first = run("users", "import", "--client", "contoso", "--group", "Sales")
    assert first.exit_code == 0, first.output
    assert "2 new, 0 updated, 0 unchanged; skipped: 1 without email, 1 disabled, 1 protected" in (
        first.output
    )
    assert "skipped as protected: adm: protected" in first.output  # each one, and why
    again = run("users", "import", "--client", "contoso", "--all")
    assert again.exit_code == 0, again.output
    assert "1 new, 0 updated, 2 unchanged" in again.output  # eve joins, nobody duplicated
    assert rows(database_url, "SELECT username FROM users ORDER BY username") == [
        ("ann",),
        ("ben",),
        ("eve",),
    ]
    by_ou = run("users", "import", "--client", "contoso", "--ou", "Staff")
    assert "0 new, 0 updated, 2 unchanged" in by_ou.output


def test_import_updates_changed_users_and_refuses_a_bad_scope(
    run: Run, directory: SandboxDirectory, database_url: str
) -> None:
    run("users", "import", "--client", "contoso", "--all")
    with directory._transaction(guarded=False) as conn:
        conn.execute("UPDATE users SET display_name = 'Ann Archer-Smith' WHERE username = 'ann'")
    result = run("users", "import", "--client", "contoso", "--all")
    assert "0 new, 1 updated" in result.output
    assert rows(database_url, "SELECT display_name FROM users WHERE username = 'ann'") == [
        ("Ann Archer-Smith",)
    ]
    missing = run("users", "import", "--client", "contoso", "--group", "Nope")
    assert missing.exit_code == 1 and "no group 'Nope'" in missing.output
    both = run("users", "import", "--client", "contoso", "--all", "--ou", "Staff")
    assert both.exit_code == 2 and "exactly one of" in both.output


def test_invite_sends_the_activation_email_and_list_shows_the_status(
    run: Run, smtp: SmtpServer
) -> None:
    run("users", "import", "--client", "contoso", "--all")
    invited = run("users", "invite", "--client", "contoso", "--user", "ann")
    assert invited.exit_code == 0, invited.output
    [mail] = smtp.mailbox.to("ann@contoso.example")
    assert "https://sms.example.com/enroll/" in mail.text
    listing = run("users", "list", "--client", "contoso")
    lines = {line.split()[0]: line for line in listing.output.splitlines()[1:]}
    assert " invited " in lines["ann"] + " " and "pending" in lines["ben"]


def test_invite_all_pending_skips_the_active_and_the_freshly_invited(
    run: Run, smtp: SmtpServer
) -> None:
    run("users", "import", "--client", "contoso", "--all")
    run("users", "invite", "--client", "contoso", "--user", "ann")
    result = run("users", "invite", "--client", "contoso", "--all-pending")
    assert result.exit_code == 0, result.output
    assert result.stdout == "2 activation email(s) queued\n"
    assert "Inviting 2 users" in result.stderr  # the progress bar's label (no TTY, no bar)
    assert len(smtp.mailbox.to("ann@contoso.example")) == 1
    assert {m.rcpt_tos[0] for m in smtp.mailbox.messages} == {
        "ann@contoso.example",
        "ben@contoso.example",
        "eve@contoso.example",
    }


def test_a_bounced_email_is_visible_and_set_email_fixes_it(
    run: Run, smtp: SmtpServer, database_url: str
) -> None:
    run("users", "import", "--client", "contoso", "--all")
    smtp.mailbox.refuse.add("ben@contoso.example")
    run("users", "invite", "--client", "contoso", "--user", "ben")
    listing = run("users", "list", "--client", "contoso").output
    assert "email failed: the mail server refused the address (SMTP 550)" in listing
    bad = run("users", "set-email", "--client", "contoso", "--user", "ben", "--email", "nope")
    assert bad.exit_code == 1 and "not an email address" in bad.output
    fixed = run(
        "users", "set-email", "--client", "contoso", "--user", "ben", "--email", "ben@b.example"
    )
    assert fixed.exit_code == 0, fixed.output
    again = run("users", "invite", "--client", "contoso", "--all-pending")
    assert "activation email(s) queued" in again.output
    assert smtp.mailbox.to("ben@b.example")


def test_reset_user_unbinds_the_phone_and_sends_a_new_link(
    run: Run, smtp: SmtpServer, database_url: str
) -> None:
    run("users", "import", "--client", "contoso", "--all")
    engine = create_engine(database_url)
    with engine.begin() as connection:
        connection.execute(
            text("UPDATE users SET phone = '+31612345678', status = 'active' WHERE username='eve'")
        )
    engine.dispose()
    listed = run("users", "list", "--client", "contoso").output
    assert "+316******78" in listed and "+31612345678" not in listed
    refused = run("users", "invite", "--client", "contoso", "--user", "eve")
    assert refused.exit_code == 1 and "already active: use Reset User" in refused.output
    result = run("users", "reset-user", "--client", "contoso", "--user", "eve@contoso.example")
    assert result.exit_code == 0, result.output
    assert rows(database_url, "SELECT phone, status FROM users WHERE username = 'eve'") == [
        (None, "invited")
    ]
    assert smtp.mailbox.to("eve@contoso.example")
    unknown = run("users", "reset-user", "--client", "contoso", "--user", "zed")
    assert unknown.exit_code == 1 and "no single user 'zed'" in unknown.output


def test_branding_is_set_per_client_and_checked(run: Run, smtp: SmtpServer) -> None:
    bad = run("branding", "set", "--client", "contoso", "--color", "blue")
    assert bad.exit_code == 1 and "brand_color: must look like #1f5fbf" in bad.output
    result = run(
        "branding", "set", "--client", "contoso", "--name", "Northwind IT", "--color", "#0F766E",
        "--support-email", "help@northwind.example", "--link-hours", "48",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "#0f766e" in result.output and "48 hours" in result.output
    run("users", "import", "--client", "contoso", "--all")
    run("users", "invite", "--client", "contoso", "--user", "ann")
    [mail] = smtp.mailbox.to("ann@contoso.example")
    assert "Northwind IT" in mail.message["Subject"] and "2 days" in mail.text


def test_clients_edit_disable_and_remove_from_the_command_line(run: Run, database_url: str) -> None:
    edited = run("clients", "edit", "contoso", "--name", "Contoso Ltd", "--resets-per-hour", "5")
    assert edited.exit_code == 0, edited.output
    assert "changed name, resets_per_hour" in edited.output
    bad = run("clients", "edit", "contoso", "--sender", "call me")
    assert bad.exit_code == 1 and "sender_number: must be a phone number" in bad.output
    watched = run("clients", "edit", "contoso", "--no-lockout-watch", "--expiry-reminders",
                  "1,7", "--lockout-alert-email", "it@contoso.example")  # fmt: skip
    assert watched.exit_code == 0, watched.output
    assert rows(database_url, "SELECT lockout_watch, expiry_reminder_days FROM clients") == [
        (False, "7,1")
    ]
    too_many = run("clients", "edit", "contoso", "--expiry-reminders", "90")
    assert too_many.exit_code == 1 and "each from 1 to 60" in too_many.output
    assert run("clients", "disable", "contoso").output.endswith("contoso: disabled\n")
    assert run("clients", "disable", "contoso").output.endswith("contoso: already disabled\n")
    refused = run("users", "import", "--client", "contoso", "--all")
    assert refused.exit_code == 1 and "disabled" in refused.output
    assert run("clients", "disable", "contoso", "--enable").output.endswith("contoso: enabled\n")
    run("users", "import", "--client", "contoso", "--all")
    wrong = run("clients", "remove", "contoso", "--confirm", "contos")
    assert wrong.exit_code == 1 and "type the client's slug" in wrong.output
    assert rows(database_url, "SELECT count(*) FROM users") == [(3,)]
    removed = run("clients", "remove", "contoso", "--confirm", "contoso")
    assert removed.exit_code == 0, removed.output
    assert rows(database_url, "SELECT count(*) FROM users") == [(0,)]
    assert rows(database_url, "SELECT count(*) FROM clients") == [(0,)]
    actions = [a for (a,) in rows(database_url, "SELECT action FROM audit_events ORDER BY id")]
    assert actions[-1] == "client.removed" and "user.imported" in actions  # the trail stays


def test_set_directory_rotates_a_secret_without_printing_it(
    run: Run, database_url: str, directory: SandboxDirectory
) -> None:
    changed = run("clients", "set-directory", "contoso", "--setting", "latency_ms=5")
    assert changed.exit_code == 0, changed.output
    assert "changed latency_ms" in changed.output
    nothing = run("clients", "set-directory", "contoso", "--setting", f"path={directory.path}")
    assert "nothing changed" in nothing.output
    bad = run("clients", "set-directory", "contoso", "--setting", "latency_ms=-1")
    assert bad.exit_code == 1 and "directory_settings" in bad.output


def test_users_disable_and_remove_from_the_command_line(run: Run, database_url: str) -> None:
    run("users", "import", "--client", "contoso", "--all")
    disabled = run("users", "disable", "--client", "contoso", "--user", "ann")
    assert disabled.output.endswith("ann: disabled\n")
    assert rows(database_url, "SELECT status FROM users WHERE username = 'ann'") == [("disabled",)]
    refused = run("users", "invite", "--client", "contoso", "--user", "ann")
    assert refused.exit_code == 1 and "ann is disabled" in refused.output
    run("users", "disable", "--client", "contoso", "--user", "ann", "--enable")
    assert rows(database_url, "SELECT status FROM users WHERE username = 'ann'") == [("pending",)]
    removed = run("users", "remove", "--client", "contoso", "--user", "ann", "--yes")
    assert removed.output.endswith("ann: removed from the gateway\n")
    assert rows(database_url, "SELECT username FROM users ORDER BY username") == [
        ("ben",),
        ("eve",),
    ]
    pushed = run("users", "push-reset", "--client", "contoso", "--user", "ben")
    assert pushed.exit_code == 1 and "ben has no registered phone" in pushed.output
    unknown = run("users", "unlock", "--client", "contoso", "--user", "nobody")
    assert unknown.exit_code == 1 and "no single user 'nobody'" in unknown.output


def test_audit_shows_the_trail_and_exports_csv(run: Run) -> None:
    run("users", "import", "--client", "contoso", "--all")
    run("users", "invite", "--client", "contoso", "--user", "ann")
    shown = run("audit", "--client", "contoso", "--action", "invitation.*")
    assert shown.exit_code == 0, shown.output
    lines = [line for line in shown.output.splitlines() if "invitation." in line]
    assert len(lines) == 2 and all(" ann " in line for line in lines)
    assert "invitation.created" in lines[-1] and " cli " in lines[-1]  # newest first
    assert "user.imported" not in shown.output
    exported = run("audit", "--client", "contoso", "--csv")
    rows_out = [line for line in exported.output.splitlines() if line.count(",") > 3]
    assert rows_out[0].startswith("id,at_utc,client,")
    assert sum("user.imported" in line for line in rows_out) == 3
    bad = run("audit", "--since", "last week")
    assert bad.exit_code == 1 and "since: a date like" in bad.output
    unknown = run("audit", "--client", "nowhere")
    assert unknown.exit_code == 1 and "no such client" in unknown.output


def test_import_skips_invalid_emails_with_the_reason_and_reports_on_stderr(
    run: Run, directory: SandboxDirectory, database_url: str
) -> None:
    directory.add_user("fay", "Fay Fox", email="fay at contoso", ou="Staff")
    directory.add_user("gus", "Gus Gray", email="gus@contoso", ou="Staff")
    result = run("users", "import", "--client", "contoso", "--ou", "Staff")
    assert result.exit_code == 0, result.output
    # The progress bar's label is on stderr (no bar off a terminal); stdout is the summary.
    assert "Importing 4 users" in result.stderr
    assert result.stdout == "2 new, 0 updated, 0 unchanged; skipped: 2 with an invalid email\n"
    assert ("fay",) not in rows(database_url, "SELECT username FROM users")
    # A known user whose directory email turns invalid keeps the address that worked.
    with directory._transaction(guarded=False) as conn:
        conn.execute("UPDATE users SET email = 'broken' WHERE username = 'ben'")
    again = run("users", "import", "--client", "contoso", "--ou", "Staff")
    assert again.stdout == "0 new, 0 updated, 2 unchanged; skipped: 2 with an invalid email\n"
    assert rows(database_url, "SELECT email FROM users WHERE username = 'ben'") == [
        ("ben@contoso.example",)
    ]


def test_list_filters_by_state_and_search_in_table_csv_and_json(run: Run, smtp: SmtpServer) -> None:
    run("users", "import", "--client", "contoso", "--all")
    run("users", "invite", "--client", "contoso", "--user", "ann")
    invited = run("users", "list", "--client", "contoso", "--state", "invited", "--format", "json")
    assert invited.exit_code == 0, invited.output
    assert [(u["username"], u["email"]) for u in json.loads(invited.stdout)] == [
        ("ann", "ann@contoso.example")
    ]
    pending = run(
        "users", "list", "--client", "contoso", "--state", "not-invited", "--format", "csv"
    )
    assert list(csv.reader(io.StringIO(pending.stdout))) == [
        ["username", "name", "status", "phone", "email"],
        ["ben", "Ben Baker", "pending", "", "ben@contoso.example"],
        ["eve", "Eve Ellis", "pending", "", "eve@contoso.example"],
    ]
    found = run("users", "list", "--client", "contoso", "--search", "ellis")
    assert [line.split()[0] for line in found.stdout.splitlines()] == ["USER", "eve"]
    none = run("users", "list", "--client", "contoso", "--search", "nobody")
    assert none.stdout.startswith("no users match in contoso")
    wrong = run("users", "list", "--client", "contoso", "--state", "asleep")
    assert wrong.exit_code == 2 and "'asleep' is not one of" in wrong.stderr
