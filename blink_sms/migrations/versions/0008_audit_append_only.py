"""Audit trail append-only on PostgreSQL: a trigger refuses UPDATE, DELETE and TRUNCATE

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-03 15:40:00.000000

The trigger lets through only what the application itself must do, each under a
transaction-local setting (``SET LOCAL blink.audit_maintenance = ...``):

- ``'retention'``: the scheduled pruning deletes events older than the retention period
  (:mod:`blink_sms.services.retention`);
- ``'erasure'``: a GDPR erasure rewrites the personal data in an event's ``detail``, and
  nothing else of the event (:mod:`blink_sms.services.privacy`);
- always: the foreign keys' ``ON DELETE SET NULL`` when a client or user is removed; an
  UPDATE that only sets ``client_id`` or ``user_id`` to NULL passes if that client or
  user no longer exists.

The setting keeps mistakes and stray code paths out; it does not stop a database owner,
who can drop the trigger. SQLite has no such trigger: there the ORM's ``before_flush``
guard in :mod:`blink_sms.models` refuses changes to loaded events.
"""

from __future__ import annotations

from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

FUNCTION = """
CREATE FUNCTION audit_events_append_only() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    maintenance text := coalesce(current_setting('blink.audit_maintenance', true), '');
BEGIN
    IF TG_OP IN ('DELETE', 'TRUNCATE') THEN
        IF maintenance = 'retention' THEN
            RETURN OLD;
        END IF;
        RAISE EXCEPTION 'audit events are append-only' USING ERRCODE = 'restrict_violation';
    END IF;
    IF (NEW.id, NEW.at, NEW.request_id, NEW.actor, NEW.action)
            IS NOT DISTINCT FROM (OLD.id, OLD.at, OLD.request_id, OLD.actor, OLD.action)
        -- A link may only go (to NULL), and only once its client or user is gone.
        AND (NEW.client_id IS NOT DISTINCT FROM OLD.client_id
             OR (NEW.client_id IS NULL
                 AND NOT EXISTS (SELECT 1 FROM clients WHERE id = OLD.client_id)))
        AND (NEW.user_id IS NOT DISTINCT FROM OLD.user_id
             OR (NEW.user_id IS NULL
                 AND NOT EXISTS (SELECT 1 FROM users WHERE id = OLD.user_id)))
        -- json has no equality operator: compare the stored text.
        AND (NEW.detail::text IS NOT DISTINCT FROM OLD.detail::text
             OR maintenance = 'erasure')
    THEN
        RETURN NEW;
    END IF;
    RAISE EXCEPTION 'audit events are append-only' USING ERRCODE = 'restrict_violation';
END
$$
"""


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(FUNCTION)
    op.execute(
        "CREATE TRIGGER audit_events_append_only BEFORE UPDATE OR DELETE ON audit_events "
        "FOR EACH ROW EXECUTE FUNCTION audit_events_append_only()"
    )
    op.execute(
        "CREATE TRIGGER audit_events_no_truncate BEFORE TRUNCATE ON audit_events "
        "FOR EACH STATEMENT EXECUTE FUNCTION audit_events_append_only()"
    )


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("DROP TRIGGER audit_events_no_truncate ON audit_events")
    op.execute("DROP TRIGGER audit_events_append_only ON audit_events")
    op.execute("DROP FUNCTION audit_events_append_only()")
