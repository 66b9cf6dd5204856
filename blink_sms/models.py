"""The database: clients (tenants), users, reset requests, messages and the audit trail.

SQLAlchemy 2 typed models; Alembic migrations in ``blink_sms/migrations`` create them.
No column ever holds a one-time password, a verification code or a link token in
clear; directory credentials are encrypted (see :mod:`blink_sms.crypto`).
"""

from __future__ import annotations

import enum
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    Dialect,
    Enum,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
    event,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, relationship

from .actors import Role

# Stable constraint names, so Alembic migrations can refer to them on every database.
NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC on every database (SQLite hands back naive datetimes)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is not None and value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(UTC) if value is not None else None

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def client_queue(slug: str) -> str:
    """Each client's directory jobs go on its own RQ queue, named after its slug."""
    return f"client-{slug}"


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


def _enum(cls: type[enum.Enum], name: str) -> Enum:
    return Enum(
        cls,
        name=name,
        native_enum=False,
        create_constraint=True,
        length=16,
        values_callable=lambda members: [m.value for m in members],
    )


class UserStatus(enum.StrEnum):
    PENDING = "pending"  # imported from the directory, no invitation yet
    INVITED = "invited"  # activation email sent
    ACTIVE = "active"  # phone bound and verified
    DISABLED = "disabled"


class RequestKind(enum.StrEnum):
    RESET = "reset"
    UNLOCK = "unlock"


class RequestOrigin(enum.StrEnum):
    SMS = "sms"
    ADMIN = "admin"
    LOCKOUT = "lockout"


