"""The Twilio-shaped HTTP server that processes of the product send through in tests and
benchmarks: the official SDK and ``TwilioSender`` work against it unchanged, and a test
(or another process, over ``/_control/``) programs failures, delays, hangs and drops."""

from __future__ import annotations

import json
import re
import socket
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import requests
import responses
from twilio.base.exceptions import TwilioRestException
from twilio.rest import Client

from blink_sms.messaging.sms import OutgoingSms, SmsError, TwilioSender
from tests.support.fake_twilio import FakeTwilio
from tests.support.twilio_server import TwilioServer

ACCOUNT_SID = "AC" + "b2" * 16
AUTH_TOKEN = "0123456789abcdef" * 2
GATEWAY = "+15005550006"
ALICE = "+15551230001"
BOB = "+15551230002"
WAIT = 10.0  # seconds a test waits for a held create before it fails


class Clock:
    """The time the server stamps messages with; a test moves it."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def server() -> Iterator[TwilioServer]:
    with TwilioServer(ACCOUNT_SID, AUTH_TOKEN) as running:
        yield running
    assert running.errors == []


def sdk(server: TwilioServer, token: str = AUTH_TOKEN, account: str = ACCOUNT_SID) -> Any:
    """The official client pointed at the server, as ``TwilioSender`` points it."""
    client = Client(account, token)
    client.api.base_url = server.url
    return client.api.v2010.account.messages


def sender(server: TwilioServer) -> TwilioSender:
    return TwilioSender(ACCOUNT_SID, AUTH_TOKEN, api_base_url=server.url, timeout=WAIT)


def sms(to: str = ALICE, body: str = "Your password: Xy7!kPq2") -> OutgoingSms:
    return OutgoingSms(to=to, body=body, from_=GATEWAY, status_callback="https://h/status")


def control(server: TwilioServer, method: str, action: str, **options: Any) -> Any:
    """Call the control API over HTTP, as a process without the server object would."""
    response = requests.request(method, f"{server.url}/_control/{action}", timeout=WAIT, **options)
    assert response.status_code == 200, response.text
    return response.json()


def in_thread(call: Callable[[], str]) -> tuple[ThreadPoolExecutor, Future[str]]:
    pool = ThreadPoolExecutor(max_workers=1)
    return pool, pool.submit(call)


# --- the API, through the official SDK ---------------------------------------------------------


def test_the_sdk_creates_a_queued_outbound_message(server: TwilioServer) -> None:
    before = datetime.now(UTC).replace(microsecond=0)
    message = sdk(server).create(
        to=ALICE, from_=GATEWAY, body="hello", status_callback="https://h/s"
    )
    assert re.fullmatch(r"SM[0-9a-f]{32}", message.sid)
    assert (message.status, message.direction) == ("queued", "outbound-api")
    assert (message.to, message.from_, message.body) == (ALICE, GATEWAY, "hello")
    assert before <= message.date_created <= datetime.now(UTC)
    [sent] = server.sent
    assert sent["Sid"] == message.sid
    assert (sent["To"], sent["From"], sent["Body"]) == (ALICE, GATEWAY, "hello")
    assert sent["StatusCallback"] == "https://h/s"
    resource = server.message(message.sid)
    assert resource is not None and resource["date_created"] == sent["date_created"]
    assert server.bodies_to(ALICE) == ["hello"] and server.bodies_to(BOB) == []


def test_a_create_answers_201_with_the_resource_json(server: TwilioServer) -> None:
    response = requests.post(
        f"{server.url}/2010-04-01/Accounts/{ACCOUNT_SID}/Messages.json",
        data={"To": ALICE, "MessagingServiceSid": "MG" + "0" * 32, "Body": "hi"},
        auth=(ACCOUNT_SID, AUTH_TOKEN),
        timeout=WAIT,
    )
    assert response.status_code == 201
    assert response.headers["Content-Type"].startswith("application/json")
    resource = response.json()
    assert resource["messaging_service_sid"] == "MG" + "0" * 32 and resource["from"] is None
    assert resource["date_created"].endswith(" GMT")  # RFC 2822, as Twilio dates them
    assert resource["uri"] == f"/2010-04-01/Accounts/{ACCOUNT_SID}/Messages/{resource['sid']}.json"


@pytest.mark.parametrize(
    ("token", "account"),
    [("wrong" + AUTH_TOKEN[5:], ACCOUNT_SID), (AUTH_TOKEN, "AC" + "c3" * 16)],
    ids=["wrong-token", "other-account"],
)
def test_wrong_credentials_get_twilios_401(server: TwilioServer, token: str, account: str) -> None:
    with pytest.raises(TwilioRestException) as refused:
        sdk(server, token, account).create(to=ALICE, from_=GATEWAY, body="hello")
    assert (refused.value.status, refused.value.code) == (401, 20003)
    assert server.sent == []
    response = requests.get(
        f"{server.url}/2010-04-01/Accounts/{ACCOUNT_SID}/Messages.json", timeout=WAIT
    )
    assert response.status_code == 401
    assert response.json() == {
        "code": 20003,
        "message": "Authenticate",
        "more_info": "https://www.twilio.com/docs/errors/20003",
        "status": 401,
    }


def test_credentials_of_one_account_do_not_open_another(server: TwilioServer) -> None:
    other = "AC" + "c3" * 16
    response = requests.post(
        f"{server.url}/2010-04-01/Accounts/{other}/Messages.json",
        data={"To": ALICE, "From": GATEWAY, "Body": "hi"},
        auth=(ACCOUNT_SID, AUTH_TOKEN),
        timeout=WAIT,
    )
    assert (response.status_code, response.json()["code"]) == (401, 20003)
    assert server.sent == []


@pytest.mark.parametrize(("missing", "code"), [("to", 21604), ("from_", 21603), ("body", 21602)])
def test_a_create_without_a_required_parameter_is_refused(
    server: TwilioServer, missing: str, code: int
) -> None:
    options = {"to": ALICE, "from_": GATEWAY, "body": "hello", missing: ""}
    with pytest.raises(TwilioRestException) as refused:
        sdk(server).create(**options)
    assert (refused.value.status, refused.value.code) == (400, code)
    assert server.sent == []


def test_list_filters_by_to_and_from_newest_first(server: TwilioServer) -> None:
    messages = sdk(server)
    messages.create(to=ALICE, from_=GATEWAY, body="one")
    messages.create(to=BOB, from_=GATEWAY, body="two")
    messages.create(to=ALICE, from_="+15005550007", body="three")
    assert [m.body for m in messages.list()] == ["three", "two", "one"]
    assert [m.body for m in messages.list(to=ALICE)] == ["three", "one"]
    assert [m.body for m in messages.list(from_=GATEWAY)] == ["two", "one"]
    assert [m.body for m in messages.list(to=ALICE, from_=GATEWAY)] == ["one"]
    assert messages.list(to="+15559999999") == []


def test_list_filters_by_date_sent() -> None:
    clock = Clock(datetime(2024, 3, 5, 10, 0, tzinfo=UTC))
    with TwilioServer(ACCOUNT_SID, AUTH_TOKEN, clock=clock) as server:
        messages = sdk(server)
        for at, body in [((5, 10), "5th 10:00"), ((5, 12), "5th 12:00"), ((6, 9), "6th 09:00")]:
            clock.now = datetime(2024, 3, at[0], at[1], tzinfo=UTC)
            messages.create(to=ALICE, from_=GATEWAY, body=body)

        def bodies(**filters: Any) -> list[str]:
            return [m.body for m in messages.list(**filters)]

        noon = datetime(2024, 3, 5, 12, tzinfo=UTC)
        assert bodies(date_sent_after=noon) == ["6th 09:00", "5th 12:00"]  # on or after
        assert bodies(date_sent_before=noon) == ["5th 12:00", "5th 10:00"]  # on or before
        assert bodies(date_sent=noon) == ["5th 12:00"]
        assert bodies(date_sent_after=noon + timedelta(seconds=1), to=ALICE) == ["6th 09:00"]
        # A day, as people type it: "DateSent>=2024-03-06" is the key "DateSent>".
        url = f"{server.url}/2010-04-01/Accounts/{ACCOUNT_SID}/Messages.json"

        def by_day(name: str, day: str) -> list[str]:
            response = requests.get(
                url, params={name: day}, auth=(ACCOUNT_SID, AUTH_TOKEN), timeout=WAIT
            )
            assert response.status_code == 200, response.text
            return [m["body"] for m in response.json()["messages"]]

        assert by_day("DateSent", "2024-03-05") == ["5th 12:00", "5th 10:00"]
        assert by_day("DateSent>", "2024-03-06") == ["6th 09:00"]
        assert by_day("DateSent<", "2024-03-05") == ["5th 12:00", "5th 10:00"]
        bad = requests.get(
            url, params={"DateSent>": "yesterday"}, auth=(ACCOUNT_SID, AUTH_TOKEN), timeout=WAIT
        )
        assert (bad.status_code, bad.json()["code"]) == (400, 20001)


def test_list_pages_by_page_size_and_the_sdk_follows_the_next_page(server: TwilioServer) -> None:
    messages = sdk(server)
    for n in range(5):
        messages.create(to=ALICE, from_=GATEWAY, body=f"m{n}")
    assert [m.body for m in messages.list(page_size=2)] == ["m4", "m3", "m2", "m1", "m0"]
    assert [m.body for m in messages.list(page_size=2, limit=3)] == ["m4", "m3", "m2"]
    second = requests.get(
        f"{server.url}/2010-04-01/Accounts/{ACCOUNT_SID}/Messages.json",
        params={"To": ALICE, "PageSize": 2, "Page": 1},
        auth=(ACCOUNT_SID, AUTH_TOKEN),
        timeout=WAIT,
    ).json()
    path = f"/2010-04-01/Accounts/{ACCOUNT_SID}/Messages.json?To=%2B15551230001&PageSize=2"
    assert second == {
        "messages": second["messages"],
        "end": 3,
        "first_page_uri": f"{path}&Page=0",
        "next_page_uri": f"{path}&Page=2",
        "page": 1,
        "page_size": 2,
        "previous_page_uri": f"{path}&Page=0",
        "start": 2,
        "uri": f"{path}&Page=1",
    }
    assert [m["body"] for m in second["messages"]] == ["m2", "m1"]


def test_fetch_and_redact_a_message(server: TwilioServer) -> None:
    messages = sdk(server)
    created = messages.create(to=ALICE, from_=GATEWAY, body="Your password: Xy7!kPq2")
    assert messages(created.sid).fetch().body == "Your password: Xy7!kPq2"
    redacted = messages(created.sid).update(body="")
    assert redacted.sid == created.sid and redacted.body == ""
    assert messages(created.sid).fetch().body == ""
    assert [m.body for m in messages.list(to=ALICE)] == [""]
    assert server.bodies_to(ALICE) == ["Your password: Xy7!kPq2"]  # what was sent
    with pytest.raises(TwilioRestException) as changed:
        messages(created.sid).update(body="something else")
    assert changed.value.status == 400


def test_an_unknown_message_is_twilios_404(server: TwilioServer) -> None:
    unknown = "SM" + "0" * 32
    for call in (
        lambda: sdk(server)(unknown).fetch(),
        lambda: sdk(server)(unknown).update(body=""),
    ):
        with pytest.raises(TwilioRestException) as missing:
            call()
        assert (missing.value.status, missing.value.code) == (404, 20404)
        assert unknown in missing.value.msg


def test_the_fake_and_the_server_answer_in_the_same_shape(server: TwilioServer) -> None:
    def create_and_list(base_url: str) -> tuple[dict[str, Any], dict[str, Any]]:
        url = f"{base_url}/2010-04-01/Accounts/{ACCOUNT_SID}/Messages.json"
        auth = (ACCOUNT_SID, AUTH_TOKEN)
        form = {"To": ALICE, "From": GATEWAY, "Body": "hello"}
        created = requests.post(url, data=form, auth=auth, timeout=WAIT)
        assert created.status_code == 201
        page = requests.get(url, params={"To": ALICE}, auth=auth, timeout=WAIT)
        return created.json(), page.json()

    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        FakeTwilio(ACCOUNT_SID).install(rsps)
        fake = create_and_list("https://api.twilio.com")
    real = create_and_list(server.url)

    def comparable(resource: dict[str, Any]) -> dict[str, Any]:
        """The resource without what differs by nature: its sid and its dates."""
        same = json.loads(json.dumps(resource).replace(resource["sid"], "SM-the-sid"))
        return {k: v for k, v in same.items() if not k.startswith("date_")}

    assert comparable(fake[0]) == comparable(real[0])
    assert fake[0].keys() == real[0].keys()
    assert {k: v for k, v in fake[1].items() if k != "messages"} == {
        k: v for k, v in real[1].items() if k != "messages"
    }


# --- the product's sender, and programmed behaviour ---------------------------------------------


def test_twilio_sender_sends_through_the_server(server: TwilioServer) -> None:
    since = datetime.now(UTC) - timedelta(seconds=1)
    sid = sender(server).send(sms())
    [sent] = server.sent
    assert sent["Sid"] == sid and sent["To"] == ALICE and sent["From"] == GATEWAY
    assert sent["Body"] == "Your password: Xy7!kPq2"
    assert sent["StatusCallback"] == "https://h/status"
    assert sender(server).find_sent(ALICE, since, known=()) == sid
    assert sender(server).find_sent(ALICE, since, known={sid}) is None
    assert sender(server).find_sent(BOB, since, known=()) is None


def test_find_sent_that_cannot_list_is_a_retryable_sms_error(server: TwilioServer) -> None:
    since = datetime.now(UTC) - timedelta(seconds=1)
    refused = TwilioSender(ACCOUNT_SID, "not-the-token-0000000000000000", api_base_url=server.url)
    with pytest.raises(SmsError) as failed:
        refused.find_sent(ALICE, since, known=())  # the list answers 401
    assert failed.value.permanent is False
    gone = sender(server)
    server.stop()
    with pytest.raises(SmsError) as unreachable:
        gone.find_sent(ALICE, since, known=())
    assert unreachable.value.permanent is False


@pytest.mark.parametrize(
    ("status", "code", "permanent"),
    [(400, 21211, True), (400, 21610, True), (429, 20429, False), (503, 30001, False),
     (500, 20500, False)],
)  # fmt: skip
def test_a_queued_failure_becomes_an_sms_error(
    server: TwilioServer, status: int, code: int, permanent: bool
) -> None:
    server.fail_next(status, code, times=2)
    for _ in range(2):
        with pytest.raises(SmsError) as failed:
            sender(server).send(sms())
        assert (failed.value.code, failed.value.permanent) == (code, permanent)
    assert server.sent == []
    assert sender(server).send(sms()) == server.sent[0]["Sid"]  # then it works again


def test_a_hang_holds_a_create_until_it_is_released(server: TwilioServer) -> None:
    assert not server.wait_for_pending_create(0.05)
    server.hang()
    pool, sending = in_thread(lambda: sender(server).send(sms()))
    with pool:
        assert server.wait_for_pending_create(WAIT)
        assert server.pending_creates == 1
        time.sleep(0.1)
        assert not sending.done() and server.sent == []
        assert server.release() == 1
        sid = sending.result(WAIT)
    assert [m["Sid"] for m in server.sent] == [sid]
    assert server.pending_creates == 0
    sender(server).send(sms(to=BOB))  # no longer hanging


def test_a_held_create_can_be_dropped_unrecorded(server: TwilioServer) -> None:
    server.hang()
    pool, sending = in_thread(lambda: sender(server).send(sms()))
    with pool:
        assert server.wait_for_pending_create(WAIT)
        server.release(accept=False)
        with pytest.raises(SmsError, match="cannot reach Twilio") as lost:
            sending.result(WAIT)
    assert lost.value.permanent is False
    assert server.sent == []


def test_a_dropped_answer_leaves_the_message_recorded(server: TwilioServer) -> None:
    since = datetime.now(UTC) - timedelta(seconds=1)
    server.drop_next()
    with pytest.raises(SmsError, match="cannot reach Twilio") as lost:
        sender(server).send(sms())
    assert lost.value.permanent is False
    [sent] = server.sent  # Twilio got it; the sender never heard back
    assert sender(server).find_sent(ALICE, since, known=()) == sent["Sid"]
    assert sender(server).send(sms()) != sent["Sid"]  # only the next create was dropped


def test_a_delay_slows_every_create(server: TwilioServer) -> None:
    server.set_delay(0.3)
    started = time.perf_counter()
    sender(server).send(sms())
    sender(server).send(sms())
    assert time.perf_counter() - started >= 0.6
    server.set_delay(0)
    started = time.perf_counter()
    sender(server).send(sms())
    assert time.perf_counter() - started < 0.3


def test_the_control_api_programs_the_server_over_http(server: TwilioServer) -> None:
    state = control(server, "POST", "failures", json={"status": 503, "code": 30001, "times": 1})
    assert state["failures"] == [[503, 30001]]
    with pytest.raises(SmsError) as failed:
        sender(server).send(sms())
    assert failed.value.code == 30001
    sid = sender(server).send(sms())
    assert control(server, "GET", "messages") == server.sent
    assert [m["Sid"] for m in control(server, "GET", "messages")] == [sid]

    control(server, "POST", "hang")
    pool, sending = in_thread(lambda: sender(server).send(sms(to=BOB)))
    with pool:
        pending = control(server, "GET", "pending", params={"timeout": WAIT})
        assert pending == {"pending": True, "pending_creates": 1}
        assert control(server, "POST", "release", json={"accept": True}) == {"released": 1}
        assert sending.result(WAIT)
    assert server.bodies_to(BOB)

    control(server, "POST", "drop", json={"times": 1})
    assert control(server, "POST", "delay", json={"seconds": 0.2})["delay"] == 0.2
    with pytest.raises(SmsError):
        sender(server).send(sms())
    assert len(server.sent) == 3
    reset = control(server, "POST", "reset")
    assert reset == {
        "messages": 0, "failures": [], "delay": 0.0, "hanging": False,
        "pending_creates": 0, "drops": 0,
    }  # fmt: skip
    assert server.sent == [] and control(server, "GET", "messages") == []


def test_the_control_api_refuses_what_it_does_not_know(server: TwilioServer) -> None:
    unknown = requests.post(f"{server.url}/_control/explode", json={}, timeout=WAIT)
    assert unknown.status_code == 404
    malformed = requests.post(f"{server.url}/_control/failures", json={"code": 1}, timeout=WAIT)
    assert malformed.status_code == 400
    assert control(server, "GET", "state")["failures"] == []


def test_it_writes_nothing_to_stdout_or_stderr(
    server: TwilioServer, capfd: pytest.CaptureFixture[str]
) -> None:
    sender(server).send(sms())
    with pytest.raises(TwilioRestException):
        sdk(server, token="nope").create(to=ALICE, from_=GATEWAY, body="x")
    server.drop_next()
    with pytest.raises(SmsError):
        sender(server).send(sms())
    requests.get(f"{server.url}/nowhere", timeout=WAIT)
    assert capfd.readouterr() == ("", "")


def test_leaving_the_block_stops_it_and_drops_held_creates() -> None:
    with TwilioServer(ACCOUNT_SID, AUTH_TOKEN) as server:
        port = server.port
        server.hang()
        pool, sending = in_thread(lambda: sender(server).send(sms()))
        assert server.wait_for_pending_create(WAIT)
    with pool, pytest.raises(SmsError):
        sending.result(WAIT)
    assert server.sent == []
    with pytest.raises(ConnectionRefusedError), socket.create_connection(("127.0.0.1", port), 1):
        pass
    with pytest.raises(RuntimeError, match="not running"):
        _ = server.url


def test_requests_from_many_threads_are_all_recorded(server: TwilioServer) -> None:
    numbers = [f"+1555000{n:04d}" for n in range(40)]
    with ThreadPoolExecutor(max_workers=8) as pool:
        sids = list(pool.map(lambda n: sender(server).send(sms(to=n)), numbers))
    assert sorted(m["Sid"] for m in server.sent) == sorted(sids)
    assert len(set(sids)) == 40
    assert sorted(m["To"] for m in server.sent) == numbers


def test_the_server_runs_next_to_other_threads_without_blocking_them() -> None:
    # A held create must not stop the server from answering others (one thread each).
    with TwilioServer(ACCOUNT_SID, AUTH_TOKEN) as server:
        server.hang()
        pool, held = in_thread(lambda: sender(server).send(sms()))
        with pool:
            assert server.wait_for_pending_create(WAIT)
            assert sdk(server).list() == []
            assert control(server, "GET", "state")["pending_creates"] == 1
            server.release()
            assert held.result(WAIT)
