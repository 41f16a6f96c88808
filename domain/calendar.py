"""Working calendar for deadlines: Russian public holidays, weekends and office hours."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import holidays


class WorkingCalendar:
    """Counts working hours and working days in one time zone.

    Non-working days are Saturdays, Sundays and Russian public holidays as the ``holidays``
    package knows them (including substituted days off); Saturdays that the government
    makes working days (``weekend_workdays`` of the package) are working. ``extra_workdays``
    and ``extra_holidays`` override both, extra holidays winning over extra workdays.
    Pre-holiday shortened days are not modelled: every working day runs from ``day_start``
    to ``day_end``.
    """

    def __init__(self, tz: str = "Europe/Moscow", day_start: time = time(9),
                 day_end: time = time(18), extra_holidays: Iterable[date] = (),
                 extra_workdays: Iterable[date] = ()) -> None:
        if day_start >= day_end:
            raise ValueError("day_start must be earlier than day_end")
        self.tz = ZoneInfo(tz)
        self.day_start = day_start
        self.day_end = day_end
        self._extra_holidays = frozenset(extra_holidays)
        self._extra_workdays = frozenset(extra_workdays)
        self._public = holidays.country_holidays("RU")

    def is_working_day(self, d: date) -> bool:
        """``True`` for an ordinary working day in Russia (or an overriding extra workday)."""
        if d in self._extra_holidays:
            return False
        if d in self._extra_workdays:
            return True
        is_holiday = d in self._public  # also loads the year, and with it weekend_workdays
        if d in self._public.weekend_workdays:
            return True
        return d.weekday() < 5 and not is_holiday

    def add_working_hours(self, start: datetime, hours: float) -> datetime:
        """The moment ``hours`` working hours after ``start``, as an aware UTC datetime.

        A start outside working hours begins counting at the next working-day start.
        """
        if hours < 0:
            raise ValueError("hours must not be negative")
        cursor = self._local(start)
        remaining = timedelta(hours=hours)
        while True:
            day = cursor.date()
            opens, closes = self._at(day, self.day_start), self._at(day, self.day_end)
            if not self.is_working_day(day) or cursor >= closes:
                cursor = self._at(day + timedelta(days=1), self.day_start)
                continue
            cursor = max(cursor, opens)
            available = closes - cursor
            if remaining <= available:
                return (cursor + remaining).astimezone(UTC)
            remaining -= available
            cursor = self._at(day + timedelta(days=1), self.day_start)

    def add_working_days(self, start: datetime, days: int) -> datetime:
        """``day_end`` of the ``days``-th working day after the start's local date, in UTC.

        A start on a non-working day counts from the next working day, so a Saturday
        start with ``days=1`` is due on Tuesday evening.
        """
        if days < 0:
            raise ValueError("days must not be negative")
        day = self._local(start).date()
        while not self.is_working_day(day):
            day += timedelta(days=1)
        counted = 0
        while counted < days:
            day += timedelta(days=1)
            if self.is_working_day(day):
                counted += 1
        return self._at(day, self.day_end).astimezone(UTC)

    def _local(self, moment: datetime) -> datetime:
        if moment.tzinfo is None or moment.utcoffset() is None:
            raise ValueError("naive datetime: pass a time-zone-aware datetime")
        return moment.astimezone(self.tz)

    def _at(self, day: date, at: time) -> datetime:
        return datetime.combine(day, at, tzinfo=self.tz)
