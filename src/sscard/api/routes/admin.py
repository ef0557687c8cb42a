"""Operator endpoints: the sweeper, working-day schedules, and the demo clock."""

from __future__ import annotations

from datetime import date, timedelta

from fastapi import APIRouter, Body, Request

from sscard.access.model import require
from sscard.api.schemas import ClockIn, ClockRead, ScheduleRead, SweepRead, WorkingDayRead
from sscard.api.unit import UnitRoute, Uow
from sscard.core.clock import OffsetClock
from sscard.core.errors import InvalidInput, NotFound
from sscard.jobs.sweeper import sweep
from sscard.region.service import load_schedule

router = APIRouter(route_class=UnitRoute, tags=["operations"])


@router.post("/sweeps", response_model=SweepRead)
def run_sweep(uow: Uow) -> SweepRead:
    """Apply every due deadline now (the server also does this on its own)."""
    require(uow.actor, "jobs.sweep")
    report = sweep(uow.rt)
    return SweepRead(applied=report.counts, at=uow.rt.now())


@router.post("/calendar/schedules", response_model=ScheduleRead)
def upload_schedule(
    uow: Uow,
    body: str = Body(
        media_type="application/toml",
        examples=['year = 2027\nholidays = ["2027-01-01"]\nworkdays = []\n'],
    ),
) -> ScheduleRead:
    """Load a year's official holiday schedule before the library knows it."""
    sched = load_schedule(uow, actor=uow.actor, text=body, source="api", now=uow.rt.now())
    return ScheduleRead(year=sched.year, holidays=len(sched.holidays), workdays=len(sched.workdays))


@router.get("/calendar/working-days", response_model=WorkingDayRead)
def working_days(uow: Uow, start: date | None = None, days: int = 30) -> WorkingDayRead:
    """The date ``days`` working days after ``start``; provisional beyond known data."""
    s = uow.session
    require(uow.actor, "calendar.read")
    first = start or uow.rt.today()
    result = uow.rt.calendar(s).add_working_days(first, days)
    return WorkingDayRead(
        start=first, working_days=days, date=result.day, provisional=result.provisional
    )


@router.post("/demo/clock", response_model=ClockRead)
def advance_clock(body: ClockIn, request: Request, uow: Uow) -> ClockRead:
    """Demo only: move the service's clock forward to watch deadlines run."""
    require(uow.actor, "jobs.sweep")
    clock = uow.rt.clock
    if not isinstance(clock, OffsetClock) or not request.app.state.demo:
        raise NotFound("the clock can only be moved in the demo region")
    if body.days == 0 and body.hours == 0:
        raise InvalidInput("move the clock by at least one hour", field="days")
    clock.advance(timedelta(days=body.days, hours=body.hours))
    return ClockRead(
        now=uow.rt.now(), today=uow.rt.today(), offset_days=clock.offset.total_seconds() / 86400
    )
