"""Fixtures: real Redis, real PostgreSQL (when BLINK_TEST_DATABASE=postgresql), the app,
a signed-webhook helper, the fake Twilio REST API, and named personas.
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import responses
import sqlalchemy
from flask import Flask
from flask.testing import FlaskClient
from redis import Redis
from twilio.request_validator import RequestValidator

from blink_sms.actors import COMMAND_LINE
from blink_sms.app import create_app
from blink_sms.context import Blink
from blink_sms.db import upgrade
from blink_sms.models import Client, User, UserStatus
from blink_sms.services.clients import create_client
from blink_sms.settings import Settings
from directory_adapters.sandbox import SandboxDirectory

from .directory_adapters.samba import SambaDC, shared_dc, stop_shared_dc
from .enrollment.smtp import SmtpServer
from .support.fake_twilio import FakeTwilio
from .support.sandbox_probe import SandboxProbe
from .support.services import PostgresServer, RedisServer

ACCOUNT_SID = "AC" + "a1" * 16
AUTH_TOKEN = "f" * 8 + secrets.token_hex(12)
PUBLIC_URL = "https://sms.example.com"
GATEWAY = "+15005550006"
SMS_URL = "/webhooks/twilio/sms"


# --- signals ----------------------------------------------------------------------------


@pytest.fixture(autouse=True)
def _keep_signal_handlers() -> Iterator[None]:
    """RQ's SimpleWorker, run in the test process, leaves its SIGINT/SIGTERM handlers
    behind: a later Ctrl-C (or scripts/test interrupting a run) would then fail one test
    with StopRequested instead of stopping the run. Put the previous handlers back."""
    saved = {signum: signal.getsignal(signum) for signum in (signal.SIGINT, signal.SIGTERM)}
    yield
    for signum, handler in saved.items():
        signal.signal(signum, handler)


# --- real services -----------------------------------------------------------------------


@pytest.fixture(scope="session")
def samba_dc() -> Iterator[SambaDC]:
    """The session's Samba AD domain controller, started on first use (a failure, never
    a skip, when it cannot start)."""
    try:
        dc = shared_dc()
    except RuntimeError as err:
        pytest.fail(f"the Samba AD domain controller did not start: {err}", pytrace=False)
    yield dc
    stop_shared_dc()


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path_factory.mktemp("redis"))
    yield server
    server.stop()


@pytest.fixture
def redis_url(redis_server: RedisServer) -> Iterator[str]:
    connection = Redis.from_url(redis_server.url)
    connection.flushall()
    yield redis_server.url
    connection.close()


pytest_plugins = ["tests.support.no_skips"]


def _use_postgres() -> bool:
    return os.environ.get("BLINK_TEST_DATABASE", "sqlite") == "postgresql"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Tests of what only PostgreSQL has run in the PostgreSQL run, and are deselected
    (not skipped) in the SQLite one."""
    if _use_postgres():
        return
    elsewhere = [item for item in items if item.get_closest_marker("postgresql")]
    if elsewhere:
        config.hook.pytest_deselected(items=elsewhere)
        items[:] = [item for item in items if not item.get_closest_marker("postgresql")]


