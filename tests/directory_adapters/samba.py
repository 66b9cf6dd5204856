"""A real Samba AD domain controller for the tests, and the contract's probe for it.

The DC comes from ``scripts/samba-dc`` (the project's own script): the first call in a
test session starts one from the cached template (about a second) and every caller
shares it; the session fixtures stop it. If it cannot start, the tests fail: never a
skip, CI must run them.
"""

from __future__ import annotations

import re
import shutil
import ssl
import subprocess
import tempfile
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ldap3 import BASE, MODIFY_ADD, MODIFY_REPLACE, NONE, SUBTREE, Connection, Server

from directory_adapters import DirectoryAdapter, DirectoryUser
from directory_adapters.active_directory import (
    ActiveDirectory,
    VerifiedTls,
    encode_password,
    sid_text,
)
from tests.directory_adapters.contract import OLD_PASSWORD, SignInOutcome, unique

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "samba-dc"
UF_NORMAL_ACCOUNT = 0x200
UF_ACCOUNTDISABLE = 0x2
UF_LOCKOUT = 0x10
USER_CLASSES = ["top", "person", "organizationalPerson", "user"]

# Rights a delegated service account needs on an OU (schema and extended-right GUIDs).
USER_CLASS = "bf967aba-0de6-11d0-a285-00aa003049e2"
RESET_PASSWORD_RIGHT = "00299570-246d-11d0-a768-00aa006e0529"
PWD_LAST_SET = "bf967a0a-0de6-11d0-a285-00aa003049e2"
LOCKOUT_TIME = "28630ebf-41d5-11d1-a9c1-0000f80367c1"


def data_code(message: str | None) -> str | None:
    match = re.search(r"data ([0-9a-f]+)", message or "")
    return match.group(1) if match else None


