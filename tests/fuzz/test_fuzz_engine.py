"""Fuzzing the dialogue engine: arbitrary sequences of messages over the in-memory store.

Each message is either junk (any text, forged or malformed payloads, attachments of every
kind, impossible locations, odd language hints) or a press of one of the buttons the
engine has just shown, so the fuzzer also walks deep into the flows. After every message:
no exception escaped, no step failed (the engine would apologise and roll back), at least
one reply with text, every button payload fits Telegram's 64 bytes.
"""

from __future__ import annotations

import copy
import json
import math
from dataclasses import dataclass
from datetime import timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from dialogue.engine import Engine
from dialogue.flows.base import MAX_PAYLOAD_BYTES
from dialogue.messages import (
    Address,
    Attachment,
    AttachmentKind,
    Channel,
    IncomingMessage,
    Location,
    OutgoingMessage,
)
from dialogue.nlu import Suggestion
from domain.calendar import WorkingCalendar
from domain.ports import OutboxMessage
from domain.services import ComplaintDraft, get_or_create_citizen, register_complaint
from domain.survey import Survey
from tests.fakes.dialogue import FRIDAY_EVENING, ScriptedClassifier, catalogue, make_engine
from tests.fakes.memory import MemoryStore
from tests.fuzz import any_text, examples, forged_payloads, texts

DRAFT_TEXT = "Во дворе дома на улице Ленина в Махачкале нет воды уже три дня, кран сухой"
# the only ways a citizen lets go of a draft on purpose
LETTING_GO = frozenset({"draft:discard", "cmp:cancel"})

floats = st.one_of(st.floats(allow_nan=True, allow_infinity=True),
                   st.sampled_from([math.nan, math.inf, -math.inf, 0.0, -0.0, 90.0, -90.0,
                                    180.0, 1e308, -1e-308, 42.98, 47.5, 91.0, 181.0]))
locations = st.builds(Location, floats, floats)
attachments = st.builds(Attachment, st.sampled_from(list(AttachmentKind)),
                        st.one_of(st.just(""), any_text), st.one_of(st.just(""), any_text),
                        st.one_of(st.just(""), any_text))
hints = st.one_of(st.none(), st.sampled_from(["ru", "en", "en-US", "de", "", "RU", "x" * 50]),
                  any_text)


@dataclass(frozen=True)
class Junk:
    """A random message (not a press of a shown button)."""

    text: str
    payload: str | None
    attachments: tuple[Attachment, ...]
    location: Location | None
    hint: str | None
    name: str


@dataclass(frozen=True)
class Press:
    """A press of the ``index``-th button shown last (modulo their number)."""

    index: int


junk = st.builds(
    Junk, texts, st.one_of(st.none(), st.none(), forged_payloads),
    st.lists(attachments, max_size=12).map(tuple), st.one_of(st.none(), locations),
    hints, st.one_of(st.just(""), any_text))
presses = st.builds(Press, st.integers(0, 40))
actions = st.one_of(junk, presses, presses)  # as many presses as junk: deep into the flows


def check_replies(replies: list[OutgoingMessage]) -> None:
    assert replies, "the citizen got no answer"
    for reply in replies:
        assert reply.text.strip(), f"an empty reply: {reply!r}"
        for button in reply.all_buttons():
            assert button.label.strip(), f"a button without a label: {button!r}"
            assert len(button.payload.encode()) <= MAX_PAYLOAD_BYTES, button


def check_stored(store: MemoryStore) -> None:
    """What a step saved would also fit PostgreSQL: strict JSON, real coordinates."""
    for conversation in store.conversations.values():
        json.dumps(conversation.data, allow_nan=False)
    for complaint in store.complaints.values():
        if complaint.latitude is not None or complaint.longitude is not None:
            assert complaint.latitude is not None and complaint.longitude is not None
            assert abs(complaint.latitude) <= 90 and abs(complaint.longitude) <= 180, complaint
        for photo in complaint.photos:  # complaint_photos.ref / .mime
            assert len(photo.ref) <= 512 and len(photo.mime) <= 100, photo
            assert "\x00" not in photo.ref + photo.mime, photo
    for citizen in store.citizens.values():  # citizens.name
        assert len(citizen.name) <= 200 and "\x00" not in citizen.name, citizen.name


class Citizen:
    def __init__(self, engine: Engine, store: MemoryStore, user_id: str,
                 channel: Channel) -> None:
        self.engine, self.store = engine, store
        self.user_id, self.channel = user_id, channel
        self.shown: list[str] = []

    async def send(self, text: str = "", *, payload: str | None = None,
                   attachments: tuple[Attachment, ...] = (), location: Location | None = None,
                   hint: str | None = None, name: str = "") -> list[OutgoingMessage]:
        msg = IncomingMessage(Address(self.channel, self.user_id), self.user_id, text=text,
                              payload=payload, attachments=attachments, location=location,
                              language_hint=hint, display_name=name)
        rollbacks = self.store.rollbacks
        replies = await self.engine.handle(msg)
        assert self.store.rollbacks == rollbacks, f"a dialogue step failed on {msg!r}"
        check_replies(replies)
        check_stored(self.store)
        self.shown = [b.payload for r in replies for b in r.all_buttons()]
        return replies

    async def act(self, action: Junk | Press, *, avoid: frozenset[str] = frozenset()) -> None:
        if isinstance(action, Press):
            choices = [p for p in self.shown if p not in avoid]
            if choices:
                await self.send(payload=choices[action.index % len(choices)])
            return
        if action.payload in avoid:
            return
        await self.send(action.text, payload=action.payload, attachments=action.attachments,
                        location=action.location, hint=action.hint, name=action.name)


