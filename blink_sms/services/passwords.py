"""An admin sets a generated password for a user and reads it off the screen, once.

For the user who cannot get a text (no phone, lost it, abroad): the admin tells them
the password another way. Unlike an SMS reset there is no job: the password is
generated here, set in the directory synchronously and returned to the caller, who
shows it once. It is never stored, logged, audited or put on a queue.
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from directory_adapters import DirectoryError

from ..actors import Actor, Permission
from ..context import Blink
from ..crypto import SecretBoxError
from ..models import User, UserStatus
from ..otp import generate_password
from . import audit
from .clients import require_enabled
from .errors import Conflict
from .imports import DirectoryTrouble, plain_words
from .scope import NotFound


def set_generated_password(
    app: Blink, session: Session, actor: Actor, user: User, *, must_change: bool
) -> str:
    """Generate a password for ``user``, set it in the directory (unlocking the account),
    audit it (without the password) and return it. Commits.

    ``must_change``: the user must choose their own at the next sign-in. Raises
    ``DirectoryTrouble`` (a ``Conflict``) in plain words when the directory refuses.
    """
    if not actor.sees(user.client_id):
        raise NotFound("user")
    actor.require(Permission.MANAGE_USERS)
    client = user.client
    require_enabled(client)
    if user.status is UserStatus.DISABLED:
        raise Conflict(f"{user.username} is disabled in the gateway: enable them first")
    try:
        directory = app.directories.for_client(client)
        password = generate_password(
            directory.password_policy(),
            length=client.password_length,
            avoid=[user.username, user.display_name],
        )
        directory.set_password(user.directory_id, password, must_change=must_change, unlock=True)
    except (DirectoryError, SecretBoxError) as err:
        raise DirectoryTrouble(plain_words(err)) from err
    audit.record(
        session,
        "password.set_by_admin",
        actor=actor,
        client_id=user.client_id,
        user_id=user.id,
        must_change=must_change,
        unlocked=True,
    )
    session.commit()
    return password
