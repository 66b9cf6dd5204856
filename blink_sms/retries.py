"""The one retry policy of every job: how many attempts, how long between them.

Attempts and intervals come from ``BLINK_JOB_RETRY_INTERVALS`` (seconds between
attempts; their number is the number of retries). A directory that says when to come
back (Graph's ``Retry-After`` on 429) is honoured when it asks for longer. After the
last attempt the job gives up: for a reset, the user gets the apology
(:mod:`blink_sms.services.reset_job`).

Reset requests keep their attempts and next attempt time in the database, so a retry
survives a worker crash and a Redis restart. Email jobs have no such row and retry on
the queue (``RqQueue`` turns this policy into RQ's ``Retry``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from .settings import Settings

# However long a directory asks us to wait, a user waiting for a password is told
# "sorry" rather than kept waiting for longer than this.
LONGEST_WAIT = timedelta(minutes=10)


class RetryLater(Exception):
    """Raised by a queue-retried job (email) so the queue tries again; carries a code only."""


@dataclass(frozen=True)
class RetryPolicy:
    intervals: tuple[int, ...]

    @classmethod
    def of(cls, settings: Settings) -> RetryPolicy:
        return cls(tuple(settings.job_retry_intervals))

    @property
    def attempts(self) -> int:
        """Attempts in all: the first and one per interval."""
        return len(self.intervals) + 1

    def wait_after(self, attempt: int, retry_after: float | None = None) -> timedelta | None:
        """How long to wait after failed attempt ``attempt`` (1 is the first); None: give up."""
        if attempt < 1 or attempt >= self.attempts:
            return None
        wait = timedelta(seconds=max(self.intervals[attempt - 1], retry_after or 0))
        if wait > LONGEST_WAIT:
            return None
        return wait
