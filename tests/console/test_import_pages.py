"""The console's import page: find a group or an OU, preview how many users, import them."""

from __future__ import annotations

import html
import re
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import pytest
from redis import Redis
from rq import Queue, SimpleWorker
from sqlalchemy import func, select

import directory_adapters
from blink_sms.actors import Role
from blink_sms.context import Blink
from blink_sms.models import AuditEvent, Client, User, UserStatus
from blink_sms.settings import Settings
from directory_adapters import LIST_GROUPS
from tests.conftest import World

from .conftest import Console

FLASH = re.compile(r'<p class="flash ([a-z]*)" role="status">(.*?)</p>', re.S)
IMPORT = "/admin/clients/contoso/import"


def flashes(response: Any) -> list[tuple[str, str]]:
    return [(kind, html.unescape(body)) for kind, body in FLASH.findall(response.text)]


def usernames(services: Blink, client: Client) -> list[str]:
    with services.db.session() as session:
        return list(
            session.execute(
                select(User.username).where(User.client_id == client.id).order_by(User.username)
            ).scalars()
        )


def actions(services: Blink, action: str) -> list[AuditEvent]:
    with services.db.session() as session:
        return list(
            session.execute(select(AuditEvent).where(AuditEvent.action == action)).scalars()
        )


@pytest.fixture
def admin(console_as: Callable[..., Console], world: World) -> Console:
    return console_as(Role.CLIENT_ADMIN, world.client)


@pytest.fixture
def staff(world: World) -> World:
    """A directory with groups (Sales nested in Staff) and OUs."""
    directory = world.directory
    directory.add_group("Sales", member_of=["Staff"])
    directory.add_group("Support")
    directory.add_user(
        "ann", "Ann Archer", email="ann@contoso.example", groups=["Sales"], ou="HQ/Sales"
    )
    directory.add_user("ben", "Ben Baker", email="ben@contoso.example", groups=["Staff"], ou="HQ")
    directory.add_user("cat", "Cat Cole", groups=["Sales"], ou="HQ/Sales")  # no email
    directory.add_user("dan", "Dan Dow", email="dan@contoso.example", groups=["Support"], ou="Lab")
    return world


def test_a_search_lists_matching_groups_and_ous_with_preview_links(
    admin: Console, staff: World
) -> None:
    page = admin.http.get(IMPORT + "?q=sa")

    assert page.status_code == 200
    body = html.unescape(page.text)
    assert re.findall(r"<tr><td>(\w+)</td>", body) == ["Sales", "sales"]  # a group, an OU
    links = [html.unescape(link) for link in re.findall(r'href="([^"]+)">Preview<', page.text)]
    assert any("group=sales" in link for link in links)
    assert any("ou=hq/sales" in link.replace("%2F", "/") for link in links)
    assert "Support" not in body
    everything = admin.http.get(IMPORT)
    assert {"Sales", "Staff", "Support"} <= set(re.findall(r"<tr><td>(\w+)</td>", everything.text))


