"""Demo data: one client on a sandbox directory, a few enrolled users with phones, and
one newcomer who has no phone yet, to try the activation email and enrollment with."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select

from directory_adapters import UserNotFound
from directory_adapters.sandbox import SandboxDirectory

from ..context import blink
from ..models import Client, User, UserStatus
from ..services.clients import create_client

GATEWAY_NUMBER = "+15005550006"


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


def seed(directory_path: str) -> Client:
    """Create (or find) the demo client and its enrolled users. Idempotent."""
    app = blink()
    directory = SandboxDirectory(directory_path)
    with app.db.session() as session:
        client = session.execute(select(Client).where(Client.slug == "demo")).scalar_one_or_none()
        if client is None:
            client = create_client(
                session,
                app.secrets,
                slug="demo",
                name="Contoso (demo)",
                directory_kind="sandbox",
                directory_settings={"path": directory_path},
                actor="demo",
                sender_number=GATEWAY_NUMBER,
                support_contact="the Contoso service desk, +1 555 010 0000",
                default_region="US",
            )
        for person in (*PEOPLE, NEWCOMER):
            try:
                entry = directory.find_user(person.username)
            except UserNotFound:
                entry = directory.add_user(
                    person.username,
                    person.display_name,
                    email=f"{person.username}@contoso.example",
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
