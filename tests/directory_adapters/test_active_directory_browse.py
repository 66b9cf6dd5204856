"""Browsing Active Directory for an import, against the real Samba DC: groups and OUs
within the client's scopes, searches that are escaped, and where each one is."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from directory_adapters import DirectoryGroup, diagnose
from directory_adapters.active_directory import ActiveDirectory
from directory_adapters.active_directory.browse import canonical_path

from .contract import unique
from .samba import Person, SambaDC


def names(found: list[DirectoryGroup]) -> list[str]:
    return [item.name for item in found]


def test_groups_and_ous_come_with_their_dn_and_where_they_are(
    samba_dc: SambaDC, directory: ActiveDirectory, people: str
) -> None:
    group_name = unique("gp")
    dn = samba_dc.add_group(group_name, people)
    [group] = directory.list_groups(group_name)
    assert group.id.casefold() == dn.casefold()
    assert group.path == f"example.test/People/{group_name}"
    [ou] = directory.list_ous("People")
    assert (ou.id.casefold(), ou.path, ou.kind) == (people.casefold(), "example.test/People", "ou")


def test_an_ou_scope_limits_the_groups_and_ous_listed(
    samba_dc: SambaDC, connect: Callable[..., ActiveDirectory], person: Callable[..., Person]
) -> None:
    tag = unique("sc")
    inside, outside = samba_dc.add_ou(unique("In")), samba_dc.add_ou(unique("Out"))
    samba_dc.add_group(f"{tag}in", inside)
    samba_dc.add_group(f"{tag}out", outside)
    sub_in = samba_dc.add_ou(f"{tag}subin", inside)
    samba_dc.add_ou(f"{tag}subout", outside)
    member_in, member_out = person(ou=sub_in), person(ou=outside)

    scoped = connect(scopes=[inside])
    assert names(scoped.list_groups(tag)) == [f"{tag}in"]
    assert names(scoped.list_ous(tag)) == [f"{tag}subin"]
    assert scoped.count_users() == 1
    assert {u.id for u in scoped.list_users()} == {member_in.id}
    everything = connect()
    assert names(everything.list_groups(tag)) == [f"{tag}in", f"{tag}out"]
    assert member_out.id in {u.id for u in everything.list_users()}


def test_a_group_scope_lists_its_nested_groups_and_every_ou(
    samba_dc: SambaDC,
    people: str,
    connect: Callable[..., ActiveDirectory],
    person: Callable[..., Person],
) -> None:
    tag = unique("gs")
    outer = samba_dc.add_group(f"{tag}outer", people)
    samba_dc.add_group(f"{tag}inner", people, member_of=[outer])
    samba_dc.add_group(f"{tag}other", people)
    elsewhere = samba_dc.add_ou(f"{tag}ou")
    inside, outsider = person(ou=elsewhere), person(ou=elsewhere)
    samba_dc.add_member(outer, inside.dn)

    scoped = connect(scopes=[outer])
    assert names(scoped.list_groups(tag)) == [f"{tag}inner", f"{tag}outer"]
    # A scoped group's members may be in any OU; only they are counted in it.
    [ou] = scoped.list_ous(tag)
    assert scoped.count_users(ou=ou.id) == 1
    assert [u.id for u in scoped.list_users(ou=ou.id)] == [inside.id]
    assert connect().count_users(ou=ou.id) == 2
    assert outsider.id not in {u.id for u in scoped.list_users()}


def test_a_search_is_escaped_in_the_ldap_filter(
    samba_dc: SambaDC, directory: ActiveDirectory, people: str
) -> None:
    name = f"{unique('ge')} (EU)"
    samba_dc.add_group(name, people)
    assert names(directory.list_groups("(eu)")) == [name]
    # Unescaped, these would match every group or break the filter.
    assert directory.list_groups("*") == []
    assert directory.list_groups(")(cn=*") == []
    assert directory.list_ous("\\2a") == []


def test_count_users_counts_what_list_users_lists(
    samba_dc: SambaDC, directory: ActiveDirectory, person: Callable[..., Person]
) -> None:
    ou = samba_dc.add_ou(unique("Count"))
    group = samba_dc.add_group(unique("gc"), ou)
    members = [person(ou=ou) for _ in range(3)]
    samba_dc.add_member(group, members[0].dn)
    assert directory.count_users(ou=ou) == 3 == len(list(directory.list_users(ou=ou)))
    assert directory.count_users(group=group) == 1
    assert directory.count_users(group=group, ou=ou) == 1


def test_canonical_path_unescapes_names() -> None:
    dn = "CN=Smith\\, John,OU=IT Staff,OU=Corp,DC=corp,DC=example"
    assert canonical_path(dn) == "corp.example/Corp/IT Staff/Smith, John"
    assert canonical_path("not a dn") == "not a dn"


def test_diagnose_by_kind_runs_the_active_directory_diagnosis(samba_dc: SambaDC) -> None:
    findings = diagnose("active_directory", samba_dc.settings())
    assert [f.level for f in findings if f.level == "problem"] == []
    assert {"connection", "base DN and scopes", "password policy"} <= {f.topic for f in findings}


@pytest.mark.parametrize("limit", [0, -1])
def test_a_limit_below_one_lists_nothing(directory: ActiveDirectory, limit: int) -> None:
    assert directory.list_groups(limit=limit) == []
    assert directory.list_ous(limit=limit) == []
