"""The fake VK API and Bots Long Poll behave like the real ones for the real vkbottle."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import ClientSession

from tests.fakes.vk import FakeVK
from tests.fakes.vk_inject import SAMPLE_JPEG

USER = 5151
OTHER = 5252
GROUP_ID = 217000001


@pytest.fixture
async def vk() -> AsyncIterator[FakeVK]:
    async with FakeVK(group_id=GROUP_ID) as fake:
        fake.add_user(USER, "Магомед", "Алиев")
        yield fake


@pytest.fixture
async def api(vk: FakeVK) -> AsyncIterator[Any]:
    from vkbottle import API

    api = API(vk.token)
    api.API_URL = vk.api_url  # the one setting that points vkbottle at the fake
    yield api
    await api.http_client.close()


def _callback_keyboard(payload: dict[str, Any]) -> str:
    from vkbottle import Callback, Keyboard

    return Keyboard(inline=True).add(Callback("Закрыть", payload=payload)).get_json()


async def test_send_with_random_id_is_deduplicated(vk: FakeVK, api: Any) -> None:
    first = await api.messages.send(peer_id=USER, message="Жалоба принята", random_id=77)
    again = await api.messages.send(peer_id=USER, message="Жалоба принята", random_id=77)
    assert first == again
    assert [m.text for m in vk.sent_to(USER)] == ["Жалоба принята"]
    await api.messages.send(peer_id=USER, message="без random_id", random_id=0)
    await api.messages.send(peer_id=USER, message="без random_id", random_id=0)
    assert len(vk.sent_to(USER)) == 3
    call = vk.calls_of("messages.send")[0]
    assert call.params["random_id"] == "77" and call.params["v"] == "5.199"


async def test_peer_ids_answer_a_list_and_over_100_is_error_100(vk: FakeVK, api: Any) -> None:
    from vkbottle import VKAPIError

    vk.add_user(OTHER)
    items = await api.messages.send(peer_ids=[USER, OTHER], message="Рассылка", random_id=1)
    assert [i.peer_id for i in items] == [USER, OTHER]
    assert all(i.message_id and i.conversation_message_id for i in items)
    with pytest.raises(VKAPIError[100]):
        await api.messages.send(peer_ids=list(range(1, 102)), message="x", random_id=2)


async def test_denied_user(vk: FakeVK, api: Any) -> None:
    from pydantic import ValidationError
    from vkbottle import VKAPIError

    vk.deny(USER)
    with pytest.raises(VKAPIError[901]):
        await api.messages.send(peer_id=USER, message="x", random_id=0)
    # With peer_ids VK answers an entry without message_id: vkbottle cannot parse it.
    with pytest.raises(ValidationError):
        await api.messages.send(peer_ids=[USER], message="x", random_id=0)
    raw = await api.request(
        "messages.send", {"peer_ids": str(USER), "message": "x", "random_id": 0}
    )
    assert raw["response"] == [
        {
            "peer_id": USER,
            "error": {
                "code": 901,
                "description": "Can't send messages for users without permission",
            },
        }
    ]
    allowed = await api.messages.is_messages_from_group_allowed(group_id=GROUP_ID, user_id=USER)
    assert allowed.is_allowed == 0 and vk.sent_to(USER) == []


async def test_user_who_never_wrote_is_unreachable(api: Any) -> None:
    from vkbottle import VKAPIError

    with pytest.raises(VKAPIError[901]):
        await api.messages.send(peer_id=999, message="x", random_id=0)


async def test_fail_next_codes_and_http_errors(vk: FakeVK, api: Any) -> None:
    from vkbottle import VKAPIError

    vk.fail_next("messages.send", 6)
    with pytest.raises(VKAPIError[6]) as e:
        await api.messages.send(peer_id=USER, message="x", random_id=0)
    assert "Too many requests per second" in str(e.value)
    vk.fail_next("messages.send", 9)
    with pytest.raises(VKAPIError[9]):
        await api.messages.send(peer_id=USER, message="x", random_id=0)
    assert vk.sent_to(USER) == []
    async with ClientSession() as http:
        vk.fail_next("users.get", 502)
        response = await http.post(vk.api_url + "users.get", data={"access_token": vk.token})
        assert response.status == 502
    vk.fail_next("messages.send", "drop", after_apply=True)
    with pytest.raises(Exception):  # noqa: B017 - vkbottle surfaces the aiohttp error as is
        await api.messages.send(peer_id=USER, message="дошло, ответ потерян", random_id=5)
    assert [m.text for m in vk.sent_to(USER)] == ["дошло, ответ потерян"]
    assert vk.calls_of("messages.send")[-1].status == 0


async def test_limits_unknown_method_and_bad_token(vk: FakeVK, api: Any) -> None:
    from vkbottle import API, VKAPIError

    with pytest.raises(VKAPIError[914]):
        await api.messages.send(peer_id=USER, message="я" * 4097, random_id=0)
    with pytest.raises(VKAPIError[100]):
        await api.messages.send(peer_id=USER, message="нет random_id")
    with pytest.raises(VKAPIError[3]):
        await api.request("wall.post", {})
    stranger = API("other-token")
    stranger.API_URL = vk.api_url
    try:
        with pytest.raises(VKAPIError[5]):
            await stranger.users.get(user_ids=[USER])
    finally:
        await stranger.http_client.close()
    [user] = await api.users.get(user_ids=[USER])
    assert (user.first_name, user.last_name) == ("Магомед", "Алиев")


@pytest.mark.parametrize(
    ("keyboard", "ok"),
    [
        ({"inline": True, "buttons": [[{"action": {"type": "text", "label": "a"}}] * 5] * 2}, True),
        (
            {"inline": True, "buttons": [[{"action": {"type": "text", "label": "a"}}] * 5] * 3},
            False,
        ),
        ({"inline": True, "buttons": [[{"action": {"type": "text", "label": "a"}}]] * 7}, False),
        ({"buttons": [[{"action": {"type": "text", "label": "a"}}] * 5] * 8}, True),
        ({"buttons": [[{"action": {"type": "text", "label": "a"}}] * 5] * 9}, False),
        ({"buttons": [[{"action": {"type": "text", "label": "a"}}] * 6]}, False),
        ({"buttons": [[{"action": {"type": "text", "label": "я" * 40}}]]}, True),
        ({"buttons": [[{"action": {"type": "text", "label": "я" * 41}}]]}, False),
        (
            {
                "buttons": [
                    [
                        {
                            "action": {
                                "type": "callback",
                                "label": "a",
                                "payload": json.dumps({"p": "x" * 246}),
                            }
                        }
                    ]
                ]
            },
            True,
        ),
        (
            {
                "buttons": [
                    [
                        {
                            "action": {
                                "type": "callback",
                                "label": "a",
                                "payload": json.dumps({"p": "x" * 247}),
                            }
                        }
                    ]
                ]
            },
            False,
        ),
        ({"buttons": [[{"action": {"type": "callback", "label": "a", "payload": "{bad"}}]]}, False),
        ({"buttons": [{"action": {"type": "text", "label": "a"}}]}, False),
    ],
)
async def test_keyboard_limits(api: Any, keyboard: dict[str, Any], ok: bool) -> None:
    from vkbottle import VKAPIError

    send = api.messages.send(peer_id=USER, message="k", random_id=0, keyboard=json.dumps(keyboard))
    if ok:
        assert await send
    else:
        with pytest.raises(VKAPIError[911]):
            await send


async def test_photo_upload_and_send(vk: FakeVK, api: Any) -> None:
    from vkbottle import PhotoMessageUploader

    attachment = await PhotoMessageUploader(api).upload(SAMPLE_JPEG, peer_id=USER)
    assert attachment.startswith(f"photo-{GROUP_ID}_")
    await api.messages.send(peer_id=USER, message="фото", attachment=attachment, random_id=0)
    assert vk.sent_to(USER)[0].attachments == [attachment]


async def test_bot_long_poll_answers_message_and_callback(
    vk: FakeVK, api: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from vkbottle import Bot, GroupEventType
    from vkbottle.bot import Message, MessageEvent
    from vkbottle.polling import BotPolling

    monkeypatch.chdir(tmp_path)  # vkbottle writes .vkbottle/bot-polling/<group>.json here
    bot = Bot(api=api, polling=BotPolling(api, wait=2))
    seen_photos: list[bytes] = []

    @bot.on.raw_event(GroupEventType.MESSAGE_EVENT, dataclass=MessageEvent)
    async def pressed(event: MessageEvent) -> None:
        await event.show_snackbar("Принято")
        await event.edit_message(f"Нажато: {event.payload['cmd']}")

    @bot.on.message()
    async def any_message(message: Message) -> None:
        for attachment in message.attachments or []:
            url = attachment.photo.sizes[-1].url
            async with ClientSession() as http, http.get(url) as response:
                seen_photos.append(await response.read())
        await message.answer(
            f"Получено: {message.text}", keyboard=_callback_keyboard({"cmd": "close"})
        )

    vk.send_text(USER, "до запуска бота")  # before getLongPollServer: never delivered
    polling = asyncio.create_task(bot.run_polling())
    try:
        await vk.wait_polling()
        vk.send_text(USER, "яма во дворе", attachments=[SAMPLE_JPEG])
        reply = await vk.wait_for_message(USER, "Получено: яма во дворе")
        assert seen_photos == [SAMPLE_JPEG]
        assert reply.keyboard["inline"] is True
        event = vk.press(USER, {"cmd": "close"}, reply.conversation_message_id)
        await vk.wait_for(lambda: reply.text == "Нажато: close")
        answer = await vk.wait_for(lambda: vk.event_answers.get(event["object"]["event_id"]))
        assert answer["event_data"] == {"type": "show_snackbar", "text": "Принято"}
        assert [m.text for m in vk.sent_to(USER)] == ["Нажато: close"]
    finally:
        bot.polling.stop()
        vk.release_polls()
        await asyncio.wait_for(polling, 5)
    assert (tmp_path / ".vkbottle" / "bot-polling" / f"{GROUP_ID}.json").exists()
    assert not any("до запуска" in m.text for m in vk.sent_to(USER))


async def test_long_poll_protocol(vk: FakeVK, api: Any) -> None:
    server = (await api.request("groups.getLongPollServer", {"group_id": GROUP_ID}))["response"]
    assert server["server"].startswith(vk.base_url)
    async with ClientSession() as http:
        params = {"act": "a_check", "key": "wrong", "ts": server["ts"], "wait": 1}
        async with http.post(server["server"], params=params) as r:
            assert await r.json() == {"failed": 2}
        params["key"] = server["key"]
        async with http.post(server["server"], params={**params, "wait": 0}) as r:
            assert await r.json() == {"ts": server["ts"], "updates": []}
        holding = asyncio.create_task(http.post(server["server"], params={**params, "wait": 5}))
        await vk.wait_polling()
        vk.send_text(USER, "привет", payload={"command": "start"}, geo=(42.98, 47.5))
        body = await (await asyncio.wait_for(holding, 2)).json()
    [event] = body["updates"]
    assert event["type"] == "message_new" and int(body["ts"]) == int(server["ts"]) + 1
    message = event["object"]["message"]
    assert message["payload"] == '{"command": "start"}'
    assert message["geo"]["coordinates"] == {"latitude": 42.98, "longitude": 47.5}
    assert {"version", "conversation_message_id", "date", "from_id", "id", "out", "peer_id"} <= set(
        message
    )
