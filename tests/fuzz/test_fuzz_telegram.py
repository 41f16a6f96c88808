"""Fuzzing the Telegram channel: weird but schema-valid updates fed to the real aiogram
Dispatcher (citizens' router + back-office router), the real engine over the in-memory
store and the real Bot client pointed at the fake Bot API on 127.0.0.1.

``Dispatcher.feed_raw_update`` re-raises whatever a handler raised, so "no unhandled
exception" is checked directly; the engine must not have failed a step either, and the
fake Bot API (which validates parameters like the real one) must have accepted every
reply to a chat it knows.
"""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from hypothesis import given, settings
from hypothesis import strategies as st

from dialogue.engine import Engine
from domain.storage import Database, sqlite_url, upgrade_async
from tests.fakes.dialogue import catalogue, make_engine
from tests.fakes.memory import MemoryStore
from tests.fakes.telegram import FakeTelegram
from tests.fuzz import any_text, examples, forged_payloads, texts

pytestmark = pytest.mark.asyncio(loop_scope="module")
CITIZENS = [1001, 1002, 1003]
OPERATOR, STRANGER = 7007001, 7007003
GROUP = -1001234567890
_update_ids = itertools.count(1)
_message_ids = itertools.count(1)


@dataclass
class Harness:
    tg: FakeTelegram
    bot: Any
    dp: Any
    store: MemoryStore
    engine: Engine


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def harness(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Harness]:
    from bots.backoffice.router import build_backoffice_router
    from bots.telegram import build_dispatcher, make_bot

    url = sqlite_url(Path(tmp_path_factory.mktemp("bo")) / "bo.db")
    await upgrade_async(url)
    database = Database.from_url(url)
    store = MemoryStore()
    engine = make_engine(store)
    async with FakeTelegram() as tg:
        for user in [*CITIZENS, OPERATOR, STRANGER]:
            tg.add_user(user, f"U{user}")
        tg.add_group(GROUP, forum=True)
        dp = build_dispatcher(engine)
        dp.include_router(build_backoffice_router(database, catalogue(), lambda: datetime.now(UTC),
                                                  GROUP, {OPERATOR: "operator"}))
        bot = make_bot(tg.token, tg.base_url)
        try:
            yield Harness(tg, bot, dp, store, engine)
        finally:
            await bot.session.close()
            await database.dispose()


small_ints = st.one_of(st.sampled_from([0, 1, -1, 2**31, 2**53, -(2**53)]), st.integers(-10, 10))
users = st.fixed_dictionaries(
    {"id": st.one_of(st.sampled_from([*CITIZENS, OPERATOR, STRANGER]),
                     st.integers(1, 2**40)),
     "is_bot": st.booleans(), "first_name": any_text},
    optional={"last_name": any_text, "username": any_text,
              "language_code": st.one_of(st.sampled_from(["ru", "en", "en-US", "de", ""]),
                                         any_text),
              "is_premium": st.booleans()})
chats = st.one_of(
    st.builds(lambda i: {"id": i, "type": "private"}, st.sampled_from(CITIZENS)),
    st.builds(lambda i, t: {"id": i, "type": t}, st.integers(-(2**52), 2**52),
              st.sampled_from(["private", "group", "supergroup", "channel"])),
    st.just({"id": GROUP, "type": "supergroup", "title": "ЦУР", "is_forum": True}),
)
file_ids = st.one_of(st.sampled_from(["AgAD", "x" * 300, ""]), any_text)
photo_sizes = st.lists(st.fixed_dictionaries(
    {"file_id": file_ids, "file_unique_id": any_text, "width": small_ints,
     "height": small_ints}, optional={"file_size": small_ints}), min_size=0, max_size=4)
floats = st.floats(allow_nan=False)  # JSON from Telegram cannot carry NaN
location = st.fixed_dictionaries({"latitude": floats, "longitude": floats})
entities = st.lists(st.fixed_dictionaries(
    {"type": st.sampled_from(["bot_command", "bold", "url", "mention", "text_link"]),
     "offset": small_ints, "length": small_ints}, optional={"url": any_text}), max_size=3)
