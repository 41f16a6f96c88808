"""In-memory implementations of ``domain.ports``: a store shared by many units of work.

Honest about transactions: reads return copies, writes are staged in the unit of work and
reach the store only on ``commit`` (a rollback or an exception drops them). Ids and
complaint numbers come from sequences that, like database sequences, are not rolled back.
"""

from __future__ import annotations

import copy
import dataclasses
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from domain.citizen import Citizen
from domain.complaint import Complaint
from domain.events import DomainEvent
from domain.ports import Conversation, EventHandler, OutboxMessage, OutboxStatus
from domain.survey import Survey, SurveyState


@dataclass
class MemoryStore:
    """The "database": committed rows only."""

    citizens: dict[int, Citizen] = field(default_factory=dict)
    complaints: dict[int, Complaint] = field(default_factory=dict)
    conversations: dict[tuple[str, str], Conversation] = field(default_factory=dict)
    events: list[DomainEvent] = field(default_factory=list)
    outbox: dict[int, OutboxMessage] = field(default_factory=dict)
    surveys: dict[int, Survey] = field(default_factory=dict)
    event_handler: EventHandler | None = None  # called by every commit, like SqlUnitOfWork
    commits: int = 0
    rollbacks: int = 0
    _ids: dict[str, int] = field(default_factory=dict)
    _numbers: dict[int, int] = field(default_factory=dict)

    def next_id(self, table: str) -> int:
        self._ids[table] = self._ids.get(table, 0) + 1
        return self._ids[table]

    def next_number(self, year: int) -> str:
        self._numbers[year] = self._numbers.get(year, 0) + 1
        return f"{year}-{self._numbers[year]:06d}"

    def unit_of_work(self) -> FakeUnitOfWork:
        """A factory suitable for ``Engine(uow_factory=store.unit_of_work, ...)``."""
        return FakeUnitOfWork(self)


class FakeCitizenRepository:
    def __init__(self, store: MemoryStore) -> None:
        self._store = store
        self.pending: dict[int, Citizen] = {}

    def _all(self) -> dict[int, Citizen]:
        return {**self._store.citizens, **self.pending}

    async def get(self, citizen_id: int) -> Citizen | None:
        found = self._all().get(citizen_id)
        return copy.deepcopy(found) if found else None

    async def by_identity(self, channel: str, external_id: str) -> Citizen | None:
        for citizen in self._all().values():
            if any(i.channel == channel and i.external_id == external_id
                   for i in citizen.identities):
                return copy.deepcopy(citizen)
        return None

    async def add(self, citizen: Citizen) -> Citizen:
        citizen.id = self._store.next_id("citizen")
        self.pending[citizen.id] = copy.deepcopy(citizen)
        return citizen

    async def save(self, citizen: Citizen) -> None:
        if citizen.id is None or citizen.id not in self._all():
            raise LookupError(f"citizen {citizen.id} is not stored")
        self.pending[citizen.id] = copy.deepcopy(citizen)


class FakeComplaintRepository:
    def __init__(self, store: MemoryStore) -> None:
        self._store = store
        self.pending: dict[int, Complaint] = {}
        self.seen: list[Complaint] = []

    def _all(self) -> dict[int, Complaint]:
        return {**self._store.complaints, **self.pending}

    async def get(self, complaint_id: int) -> Complaint | None:
        found = self._all().get(complaint_id)
        return _clean_copy(found) if found else None

    async def by_number(self, number: str) -> Complaint | None:
        found = next((c for c in self._all().values() if c.number == number), None)
        return _clean_copy(found) if found else None

    async def for_citizen(self, citizen_id: int, limit: int = 20) -> Sequence[Complaint]:
        mine = [c for c in self._all().values() if c.citizen_id == citizen_id]
        mine.sort(key=lambda c: (c.created_at, c.id or 0), reverse=True)
        return [_clean_copy(c) for c in mine[:limit]]

    async def add(self, complaint: Complaint) -> Complaint:
        complaint.id = self._store.next_id("complaint")
        complaint.events = [dataclasses.replace(e, complaint_id=complaint.id)
                            if e.complaint_id is None else e for e in complaint.events]
        self._stage(complaint)
        return complaint

    async def save(self, complaint: Complaint) -> None:
        if complaint.id is None or complaint.id not in self._all():
            raise LookupError(f"complaint {complaint.id} is not stored")
        self._stage(complaint)

    def _stage(self, complaint: Complaint) -> None:
        if not any(c is complaint for c in self.seen):
            self.seen.append(complaint)  # its events are cleared on commit, as in SQL
        staged = copy.deepcopy(complaint)
        for entry in staged.history:  # like SQL: history rows get ids when written
            if entry.id is None:
                entry.id = self._store.next_id("history")
        self.pending[complaint.id or 0] = staged

    async def next_number(self, year: int) -> str:
        return self._store.next_number(year)


