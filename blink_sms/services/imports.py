"""Importing users: browse a client's directory groups and OUs, preview, import.

An admin searches the directory for a group or an organisational unit, sees how many
users it holds (``count_users``, no list is fetched for that), and imports them
(:func:`blink_sms.services.users.import_users`). What a directory can list is its
kind's capabilities (``directory_adapters.CAPABILITIES``): Entra ID has groups but no
OUs. Every directory failure becomes :class:`DirectoryTrouble`, a refusal whose
message says in plain words what went wrong and what to check.

With Redis, an import from the console is a job on the client's queue (its worker may
be the one next to the client's domain controllers): :func:`start_import` queues it with
its id as the only argument, and the job writes how far it got to Redis, where the
console's progress page reads it (:func:`import_progress`). Without Redis the console
runs it in the request (:func:`run_import`).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

import structlog
from sqlalchemy.orm import Session

from directory_adapters import (
    CAPABILITIES,
    LIST_GROUPS,
    LIST_OUS,
    ConfigurationError,
    DirectoryAdapter,
    DirectoryError,
    DirectoryGroup,
    DirectoryUnavailable,
    OperationNotSupported,
    OperationRefused,
    PasswordRejected,
    PermissionDenied,
    UserNotFound,
)

from ..actors import Actor, Permission
from ..context import Blink
from ..crypto import SecretBoxError
from ..models import Client
from . import audit
from . import users as users_service
from .clients import require_enabled
from .errors import Conflict, Invalid
from .scope import NotFound

log = structlog.get_logger(__name__)

SEARCH_LIMIT = 50


class DirectoryTrouble(Conflict):
    """The directory could not do what was asked; ``str()`` says why, in plain words."""


# What each failure means for the admin who asked, and what to check ({detail}: its message).
_MEANINGS: tuple[tuple[type[DirectoryError], str], ...] = (
    (DirectoryUnavailable, "the directory did not answer ({detail}): try again in a minute"),
    (PasswordRejected, "the directory refused the password ({detail})"),
    (OperationRefused, "the directory refused: {detail}"),
    (OperationNotSupported, "this kind of directory cannot do that ({detail})"),
    (UserNotFound, "the directory does not know this user any more ({detail}): import again"),
    (ConfigurationError, "the directory settings or the scope are wrong: {detail}"),
)


def plain_words(err: DirectoryError | SecretBoxError) -> str:
    """What a directory failure means for the admin who asked, and what to check."""
    if isinstance(err, SecretBoxError):
        return (
            "the directory settings cannot be read with this deployment's secret key "
            f"({err}): enter the directory settings again"
        )
    detail = err.message.rstrip(".")
    if isinstance(err, PermissionDenied):
        right = f": grant it {err.missing_right}" if err.missing_right else ""
        return f"the directory's service account may not do this ({detail}){right}"
    for kind, meaning in _MEANINGS:
        if isinstance(err, kind):
            return meaning.format(detail=detail)
    return f"the directory refused: {detail}"


def _check(actor: Actor, client: Client) -> None:
    if not actor.sees(client.id):
        raise NotFound("client")
    actor.require(Permission.MANAGE_USERS)
    require_enabled(client)


def _adapter(app: Blink, client: Client) -> DirectoryAdapter:
    try:
        return app.directories.for_client(client)
    except (DirectoryError, SecretBoxError) as err:
        raise DirectoryTrouble(plain_words(err)) from err


def capabilities(client: Client) -> frozenset[str]:
    """What ``client``'s kind of directory can do (names from ``directory_adapters.base``)."""
    return frozenset(CAPABILITIES.get(client.directory_kind, ()))


@dataclass(frozen=True)
class Browse:
    """Groups and OUs whose name matches ``search``; ``more_*`` when the limit cut the list."""

    search: str
    groups: list[DirectoryGroup] = field(default_factory=list)
    ous: list[DirectoryGroup] = field(default_factory=list)
    lists_groups: bool = False
    lists_ous: bool = False
    more_groups: bool = False
    more_ous: bool = False


