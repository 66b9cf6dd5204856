"""Branding: the name, logo, colour, text and support contact users see.

Each client may set its own (:func:`set_branding`); the MSP sets the default of every
client that leaves a part empty (:func:`set_msp_branding`, one row). What users see is
:meth:`~blink_sms.messaging.pages.Branding.of`: the client's value, else the MSP's,
else the ``BLINK_BRAND_*`` setting, else the product's own. :func:`brand_of` puts them
together; :func:`msp_branding` reads the MSP's row at most every few seconds per
process, so the enrollment pages and emails need no query for it.
"""

from __future__ import annotations

import threading
import time
import weakref
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, cast

from sqlalchemy import Table, select
from sqlalchemy.orm import Session

from ..actors import Actor, Permission
from ..db import Database, insert_ignoring_conflicts
from ..messaging.email import EMAIL_ADDRESS
from ..messaging.pages import HEX_COLOR, Branding, MspBrand
from ..models import Client, MspBranding
from . import audit
from .errors import Invalid
from .scope import NotFound

if TYPE_CHECKING:
    from ..context import Blink

FIELDS = ("brand_name", "brand_logo_url", "brand_color", "email_message", "support_email")
MSP_ROW = 1  # the MSP's branding is the one row with this id
# How long a process trusts the MSP's branding it read. A save invalidates it at once in
# the saving process; other processes (web workers, job workers) see it this much later.
CACHE_SECONDS = 5.0


def clean(name: str, value: Any) -> str | None:
    """A branding field's value as stored; None for empty. ``Invalid`` when refused."""
    text = str(value).strip() if value is not None else ""
    if not text:
        return None  # back to the default
    if name == "brand_name" and len(text) > 100:
        raise Invalid(name, "at most 100 characters")
    if name == "brand_logo_url" and (not text.startswith("https://") or len(text) > 500):
        raise Invalid(name, "must be an https:// address (at most 500 characters)")
    if name == "brand_color" and not HEX_COLOR.fullmatch(text):
        raise Invalid(name, "must look like #1f5fbf")
    if name == "email_message" and len(text) > 2000:
        raise Invalid(name, "at most 2,000 characters")
    if name == "support_email" and (len(text) > 320 or not EMAIL_ADDRESS.fullmatch(text)):
        raise Invalid(name, "not an email address")
    return text


def set_branding(session: Session, actor: Actor, client: Client, **changes: Any) -> list[str]:
    """Change branding fields; an empty value goes back to the default. Commits.

    ``invitation_hours`` (how long an activation link works) may be given too.
    Returns the names of the fields that changed.
    """
    if not actor.sees(client.id):
        raise NotFound("client")
    actor.require(Permission.MANAGE_CLIENT)
    cleaned: dict[str, Any] = {}
    for name, value in changes.items():
        if name == "invitation_hours":
            try:
                hours = int(value)
            except (TypeError, ValueError):
                raise Invalid(name, "a whole number of hours from 1 to 720") from None
            if not 1 <= hours <= 24 * 30:
                raise Invalid(name, "a whole number of hours from 1 to 720")
            cleaned[name] = hours
        elif name in FIELDS:
            cleaned[name] = clean(name, value)
        else:
            raise Invalid(name, "is not a branding field")
    changed = sorted(name for name, value in cleaned.items() if getattr(client, name) != value)
    if not changed:
        return []
    for name in changed:
        setattr(client, name, cleaned[name])
    audit.record(
        session, "client.branding_changed", actor=actor, client_id=client.id, fields=changed
    )
    session.commit()
    return changed


# --- the MSP's branding ----------------------------------------------------------------------


