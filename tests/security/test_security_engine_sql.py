"""Bad input through the dialogue engine over the real SQL storage (SQLite, PostgreSQL)."""

from __future__ import annotations

import math

import pytest

from dialogue.engine import Engine
from dialogue.messages import (
    Address,
    Attachment,
    AttachmentKind,
    Channel,
    IncomingMessage,
    Location,
)
from dialogue.nlu import KeywordClassifier
from domain.calendar import WorkingCalendar
from domain.storage import Database
from tests.fakes.dialogue import Chat, FixedClock, catalogue

PROBLEM = "Махачкала, ул. Гагарина 10: третий день нет воды во всём доме"
SORRY = "что-то пошло не так"


def engine_on(db: Database) -> Engine:
    cat = catalogue()
    return Engine(db.uow, cat, WorkingCalendar(), KeywordClassifier(cat), FixedClock())


async def to_location_step(chat: Chat) -> None:
    await chat.send(PROBLEM)
    await chat.press("cls:yes")
    await chat.press("photo:done")
    assert "loc:skip" in chat.payloads


@pytest.mark.parametrize("lat, lon", [(math.nan, 47.5), (42.98, math.inf),
                                      (-math.inf, math.nan), (91.0, 47.5), (42.98, 181.0),
                                      (1e308, -1e308)])
async def test_an_impossible_location_is_refused_not_stored(db: Database, lat: float,
                                                            lon: float) -> None:
    chat = Chat(engine_on(db), user_id="601", channel=Channel.WEB)
    await to_location_step(chat)
    await chat.send(location=Location(lat, lon))
    assert SORRY not in chat.text.lower()
    assert "loc:skip" in chat.payloads  # asked again for the location or the address
    await chat.send(location=Location(42.98, 47.5))
    assert "mun:yes" in chat.payloads


async def test_nul_and_control_characters_from_a_channel_never_break_a_step(
        db: Database) -> None:
    """PostgreSQL refuses NUL in text; a name or caption may still carry one."""
    engine = engine_on(db)
    msg = IncomingMessage(Address(Channel.TELEGRAM, "602"), "602",
                          text="/start\x00", display_name="Ali\x00\u202e\x07" + "я" * 300,
                          language_hint="ru\x00")
    replies = await engine.handle(msg)
    assert replies and SORRY not in replies[0].text.lower()
    chat = Chat(engine, user_id="602")
    await chat.send("\x00" + PROBLEM + "\x00\u0000")
    assert SORRY not in chat.text.lower() and "cls:yes" in chat.payloads
    await chat.press("cls:yes")
    await chat.send("\x00", attachments=(Attachment(AttachmentKind.PHOTO, "ref\x00", "image/\x00",
                                                    "a\x00.jpg"),))
    assert SORRY not in chat.text.lower()
    await chat.send(attachments=(
        Attachment(AttachmentKind.PHOTO, "AgAD" + "x" * 600, "image/jpeg"),
        Attachment(AttachmentKind.PHOTO, "AgAD-ok", "image/" + "x" * 300)))
    assert SORRY not in chat.text.lower()
    await chat.press("photo:done")
    await chat.send("Махачкала,\x00 ул. Ленина 1")
    assert SORRY not in chat.text.lower()
    for payload in ("mun:yes", "consent:yes", "cmp:submit"):
        if payload in chat.payloads:
            await chat.press(payload)
    assert SORRY not in chat.text.lower() and "зарегистрировано" in chat.text
    async with db.uow() as uow:
        citizen = await uow.citizens.by_identity("telegram", "602")
        assert citizen is not None and "\x00" not in citizen.name
        [complaint] = await uow.complaints.for_citizen(citizen.id or 0)
    assert "\x00" not in complaint.text and len(complaint.photos) == 1
    assert [p.ref for p in complaint.photos] == ["telegram:AgAD-ok"]