@settings(max_examples=examples(80))
@given(channel=st.sampled_from(list(Channel)), script=st.lists(actions, max_size=14))
async def test_any_sequence_of_messages_gets_an_answer(channel: Channel,
                                                       script: list[Junk | Press]) -> None:
    store = MemoryStore()
    me = Citizen(make_engine(store), store, "1001", channel)
    for action in script:
        await me.act(action)


async def _draft_of(store: MemoryStore, me: Citizen) -> str | None:
    conversation = store.conversations.get((me.channel.value, me.user_id))
    if conversation is None or not conversation.data:
        return None
    return (conversation.data.get("draft") or {}).get("text")


@settings(max_examples=examples(80))
@given(channel=st.sampled_from(list(Channel)), script=st.lists(actions, max_size=16))
async def test_an_accepted_draft_survives_any_junk(channel: Channel,
                                                   script: list[Junk | Press]) -> None:
    store = MemoryStore()
    classifier = ScriptedClassifier(Suggestion("housing", "no_water", 0.9))
    me = Citizen(make_engine(store, classifier), store, "1001", channel)
    await me.send(DRAFT_TEXT)
    assert await _draft_of(store, me) == DRAFT_TEXT
    for action in script:
        await me.act(action, avoid=LETTING_GO)
        filed = [c for c in store.complaints.values() if c.text == DRAFT_TEXT]
        assert await _draft_of(store, me) == DRAFT_TEXT or filed, \
            f"the draft was lost after {action!r}"


# --- another citizen's things ---------------------------------------------------------------

@dataclass
class Victim:
    citizen_id: int
    complaint_id: int
    survey_id: int
    broadcast_id: int


async def victim(store: MemoryStore) -> Victim:
    """Citizen 2002 with an open complaint, a survey waiting and a broadcast received."""
    cat, now = catalogue(), FRIDAY_EVENING
    async with store.unit_of_work() as uow:
        citizen = await get_or_create_citizen(uow, "telegram", "2002", "2002", language="ru",
                                              now=now)
        citizen.give_consent(now, cat.consent_version)
        await uow.citizens.save(citizen)
        complaint = await register_complaint(
            uow, cat, WorkingCalendar(), citizen, "telegram",
            ComplaintDraft("Чужая жалоба про яму на дороге", "roads", "potholes",
                           municipality="makhachkala"), now)
        assert citizen.id is not None and complaint.id is not None
        survey = await uow.surveys.add(Survey.start(
            complaint.id, citizen.id, "telegram", now, reminder_after=timedelta(days=1),
            followup_after=timedelta(days=30), reopen_within=timedelta(days=30)))
        await uow.commit()
    row_id = store.next_id("outbox")
    store.outbox[row_id] = OutboxMessage(
        kind="broadcast", channel="telegram", chat_id="2002", payload={"text": "Новость"},
        dedup_key=f"bc:77:{citizen.id}", created_at=now, not_before=now,
        citizen_id=citizen.id, id=row_id)
    assert survey.id is not None
    return Victim(citizen.id, complaint.id, survey.id, 77)


def targeted(v: Victim) -> st.SearchStrategy[str]:
    return st.sampled_from([
        f"add:{v.complaint_id}", f"unsub:{v.broadcast_id}", f"sv:{v.survey_id}:y",
        f"sv:{v.survey_id}:n", f"sv:{v.survey_id}:r:1", f"sv:{v.survey_id}:r:5",
        f"sv:{v.survey_id}:skip", f"sv:{v.survey_id}:fy", f"sv:{v.survey_id}:fn",
        f"bo:{v.complaint_id}:take", f"c:{v.complaint_id}:close", "menu:my"])


@settings(max_examples=examples(80))
@given(data=st.data(), channel=st.sampled_from(list(Channel)))
async def test_forged_payloads_never_touch_another_citizens_things(
        data: st.DataObject, channel: Channel) -> None:
    store = MemoryStore()
    v = await victim(store)
    before = (copy.deepcopy(store.citizens[v.citizen_id]),
              copy.deepcopy(store.complaints[v.complaint_id]),
              copy.deepcopy(store.surveys[v.survey_id]))
    me = Citizen(make_engine(store), store, "1001", channel)
    await me.send("/start")
    script = data.draw(st.lists(st.one_of(
        actions, targeted(v).map(lambda p: Junk("", p, (), None, None, "")),
        targeted(v).map(lambda p: Junk("Подробности к чужой жалобе", None, (), None, None, ""))),
        max_size=14))
    for action in script:
        await me.act(action)
        mine = store.citizens[max(store.citizens)]
        assert mine.id != v.citizen_id and not mine.broadcast_opt_out
        after = (store.citizens[v.citizen_id], store.complaints[v.complaint_id],
                 store.surveys[v.survey_id])
        assert after == before, f"{action!r} changed another citizen's data"
        assert {c.citizen_id for c in store.complaints.values()} <= {v.citizen_id, mine.id}
        assert {s.citizen_id for s in store.surveys.values()} == {v.citizen_id}