def browse(
    app: Blink, actor: Actor, client: Client, search: str = "", *, limit: int = SEARCH_LIMIT
) -> Browse:
    """The directory's groups (and OUs, where it has them) whose name contains ``search``.

    Asks for one more than ``limit`` of each, to say when there are more to narrow down.
    """
    _check(actor, client)
    search = search.strip()[:200]
    can = capabilities(client)
    lists_groups, lists_ous = LIST_GROUPS in can, LIST_OUS in can
    adapter = _adapter(app, client)
    try:
        groups = adapter.list_groups(search, limit=limit + 1) if lists_groups else []
        ous = adapter.list_ous(search, limit=limit + 1) if lists_ous else []
    except DirectoryError as err:
        raise DirectoryTrouble(plain_words(err)) from err
    return Browse(
        search=search,
        groups=groups[:limit],
        ous=ous[:limit],
        lists_groups=lists_groups,
        lists_ous=lists_ous,
        more_groups=len(groups) > limit,
        more_ous=len(ous) > limit,
    )


@dataclass(frozen=True)
class Scope:
    """What to import: a group, an OU, or (both None) everyone in the directory's scope."""

    group: str | None = None
    ou: str | None = None

    @classmethod
    def of(cls, *, group: str | None, ou: str | None, everyone: bool = False) -> Scope:
        """The scope an admin picked; ``Invalid`` unless exactly one of the three."""
        group, ou = (group or "").strip() or None, (ou or "").strip() or None
        if sum((group is not None, ou is not None, everyone)) != 1:
            raise Invalid("scope", "pick one group, one OU, or everyone in the directory")
        return cls(group, ou)

    @property
    def everyone(self) -> bool:
        return self.group is None and self.ou is None


def preview(app: Blink, actor: Actor, client: Client, scope: Scope) -> int:
    """How many users an import of ``scope`` would read (the directory counts them)."""
    _check(actor, client)
    adapter = _adapter(app, client)
    try:
        return adapter.count_users(group=scope.group, ou=scope.ou)
    except DirectoryError as err:
        raise DirectoryTrouble(plain_words(err)) from err


def _import(
    app: Blink,
    session: Session,
    actor: Actor,
    client: Client,
    scope: Scope,
    progress: Callable[[int, int], None] = lambda done, total: None,
) -> users_service.ImportSummary:
    _check(actor, client)
    try:
        entries = users_service.directory_users(app, actor, client, group=scope.group, ou=scope.ou)
    except (DirectoryError, SecretBoxError) as err:
        raise DirectoryTrouble(plain_words(err)) from err
    total, done = len(entries), 0
    progress(0, total)

    def tick(entry: object) -> None:
        nonlocal done
        done += 1
        if done % PROGRESS_EVERY == 0:
            progress(done, total)

    summary = users_service.import_users(session, actor, client, entries, progress=tick)
    audit.record(
        session,
        "users.import_run",
        actor=actor,
        client_id=client.id,
        group=scope.group,
        ou=scope.ou,
        read=total,
        new=summary.new,
        updated=summary.updated,
        unchanged=summary.unchanged,
        skipped=summary.total - summary.new - summary.updated - summary.unchanged,
        disabled=len(summary.disabled),
    )
    session.commit()
    progress(total, total)
    return summary


def run_import(
    app: Blink, session: Session, actor: Actor, client: Client, scope: Scope
) -> users_service.ImportSummary:
    """Import ``scope`` now: create or update its users, disable those the directory
    disabled (:func:`~blink_sms.services.users.import_users`). Commits; one audit event
    for the import as a whole besides one per user created or changed."""
    return _import(app, session, actor, client, scope)


# --- the import as a job, with its progress in Redis -----------------------------------------

PROGRESS_EVERY = 100  # entries between two progress writes
PROGRESS_TTL = 86_400  # an import's progress is kept a day, for its page
_COUNTER = "blink:imports"


def _progress_key(import_id: int) -> str:
    return f"blink:import:{import_id}"


@dataclass(frozen=True)
class ImportProgress:
    """Where a queued import is: ``state`` is queued, running, done or failed."""

    id: int
    client_id: int
    scope: Scope
    name: str
    state: str
    done: int = 0
    total: int | None = None
    summary: users_service.ImportSummary | None = None
    error: str | None = None

    @property
    def finished(self) -> bool:
        return self.state in ("done", "failed")


