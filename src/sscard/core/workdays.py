"""The Chinese statutory working-day calendar.

Days come, in order of authority, from the operator's loaded official schedule
(for a year the library does not know yet), then from the ``chinesecalendar``
library (holidays and adjusted working weekends), and beyond all known data from
plain weekdays, in which case every answer is marked provisional.
"""

from __future__ import annotations

import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, timedelta

import chinese_calendar

from sscard.core.errors import InvalidInput

# A safety bound: no rule in DOMAIN.md needs more than a few hundred working days.
MAX_WORKING_DAYS = 3660


@dataclass(frozen=True, slots=True)
class DayAnswer:
    workday: bool
    provisional: bool


@dataclass(frozen=True, slots=True)
class WorkdayDate:
    """A date computed on working days; provisional when it used unknown years."""

    day: date
    provisional: bool


@dataclass(frozen=True, slots=True)
class YearSchedule:
    """An official schedule for one year, loaded by the operator."""

    year: int
    holidays: frozenset[date]
    workdays: frozenset[date]  # adjusted working weekends (调休上班)


@dataclass
class WorkingDayCalendar:
    schedules: Mapping[int, YearSchedule] = field(default_factory=dict)

    def day(self, d: date) -> DayAnswer:
        """Whether ``d`` is a working day, and whether that answer is provisional."""
        schedule = self.schedules.get(d.year)
        if schedule is not None:
            if d in schedule.holidays:
                return DayAnswer(False, False)
            if d in schedule.workdays:
                return DayAnswer(True, False)
            return DayAnswer(d.weekday() < 5, False)
        try:
            return DayAnswer(bool(chinese_calendar.is_workday(d)), False)
        except NotImplementedError:
            return DayAnswer(d.weekday() < 5, True)

    def add_working_days(self, start: date, n: int) -> WorkdayDate:
        """The ``n``-th working day after ``start`` (``start`` itself not counted)."""
        if n < 0 or n > MAX_WORKING_DAYS:
            raise InvalidInput(f"working days must be between 0 and {MAX_WORKING_DAYS}, got {n}")
        provisional = False
        current = start
        counted = 0
        while counted < n:
            current += timedelta(days=1)
            answer = self.day(current)
            provisional = provisional or answer.provisional
            if answer.workday:
                counted += 1
        return WorkdayDate(current, provisional)

    def working_days_between(self, start: date, end: date) -> int:
        """How many working days lie after ``start`` up to and including ``end``."""
        count = 0
        current = start
        while current < end:
            current += timedelta(days=1)
            if self.day(current).workday:
                count += 1
        return count

    def known_until(self) -> date:
        """The last day for which the answer is not provisional."""
        years = set(self.schedules)
        library_last = max(chinese_calendar.holidays).year
        year = library_last
        while year + 1 in years:
            year += 1
        return date(year, 12, 31)


def parse_schedule(text: str, *, source: str = "schedule") -> YearSchedule:
    """Read an official schedule file (TOML with ``year``, ``holidays``, ``workdays``).

    Dates may be single (``2027-01-01``) or ranges (``2027-02-10..2027-02-16``).
    """
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise InvalidInput(f"{source}: {exc}") from None
    year = data.get("year")
    if not isinstance(year, int) or not 2000 <= year <= 2200:
        raise InvalidInput(f"{source}: 'year' must be a year such as 2027", field="year")
    holidays = frozenset(_expand(data.get("holidays", []), year, source, "holidays"))
    workdays = frozenset(_expand(data.get("workdays", []), year, source, "workdays"))
    both = holidays & workdays
    if both:
        first = min(both)
        raise InvalidInput(
            f"{source}: {first} is listed both as holiday and as working day", field="workdays"
        )
    weekday_workdays = sorted(d for d in workdays if d.weekday() < 5)
    if weekday_workdays:
        raise InvalidInput(
            f"{source}: {weekday_workdays[0]} is a weekday; 'workdays' lists only adjusted "
            "working weekends",
            field="workdays",
        )
    unknown = set(data) - {"year", "holidays", "workdays", "source", "note"}
    if unknown:
        raise InvalidInput(f"{source}: unknown key(s) {', '.join(sorted(unknown))}")
    return YearSchedule(year=year, holidays=holidays, workdays=workdays)


def _expand(items: Iterable[object], year: int, source: str, key: str) -> Iterable[date]:
    if not isinstance(items, list):
        raise InvalidInput(f"{source}: '{key}' must be a list of dates", field=key)
    for item in items:
        text = str(item)
        try:
            if ".." in text:
                first_s, last_s = text.split("..", 1)
                first, last = date.fromisoformat(first_s), date.fromisoformat(last_s)
            else:
                first = last = date.fromisoformat(text)
        except ValueError:
            raise InvalidInput(
                f"{source}: '{text}' in '{key}' is not a date (YYYY-MM-DD or "
                "YYYY-MM-DD..YYYY-MM-DD)",
                field=key,
            ) from None
        if first > last:
            raise InvalidInput(f"{source}: range '{text}' in '{key}' ends before it starts")
        for d in (first + timedelta(days=i) for i in range((last - first).days + 1)):
            if d.year != year:
                raise InvalidInput(f"{source}: {d} in '{key}' is not in {year}", field=key)
            yield d
