"""Fixed-window counters in the database (replies that are not resets, enrollment codes)
and the enrollment codes' circuit breaker."""

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


def trip(session: Session, key: str, *, now: datetime) -> None:
    """Open the circuit breaker ``key`` from ``now`` (see :func:`tripped`)."""
    row = session.execute(
        select(SmsThrottle).where(SmsThrottle.key == key).with_for_update()
    ).scalar_one_or_none()
    if row is not None:
        row.window_start, row.count = now, 1
        return
    try:
        with session.begin_nested():
            session.add(SmsThrottle(key=key, window_start=now, count=1))
    except IntegrityError:
        pass  # a concurrent request tripped it at the same moment


def tripped(session: Session, key: str, *, cooldown: timedelta, now: datetime) -> bool:
    """True while the breaker ``key`` was tripped less than ``cooldown`` ago."""
    start = session.execute(
        select(SmsThrottle.window_start).where(SmsThrottle.key == key, SmsThrottle.count > 0)
    ).scalar_one_or_none()
    return start is not None and now - start < cooldown
