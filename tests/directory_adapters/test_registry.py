"""The registry of directory kinds: adapters, schemas and capabilities named alike,
``validate`` without side effects, ``diagnose`` by kind, and heavy imports kept lazy."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import responses

from directory_adapters import (
    ADAPTERS,
    CAPABILITIES,
    CAPABILITY_NAMES,
    SCHEMAS,
    UNLOCK,
    WITHOUT_UNLOCK,
    ConfigurationError,
    diagnose,
    validate,
)

ROOT = Path(__file__).resolve().parents[2]
AD_SETTINGS = {
    "hosts": "dc1.corp.invalid dc2.corp.invalid:3269",
    "bind_user": "svc-blink@corp.invalid",
    "bind_password": "Svc-Passw0rd",
    "base_dn": "DC=corp,DC=invalid",
}
ENTRA_SETTINGS = {
    "tenant_id": "contoso.onmicrosoft.com",
    "client_id": "5b3a1f9e-2c4d-4e8f-9a0b-1c2d3e4f5a6b",
    "client_secret": "Kx8Q~secret",
}


def test_every_kind_has_an_adapter_a_schema_and_capabilities() -> None:
    assert set(ADAPTERS) == set(SCHEMAS) == set(CAPABILITIES)
    for kind, schema in SCHEMAS.items():
        assert schema.kind == kind
        assert schema.title
        assert all(field.label and field.help for field in schema.fields), kind
        assert CAPABILITIES[kind] <= CAPABILITY_NAMES


def test_entra_id_alone_has_no_unlock_and_no_ous() -> None:
    assert frozenset({"entra_id"}) == WITHOUT_UNLOCK
    assert {kind for kind in CAPABILITIES if UNLOCK not in CAPABILITIES[kind]} == WITHOUT_UNLOCK
    assert {kind for kind, can in CAPABILITIES.items() if "list_ous" not in can} == {"entra_id"}


def test_validate_refuses_an_unknown_kind() -> None:
    with pytest.raises(ConfigurationError, match="unknown directory kind 'ldap'"):
        validate("ldap", {})


def test_validate_checks_sandbox_settings_without_creating_the_file(tmp_path: Path) -> None:
    path = tmp_path / "directory.sqlite"
    validate("sandbox", {"path": str(path), "min_length": 10})
    assert not path.exists()
    with pytest.raises(ConfigurationError, match=r"'path'.*does not exist"):
        validate("sandbox", {"path": str(tmp_path / "missing" / "d.sqlite")})
    with pytest.raises(ConfigurationError, match="'path' names a folder"):
        validate("sandbox", {"path": str(tmp_path)})
    with pytest.raises(ConfigurationError, match="'min_length'"):
        validate("sandbox", {"path": str(path), "min_length": "10"})
    assert list(tmp_path.iterdir()) == []


def test_validate_checks_directory_settings_without_a_network_call() -> None:
    # No route is registered: any HTTP request would fail the test.
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        validate("active_directory", AD_SETTINGS)
        validate("entra_id", ENTRA_SETTINGS)
        assert len(rsps.calls) == 0
    with pytest.raises(ConfigurationError, match="'base_dn'"):
        validate("active_directory", {**AD_SETTINGS, "base_dn": "corp.invalid"})
    with pytest.raises(ConfigurationError, match="'client_id'"):
        validate("entra_id", {**ENTRA_SETTINGS, "client_id": "not-a-guid"})


def test_diagnose_gives_nothing_for_the_sandbox_or_an_unknown_kind(tmp_path: Path) -> None:
    assert diagnose("sandbox", {"path": str(tmp_path / "d.sqlite")}) == []
    assert diagnose("ldap", {}) == []
    assert not (tmp_path / "d.sqlite").exists()


@pytest.mark.parametrize(
    ("kind", "settings", "named"),
    [
        ("active_directory", {**AD_SETTINGS, "hosts": []}, "'hosts'"),
        ("entra_id", {**ENTRA_SETTINGS, "tenant_id": ""}, "'tenant_id'"),
    ],
)
def test_diagnose_reports_bad_settings_as_a_finding(
    kind: str, settings: dict[str, object], named: str
) -> None:
    [finding] = diagnose(kind, settings)
    assert (finding.level, finding.topic) == ("problem", "settings")
    assert named in finding.message
    assert finding.missing is None


def run_python(code: str) -> list[str]:
    """Run ``code`` in a fresh interpreter; it prints a JSON list, which is returned."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=60,
        check=True,
    )  # fmt: skip
    loaded: list[str] = json.loads(result.stdout)
    return loaded


def test_schemas_and_validation_do_not_import_ldap3_or_the_http_stack() -> None:
    heavy = ("ldap3", "msal", "requests")
    code = (
        "import json, sys\n"
        "import directory_adapters as d\n"
        f"d.validate('active_directory', {AD_SETTINGS!r})\n"
        f"d.validate('entra_id', {ENTRA_SETTINGS!r})\n"
        "form = {'hosts': 'dc1', 'bind_user': 'u', 'bind_password': 'p', 'base_dn': 'DC=x'}\n"
        "d.SCHEMAS['active_directory'].parse_form(form)\n"
        f"before = [m for m in {heavy!r} if m in sys.modules]\n"
        f"d.create_adapter('active_directory', {AD_SETTINGS!r})\n"
        f"d.create_adapter('entra_id', {ENTRA_SETTINGS!r})\n"
        f"after = [m for m in {heavy!r} if m in sys.modules]\n"
        "print(json.dumps([before, after]))\n"
    )
    before, after = run_python(code)
    assert before == []
    assert set(after) >= {"ldap3", "requests"}  # the check sees them once an adapter is made
