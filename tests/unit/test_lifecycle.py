"""Lifecycle rules of the complaint aggregate."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from domain.complaint import (
    TRANSITIONS,
    Complaint,
    EventKind,
    IllegalTransition,
    Photo,
    Status,
)
from domain.events import ComplaintAnswered, ComplaintRegistered, StatusChanged

T0 = datetime(2026, 11, 27, 14, 0, tzinfo=UTC)


def make(status: Status = Status.NEW) -> Complaint:
    c = Complaint(number="2026-000001", citizen_id=1, channel="web", text="Нет воды",
                  sector="housing", category="no_water", agency="minenergo",
                  municipality="makhachkala", created_at=T0,
                  first_answer_due=T0 + timedelta(hours=8),
                  resolution_due=T0 + timedelta(days=14), id=7)
    c.status = status
    return c


def test_registration_records_history_and_event() -> None:
    c = make()
    c.record_registration()
    assert c.history[0].kind is EventKind.REGISTERED
    assert c.events == [ComplaintRegistered(7, T0, "2026-000001")]


def test_happy_path_to_closed() -> None:
    c = make()
    c.change_status(Status.IN_PROGRESS, actor="op:1", at=T0)
    c.answer("Воду дадут к вечеру", actor="op:1", at=T0 + timedelta(hours=1))
    c.change_status(Status.CLOSED, actor="op:1", at=T0 + timedelta(hours=2))
    assert c.status is Status.CLOSED
    assert c.first_answered_at == T0 + timedelta(hours=1)
    assert c.resolved_at == T0 + timedelta(hours=2)
    assert not c.is_open
    kinds = [h.kind for h in c.history]
    assert kinds == [EventKind.STATUS, EventKind.OPERATOR_MESSAGE, EventKind.STATUS,
                     EventKind.STATUS]
    assert [(e.old, e.new) for e in c.events if isinstance(e, StatusChanged)] == [
        ("new", "in_progress"), ("in_progress", "answered"), ("answered", "closed")]
    assert any(isinstance(e, ComplaintAnswered) for e in c.events)


def test_answer_from_new_takes_it_into_work_first() -> None:
    c = make()
    c.answer("Ответ", actor="op", at=T0)
    assert c.status is Status.ANSWERED
    assert [h.data.get("new") for h in c.history if h.kind is EventKind.STATUS] == [
        "in_progress", "answered"]


@pytest.mark.parametrize("old,new", [
    (Status.NEW, Status.CLOSED), (Status.NEW, Status.ANSWERED), (Status.CLOSED, Status.NEW),
    (Status.CLOSED, Status.IN_PROGRESS), (Status.REJECTED, Status.CLOSED),
    (Status.DUPLICATE, Status.IN_PROGRESS), (Status.NEW, Status.REOPENED),
])
def test_illegal_transitions_are_refused_and_change_nothing(old: Status, new: Status) -> None:
    c = make(old)
    with pytest.raises(IllegalTransition):
        c.change_status(new, actor="op", at=T0)
    assert c.status is old
    assert c.history == [] and c.events == []


def test_every_status_has_a_way_forward_or_back() -> None:
    assert set(TRANSITIONS) == set(Status)
    for status, targets in TRANSITIONS.items():
        assert targets, status
        assert status not in targets


def test_duplicate_links_to_original_and_needs_one() -> None:
    c = make()
    with pytest.raises(ValueError):
        c.change_status(Status.DUPLICATE, actor="op", at=T0)
    with pytest.raises(ValueError):
        c.change_status(Status.DUPLICATE, actor="op", at=T0, duplicate_of=7)
    c.change_status(Status.DUPLICATE, actor="op", at=T0, duplicate_of=3, reason="same")
    assert c.duplicate_of == 3 and c.resolved_at == T0
    assert c.history[-1].data == {"old": "new", "new": "duplicate", "duplicate_of": "3"}


def test_reopen_after_close_clears_resolution() -> None:
    c = make(Status.CLOSED)
    c.resolved_at = T0
    c.change_status(Status.REOPENED, actor="citizen", at=T0 + timedelta(days=1))
    assert c.resolved_at is None and c.is_open
    c.change_status(Status.IN_PROGRESS, actor="op", at=T0 + timedelta(days=1))
    assert c.status is Status.IN_PROGRESS


def test_empty_answer_is_refused() -> None:
    c = make(Status.IN_PROGRESS)
    with pytest.raises(ValueError):
        c.answer("   ", actor="op", at=T0)
    assert c.status is Status.IN_PROGRESS


def test_citizen_details_and_photos_are_recorded() -> None:
    c = make()
    c.add_citizen_message("Уже третий день", at=T0, photos=[Photo("web:abc", "image/png")])
    assert c.photos == [Photo("web:abc", "image/png")]
    assert [h.kind for h in c.history] == [EventKind.CITIZEN_MESSAGE, EventKind.ATTACHMENT]


def test_reclassification_is_recorded() -> None:
    c = make()
    c.reclassify("energy", "power_outage", "minenergo", actor="op:5", at=T0)
    assert (c.sector, c.category) == ("energy", "power_outage")
    assert c.history[-1].data == {"old": "housing/no_water", "new": "energy/power_outage"}


def test_overdue_only_while_open() -> None:
    c = make()
    late = c.resolution_due + timedelta(seconds=1)
    assert c.is_overdue(late) and not c.is_overdue(c.resolution_due)
    c.status = Status.CLOSED
    assert not c.is_overdue(late)
