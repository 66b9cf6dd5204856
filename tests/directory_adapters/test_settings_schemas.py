"""Each directory's declared settings (``SCHEMAS[kind]``) against the parser that really
reads them: the same keys, the same defaults, the same required keys, the same choices,
and a form filled in from the schema gives settings the parser accepts."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from directory_adapters import SCHEMAS, ConfigurationError, SettingsSchema, validate
from directory_adapters.active_directory import ActiveDirectory, ADSettings
from directory_adapters.entra_id import EntraIdDirectory, EntraSettings
from directory_adapters.sandbox import SandboxDirectory, SandboxSettings

KINDS = sorted(SCHEMAS)
# Parsers strip text values, so the samples come stripped.
CA_PEM = "-----BEGIN CERTIFICATE-----\nMIIBszCCAVmgAwIBAgIU\n-----END CERTIFICATE-----"
CLIENT_ID = "5b3a1f9e-2c4d-4e8f-9a0b-1c2d3e4f5a6b"


class Recording(Mapping[str, Any]):
    """Settings that note every key the parser asks for, present or not."""

    def __init__(self, values: Mapping[str, Any]) -> None:
        self.values = dict(values)
        self.asked: set[str] = set()

    def __getitem__(self, key: str) -> Any:
        self.asked.add(key)
        return self.values[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self.values)

    def __len__(self) -> int:
        return len(self.values)


@pytest.fixture(scope="module")
def private_key() -> str:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return (
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        .decode()
        .strip()
    )


@pytest.fixture
def minimal(tmp_path: Path) -> dict[str, dict[str, Any]]:
    """The least each kind works with: its required keys (and, for Entra ID, a secret)."""
    return {
        "active_directory": {
            "hosts": ["dc1.corp.example"],
            "bind_user": "svc-blink@corp.example",
            "bind_password": "Svc-Passw0rd",
            "base_dn": "DC=corp,DC=example",
        },
        "entra_id": {
            "tenant_id": "contoso.onmicrosoft.com",
            "client_id": CLIENT_ID,
            "client_secret": "Kx8Q~secret",
        },
        "sandbox": {"path": str(tmp_path / "directory.sqlite")},
    }


@pytest.fixture
def samples(tmp_path: Path, private_key: str) -> list[tuple[str, dict[str, Any]]]:
    """Settings with a value other than the default for every field of every schema
    (Entra ID takes a secret or a certificate, so it has two)."""
    ca_file = tmp_path / "ca.pem"
    ca_file.write_text(CA_PEM)
    return [
        ("active_directory", {
            "hosts": ["dc9.corp.example", "dc8.corp.example"], "bind_user": "CORP\\svc",
            "bind_password": " pass word ", "base_dn": "DC=corp,DC=example",
            "scopes": ["OU=IT Staff,DC=corp,DC=example", "CN=Sales,OU=G,DC=corp,DC=example"],
            "user_attribute": "mail", "protect_admins": False, "ca_pem": CA_PEM,
            "ca_file": str(ca_file), "use_starttls": True, "port": 1389, "verify_tls": False,
            "connect_timeout": 2.5, "receive_timeout": 9, "page_size": 250, "cache_seconds": 60,
        }),
        ("entra_id", {
            "tenant_id": "contoso.onmicrosoft.com", "client_id": CLIENT_ID,
            "client_secret": "Kx8Q~secret", "user_attribute": "mail",
            "refuse_privileged": False, "lockout_window_minutes": 30,
            "authority": "https://login.microsoftonline.us",
            "graph_url": "https://graph.microsoft.us/v1.0", "connect_timeout": 3, "timeout": 45,
        }),
        ("entra_id", {
            "tenant_id": "0d6e7f8a-1b2c-4d3e-8f9a-0b1c2d3e4f5a", "client_id": CLIENT_ID,
            "certificate_key": private_key, "certificate_thumbprint": "AB" * 32,
            "cloud": "china", "force_change_with_mfa": True,
        }),
        ("sandbox", {
            "path": str(tmp_path / "other.sqlite"), "min_length": 12, "complexity": False,
            "lockout_threshold": 0, "latency_ms": 5, "hash_cost": 4,
        }),
    ]  # fmt: skip


def parsed(kind: str, settings: Mapping[str, Any]) -> dict[str, Any]:
    """What the kind's own parser made of ``settings``, by settings key."""
    if kind == "active_directory":
        ad = ADSettings.parse(settings)
        values = dataclasses.asdict(ad)
        # The port applies to the hosts listed without one; hosts come back with it.
        values["hosts"] = [host for host, _ in ad.hosts]
        values["port"] = ad.hosts[0][1]
        values["scopes"] = list(ad.scopes)
        return values
    if kind == "entra_id":
        return dataclasses.asdict(EntraSettings.parse(settings))
    return dataclasses.asdict(SandboxSettings.parse(settings))


def form_of(schema: SettingsSchema, settings: Mapping[str, Any]) -> dict[str, str]:
    """The strings a browser posts for ``settings`` in a form built from ``schema``."""
    form: dict[str, str] = {}
    for field in schema.fields:
        value = settings.get(field.name)
        if value is None or (field.kind == "boolean" and not value):
            continue  # an unticked checkbox is not sent
        if field.kind == "boolean":
            form[field.name] = "on"
        elif field.kind == "list":
            form[field.name] = ("\n" if field.one_per_line else ", ").join(value)
        else:
            form[field.name] = str(value)
    return form


