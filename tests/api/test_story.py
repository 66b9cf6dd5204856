"""A PSA runs a client's whole life through the API alone: onboard, import, invite;
the user enrolls on their phone; push a reset; export the audit trail; read the report."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from blink_sms.context import Blink
from blink_sms.models import utcnow
from blink_sms.settings import Settings
from directory_adapters.sandbox import SandboxDirectory
from tests.conftest import GATEWAY, wait_for_jobs
from tests.enrollment.conftest import MAIL_FROM, Walker, last_code
from tests.enrollment.smtp import SmtpServer
from tests.support.fake_twilio import FakeTwilio
from tests.support.sandbox_probe import SandboxProbe
from tests.support.worker import password_in

from .conftest import Api


@pytest.fixture
def settings(settings: Settings, smtp: SmtpServer) -> Settings:
    return settings.with_changes(smtp_url=smtp.url, mail_from=MAIL_FROM)


def test_onboard_import_invite_enroll_reset_audit_and_report_through_the_api(
    services: Blink, msp: Api, smtp: SmtpServer, twilio: FakeTwilio, tmp_path: Path
) -> None:
    directory = SandboxDirectory(tmp_path / "northwind.sqlite")
    directory.add_user("nancy", "Nancy Davolio", email="nancy@northwind.example", mobile=None,
                       password="Old!Pass123")  # fmt: skip
    directory.add_user("andrew", "Andrew Fuller", email="andrew@northwind.example", mobile=None,
                       password="Old!Pass456")  # fmt: skip

    # The PSA registers where events go; the secret comes once.
    hook = msp.post("/api/v1/webhooks", json={"url": "https://psa.example/blink", "client": None})
    assert hook.status_code == 201 and hook.get_json()["secret"].startswith("whsec_")
    listed = msp.get("/api/v1/webhooks").get_json()["items"]
    assert [h["url"] for h in listed] == ["https://psa.example/blink"] and "secret" not in listed[0]

    # Onboard.
    made = msp.post(
        "/api/v1/clients",
        json={
            "slug": "northwind",
            "name": "Northwind Traders",
            "directory": {"kind": "sandbox", "settings": {"path": str(directory.path)}},
            "sender_number": GATEWAY,
            "language": "en",
        },
        headers={"Idempotency-Key": "onboard-northwind"},
    )
    assert made.status_code == 201, made.get_data(as_text=True)
    assert made.get_json()["slug"] == "northwind" and made.get_json()["disabled"] is False
    assert "path" not in made.get_data(as_text=True)  # directory settings are never returned
    assert msp.post("/api/v1/clients/northwind/test-connection").get_json()["ok"] is True

    # Import everyone, then invite everyone who is not active yet.
    imported = msp.post("/api/v1/clients/northwind/imports", json={"everyone": True}).get_json()
    assert imported["new"] == 2
    users = msp.get("/api/v1/clients/northwind/users").get_json()["items"]
    assert {u["username"] for u in users} == {"nancy", "andrew"}
    assert {u["status"] for u in users} == {"pending"}
    invited = msp.post("/api/v1/clients/northwind/invitations").get_json()
    assert invited == {"queued": 2, "refused": []}
    wait_for_jobs(services)
    [mail] = smtp.mailbox.to("nancy@northwind.example")

    # Nancy enrolls on her phone (the enrollment pages, not the API).
    walker = Walker(msp.http, urlsplit(mail.link).path)
    assert walker.number("+14155550177").status_code in (200, 302, 303)
    walker.code(last_code(twilio, "+14155550177"))
    nancy = next(u for u in users if u["username"] == "nancy")
    nancy = msp.get(f"/api/v1/clients/northwind/users/{nancy['id']}").get_json()
    assert nancy["status"] == "active" and nancy["phone"].endswith("77")
    assert "4155550177" not in json.dumps(nancy)  # masked

    # Push a reset (a PSA retries: one text).
    push = f"/api/v1/clients/northwind/users/{nancy['id']}/push-reset"
    for _ in range(2):
        answer = msp.post(push, headers={"Idempotency-Key": "ticket-1001"})
        assert answer.status_code == 202, answer.get_data(as_text=True)
        wait_for_jobs(services)
    [text] = [b for b in twilio.bodies_to("+14155550177") if "password: " in b]
    password = password_in(text)
    assert SandboxProbe(directory).sign_in("nancy", password) == "must_change"

    # The audit trail, exported as JSON lines and as CSV.
    exported = msp.get("/api/v1/audit-events/export?format=jsonl&client=northwind")
    assert exported.status_code == 200 and exported.mimetype == "application/jsonl"
    events = [json.loads(line) for line in exported.get_data(as_text=True).splitlines()]
    actions = {event["action"] for event in events}
    assert {"client.created", "users.import_run", "invitation.created",
            "enrollment.phone_bound", "reset.requested", "reset.completed"} <= actions  # fmt: skip
    assert {event["client"] for event in events} == {"northwind"}
    assert password not in exported.get_data(as_text=True)
    table = msp.get("/api/v1/audit-events/export?format=csv&client=northwind")
    rows = list(csv.reader(io.StringIO(table.get_data(as_text=True))))
    assert len(rows) == len(events) + 1  # a header, then the same events
    page = msp.get("/api/v1/audit-events?client=northwind&action=reset.*").get_json()
    assert [e["action"] for e in page["items"]] == ["reset.completed", "reset.requested"]

    # The reset went out to the PSA too (the outbox; the scheduler sends it).
    mine = msp.get(f"/api/v1/webhooks/{hook.get_json()['id']}").get_json()
    assert mine["last_delivery"]["event"] == "reset.completed"

    # This month's report.
    month = f"{utcnow():%Y-%m}"
    report = msp.get(f"/api/v1/clients/northwind/reports/monthly?month={month}").get_json()
    assert report["resets"] == {"self_service": 0, "admin": 1, "total": 1}
    assert report["users"] == {"imported": 2, "enrolled": 1, "enrolled_this_month": 1}
    assert report["sms"]["sent"] >= 2  # the code and the password
    as_csv = msp.get(f"/api/v1/clients/northwind/reports/monthly.csv?month={month}")
    assert as_csv.status_code == 200 and as_csv.mimetype == "text/csv"

    # GDPR: what is held about Nancy; Andrew erased, his trail kept under a pseudonym.
    held = msp.post(f"/api/v1/clients/northwind/users/{nancy['id']}/export").get_json()
    assert held["user"]["username"] == "nancy"
    assert {"enrollment.phone_bound", "reset.completed"} <= {
        event["action"] for event in held["audit_events"]
    }
    andrew = next(u for u in users if u["username"] == "andrew")
    gone = msp.post(f"/api/v1/clients/northwind/users/{andrew['id']}/erase")
    assert gone.status_code == 200 and gone.get_json()["pseudonym"] == f"erased-{andrew['id']}"
    after = msp.get(f"/api/v1/clients/northwind/users/{andrew['id']}").get_json()
    assert after["username"] == f"erased-{andrew['id']}" and after["email"] is None
    trail = msp.get(f"/api/v1/audit-events?user_id={andrew['id']}").get_json()["items"]
    assert "invitation.created" in {event["action"] for event in trail}
    assert "andrew" not in json.dumps(trail).lower()
