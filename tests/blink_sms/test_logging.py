"""Log redaction: secrets dropped by key, phones masked, tracebacks without locals."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest
import structlog

from blink_sms import logging as blink_logging
from blink_sms.logging import configure, redact

PHONE = "+15551230001"
MASKED = "+155******01"


@pytest.fixture(autouse=True)
def _restore_logging() -> Iterator[None]:
    """configure() changes process-wide state; put it back for the other tests."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    config = structlog.get_config()
    yield
    root.handlers = handlers
    root.setLevel(level)
    structlog.configure(**config)
    structlog.contextvars.clear_contextvars()


def json_lines(stderr: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stderr.splitlines() if line.strip()]


# --- the redaction processor -----------------------------------------------------------------


@pytest.mark.parametrize(
    "key",
    ["password", "new_password", "ldap_password", "otp", "code", "token", "auth_token", "body"],
)
def test_redact_drops_secret_values_by_key(key: str) -> None:
    event = redact(None, "info", {"event": "reset", key: "Hunter2!Secret"})
    assert event[key] == "[redacted]"
    assert event["event"] == "reset"


def test_redact_matches_keys_whatever_their_case() -> None:
    event = redact(None, "info", {"event": "x", "Password": "a", "OTP": "b", "Body": "c"})
    assert set(event.values()) == {"x", "[redacted]"}


@pytest.mark.parametrize("key", ["phone", "to", "from", "from_", "sender"])
def test_redact_masks_phone_numbers_by_key(key: str) -> None:
    assert redact(None, "info", {"event": "sent", key: PHONE})[key] == MASKED


def test_redact_masks_numbers_inside_the_event_text() -> None:
    event = redact(None, "info", {"event": f"texting {PHONE} and +31612345678 now"})
    assert event["event"] == f"texting {MASKED} and +316******78 now"


TOKEN = "dGhpcy1pcy1hLWxpbmstdG9rZW4tb2YtMjU2LWJpdHM"


@pytest.mark.parametrize(
    ("path", "logged"),
    [
        (f"/enroll/{TOKEN}", "/enroll/[redacted]"),
        (f"/enroll/{TOKEN}/code", "/enroll/[redacted]/code"),
        (
            f"https://sms.example.com/enroll/{TOKEN}?x=1",
            "https://sms.example.com/enroll/[redacted]?x=1",
        ),
        ("/enroll/done/contact.vcf", "/enroll/done/contact.vcf"),
        ("/webhooks/twilio/sms", "/webhooks/twilio/sms"),
    ],
)
def test_redact_cuts_activation_link_tokens_out_of_urls(path: str, logged: str) -> None:
    event = redact(None, "info", {"event": f"GET {path}", "path": path, "url": path})
    assert event == {"event": f"GET {logged}", "path": logged, "url": logged}


def test_redact_leaves_ordinary_values_alone() -> None:
    event = redact(None, "info", {"event": "job 42 done in 1.5 s", "client": "contoso", "n": 3})
    assert event == {"event": "job 42 done in 1.5 s", "client": "contoso", "n": 3}


# --- the whole set-up --------------------------------------------------------------------------


def test_structlog_and_stdlib_records_come_out_as_redacted_json(
    capsys: pytest.CaptureFixture[str],
) -> None:
    configure(log_format="json")
    blink_logging.bind(request_id="req-1")
    blink_logging.get("blink_sms.test").info(
        "password sent", phone=PHONE, otp="482913", body="Your password: Tr4ns!ent"
    )
    logging.getLogger("rq.worker").info("job for %s done", PHONE)
    output = capsys.readouterr().err
    assert PHONE not in output and "482913" not in output and "Tr4ns!ent" not in output
    ours, rq = json_lines(output)
    assert ours["event"] == "password sent"
    assert ours["phone"] == MASKED and ours["otp"] == "[redacted]"
    assert ours["request_id"] == "req-1" and ours["level"] == "info"
    assert rq["event"] == f"job for {MASKED} done"
    assert rq["logger"] == "rq.worker"


def test_the_console_format_is_redacted_too(capsys: pytest.CaptureFixture[str]) -> None:
    configure(log_format="console")
    blink_logging.get("blink_sms.test").info("sent", to=PHONE, code="482913")
    logging.getLogger("rq.worker").warning("retrying %s", PHONE)
    output = capsys.readouterr().err
    assert PHONE not in output and "482913" not in output
    assert output.count(MASKED) == 2


def test_configure_twice_attaches_one_handler(capsys: pytest.CaptureFixture[str]) -> None:
    configure(log_format="json")
    configure(log_format="json")
    logging.getLogger("rq.worker").info("once")
    assert len(json_lines(capsys.readouterr().err)) == 1


def test_the_level_setting_filters_records(capsys: pytest.CaptureFixture[str]) -> None:
    configure(log_format="json", level="WARNING")
    blink_logging.get("blink_sms.test").info("quiet")
    blink_logging.get("blink_sms.test").warning("loud")
    assert [line["event"] for line in json_lines(capsys.readouterr().err)] == ["loud"]


def _set_a_password() -> None:
    password = "Tr4ce!back"
    raise RuntimeError(f"directory refused a password of {len(password)} characters")


@pytest.mark.parametrize("log_format", ["json", "console"])
def test_tracebacks_do_not_show_local_variables(
    log_format: str, capsys: pytest.CaptureFixture[str]
) -> None:
    configure(log_format=log_format)
    try:
        _set_a_password()
    except RuntimeError:
        blink_logging.get("blink_sms.test").exception("reset failed")
    try:
        _set_a_password()
    except RuntimeError:
        logging.getLogger("rq.worker").exception("job failed")
    output = capsys.readouterr().err
    assert "Tr4ce!back" not in output
    assert output.count("directory refused a password of 10 characters") == 2
    assert "_set_a_password" in output
