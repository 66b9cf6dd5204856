"""Secrets at rest: SecretBox, the encrypted directory settings of a client, masked phones."""

from __future__ import annotations

import traceback

import pytest
from sqlalchemy import text

from blink_sms.actors import COMMAND_LINE
from blink_sms.context import Blink
from blink_sms.crypto import SecretBox, SecretBoxError, mask_phone
from blink_sms.services.clients import create_client

KEY = "k" * 40
OLD = "o" * 40
NEW = "n" * 40
SECRET = {"bind_password": "S3rvice!Secret"}


def test_a_secret_box_decrypts_what_it_encrypted() -> None:
    box = SecretBox(KEY)
    value = {"bind_password": "S3rvice!Secret", "port": 636, "tls": True}
    token = box.encrypt_json(value)
    assert "S3rvice!Secret" not in token
    assert box.decrypt_json(token) == value
    assert SecretBox(KEY).decrypt_json(token) == value


def test_the_same_value_encrypts_differently_each_time() -> None:
    box = SecretBox(KEY)
    assert box.encrypt_json({"a": 1}) != box.encrypt_json({"a": 1})


def test_another_secret_key_cannot_decrypt() -> None:
    token = SecretBox(KEY).encrypt_json({"bind_password": "S3rvice!Secret"})
    with pytest.raises(SecretBoxError, match="BLINK_SECRET_KEY"):
        SecretBox("o" * 40).decrypt_json(token)


@pytest.mark.parametrize("damaged", ["", "not a token", "gAAAAA" + "A" * 80, "é"])
def test_a_damaged_token_is_a_secret_box_error(damaged: str) -> None:
    with pytest.raises(SecretBoxError):
        SecretBox(KEY).decrypt_json(damaged)


def test_a_token_that_is_not_a_json_object_is_refused() -> None:
    box = SecretBox(KEY)
    token = box._fernet.encrypt(b"[1, 2]").decode()
    with pytest.raises(SecretBoxError, match="not a JSON object"):
        box.decrypt_json(token)


def test_what_the_old_key_stored_stays_readable_through_the_previous_keys() -> None:
    token = SecretBox(OLD).encrypt_json(SECRET)
    box = SecretBox(NEW, previous=("p" * 40, OLD))
    assert box.decrypt_json(token) == SECRET
    assert not box.is_current(token)


def test_new_secrets_are_encrypted_with_the_current_key_only() -> None:
    token = SecretBox(NEW, previous=(OLD,)).encrypt_json(SECRET)
    assert SecretBox(NEW).decrypt_json(token) == SECRET
    assert SecretBox(NEW).is_current(token)
    with pytest.raises(SecretBoxError):
        SecretBox(OLD).decrypt_json(token)


def test_reencrypt_moves_a_secret_under_the_current_key() -> None:
    token = SecretBox(OLD).encrypt_json(SECRET)
    box = SecretBox(NEW, previous=(OLD,))
    moved = box.reencrypt(token)
    assert box.is_current(moved)
    assert SecretBox(NEW).decrypt_json(moved) == SECRET
    with pytest.raises(SecretBoxError):
        SecretBox(OLD).decrypt_json(moved)


@pytest.mark.parametrize("damaged", ["", "not a token", "gAAAAA" + "A" * 80, "é"])
def test_a_damaged_token_is_not_current_and_cannot_be_reencrypted(damaged: str) -> None:
    box = SecretBox(NEW, previous=(OLD,))
    assert not box.is_current(damaged)
    with pytest.raises(SecretBoxError):
        box.reencrypt(damaged)


def _failure(box: SecretBox, token: str) -> str:
    """Everything an operator could see of the error: message, repr, chained traceback."""
    with pytest.raises(SecretBoxError) as caught:
        box.decrypt_json(token)
    return "".join(traceback.format_exception(caught.value)) + repr(caught.value)


def test_a_changed_key_is_named_as_the_likely_cause_without_any_secret() -> None:
    token = SecretBox(OLD).encrypt_json(SECRET)
    seen = _failure(SecretBox(NEW), token)
    assert "was it changed? set the old one as BLINK_SECRET_KEY_PREVIOUS" in seen
    for secret in (OLD, NEW, "S3rvice!Secret", token):
        assert secret not in seen


def test_a_key_missing_from_the_previous_keys_is_named_without_any_secret() -> None:
    stranger = "s" * 40
    token = SecretBox(stranger).encrypt_json(SECRET)
    seen = _failure(SecretBox(NEW, previous=(OLD,)), token)
    assert "nor with BLINK_SECRET_KEY_PREVIOUS" in seen
    for secret in (OLD, NEW, stranger, "S3rvice!Secret", token):
        assert secret not in seen
    with pytest.raises(SecretBoxError, match="BLINK_SECRET_KEY_PREVIOUS"):
        SecretBox(NEW, previous=(OLD,)).reencrypt(token)


def test_keyed_hashes_use_the_current_key_only() -> None:
    phone = "+15551230001"
    assert SecretBox(NEW, previous=(OLD,)).keyed_hash(phone) == SecretBox(NEW).keyed_hash(phone)


def test_keyed_hashes_are_stable_per_key_and_do_not_contain_the_number() -> None:
    phone = "+15551230001"
    first = SecretBox(KEY).keyed_hash(phone)
    assert first == SecretBox(KEY).keyed_hash(phone)
    assert first != SecretBox("o" * 40).keyed_hash(phone)
    assert first != SecretBox(KEY).keyed_hash("+15551230002")
    assert "5551230001" not in first and len(first) == 24


def test_a_clients_directory_settings_are_encrypted_at_rest(services: Blink) -> None:
    with services.db.session() as session:
        client = create_client(
            session,
            services.secrets,
            COMMAND_LINE,
            slug="northwind",
            name="Northwind",
            directory_kind="active_directory",
            directory_settings={
                "hosts": ["dc1.northwind.example"],
                "base_dn": "DC=northwind,DC=example",
                "bind_user": "svc-blink@northwind.example",
                "bind_password": "S3rvice!Secret",
            },
            sender_number="+15005550008",
        )
        session.commit()
        client_id = client.id
    with services.db.engine.connect() as connection:
        row = connection.execute(
            text("SELECT * FROM clients WHERE id = :id"), {"id": client_id}
        ).one()
    stored = " ".join(str(value) for value in row)
    assert "S3rvice!Secret" not in stored
    assert "dc1.northwind.example" not in stored
    [encrypted] = [value for value in row if isinstance(value, str) and value.startswith("gAAAA")]
    settings = services.secrets.decrypt_json(encrypted)
    assert settings["bind_password"] == "S3rvice!Secret"
    assert settings["hosts"] == ["dc1.northwind.example"]


@pytest.mark.parametrize(
    ("phone", "masked"),
    [
        ("+31612345678", "+316******78"),
        ("+15551230001", "+155******01"),
        ("+1234567", "+123**67"),
        ("+12345", "******"),
        ("", ""),
        (None, None),
    ],
)
def test_mask_phone_keeps_the_country_prefix_and_the_last_two_digits(
    phone: str | None, masked: str | None
) -> None:
    assert mask_phone(phone) == masked
