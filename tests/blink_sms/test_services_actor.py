"""Services take a typed actor: they authorise, stay inside its clients, and audit it."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from blink_sms.actors import COMMAND_LINE, Forbidden, Role, admin_actor
from blink_sms.context import Blink
from blink_sms.models import AuditEvent, Client, RequestKind, User
from blink_sms.services import branding, clients, scope, users
from blink_sms.services.errors import Conflict, Invalid, NotFound

from ..conftest import World


@pytest.fixture
def fabrikam(world: World) -> Client:
    return world.another_client("fabrikam")


def test_a_client_admin_cannot_load_another_clients_rows(
    world: World, fabrikam: Client, services: Blink
) -> None:
    zed = world.person("zed", "+15551239001", client=fabrikam)
    actor = admin_actor(7, "ann@contoso.example", Role.CLIENT_ADMIN, world.client.id)
    with services.db.session() as session:
        assert scope.client(session, actor, "contoso").id == world.client.id
        with pytest.raises(NotFound):
            scope.client(session, actor, "fabrikam")
        with pytest.raises(NotFound):
            scope.user(session, actor, world.client, zed.user.id)  # not Contoso's user
        theirs = session.get(Client, fabrikam.id)
        assert theirs is not None
        with pytest.raises(NotFound):
            scope.user(session, actor, theirs, zed.user.id)
        assert [c.slug for c in session.execute(scope.clients(actor)).scalars()] == ["contoso"]
        assert session.execute(scope.users(actor).where(User.id == zed.user.id)).first() is None


def test_services_refuse_an_object_loaded_outside_the_actors_scope(
    world: World, fabrikam: Client, services: Blink
) -> None:
    """Defence in depth: a row handed over without the scoped lookup is still a 404."""
    zed = world.person("zed", "+15551239002", client=fabrikam)
    actor = admin_actor(7, "ann@contoso.example", Role.CLIENT_ADMIN, world.client.id)
    with services.db.session() as session:
        user = session.get(User, zed.user.id)
        client = session.get(Client, fabrikam.id)
        assert user is not None and client is not None
        with pytest.raises(NotFound):
            users.set_email(session, actor, user, "zed@fabrikam.example")
        with pytest.raises(NotFound):
            users.request(services, session, actor, user, kind=RequestKind.RESET)
        with pytest.raises(NotFound):
            branding.set_branding(session, actor, client, brand_color="#000000")
        with pytest.raises(NotFound):
            clients.create_client(
                session,
                services.secrets,
                actor,
                slug="new-one",
                name="New",
                directory_kind="sandbox",
                directory_settings={"path": "/tmp/x.sqlite"},
            )


def test_roles_decide_what_an_actor_may_do(world: World, services: Blink) -> None:
    auditor = admin_actor(8, "audit@msp.example", Role.AUDITOR, None)
    technician = admin_actor(9, "tech@msp.example", Role.MSP_TECHNICIAN, None)
    client_admin = admin_actor(7, "ann@contoso.example", Role.CLIENT_ADMIN, world.client.id)
    with services.db.session() as session:
        client = scope.client(session, auditor, "contoso")  # an auditor sees
        with pytest.raises(Forbidden):
            clients.update_client(session, auditor, client, name="Renamed")
        with pytest.raises(Forbidden):
            clients.update_client(session, client_admin, client, name="Renamed")
        assert clients.update_client(session, technician, client, name="Renamed") == ["name"]
        # A client admin manages their own branding, not their directory.
        assert branding.set_branding(session, client_admin, client, brand_color="#112233")
        with pytest.raises(Forbidden):
            clients.set_disabled(session, client_admin, client, disabled=True)


def test_every_change_is_audited_with_the_actor_and_where_it_came_from(
    world: World, services: Blink
) -> None:
    actor = admin_actor(9, "tech@msp.example", Role.MSP_TECHNICIAN, None, "198.51.100.7")
    with services.db.session() as session:
        client = scope.client(session, actor, "contoso")
        clients.update_client(session, actor, client, resets_per_hour=5, language="nl")
        event = session.execute(
            select(AuditEvent).where(AuditEvent.action == "client.updated")
        ).scalar_one()
    assert event.actor == "admin:9:tech@msp.example"
    assert event.client_id == world.client.id
    assert event.detail == {"fields": ["language", "resets_per_hour"], "source": "198.51.100.7"}


def test_bad_input_names_the_field_in_plain_words(world: World, services: Blink) -> None:
    with services.db.session() as session:
        client = scope.client(session, COMMAND_LINE, "contoso")
        for option, value, words in [
            ("sender_number", "not a number", "E.164"),
            ("default_region", "XX", "two-letter"),
            ("language", "tlh", "one of"),
            ("resets_per_hour", "0", "from 1 to 100"),
            ("name", "", "name"),
        ]:
            with pytest.raises(Invalid) as caught:
                clients.update_client(session, COMMAND_LINE, client, **{option: value})
            assert caught.value.field == option and words in caught.value.message
        with pytest.raises(Invalid, match="slug"):
            clients.create_client(
                session,
                services.secrets,
                COMMAND_LINE,
                slug="new",  # a word of the console's URLs
                name="New",
                directory_kind="sandbox",
                directory_settings={"path": "/tmp/x.sqlite"},
            )


def test_a_push_reset_needs_a_bound_phone_and_an_enabled_client(
    world: World, services: Blink
) -> None:
    pending = world.person("pam", None)
    with services.db.session() as session:
        user = session.get(User, pending.user.id)
        assert user is not None
        with pytest.raises(Conflict, match="no registered phone"):
            users.request(services, session, COMMAND_LINE, user, kind=RequestKind.RESET)
        client = scope.client(session, COMMAND_LINE, "contoso")
        clients.set_disabled(session, COMMAND_LINE, client, disabled=True)
        with pytest.raises(Conflict, match="disabled"):
            users.request(services, session, COMMAND_LINE, user, kind=RequestKind.UNLOCK)


def test_a_pushed_reset_is_audited_with_the_admin_and_their_address(
    world: World, services: Blink, monkeypatch: pytest.MonkeyPatch
) -> None:
    from blink_sms.queue import InProcessQueue

    monkeypatch.setattr(InProcessQueue, "enqueue", lambda self, *a, **kw: None)
    alice = world.person("alice", "+15551239003")
    actor = admin_actor(9, "tech@msp.example", Role.MSP_TECHNICIAN, None, "198.51.100.9")
    with services.db.session() as session:
        user = session.get(User, alice.user.id)
        assert user is not None
        users.request(services, session, actor, user, kind=RequestKind.RESET)
        event = session.execute(
            select(AuditEvent).where(AuditEvent.action == "reset.requested")
        ).scalar_one()
    assert event.actor == "admin:9:tech@msp.example"
    assert event.detail["source"] == "198.51.100.9" and event.detail["origin"] == "admin"
