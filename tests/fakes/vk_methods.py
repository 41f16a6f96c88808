"""The VK API methods of the fake VK (a community token's view)."""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from tests.fakes.vk_keyboard import MAX_MESSAGE, VkError, invalid, parse_keyboard
from tests.fakes.vk_state import CHAT_PEER_BASE, VkSentMessage, VkWorld

Params = dict[str, Any]
Method = Callable[[VkWorld, Params], Any]


def _int(params: Params, name: str, *, required: bool = False) -> int | None:
    value = params.get(name)
    if value in (None, ""):
        if required:
            raise invalid(f"{name} is undefined")
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        raise invalid(f"{name} not integer") from None


def _ints(value: Any) -> list[int]:
    try:
        return [int(v) for v in str(value).split(",") if v.strip()]
    except ValueError:
        raise invalid("peer_ids should be a list of integers") from None


def groups_get_by_id(world: VkWorld, params: Params) -> Any:
    group = {
        "id": world.group_id,
        "name": "ЦУР Республики Дагестан (тест)",
        "screen_name": f"club{world.group_id}",
        "is_closed": 0,
        "type": "page",
        "photo_50": f"{world.base_url}/photos/group_50.jpg",
    }
    return {"groups": [group], "profiles": []}


def groups_get_long_poll_server(world: VkWorld, params: Params) -> Any:
    if _int(params, "group_id", required=True) != world.group_id:
        raise VkError(15, "no access to this community")
    return {
        "key": world.new_key(),
        "server": f"{world.base_url}/lp/{world.group_id}",
        "ts": str(world.next_ts),
    }


def _attachments(world: VkWorld, raw: Any) -> list[str]:
    refs = [a.strip() for a in str(raw or "").split(",") if a.strip()]
    if len(refs) > 10:
        raise invalid("too many attachments")
    for ref in refs:
        key = "_".join(ref.split("_")[:2])  # drop the access key
        if key not in world.photos:
            raise invalid(f"attachment {ref} not found")
    return refs


def _content(world: VkWorld, params: Params) -> tuple[str, dict | None, list[str]]:
    text = str(params.get("message") or "")
    if len(text) > MAX_MESSAGE:
        raise VkError(914)
    keyboard = parse_keyboard(params.get("keyboard"))
    attachments = _attachments(world, params.get("attachment"))
    return text, keyboard, attachments


def _reachable(world: VkWorld, peer_id: int) -> VkError | None:
    if peer_id >= CHAT_PEER_BASE:
        return None if peer_id in world.allowed else VkError(917)
    if peer_id in world.denied or peer_id not in world.allowed:
        return VkError(901)
    return None


@dataclass(frozen=True)
class SendRequest:
    """A checked ``messages.send``: its random_id, peers (one unless ``many``) and content."""

    random_id: int
    peers: list[int]
    many: bool
    text: str
    keyboard: Any
    attachments: Any


def send_request(world: VkWorld, params: Params) -> SendRequest:
    """The parameters of a ``messages.send``, validated as VK does (raises its errors)."""
    random_id = _int(params, "random_id")
    if random_id is None:
        raise invalid("random_id is a required parameter")
    if params.get("peer_ids") not in (None, ""):
        peers, many = _ints(params["peer_ids"]), True
        if len(peers) > 100:
            raise invalid("peer_ids is too long, maximum is 100")
    else:
        peer = _int(params, "peer_id") or _int(params, "user_id")
        if peer is None:
            raise invalid("peer_id or user_id or peer_ids is undefined")
        peers, many = [peer], False
    text, keyboard, attachments = _content(world, params)
    if not text and not attachments and not params.get("sticker_id"):
        raise invalid("message is empty or invalid")
    return SendRequest(random_id, peers, many, text, keyboard, attachments)