class RequestStatus(enum.StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"


PENDING_STATUSES = (RequestStatus.QUEUED, RequestStatus.RUNNING)
# The predicate of the partial indexes over pending requests, as literal SQL. An
# ``ON CONFLICT ... WHERE`` must repeat it literally: with bound parameters PostgreSQL
# cannot match a generic plan (used from a prepared statement's sixth run) to the index.
PENDING_PREDICATE = "status IN ('queued', 'running')"


class Client(Base):
    """A client organisation of the MSP, with its own directory and policy."""

    __tablename__ = "clients"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    slug: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    directory_kind: Mapped[str] = mapped_column(String(32))
    # Fernet token of the JSON settings (host names, service account, its password).
    directory_settings_encrypted: Mapped[str] = mapped_column(Text)
    default_region: Mapped[str] = mapped_column(String(2), default="US")
    language: Mapped[str] = mapped_column(String(8), default="en")
    sender_number: Mapped[str | None] = mapped_column(String(20))
    messaging_service_sid: Mapped[str | None] = mapped_column(String(34))
    support_contact: Mapped[str] = mapped_column(String(200), default="your IT support desk")
    password_length: Mapped[int] = mapped_column(Integer, default=12)
    unlock_on_reset: Mapped[bool] = mapped_column(Boolean, default=True)
    must_change_at_next_logon: Mapped[bool] = mapped_column(Boolean, default=True)
    resets_per_hour: Mapped[int] = mapped_column(Integer, default=3)
    resets_per_day: Mapped[int] = mapped_column(Integer, default=10)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # Branding of the activation email and pages; None falls back to the product's own.
    brand_name: Mapped[str | None] = mapped_column(String(100))
    brand_logo_url: Mapped[str | None] = mapped_column(String(500))
    brand_color: Mapped[str | None] = mapped_column(String(7))  # "#rrggbb"
    email_message: Mapped[str | None] = mapped_column(Text)  # the MSP's own paragraph
    support_email: Mapped[str | None] = mapped_column(String(320))
    invitation_hours: Mapped[int] = mapped_column(Integer, default=72, server_default="72")
    # A disabled client's users are told so by SMS; nothing reaches its directory.
    disabled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Optional mail of its own: Fernet token of the JSON {"url": "smtp://..."} and a sender.
    smtp_settings_encrypted: Mapped[str | None] = mapped_column(Text)
    mail_from: Mapped[str | None] = mapped_column(String(320))
    # The lockout watch: on or off; seconds between polls (None: BLINK_LOCKOUT_POLL_SECONDS);
    # an address for a digest of locked users (None: no digest).
    lockout_watch: Mapped[bool] = mapped_column(Boolean, default=True, server_default=text("true"))
    lockout_poll_seconds: Mapped[int | None] = mapped_column(Integer)
    lockout_alert_email: Mapped[str | None] = mapped_column(String(320))
    # An email to the user after every reset or unlock (NIST SP 800-63B-4 notices).
    reset_notices: Mapped[bool] = mapped_column(Boolean, default=True, server_default=text("true"))
    # Days before a password expires to text a reminder, e.g. "7,3,1"; None: off.
    expiry_reminder_days: Mapped[str | None] = mapped_column(String(32))
    # Where verification codes may go: ISO regions "US,CA"; None: the default region only.
    allowed_countries: Mapped[str | None] = mapped_column(String(200))
    # Which number a user may bind: "any", "directory" (must match the directory's
    # mobile number) or "approval" (an admin approves each new binding).
    binding_policy: Mapped[str] = mapped_column(String(16), default="any", server_default="any")
    # A PIN with RESET ("RESET 4821"): "off", "optional" or "required".
    reset_pin: Mapped[str] = mapped_column(String(16), default="off", server_default="off")
    # Twilio Lookup's SIM-swap check before a password is texted: "off", "warn", "block",
    # for swaps within sim_swap_days.
    sim_swap_policy: Mapped[str] = mapped_column(String(8), default="off", server_default="off")
    sim_swap_days: Mapped[int] = mapped_column(Integer, default=7, server_default="7")

    users: Mapped[list[User]] = relationship(back_populates="client")

    @property
    def queue_name(self) -> str:
        return client_queue(self.slug)


class MspBranding(Base):
    """The MSP's own branding: the default of every client that sets none of its own.

    One row at most (id 1), written by :func:`blink_sms.services.branding.set_msp_branding`;
    a None falls back to the ``BLINK_BRAND_*`` settings, then to the product's own.
    """

    __tablename__ = "msp_branding"
    __table_args__ = (CheckConstraint("id = 1", name="single_row"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    brand_name: Mapped[str | None] = mapped_column(String(100))
    brand_logo_url: Mapped[str | None] = mapped_column(String(500))
    brand_color: Mapped[str | None] = mapped_column(String(7))  # "#rrggbb"
    support_email: Mapped[str | None] = mapped_column(String(320))
    email_message: Mapped[str | None] = mapped_column(Text)


class User(Base):
    """A directory user known to the gateway; ``phone`` is unique across all clients."""

    __tablename__ = "users"
    __table_args__ = (UniqueConstraint("client_id", "directory_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    client_id: Mapped[int] = mapped_column(ForeignKey("clients.id", ondelete="CASCADE"))
    directory_id: Mapped[str] = mapped_column(String(64))
    username: Mapped[str] = mapped_column(String(256))
    display_name: Mapped[str] = mapped_column(String(256))
    email: Mapped[str | None] = mapped_column(String(320))
    phone: Mapped[str | None] = mapped_column(String(20), unique=True)
    status: Mapped[UserStatus] = mapped_column(
        _enum(UserStatus, "user_status"), default=UserStatus.PENDING
    )
    language: Mapped[str | None] = mapped_column(String(8))
    sms_opted_out: Mapped[bool] = mapped_column(Boolean, default=False)
    # The number bound before the current one was unbound (Reset User), kept only until
    # the next binding has told it so (an SMS), then cleared.
    previous_phone: Mapped[str | None] = mapped_column(String(20))
    # The reset PIN (argon2id), and wrong PINs: 5 in 24 hours block texted resets 24 hours.
    pin_hash: Mapped[str | None] = mapped_column(String(200))
    pin_failures: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    pin_failed_since: Mapped[datetime | None] = mapped_column(UTCDateTime)
    pin_blocked_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    client: Mapped[Client] = relationship(back_populates="users")


class ResetRequest(Base):
    """One reset or unlock, from a text or an admin, and what became of it."""

    __tablename__ = "reset_requests"
    __table_args__ = (
        # Single flight: at most one queued or running request per user. The database
        # is the final arbiter when two RESET texts race.
        Index(
            "uq_reset_requests_one_pending_per_user",
            "user_id",
            unique=True,
            sqlite_where=text(PENDING_PREDICATE),
            postgresql_where=text(PENDING_PREDICATE),
        ),
        Index("ix_reset_requests_user_created", "user_id", "created_at"),
        # The scheduler's sweep looks for pending requests only.
        Index(
            "ix_reset_requests_pending",
            "status",
            sqlite_where=text(PENDING_PREDICATE),
            postgresql_where=text(PENDING_PREDICATE),
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    kind: Mapped[RequestKind] = mapped_column(_enum(RequestKind, "request_kind"))
    origin: Mapped[RequestOrigin] = mapped_column(_enum(RequestOrigin, "request_origin"))
    status: Mapped[RequestStatus] = mapped_column(
        _enum(RequestStatus, "request_status"), default=RequestStatus.QUEUED
    )
    inbound_sid: Mapped[str | None] = mapped_column(String(34), unique=True)
    # The gateway number the user texted; the answer comes from the same number.
    reply_from: Mapped[str | None] = mapped_column(String(20))
    actor: Mapped[str | None] = mapped_column(String(200))
    # Claims by a job so far: each run of the job, crashed ones included, is one attempt.
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    # The lease of the job that holds a running request (see services/reset_job.py):
    # a random token, who holds it (host:pid) and until when. A lease that runs out
    # means the worker died; the scheduler's sweep queues the request again.
    lease_token: Mapped[str | None] = mapped_column(String(32))
    lease_holder: Mapped[str | None] = mapped_column(String(200))
    lease_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # When a queued request may run (a retry's wait); None: at once.
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # When its job was last put on the queue; None: not on any queue (Redis was down,
    # or a retry waits for the scheduler): the outbox the sweep empties.
    enqueued_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    error_code: Mapped[str | None] = mapped_column(String(64))
    outbound_sid: Mapped[str | None] = mapped_column(String(34))
    delivery_status: Mapped[str | None] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    user: Mapped[User] = relationship()


class InboundMessage(Base):
    """Every MessageSid seen, so a webhook retried by Twilio is handled once."""

    __tablename__ = "inbound_messages"

    sid: Mapped[str] = mapped_column(String(34), primary_key=True)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)


class OutboundMessage(Base):
    """An SMS the gateway sent through the REST API; its body is never stored."""

    __tablename__ = "outbound_messages"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    sid: Mapped[str | None] = mapped_column(String(34), unique=True)
    # Indexed: a request's texts are looked up by it, and unlinked when it is pruned.
    request_id: Mapped[int | None] = mapped_column(
        ForeignKey("reset_requests.id", ondelete="SET NULL"), index=True
    )
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    purpose: Mapped[str] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(16), default="queued")
    error_code: Mapped[str | None] = mapped_column(String(16))
    # What Twilio charged, when a status callback reports it ("-0.0075", "USD").
    price: Mapped[str | None] = mapped_column(String(16))
    price_unit: Mapped[str | None] = mapped_column(String(3))
    # When the body was blanked at Twilio (a one-time password must not stay in its logs).
    redacted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class SmsThrottle(Base):
    """A fixed-window counter per key (a hashed phone number and a purpose)."""

    __tablename__ = "sms_throttles"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    window_start: Mapped[datetime] = mapped_column(UTCDateTime)
    count: Mapped[int] = mapped_column(Integer, default=0)


class AuditEvent(Base):
    """Append-only trail of every state change an auditor cares about. No secrets."""

    __tablename__ = "audit_events"
    __table_args__ = (Index("ix_audit_events_client_at", "client_id", "at"),)

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    client_id: Mapped[int | None] = mapped_column(ForeignKey("clients.id", ondelete="SET NULL"))
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    request_id: Mapped[int | None] = mapped_column(Integer)
    actor: Mapped[str] = mapped_column(String(200))
    action: Mapped[str] = mapped_column(String(64))
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


@event.listens_for(Session, "before_flush")
def _audit_is_append_only(session: Session, flush_context: object, instances: object) -> None:
    for obj in (*session.dirty, *session.deleted):
        if isinstance(obj, AuditEvent) and (obj in session.deleted or session.is_modified(obj)):
            raise ValueError("audit events are append-only")


class Invitation(Base):
    """An activation link sent by email. Only a SHA-256 of its token is stored.

    The token is made inside the email job (:mod:`blink_sms.services.invitations`),
    so ``token_hash`` is empty until the email is on its way. An invitation is open
    until it is used, revoked (a newer invitation, Reset User) or expired.
    """

    __tablename__ = "invitations"
    __table_args__ = (
        # At most one open invitation per user: a new one revokes the old in the same
        # transaction, and two admins inviting at once cannot both leave one open.
        Index(
            "uq_invitations_one_open_per_user",
            "user_id",
            unique=True,
            sqlite_where=text("used_at IS NULL AND revoked_at IS NULL"),
            postgresql_where=text("used_at IS NULL AND revoked_at IS NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    token_hash: Mapped[str | None] = mapped_column(String(64), unique=True)
    actor: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    email_status: Mapped[str] = mapped_column(String(16), default="queued")
    email_error: Mapped[str | None] = mapped_column(String(200))
    email_sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # The number the user entered last (E.164), until a code proves it is theirs.
    phone: Mapped[str | None] = mapped_column(String(20))
    # Wrong codes over every code of this invitation: a new code does not reset it.
    code_failures: Mapped[int] = mapped_column(Integer, default=0)
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    revoked_reason: Mapped[str | None] = mapped_column(String(32))
    # Binding policy "approval": the verified number waits here for an admin.
    approval_requested_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    approved_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    approved_by: Mapped[str | None] = mapped_column(String(200))

    user: Mapped[User] = relationship()


class VerificationCode(Base):
    """A 6-digit code texted to a candidate number; stored as a keyed hash only."""

    __tablename__ = "verification_codes"
    __table_args__ = (
        Index("ix_verification_codes_invitation_created", "invitation_id", "created_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    invitation_id: Mapped[int] = mapped_column(ForeignKey("invitations.id", ondelete="CASCADE"))
    phone: Mapped[str] = mapped_column(String(20))
    code_hash: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # Set when the code can no longer be used, with the reason in ``outcome``.
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    outcome: Mapped[str | None] = mapped_column(String(16))


class Admin(Base):
    """A console account. Its password is an argon2id hash; its TOTP secret encrypted.

    ``client_id`` None: MSP-wide (owners, technicians, MSP auditors). ``session_epoch``
    is part of every session cookie: "sign out everywhere" increments it.
    """

    __tablename__ = "admins"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    email: Mapped[str] = mapped_column(String(320), unique=True)  # stored casefolded
    name: Mapped[str] = mapped_column(String(200), default="")
    role: Mapped[Role] = mapped_column(_enum(Role, "admin_role"))
    client_id: Mapped[int | None] = mapped_column(
        ForeignKey("clients.id", ondelete="CASCADE"), index=True
    )
    password_hash: Mapped[str | None] = mapped_column(String(200))
    totp_secret_encrypted: Mapped[str | None] = mapped_column(Text)
    totp_confirmed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # The last TOTP time step accepted: a code is never accepted twice.
    totp_last_step: Mapped[int | None] = mapped_column(BigInteger)
    session_epoch: Mapped[int] = mapped_column(Integer, default=0)
    disabled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_sign_in_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    client: Mapped[Client | None] = relationship()


class AdminToken(Base):
    """A single-use, expiring link for an admin: set-up (first password) or invitation."""

    __tablename__ = "admin_tokens"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    admin_id: Mapped[int] = mapped_column(ForeignKey("admins.id", ondelete="CASCADE"), index=True)
    purpose: Mapped[str] = mapped_column(String(16))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class RecoveryCode(Base):
    """A one-time recovery code for a lost second factor; SHA-256 of it only."""

    __tablename__ = "admin_recovery_codes"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    admin_id: Mapped[int] = mapped_column(ForeignKey("admins.id", ondelete="CASCADE"), index=True)
    code_hash: Mapped[str] = mapped_column(String(64))
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class Passkey(Base):
    """A WebAuthn credential registered as an admin's second factor."""

    __tablename__ = "admin_passkeys"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    admin_id: Mapped[int] = mapped_column(ForeignKey("admins.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(100))
    credential_id: Mapped[str] = mapped_column(String(400), unique=True)  # base64url
    public_key: Mapped[str] = mapped_column(Text)  # base64url COSE key
    sign_count: Mapped[int] = mapped_column(BigInteger, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class ApiKey(Base):
    """A bearer key for the REST API, scoped to the MSP or one client, read or read-write.

    The key is shown once: ``blk_<prefix>_<secret>``. Only the prefix (to find the row)
    and a SHA-256 of the whole key (256 random bits: a plain hash is enough) are stored.
    """

    __tablename__ = "api_keys"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    prefix: Mapped[str] = mapped_column(String(16), unique=True)
    key_hash: Mapped[str] = mapped_column(String(64))
    client_id: Mapped[int | None] = mapped_column(
        ForeignKey("clients.id", ondelete="CASCADE"), index=True
    )
    writes: Mapped[bool] = mapped_column(Boolean, default=False)
    created_by: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class MspSettings(Base):
    """The MSP's own settings (one row at most, id 1); a None is the documented default."""

    __tablename__ = "msp_settings"
    __table_args__ = (CheckConstraint("id = 1", name="single_row"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    # Audit events older than this many days are deleted by the scheduled work (400).
    audit_retention_days: Mapped[int | None] = mapped_column(Integer)


class WebhookEndpoint(Base):
    """Where outbound event webhooks go: the MSP's (every client) or one client's.

    The signing secret is needed in clear to sign, so it is encrypted at rest.
    """

    __tablename__ = "webhook_endpoints"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    client_id: Mapped[int | None] = mapped_column(
        ForeignKey("clients.id", ondelete="CASCADE"), index=True
    )
    url: Mapped[str] = mapped_column(String(500))
    description: Mapped[str] = mapped_column(String(200), default="")
    secret_encrypted: Mapped[str] = mapped_column(Text)
    events: Mapped[list[str]] = mapped_column(JSON, default=list)
    created_by: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    disabled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class WebhookDelivery(Base):
    """One event for one endpoint: written with the change (an outbox), sent and retried."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (Index("ix_webhook_deliveries_status_next", "status", "next_attempt_at"),)

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    endpoint_id: Mapped[int] = mapped_column(
        ForeignKey("webhook_endpoints.id", ondelete="CASCADE"), index=True
    )
    event_id: Mapped[str] = mapped_column(String(36), unique=True)
    event: Mapped[str] = mapped_column(String(64))
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(16), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_status: Mapped[int | None] = mapped_column(Integer)
    last_error: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class IdempotencyKey(Base):
    """An API call made with an ``Idempotency-Key``: a retry gets the first answer again.

    ``status_code`` None: the first call is still running. Responses stored here never
    carry a secret (the API returns no password or key from an action that takes one).
    """

    __tablename__ = "idempotency_keys"
    __table_args__ = (UniqueConstraint("api_key_id", "key"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    api_key_id: Mapped[int] = mapped_column(ForeignKey("api_keys.id", ondelete="CASCADE"))
    key: Mapped[str] = mapped_column(String(200))
    method: Mapped[str] = mapped_column(String(8))
    path: Mapped[str] = mapped_column(String(500))
    fingerprint: Mapped[str] = mapped_column(String(64))  # SHA-256 of the request body
    status_code: Mapped[int | None] = mapped_column(Integer)
    response_body: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)


class LockoutEvent(Base):
    """One lockout of a user's account, from the watch's first sight of it to its end.

    At most one open event per user: the watch texts the user once per event, and a
    lockout that ends (timed out, unlocked by an admin or by the user) closes it; the
    next lockout is a new event. ``kind`` is "lockout", or "blocked_ip" for Entra ID
    sign-ins blocked from a malicious address (never offered UNLOCK).
    """

    __tablename__ = "lockout_events"
    __table_args__ = (
        Index(
            "uq_lockout_events_one_open_per_user",
            "user_id",
            unique=True,
            sqlite_where=text("ended_at IS NULL"),
            postgresql_where=text("ended_at IS NULL"),
        ),
        Index("ix_lockout_events_client_detected", "client_id", "detected_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    client_id: Mapped[int] = mapped_column(ForeignKey("clients.id", ondelete="CASCADE"))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(16), default="lockout")
    locked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)  # as the directory says
    detected_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    notified_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    notice: Mapped[str | None] = mapped_column(String(32))  # sent, opted_out, throttled, ...
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    ended_reason: Mapped[str | None] = mapped_column(String(32))


class LockoutWatch(Base):
    """The lockout watch's state per client: when it last polled, and how that went."""

    __tablename__ = "lockout_watch"

    client_id: Mapped[int] = mapped_column(
        ForeignKey("clients.id", ondelete="CASCADE"), primary_key=True, autoincrement=False
    )
    # When the scheduler last queued a poll, and when a poll last finished.
    queued_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    polled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Entra ID: the sign-in log is read from here on (the previous poll's start).
    since: Mapped[datetime | None] = mapped_column(UTCDateTime)
    status: Mapped[str | None] = mapped_column(String(16))  # ok, failing, off
    detail: Mapped[str | None] = mapped_column(String(300))  # why, in plain words
    digest_sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class ExpiryReminder(Base):
    """A password-expiry reminder texted: one per user, expiry date and days before."""

    __tablename__ = "expiry_reminders"
    __table_args__ = (UniqueConstraint("user_id", "expires_at", "days_before"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    days_before: Mapped[int] = mapped_column(Integer)
    sent_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
