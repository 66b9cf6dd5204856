"""Demo data: one client on a sandbox directory, a few enrolled users with phones, and
one newcomer who has no phone yet, to try the activation email and enrollment with; a
second client, so the console shows an MSP's many clients; and the demo MSP owner, who
signs in to the console with one click on the demo's pages (no password, no factor)."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select

from directory_adapters import UserNotFound
from directory_adapters.sandbox import SandboxDirectory

from ..actors import Actor, Role
from ..context import blink
from ..models import Admin, Client, User, UserStatus
from ..services import api_keys
from ..services.clients import create_client

# The demo's own pages act as the MSP owner (audited as "demo").
DEMO = Actor(kind="cli", label="demo", role=Role.MSP_OWNER)

GATEWAY_NUMBER = "+15005550006"
# The console's demo account: ``console`` signs it in with one click, only in the demo.
DEMO_OWNER_EMAIL = "owner@demo.invalid"


@dataclass(frozen=True)
class DemoPerson:
    username: str
    display_name: str
    phone: str | None
    language: str
    password: str


PEOPLE = (
    DemoPerson("alice", "Alice Johnson", "+15551230001", "en", "Winter!Sun42"),
    DemoPerson("bram", "Bram de Vries", "+31612345678", "nl", "Fiets!Regen77"),
    DemoPerson("lucia", "Lucía Fernández", "+34612345678", "es", "Playa!Sol2024"),
    DemoPerson("jonas", "Jonas Becker", "+4915112345678", "de", "Berg!Wald1987"),
    DemoPerson("chloe", "Chloé Martin", "+33612345678", "fr", "Soleil!Mer33"),
)
# Imported from the directory, not enrolled yet: the demo sends her the activation email.
NEWCOMER = DemoPerson("dana", "Dana Okafor", None, "en", "Harbor!Lamp58")

# A second client of the demo MSP, so the console shows more than one.
SECOND_CLIENT = "fabrikam"
SECOND_PEOPLE = (
    DemoPerson("omar", "Omar Haddad", "+15551230101", "en", "Desert!Rose11"),
    DemoPerson("sanne", "Sanne Visser", None, "nl", "Tulp!Wind2020"),
    DemoPerson("tom", "Tom Novak", None, "en", "River!Stone64"),
)


def seed(directory_path: str) -> Client:
    """Create (or find) the demo clients, their users and the demo owner. Idempotent."""
    client = _seed_client(directory_path, "demo", "Contoso (demo)", (*PEOPLE, NEWCOMER))
    second = directory_path.replace(".sqlite", "") + f"-{SECOND_CLIENT}.sqlite"
    _seed_client(second, SECOND_CLIENT, "Fabrikam (demo)", SECOND_PEOPLE)
    with blink().db.session() as session:
        if session.execute(select(Admin.id).where(Admin.email == DEMO_OWNER_EMAIL)).first() is None:
            session.add(Admin(email=DEMO_OWNER_EMAIL, name="Demo MSP owner", role=Role.MSP_OWNER))
            session.commit()
    return client


def api_key() -> str:
    """A read-write MSP key for trying the REST API, made at each start (shown once)."""
    with blink().db.session() as session:
        _, key = api_keys.create_key(session, DEMO, name="demo", client=None, writes=True)
    return key


def _seed_client(
    directory_path: str, slug: str, name: str, people: tuple[DemoPerson, ...]
) -> Client:
    app = blink()
    directory = SandboxDirectory(directory_path)
    domain = "contoso.example" if slug == "demo" else f"{slug}.example"
    with app.db.session() as session:
        client = session.execute(select(Client).where(Client.slug == slug)).scalar_one_or_none()
        if client is None:
            client = create_client(
                session,
                app.secrets,
                DEMO,
                slug=slug,
                name=name,
                directory_kind="sandbox",
                directory_settings={"path": directory_path},
                sender_number=GATEWAY_NUMBER,
                support_contact="the Contoso service desk, +1 555 010 0000",
                default_region="US",
            )
        for person in people:
            try:
                entry = directory.find_user(person.username)
            except UserNotFound:
                entry = directory.add_user(
                    person.username,
                    person.display_name,
                    email=f"{person.username}@{domain}",
                    mobile=person.phone,
                    password=person.password,
                    groups=("Staff",),
                )
            exists = session.execute(
                select(User).where(User.client_id == client.id, User.directory_id == entry.id)
            ).scalar_one_or_none()
            if exists is None:
                session.add(
                    User(
                        client_id=client.id,
                        directory_id=entry.id,
                        username=person.username,
                        display_name=person.display_name,
                        email=entry.email,
                        phone=person.phone,
                        status=UserStatus.ACTIVE if person.phone else UserStatus.PENDING,
                        language=person.language,
                    )
                )
        session.commit()
        return client
