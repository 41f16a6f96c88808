"""Satisfaction surveys end to end over the in-memory store: closing a complaint starts a
survey with its invitation, and the citizen answers it with buttons through the real engine."""

from __future__ import annotations

from datetime import timedelta

from dialogue.messages import Channel, OutgoingMessage
from domain.calendar import WorkingCalendar
from domain.citizen import Citizen, Identity
from domain.complaint import Complaint, Status
from domain.ports import OutboxMessage
from domain.services import ComplaintDraft, answer_complaint, change_status, register_complaint
from domain.survey import Survey, SurveyState
from notifications.handlers import StatusNotifier, combine
from notifications.surveys import SurveyHandler
from tests.fakes.dialogue import FRIDAY_EVENING, Chat, FixedClock, catalogue, make_engine
from tests.fakes.memory import MemoryStore

T0 = FRIDAY_EVENING
CLOSED_AT = T0 + timedelta(days=3)


def make_store() -> MemoryStore:
    return MemoryStore(event_handler=combine(StatusNotifier(catalogue()), SurveyHandler()))


async def add_citizen(store: MemoryStore, user: str = "1001", lang: str = "en") -> Citizen:
    async with store.unit_of_work() as uow:
        citizen = Citizen([Identity("telegram", user, user)], language=lang, created_at=T0)
        citizen.give_consent(T0, "v1")
        await uow.citizens.add(citizen)
        await uow.commit()
    return citizen


async def closed_complaint(store: MemoryStore, citizen: Citizen) -> Complaint:
    async with store.unit_of_work() as uow:
        complaint = await register_complaint(
            uow, catalogue(), WorkingCalendar(), citizen, "telegram",
            ComplaintDraft("Яма на улице Ленина", "roads", "potholes"), T0)
        await uow.commit()
    assert complaint.id is not None
    async with store.unit_of_work() as uow:
        await answer_complaint(uow, complaint.id, "Яму заделали", actor="op", now=CLOSED_AT)
        await change_status(uow, complaint.id, Status.CLOSED, actor="op", now=CLOSED_AT)
        await uow.commit()
    return store.complaints[complaint.id]


def survey_of(store: MemoryStore, complaint: Complaint) -> Survey:
    [survey] = [s for s in store.surveys.values() if s.complaint_id == complaint.id]
    return survey


def rows(store: MemoryStore, kind: str) -> list[OutboxMessage]:
    return [m for _, m in sorted(store.outbox.items()) if m.kind == kind]


async def setup(lang: str = "en") -> tuple[MemoryStore, Chat, Complaint, Survey]:
    store = make_store()
    citizen = await add_citizen(store, lang=lang)
    complaint = await closed_complaint(store, citizen)
    clock = FixedClock(CLOSED_AT + timedelta(hours=2))
    chat = Chat(make_engine(store, clock=clock), language_hint=lang)
    return store, chat, complaint, survey_of(store, complaint)


async def test_closing_stores_a_survey_and_its_invitation_in_the_same_commit():
    store = make_store()
    citizen = await add_citizen(store)
    commits_before = store.commits
    complaint = await closed_complaint(store, citizen)
    assert store.commits == commits_before + 2  # registration, then answer + closure
    survey = survey_of(store, complaint)
    assert (survey.state, survey.citizen_id, survey.channel) == (
        SurveyState.ASKED, citizen.id, "telegram")
    assert survey.created_at == CLOSED_AT
    assert survey.reminder_due_at == CLOSED_AT + timedelta(hours=24)
    assert survey.followup_due_at == CLOSED_AT + timedelta(days=14)
    assert survey.reopen_until == CLOSED_AT + timedelta(days=30)
    [invite] = rows(store, "survey")
    msg = OutgoingMessage.from_json(invite.payload)
    assert msg.text == f"Complaint №{complaint.number} has been closed. Was the problem solved?"
    assert [b.payload for b in msg.all_buttons()] == [f"sv:{survey.id}:y", f"sv:{survey.id}:n"]
    assert (invite.channel, invite.chat_id, invite.dedup_key) == (
        "telegram", "1001", f"survey:{survey.id}:survey")
    # the closure notice outranks the survey, so the citizen reads them in order
    [closed] = [m for m in rows(store, "status")
                if "closed" in OutgoingMessage.from_json(m.payload).text]
    assert closed.priority > invite.priority


