"""The API's request and response bodies, as pydantic models.

They are the contract: SpecTree validates requests against them and writes them into
the OpenAPI document, whose JSON Schema (2020-12) is OpenAPI 3.1's own. Request models
forbid unknown fields, so a typo is an error rather than a silent no-op.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

LIMIT = Field(50, ge=1, le=200, description="Items per page (1-200).")
CURSOR = Field(
    None,
    max_length=200,
    description="The `next_cursor` of the previous page; omit for the first page.",
)


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


# --- problems -----------------------------------------------------------------------------


class FieldError(BaseModel):
    field: str = Field(description="The field (or query parameter) that is wrong.")
    message: str = Field(description="What is wrong with it, in plain words.")


class Problem(BaseModel):
    """An RFC 9457 problem: every error answer of the API."""

    type: str = Field(description="A URI naming the kind of problem.")
    title: str
    status: int
    detail: str | None = None
    errors: list[FieldError] | None = None


# --- the key itself -------------------------------------------------------------------------


class Me(BaseModel):
    """The API key making the call, as the gateway sees it."""

    key: str = Field(description="The key's label: api_key:<id>:<name>.")
    role: str = Field(description="msp-technician, client-admin or auditor (read-only).")
    client: str | None = Field(description="The one client the key is scoped to, or null.")
    writes: bool


# --- clients ------------------------------------------------------------------------------


class ClientOptions(Strict):
    """A client's options; each is optional when changing a client."""

    name: str | None = Field(None, min_length=1, max_length=200)
    default_region: str | None = Field(None, description="ISO 3166 country, e.g. US, NL.")
    language: str | None = Field(None, description="en, nl, de, fr or es.")
    sender_number: str | None = Field(None, description="The gateway's number, E.164.")
    messaging_service_sid: str | None = None
    support_contact: str | None = Field(None, max_length=200)
    password_length: int | None = None
    unlock_on_reset: bool | None = None
    must_change_at_next_logon: bool | None = None
    resets_per_hour: int | None = None
    resets_per_day: int | None = None
    invitation_hours: int | None = None
    lockout_watch: bool | None = Field(None, description="Text users when their account locks.")
    lockout_poll_seconds: int | None = Field(
        None, description="Seconds between lockout polls (15-86400); unset: the default."
    )
    lockout_alert_email: str | None = Field(None, description="Who gets a digest of lockouts.")
    reset_notices: bool | None = Field(None, description="Email the user after each reset.")
    expiry_reminder_days: str | None = Field(
        None, max_length=32, description='Days before expiry to remind, "7,3,1"; "" for off.'
    )
    allowed_countries: str | None = Field(
        None, max_length=200, description='Where enrollment codes may go, "US,CA"; "": the region.'
    )
    binding_policy: Literal["any", "directory", "approval"] | None = Field(
        None, description="Which number a user may bind: any, the directory's, or approved."
    )
    reset_pin: Literal["off", "optional", "required"] | None = Field(
        None, description="A PIN users add to RESET and UNLOCK texts: off, optional or required."
    )
    sim_swap_policy: Literal["off", "warn", "block"] | None = Field(
        None, description="Before texting a password, check for a recent SIM swap."
    )
    sim_swap_days: int | None = Field(None, ge=1, le=90, description="Days a swap counts.")


class Directory(Strict):
    kind: str = Field(description="active_directory, entra_id (or sandbox in the demo).")
    settings: dict[str, Any] = Field(
        description="The directory's settings; see `blink-sms clients add --help`. "
        "Secrets in them are stored encrypted and never returned."
    )


class ClientCreate(ClientOptions):
    slug: str = Field(min_length=1, max_length=63, description="Lowercase, digits, dashes.")
    name: str = Field(min_length=1, max_length=200)
    directory: Directory


class ClientOut(BaseModel):
    slug: str
    name: str
    directory_kind: str
    default_region: str
    language: str
    sender_number: str | None
    support_contact: str
    password_length: int
    unlock_on_reset: bool
    must_change_at_next_logon: bool
    resets_per_hour: int
    resets_per_day: int
    invitation_hours: int
    lockout_watch: bool
    lockout_poll_seconds: int | None
    lockout_alert_email: str | None
    reset_notices: bool
    expiry_reminder_days: str | None
    allowed_countries: str | None
    binding_policy: str
    reset_pin: str
    sim_swap_policy: str
    sim_swap_days: int
    disabled: bool
    created_at: datetime