def test_ous_are_not_offered_by_a_directory_without_them(
    admin: Console, staff: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(directory_adapters.CAPABILITIES, "sandbox", frozenset({LIST_GROUPS}))

    page = admin.http.get(IMPORT + "?q=sa")

    assert "Organisational units" not in page.text
    assert re.findall(r"<tr><td>(\w+)</td>", page.text) == ["Sales"]


def test_a_preview_counts_the_users_and_offers_the_import(admin: Console, staff: World) -> None:
    page = admin.http.get(IMPORT + "?group=staff&name=Staff")

    assert page.status_code == 200
    assert "Group Staff" in page.text
    assert "Import 3 users" in page.text  # ann and cat through Sales, ben directly
    assert 'name="group" value="staff"' in page.text
    everyone = admin.http.get(IMPORT + "?all=1")
    assert "Import 4 users" in everyone.text and 'name="all" value="1"' in everyone.text


def test_importing_a_group_creates_its_users_and_shows_the_summary(
    admin: Console, staff: World, services: Blink
) -> None:
    page = admin.post(IMPORT, {"group": "sales", "name": "Sales"}, follow_redirects=True)

    assert page.request.path == "/admin/clients/contoso/users"
    assert (
        "success",
        "Imported Sales: 1 new, 0 updated, 0 unchanged, 1 skipped "
        "(1 without email, 0 disabled in the directory, 0 protected)",
    ) in flashes(page)
    assert usernames(services, staff.client) == ["ann"]
    assert ">Ann Archer<" in page.text
    with services.db.session() as session:
        ann = session.execute(select(User).where(User.username == "ann")).scalar_one()
        assert ann.status is UserStatus.PENDING and ann.email == "ann@contoso.example"
    assert len(actions(services, "user.imported")) == 1
    [run] = actions(services, "users.import_run")
    assert run.detail["group"] == "sales" and run.detail["new"] == 1
    assert run.actor == admin.actor.label

    again = admin.post(IMPORT, {"group": "sales", "name": "Sales"}, follow_redirects=True)
    assert "0 new, 0 updated, 1 unchanged" in flashes(again)[0][1]
    assert usernames(services, staff.client) == ["ann"]


def test_importing_an_ou_or_everyone(admin: Console, staff: World, services: Blink) -> None:
    admin.post(IMPORT, {"ou": "hq"})
    assert usernames(services, staff.client) == ["ann", "ben"]

    page = admin.post(IMPORT, {"all": "1"}, follow_redirects=True)

    assert (
        "Imported everyone in the directory's scope: 1 new, 0 updated, 2 unchanged"
        in (flashes(page)[0][1])
    )
    assert usernames(services, staff.client) == ["ann", "ben", "dan"]


def test_an_import_without_a_scope_is_refused(
    admin: Console, staff: World, services: Blink
) -> None:
    page = admin.post(IMPORT, {"group": "sales", "ou": "hq"}, follow_redirects=True)

    assert ("error", "pick one group, one OU, or everyone in the directory") in flashes(page)
    assert usernames(services, staff.client) == []


def test_a_directory_failure_is_told_in_plain_words(
    admin: Console, staff: World, services: Blink
) -> None:
    staff.directory.set_outage()

    search = admin.http.get(IMPORT + "?q=sa")
    imported = admin.post(IMPORT, {"group": "sales"}, follow_redirects=True)

    staff.directory.clear_outage()
    assert search.status_code == 200
    assert "the directory did not answer" in html.unescape(search.text)
    [(kind, message)] = flashes(imported)
    assert kind == "error" and "try again in a minute" in message
    assert imported.request.path == IMPORT and imported.request.args["group"] == "sales"
    assert usernames(services, staff.client) == []
    unknown = admin.http.get(IMPORT + "?group=nobody")
    assert "the directory settings or the scope are wrong: no group" in html.unescape(unknown.text)


def test_an_auditor_may_not_import(
    console_as: Callable[..., Console], staff: World, services: Blink
) -> None:
    auditor = console_as(Role.AUDITOR)

    assert auditor.http.get(IMPORT + "?q=sa").status_code == 403
    assert auditor.post(IMPORT, {"group": "sales"}).status_code == 403
    assert usernames(services, staff.client) == []


def test_a_client_admin_cannot_import_into_another_client(
    admin: Console, staff: World, fabrikam: Client, services: Blink
) -> None:
    assert admin.http.get("/admin/clients/fabrikam/import?q=sa").status_code == 404
    assert admin.post("/admin/clients/fabrikam/import", {"group": "sales"}).status_code == 404
    with services.db.session() as session:
        assert session.execute(select(func.count()).select_from(User)).scalar_one() == 0


# --- with Redis: the import is a job on the client's queue, with a progress page ------------


class TestAsAJob:
    @pytest.fixture
    def settings(self, settings: Settings, redis_url: str) -> Settings:
        return settings.with_changes(redis_url=redis_url)

    @staticmethod
    def run_worker(redis_url: str) -> None:
        redis = Redis.from_url(redis_url)
        SimpleWorker([Queue("client-contoso", connection=redis)], connection=redis).work(burst=True)

    def test_it_queues_the_import_with_its_id_only_and_shows_its_progress(
        self, admin: Console, staff: World, services: Blink, redis_url: str
    ) -> None:
        started = admin.post(IMPORT, {"group": "staff", "name": "Staff"})

        assert started.status_code == 302
        location = urlsplit(started.headers["Location"])
        assert location.path == IMPORT and location.query.startswith("job=")
        path = f"{location.path}?{location.query}"
        import_id = int(location.query.removeprefix("job="))
        [job] = Queue("client-contoso", connection=Redis.from_url(redis_url)).jobs
        assert job.args == (import_id,) and job.kwargs == {}
        waiting = admin.http.get(path)
        assert waiting.status_code == 200 and waiting.headers["Refresh"] == "2"
        assert "queued" in waiting.text and "Import Staff" in html.unescape(waiting.text)
        assert usernames(services, staff.client) == []

        self.run_worker(redis_url)

        done = admin.http.get(path)
        assert "Refresh" not in done.headers
        assert "2 new, 0 updated, 0 unchanged, 1 skipped (1 without email" in done.text
        assert usernames(services, staff.client) == ["ann", "ben"]
        [run] = actions(services, "users.import_run")
        assert run.actor == admin.actor.label and run.detail["group"] == "staff"

    def test_a_failed_import_says_why_in_plain_words(
        self, admin: Console, staff: World, services: Blink, redis_url: str
    ) -> None:
        started = admin.post(IMPORT, {"group": "staff"})
        staff.directory.set_outage()

        self.run_worker(redis_url)

        staff.directory.clear_outage()
        page = admin.http.get(started.headers["Location"])
        assert "failed" in page.text and "Refresh" not in page.headers
        assert "the directory did not answer" in html.unescape(page.text)
        assert usernames(services, staff.client) == []

    def test_another_clients_admin_and_an_auditor_cannot_see_the_progress(
        self,
        admin: Console,
        console_as: Callable[..., Console],
        staff: World,
        fabrikam: Client,
    ) -> None:
        path = admin.post(IMPORT, {"all": "1"}).headers["Location"]
        job = urlsplit(path).query
        outsider = console_as(Role.CLIENT_ADMIN, fabrikam)

        assert outsider.http.get(path).status_code == 404
        # Another client's import id, asked for under one's own client: as unknown.
        assert outsider.http.get(f"/admin/clients/fabrikam/import?{job}").status_code == 404
        assert admin.http.get(IMPORT + "?job=999").status_code == 404
        assert admin.http.get(IMPORT + "?job=x").status_code == 404
        assert console_as(Role.AUDITOR).http.get(path).status_code == 403
        assert admin.http.get(path).status_code == 200