def messages_send(world: VkWorld, params: Params) -> Any:
    req = send_request(world, params)
    random_id, peers, many = req.random_id, req.peers, req.many
    text, keyboard, attachments = req.text, req.keyboard, req.attachments
    if random_id and random_id in world.by_random_id:
        return world.by_random_id[random_id]  # VK de-duplicates by random_id
    if not many and (error := _reachable(world, peers[0])):
        raise error
    results = []
    for peer in peers:
        error = _reachable(world, peer)
        if error:
            results.append(
                {"peer_id": peer, "error": {"code": error.code, "description": error.message}}
            )
            continue
        message_id, cmid = world.next_ids(peer)
        world.sent.append(
            VkSentMessage(
                peer,
                message_id,
                cmid,
                random_id,
                text,
                keyboard,
                attachments,
                params.get("payload"),
            )
        )
        results.append({"peer_id": peer, "message_id": message_id, "conversation_message_id": cmid})
    response = results if many else results[0]["message_id"]
    if random_id:
        world.by_random_id[random_id] = response
    return response


def messages_edit(world: VkWorld, params: Params) -> Any:
    peer = _int(params, "peer_id", required=True) or 0
    sent = world.find_sent(
        peer, _int(params, "message_id"), _int(params, "conversation_message_id")
    )
    if sent is None:
        raise invalid("message_id is invalid")
    text, keyboard, attachments = _content(world, params)
    if not text and not attachments and "keyboard" not in params:
        raise invalid("message is empty or invalid")
    sent.edits.append(sent.text)
    sent.text = text
    if "keyboard" in params:
        sent.keyboard = keyboard
    if attachments or "attachment" in params:
        sent.attachments = attachments
    return 1


def messages_send_message_event_answer(world: VkWorld, params: Params) -> Any:
    event_id = str(params.get("event_id") or "")
    event = world.pending_events.get(event_id)
    if event is None or event_id in world.event_answers:
        raise invalid("event_id is invalid or expired")
    if _int(params, "user_id") != event["user_id"] or _int(params, "peer_id") != event["peer_id"]:
        raise invalid("user_id or peer_id does not match the event")
    data = params.get("event_data")
    if data not in (None, ""):
        try:
            data = json.loads(data) if isinstance(data, str) else data
        except ValueError:
            raise invalid("event_data is not a valid JSON") from None
        if data.get("type") not in ("show_snackbar", "open_link", "open_app"):
            raise invalid("event_data type is invalid")
        if data["type"] == "show_snackbar" and not 1 <= len(data.get("text", "")) <= 90:
            raise invalid("event_data text must be 1..90 characters")
    world.event_answers[event_id] = {**params, "event_data": data}
    return 1


def messages_is_messages_from_group_allowed(world: VkWorld, params: Params) -> Any:
    user_id = _int(params, "user_id", required=True) or 0
    return {"is_allowed": int(user_id in world.allowed and user_id not in world.denied)}


def photos_get_messages_upload_server(world: VkWorld, params: Params) -> Any:
    token = secrets.token_hex(8)
    return {
        "album_id": -3,
        "upload_url": f"{world.base_url}/upload/photo?t={token}",
        "user_id": 0,
        "group_id": world.group_id,
    }


def photos_save_messages_photo(world: VkWorld, params: Params) -> Any:
    try:
        uploaded = json.loads(str(params.get("photo") or ""))
        data = world.uploads.pop(uploaded[0]["upload"])
    except (ValueError, KeyError, IndexError, TypeError):
        raise invalid("photo is undefined or was already saved") from None
    if params.get("hash") != uploaded[0]["hash"]:
        raise invalid("hash is invalid")
    photo = world.add_photo(-world.group_id, data)
    return [world.photo_object(photo)]


def users_get(world: VkWorld, params: Params) -> Any:
    ids = _ints(params.get("user_ids") or params.get("user_id") or "")
    if not ids:
        raise invalid("user_ids is undefined")
    return [
        world.users.get(i)
        or {"id": i, "first_name": "DELETED", "last_name": "", "deactivated": "deleted"}
        for i in ids
    ]


METHODS: dict[str, Method] = {
    "groups.getById": groups_get_by_id,
    "groups.getLongPollServer": groups_get_long_poll_server,
    "messages.send": messages_send,
    "messages.edit": messages_edit,
    "messages.sendMessageEventAnswer": messages_send_message_event_answer,
    "messages.isMessagesFromGroupAllowed": messages_is_messages_from_group_allowed,
    "photos.getMessagesUploadServer": photos_get_messages_upload_server,
    "photos.saveMessagesPhoto": photos_save_messages_photo,
    "users.get": users_get,
}