class ClientPage(BaseModel):
    items: list[ClientOut]
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page; null: last.")


class PageQuery(Strict):
    cursor: str | None = CURSOR
    limit: int = LIMIT


class Finding(BaseModel):
    level: Literal["ok", "warning", "problem"]
    topic: str
    message: str
    missing: str | None = Field(None, description="The right to grant, when that is the fix.")


class ConnectionReport(BaseModel):
    kind: str
    ok: bool = Field(description="True when no finding is a problem.")
    findings: list[Finding]


# --- users --------------------------------------------------------------------------------

UserState = Literal["not-invited", "invited", "active", "disabled", "locked"]


class UserQuery(PageQuery):
    search: str = Field("", max_length=200, description="Name, username, email, phone digits.")
    state: UserState | None = Field(None, description="Only users in this state.")


class Invitation(BaseModel):
    id: int
    created_at: datetime
    expires_at: datetime
    email_status: str = Field(description="queued, sent or failed.")
    used_at: datetime | None
    revoked_at: datetime | None


class UserOut(BaseModel):
    id: int
    username: str
    display_name: str
    email: str | None
    phone: str | None = Field(description="The enrolled mobile number, masked.")
    status: Literal["pending", "invited", "active", "disabled"]
    state: str = Field(description="The status in plain words, as the console shows it.")
    language: str | None
    created_at: datetime
    invitation: Invitation | None = Field(description="The latest activation email.")
    reset_pin: Literal["set", "blocked"] | None = Field(
        None,
        description="The user's reset PIN, chosen at enrollment: set; blocked after 5 wrong "
        "PINs in 24 hours (Reset User clears it); or null when none is set.",
    )


class UserPage(BaseModel):
    items: list[UserOut]
    next_cursor: str | None


class ImportIn(Strict):
    """Exactly one of ``group``, ``ou`` or ``everyone``."""

    group: str | None = Field(None, max_length=500, description="A group's DN or id.")
    ou: str | None = Field(None, max_length=500, description="An OU's DN (Active Directory).")
    everyone: bool = Field(False, description="Everyone in the directory's scope.")


class ImportOut(BaseModel):
    new: int
    updated: int
    unchanged: int
    skipped_no_email: int
    skipped_disabled: int
    skipped_protected: int
    disabled: list[str] = Field(description="Users now disabled because the directory did.")


class InviteAllOut(BaseModel):
    queued: int = Field(description="Activation emails queued.")
    refused: list[str] = Field(description="Users not invited, one line each saying why.")


class RequestOut(BaseModel):
    request_id: int
    kind: Literal["reset", "unlock"]
    status: Literal["queued"]


class InvitationOut(BaseModel):
    user_id: int
    invitation: Invitation


class PersonalData(BaseModel):
    """Everything the gateway holds about one user (GDPR access)."""

    model_config = ConfigDict(extra="allow")

    exported_at: str
    client: dict[str, Any]
    user: dict[str, Any]
    invitations: list[dict[str, Any]]
    verification_codes: list[dict[str, Any]]
    reset_requests: list[dict[str, Any]]
    messages: list[dict[str, Any]]
    audit_events: list[dict[str, Any]]


class Erased(BaseModel):
    user_id: int
    pseudonym: str = Field(description="What the audit trail calls the person from now on.")


class Changed(BaseModel):
    changed: bool = Field(description="False when the object was in that state already.")


# --- webhooks -------------------------------------------------------------------------------


class WebhookIn(Strict):
    url: str = Field(max_length=500, description="https:// (plain http only to localhost).")
    client: str | None = Field(None, max_length=64, description="A client's slug; none: all.")
    events: list[str] = Field(
        default_factory=list, max_length=10, description="Event types; empty: every event."
    )
    description: str = Field("", max_length=200)


class Delivery(BaseModel):
    event: str
    status: str = Field(description="pending, delivered or failed.")
    attempts: int
    last_status: int | None = Field(description="The receiver's last HTTP status.")
    created_at: datetime
    delivered_at: datetime | None