class FakeConversationStore:
    def __init__(self, store: MemoryStore) -> None:
        self._store = store
        self.pending: dict[tuple[str, str], Conversation] = {}

    async def load(self, channel: str, user_id: str) -> Conversation:
        key = (channel, user_id)
        found = self.pending.get(key) or self._store.conversations.get(key)
        return copy.deepcopy(found) if found else Conversation(channel, user_id)

    async def peek(self, user_id: str, *channels: str) -> dict[str, Conversation]:
        found = {c: self.pending.get((c, user_id)) or self._store.conversations.get((c, user_id))
                 for c in channels}
        return {c: copy.deepcopy(v) for c, v in found.items() if v is not None}

    async def save(self, conversation: Conversation) -> None:
        # round-trip the draft as JSON would, so non-JSON values fail here as in SQL
        _check_jsonable(conversation.data)
        key = (conversation.channel, conversation.user_id)
        self.pending[key] = copy.deepcopy(conversation)


class FakeOutbox:
    """The outbox port over the store's ``outbox`` dict; claims and marks are staged like
    every other write. There is one process here, so a claim needs no row locks."""

    def __init__(self, store: MemoryStore) -> None:
        self._store = store
        self.pending: dict[int, OutboxMessage] = {}

    def _all(self) -> dict[int, OutboxMessage]:
        return {**self._store.outbox, **self.pending}

    def _put(self, message: OutboxMessage) -> None:
        assert message.id is not None
        self.pending[message.id] = copy.deepcopy(message)

    async def add(self, message: OutboxMessage) -> bool:
        if any(m.dedup_key == message.dedup_key for m in self._all().values()):
            return False
        _check_jsonable(message.payload)
        message.id = self._store.next_id("outbox")
        self._put(message)
        return True

    async def get(self, message_id: int) -> OutboxMessage | None:
        found = self._all().get(message_id)
        return copy.deepcopy(found) if found else None

    async def find(self, *, status: OutboxStatus | None = None, channel: str | None = None,
                   citizen_id: int | None = None) -> list[OutboxMessage]:
        return [copy.deepcopy(m) for _, m in sorted(self._all().items())
                if (status is None or m.status is status)
                and (channel is None or m.channel == channel)
                and (citizen_id is None or m.citizen_id == citizen_id)]

    async def claim(self, channel: str, now: datetime, *, limit: int, lease: timedelta,
                    token: str, notes: Any = None) -> list[OutboxMessage]:
        tried: dict[str, int] = {}  # chat → its oldest message tried and still pending
        for m in self._all().values():
            if m.channel == channel and m.status is OutboxStatus.PENDING and m.attempts > 0:
                tried[m.chat_id] = min(tried.get(m.chat_id, m.id or 0), m.id or 0)
        due = [m for m in self._all().values()
               if m.channel == channel and m.status is OutboxStatus.PENDING
               and m.not_before <= now and (m.locked_until is None or m.locked_until <= now)
               and (m.id or 0) <= tried.get(m.chat_id, m.id or 0)]
        due.sort(key=lambda m: (-m.priority, m.not_before, m.id or 0))
        claimed = []
        for message in due[:limit]:
            message = copy.deepcopy(message)
            citizen = (self._store.citizens.get(message.citizen_id)
                       if message.citizen_id is not None else None)
            if citizen is not None and not citizen.reachable:
                message.status = OutboxStatus.UNREACHABLE
                self._put(message)
                continue
            message.locked_until, message.claim_token = now + lease, token
            message.attempts += 1
            self._put(message)
            claimed.append(copy.deepcopy(message))
        for ids, note in notes(claimed) if notes else ():
            for message_id in ids:
                self.pending[message_id].last_error = note + self.pending[message_id].last_error
        return claimed

    def _claimed(self, message_id: int, token: str) -> OutboxMessage | None:
        found = self._all().get(message_id)
        if found is None or found.claim_token != token or found.status is not \
                OutboxStatus.PENDING:
            return None
        return copy.deepcopy(found)

    async def finish(self, message_id: int, token: str, status: OutboxStatus, *,
                     now: datetime, error: str = "") -> bool:
        if status is OutboxStatus.PENDING:
            raise ValueError("use reschedule() to make a message due again")
        message = self._claimed(message_id, token)
        if message is None:
            return False
        message.status, message.locked_until, message.claim_token = status, None, None
        if status is OutboxStatus.SENT:
            message.sent_at = now
        message.last_error = error or message.last_error
        self._put(message)
        return True

    async def finish_many(self, message_ids: Sequence[int], token: str,
                          status: OutboxStatus, *, now: datetime) -> int:
        return sum([await self.finish(i, token, status, now=now) for i in message_ids])

    async def reschedule(self, message_id: int, token: str, *, not_before: datetime,
                         error: str = "") -> bool:
        message = self._claimed(message_id, token)
        if message is None:
            return False
        message.not_before, message.locked_until, message.claim_token = not_before, None, None
        message.last_error = error or message.last_error
        self._put(message)
        return True

    async def release(self, message_ids: Sequence[int], token: str) -> None:
        for message_id in message_ids:
            message = self._claimed(message_id, token)
            if message is not None:
                message.locked_until, message.claim_token = None, None
                message.attempts -= 1
                self._put(message)

    async def drop_pending_for(self, citizen_id: int, status: OutboxStatus, *,
                               now: datetime) -> int:
        dropped = 0
        for message in self._all().values():
            if (message.citizen_id == citizen_id and message.status is OutboxStatus.PENDING
                    and (message.locked_until is None or message.locked_until <= now)):
                message = copy.deepcopy(message)
                message.status, message.locked_until, message.claim_token = status, None, None
                self._put(message)
                dropped += 1
        return dropped