class _MspCache:
    """The MSP's branding per database, for :data:`CACHE_SECONDS`.

    Keyed weakly by the :class:`~blink_sms.db.Database` (one per app), so apps never
    share an entry and a disposed app's entry goes with it. A generation per database
    keeps a read that raced a save from storing what it read before the save.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._entries: weakref.WeakKeyDictionary[Database, tuple[float, MspBrand]] = (
            weakref.WeakKeyDictionary()
        )
        self._generations: weakref.WeakKeyDictionary[Database, int] = weakref.WeakKeyDictionary()

    def get(self, db: Database, load: Callable[[], MspBrand]) -> MspBrand:
        now = time.monotonic()
        with self._lock:
            entry = self._entries.get(db)
            if entry is not None and entry[0] > now:
                return entry[1]
            generation = self._generations.get(db, 0)
        brand = load()
        with self._lock:
            if self._generations.get(db, 0) == generation:
                self._entries[db] = (now + CACHE_SECONDS, brand)
        return brand

    def invalidate(self, db: Database) -> None:
        with self._lock:
            self._generations[db] = self._generations.get(db, 0) + 1
            self._entries.pop(db, None)


_cache = _MspCache()


def _read(session: Session) -> MspBrand:
    # Columns, not the entity: always what is stored, never an older copy the session holds.
    row = session.execute(
        select(*(getattr(MspBranding, name) for name in FIELDS)).where(MspBranding.id == MSP_ROW)
    ).first()
    if row is None:
        return MspBrand()
    return MspBrand(**dict(zip(FIELDS, row, strict=True)))


def msp_branding(app: Blink, session: Session | None = None) -> MspBrand:
    """The MSP's saved branding (nothing saved: all None), read at most every few seconds.

    ``session``: the caller's, if it may be inside a transaction. SQLite has one writer
    at a time, and a second session of the same thread would wait for the first one's
    transaction to end; without a session, a short one of its own reads the row.
    """

    def load() -> MspBrand:
        if session is not None:
            return _read(session)
        with app.db.session() as own:
            return _read(own)

    return _cache.get(app.db, load)


def brand_of(app: Blink, client: Client, session: Session | None = None) -> Branding:
    """What the client's users see: its branding over the MSP's over the settings."""
    return Branding.of(client, app.settings, msp_branding(app, session))


def read_msp_branding(session: Session, actor: Actor) -> MspBrand:
    """The MSP's branding as saved, for its form (not cached). MSP-wide actors only."""
    if not actor.msp_wide:
        raise NotFound("page")
    actor.require(Permission.VIEW)
    return _read(session)


def set_msp_branding(app: Blink, session: Session, actor: Actor, **changes: Any) -> list[str]:
    """Change the MSP's branding (the default of every client); empty: no default. Commits.

    MSP owners and technicians only (a client admin gets ``NotFound``: the page is not
    theirs to see). ``changes`` are fields of :data:`FIELDS`, checked as a client's are.
    Returns the names of the fields that changed; every process sees them within
    :data:`CACHE_SECONDS`, this one at once.
    """
    if not actor.msp_wide:
        raise NotFound("page")
    actor.require(Permission.ONBOARD)
    cleaned: dict[str, str | None] = {}
    for name, value in changes.items():
        if name not in FIELDS:
            raise Invalid(name, "is not a branding field")
        cleaned[name] = clean(name, value)
    if not any(getattr(_read(session), name) != value for name, value in cleaned.items()):
        return []
    # The row exists from the first save on; two first saves at once both find it here.
    table = cast(Table, MspBranding.__table__)
    session.execute(
        insert_ignoring_conflicts(session, table, index_elements=["id"]).values(id=MSP_ROW)
    )
    row = session.get(MspBranding, MSP_ROW, with_for_update=True, populate_existing=True)
    assert row is not None  # inserted above, and never deleted
    changed = sorted(name for name, value in cleaned.items() if getattr(row, name) != value)
    for name in changed:
        setattr(row, name, cleaned[name])
    if changed:
        audit.record(session, "msp.branding_changed", actor=actor, fields=changed)
    session.commit()
    _cache.invalidate(app.db)
    return changed
