"""Loading the region policy and official working-day schedules into the database."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from sscard.access.model import SYSTEM, Actor, require
from sscard.audit.service import record
from sscard.core.policy import RegionPolicy, load_policy, parse_policy, resolve_policy_path
from sscard.core.workdays import YearSchedule, parse_schedule
from sscard.db.engine import UnitOfWork
from sscard.region.tables import CalendarSchedule, PolicyRecord
from sscard.register.service import sync_banks


def active_policy(session: Session) -> RegionPolicy | None:
    """The policy most recently loaded into this database, if any."""
    row = session.scalar(select(PolicyRecord).order_by(PolicyRecord.id.desc()).limit(1))
    return parse_policy(row.text, source=row.source) if row else None


def install_policy(
    session: Session, name_or_path: str, *, now: datetime, actor: Actor = SYSTEM
) -> RegionPolicy:
    """Check a policy file and make it this database's policy (banks included).

    Raises PolicyError (line and reason) and changes nothing if the file is bad.
    """
    policy = load_policy(name_or_path)
    path = resolve_policy_path(name_or_path)
    text = path.read_text(encoding="utf-8")
    current = session.scalar(select(PolicyRecord).order_by(PolicyRecord.id.desc()).limit(1))
    if current is not None and current.region_code != policy.region.code:
        from sscard.core.policy import PolicyError

        raise PolicyError(
            str(path),
            None,
            f"this database belongs to region {current.region_code}; a policy "
            f"for region {policy.region.code} cannot replace it",
        )
    if current is None or current.text != text:
        session.add(
            PolicyRecord(region_code=policy.region.code, source=str(path), text=text, loaded_at=now)
        )
        record(
            session,
            actor=actor,
            at=now,
            action="policy.loaded",
            subject_type="policy",
            subject_id=None,
            detail={"source": str(path), "region": policy.region.code},
        )
    sync_banks(session, policy, actor=actor, now=now)
    return policy


def load_schedule(
    uow: UnitOfWork, *, actor: Actor, text: str, source: str, now: datetime
) -> YearSchedule:
    """Load (or reload) next year's official schedule before the library knows it."""
    require(actor, "calendar.write")
    schedule = parse_schedule(text, source=source)
    s = uow.session
    row = s.get(CalendarSchedule, schedule.year)
    holidays = sorted(d.isoformat() for d in schedule.holidays)
    workdays = sorted(d.isoformat() for d in schedule.workdays)
    if row is None:
        s.add(
            CalendarSchedule(
                year=schedule.year,
                holidays=holidays,
                workdays=workdays,
                source=source,
                loaded_at=now,
            )
        )
    else:
        row.holidays, row.workdays, row.source, row.loaded_at = holidays, workdays, source, now
    record(
        s,
        actor=actor,
        at=now,
        action="calendar.schedule_loaded",
        subject_type="calendar",
        subject_id=schedule.year,
        detail={"holidays": len(holidays), "workdays": len(workdays), "source": source},
    )
    uow.commit()
    return schedule
