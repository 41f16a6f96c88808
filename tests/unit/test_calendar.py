"""WorkingCalendar: weekends, Russian holidays, transferred days, office hours, time zones."""

from datetime import UTC, date, datetime, time
from zoneinfo import ZoneInfo

import pytest

from domain.calendar import WorkingCalendar

MSK = ZoneInfo("Europe/Moscow")


def msk(*args: int) -> datetime:
    return datetime(*args, tzinfo=MSK)


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


@pytest.fixture
def cal() -> WorkingCalendar:
    return WorkingCalendar()


@pytest.mark.parametrize(("day", "working"), [
    (date(2026, 3, 20), True),    # Friday
    (date(2026, 3, 21), False),   # Saturday
    (date(2026, 3, 22), False),   # Sunday
    (date(2026, 3, 23), True),    # Monday
    (date(2026, 11, 4), False),   # Unity Day, a Wednesday
    (date(2026, 6, 12), False),   # Russia Day, a Friday
    (date(2026, 12, 31), False),  # day off moved from Sunday 4 January 2026
    (date(2027, 1, 8), False),    # New Year holidays
    (date(2027, 1, 11), True),    # first working day of 2027
    (date(2027, 2, 20), True),    # Saturday made a working day (for Monday 22 February)
    (date(2027, 2, 22), False),
    (date(2027, 5, 3), False),    # 1 May fell on a Saturday
    (date(2027, 5, 10), False),   # 9 May fell on a Sunday
])
def test_is_working_day(cal: WorkingCalendar, day: date, working: bool) -> None:
    assert cal.is_working_day(day) is working


def test_hours_within_one_day(cal: WorkingCalendar) -> None:
    assert cal.add_working_hours(msk(2026, 3, 23, 10, 30), 2.5) == msk(2026, 3, 23, 13, 0)


def test_result_is_utc(cal: WorkingCalendar) -> None:
    due = cal.add_working_hours(msk(2026, 3, 23, 10), 1)
    assert due.utcoffset().total_seconds() == 0
    assert due == utc(2026, 3, 23, 8, 0)


def test_friday_evening_plus_8_hours_is_monday(cal: WorkingCalendar) -> None:
    # one hour on Friday, seven on Monday
    assert cal.add_working_hours(msk(2026, 3, 20, 17), 8) == msk(2026, 3, 23, 16)


def test_friday_after_hours_starts_on_monday_morning(cal: WorkingCalendar) -> None:
    assert cal.add_working_hours(msk(2026, 3, 20, 20, 15), 8) == msk(2026, 3, 23, 17)


def test_start_exactly_at_closing_moves_to_next_working_day(cal: WorkingCalendar) -> None:
    assert cal.add_working_hours(msk(2026, 3, 20, 18), 1) == msk(2026, 3, 23, 10)


def test_friday_evening_plus_12_hours_is_tuesday(cal: WorkingCalendar) -> None:
    assert cal.add_working_hours(msk(2026, 3, 20, 17), 12) == msk(2026, 3, 24, 11)


def test_weekend_start_begins_on_monday(cal: WorkingCalendar) -> None:
    assert cal.add_working_hours(msk(2026, 3, 21, 12), 2) == msk(2026, 3, 23, 11)


def test_utc_input_is_counted_in_moscow_time(cal: WorkingCalendar) -> None:
    # 05:00 UTC is 08:00 in Moscow (UTC+3 all year, no DST): before opening
    assert cal.add_working_hours(utc(2026, 3, 23, 5), 2) == utc(2026, 3, 23, 8)
    # 14:30 UTC is 17:30 Moscow: half an hour today, the rest tomorrow
    assert cal.add_working_hours(utc(2026, 3, 23, 14, 30), 1) == utc(2026, 3, 24, 6, 30)
    # the same instant in July (no summer time in Moscow)
    assert cal.add_working_hours(utc(2026, 7, 6, 5), 2) == utc(2026, 7, 6, 8)


def test_other_time_zone_input(cal: WorkingCalendar) -> None:
    start = datetime(2026, 3, 23, 11, tzinfo=ZoneInfo("Asia/Yekaterinburg"))  # 09:00 MSK
    assert cal.add_working_hours(start, 1) == msk(2026, 3, 23, 10)