@dataclass
class SambaDC:
    """A running DC started by ``scripts/samba-dc``; ``facts`` holds what it printed."""

    folder: Path
    facts: dict[str, str]
    _admin: Any = field(default=None, repr=False)

    @classmethod
    def start(cls, folder: Path) -> SambaDC:
        return cls(folder, cls._script("start", folder))

    @staticmethod
    def _script(command: str, folder: Path) -> dict[str, str]:
        result = subprocess.run(
            ["bash", str(SCRIPT), command, str(folder)],
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
        if result.returncode != 0:
            raise RuntimeError(
                f"scripts/samba-dc {command} failed ({result.returncode}): "
                f"{result.stderr[-2000:]}{result.stdout[-500:]}"
            )
        return dict(line.split("=", 1) for line in result.stdout.splitlines() if "=" in line)

    def stop(self) -> None:
        self.close_admin()
        self._script("stop", self.folder)

    def restart(self) -> None:
        self.close_admin()
        self.facts = self._script("restart", self.folder)

    @property
    def host(self) -> str:
        return self.facts["HOST"]

    @property
    def base_dn(self) -> str:
        return self.facts["BASE_DN"]

    @property
    def ca_file(self) -> str:
        return self.facts["CA_FILE"]

    @property
    def domain(self) -> str:
        return self.facts["DOMAIN"]

    @property
    def admin_dn(self) -> str:
        return self.facts["ADMIN_DN"]

    @property
    def admin_password(self) -> str:
        return self.facts["ADMIN_PASSWORD"]

    def settings(self, **overrides: Any) -> dict[str, Any]:
        """Adapter settings for this DC as its administrator; ``overrides`` replace keys."""
        return {
            "hosts": [self.host],
            "ca_file": self.ca_file,
            "bind_user": self.admin_dn,
            "bind_password": self.admin_password,
            "base_dn": self.base_dn,
            **overrides,
        }

    # -- direct LDAP, as the administrator or as a user ---------------------------------

    def server(self, host: str | None = None) -> Server:
        tls = VerifiedTls(validate=ssl.CERT_REQUIRED, ca_certs_file=self.ca_file)
        return Server(
            host or self.host, port=636, use_ssl=True, tls=tls, get_info=NONE, connect_timeout=5
        )

    def bind(self, user: str, password: str) -> tuple[bool, dict[str, Any]]:
        """A simple bind over LDAPS: (succeeded, LDAP result)."""
        connection = Connection(self.server(), user=user, password=password)
        try:
            connection.open()
            ok = bool(connection.bind())
            return ok, dict(connection.result)
        finally:
            connection.unbind()

    @property
    def admin(self) -> Any:
        """A bound administrator connection, opened once (not shared across threads)."""
        if self._admin is None or self._admin.closed:
            self._admin = Connection(
                self.server(), user=self.admin_dn, password=self.admin_password, auto_bind=True
            )
        return self._admin

    def close_admin(self) -> None:
        if self._admin is not None:
            self._admin.unbind()
            self._admin = None

    def ok(self, what: str) -> None:
        result = self.admin.result
        assert result["result"] == 0, f"{what}: {result}"

    def add_ou(self, name: str, parent: str | None = None) -> str:
        dn = f"OU={name},{parent or self.base_dn}"
        self.admin.add(dn, ["top", "organizationalUnit"])
        self.ok(f"add {dn}")
        return dn

    def add_group(self, name: str, container: str, member_of: Sequence[str] = ()) -> str:
        dn = f"CN={name},{container}"
        self.admin.add(dn, ["top", "group"], {"sAMAccountName": name})
        self.ok(f"add {dn}")
        for parent in member_of:
            self.add_member(parent, dn)
        return dn

    def add_member(self, group: str, member: str) -> None:
        self.admin.modify(group, {"member": [(MODIFY_ADD, [member])]})
        self.ok(f"add {member} to {group}")

    def add_user(
        self,
        username: str,
        container: str,
        password: str | None = None,
        *,
        disabled: bool = False,
        **attributes: str,
    ) -> str:
        """Create a user (enabled with ``password``; no password: disabled by AD)."""
        dn = f"CN={username},{container}"
        values: dict[str, Any] = {
            "sAMAccountName": username,
            "userPrincipalName": f"{username}@{self.facts['REALM'].lower()}",
            "displayName": username.title(),
            **attributes,
        }
        if password is not None:
            values["unicodePwd"] = encode_password(password)
            values["userAccountControl"] = UF_NORMAL_ACCOUNT | (
                UF_ACCOUNTDISABLE if disabled else 0
            )
        self.admin.add(dn, USER_CLASSES, values)
        self.ok(f"add {dn}")
        return dn

    def read(self, dn: str, *attributes: str) -> dict[str, Any]:
        self.admin.search(dn, "(objectClass=*)", BASE, attributes=list(attributes))
        return dict(self.admin.response[0]["raw_attributes"])

    def guid(self, dn: str) -> str:
        return str(uuid.UUID(bytes_le=self.read(dn, "objectGUID")["objectGUID"][0]))

    def sid(self, dn: str) -> str:
        return sid_text(self.read(dn, "objectSid")["objectSid"][0])

    def set(self, dn: str, **values: Any) -> None:
        self.admin.modify(dn, {k: [(MODIFY_REPLACE, [v])] for k, v in values.items()})
        self.ok(f"modify {dn}")

    def dn_of(self, username: str) -> str:
        self.admin.search(self.base_dn, f"(sAMAccountName={username})", SUBTREE)
        return str(self.admin.response[0]["dn"])

    def is_locked(self, dn: str) -> bool:
        value = self.read(dn, "msDS-User-Account-Control-Computed")
        return bool(int(value["msDS-User-Account-Control-Computed"][0]) & UF_LOCKOUT)

    def sign_in(self, username: str, password: str) -> SignInOutcome:
        """Bind as ``DOMAIN\\username`` and read the reason AD gives."""
        ok, result = self.bind(f"{self.domain}\\{username}", password)
        if ok:
            return "ok"
        code = data_code(result.get("message"))
        return "must_change" if code == "773" else "locked" if code == "775" else "bad"

    def change_password(self, username: str, old: str, new: str) -> dict[str, Any]:
        """The user's own change (old password checked), as Windows would after 773.

        A user who must change cannot bind, so the change is sent on a connection of
        another, unprivileged account: AD checks the old password, not the sender.
        """
        helper = f"chg{uuid.uuid4().hex[:8]}"
        helper_dn = self.add_user(helper, f"CN=Users,{self.base_dn}", "Helper!Passw0rd1")
        connection = Connection(
            self.server(), user=helper_dn, password="Helper!Passw0rd1", auto_bind=True
        )
        try:
            connection.extend.microsoft.modify_password(self.dn_of(username), new, old)
            return dict(connection.result)
        finally:
            connection.unbind()
            self.admin.delete(helper_dn)

    def delegate(
        self,
        trustee_dn: str,
        ou: str,
        rights: Sequence[str] = ("reset", "pwdLastSet", "lockoutTime"),
    ) -> None:
        """Give ``trustee_dn`` rights on the users of ``ou`` (samba-tool dsacl); by default
        the least privilege an MSP would grant: Reset Password, write pwdLastSet and
        write lockoutTime."""
        sid = self.sid(trustee_dn)
        aces = {
            "reset": ("CR", RESET_PASSWORD_RIGHT),
            "pwdLastSet": ("WP", PWD_LAST_SET),
            "lockoutTime": ("WP", LOCKOUT_TIME),
        }
        sddl = "".join(
            f"(OA;CIIO;{aces[name][0]};{aces[name][1]};{USER_CLASS};{sid})" for name in rights
        )
        self.tool("dsacl", "set", f"--objectdn={ou}", f"--sddl={sddl}")

    def tool(self, *args: str) -> str:
        """Run ``samba-tool`` on this DC's database and configuration; its output."""
        result = subprocess.run(
            ["samba-tool", *args, "-H", f"{self.folder}/private/sam.ldb",
             "-s", f"{self.folder}/etc/smb.conf"],
            capture_output=True, text=True, timeout=60, check=True,
        )  # fmt: skip
        return result.stdout


@dataclass
class Person:
    """A user made for a test, with the password it was given."""

    username: str
    dn: str
    id: str
    password: str


@dataclass
class Delegation:
    """A delegated service account and the OUs it has full, partial and no rights on."""

    account: str
    password: str
    ou: str
    elsewhere: str
    partial: str


_SHARED: SambaDC | None = None


def shared_dc() -> SambaDC:
    """The session's DC, started on first use (one per test process)."""
    global _SHARED  # noqa: PLW0603 - one DC per process: Samba's ports are fixed
    if _SHARED is None:
        if shutil.which("bash") is None:
            raise RuntimeError("bash is needed to run scripts/samba-dc")
        folder = Path(tempfile.mkdtemp(prefix="blink-samba-"))
        try:
            _SHARED = SambaDC.start(folder / "dc")
        except BaseException:
            shutil.rmtree(folder, ignore_errors=True)
            raise
    return _SHARED


def stop_shared_dc() -> None:
    global _SHARED
    if _SHARED is not None:
        dc, _SHARED = _SHARED, None
        dc.stop()
        shutil.rmtree(dc.folder.parent, ignore_errors=True)


class SambaProbe:
    """The directory contract's view of the Samba DC: users in one OU of their own."""

    def __init__(self, dc: SambaDC, adapter: ActiveDirectory, ou: str) -> None:
        self.dc = dc
        self.directory = adapter
        self.ou = ou

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
        dn = self.dc.add_user(
            username, self.ou, password, disabled=disabled, mail=email, mobile=mobile
        )
        for group in groups:
            self.dc.add_member(group, dn)
        if protected:
            self.dc.add_member(f"CN=Domain Admins,CN=Users,{self.dc.base_dn}", dn)
        return self.directory.get_user(self.dc.guid(dn))

    def create_group(self, name: str, member_of: Sequence[str] = ()) -> str:
        return self.dc.add_group(name, self.ou, member_of)

    def create_ou(self, name: str, parent: str | None = None) -> str:
        return self.dc.add_ou(name, parent or self.ou)

    def create_user_in(self, ou: str) -> DirectoryUser:
        dn = self.dc.add_user(unique("ou"), ou, OLD_PASSWORD)
        return self.directory.get_user(self.dc.guid(dn))

    def sign_in(self, username: str, password: str) -> SignInOutcome:
        return self.dc.sign_in(username, password)

    def lock(self, username: str) -> None:
        for attempt in range(3):  # the template's lockout threshold
            self.dc.sign_in(username, f"Wrong!Passw0rd{attempt}")
        assert self.dc.is_locked(self.dc.dn_of(username))