class WebhookOut(BaseModel):
    id: int
    url: str
    client: str | None = Field(description="The client's slug; null: every client's events.")
    events: list[str] = Field(description="Event types; empty: every event.")
    description: str
    disabled: bool
    created_at: datetime
    last_delivery: Delivery | None


class WebhookCreated(WebhookOut):
    secret: str = Field(description="The signing secret (whsec_…): shown this once only.")


class WebhookQuery(Strict):
    client: str | None = Field(None, max_length=64, description="Only this client's own.")


class WebhookList(BaseModel):
    items: list[WebhookOut]


class TestQueued(BaseModel):
    event_id: str = Field(description="The test event's id (its Blink-Delivery header).")


# --- audit --------------------------------------------------------------------------------


class EventQuery(PageQuery):
    client: str | None = Field(None, max_length=64, description="A client's slug.")
    user: str | None = Field(None, max_length=200, description="Part of a username.")
    user_id: int | None = Field(None, ge=1, le=2147483647, description="One user's events.")
    actor: str | None = Field(None, max_length=200, description="Part of the actor's label.")
    action: str | None = Field(
        None, max_length=70, description="An action (reset.completed) or a topic (reset.*)."
    )
    outcome: Literal["ok", "problem"] | None = None
    since: str | None = Field(None, max_length=10, description="YYYY-MM-DD (UTC), inclusive.")
    until: str | None = Field(None, max_length=10, description="YYYY-MM-DD (UTC), inclusive.")


class ExportQuery(Strict):
    format: Literal["csv", "jsonl"] = "jsonl"
    client: str | None = Field(None, max_length=64)
    user: str | None = Field(None, max_length=200)
    user_id: int | None = Field(None, ge=1, le=2147483647)
    actor: str | None = Field(None, max_length=200)
    action: str | None = Field(None, max_length=70)
    outcome: Literal["ok", "problem"] | None = None
    since: str | None = Field(None, max_length=10)
    until: str | None = Field(None, max_length=10)


class Event(BaseModel):
    id: int
    at: datetime
    client: str | None = Field(description="The client's slug (null: the MSP's own event).")
    user_id: int | None
    username: str | None
    request_id: int | None
    actor: str = Field(description="admin:<email>, api_key:<id>:<name>, sms:user:<id>, system…")
    action: str
    outcome: Literal["ok", "problem"]
    detail: dict[str, Any]


class EventPage(BaseModel):
    items: list[Event]
    next_cursor: str | None


# --- reports --------------------------------------------------------------------------------


class MonthQuery(Strict):
    month: str | None = Field(
        None, max_length=7, description="YYYY-MM (UTC); default the last full month."
    )


class Resets(BaseModel):
    self_service: int = Field(description="Texted RESET (or answered a lockout notice).")
    admin: int = Field(description="Pushed by an admin or an API key.")
    total: int


class Failure(BaseModel):
    cause: str = Field(description="The error code, e.g. directory_unavailable, sms_30003.")
    words: str = Field(description="The cause in plain words.")
    count: int


class Enrollment(BaseModel):
    imported: int = Field(description="Users of the client at the month's end.")
    enrolled: int = Field(description="Of them, active (phone bound) now.")
    enrolled_this_month: int = Field(description="Phones bound during the month.")


class Cost(BaseModel):
    unit: str = Field(description="Currency, e.g. USD.")
    amount: str = Field(description="A decimal, as Twilio reports prices.")


class Sms(BaseModel):
    sent: int
    by_purpose: dict[str, int]
    cost: list[Cost] = Field(description="Per currency, where Twilio reported a price.")


class ReportDay(BaseModel):
    day: str = Field(description="YYYY-MM-DD (UTC).")
    resets: int
    unlocks: int
    failures: int


class MonthlyReport(BaseModel):
    """One client's month."""

    client: str
    month: str = Field(description="YYYY-MM (UTC).")
    resets: Resets
    unlocks: int
    median_seconds_to_password: float | None = Field(
        description="From the text to the password, for self-service resets done."
    )
    failures: list[Failure]
    users: Enrollment
    sms: Sms
    days: list[ReportDay]
