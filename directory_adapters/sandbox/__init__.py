"""The sandbox directory: a real, small directory kept in one SQLite file.

The demo and the tests use it in place of Active Directory. A reset has observable
effects: passwords are stored as scrypt hashes, sign-ins count bad passwords and
lock the account at a threshold, and "must change at next logon" blocks a sign-in
until the user changes their password. The web process, an RQ worker and a test
all open the same file, so every operation is one short transaction on its own
connection (WAL mode, busy timeout): safe across threads and processes.

Beyond the :class:`~directory_adapters.base.DirectoryAdapter` methods it offers
controls for tests and the demo: ``add_user``, ``add_group``, ``authenticate``,
``change_password`` and a simulated outage (``set_outage``). ``latency_ms`` makes each
Protocol call take as long as a round trip to a real directory (LDAPS, Graph), so a
benchmark of the workers is not flattered by a directory that answers in microseconds.

The parts, as for the other directories: :mod:`.settings` parses the settings and
declares them (``SCHEMA``, ``CAPABILITIES``); :mod:`.store` is the file and the one way
into it; :mod:`.passwords` hashes and checks passwords; :mod:`.adapter` has the
operations; :mod:`.controls` the test and demo controls.
"""

from __future__ import annotations

from .adapter import SandboxDirectory
from .passwords import (
    AccountDisabled,
    AccountLocked,
    InvalidCredentials,
    MustChangePassword,
    SignInError,
    password_problem,
)
from .settings import CAPABILITIES, SCHEMA, SandboxSettings
from .store import BUSY_TIMEOUT_SECONDS, OUTAGE_MESSAGE

__all__ = [
    "BUSY_TIMEOUT_SECONDS",
    "CAPABILITIES",
    "OUTAGE_MESSAGE",
    "SCHEMA",
    "AccountDisabled",
    "AccountLocked",
    "InvalidCredentials",
    "MustChangePassword",
    "SandboxDirectory",
    "SandboxSettings",
    "SignInError",
    "password_problem",
]
