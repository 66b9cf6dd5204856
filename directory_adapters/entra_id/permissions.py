"""The Graph application permissions and directory roles the adapter needs.

Each capability lists the application permissions that allow it, least privileged
first: the first one is what an error or ``diagnose`` asks the admin to grant.
"""

from __future__ import annotations

# Application permissions that allow each capability, least privileged first.
READ_USERS = ("User.Read.All", "User.ReadWrite.All", "Directory.Read.All",
              "Directory.ReadWrite.All")  # fmt: skip
READ_GROUPS = ("GroupMember.Read.All", "Group.Read.All", "GroupMember.ReadWrite.All",
               "Group.ReadWrite.All", "Directory.Read.All", "Directory.ReadWrite.All")  # fmt: skip
SET_PASSWORDS = ("User-PasswordProfile.ReadWrite.All", "User.ReadWrite.All",
                 "Directory.ReadWrite.All")  # fmt: skip
READ_ROLES = ("RoleManagement.Read.Directory", "RoleManagement.ReadWrite.Directory",
              "Directory.Read.All", "Directory.ReadWrite.All")  # fmt: skip
READ_SIGN_INS = ("AuditLog.Read.All",)
READ_DOMAINS = ("Domain.Read.All", "Domain.ReadWrite.All", "Directory.Read.All",
                "Directory.ReadWrite.All")  # fmt: skip
READ_UNITS = ("AdministrativeUnit.Read.All", "AdministrativeUnit.ReadWrite.All",
              "Directory.Read.All", "Directory.ReadWrite.All")  # fmt: skip
# Directory roles (template ids, as in the token's "wids") that can reset passwords.
PASSWORD_ROLES = {
    "fe930be7-5e62-47db-91af-98c3a49a38b1": "User Administrator",
    "729827e3-9c14-49f7-bb1b-9608f156bbb8": "Helpdesk Administrator",
    "966707d0-3269-4727-9be2-8c3a10f19b9d": "Password Administrator",
    "c4e39bd9-1100-46d3-8c65-fb160da0071f": "Authentication Administrator",
    "7be44c8a-adaf-4e2a-84d6-ab2649e08a13": "Privileged Authentication Administrator",
    "62e90394-69f5-4237-9190-012177145e10": "Global Administrator",
}
# What each of the roles to give the app may reset (Microsoft's "who can reset
# passwords" table), least privileged first. The gateway never needs more: it refuses
# administrators itself (refuse_privileged), so Privileged Authentication Administrator
# or Global Administrator, which can reset anybody, must never be given to it.
RESET_ROLE_ADVICE = (
    "Password Administrator or Helpdesk Administrator reset users without an admin role "
    "(and a few reader roles such as Directory Readers); User Administrator also resets "
    "limited administrators (Helpdesk, Password, User Administrators and the like). "
    "Never give the app Privileged Authentication Administrator or Global Administrator: "
    "leave higher administrators to reset their own passwords"
)
