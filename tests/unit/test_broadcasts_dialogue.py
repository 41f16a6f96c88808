"""The unsubscribe button under a broadcast, through the whole dialogue engine."""

from __future__ import annotations

from dialogue.flows.base import Payload
from dialogue.messages import Channel
from domain.ports import OutboxMessage
from notifications.broadcast_message import unsubscribe_payload
from tests.fakes.dialogue import FRIDAY_EVENING, Chat, make_engine
from tests.fakes.memory import MemoryStore

INVALID = "Эта кнопка больше не действует."
UNSUBSCRIBED = "Вы больше не будете получать новостные рассылки"
TEXT = "В Махачкале на улице Ленина нет воды уже три дня, кран сухой"


def received(store: MemoryStore, broadcast_id: int, citizen_id: int) -> None:
    """The outbox row a broadcast left for the citizen (as materialization writes it)."""
    row_id = store.next_id("outbox")
    store.outbox[row_id] = OutboxMessage(
        kind="broadcast", channel="telegram", chat_id="1001", payload={"text": "Новость"},
        dedup_key=f"bc:{broadcast_id}:{citizen_id}", created_at=FRIDAY_EVENING,
        not_before=FRIDAY_EVENING, citizen_id=citizen_id, id=row_id)


async def citizen_chat(store: MemoryStore, user_id: str = "1001",
                       channel: Channel = Channel.TELEGRAM) -> tuple[Chat, int]:
    chat = Chat(make_engine(store), user_id, channel)
    await chat.send("/start")
    citizen_id = max(store.citizens)
    return chat, citizen_id


async def test_the_payload_is_short_and_parses() -> None:
    payload = unsubscribe_payload(2_147_483_647)
    assert len(payload.encode()) <= 64
    assert Payload.parse(payload) == Payload("unsub", ("2147483647",))


async def test_unsubscribe_opts_the_citizen_out_and_offers_the_way_back() -> None:
    store = MemoryStore()
    chat, citizen_id = await citizen_chat(store)
    received(store, 7, citizen_id)
    await chat.press("unsub:7")
    assert UNSUBSCRIBED in chat.text
    assert chat.payloads == ["bcast:on"]
    assert store.citizens[citizen_id].broadcast_opt_out is True
    await chat.press("unsub:7")  # pressed again: same answer, nothing breaks
    assert UNSUBSCRIBED in chat.text and store.citizens[citizen_id].broadcast_opt_out

    await chat.press("bcast:on")
    assert "снова будете получать" in chat.text
    assert "menu:new" in chat.payloads  # idle: the main menu comes along
    assert store.citizens[citizen_id].broadcast_opt_out is False


async def test_a_forged_or_foreign_unsubscribe_is_refused_politely() -> None:
    store = MemoryStore()
    chat, citizen_id = await citizen_chat(store)
    other, other_id = await citizen_chat(store, "2002")
    received(store, 7, other_id)  # broadcast 7 went to the other citizen only
    for forged in ("unsub:7", "unsub:8", "unsub:x", "unsub:7:1", "unsub"):
        await chat.press(forged)
        assert INVALID in chat.text, forged
        assert UNSUBSCRIBED not in chat.text
    assert store.citizens[citizen_id].broadcast_opt_out is False
    await other.press("unsub:7")
    assert store.citizens[other_id].broadcast_opt_out is True
    assert store.citizens[citizen_id].broadcast_opt_out is False


async def test_a_complaint_draft_survives_an_unsubscribe() -> None:
    store = MemoryStore()
    chat, citizen_id = await citizen_chat(store)
    received(store, 3, citizen_id)
    await chat.send(TEXT)
    await chat.press("cls:yes")  # now asked for photos, with a draft
    state = store.conversations[("telegram", "1001")]
    before = (state.state, dict(state.data["draft"]))
    assert before[0] == "cmp.photos"
    asked = chat.replies[-1].text

    await chat.press("unsub:3")
    assert UNSUBSCRIBED in chat.replies[0].text
    assert chat.replies[-1].text == asked  # and the step goes on where it was
    after = store.conversations[("telegram", "1001")]
    assert (after.state, after.data["draft"]) == before
    assert store.citizens[citizen_id].broadcast_opt_out is True

    await chat.press("unsub:99")  # a forged one in the middle of a draft
    assert INVALID in chat.text and chat.replies[-1].text == asked
    await chat.press("photo:done")
    assert "photo:done" not in chat.payloads  # the complaint carries on
    assert store.conversations[("telegram", "1001")].state == "cmp.location"
