"""A small, honest stand-in for the dialogue engine, for testing channel adapters.

It records every :class:`IncomingMessage` and answers deterministically, so a channel test
can assert both what reached the core and what the citizen saw:

- a button press → ``"payload: <payload>"``
- a location → ``"location: <lat>, <lon>"``
- attachments → ``"attachments: <ref> (<mime>), ..."`` (plus ``caption: <text>`` if any)
- text ``"menu"`` → ``"Choose a sector"`` with two rows of buttons
- text ``"where"`` → ``"Share your location"`` with ``request_location=True``; text
  ``"where or skip"`` → the same with a ``"⏭ Skip"`` button (payload ``loc:skip``)
- text ``"two"`` → two messages, ``"first"`` and ``"second"``
- text ``"boom"`` → raises :class:`RuntimeError` (an engine bug)
- any other text → ``"echo: <text>"``; text over 10,000 characters → ``"too long: <n>"``
"""

from __future__ import annotations

import asyncio
from dataclasses import replace

from dialogue.engine import AlsoSave, Rewrite
from dialogue.i18n import normalize_language
from dialogue.messages import Button, IncomingMessage, OutgoingMessage
from domain.ports import Conversation
from tests.fakes.memory import FakeConversationStore, MemoryStore

MENU = OutgoingMessage(
    "Choose a sector",
    buttons=(
        (Button("Дороги", "sector:roads"), Button("Мусор", "sector:waste")),
        (Button("Back", "menu:back"),),
    ),
)


SKIP = Button("⏭ Skip", "loc:skip")


class FakeEngine:
    """Records messages in :attr:`received`; ``delay`` seconds of "thinking" per message
    let tests check ordering, and :attr:`max_concurrent` says how many overlapped."""

    def __init__(self, delay: float = 0.0) -> None:
        self.received: list[IncomingMessage] = []
        self.delay = delay
        self.max_concurrent = 0
        self.also_saved: list[Conversation] = []  # the rows ``also_save`` gave
        self._active = 0
        self._arrived = asyncio.Event()

    async def handle(self, msg: IncomingMessage, *, also_save: AlsoSave | None = None,
                     rewrite: Rewrite | None = None) -> list[OutgoingMessage]:
        if rewrite is not None:  # against a store of its own, where nothing is saved
            channel = msg.address.channel.value
            msg = await rewrite(msg, Conversation(channel, msg.user_id),
                                FakeConversationStore(MemoryStore()))
        self.received.append(msg)
        self._arrived.set()
        self._active += 1
        self.max_concurrent = max(self.max_concurrent, self._active)
        try:
            if self.delay:
                await asyncio.sleep(self.delay)
            # like the real engine, replies are in the citizen's language (here: the hint)
            language = normalize_language(msg.language_hint)
            replies = [replace(r, language=language) for r in self._answer(msg)]
            if also_save is not None:  # nothing to save them in: they are recorded
                self.also_saved.extend(also_save(replies))
            return replies
        finally:
            self._active -= 1

    async def wait_for(self, count: int, timeout: float = 5.0) -> list[IncomingMessage]:
        """Wait until at least ``count`` messages have arrived; return them all."""
        async with asyncio.timeout(timeout):
            while len(self.received) < count:
                self._arrived.clear()
                await self._arrived.wait()
        return self.received

    @staticmethod
    def _answer(msg: IncomingMessage) -> list[OutgoingMessage]:
        if msg.payload is not None:
            return [OutgoingMessage(f"payload: {msg.payload}")]
        if msg.location is not None:
            loc = msg.location
            return [OutgoingMessage(f"location: {loc.latitude}, {loc.longitude}")]
        if msg.attachments:
            refs = ", ".join(f"{a.ref} ({a.mime})" for a in msg.attachments)
            text = f"attachments: {refs}"
            if msg.text:
                text += f"\ncaption: {msg.text}"
            # like the real core, it names stored files "<channel>:<channel's ref>"
            stored = tuple(replace(a, ref=f"{msg.address.channel.value}:{a.ref}")
                           for a in msg.attachments)
            return [OutgoingMessage(text, attachments=stored)]
        if len(msg.text) > 10_000:
            return [OutgoingMessage(f"too long: {len(msg.text)}")]
        if msg.text == "menu":
            return [MENU]
        if msg.text == "where":
            return [OutgoingMessage("Share your location", request_location=True)]
        if msg.text == "where or skip":
            return [OutgoingMessage("Share your location", ((SKIP,),), request_location=True)]
        if msg.text == "two":
            return [OutgoingMessage("first"), OutgoingMessage("second")]
        if msg.text == "boom":
            raise RuntimeError("the fake engine was asked to fail")
        return [OutgoingMessage(f"echo: {msg.text}")]
