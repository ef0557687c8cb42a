"""Working days on the Chinese statutory calendar (A-2 steps 5, 7, 8; R-1).

Expected dates are counted independently with ``chinese_calendar.is_workday`` or the
loaded schedule's own sets, never taken from the code under test.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, timedelta

import chinese_calendar
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sscard.core.errors import InvalidInput
from sscard.core.workdays import (
    MAX_WORKING_DAYS,
    DayAnswer,
    WorkingDayCalendar,
    YearSchedule,
    parse_schedule,
)

LIBRARY_LAST_YEAR: int = max(d.year for d in chinese_calendar.holidays)
CALENDAR = WorkingDayCalendar()

SCHEDULE_2027 = """\
year = 2027
source = "State Council notice (test copy)"
holidays = [
  2027-01-01,
  "2027-02-06..2027-02-12",
  "2027-10-01..2027-10-07",
]
workdays = ["2027-02-20", 2027-10-09]
"""


def independent_nth_workday(start: date, n: int, is_workday: Callable[[date], bool]) -> date:
    """The n-th working day after ``start``, by walking the days one at a time."""
    day, seen = start, 0
    while seen < n:
        day += timedelta(days=1)
        seen += bool(is_workday(day))
    return day


def library_workday(d: date) -> bool:
    return bool(chinese_calendar.is_workday(d))


def adjusted_weekends(year: int) -> list[date]:
    return sorted(d for d in chinese_calendar.workdays if d.year == year and d.weekday() >= 5)


def weekday_holidays(year: int) -> list[date]:
    return sorted(d for d in chinese_calendar.holidays if d.year == year and d.weekday() < 5)


@pytest.fixture(scope="module")
def schedule_2027() -> YearSchedule:
    return parse_schedule(SCHEDULE_2027, source="2027.toml")


def refusal(text: str) -> InvalidInput:
    with pytest.raises(InvalidInput) as info:
        parse_schedule(text, source="2027.toml")
    return info.value


# --- the library's years ----------------------------------------------------------


def test_library_knows_2026() -> None:
    assert LIBRARY_LAST_YEAR >= 2026


def test_a_2_national_day_on_a_weekday_is_not_a_working_day() -> None:
    national_day = date(2026, 10, 1)
    assert national_day.weekday() < 5
    assert CALENDAR.day(national_day) == DayAnswer(workday=False, provisional=False)


@pytest.mark.parametrize("day", weekday_holidays(2026))
def test_a_2_every_weekday_holiday_of_2026_is_not_a_working_day(day: date) -> None:
    assert CALENDAR.day(day) == DayAnswer(workday=False, provisional=False)


def test_a_2_2026_has_adjusted_working_weekends() -> None:
    assert adjusted_weekends(2026)


@pytest.mark.parametrize("day", adjusted_weekends(2026))
def test_a_2_adjusted_working_weekend_is_a_working_day(day: date) -> None:
    assert day.weekday() >= 5
    assert CALENDAR.day(day) == DayAnswer(workday=True, provisional=False)


def test_a_2_plain_weekend_is_not_a_working_day() -> None:
    saturday = date(2026, 3, 7)
    assert saturday.weekday() == 5
    assert saturday not in chinese_calendar.workdays
    assert CALENDAR.day(saturday) == DayAnswer(workday=False, provisional=False)


def test_a_2_plain_weekday_is_a_working_day() -> None:
    assert CALENDAR.day(date(2026, 3, 2)) == DayAnswer(workday=True, provisional=False)


def test_a_2_thirty_working_days_skip_national_day_and_count_adjusted_weekends() -> None:
    start = date(2026, 9, 15)
    result = CALENDAR.add_working_days(start, 30)
    assert result.day == independent_nth_workday(start, 30, library_workday)
    assert not result.provisional
    span = [start + timedelta(days=i) for i in range(1, (result.day - start).days + 1)]
    # The span really contains the National Day holidays and the adjusted weekends.
    assert date(2026, 10, 1) in span
    assert any(d in span for d in adjusted_weekends(2026))
    # Plain weekdays alone would give another date.
    assert result.day != independent_nth_workday(start, 30, lambda d: d.weekday() < 5)


def test_a_2_thirty_working_days_across_spring_festival() -> None:
    start = date(2026, 2, 2)
    result = CALENDAR.add_working_days(start, 30)
    assert result.day == independent_nth_workday(start, 30, library_workday)
    assert not result.provisional


@settings(max_examples=60)
@given(
    st.dates(min_value=date(2024, 1, 1), max_value=date(2026, 10, 31)),
    st.integers(min_value=0, max_value=40),
)
def test_a_2_working_days_match_the_statutory_calendar(start: date, n: int) -> None:
    result = CALENDAR.add_working_days(start, n)
    assert result.day == independent_nth_workday(start, n, library_workday)
    assert not result.provisional
    assert CALENDAR.working_days_between(start, result.day) == n


def test_a_2_zero_working_days_is_the_start_day() -> None:
    holiday = date(2026, 10, 1)
    assert CALENDAR.add_working_days(holiday, 0).day == holiday


def test_a_2_start_day_itself_is_not_counted() -> None:
    monday = date(2026, 3, 2)
    assert CALENDAR.add_working_days(monday, 1).day == date(2026, 3, 3)


def test_a_2_one_working_day_after_friday_is_monday() -> None:
    assert CALENDAR.add_working_days(date(2026, 3, 6), 1).day == date(2026, 3, 9)


@pytest.mark.parametrize("n", [-1, MAX_WORKING_DAYS + 1])
def test_a_2_refuses_out_of_range_working_days(n: int) -> None:
    with pytest.raises(InvalidInput) as info:
        CALENDAR.add_working_days(date(2026, 3, 2), n)
    assert str(MAX_WORKING_DAYS) in info.value.detail


def test_working_days_between_counts_after_start_up_to_end() -> None:
    # Mon 2 March to Mon 9 March 2026: Tue-Fri and the next Monday.
    assert CALENDAR.working_days_between(date(2026, 3, 2), date(2026, 3, 9)) == 5
    assert CALENDAR.working_days_between(date(2026, 3, 9), date(2026, 3, 2)) == 0


# --- years the library does not know ------------------------------------------------


def test_a_2_unknown_year_falls_back_to_weekdays_marked_provisional() -> None:
    year = LIBRARY_LAST_YEAR + 1
    monday = next(date(year, 1, d) for d in range(1, 8) if date(year, 1, d).weekday() == 0)
    saturday = monday + timedelta(days=5)
    assert CALENDAR.day(monday) == DayAnswer(workday=True, provisional=True)
    assert CALENDAR.day(saturday) == DayAnswer(workday=False, provisional=True)


def test_a_2_thirty_working_days_into_an_unknown_year_are_provisional() -> None:
    start = date(LIBRARY_LAST_YEAR, 12, 20)
    result = CALENDAR.add_working_days(start, 30)
    assert result.provisional
    assert result.day.year == LIBRARY_LAST_YEAR + 1


def test_a_2_far_future_dates_do_not_crash() -> None:
    result = CALENDAR.add_working_days(date(2031, 6, 1), 30)
    assert result.provisional
    assert result.day == independent_nth_workday(date(2031, 6, 1), 30, lambda d: d.weekday() < 5)


def test_a_2_days_only_in_a_known_year_are_not_provisional() -> None:
    start = date(LIBRARY_LAST_YEAR, 12, 1)
    assert not CALENDAR.add_working_days(start, 5).provisional


def test_known_until_is_the_librarys_last_year() -> None:
    assert CALENDAR.known_until() == date(LIBRARY_LAST_YEAR, 12, 31)


# --- an operator-loaded official schedule ---------------------------------------


def test_schedule_is_parsed_with_ranges_and_toml_dates(schedule_2027: YearSchedule) -> None:
    assert schedule_2027.year == 2027
    assert date(2027, 1, 1) in schedule_2027.holidays
    assert {date(2027, 2, 6) + timedelta(days=i) for i in range(7)} <= schedule_2027.holidays
    assert len(schedule_2027.holidays) == 1 + 7 + 7
    assert schedule_2027.workdays == {date(2027, 2, 20), date(2027, 10, 9)}


def test_a_2_loaded_schedule_honours_holidays_and_adjusted_workdays(
    schedule_2027: YearSchedule,
) -> None:
    cal = WorkingDayCalendar(schedules={2027: schedule_2027})
    assert date(2027, 1, 1).weekday() < 5
    assert cal.day(date(2027, 1, 1)) == DayAnswer(workday=False, provisional=False)
    assert date(2027, 2, 20).weekday() == 5
    assert cal.day(date(2027, 2, 20)) == DayAnswer(workday=True, provisional=False)
    assert cal.day(date(2027, 3, 1)) == DayAnswer(workday=True, provisional=False)
    assert cal.day(date(2027, 3, 6)) == DayAnswer(workday=False, provisional=False)


def test_a_2_loaded_schedule_makes_2027_non_provisional(schedule_2027: YearSchedule) -> None:
    cal = WorkingDayCalendar(schedules={2027: schedule_2027})
    start = date(2027, 1, 25)
    result = cal.add_working_days(start, 30)

    def scheduled(d: date) -> bool:
        if d in schedule_2027.holidays:
            return False
        return d in schedule_2027.workdays or d.weekday() < 5

    assert not result.provisional
    assert result.day == independent_nth_workday(start, 30, scheduled)
    assert result.day != CALENDAR.add_working_days(start, 30).day


def test_a_2_schedule_bridges_the_library_year_into_the_loaded_year(
    schedule_2027: YearSchedule,
) -> None:
    cal = WorkingDayCalendar(schedules={2027: schedule_2027})
    result = cal.add_working_days(date(2026, 12, 20), 30)
    assert result.day.year == 2027
    assert not result.provisional


def test_known_until_extends_only_over_consecutive_loaded_years(
    schedule_2027: YearSchedule,
) -> None:
    assert WorkingDayCalendar(schedules={2027: schedule_2027}).known_until() == date(2027, 12, 31)
    later = YearSchedule(year=2028, holidays=frozenset(), workdays=frozenset())
    assert WorkingDayCalendar(schedules={2028: later}).known_until() == date(
        LIBRARY_LAST_YEAR, 12, 31
    )


def test_schedule_range_expands_to_every_day() -> None:
    schedule = parse_schedule('year = 2027\nholidays = ["2027-02-10..2027-02-16"]\n')
    assert schedule.holidays == {date(2027, 2, d) for d in range(10, 17)}
    assert schedule.workdays == frozenset()


def test_schedule_refuses_date_in_another_year() -> None:
    error = refusal('year = 2027\nholidays = ["2026-12-31"]\n')
    assert error.field == "holidays"
    assert "2026-12-31" in error.detail
    assert "not in 2027" in error.detail


def test_schedule_refuses_range_running_into_another_year() -> None:
    error = refusal('year = 2027\nholidays = ["2027-12-30..2028-01-02"]\n')
    assert "2028-01-01" in error.detail
    assert "not in 2027" in error.detail


def test_schedule_refuses_weekday_listed_as_adjusted_workday() -> None:
    assert date(2027, 2, 8).weekday() == 0
    error = refusal('year = 2027\nworkdays = ["2027-02-08"]\n')
    assert error.field == "workdays"
    assert "2027-02-08 is a weekday" in error.detail


def test_schedule_refuses_same_date_as_holiday_and_workday() -> None:
    assert date(2027, 2, 6).weekday() == 5
    error = refusal('year = 2027\nholidays = ["2027-02-06"]\nworkdays = ["2027-02-06"]\n')
    assert error.field == "workdays"
    assert "2027-02-06 is listed both as holiday and as working day" in error.detail


@pytest.mark.parametrize("item", ["next tuesday", "2027-02-30", "2027-02-10..soon", "27-1-1"])
def test_schedule_refuses_non_dates(item: str) -> None:
    error = refusal(f'year = 2027\nholidays = ["{item}"]\n')
    assert error.field == "holidays"
    assert f"'{item}' in 'holidays' is not a date" in error.detail


def test_schedule_refuses_reversed_range() -> None:
    error = refusal('year = 2027\nholidays = ["2027-02-16..2027-02-10"]\n')
    assert "ends before it starts" in error.detail


def test_schedule_refuses_holidays_that_are_not_a_list() -> None:
    error = refusal('year = 2027\nholidays = "2027-01-01"\n')
    assert error.field == "holidays"
    assert "must be a list of dates" in error.detail


@pytest.mark.parametrize("year_line", ['year = "2027"', "year = 1999", "year = 2201", ""])
def test_schedule_refuses_missing_or_bad_year(year_line: str) -> None:
    error = refusal(f'{year_line}\nholidays = ["2027-01-01"]\n')
    assert error.field == "year"
    assert "'year' must be a year" in error.detail


def test_schedule_refuses_unknown_key() -> None:
    error = refusal('year = 2027\nholidays = ["2027-01-01"]\nholiday = ["2027-05-01"]\n')
    assert "unknown key(s) holiday" in error.detail


def test_schedule_refuses_toml_syntax_error_naming_the_source() -> None:
    error = refusal('year = 2027\nholidays = ["2027-01-01"\n')
    assert error.detail.startswith("2027.toml: ")
