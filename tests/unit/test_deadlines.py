"""Deadline levels by the working calendar: "near" is 75 % of the *working* time used up."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from domain.calendar import WorkingCalendar
from domain.storage.deadlines import Deadline, DeadlineHit, Level
from notifications.deadlines import escalation_payload, near_moment, working_seconds

MSK = ZoneInfo("Europe/Moscow")
FRIDAY_5PM = datetime(2026, 11, 27, 17, 0, tzinfo=MSK)
CAL = WorkingCalendar()


def test_working_time_skips_the_night_and_the_weekend():
    monday_10am = datetime(2026, 11, 30, 10, 0, tzinfo=MSK)
    assert working_seconds(CAL, FRIDAY_5PM, monday_10am) == 2 * 3600  # Fri 17-18, Mon 9-10
    assert working_seconds(CAL, monday_10am, FRIDAY_5PM) == 0


def test_near_is_three_quarters_of_the_working_hours_not_of_the_wall_clock():
    due = CAL.add_working_hours(FRIDAY_5PM, 8)  # Monday 16:00
    assert due == datetime(2026, 11, 30, 16, 0, tzinfo=MSK)
    near = near_moment(CAL, FRIDAY_5PM, due)
    # 6 of 8 working hours: one on Friday, five on Monday; the wall clock would say Sunday
    assert near == datetime(2026, 11, 30, 14, 0, tzinfo=MSK)
    assert near.tzinfo is not None and near.utcoffset() == timedelta(0)


def test_near_for_working_days_across_a_weekend_and_a_holiday():
    wednesday = datetime(2026, 11, 4, 10, 0, tzinfo=MSK)  # 4 November is a public holiday
    due = CAL.add_working_days(wednesday, 2)  # from Thursday: Friday, Monday → Monday 18:00
    assert due == datetime(2026, 11, 9, 18, 0, tzinfo=MSK)
    # Thursday 9:00 to Monday 18:00 is 27 working hours; 75 % = 20.25 h → Monday 11:15
    assert near_moment(CAL, wednesday, due) == datetime(2026, 11, 9, 11, 15, tzinfo=MSK)


@pytest.mark.parametrize("ratio", [0.5, 0.9])
def test_the_ratio_is_configurable(ratio):
    due = CAL.add_working_hours(FRIDAY_5PM, 10)
    near = near_moment(CAL, FRIDAY_5PM, due, ratio)
    assert working_seconds(CAL, FRIDAY_5PM, near) == pytest.approx(ratio * 10 * 3600)


def test_a_deadline_with_no_working_time_is_near_at_once():
    saturday = datetime(2026, 11, 28, 12, 0, tzinfo=MSK)
    assert near_moment(CAL, saturday, saturday + timedelta(hours=1)) == saturday


def test_the_escalation_payload_describes_itself():
    due = datetime(2026, 11, 30, 13, 0, tzinfo=UTC)
    hit = DeadlineHit(7, "2026-000007", Deadline.RESOLUTION, Level.OVERDUE, due,
                      datetime(2026, 11, 1, tzinfo=UTC), "in_progress", "mintrans", "roads",
                      "makhachkala")
    payload = escalation_payload(hit)
    assert payload == {
        "type": "escalation", "complaint_id": 7, "number": "2026-000007",
        "level": "overdue", "deadline": "resolution", "due_at": "2026-11-30T13:00:00+00:00",
        "created_at": "2026-11-01T00:00:00+00:00", "status": "in_progress",
        "agency": "mintrans", "sector": "roads", "municipality": "makhachkala",
        "text": payload["text"]}
    assert payload["text"].startswith("🔴 Обращение №2026-000007: срок решения истёк (")
    assert "16:00" in payload["text"]  # due time shown in Moscow time
    assert escalation_payload(hit, language="en")["text"].startswith(
        "🔴 Complaint №2026-000007: the resolution deadline has passed")
