"""Settings: every ``BLINK_*`` environment variable, read once, typed, checked at start.

A bad or missing required value raises :class:`SettingsError` naming the variable;
the command line and the WSGI entry point print it as one line and stop. Secrets may
come from a file: ``BLINK_SECRET_KEY_FILE=/run/secrets/key`` instead of the value.
An optional ``.env`` file in the working directory supplies defaults; real
environment variables win over it.
"""

from __future__ import annotations

import ipaddress
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from dotenv import dotenv_values

PREFIX = "BLINK_"
ENVIRONMENTS = ("development", "production", "test")
SMS_BACKENDS = ("twilio", "console")
LOG_FORMATS = ("json", "console")
MAX_PROXY_HOPS = 5


class SettingsError(Exception):
    """A setting is missing or malformed. ``str()`` is the one line to show."""

    def __init__(self, variable: str, problem: str) -> None:
        super().__init__(f"{PREFIX}{variable}: {problem}")
        self.variable = PREFIX + variable


@dataclass(frozen=True)
class Settings:
    """The whole configuration of one deployment. Build with :meth:`from_env`."""

    # Secrets stay out of repr(): a Settings in a log line or an error must not leak them.
    secret_key: str = field(repr=False)
    # Earlier secret keys: stored secrets stay readable under them until re-encrypted
    # (`blink-sms secrets rotate`); nothing new is encrypted with them.
    secret_key_previous: tuple[str, ...] = field(default=(), repr=False)
    env: str = "development"
    database_url: str = "sqlite:///blink-sms.sqlite"
    redis_url: str | None = None
    public_url: str = "http://127.0.0.1:8000"
    twilio_account_sid: str | None = None
    twilio_auth_token: str | None = field(default=None, repr=False)
    twilio_api_base_url: str = "https://api.twilio.com"
    twilio_messaging_service_sid: str | None = None
    sms_backend: str = "twilio"
    smtp_url: str | None = None
    mail_from: str | None = None
    log_format: str = "console"
    log_level: str = "INFO"
    # Seconds between attempts of a directory job; len() is the number of retries.
    job_retry_intervals: tuple[int, ...] = (10, 30, 90)
    # A running job renews its lease on the request every third of this; a lease that
    # runs out means its worker died, and the scheduler queues the request again.
    job_lease_seconds: int = 30
    # How often the scheduler runs its sweeps (abandoned requests, the enqueue outbox).
    sweep_seconds: int = 5
    unknown_sender_reply_interval: int = 86_400
    replies_per_hour: int = 10
    max_body_chars: int = 1_600
    # Calls per minute allowed to each REST API key (429 with Retry-After beyond).
    api_requests_per_minute: int = 120
    # Enrollment code SMS: per remote address an hour, per client an hour, and over all
    # clients a minute; past the last, a breaker stops every code for the cool-down.
    enrollment_codes_per_ip: int = 10
    enrollment_codes_per_client: int = 100
    enrollment_codes_per_minute: int = 30
    enrollment_breaker_seconds: int = 900
    # Reverse proxies in front of the web process that each append to X-Forwarded-For
    # and set X-Forwarded-Proto. 0: none, a request's address is its TCP peer's.
    proxy_hops: int = 0
    # Seconds between the lockout watch's polls of each client (a client may override).
    lockout_poll_seconds: int = 60
    # Days an inbound MessageSid is remembered (Twilio's retries come within hours).
    message_id_retention_days: int = 14
    # The MSP's own look for activation emails and pages; each client may override.
    brand_logo_url: str | None = None
    brand_color: str | None = None
    brand_support_email: str | None = None
    brand_message: str | None = None

    @property
    def production(self) -> bool:
        return self.env == "production"

    @property
    def twilio_configured(self) -> bool:
        return bool(self.twilio_account_sid and self.twilio_auth_token)

    def with_changes(self, **changes: Any) -> Settings:
        return replace(self, **changes)

    @classmethod
    def from_env(
        cls, environ: Mapping[str, str] | None = None, *, dotenv: str | Path | None = ".env"
    ) -> Settings:
        """Read settings from ``environ`` (default ``os.environ``) over an optional .env."""
        return _Reader(_merged(environ, dotenv)).settings()


def _merged(environ: Mapping[str, str] | None, dotenv: str | Path | None) -> dict[str, str]:
    """``environ`` (default ``os.environ``) over the optional .env file."""
    environ = os.environ if environ is None else environ
    merged: dict[str, str] = {}
    if dotenv is not None and Path(dotenv).is_file():
        # A real BLINK_X (or BLINK_X_FILE) overrides both forms from the .env file;
        # otherwise the two would meet and be refused as "set either ..., not both".
        overridden = {name.removesuffix("_FILE") for name in environ}
        merged.update(
            {
                k: v
                for k, v in dotenv_values(dotenv).items()
                if v is not None and k.removesuffix("_FILE") not in overridden
            }
        )
    merged.update(environ)
    return merged


