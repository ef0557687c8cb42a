"""Time as a dependency: every rule that depends on dates asks a Clock."""

from __future__ import annotations

import threading
from datetime import UTC, date, datetime, timedelta
from typing import Protocol
from zoneinfo import ZoneInfo

REGION_TZ = ZoneInfo("Asia/Shanghai")


class Clock(Protocol):
    def now(self) -> datetime: ...


class SystemClock:
    """The real clock, in UTC (convert with ``local_date`` for calendar rules)."""

    def now(self) -> datetime:
        return datetime.now(UTC)


class FixedClock:
    """A clock that stands still until moved: for tests, demos and replays."""

    def __init__(self, start: datetime) -> None:
        if start.tzinfo is None:
            raise ValueError("FixedClock needs a timezone-aware datetime")
        self._now = start
        self._lock = threading.Lock()

    def now(self) -> datetime:
        with self._lock:
            return self._now

    def set(self, when: datetime) -> None:
        if when.tzinfo is None:
            raise ValueError("FixedClock needs a timezone-aware datetime")
        with self._lock:
            self._now = when

    def advance(self, delta: timedelta) -> None:
        with self._lock:
            self._now = self._now + delta


def local_date(moment: datetime, tz: ZoneInfo = REGION_TZ) -> date:
    """The calendar date of ``moment`` in the region's timezone."""
    return moment.astimezone(tz).date()


def start_of_local_day(day: date, tz: ZoneInfo = REGION_TZ) -> datetime:
    """Midnight at the start of ``day`` in the region's timezone, as UTC."""
    return datetime(day.year, day.month, day.day, tzinfo=tz).astimezone(UTC)


class OffsetClock:
    """The real clock moved forward by an offset: the demo region's time machine."""

    def __init__(self, base: Clock | None = None) -> None:
        self._base = base or SystemClock()
        self._offset = timedelta(0)
        self._lock = threading.Lock()

    def now(self) -> datetime:
        with self._lock:
            return self._base.now() + self._offset

    def advance(self, delta: timedelta) -> None:
        if delta < timedelta(0):
            raise ValueError("time only moves forward")
        with self._lock:
            self._offset += delta

    @property
    def offset(self) -> timedelta:
        return self._offset