content = st.fixed_dictionaries({}, optional={
    "text": texts, "caption": texts, "entities": entities, "photo": photo_sizes,
    "document": st.fixed_dictionaries({"file_id": file_ids, "file_unique_id": any_text},
                                      optional={"mime_type": any_text, "file_name": any_text,
                                                "file_size": small_ints}),
    "voice": st.fixed_dictionaries({"file_id": file_ids, "file_unique_id": any_text,
                                    "duration": small_ints}),
    "location": location,
    "venue": st.fixed_dictionaries({"location": location, "title": any_text,
                                    "address": any_text}),
    "contact": st.fixed_dictionaries({"phone_number": any_text, "first_name": any_text}),
    "dice": st.fixed_dictionaries({"emoji": any_text, "value": small_ints}),
    "message_thread_id": small_ints, "is_topic_message": st.booleans(),
    "edit_date": st.integers(0, 2**31),
})


@st.composite
def messages(draw: st.DrawFn) -> dict[str, Any]:
    sender = draw(users)
    chat = draw(chats)
    if chat["type"] == "private" and draw(st.booleans()):
        chat = {"id": sender["id"], "type": "private", "first_name": sender["first_name"]}
    message = {"message_id": next(_message_ids), "date": draw(st.integers(0, 2**31)),
               "chat": chat, **draw(content)}
    if draw(st.integers(0, 9)):
        message["from"] = sender
    return message


@st.composite
def updates(draw: st.DrawFn) -> dict[str, Any]:
    kind = draw(st.sampled_from(["message", "message", "edited_message", "callback_query",
                                 "callback_query", "channel_post", "inline_query"]))
    update: dict[str, Any] = {"update_id": next(_update_ids)}
    if kind in ("message", "edited_message", "channel_post"):
        update[kind] = draw(messages())
    elif kind == "callback_query":
        query: dict[str, Any] = {"id": str(draw(st.integers(0, 2**62))), "from": draw(users),
                                 "chat_instance": draw(any_text)}
        shape = draw(st.sampled_from(["message", "inaccessible", "none"]))
        if shape == "message":
            query["message"] = draw(messages())
        elif shape == "inaccessible":
            query["message"] = {"chat": draw(chats), "message_id": next(_message_ids),
                                "date": 0}
        if draw(st.integers(0, 9)):
            query["data"] = draw(forged_payloads)
        update[kind] = query
    else:
        update[kind] = {"id": draw(any_text), "from": draw(users), "query": draw(any_text),
                        "offset": draw(any_text)}
    return update


@settings(max_examples=examples(80))
@given(update=updates())
async def test_any_update_is_handled_without_an_exception(harness: Harness,
                                                          update: dict[str, Any]) -> None:
    rollbacks = harness.store.rollbacks
    calls = len(harness.tg.calls)
    await harness.dp.feed_raw_update(harness.bot, update)
    assert harness.store.rollbacks == rollbacks, "a dialogue step failed"
    known = set(harness.tg.world.chats)
    for call in harness.tg.calls[calls:]:
        if call.method.lower() == "answercallbackquery" or call.status in (None, 200):
            continue  # a query id the fake never issued is refused, as Telegram would
        chat = call.params.get("chat_id")
        assert chat is None or int(chat) not in known, (
            f"the Bot API refused {call.method} to a known chat: {call.status} {call.params}")


@settings(max_examples=examples(25))
@given(text=texts, user=st.sampled_from(CITIZENS))
async def test_a_citizen_in_a_private_chat_always_gets_an_answer(harness: Harness, text: str,
                                                                 user: int) -> None:
    before = len(harness.tg.sent_to(user))
    update = {"update_id": next(_update_ids), "message": {
        "message_id": next(_message_ids), "date": 1_700_000_000,
        "chat": {"id": user, "type": "private", "first_name": "U"},
        "from": {"id": user, "is_bot": False, "first_name": "U", "language_code": "ru"},
        "text": text or "/start"}}
    await harness.dp.feed_raw_update(harness.bot, update)
    sent = harness.tg.sent_to(user)[before:]
    if (text or "/start").strip():
        assert sent and all(m.text or m.caption for m in sent), "no answer to the citizen"
