"""What every service needs besides its arguments: clock, policy, calendar, database."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from datetime import date, datetime
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from sscard.core.clock import Clock, local_date
from sscard.core.policy import RegionPolicy
from sscard.core.workdays import WorkingDayCalendar, YearSchedule
from sscard.db.engine import HeldSessions, SessionFactory, UnitOfWork
from sscard.region.tables import CalendarSchedule


@dataclass
class CalendarCache:
    """The working-day calendar with the operator's schedules, reloaded when they change."""

    _signature: tuple[int, datetime | None] | None = None
    _calendar: WorkingDayCalendar = field(default_factory=WorkingDayCalendar)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def get(self, session: Session) -> WorkingDayCalendar:
        signature = session.execute(
            select(func.count(), func.max(CalendarSchedule.loaded_at))
        ).one()
        key = (int(signature[0]), signature[1])
        with self._lock:
            if key != self._signature:
                rows = session.scalars(select(CalendarSchedule)).all()
                self._calendar = WorkingDayCalendar(
                    schedules={
                        r.year: YearSchedule(
                            year=r.year,
                            holidays=frozenset(date.fromisoformat(d) for d in r.holidays),
                            workdays=frozenset(date.fromisoformat(d) for d in r.workdays),
                        )
                        for r in rows
                    }
                )
                self._signature = key
            return self._calendar


@dataclass
class Runtime:
    clock: Clock
    policy: RegionPolicy
    session_factory: SessionFactory
    calendars: CalendarCache = field(default_factory=CalendarCache)
    # Sessions for reads outside any transaction (``db.engine.reads_of``); the same
    # factory as for changes where none is given (tests: every unit is a savepoint).
    read_session_factory: SessionFactory | None = None
    # A server worker's held sessions for the use cases its event loop runs itself.
    held: HeldSessions | None = None

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.policy.region.timezone)

    def uow(self) -> UnitOfWork:
        return UnitOfWork(self.session_factory)

    def reads(self) -> SessionFactory:
        """Where a read-only unit takes its session."""
        return self.read_session_factory or self.session_factory

    def inline(self, *, read_only: bool) -> SessionFactory:
        """Where a use case run on the event loop takes its session: the held ones if this
        process has them, else as any other."""
        if self.held is not None:
            return self.held.factory(read_only=read_only)
        return self.reads() if read_only else self.session_factory

    def now(self) -> datetime:
        return self.clock.now()

    def today(self) -> date:
        return local_date(self.clock.now(), self.tz)

    def calendar(self, session: Session) -> WorkingDayCalendar:
        return self.calendars.get(session)
