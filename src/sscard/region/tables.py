"""Tables: the loaded region policy and operator-loaded working-day schedules."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from sscard.db.base import Base, BigId


class PolicyRecord(Base):
    __tablename__ = "region_policies"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    region_code: Mapped[str] = mapped_column(String(6))
    source: Mapped[str] = mapped_column(String(300))
    text: Mapped[str] = mapped_column(Text)
    loaded_at: Mapped[datetime]


class CalendarSchedule(Base):
    """An official year schedule the operator loaded before the library knew it."""

    __tablename__ = "calendar_schedules"

    year: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    holidays: Mapped[list[str]] = mapped_column(JSON)
    workdays: Mapped[list[str]] = mapped_column(JSON)
    source: Mapped[str] = mapped_column(String(300))
    loaded_at: Mapped[datetime]
