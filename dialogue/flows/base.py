"""What every flow works with: the dialogue states, the per-message context and helpers."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from babel.support import Translations

from dialogue.messages import Button, IncomingMessage, OutgoingMessage
from dialogue.nlu import Classifier
from dialogue.text import clean
from domain.calendar import WorkingCalendar
from domain.catalogue import Catalogue
from domain.citizen import Citizen
from domain.ports import Conversation, UnitOfWork

MAX_PAYLOAD_BYTES = 64
# "kind" or "kind:arg[:arg]"; args are slugs or numbers — anything else is forged
_PAYLOAD = re.compile(r"[a-z]{2,8}(?::[a-z0-9_]{1,40}){0,2}")


class State(StrEnum):
    IDLE = "idle"
    CMP_TEXT = "cmp.text"  # waiting for the description
    CMP_CLASSIFY = "cmp.classify"  # the classifier's suggestion(s) shown
    CMP_SECTOR = "cmp.sector"
    CMP_CATEGORY = "cmp.category"
    CMP_PHOTOS = "cmp.photos"
    CMP_LOCATION = "cmp.location"
    CMP_MUNI = "cmp.muni"  # a guessed municipality to confirm
    CMP_MUNI_PICK = "cmp.muni_pick"
    CMP_CONSENT = "cmp.consent"
    CMP_SUMMARY = "cmp.summary"
    MY_LIST = "my.list"
    MY_ADD = "my.add"
    SUBS_MUNI = "subs.muni"
    SUBS_SECTORS = "subs.sectors"
    LANGUAGE = "lang"

    @property
    def has_draft(self) -> bool:
        """States in which a complaint draft exists and must not be lost silently."""
        return self.startswith("cmp.") and self is not State.CMP_TEXT


@dataclass(frozen=True, slots=True)
class Payload:
    """A parsed button payload: ``kind`` and its arguments (syntax checked, meaning not)."""

    kind: str
    args: tuple[str, ...] = ()

    @classmethod
    def parse(cls, raw: str) -> Payload | None:
        if len(raw.encode("utf-8", "replace")) > MAX_PAYLOAD_BYTES or not _PAYLOAD.fullmatch(raw):
            return None
        kind, *args = raw.split(":")
        return cls(kind, tuple(args))

    @property
    def arg(self) -> str:
        return self.args[0] if self.args else ""


@dataclass(frozen=True, slots=True)
class Deps:
    """Everything the flows use besides the unit of work."""

    catalogue: Catalogue
    calendar: WorkingCalendar
    classifier: Classifier
    confidence_threshold: float


@dataclass(slots=True)
class Context:
    """One handled message: its unit of work, citizen, conversation and the replies so far."""

    msg: IncomingMessage
    uow: UnitOfWork
    citizen: Citizen
    conversation: Conversation
    deps: Deps
    now: datetime
    translator: Translations
    prompts: Mapping[State, Callable[[Context], Awaitable[None]]]
    replies: list[OutgoingMessage] = field(default_factory=list)

    # --- state ------------------------------------------------------------------------------
    @property
    def state(self) -> State:
        try:
            return State(self.conversation.state)
        except ValueError:  # a state from an older release: start over, keep nothing broken
            return State.IDLE

    def go(self, state: State) -> None:
        self.conversation.state = state.value

    @property
    def data(self) -> dict[str, Any]:
        if self.conversation.data is None:
            self.conversation.data = {}
        return self.conversation.data

    @property
    def draft(self) -> dict[str, Any]:
        """The complaint being written (JSON-able, saved after every step)."""
        return self.data.setdefault("draft", {})

    def reset(self) -> None:
        """Back to idle, forgetting the draft and any flow data."""
        self.conversation.state = State.IDLE.value
        self.conversation.data = {}

    @property
    def text(self) -> str:
        """The message text with control characters removed and spaces squeezed."""
        return clean(self.msg.text)

    # --- language ---------------------------------------------------------------------------
    @property
    def lang(self) -> str:
        return self.citizen.language

    def _(self, msgid: str, **kwargs: object) -> str:
        text = self.translator.gettext(msgid)
        return text.format(**kwargs) if kwargs else text

    def ngettext(self, singular: str, plural: str, n: int, **kwargs: object) -> str:
        return self.translator.ngettext(singular, plural, n).format(n=n, **kwargs)

    # --- replies ----------------------------------------------------------------------------
    def say(self, text: str, buttons: Iterable[Sequence[Button]] = (), *,
            request_location: bool = False, remove_keyboard: bool = False) -> None:
        self.replies.append(OutgoingMessage(
            text, tuple(tuple(row) for row in buttons if row),
            request_location=request_location, remove_keyboard=remove_keyboard))

    async def prompt(self) -> None:
        """Ask again for whatever the current step needs."""
        await self.prompts[self.state](self)

    async def stale(self) -> None:
        """A button that does not fit (forged, stale, another state): say so, ask again."""
        self.say(self._("This button is no longer valid."))
        await self.prompt()


def rows(buttons: Sequence[Button], per_row: int = 2) -> list[list[Button]]:
    """Lay buttons out ``per_row`` to a row."""
    return [list(buttons[i:i + per_row]) for i in range(0, len(buttons), per_row)]


def page_of(items: Sequence[Any], page: int, size: int) -> tuple[Sequence[Any], int]:
    """The items of ``page`` (clamped) and the number of pages."""
    pages = max(1, -(-len(items) // size))
    page = min(max(page, 0), pages - 1)
    return items[page * size:(page + 1) * size], pages


def pager(page: int, pages: int, kind: str, back: str, next_: str) -> list[Button]:
    """« and » buttons for a paged list; payloads ``<kind>:<page>``."""
    nav = []
    if page > 0:
        nav.append(Button(back, f"{kind}:{page - 1}"))
    if page < pages - 1:
        nav.append(Button(next_, f"{kind}:{page + 1}"))
    return nav