def test_new_year_holidays_2027(cal: WorkingCalendar) -> None:
    # Wed 30 Dec: 1 h; 31 Dec is a day off, 1-8 Jan holidays, 9-10 Jan weekend
    assert cal.add_working_hours(msk(2026, 12, 30, 17), 8) == msk(2027, 1, 11, 16)
    assert cal.add_working_days(msk(2026, 12, 30, 10), 1) == msk(2027, 1, 11, 18)


def test_may_holidays_2027(cal: WorkingCalendar) -> None:
    assert cal.add_working_hours(msk(2027, 4, 30, 17), 8) == msk(2027, 5, 4, 16)
    # Fri 7 May + 1 working day: 8-9 May weekend, 10 May observed Victory Day
    assert cal.add_working_days(msk(2027, 5, 7, 12), 1) == msk(2027, 5, 11, 18)


def test_transferred_saturday_workday_from_package(cal: WorkingCalendar) -> None:
    assert cal.add_working_hours(msk(2027, 2, 19, 17), 8) == msk(2027, 2, 20, 16)


def test_holiday_on_weekday_is_skipped(cal: WorkingCalendar) -> None:
    # Tue 3 Nov 2026 17:00 + 2 h: Wed 4 Nov is Unity Day
    assert cal.add_working_hours(msk(2026, 11, 3, 17), 2) == msk(2026, 11, 5, 10)


def test_extra_workdays_and_holidays_override() -> None:
    cal = WorkingCalendar(extra_workdays=[date(2026, 3, 21)],
                          extra_holidays=[date(2026, 3, 23), date(2027, 2, 20)])
    assert cal.is_working_day(date(2026, 3, 21))
    assert not cal.is_working_day(date(2026, 3, 23))
    assert not cal.is_working_day(date(2027, 2, 20))
    assert cal.add_working_hours(msk(2026, 3, 20, 17), 8) == msk(2026, 3, 21, 16)
    assert cal.add_working_days(msk(2026, 3, 21, 10), 1) == msk(2026, 3, 24, 18)


def test_ten_working_days_across_a_holiday(cal: WorkingCalendar) -> None:
    # from Mon 2 Nov 2026: 3, 5, 6, 9, 10, 11, 12, 13, 16, 17 Nov (4 Nov is a holiday)
    assert cal.add_working_days(msk(2026, 11, 2, 11), 10) == msk(2026, 11, 17, 18)
    assert cal.add_working_days(msk(2026, 3, 2, 11), 10) == msk(2026, 3, 17, 18)  # 9 Mar off


def test_working_days_from_a_weekend_count_from_monday(cal: WorkingCalendar) -> None:
    assert cal.add_working_days(msk(2026, 3, 21, 10), 1) == msk(2026, 3, 24, 18)
    assert cal.add_working_days(msk(2026, 3, 21, 10), 0) == msk(2026, 3, 23, 18)


def test_working_days_use_the_local_date(cal: WorkingCalendar) -> None:
    # 22:30 UTC on Friday is already Saturday 01:30 in Moscow
    assert cal.add_working_days(utc(2026, 3, 20, 22, 30), 1) == utc(2026, 3, 24, 15)
    assert cal.add_working_days(utc(2026, 3, 20, 20, 30), 1) == utc(2026, 3, 23, 15)


def test_custom_hours() -> None:
    cal = WorkingCalendar(day_start=time(8), day_end=time(17))
    assert cal.add_working_hours(msk(2026, 3, 20, 16), 2) == msk(2026, 3, 23, 9)
    assert cal.add_working_days(msk(2026, 3, 20, 9), 1) == msk(2026, 3, 23, 17)


def test_naive_datetimes_are_rejected(cal: WorkingCalendar) -> None:
    with pytest.raises(ValueError, match="naive"):
        cal.add_working_hours(datetime(2026, 3, 23, 10), 1)
    with pytest.raises(ValueError, match="naive"):
        cal.add_working_days(datetime(2026, 3, 23, 10), 1)


def test_negative_amounts_are_rejected(cal: WorkingCalendar) -> None:
    with pytest.raises(ValueError):
        cal.add_working_hours(msk(2026, 3, 23, 10), -1)
    with pytest.raises(ValueError):
        cal.add_working_days(msk(2026, 3, 23, 10), -1)
