"""The directory contract's probe for the fake tenant."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import requests

from .tenant import FakeEntra


class EntraProbe:
    """The directory contract's view of the fake tenant: users are made in the tenant,
    and signing in uses the password grant on the token endpoint, as a test tenant
    would be probed."""

    def __init__(self, tenant: FakeEntra, adapter: Any) -> None:
        self.tenant = tenant
        self._adapter = adapter

    @property
    def adapter(self) -> Any:
        return self._adapter

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
    ) -> Any:
        from directory_adapters import DirectoryUser

        user = self.tenant.add_user(
            username, password, mail=email, mobile=mobile, groups=groups, enabled=not disabled
        )
        if protected:
            self.tenant.assign_role(user.id, "Exchange Administrator")
        return DirectoryUser(
            id=user.id,
            username=user.user_principal_name,
            display_name=user.display_name,
            email=email,
            upn=user.user_principal_name,
            mobile=mobile,
            disabled=disabled,
            protected=protected,
        )

    def create_group(self, name: str, member_of: Sequence[str] = ()) -> str:
        return self.tenant.add_group(name, member_of=member_of)

    def sign_in(self, username: str, password: str) -> str:
        """ok, must_change, locked or bad, from the token endpoint's answer."""
        upn = username if "@" in username else f"{username}@{self.tenant.domain}"
        response = requests.post(
            f"{self.tenant.authority}/{self.tenant.tenant_id}/oauth2/v2.0/token",
            data={
                "client_id": self.tenant.probe_client_id,
                "grant_type": "password",
                "username": upn,
                "password": password,
                "scope": "openid profile",
            },
            timeout=10,
        )
        if response.status_code == 200:
            return "ok"
        codes = response.json().get("error_codes", [])
        return {50055: "must_change", 50053: "locked"}.get(codes[0] if codes else 0, "bad")

    def lock(self, username: str) -> None:
        """Fail sign-ins until smart lockout answers 50053, as an attacker would."""
        for _ in range(self.tenant.lockout_threshold + 1):
            if self.sign_in(username, "not-the-password") == "locked":
                return
        raise AssertionError(f"{username} did not lock out")