async def test_a_rolled_back_closure_leaves_no_survey():
    store = make_store()
    citizen = await add_citizen(store)
    async with store.unit_of_work() as uow:
        complaint = await register_complaint(
            uow, catalogue(), WorkingCalendar(), citizen, "telegram",
            ComplaintDraft("Яма", "roads", "potholes"), T0)
        await uow.commit()
    async with store.unit_of_work() as uow:
        await answer_complaint(uow, complaint.id, "ok", actor="op", now=CLOSED_AT)
        await change_status(uow, complaint.id, Status.CLOSED, actor="op", now=CLOSED_AT)
    assert store.surveys == {} and rows(store, "survey") == []


async def test_yes_then_five_then_a_comment():
    store, chat, complaint, survey = await setup()
    await chat.press(f"sv:{survey.id}:y")
    assert "We are glad the problem was solved!" in chat.text
    assert "from 1 (very bad) to 5 (excellent)" in chat.text
    assert chat.payloads == [f"sv:{survey.id}:r:{n}" for n in range(1, 6)]

    await chat.press(f"sv:{survey.id}:r:5")
    assert "Would you like to add a comment?" in chat.text
    assert chat.payloads == [f"sv:{survey.id}:skip"]

    await chat.send("Спасибо, всё быстро сделали")
    assert "Thank you for your feedback!" in chat.text
    assert "menu:new" in chat.payloads  # back at the main menu

    stored = store.surveys[survey.id]
    assert (stored.state, stored.solved, stored.rating, stored.comment) == (
        SurveyState.ANSWERED, True, 5, "Спасибо, всё быстро сделали")
    assert stored.answered_at == CLOSED_AT + timedelta(hours=2)
    assert stored.reminder_due_at is None  # answered: no reminder
    assert stored.followup_due_at == CLOSED_AT + timedelta(days=14)
    assert store.complaints[complaint.id].status is Status.CLOSED
    assert rows(store, "survey_alert") == []


async def test_skip_leaves_no_comment_and_a_later_text_is_a_new_complaint():
    store, chat, complaint, survey = await setup()
    await chat.press(f"sv:{survey.id}:y")
    await chat.press(f"sv:{survey.id}:r:4")
    await chat.press(f"sv:{survey.id}:skip")
    assert "Thank you for your feedback!" in chat.text
    assert store.surveys[survey.id].comment is None
    assert store.surveys[survey.id].state is SurveyState.ANSWERED
    await chat.send("На улице Гагарина не горят фонари")
    assert store.surveys[survey.id].comment is None  # taken as a new complaint instead
    assert store.conversations[("telegram", "1001")].state != "idle"


async def test_not_solved_reopens_the_complaint_and_alerts_the_operators():
    store, chat, complaint, survey = await setup()
    await chat.press(f"sv:{survey.id}:n")
    assert (f"We are sorry. Complaint №{complaint.number} has been reopened and the "
            "operators have been alerted.") in chat.text
    assert f"sv:{survey.id}:r:1" in chat.payloads  # the rating is still asked

    reopened = store.complaints[complaint.id]
    assert reopened.status is Status.REOPENED
    last = reopened.history[-1]
    assert (last.actor, last.text) == ("survey", "survey:not_solved")
    [alert] = rows(store, "survey_alert")
    assert (alert.channel, alert.complaint_id, alert.citizen_id) == (
        "backoffice", complaint.id, None)
    assert alert.payload["type"] == "survey_alert"
    assert (alert.payload["complaint_id"], alert.payload["number"], alert.payload["reason"],
            alert.payload["survey_id"], alert.payload["solved"]) == (
        complaint.id, complaint.number, "not_solved", survey.id, False)
    assert alert.payload["text"] == (f"⚠️ Обращение №{complaint.number} открыто повторно: "
                                     "заявитель сообщает, что проблема не решена.")
    # the citizen hears about the reopening like any other status change
    assert any("reopened" in OutgoingMessage.from_json(m.payload).text
               for m in rows(store, "status"))

    await chat.press(f"sv:{survey.id}:r:1")  # a low rating after "no" reopens nothing more
    assert len(rows(store, "survey_alert")) == 1
    stored = store.surveys[survey.id]
    assert (stored.solved, stored.rating, stored.reopen_reason) == (False, 1, "not_solved")
    assert stored.followup_due_at is None  # nothing to follow up


