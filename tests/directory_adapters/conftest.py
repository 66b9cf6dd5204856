"""The real Samba AD domain controller, and what the Active Directory tests share.

The DC is started once per test session by ``scripts/samba-dc`` (from its cached
template); a DC that cannot start fails the tests that need it, it never skips them.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from directory_adapters.active_directory import ActiveDirectory
from tests.support.fake_graph import Clock

from .contract import OLD_PASSWORD, unique
from .samba import Delegation, Person, SambaDC


@pytest.fixture(scope="session")
def people(samba_dc: SambaDC) -> str:
    """An OU for the Active Directory tests' own users."""
    return samba_dc.add_ou("People")


@pytest.fixture
def connect(samba_dc: SambaDC) -> Iterator[Callable[..., ActiveDirectory]]:
    """Build adapters for the DC (as its administrator unless overridden); closed after."""
    made: list[ActiveDirectory] = []

    def build(**overrides: Any) -> ActiveDirectory:
        adapter = ActiveDirectory.from_settings(samba_dc.settings(**overrides))
        made.append(adapter)
        return adapter

    yield build
    for adapter in made:
        adapter.close()


@pytest.fixture
def directory(connect: Callable[..., ActiveDirectory]) -> ActiveDirectory:
    return connect()


@pytest.fixture
def person(samba_dc: SambaDC, people: str) -> Callable[..., Person]:
    """Create an enabled user in ``people`` (or ``ou``) with a password."""

    def make(ou: str | None = None, **attributes: Any) -> Person:
        username = unique("p")
        dn = samba_dc.add_user(username, ou or people, OLD_PASSWORD, **attributes)
        return Person(username, dn, samba_dc.guid(dn), OLD_PASSWORD)

    return make


@pytest.fixture(scope="session")
def delegation(samba_dc: SambaDC) -> Delegation:
    """A service account with Reset Password + write pwdLastSet/lockoutTime on one OU,
    Reset Password + pwdLastSet only on another, and nothing on a third."""
    password = "Svc!Blink-" + secrets.token_hex(4)
    account = samba_dc.add_user("svc-blink", f"CN=Users,{samba_dc.base_dn}", password)
    ou = samba_dc.add_ou("Delegated")
    partial = samba_dc.add_ou("Partial")
    elsewhere = samba_dc.add_ou("Elsewhere")
    samba_dc.delegate(account, ou)
    samba_dc.delegate(account, partial, rights=("reset", "pwdLastSet"))
    return Delegation(account, password, ou, elsewhere, partial)


@pytest.fixture
def delegated(connect: Callable[..., ActiveDirectory], delegation: Delegation) -> ActiveDirectory:
    return connect(bind_user="svc-blink@example.test", bind_password=delegation.password)


# --- Entra ID (the fake tenant at the HTTP boundary) ----------------------------------


@pytest.fixture
def clock() -> Clock:
    """The time of the fake tenant and of the adapter under test."""
    return Clock()


@pytest.fixture
def sleeps() -> list[float]:
    """The adapter's back-off sleeps, recorded instead of slept."""
    return []
