"""The web edge: HSTS in production, https to Twilio, one key per purpose, database errors
that name no phone number."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import traceback
from collections.abc import Iterator

import pytest
from cryptography.fernet import Fernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from flask import Flask
from flask.testing import FlaskClient
from itsdangerous import BadSignature, URLSafeTimedSerializer
from sqlalchemy.exc import IntegrityError

from blink_sms.actors import Role
from blink_sms.app import create_app
from blink_sms.context import Blink
from blink_sms.crypto import SecretBox, session_key
from blink_sms.models import User
from blink_sms.settings import Settings, SettingsError

from .. import conftest
from ..conftest import World
from ..console.conftest import make_admin, sign_in_as

HSTS = "max-age=31536000; includeSubDomains"


@pytest.fixture
def production(settings: Settings) -> Iterator[Flask]:
    app = create_app(settings.with_changes(env="production"))
    yield app
    app.extensions["blink_sms"].db.dispose()


# --- HSTS --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/healthz"),
        ("GET", "/enroll/not-a-token"),  # 404
        ("POST", conftest.SMS_URL),  # unsigned: 403
        ("GET", "/admin/sign-in"),
        ("GET", "/api/v1/users"),  # no key: 401
    ],
)
def test_production_sends_hsts_on_every_response(production: Flask, method: str, path: str) -> None:
    response = production.test_client().open(path, method=method)
    assert response.headers["Strict-Transport-Security"] == HSTS


def test_development_sends_no_hsts(http: FlaskClient) -> None:
    # The app fixture is env=test; development is the same: plain http on a laptop.
    assert "Strict-Transport-Security" not in http.get("/healthz").headers


# --- https to Twilio ---------------------------------------------------------------------


def production_env(**variables: str) -> dict[str, str]:
    return {
        "BLINK_SECRET_KEY": "k" * 40,
        "BLINK_ENV": "production",
        "BLINK_PUBLIC_URL": "https://sms.example.com",
    } | {f"BLINK_{name}": value for name, value in variables.items()}


def test_production_refuses_an_http_twilio_api_base_url() -> None:
    with pytest.raises(SettingsError) as refused:
        Settings.from_env(production_env(TWILIO_API_BASE_URL="http://api.twilio.com"), dotenv=None)
    assert str(refused.value).startswith(
        "BLINK_TWILIO_API_BASE_URL: must be an https:// URL in production"
    )
    assert "\n" not in str(refused.value)


@pytest.mark.parametrize(
    "url",
    [
        "https://api.dublin.ie1.twilio.com",
        "http://127.0.0.1:8081",  # a test server or a TLS-terminating proxy on loopback
        "http://[::1]:8081",
        "http://localhost:8081",
    ],
)
def test_production_accepts_https_or_loopback_for_twilio(url: str) -> None:
    env = production_env(TWILIO_API_BASE_URL=url)
    assert Settings.from_env(env, dotenv=None).twilio_api_base_url == url


def test_development_may_use_an_http_twilio_test_server() -> None:
    env = {"BLINK_SECRET_KEY": "k" * 40, "BLINK_TWILIO_API_BASE_URL": "http://twilio.test"}
    assert Settings.from_env(env, dotenv=None).twilio_api_base_url == "http://twilio.test"


# --- one key per purpose -----------------------------------------------------------------


def derived(secret_key: str, purpose: bytes) -> bytes:
    """HKDF-SHA256 as crypto.py has always derived its keys: written out here so that a
    change of derivation, which would orphan stored data, fails this file."""
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=purpose).derive(
        secret_key.encode()
    )


def test_session_cookies_are_signed_with_a_key_of_their_own(app: Flask, settings: Settings) -> None:
    key = settings.secret_key
    assert app.secret_key == session_key(key) == derived(key, b"blink-sms:sessions")
    others = {derived(key, b"blink-sms:secrets"), derived(key, b"blink-sms:hashes")}
    assert app.secret_key not in others
    # A cookie signed with BLINK_SECRET_KEY itself (the old scheme) is refused.
    serializer = app.session_interface.get_signing_serializer(app)  # type: ignore[attr-defined]
    assert serializer is not None
    salt, options = "cookie-session", serializer.signer_kwargs
    raw = URLSafeTimedSerializer(key, salt=salt, signer_kwargs=options).dumps({"x": 1})
    with pytest.raises(BadSignature):
        serializer.loads(raw)
    ours = URLSafeTimedSerializer(session_key(key), salt=salt, signer_kwargs=options)
    assert serializer.loads(ours.dumps({"x": 1})) == {"x": 1}


def test_settings_stored_under_the_existing_derivation_stay_readable() -> None:
    key = secrets.token_urlsafe(32)
    fernet = Fernet(base64.urlsafe_b64encode(derived(key, b"blink-sms:secrets")))
    stored = fernet.encrypt(json.dumps({"bind_password": "s3cret"}).encode()).decode()
    assert SecretBox(key).decrypt_json(stored) == {"bind_password": "s3cret"}
    # ... and after a key change, through BLINK_SECRET_KEY_PREVIOUS.
    box = SecretBox(secrets.token_urlsafe(32), previous=[key])
    assert box.decrypt_json(stored) == {"bind_password": "s3cret"}
    assert box.is_current(box.reencrypt(stored))


def test_codes_hashed_under_the_existing_derivation_still_match() -> None:
    # An enrollment code in flight was hashed with the "hashes" key: unchanged.
    key = secrets.token_urlsafe(32)
    value = "enrollment-code:7:+15551230001:123456"
    before = hmac.new(derived(key, b"blink-sms:hashes"), value.encode(), hashlib.sha256)
    assert SecretBox(key).keyed_hash(value) == before.hexdigest()[:24]


def test_a_console_session_survives_a_key_change_with_the_old_key_as_previous(
    app: Flask, services: Blink, world: World, settings: Settings
) -> None:
    admin = make_admin(services, Role.MSP_OWNER)
    browser = app.test_client()
    sign_in_as(browser, admin)
    assert browser.get("/admin/account").status_code == 200
    cookie = browser.get_cookie("session")
    assert cookie is not None

    def after_restart(**changes: object) -> int:
        restarted = create_app(settings.with_changes(**changes))
        try:
            other = restarted.test_client()
            other.set_cookie("session", cookie.value, domain=cookie.domain)
            return other.get("/admin/account").status_code
        finally:
            restarted.extensions["blink_sms"].db.dispose()

    new_key = secrets.token_urlsafe(32)
    assert after_restart(secret_key=new_key, secret_key_previous=(settings.secret_key,)) == 200
    assert after_restart(secret_key=new_key) == 302  # to the sign-in page


# --- database errors ---------------------------------------------------------------------


def test_a_failing_statement_names_no_phone_number(services: Blink, world: World) -> None:
    phone = "+15551239876"
    world.person("taken", phone)
    copy = User(
        client_id=world.client.id, directory_id="copy-1", username="copy",
        display_name="Copy", email="copy@contoso.example", phone=phone,
    )  # fmt: skip
    with services.db.session() as session:
        session.add(copy)
        with pytest.raises(IntegrityError) as refused:
            session.commit()  # the phone is unique
    error = refused.value
    # Everything a log line or a traceback would show: the error, its driver's error
    # (printed as the cause), the whole chain.
    shown = "".join(traceback.format_exception(error)) + str(error.orig)
    assert phone not in shown and phone.removeprefix("+") not in shown
    assert "copy@contoso.example" not in shown
    assert "phone" in str(error).lower()  # the constraint is still named
