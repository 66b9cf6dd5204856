"""Browsing Entra ID for an import, against the fake tenant: the Graph queries behind
group search and user counts, paging, permissions, and what Entra ID does not have."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import responses

from directory_adapters import (
    ConfigurationError,
    OperationNotSupported,
    PermissionDenied,
    diagnose,
)
from directory_adapters.entra_id import EntraIdDirectory
from directory_adapters.entra_id import diagnose as diagnose_entra
from tests.support.fake_graph import FULL_PERMISSIONS, FakeEntra, GraphCall


@pytest.fixture
def tenant() -> Iterator[FakeEntra]:
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        yield FakeEntra(page_size=3).install(rsps)


def connect(tenant: FakeEntra, **settings: Any) -> EntraIdDirectory:
    return EntraIdDirectory.from_settings(tenant.settings(**settings), sleep=lambda _: None)


@pytest.fixture
def adapter(tenant: FakeEntra) -> EntraIdDirectory:
    return connect(tenant)


def calls_to(tenant: FakeEntra, path: str) -> list[GraphCall]:
    return [call for call in tenant.graph_calls if call.path == path]


def test_a_search_is_a_sorted_graph_search_with_consistency_level(
    tenant: FakeEntra, adapter: EntraIdDirectory
) -> None:
    for name in ("Sales Nordics", "Sales EU", "Support"):
        tenant.add_group(name)
    assert [group.name for group in adapter.list_groups("SALES")] == ["Sales EU", "Sales Nordics"]
    [call] = calls_to(tenant, "/groups")
    assert call.query["$search"] == '"displayName:SALES"'
    assert (call.query["$orderby"], call.query["$count"]) == ("displayName", "true")
    assert call.headers["ConsistencyLevel"] == "eventual"


def test_without_a_search_groups_come_sorted_from_a_plain_query(
    tenant: FakeEntra, adapter: EntraIdDirectory
) -> None:
    ids = {name: tenant.add_group(name) for name in ("beta", "Alpha", "gamma")}
    found = adapter.list_groups()
    assert [(g.id, g.name, g.path, g.kind) for g in found] == [
        (ids["Alpha"], "Alpha", None, "group"),
        (ids["beta"], "beta", None, "group"),
        (ids["gamma"], "gamma", None, "group"),
    ]
    [call] = calls_to(tenant, "/groups")
    assert "$search" not in call.query
    assert "ConsistencyLevel" not in call.headers


def test_only_the_pages_needed_for_the_limit_are_read(
    tenant: FakeEntra, adapter: EntraIdDirectory
) -> None:
    for number in range(10):
        tenant.add_group(f"Team {number:02}")
    found = adapter.list_groups("team", limit=4)
    assert [group.name for group in found] == ["Team 00", "Team 01", "Team 02", "Team 03"]
    pages = [call for call in tenant.graph_calls if call.path.startswith("/groups")]
    assert len(pages) == 2  # pages of 3 (the tenant's page size): 4 names need 2, not 4


def test_quotes_and_backslashes_in_a_search_are_escaped(
    tenant: FakeEntra, adapter: EntraIdDirectory
) -> None:
    tenant.add_group('R&D "core" \\ team')
    found = adapter.list_groups('r&d "core" \\')
    assert [group.name for group in found] == ['R&D "core" \\ team']
    [call] = calls_to(tenant, "/groups")
    assert call.query["$search"] == '"displayName:r&d \\"core\\" \\\\"'


def test_a_listed_group_id_lists_and_counts_its_members(
    tenant: FakeEntra, adapter: EntraIdDirectory
) -> None:
    outer = tenant.add_group("All Staff")
    inner = tenant.add_group("Sales", member_of=[outer])
    for index in range(4):
        tenant.add_user(f"u{index}", groups=[inner if index % 2 else outer])
    tenant.add_user("outsider")
    [group] = adapter.list_groups("all staff")
    assert adapter.count_users(group=group.id) == 4 == len(list(adapter.list_users(group=group.id)))
    assert adapter.count_users(group="Sales") == 2  # by display name, as list_users takes


def test_count_users_is_one_counted_query(tenant: FakeEntra, adapter: EntraIdDirectory) -> None:
    for index in range(7):
        tenant.add_user(f"u{index}")
    assert adapter.count_users() == 7
    [call] = calls_to(tenant, "/users")  # not the 3 pages of 3 that listing would take
    assert (call.query["$count"], call.headers["ConsistencyLevel"]) == ("true", "eventual")


def test_count_users_of_an_unknown_group_raises_configuration_error(
    adapter: EntraIdDirectory,
) -> None:
    with pytest.raises(ConfigurationError):
        adapter.count_users(group="0d6e7f8a-1b2c-4d3e-8f9a-0b1c2d3e4f5a")
    with pytest.raises(ConfigurationError):
        adapter.count_users(group="No Such Group")


def test_entra_id_has_no_organisational_units(adapter: EntraIdDirectory) -> None:
    with pytest.raises(OperationNotSupported, match="by group"):
        adapter.list_ous()
    with pytest.raises(OperationNotSupported):
        adapter.count_users(ou="OU=Staff")


def test_listing_groups_without_the_permission_names_it(tenant: FakeEntra) -> None:
    tenant.permissions = set(FULL_PERMISSIONS - {"GroupMember.Read.All"})
    with pytest.raises(PermissionDenied) as refused:
        connect(tenant).list_groups("sales")
    assert refused.value.missing_right == "GroupMember.Read.All"


def test_diagnose_by_kind_runs_the_entra_diagnosis(tenant: FakeEntra) -> None:
    by_kind = diagnose("entra_id", tenant.settings())
    direct = diagnose_entra(tenant.settings())
    assert [(f.level, f.topic) for f in by_kind] == [(f.level, f.topic) for f in direct]
    assert by_kind
    assert all(f.level == "ok" for f in by_kind)
