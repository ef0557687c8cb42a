"""Operator endpoints: the sweeper, working-day schedules, and the demo clock."""

from __future__ import annotations

from datetime import date, timedelta

from fastapi import APIRouter, Body, Request

from sscard.access.model import require
from sscard.api.deps import CurrentActor, ReadSession, RuntimeDep
from sscard.api.schemas import ClockIn, ClockRead, ScheduleRead, SweepRead, WorkingDayRead
from sscard.core.clock import OffsetClock
from sscard.core.errors import InvalidInput, NotFound
from sscard.jobs.sweeper import sweep
from sscard.region.service import load_schedule

router = APIRouter(tags=["operations"])


@router.post("/sweeps", response_model=SweepRead)
def run_sweep(rt: RuntimeDep, actor: CurrentActor) -> SweepRead:
    """Apply every due deadline now (the server also does this on its own)."""
    require(actor, "jobs.sweep")
    report = sweep(rt)
    return SweepRead(applied=report.counts, at=rt.now())


@router.post("/calendar/schedules", response_model=ScheduleRead)
def upload_schedule(
    rt: RuntimeDep,
    actor: CurrentActor,
    body: str = Body(
        media_type="application/toml",
        examples=['year = 2027\nholidays = ["2027-01-01"]\nworkdays = []\n'],
    ),
) -> ScheduleRead:
    """Load a year's official holiday schedule before the library knows it."""
    with rt.uow() as uow:
        sched = load_schedule(uow, actor=actor, text=body, source="api", now=rt.now())
    return ScheduleRead(year=sched.year, holidays=len(sched.holidays), workdays=len(sched.workdays))


@router.get("/calendar/working-days", response_model=WorkingDayRead)
def working_days(
    s: ReadSession, rt: RuntimeDep, actor: CurrentActor, start: date | None = None, days: int = 30
) -> WorkingDayRead:
    """The date ``days`` working days after ``start``; provisional beyond known data."""
    require(actor, "calendar.read")
    first = start or rt.today()
    result = rt.calendar(s).add_working_days(first, days)
    return WorkingDayRead(
        start=first, working_days=days, date=result.day, provisional=result.provisional
    )


@router.post("/demo/clock", response_model=ClockRead)
def advance_clock(
    body: ClockIn, request: Request, rt: RuntimeDep, actor: CurrentActor
) -> ClockRead:
    """Demo only: move the service's clock forward to watch deadlines run."""
    require(actor, "jobs.sweep")
    clock = rt.clock
    if not isinstance(clock, OffsetClock) or not request.app.state.demo:
        raise NotFound("the clock can only be moved in the demo region")
    if body.days == 0 and body.hours == 0:
        raise InvalidInput("move the clock by at least one hour", field="days")
    clock.advance(timedelta(days=body.days, hours=body.hours))
    return ClockRead(
        now=rt.now(), today=rt.today(), offset_days=clock.offset.total_seconds() / 86400
    )