async def test_a_rating_of_two_reopens_the_complaint():
    store, chat, complaint, survey = await setup()
    await chat.press(f"sv:{survey.id}:y")
    await chat.press(f"sv:{survey.id}:r:2")
    assert "has been reopened" in chat.text and f"sv:{survey.id}:skip" in chat.payloads
    assert store.complaints[complaint.id].status is Status.REOPENED
    [alert] = rows(store, "survey_alert")
    assert (alert.payload["reason"], alert.payload["rating"]) == ("low_rating", 2)
    assert "оценил ответ на 2 из 5" in alert.payload["text"]


async def test_a_rating_of_three_does_not_reopen():
    store, chat, complaint, survey = await setup()
    await chat.press(f"sv:{survey.id}:y")
    await chat.press(f"sv:{survey.id}:r:3")
    assert store.complaints[complaint.id].status is Status.CLOSED
    assert rows(store, "survey_alert") == []


async def test_not_solved_after_thirty_days_is_stored_but_does_not_reopen():
    store, chat, complaint, survey = await setup()
    chat.engine._clock = FixedClock(CLOSED_AT + timedelta(days=30, seconds=1))  # type: ignore[attr-defined]
    await chat.press(f"sv:{survey.id}:n")
    assert "the operators will see your answer" in chat.text
    assert store.complaints[complaint.id].status is Status.CLOSED
    assert store.surveys[survey.id].solved is False
    assert rows(store, "survey_alert") == []


async def test_forged_and_stale_survey_buttons_are_refused_politely():
    store, chat, complaint, survey = await setup()
    other = await add_citizen(store, user="2002")
    others = await closed_complaint(store, other)
    foreign = survey_of(store, others)

    for payload in (f"sv:{foreign.id}:y",  # another citizen's survey
                    "sv:999:y",  # no such survey
                    f"sv:{survey.id}:r:5",  # wrong state: not asked for a rating yet
                    f"sv:{survey.id}:fy",  # wrong state: no follow-up asked
                    f"sv:{survey.id}:r:9",  # malformed
                    "sv:abc:y"):
        await chat.press(payload)
        assert "This button is no longer valid." in chat.text, payload
        assert "menu:new" in chat.payloads  # and the current step (idle) again
    assert store.surveys[foreign.id].state is SurveyState.ASKED
    assert store.surveys[survey.id].state is SurveyState.ASKED

    await chat.press(f"sv:{survey.id}:y")
    await chat.press(f"sv:{survey.id}:y")  # pressed twice: the second is stale
    assert "This button is no longer valid." in chat.text
    assert store.complaints[others.id].status is Status.CLOSED


async def test_a_survey_answer_in_the_middle_of_a_draft_keeps_the_draft():
    store, chat, complaint, survey = await setup()
    await chat.send("Во дворе дома на улице Ленина в Махачкале нет воды уже три дня")
    await chat.press("cls:yes")
    conversation = store.conversations[("telegram", "1001")]
    assert conversation.state == "cmp.photos"
    draft = dict(conversation.data["draft"])

    await chat.press(f"sv:{survey.id}:y")
    assert f"sv:{survey.id}:r:5" in chat.payloads
    await chat.press(f"sv:{survey.id}:r:5")
    await chat.send("Отличная работа")  # the comment asked for last
    assert "Thank you for your feedback!" in chat.text
    assert "photo:done" in chat.payloads  # the draft's step is asked again
    conversation = store.conversations[("telegram", "1001")]
    assert conversation.state == "cmp.photos" and conversation.data["draft"] == draft
    assert store.surveys[survey.id].comment == "Отличная работа"

    await chat.press(f"sv:{survey.id}:y")  # a stale survey button mid-draft
    assert "This button is no longer valid." in chat.text and "photo:done" in chat.payloads
    assert store.conversations[("telegram", "1001")].data["draft"] == draft

    await chat.press("photo:done")  # and the complaint goes on
    assert store.conversations[("telegram", "1001")].state == "cmp.location"


async def test_survey_questions_are_in_the_citizens_language():
    store, chat, complaint, survey = await setup(lang="ru")
    [invite] = rows(store, "survey")
    msg = OutgoingMessage.from_json(invite.payload)
    assert msg.text == f"Обращение №{complaint.number} закрыто. Проблема решена?"
    assert [b.label for b in msg.all_buttons()] == ["✅ Да", "❌ Нет"]
    await chat.press(f"sv:{survey.id}:y")
    assert "Рады, что проблема решена!" in chat.text
    assert Channel.TELEGRAM.value == invite.channel
