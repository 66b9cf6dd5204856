"""The settings schema itself: fields, and turning a posted HTML form into typed settings."""

from __future__ import annotations

import pytest

from directory_adapters import ConfigurationError, Field, SettingsSchema

SCHEMA = SettingsSchema(
    kind="example",
    title="Example",
    fields=(
        Field("host", "Server name", required=True),
        Field("password", "Service password", "secret", required=True),
        Field("key", "Private key", "pem", write_only=True),
        Field("ca", "CA certificate", "pem"),
        Field("port", "Port", "number", default=636),
        Field("timeout", "Timeout", "number", default=2.5),
        Field("verify", "Verify certificates", "boolean", default=True),
        Field("hosts", "Other servers", "list"),
        Field("scopes", "Scopes", "list", one_per_line=True),
        Field("attribute", "Known by", "choice", default="mail", choices=("mail", "upn")),
    ),
)
FORM = {"host": "dc1.corp.example", "password": "pw"}


def test_a_form_becomes_typed_settings() -> None:
    settings = SCHEMA.parse_form(
        {
            **FORM,
            "port": " 3269 ",
            "timeout": "1.5",
            "verify": "on",
            "hosts": "dc2, dc3\ndc4  dc5",
            "scopes": "OU=IT Staff,DC=corp,DC=example\r\n\nCN=Sales,DC=corp,DC=example\n",
            "attribute": "upn",
            "csrf_token": "ignored",
        }
    )
    assert settings == {
        "host": "dc1.corp.example",
        "password": "pw",
        "port": 3269,
        "timeout": 1.5,
        "verify": True,
        "hosts": ["dc2", "dc3", "dc4", "dc5"],
        "scopes": ["OU=IT Staff,DC=corp,DC=example", "CN=Sales,DC=corp,DC=example"],
        "attribute": "upn",
    }
    assert type(settings["port"]) is int


def test_empty_optional_fields_are_left_out_so_defaults_apply() -> None:
    form = {**FORM, "port": " ", "timeout": "", "hosts": " , ", "key": "", "attribute": ""}
    assert SCHEMA.parse_form(form) == {**FORM, "verify": False}


@pytest.mark.parametrize("sent", [None, "", "off", "false", "0"])
def test_a_checkbox_not_ticked_is_false(sent: str | None) -> None:
    form = FORM if sent is None else {**FORM, "verify": sent}
    assert SCHEMA.parse_form(form)["verify"] is False


@pytest.mark.parametrize("missing", ["host", "password"])
def test_a_missing_required_value_names_the_label(missing: str) -> None:
    label = SCHEMA.field(missing).label
    with pytest.raises(ConfigurationError, match=f"^{label}: a value is required"):
        SCHEMA.parse_form({**FORM, missing: "  "})


@pytest.mark.parametrize("number", ["abc", "1,5", "nan", "inf", "1e999", "--1"])
def test_a_bad_number_names_the_label(number: str) -> None:
    with pytest.raises(ConfigurationError, match=r"^Timeout: .* is not a number"):
        SCHEMA.parse_form({**FORM, "timeout": number})


def test_a_choice_outside_the_choices_names_the_label_and_the_choices() -> None:
    with pytest.raises(ConfigurationError, match=r"^Known by: choose one of mail, upn"):
        SCHEMA.parse_form({**FORM, "attribute": "sAMAccountName"})


def test_an_empty_secret_keeps_the_previous_one() -> None:
    previous = {"host": "old", "password": "stored-pw", "key": "stored-key"}
    settings = SCHEMA.parse_form({"host": "new", "password": ""}, previous=previous)
    assert (settings["host"], settings["password"], settings["key"]) == (
        "new",
        "stored-pw",
        "stored-key",
    )


def test_a_new_secret_replaces_the_previous_one_and_keeps_its_spaces() -> None:
    settings = SCHEMA.parse_form({**FORM, "password": " new pw "}, previous={"password": "old"})
    assert settings["password"] == " new pw "


def test_only_secrets_are_kept_from_previous_settings() -> None:
    settings = SCHEMA.parse_form(FORM, previous={"port": 389, "ca": "PEM"})
    assert "port" not in settings
    assert "ca" not in settings


def test_a_required_secret_without_a_previous_value_is_missing() -> None:
    with pytest.raises(ConfigurationError, match="Service password"):
        SCHEMA.parse_form({"host": "h", "password": ""}, previous={"host": "h"})


def test_secrets_are_the_secret_fields_and_write_only_pems() -> None:
    assert SCHEMA.secrets() == {"password", "key"}
    assert SCHEMA.field("key").secret
    assert not SCHEMA.field("ca").secret


def test_public_leaves_the_secrets_out() -> None:
    stored = {"host": "h", "password": "pw", "key": "k", "port": 3269, "extra": 1}
    assert SCHEMA.public(stored) == {"host": "h", "port": 3269, "extra": 1}


def test_field_looks_up_by_name() -> None:
    assert SCHEMA.field("port").default == 636
    with pytest.raises(KeyError):
        SCHEMA.field("nope")
    assert SCHEMA.names()[:2] == ("host", "password")


@pytest.mark.parametrize(
    "field",
    [
        lambda: Field("x", "X", "color"),  # type: ignore[arg-type]
        lambda: Field("x", "X", "choice"),
        lambda: Field("x", "X", "text", choices=("a",)),
        lambda: Field("x", "X", required=True, default="a"),
    ],
)
def test_a_malformed_field_is_refused_when_declared(field: object) -> None:
    with pytest.raises(ValueError, match="field 'x'"):
        field()  # type: ignore[operator]


def test_a_schema_refuses_a_name_used_twice() -> None:
    with pytest.raises(ValueError, match="twice"):
        SettingsSchema("k", "K", (Field("a", "A"), Field("a", "B")))
