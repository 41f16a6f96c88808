"""Survey reminders and follow-ups found due in the store: one reminder after 24 h, exactly
once; a follow-up after 14 days; answering the follow-up "no" reopens the complaint."""

from __future__ import annotations

from datetime import timedelta

from dialogue.messages import OutgoingMessage
from domain.complaint import Status
from domain.survey import SurveyState
from notifications.surveys import run_due_surveys
from tests.fakes.dialogue import FixedClock
from tests.unit.test_surveys_dialogue import CLOSED_AT, rows, setup


async def test_one_reminder_after_24_hours_exactly_once():
    store, chat, complaint, survey = await setup()
    assert await run_due_surveys(store.unit_of_work, CLOSED_AT + timedelta(hours=23)) == 0
    assert rows(store, "survey_reminder") == []

    due = CLOSED_AT + timedelta(hours=24)
    assert await run_due_surveys(store.unit_of_work, due) == 1
    [reminder] = rows(store, "survey_reminder")
    msg = OutgoingMessage.from_json(reminder.payload)
    assert msg.text.startswith(f"A reminder: was the problem in complaint №{complaint.number}")
    assert [b.payload for b in msg.all_buttons()] == [f"sv:{survey.id}:y", f"sv:{survey.id}:n"]
    assert store.surveys[survey.id].reminder_sent_at == due

    for later in (due, due + timedelta(hours=1), due + timedelta(days=3)):
        assert await run_due_surveys(store.unit_of_work, later) == 0
    assert len(rows(store, "survey_reminder")) == 1

    await chat.press(f"sv:{survey.id}:y")  # the reminder's buttons answer the survey
    assert store.surveys[survey.id].solved is True


async def test_no_reminder_once_answered():
    store, chat, complaint, survey = await setup()
    await chat.press(f"sv:{survey.id}:y")
    assert await run_due_surveys(store.unit_of_work, CLOSED_AT + timedelta(days=2)) == 0
    assert rows(store, "survey_reminder") == []


async def test_followup_after_14_days_and_still_solved():
    store, chat, complaint, survey = await setup()
    await chat.press(f"sv:{survey.id}:y")
    await chat.press(f"sv:{survey.id}:r:5")
    await chat.press(f"sv:{survey.id}:skip")
    assert await run_due_surveys(store.unit_of_work,
                                 CLOSED_AT + timedelta(days=13, hours=23)) == 0
    at = CLOSED_AT + timedelta(days=14)
    assert await run_due_surveys(store.unit_of_work, at) == 1
    [followup] = rows(store, "survey_followup")
    msg = OutgoingMessage.from_json(followup.payload)
    assert "Is the problem still solved?" in msg.text
    assert [b.payload for b in msg.all_buttons()] == [f"sv:{survey.id}:fy", f"sv:{survey.id}:fn"]
    assert store.surveys[survey.id].state is SurveyState.FOLLOWUP
    assert await run_due_surveys(store.unit_of_work, at + timedelta(days=1)) == 0

    chat.engine._clock = FixedClock(at + timedelta(hours=1))  # type: ignore[attr-defined]
    await chat.press(f"sv:{survey.id}:fy")
    assert "stays solved" in chat.text
    stored = store.surveys[survey.id]
    assert (stored.state, stored.still_solved) == (SurveyState.FINISHED, True)
    assert store.complaints[complaint.id].status is Status.CLOSED


async def test_followup_no_reopens_and_alerts():
    store, chat, complaint, survey = await setup()
    await chat.press(f"sv:{survey.id}:y")
    await chat.press(f"sv:{survey.id}:r:4")
    at = CLOSED_AT + timedelta(days=14)
    await run_due_surveys(store.unit_of_work, at)
    await chat.press(f"sv:{survey.id}:r:1")  # the old rating buttons are stale by now
    assert "This button is no longer valid." in chat.text
    chat.engine._clock = FixedClock(at + timedelta(days=20))  # type: ignore[attr-defined]
    await chat.press(f"sv:{survey.id}:fn")  # 34 days after closure, 20 after the follow-up
    assert "has been reopened" in chat.text
    assert store.complaints[complaint.id].status is Status.REOPENED
    [alert] = rows(store, "survey_alert")
    assert (alert.payload["reason"], alert.payload["still_solved"]) == ("not_fixed", False)


async def test_no_followup_after_not_solved_or_once_reopened_by_an_operator():
    store, chat, complaint, survey = await setup()
    await chat.press(f"sv:{survey.id}:n")
    assert await run_due_surveys(store.unit_of_work, CLOSED_AT + timedelta(days=15)) == 0
    assert rows(store, "survey_followup") == []

    store2, chat2, complaint2, survey2 = await setup()
    from domain.services import change_status

    async with store2.unit_of_work() as uow:
        await change_status(uow, complaint2.id, Status.REOPENED, actor="op",
                            now=CLOSED_AT + timedelta(days=1))
        await uow.commit()
    assert await run_due_surveys(store2.unit_of_work, CLOSED_AT + timedelta(days=15)) == 0
    assert rows(store2, "survey_followup") == rows(store2, "survey_reminder") == []
    assert store2.surveys[survey2.id].state is SurveyState.FINISHED


async def test_closing_again_supersedes_the_older_survey():
    store, chat, complaint, survey = await setup()
    await chat.press(f"sv:{survey.id}:n")  # reopened by the survey
    from domain.services import answer_complaint, change_status

    again = CLOSED_AT + timedelta(days=5)
    async with store.unit_of_work() as uow:
        await answer_complaint(uow, complaint.id, "Переделали", actor="op", now=again)
        await change_status(uow, complaint.id, Status.CLOSED, actor="op", now=again)
        await uow.commit()
    old, new = sorted((s for s in store.surveys.values() if s.complaint_id == complaint.id),
                      key=lambda s: s.id or 0)
    assert old.state is SurveyState.SUPERSEDED and new.state is SurveyState.ASKED
    await chat.press(f"sv:{old.id}:r:5")
    assert "This button is no longer valid." in chat.text
    await chat.press(f"sv:{new.id}:y")
    assert store.surveys[new.id].solved is True
