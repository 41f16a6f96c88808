"""Fuzzing the VK channel: weird but schema-valid ``message_new`` and ``message_event``
events routed through vkbottle's real router to the citizens' handlers, the real engine
over the in-memory store, and the real vkbottle API pointed at the fake VK on 127.0.0.1.

vkbottle hands a handler's exception to its error handler; here that one re-raises, so
an exception escaping the channel fails the test.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.fakes.dialogue import make_engine
from tests.fakes.memory import MemoryStore
from tests.fakes.vk import FakeVK
from tests.fakes.vk_state import CLIENT_INFO
from tests.fuzz import any_text, examples, forged_payloads, texts

pytestmark = pytest.mark.asyncio(loop_scope="module")
CITIZENS = [501, 502, 503]
_ids = itertools.count(1)


@dataclass
class Harness:
    vk: FakeVK
    api: Any
    bot: Any
    channel: Any
    store: MemoryStore


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def harness(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Harness]:
    from bots.vk.channel import VkChannel, build_bot, make_api
    from bots.vk.messenger import VkMessenger

    store = MemoryStore()
    engine = make_engine(store)
    async with FakeVK(group_id=1) as vk:
        for user in CITIZENS:
            vk.add_user(user, f"U{user}")
        api = make_api(vk.token, vk.api_url)
        channel = VkChannel(engine, VkMessenger(api))
        bot = build_bot(engine, api, data_dir=Path(tmp_path_factory.mktemp("vk")), group_id=1,
                        channel=channel)
        bot.error_handler.raise_exceptions = True
        try:
            yield Harness(vk, api, bot, channel, store)
        finally:
            await channel.drain()
            await api.http_client.close()


peers = st.one_of(st.sampled_from(CITIZENS), st.integers(-(2**31), 2**31),
                  st.sampled_from([2_000_000_001, 0, -1]))
floats = st.floats(allow_nan=False)
payloads = st.one_of(
    st.none(),
    forged_payloads.map(lambda p: json.dumps({"p": p})),
    st.just(json.dumps({"command": "start"})),
    forged_payloads,
    st.dictionaries(any_text, st.one_of(any_text, st.integers(), st.none()), max_size=3).map(
        json.dumps),
    st.sampled_from(["", "null", "[]", "{\"p\": 1}", "{\"p\": null}", "\"menu:new\""]),
)
attachments = st.lists(st.one_of(
    st.fixed_dictionaries({"type": st.just("photo"), "photo": st.fixed_dictionaries(
        {"id": st.integers(0, 2**40), "owner_id": st.integers(-(2**40), 2**40),
         "date": st.integers(0, 2**31), "album_id": st.integers(-10, 2**31),
         "sizes": st.just([])},
        optional={"access_key": any_text})}),
    st.fixed_dictionaries({"type": st.just("doc"), "doc": st.fixed_dictionaries(
        {"id": st.integers(0, 2**40), "owner_id": st.integers(-(2**40), 2**40),
         "title": any_text, "size": st.integers(0, 2**31), "ext": any_text,
         "date": st.integers(0, 2**31), "type": st.integers(1, 8)})}),
    st.fixed_dictionaries({"type": st.sampled_from(["sticker", "audio", "video", "wall",
                                                    "audio_message", "link", "poll"])}),
), max_size=4)
geo = st.fixed_dictionaries({"type": st.just("point"), "coordinates": st.fixed_dictionaries(
    {"latitude": floats, "longitude": floats})})


@st.composite
def message_new(draw: st.DrawFn) -> dict[str, Any]:
    peer = draw(peers)
    sender = peer if draw(st.integers(0, 4)) else draw(peers)
    message: dict[str, Any] = {
        "date": draw(st.integers(0, 2**31)), "from_id": sender, "id": next(_ids), "out": 0,
        "version": next(_ids), "conversation_message_id": next(_ids), "peer_id": peer,
        "text": draw(texts), "attachments": draw(attachments), "fwd_messages": [],
        "important": False, "is_hidden": False, "random_id": 0}
    payload = draw(payloads)
    if payload is not None:
        message["payload"] = payload
    if draw(st.booleans()):
        message["geo"] = draw(geo)
    return {"group_id": 1, "type": "message_new", "event_id": f"e{next(_ids)}", "v": "5.199",
            "object": {"message": message, "client_info": dict(CLIENT_INFO)}}


@st.composite
def message_event(draw: st.DrawFn) -> dict[str, Any]:
    peer = draw(peers)
    raw = draw(st.one_of(
        forged_payloads.map(lambda p: {"p": p}), st.just({"command": "start"}),
        st.dictionaries(any_text, any_text, max_size=3), any_text, st.none()))
    obj: dict[str, Any] = {"user_id": peer if draw(st.integers(0, 4)) else draw(peers),
                           "peer_id": peer, "event_id": f"ev{next(_ids)}",
                           "conversation_message_id": next(_ids)}
    if raw is not None:
        obj["payload"] = raw
    return {"group_id": 1, "type": "message_event", "event_id": f"e{next(_ids)}",
            "v": "5.199", "object": obj}


@settings(max_examples=examples(80))
@given(event=st.one_of(message_new(), message_new(), message_event()))
async def test_any_event_is_handled_without_an_exception(harness: Harness,
                                                         event: dict[str, Any]) -> None:
    rollbacks = harness.store.rollbacks
    await harness.bot.router.route(event, harness.api)
    await harness.channel.drain(timeout=10)
    assert harness.store.rollbacks == rollbacks, "a dialogue step failed"


@settings(max_examples=examples(20))
@given(text=texts, user=st.sampled_from(CITIZENS))
async def test_a_citizen_always_gets_an_answer(harness: Harness, text: str, user: int) -> None:
    before = len([s for s in harness.vk.world.sent if s.peer_id == user])
    text = text if text.strip() else "/start"
    event = {"group_id": 1, "type": "message_new", "event_id": f"e{next(_ids)}", "v": "5.199",
             "object": {"client_info": dict(CLIENT_INFO), "message": {
                 "date": 1_700_000_000, "from_id": user, "id": next(_ids), "out": 0,
                 "version": next(_ids), "conversation_message_id": next(_ids),
                 "peer_id": user, "text": text, "attachments": [], "fwd_messages": [],
                 "important": False, "is_hidden": False, "random_id": 0}}}
    await harness.bot.router.route(event, harness.api)
    await harness.channel.drain(timeout=10)
    sent = [s for s in harness.vk.world.sent if s.peer_id == user][before:]
    assert sent, f"no answer to {text[:80]!r}"


@pytest.mark.parametrize("payload", ["", "not json", "[1, 2]", 7, ["p"]])
async def test_a_press_whose_payload_is_no_object_is_answered(harness: Harness,
                                                              payload: Any) -> None:
    """vkbottle's own model refuses such a payload before any handler runs: the channel
    reads the raw event, stops the citizen's spinner and answers the press as stale."""
    user = CITIZENS[0]
    before = len([s for s in harness.vk.world.sent if s.peer_id == user])
    answered = len(harness.vk.calls_of("messages.sendMessageEventAnswer"))
    event = {"group_id": 1, "type": "message_event", "event_id": f"e{next(_ids)}",
             "v": "5.199", "object": {"user_id": user, "peer_id": user,
                                      "event_id": f"ev{next(_ids)}", "payload": payload}}
    await harness.bot.router.route(event, harness.api)
    await harness.channel.drain(timeout=10)
    assert len(harness.vk.calls_of("messages.sendMessageEventAnswer")) == answered + 1
    assert [s for s in harness.vk.world.sent if s.peer_id == user][before:], "no answer"