def read_one(
    name: str, environ: Mapping[str, str] | None = None, *, dotenv: str | Path | None = ".env"
) -> str | None:
    """One ``BLINK_<name>`` value as the server would read it (environment over ``.env``,
    ``_FILE`` honoured), without requiring the rest of the settings: for tools such as
    ``blink-sms sms simulate`` that need a single value on an operator's machine."""
    return _Reader(_merged(environ, dotenv)).raw(name)


def _without_password(url: str) -> str:
    """The URL as it may appear in an error message: any password replaced by ***."""
    scheme, sep, rest = url.partition("://")
    # The last @ ends the credentials even when the password holds an unescaped / or @.
    userinfo, at, location = rest.rpartition("@")
    if not (sep and at and ":" in userinfo):
        return url
    return f"{scheme}{sep}{userinfo.split(':', 1)[0]}:***@{location}"


def _https_or_loopback(url: str) -> bool:
    """Whether requests to ``url`` are encrypted, or never leave this machine (a test
    server, a TLS-terminating egress proxy on loopback)."""
    parts = urlsplit(url)
    if parts.scheme == "https":
        return True
    host = parts.hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class _Reader:
    def __init__(self, environ: Mapping[str, str]) -> None:
        self.environ = environ

    def raw(self, name: str) -> str | None:
        """The value of BLINK_<name>, or the contents of the file BLINK_<name>_FILE names."""
        value = self.environ.get(PREFIX + name)
        path = self.environ.get(f"{PREFIX}{name}_FILE")
        if value is not None and path is not None:
            raise SettingsError(name, f"set either {PREFIX}{name} or {PREFIX}{name}_FILE, not both")
        if path is not None:
            try:
                return Path(path).read_text(encoding="utf-8").strip()
            except OSError as err:
                raise SettingsError(name + "_FILE", f"cannot read {path}: {err.strerror}") from err
        if value is not None and value.strip() == "":
            return None
        return value.strip() if value is not None else None

    def choice(self, name: str, choices: tuple[str, ...], default: str) -> str:
        value = (self.raw(name) or default).lower()
        if value not in choices:
            raise SettingsError(name, f"must be one of {', '.join(choices)}, not {value!r}")
        return value

    def url(self, name: str, schemes: tuple[str, ...], default: str | None) -> str | None:
        value = self.raw(name) or default
        if value is None:
            return None
        problem = f"must be a {'/'.join(schemes)} URL, not {_without_password(value)!r}"
        try:
            parts = urlsplit(value)
        except ValueError:  # e.g. an unclosed [ of an IPv6 host
            raise SettingsError(name, problem) from None
        scheme = parts.scheme.split("+")[0]
        # sqlite:///file.db and unix:///run/redis.sock have a path but no host.
        located = parts.netloc or scheme == "sqlite" or (scheme == "unix" and parts.path)
        if scheme not in schemes or not located:
            raise SettingsError(name, problem)
        return value

    def color(self, name: str) -> str | None:
        value = self.raw(name)
        if value is not None and not re.fullmatch(r"#[0-9a-fA-F]{6}", value):
            raise SettingsError(name, f"must be a colour like #1e5bc6, not {value!r}")
        return value

    def integer(self, name: str, default: int, minimum: int = 0) -> int:
        value = self.raw(name)
        if value is None:
            return default
        try:
            number = int(value)
        except ValueError:
            raise SettingsError(name, f"must be a whole number, not {value!r}") from None
        if number < minimum:
            raise SettingsError(name, f"must be at least {minimum}, not {number}")
        return number

    def proxy_hops(self) -> int:
        hops = self.integer("PROXY_HOPS", 0)
        if hops > MAX_PROXY_HOPS:
            raise SettingsError(
                "PROXY_HOPS", f"must be at most {MAX_PROXY_HOPS} (the proxies in front), not {hops}"
            )
        return hops

    def secret_keys(self, name: str) -> tuple[str, ...]:
        """Several keys separated by commas (or lines, in a _FILE); the message names a
        refused key by its position, never by its value."""
        value = self.raw(name)
        if value is None:
            return ()
        keys = [key.strip() for key in re.split(r"[,\n]", value)]
        keys = [key for key in keys if key]
        for position, key in enumerate(keys, start=1):
            if len(key) < 32:
                raise SettingsError(
                    name,
                    f"key {position} of {len(keys)} is too short: each must be at least"
                    " 32 characters (separate several keys with commas)",
                )
        return tuple(keys)

    def intervals(self, name: str, default: tuple[int, ...]) -> tuple[int, ...]:
        value = self.raw(name)
        if value is None:
            return default
        try:
            numbers = tuple(int(part) for part in value.split(","))
        except ValueError:
            raise SettingsError(
                name, f"must be seconds separated by commas, not {value!r}"
            ) from None
        if any(n < 0 for n in numbers):
            raise SettingsError(name, "intervals cannot be negative")
        return numbers

    def settings(self) -> Settings:
        env = self.choice("ENV", ENVIRONMENTS, "development")
        secret_key = self.raw("SECRET_KEY")
        if secret_key is None:
            raise SettingsError(
                "SECRET_KEY", "missing: set it to a random string of at least 32 characters"
            )
        if len(secret_key) < 32:
            raise SettingsError("SECRET_KEY", "too short: use at least 32 random characters")
        public_url = self.url("PUBLIC_URL", ("http", "https"), None)
        if public_url is None:
            if env == "production":
                raise SettingsError(
                    "PUBLIC_URL", "missing: the https:// address Twilio and users reach"
                )
            public_url = "http://127.0.0.1:8000"
        elif env == "production" and not public_url.lower().startswith("https://"):
            raise SettingsError(
                "PUBLIC_URL",
                "must be an https:// URL in production: Twilio signs, and users open"
                " activation links on, the address given here (a TLS proxy in front is fine)",
            )
        account_sid = self.raw("TWILIO_ACCOUNT_SID")
        if account_sid is not None and not (
            account_sid.startswith("AC") and len(account_sid) == 34
        ):
            raise SettingsError("TWILIO_ACCOUNT_SID", "must look like AC followed by 32 characters")
        twilio_api_base_url = (
            self.url("TWILIO_API_BASE_URL", ("http", "https"), "https://api.twilio.com") or ""
        ).rstrip("/")
        if env == "production" and not _https_or_loopback(twilio_api_base_url):
            raise SettingsError(
                "TWILIO_API_BASE_URL",
                "must be an https:// URL in production: the Twilio auth token and every"
                " one-time password go to it (http:// only to 127.0.0.1, ::1 or localhost)",
            )
        sms_backend = self.choice("SMS_BACKEND", SMS_BACKENDS, "twilio")
        if env == "production" and sms_backend == "console":
            raise SettingsError("SMS_BACKEND", "console only prints messages; not for production")
        return Settings(
            secret_key=secret_key,
            secret_key_previous=self.secret_keys("SECRET_KEY_PREVIOUS"),
            env=env,
            database_url=self.url(
                "DATABASE_URL", ("sqlite", "postgresql"), "sqlite:///blink-sms.sqlite"
            )
            or "",
            redis_url=self.url("REDIS_URL", ("redis", "rediss", "unix"), None),
            public_url=public_url.rstrip("/"),
            twilio_account_sid=account_sid,
            twilio_auth_token=self.raw("TWILIO_AUTH_TOKEN"),
            twilio_api_base_url=twilio_api_base_url,
            twilio_messaging_service_sid=self.raw("TWILIO_MESSAGING_SERVICE_SID"),
            sms_backend=sms_backend,
            smtp_url=self.url("SMTP_URL", ("smtp", "smtps"), None),
            mail_from=self.raw("MAIL_FROM"),
            log_format=self.choice(
                "LOG_FORMAT", LOG_FORMATS, "json" if env == "production" else "console"
            ),
            log_level=self.choice(
                "LOG_LEVEL", ("debug", "info", "warning", "error"), "info"
            ).upper(),
            job_retry_intervals=self.intervals("JOB_RETRY_INTERVALS", (10, 30, 90)),
            job_lease_seconds=self.integer("JOB_LEASE_SECONDS", 30, minimum=3),
            sweep_seconds=self.integer("SWEEP_SECONDS", 5, minimum=1),
            unknown_sender_reply_interval=self.integer(
                "UNKNOWN_SENDER_REPLY_INTERVAL", 86_400, minimum=60
            ),
            replies_per_hour=self.integer("REPLIES_PER_HOUR", 10, minimum=1),
            api_requests_per_minute=self.integer("API_REQUESTS_PER_MINUTE", 120, minimum=1),
            enrollment_codes_per_ip=self.integer("ENROLLMENT_CODES_PER_IP", 10, minimum=1),
            enrollment_codes_per_client=self.integer("ENROLLMENT_CODES_PER_CLIENT", 100, minimum=1),
            enrollment_codes_per_minute=self.integer("ENROLLMENT_CODES_PER_MINUTE", 30, minimum=1),
            enrollment_breaker_seconds=self.integer("ENROLLMENT_BREAKER_SECONDS", 900, minimum=60),
            proxy_hops=self.proxy_hops(),
            lockout_poll_seconds=self.integer("LOCKOUT_POLL_SECONDS", 60, minimum=15),
            message_id_retention_days=self.integer("MESSAGE_ID_RETENTION_DAYS", 14, minimum=2),
            brand_logo_url=self.url("BRAND_LOGO_URL", ("https",), None),
            brand_color=self.color("BRAND_COLOR"),
            brand_support_email=self.raw("BRAND_SUPPORT_EMAIL"),
            brand_message=self.raw("BRAND_MESSAGE"),
        )