@pytest.mark.parametrize("kind", KINDS)
def test_the_parser_reads_exactly_the_keys_the_schema_declares(
    kind: str, minimal: dict[str, dict[str, Any]]
) -> None:
    settings = Recording(minimal[kind])
    parsed(kind, settings)
    assert settings.asked == set(SCHEMAS[kind].names())


def test_every_field_has_a_sample(samples: list[tuple[str, dict[str, Any]]]) -> None:
    for kind in KINDS:
        covered = {name for of_kind, sample in samples if of_kind == kind for name in sample}
        assert covered == set(SCHEMAS[kind].names()), kind


def test_the_parser_honours_every_declared_key(
    samples: list[tuple[str, dict[str, Any]]],
) -> None:
    for kind, sample in samples:
        values = parsed(kind, sample)
        for name, value in sample.items():
            assert values[name] == value, f"{kind}: {name}"
            assert values[name] != SCHEMAS[kind].field(name).default, f"{kind}: {name} sample"


@pytest.mark.parametrize("kind", KINDS)
def test_a_field_left_out_gets_the_declared_default(
    kind: str, minimal: dict[str, dict[str, Any]]
) -> None:
    values = parsed(kind, minimal[kind])
    for field in SCHEMAS[kind].fields:
        if field.default is not None:
            expected = list(field.default) if field.kind == "list" else field.default
            assert values[field.name] == expected, field.name


@pytest.mark.parametrize("kind", KINDS)
def test_a_required_field_left_out_is_refused_by_name(
    kind: str, minimal: dict[str, dict[str, Any]]
) -> None:
    required = [field for field in SCHEMAS[kind].fields if field.required]
    assert required
    for field in required:
        settings = {k: v for k, v in minimal[kind].items() if k != field.name}
        with pytest.raises(ConfigurationError, match=f"'{field.name}'"):
            validate(kind, settings)


@pytest.mark.parametrize("kind", KINDS)
def test_every_optional_field_can_be_left_out(
    kind: str, minimal: dict[str, dict[str, Any]]
) -> None:
    required = {field.name for field in SCHEMAS[kind].fields if field.required}
    assert required <= set(minimal[kind])
    assert set(minimal[kind]) - required <= {"client_secret"}  # Entra ID needs one credential
    validate(kind, minimal[kind])


@pytest.mark.parametrize("kind", KINDS)
def test_every_choice_is_accepted_and_nothing_else(
    kind: str, minimal: dict[str, dict[str, Any]]
) -> None:
    for field in SCHEMAS[kind].fields:
        for choice in field.choices:
            assert parsed(kind, {**minimal[kind], field.name: choice})[field.name] == choice
        if field.choices:
            with pytest.raises(ConfigurationError, match=field.name):
                validate(kind, {**minimal[kind], field.name: "nonsense"})


def test_a_form_filled_in_from_the_schema_gives_the_same_settings(
    samples: list[tuple[str, dict[str, Any]]],
) -> None:
    for kind, sample in samples:
        schema = SCHEMAS[kind]
        from_form = schema.parse_form(form_of(schema, sample))
        unticked = {f.name: False for f in schema.fields if f.kind == "boolean"}
        assert from_form == {**unticked, **sample}, kind
        validate(kind, from_form)


@pytest.mark.parametrize("kind", KINDS)
def test_the_defaults_typed_into_a_form_are_accepted_as_the_defaults(
    kind: str, minimal: dict[str, dict[str, Any]]
) -> None:
    schema = SCHEMAS[kind]
    defaults = {f.name: f.default for f in schema.fields if f.default not in (None, ())}
    from_form = schema.parse_form(form_of(schema, {**minimal[kind], **defaults}))
    values = parsed(kind, from_form)
    for name, default in defaults.items():
        assert values[name] == default, name


def test_the_adapters_are_built_from_the_same_parsed_settings(
    samples: list[tuple[str, dict[str, Any]]],
) -> None:
    for kind, sample in samples:
        if kind == "active_directory":
            ad = ActiveDirectory.from_settings(sample)
            assert ad.settings == ADSettings.parse(sample)
        elif kind == "entra_id":
            assert EntraIdDirectory.from_settings(sample).settings == EntraSettings.parse(sample)
        else:
            sandbox = SandboxDirectory.from_settings(sample)
            assert (sandbox.policy.min_length, sandbox.policy.complexity) == (12, False)
            assert (sandbox.lockout_threshold, sandbox.latency_ms, sandbox.hash_cost) == (0, 5, 4)


def test_the_secrets_are_the_passwords_and_keys() -> None:
    assert SCHEMAS["active_directory"].secrets() == {"bind_password"}
    assert SCHEMAS["entra_id"].secrets() == {"client_secret", "certificate_key"}
    assert SCHEMAS["sandbox"].secrets() == frozenset()


def test_the_ad_port_follows_starttls_when_left_out(minimal: dict[str, dict[str, Any]]) -> None:
    # The port's default depends on use_starttls, so the schema declares none and says so.
    assert SCHEMAS["active_directory"].field("port").default is None
    assert parsed("active_directory", minimal["active_directory"])["port"] == 636
    starttls = {**minimal["active_directory"], "use_starttls": True}
    assert parsed("active_directory", starttls)["port"] == 389