def start_import(
    app: Blink, actor: Actor, client: Client, scope: Scope, *, name: str = ""
) -> int | None:
    """Queue the import of ``scope`` on the client's queue and return its id, for
    :func:`import_progress`; None when there is no Redis queue or the actor is not a
    signed-in admin (then run it now with :func:`run_import`).

    The job's only argument is the id; what to import and who asked (the admin's id,
    whose role the job checks again) wait in Redis beside the progress.
    """
    _check(actor, client)
    redis = app.redis
    if redis is None or actor.admin_id is None:
        return None
    import_id = int(redis.incr(_COUNTER))
    key = _progress_key(import_id)
    redis.hset(
        key,
        mapping={
            "client_id": client.id,
            "admin_id": actor.admin_id,
            "source": actor.source or "",
            "group": scope.group or "",
            "ou": scope.ou or "",
            "name": name[:200],
            "state": "queued",
            "done": 0,
        },
    )
    redis.expire(key, PROGRESS_TTL)
    app.queue.enqueue(
        client.queue_name, import_job, import_id, job_id=f"import-{import_id}", retry=False
    )
    return import_id


def _read(app: Blink, import_id: int) -> dict[str, str]:
    if app.redis is None:
        return {}
    raw = app.redis.hgetall(_progress_key(import_id))
    return {k.decode(): v.decode() for k, v in raw.items()}


def import_progress(app: Blink, actor: Actor, client: Client, import_id: int) -> ImportProgress:
    """A queued import of ``client``'s, as far as it got (``NotFound`` for another
    client's import, or one whose progress has expired)."""
    if not actor.sees(client.id):
        raise NotFound("client")
    actor.require(Permission.MANAGE_USERS)
    data = _read(app, import_id)
    if not data or int(data["client_id"]) != client.id:
        raise NotFound("import")
    summary = None
    if data.get("summary"):
        fields = json.loads(data["summary"])
        summary = users_service.ImportSummary(**fields)
    return ImportProgress(
        id=import_id,
        client_id=client.id,
        scope=Scope(data["group"] or None, data["ou"] or None),
        name=data["name"],
        state=data["state"],
        done=int(data.get("done") or 0),
        total=int(data["total"]) if data.get("total") else None,
        summary=summary,
        error=data.get("error") or None,
    )


def import_job(import_id: int) -> None:
    """Job: run a queued import (:func:`perform_import`)."""
    from .. import queue
    from ..context import blink

    queue.start_job_logging()
    perform_import(blink(), import_id)


def perform_import(app: Blink, import_id: int) -> None:
    """Run the import ``import_id`` as the admin who asked, writing its progress."""
    from ..actors import Forbidden, Role, admin_actor
    from ..models import Admin

    redis = app.redis
    data = _read(app, import_id)
    if redis is None or not data or data["state"] != "queued":
        log.info("import is gone or already run", import_id=import_id)
        return
    key = _progress_key(import_id)
    redis.hset(key, "state", "running")

    def progress(done: int, total: int) -> None:
        redis.hset(key, mapping={"state": "running", "done": done, "total": total})

    with app.db.session() as session:
        admin = session.get(Admin, int(data["admin_id"]))
        client = session.get(Client, int(data["client_id"]))
        try:
            if admin is None or admin.disabled_at is not None or client is None:
                raise Conflict("the admin who asked, or the client, is gone")
            actor = admin_actor(
                admin.id, admin.email, Role(admin.role), admin.client_id, data["source"] or None
            )
            scope = Scope(data["group"] or None, data["ou"] or None)
            summary = _import(app, session, actor, client, scope, progress)
        except (Conflict, Forbidden, NotFound) as err:
            session.rollback()
            redis.hset(key, mapping={"state": "failed", "error": str(err)})
            log.warning("import failed", import_id=import_id, error=str(err))
            return
    redis.hset(key, mapping={"state": "done", "summary": json.dumps(asdict(summary))})
    log.info("import done", import_id=import_id, new=summary.new, updated=summary.updated)
