"""The Microsoft identity platform: OpenID configuration and the token endpoint, with
client-credentials (secret or certificate) and resource-owner password grants."""

from __future__ import annotations

import base64
import json
import secrets
import uuid
from datetime import timedelta
from urllib.parse import parse_qsl, urlsplit

import jwt
from requests import PreparedRequest

from .model import SIGN_IN_FAILURES, Json, Reply, _b64url
from .sign_ins import SignIns


class TokenEndpoint(SignIns):
    # -- identity platform ---------------------------------------------------------------

    def _identity(self, request: PreparedRequest) -> Reply:
        path = urlsplit(str(request.url)).path
        tenant, _, rest = path.lstrip("/").partition("/")
        if tenant.casefold() not in (self.tenant_id, self.domain):
            return self._token_error(
                400,
                "invalid_tenant",
                90002,
                f"Tenant '{tenant}' not found. Check to make sure you have the correct "
                "tenant ID and are signing into the correct cloud.",
            )
        if request.method == "GET" and rest == "v2.0/.well-known/openid-configuration":
            return (
                200,
                {"Content-Type": "application/json; charset=utf-8"},
                json.dumps(self._openid_configuration()),
            )
        if request.method == "POST" and rest == "oauth2/v2.0/token":
            form = dict(parse_qsl(str(request.body or "")))
            if self.token_failures:
                status, error, code, description = self.token_failures.pop(0)
                return self._token_error(status, error, code, description)
            if form.get("grant_type") == "password":
                return self._password_grant(form)
            return self._client_credentials(form)
        return 404, {}, ""

    def _openid_configuration(self) -> Json:
        base = f"{self.authority}/{self.tenant_id}"
        return {
            "token_endpoint": f"{base}/oauth2/v2.0/token",
            "token_endpoint_auth_methods_supported": [
                "client_secret_post", "private_key_jwt", "client_secret_basic",
            ],
            "jwks_uri": f"{base}/discovery/v2.0/keys",
            "response_modes_supported": ["query", "fragment", "form_post"],
            "subject_types_supported": ["pairwise"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
            "scopes_supported": ["openid", "profile", "email", "offline_access"],
            "issuer": f"{base}/v2.0",
            "request_uri_parameter_supported": False,
            "userinfo_endpoint": f"https://{urlsplit(self.graph_url).netloc}/oidc/userinfo",
            "authorization_endpoint": f"{base}/oauth2/v2.0/authorize",
            "device_authorization_endpoint": f"{base}/oauth2/v2.0/devicecode",
            "http_logout_supported": True,
            "frontchannel_logout_supported": True,
            "end_session_endpoint": f"{base}/oauth2/v2.0/logout",
            "claims_supported": [
                "sub", "iss", "cloud_instance_name", "cloud_instance_host_name",
                "cloud_graph_host_name", "msgraph_host", "aud", "exp", "iat", "auth_time",
                "acr", "nonce", "preferred_username", "name", "tid", "ver", "at_hash",
                "c_hash", "email",
            ],
            "kerberos_endpoint": f"{base}/kerberos",
            "tenant_region_scope": "EU",
            "cloud_instance_name": urlsplit(self.authority).netloc.removeprefix("login."),
            "cloud_graph_host_name": "graph.windows.net",
            "msgraph_host": urlsplit(self.graph_url).netloc,
            "rbac_url": "https://pas.windows.net",
        }  # fmt: skip

    def _token_error(self, status: int, error: str, code: int, description: str) -> Reply:
        trace, correlation = str(uuid.uuid4()), str(uuid.uuid4())
        stamp = self.clock().strftime("%Y-%m-%d %H:%M:%SZ")
        body = {
            "error": error,
            "error_description": f"AADSTS{code}: {description}\r\nTrace ID: {trace}\r\n"
            f"Correlation ID: {correlation}\r\nTimestamp: {stamp}",
            "error_codes": [code],
            "timestamp": stamp,
            "trace_id": trace,
            "correlation_id": correlation,
            "error_uri": f"{self.authority}/error?code={code}",
        }
        return status, {"Content-Type": "application/json; charset=utf-8"}, json.dumps(body)

    def _client_credentials(self, form: dict[str, str]) -> Reply:
        logged = {k: v for k, v in form.items() if k not in ("client_secret", "client_assertion")}
        self.token_requests.append(logged)
        if form.get("client_id") != self.client_id:
            return self._token_error(
                400,
                "unauthorized_client",
                700016,
                f"Application with identifier '{form.get('client_id')}' was not found in the "
                f"directory '{self.domain}'.",
            )
        if not self._client_authenticated(form):
            if "client_assertion" in form:
                return self._token_error(
                    401,
                    "invalid_client",
                    700027,
                    "Client assertion failed signature validation.",
                )
            return self._token_error(
                401,
                "invalid_client",
                7000215,
                "Invalid client secret provided. Ensure the secret being sent in the request "
                "is the client secret value, not the client secret ID, for a secret added to "
                f"app '{self.client_id}'.",
            )
        expected_scope = f"{urlsplit(self.graph_url)._replace(path='').geturl()}/.default"
        if form.get("scope") != expected_scope:
            return self._token_error(
                400,
                "invalid_scope",
                1002012,
                f"The provided value for scope {form.get('scope')} is not valid.",
            )
        token = self._issue(frozenset(self.permissions))
        body = {"token_type": "Bearer", "expires_in": 3599, "ext_expires_in": 3599,
                "access_token": token}  # fmt: skip
        return 200, {"Content-Type": "application/json; charset=utf-8"}, json.dumps(body)

    def _client_authenticated(self, form: dict[str, str]) -> bool:
        if "client_secret" in form:
            return secrets.compare_digest(form["client_secret"], self.client_secret)
        assertion = form.get("client_assertion")
        if assertion is None or self.certificate is None:
            return False
        public_key, thumbprint = self.certificate
        header = jwt.get_unverified_header(assertion)
        # A SHA-256 thumbprint is sent as x5t#S256, a SHA-1 one as x5t.
        name = "x5t#S256" if len(thumbprint) == 64 else "x5t"
        x5t = base64.urlsafe_b64decode(str(header.get(name, "")) + "==").hex().upper()
        try:
            claims = jwt.decode(
                assertion,
                public_key,
                algorithms=["RS256", "PS256"],
                audience=f"{self.authority}/{self.tenant_id}/oauth2/v2.0/token",
            )
        except jwt.PyJWTError:
            return False
        return x5t == thumbprint and claims.get("iss") == claims.get("sub") == self.client_id

    def _issue(self, roles: frozenset[str]) -> str:
        now = self.clock()
        claims = {
            "aud": urlsplit(self.graph_url)._replace(path="").geturl(),
            "iss": f"https://sts.windows.net/{self.tenant_id}/",
            "iat": int(now.timestamp()),
            "nbf": int(now.timestamp()),
            "exp": int(now.timestamp()) + 3599,
            "aio": secrets.token_urlsafe(16),
            "app_displayname": "Blink SMS",
            "appid": self.client_id,
            "appidacr": "2" if self.certificate else "1",
            "idp": f"https://sts.windows.net/{self.tenant_id}/",
            "idtyp": "app",
            "oid": str(uuid.uuid4()),
            "rh": secrets.token_urlsafe(12),
            "roles": sorted(roles),
            "sub": str(uuid.uuid4()),
            "tid": self.tenant_id,
            "uti": secrets.token_urlsafe(12),
            "ver": "1.0",
            "wids": sorted(self.app_roles | {"0997a1d0-0d1d-4acb-b408-d5ca73121e90"}),
        }
        header = {"typ": "JWT", "alg": "RS256", "x5t": _b64url(secrets.token_bytes(20))}
        token = (
            ".".join(_b64url(json.dumps(part).encode()) for part in (header, claims))
            + "."
            + _b64url(secrets.token_bytes(64))
        )
        self._tokens[token] = (now + timedelta(seconds=3599), roles)
        return token

    def _password_grant(self, form: dict[str, str]) -> Reply:
        code = self.sign_in(form.get("username", ""), form.get("password", ""))
        if code:
            return self._token_error(400, "invalid_grant", code, SIGN_IN_FAILURES[code])
        token = _b64url(secrets.token_bytes(32))
        body = {"token_type": "Bearer", "scope": form.get("scope", ""), "expires_in": 4372,
                "ext_expires_in": 4372, "access_token": token}  # fmt: skip
        return 200, {"Content-Type": "application/json; charset=utf-8"}, json.dumps(body)