class FakeSurveyRepository:
    """Surveys, staged like everything else; claims mark the staged copy, as SQL does."""

    def __init__(self, store: MemoryStore) -> None:
        self._store = store
        self.pending: dict[int, Survey] = {}

    def _all(self) -> dict[int, Survey]:
        return {**self._store.surveys, **self.pending}

    async def add(self, survey: Survey) -> Survey:
        survey.id = self._store.next_id("survey")
        self.pending[survey.id] = copy.deepcopy(survey)
        return survey

    async def get(self, survey_id: int) -> Survey | None:
        found = self._all().get(survey_id)
        return copy.deepcopy(found) if found else None

    async def save(self, survey: Survey) -> None:
        if survey.id is None or survey.id not in self._all():
            raise LookupError(f"survey {survey.id} is not stored")
        self.pending[survey.id] = copy.deepcopy(survey)

    async def for_complaint(self, complaint_id: int) -> Sequence[Survey]:
        found = [s for s in self._all().values() if s.complaint_id == complaint_id]
        found.sort(key=lambda s: (s.created_at, s.id or 0), reverse=True)
        return [copy.deepcopy(s) for s in found]

    async def claim_reminders(self, now: datetime, *, limit: int) -> list[Survey]:
        due = [s for s in self._all().values()
               if s.reminder_sent_at is None and s.reminder_due_at is not None
               and s.reminder_due_at <= now and s.state is SurveyState.ASKED]
        return self._mark(due, limit, reminder_sent_at=now)

    async def claim_followups(self, now: datetime, *, limit: int) -> list[Survey]:
        due = [s for s in self._all().values()
               if s.followup_sent_at is None and s.followup_due_at is not None
               and s.followup_due_at <= now]
        return self._mark(due, limit, followup_sent_at=now, reminder_due_at=None,
                          state=SurveyState.FOLLOWUP)

    def _mark(self, due: list[Survey], limit: int, **values: Any) -> list[Survey]:
        claimed = []
        for survey in sorted(due, key=lambda s: s.id or 0)[:limit]:
            survey = dataclasses.replace(copy.deepcopy(survey), **values)
            self.pending[survey.id or 0] = survey
            claimed.append(copy.deepcopy(survey))
        return claimed


class FakeUnitOfWork:
    """Stages writes; :meth:`commit` applies them to the store, anything else drops them.

    Before applying, ``commit`` hands the staged complaints' events to the store's
    ``event_handler`` (which may stage outbox rows in this unit), as SQL does."""

    def __init__(self, store: MemoryStore) -> None:
        self.store = store
        self.citizens = FakeCitizenRepository(store)
        self.complaints = FakeComplaintRepository(store)
        self.conversations = FakeConversationStore(store)
        self.outbox = FakeOutbox(store)
        self.surveys = FakeSurveyRepository(store)
        self.committed = False
        self.rolled_back = False

    async def __aenter__(self) -> FakeUnitOfWork:
        return self

    async def __aexit__(self, *exc: object) -> None:
        if not (self.committed or self.rolled_back):
            await self.rollback()

    async def commit(self) -> None:
        store = self.store
        events = [e for c in self.complaints.pending.values() for e in c.events]
        if events and store.event_handler is not None:
            await store.event_handler(self, events)
        store.citizens.update(self.citizens.pending)
        for complaint_id, complaint in self.complaints.pending.items():
            store.events.extend(complaint.events)
            complaint.events = []
            store.complaints[complaint_id] = complaint
        store.conversations.update(self.conversations.pending)
        store.outbox.update(self.outbox.pending)
        store.surveys.update(self.surveys.pending)
        for original in self.complaints.seen:
            original.events.clear()
        store.commits += 1
        self._clear()
        self.committed = True

    async def rollback(self) -> None:
        self.store.rollbacks += 1
        self.rolled_back = True
        self._clear()

    def _clear(self) -> None:
        self.citizens.pending.clear()
        self.complaints.pending.clear()
        self.complaints.seen.clear()
        self.conversations.pending.clear()
        self.outbox.pending.clear()
        self.surveys.pending.clear()


def _clean_copy(complaint: Complaint) -> Complaint:
    result = copy.deepcopy(complaint)
    result.events = []  # events are delivered once, on commit
    return result


def _check_jsonable(value: Any) -> None:
    json.dumps(value)
