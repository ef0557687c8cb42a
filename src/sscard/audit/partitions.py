"""The audit trail's month partitions on PostgreSQL: made ahead of the entries.

``audit_records`` is partitioned by month of ``occurred_at`` (migration 0015). The
sweeper asks for the current month and the next ``MONTHS_AHEAD`` each run; months that
exist are left alone. An entry of a month with no partition lands in the default
partition (never refused). SQLite keeps one table: nothing to do.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import text
from sqlalchemy.orm import Session

from sscard.db.engine import is_postgres
from sscard.runtime import Runtime

MONTHS_AHEAD = 3

_ADD = text("SELECT audit_records_add_partitions(:start, :months)")


def add_partitions(s: Session, *, now: datetime, months_ahead: int = MONTHS_AHEAD) -> int:
    """Create the month partitions from ``now``'s month on that are missing; how many."""
    if not is_postgres(s):
        return 0
    return int(s.scalar(_ADD, {"start": now, "months": months_ahead + 1}) or 0)


def partitions_job(s: Session, rt: Runtime, now: datetime, size: int) -> int:
    """The sweeper's job: the coming months' partitions (at most a few, never a batch)."""
    return add_partitions(s, now=now)
