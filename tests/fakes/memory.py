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
from typing import Any

from domain.citizen import Citizen
from domain.complaint import Complaint
from domain.events import DomainEvent
from domain.ports import Conversation


@dataclass
class MemoryStore:
    """The "database": committed rows only."""

    citizens: dict[int, Citizen] = field(default_factory=dict)
    complaints: dict[int, Complaint] = field(default_factory=dict)
    conversations: dict[tuple[str, str], Conversation] = field(default_factory=dict)
    events: list[DomainEvent] = field(default_factory=list)
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

    async def save(self, conversation: Conversation) -> None:
        # round-trip the draft as JSON would, so non-JSON values fail here as in SQL
        _check_jsonable(conversation.data)
        key = (conversation.channel, conversation.user_id)
        self.pending[key] = copy.deepcopy(conversation)


class FakeUnitOfWork:
    """Stages writes; :meth:`commit` applies them to the store, anything else drops them."""

    def __init__(self, store: MemoryStore) -> None:
        self.store = store
        self.citizens = FakeCitizenRepository(store)
        self.complaints = FakeComplaintRepository(store)
        self.conversations = FakeConversationStore(store)
        self.committed = False
        self.rolled_back = False

    async def __aenter__(self) -> FakeUnitOfWork:
        return self

    async def __aexit__(self, *exc: object) -> None:
        if not (self.committed or self.rolled_back):
            await self.rollback()

    async def commit(self) -> None:
        store = self.store
        store.citizens.update(self.citizens.pending)
        for complaint_id, complaint in self.complaints.pending.items():
            store.events.extend(complaint.events)
            complaint.events = []
            store.complaints[complaint_id] = complaint
        store.conversations.update(self.conversations.pending)
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
        self.conversations.pending.clear()


def _clean_copy(complaint: Complaint) -> Complaint:
    result = copy.deepcopy(complaint)
    result.events = []  # events are delivered once, on commit
    return result


def _check_jsonable(value: Any) -> None:
    json.dumps(value)
