"""Fixed-window counters for replies that are not resets (help, notices, unknown senders)."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from ..models import SmsThrottle


def allow(session: Session, key: str, *, limit: int, window: timedelta, now: datetime) -> bool:
    """Count one use of ``key``; False once ``limit`` uses fall in the current window."""
    row = session.execute(
        select(SmsThrottle).where(SmsThrottle.key == key).with_for_update()
    ).scalar_one_or_none()
    if row is None:
        try:
            with session.begin_nested():
                session.add(SmsThrottle(key=key, window_start=now, count=1))
        except IntegrityError:
            return False  # a concurrent message from the same number won the race
        return True
    if now - row.window_start >= window:
        row.window_start, row.count = now, 1
        return True
    if row.count >= limit:
        return False
    row.count += 1
    return True
