"""The directory contract's probe for the sandbox directory (also used by personas)."""

from __future__ import annotations

from collections.abc import Sequence

from directory_adapters import DirectoryAdapter, DirectoryUser
from directory_adapters.sandbox import (
    AccountLocked,
    MustChangePassword,
    SandboxDirectory,
    SignInError,
)
from tests.directory_adapters.contract import SignInOutcome


class SandboxProbe:
    """The contract's view of a sandbox directory."""

    def __init__(self, directory: SandboxDirectory) -> None:
        self.directory = directory

    @property
    def adapter(self) -> DirectoryAdapter:
        return self.directory

    def create_user(
        self,
        username: str,
        password: str,
        *,
        email: str,
        mobile: str,
        groups: Sequence[str] = (),
        disabled: bool = False,
        protected: bool = False,
    ) -> DirectoryUser:
        return self.directory.add_user(
            username,
            username.title(),
            email=email,
            upn=f"{username}@corp.example.test",
            mobile=mobile,
            password=password,
            groups=groups,
            disabled=disabled,
            protected=protected,
        )

    def create_group(self, name: str, member_of: Sequence[str] = ()) -> str:
        return self.directory.add_group(name, member_of=member_of)

    def sign_in(self, username: str, password: str) -> SignInOutcome:
        try:
            self.directory.authenticate(username, password)
        except MustChangePassword:
            return "must_change"
        except AccountLocked:
            return "locked"
        except SignInError:
            return "bad"
        return "ok"

    def lock(self, username: str) -> None:
        for _ in range(self.directory.lockout_threshold):
            self.sign_in(username, "not-the-password")
        assert self.directory.is_locked(username)
