"""Helpers for dialogue transcript tests: a fixed clock, scripted classifiers and a chat
that talks to a real :class:`~dialogue.engine.Engine` over the in-memory store."""

from __future__ import annotations

from datetime import datetime
from functools import cache
from zoneinfo import ZoneInfo

from dialogue.engine import Engine
from dialogue.messages import (
    Address,
    Attachment,
    AttachmentKind,
    Channel,
    IncomingMessage,
    Location,
    OutgoingMessage,
)
from dialogue.nlu import Classifier, KeywordClassifier, Suggestion
from domain.calendar import WorkingCalendar
from domain.catalogue import Catalogue, load_catalogue
from tests.fakes.memory import MemoryStore

MOSCOW = ZoneInfo("Europe/Moscow")
FRIDAY_EVENING = datetime(2026, 11, 27, 17, 0, tzinfo=MOSCOW)


@cache
def catalogue() -> Catalogue:
    return load_catalogue()


class FixedClock:
    def __init__(self, now: datetime = FRIDAY_EVENING) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


class ScriptedClassifier:
    """Returns the suggestions it was given; raises ``fail`` once if set."""

    def __init__(self, *suggestions: Suggestion, fail: Exception | None = None) -> None:
        self.suggestions = list(suggestions)
        self.fail = fail
        self.calls: list[str] = []

    async def classify(self, text: str) -> list[Suggestion]:
        self.calls.append(text)
        if self.fail is not None:
            error, self.fail = self.fail, None
            raise error
        return list(self.suggestions)


def make_engine(store: MemoryStore, classifier: Classifier | None = None,
                clock: FixedClock | None = None, **kwargs: object) -> Engine:
    cat = catalogue()
    return Engine(store.unit_of_work, cat, WorkingCalendar(), classifier or KeywordClassifier(cat),
                  clock or FixedClock(), **kwargs)  # type: ignore[arg-type]


def photo(ref: str, mime: str = "image/jpeg") -> Attachment:
    return Attachment(AttachmentKind.PHOTO, ref, mime)


class Chat:
    """One citizen talking to the engine; keeps the last replies for assertions."""

    def __init__(self, engine: Engine, user_id: str = "1001",
                 channel: Channel = Channel.TELEGRAM, language_hint: str | None = None) -> None:
        self.engine = engine
        self.user_id = user_id
        self.channel = channel
        self.language_hint = language_hint
        self.replies: list[OutgoingMessage] = []

    async def send(self, text: str = "", *, payload: str | None = None,
                   attachments: tuple[Attachment, ...] = (),
                   location: Location | None = None) -> list[OutgoingMessage]:
        msg = IncomingMessage(Address(self.channel, self.user_id), self.user_id, text=text,
                              payload=payload, attachments=attachments, location=location,
                              language_hint=self.language_hint)
        self.replies = await self.engine.handle(msg)
        return self.replies

    async def press(self, payload: str) -> list[OutgoingMessage]:
        return await self.send(payload=payload)

    @property
    def text(self) -> str:
        return "\n---\n".join(r.text for r in self.replies)

    @property
    def payloads(self) -> list[str]:
        return [b.payload for r in self.replies for b in r.all_buttons()]

    def label(self, payload: str) -> str:
        return next(b.label for r in self.replies for b in r.all_buttons()
                    if b.payload == payload)