@pytest.fixture(scope="session")
def database_template(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """A migrated database to copy for each test: fast and isolated."""
    if not _use_postgres():
        path = tmp_path_factory.mktemp("db") / "template.sqlite"
        upgrade(f"sqlite:///{path}")
        yield path
        return
    folder = Path(tempfile.mkdtemp(prefix="blink-pg-"))
    server = PostgresServer(folder)
    engine = sqlalchemy.create_engine(server.admin_url, isolation_level="AUTOCOMMIT")
    with engine.connect() as connection:
        connection.exec_driver_sql("CREATE DATABASE blink_template")
    upgrade(server.url("blink_template"))
    yield (server, engine)
    engine.dispose()
    server.stop()
    shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def database_url(database_template: Any, tmp_path: Path) -> str:
    if isinstance(database_template, Path):
        path = tmp_path / "blink.sqlite"
        shutil.copy(database_template, path)
        return f"sqlite:///{path}"
    server, engine = database_template
    name = "t_" + secrets.token_hex(6)
    with engine.connect() as connection:
        connection.exec_driver_sql(f"CREATE DATABASE {name} TEMPLATE blink_template")
    return str(server.url(name))


@pytest.fixture(scope="session")
def smtp_server() -> Iterator[SmtpServer]:
    """A real SMTP server (aiosmtpd) on loopback, shared by the whole run."""
    server = SmtpServer()
    yield server
    server.stop()


@pytest.fixture
def smtp(smtp_server: SmtpServer) -> SmtpServer:
    """The shared SMTP server with an empty mailbox, accepting every recipient."""
    smtp_server.mailbox.messages.clear()
    smtp_server.mailbox.refuse.clear()
    return smtp_server


# --- the app -------------------------------------------------------------------------------


@pytest.fixture
def settings(database_url: str) -> Settings:
    return Settings(
        secret_key=secrets.token_urlsafe(32),
        env="test",
        database_url=database_url,
        public_url=PUBLIC_URL,
        twilio_account_sid=ACCOUNT_SID,
        twilio_auth_token=AUTH_TOKEN,
        sms_backend="twilio",
        job_retry_intervals=(0, 0),
        log_format="json",
    )


@pytest.fixture
def app(settings: Settings) -> Iterator[Flask]:
    app = create_app(settings)
    with app.app_context():
        yield app
    services: Blink = app.extensions["blink_sms"]
    join = getattr(services.queue, "join", None)
    if join is not None:
        join()
    services.db.dispose()


@pytest.fixture
def services(app: Flask) -> Blink:
    blink: Blink = app.extensions["blink_sms"]
    return blink


@pytest.fixture
def http(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture
def twilio() -> Iterator[FakeTwilio]:
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        yield FakeTwilio(ACCOUNT_SID).install(rsps)


def wait_for_jobs(services: Blink) -> None:
    join = getattr(services.queue, "join", None)
    assert join is not None, "in-process queue expected"
    join()


# --- signed webhooks ------------------------------------------------------------------------


def sign(url: str, params: dict[str, str], token: str = AUTH_TOKEN) -> str:
    return str(RequestValidator(token).compute_signature(url, params))


def inbound_params(
    sender: str, body: str, *, sid: str | None = None, to: str = GATEWAY
) -> dict[str, str]:
    return {
        "MessageSid": sid or "SM" + secrets.token_hex(16),
        "AccountSid": ACCOUNT_SID,
        "From": sender,
        "To": to,
        "Body": body,
        "NumMedia": "0",
        "NumSegments": "1",
        "SmsStatus": "received",
        "ApiVersion": "2010-04-01",
    }


@pytest.fixture
def text_gateway(http: FlaskClient) -> Callable[..., Any]:
    """Send an SMS to the gateway as Twilio would: a signed form POST."""

    def send(sender: str, body: str, *, sid: str | None = None, to: str = GATEWAY) -> Any:
        params = inbound_params(sender, body, sid=sid, to=to)
        return http.post(
            SMS_URL, data=params, headers={"X-Twilio-Signature": sign(PUBLIC_URL + SMS_URL, params)}
        )

    return send


def reply_text(response: Any) -> str | None:
    """The <Message> of a TwiML response, None when empty."""
    import xml.etree.ElementTree as ET

    assert response.status_code == 200, response.data
    root = ET.fromstring(response.data)  # noqa: S314 - our own TwiML
    message = root.find("Message")
    return message.text if message is not None else None


# --- personas -------------------------------------------------------------------------------


@dataclass
class Persona:
    user: User
    phone: str | None
    username: str
    password: str


@dataclass
class World:
    services: Blink
    directory: SandboxDirectory
    client: Client

    def person(
        self,
        username: str,
        phone: str | None,
        *,
        status: UserStatus = UserStatus.ACTIVE,
        language: str | None = None,
        client: Client | None = None,
        protected: bool = False,
    ) -> Persona:
        password = "Start!Pass" + secrets.token_hex(3)
        entry = self.directory.add_user(
            username,
            username.title(),
            email=f"{username}@contoso.example",
            mobile=phone,
            password=password,
            protected=protected,
        )
        with self.services.db.session() as session:
            user = User(
                client_id=(client or self.client).id,
                directory_id=entry.id,
                username=username,
                display_name=username.title(),
                email=entry.email,
                phone=phone,
                status=status,
                language=language,
            )
            session.add(user)
            session.commit()
        return Persona(user, phone, username, password)

    def sign_in(self, username: str, password: str) -> str:
        """ok, must_change, locked or bad: what a sign-in with this password gets."""
        return SandboxProbe(self.directory).sign_in(username, password)

    def lock(self, username: str) -> None:
        SandboxProbe(self.directory).lock(username)

    def another_client(self, slug: str = "fabrikam") -> Client:
        with self.services.db.session() as session:
            client = create_client(
                session,
                self.services.secrets,
                COMMAND_LINE,
                slug=slug,
                name=slug.title(),
                directory_kind="sandbox",
                directory_settings={"path": str(self.directory.path)},
                sender_number="+15005550007",
            )
            session.commit()
            return client


@pytest.fixture
def world(services: Blink, tmp_path: Path) -> World:
    directory = SandboxDirectory(tmp_path / "directory.sqlite")
    with services.db.session() as session:
        client = create_client(
            session,
            services.secrets,
            COMMAND_LINE,
            slug="contoso",
            name="Contoso",
            directory_kind="sandbox",
            directory_settings={"path": str(tmp_path / "directory.sqlite")},
            sender_number=GATEWAY,
            support_contact="Contoso IT, +1 555 0100",
            allowed_countries="BE,CA,DE,ES,FR,GB,NL,US",  # enrollment codes' destinations
        )
        session.commit()
    return World(services, directory, client)


@pytest.fixture
def alice(world: World) -> Persona:
    """An enrolled user: active, phone bound."""
    return world.person("alice", "+15551230001")
