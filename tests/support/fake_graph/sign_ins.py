"""Signing in: the password check with smart lockout, the sign-in log it writes, and
Graph's ``auditLogs/signIns`` that reads it back."""

from __future__ import annotations

import secrets
import uuid
from datetime import datetime

from .model import GRAPH_APP_ID, SIGN_IN_FAILURES, FakeUser, GraphCall, GraphError, Json, graph_time
from .odata import OData


class SignIns(OData):
    def sign_in(self, username: str, password: str) -> int:
        """Entra's answer to a sign-in: 0, or the AADSTS code; logged like the real logs."""
        user = next(
            (
                u
                for u in self.users.values()
                if u.user_principal_name.casefold() == username.casefold()
            ),
            None,
        )
        if user is None:
            return 50126
        now = self.clock()
        if user.locked_until is not None and now < user.locked_until:
            code = 50053
        elif user.password is None or not secrets.compare_digest(user.password, password):
            user.failed_sign_ins += 1
            if user.failed_sign_ins >= self.lockout_threshold:
                user.failed_sign_ins, user.locked_until = 0, now + self.lockout_duration
            code = 50126
        elif not user.account_enabled:
            code = 50057
        elif user.force_change:
            code = 50055
        else:
            user.failed_sign_ins, code = 0, 0
        self.sign_in_log.append(self._sign_in_event(user, code, now))
        return code

    def _sign_in_event(self, user: FakeUser, code: int, when: datetime) -> Json:
        return {
            "id": str(uuid.uuid4()),
            "createdDateTime": graph_time(when),
            "userDisplayName": user.display_name,
            "userPrincipalName": user.user_principal_name,
            "userId": user.id,
            "appId": self.probe_client_id,
            "appDisplayName": "Blink SMS contract probe",
            "ipAddress": "203.0.113.7",
            "clientAppUsed": "Mobile Apps and Desktop clients",
            "correlationId": str(uuid.uuid4()),
            "conditionalAccessStatus": "notApplied",
            "isInteractive": True,
            "riskDetail": "none",
            "riskLevelAggregated": "none",
            "riskLevelDuringSignIn": "none",
            "riskState": "none",
            "riskEventTypes": [],
            "resourceDisplayName": "Microsoft Graph",
            "resourceId": GRAPH_APP_ID,
            "status": {
                "errorCode": code,
                "failureReason": SIGN_IN_FAILURES.get(code, "Other."),
                "additionalDetails": None,
            },
            "deviceDetail": {
                "deviceId": "",
                "displayName": None,
                "operatingSystem": "Linux",
                "browser": "Python Requests",
                "isCompliant": None,
                "isManaged": None,
                "trustType": None,
            },
            "location": {
                "city": "London",
                "state": "England",
                "countryOrRegion": "GB",
                "geoCoordinates": {"altitude": None, "latitude": 51.5, "longitude": -0.12},
            },
            "appliedConditionalAccessPolicies": [],
        }

    def _sign_ins(self, call: GraphCall, _: str, roles: frozenset[str]) -> tuple[int, Json]:
        if "AuditLog.Read.All" not in roles:
            raise GraphError(
                403,
                "Authentication_MSGraphPermissionMissing",
                "Calling principal does not have required MSGraph permissions AuditLog.Read.All",
            )
        if not self.premium:
            raise GraphError(
                403,
                "Authentication_RequestFromNonPremiumTenantOrB2CTenant",
                "Neither tenant is B2C or tenant doesn't have premium license",
            )
        # Newest first; within one timestamp, the later entry first (as it was later).
        ordered = sorted(enumerate(self.sign_in_log), key=lambda p: (p[1]["createdDateTime"], p[0]))
        events = [event for _, event in reversed(ordered)]
        rows = self._filtered(events, call, "SignIn")
        top = {"$top": call.query.get("$top", "1000")}
        return 200, self._collection("auditLogs/signIns", rows, top, call.path)
