"""Alembic environment: runs migrations against the URL that ``blink_sms.db`` passes in."""

from __future__ import annotations

from alembic import context

from blink_sms.db import build_engine
from blink_sms.models import Base

config = context.config
url = config.get_main_option("sqlalchemy.url")
assert url, "blink_sms.db.alembic_config sets sqlalchemy.url"

engine = build_engine(url)
with engine.connect() as connection:
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()
engine.dispose()
