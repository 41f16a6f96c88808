"""The Bot API methods of the fake Telegram (all but getUpdates, which waits)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tests.fakes import telegram_checks as check
from tests.fakes.telegram_admin import ADMIN_METHODS
from tests.fakes.telegram_checks import ApiError, bad_request
from tests.fakes.telegram_state import SentMessage, TelegramWorld

Params = dict[str, Any]
Files = dict[str, bytes]
Method = Callable[[TelegramWorld, Params, Files], Any]
_CHAT_ACTIONS = {
    "typing",
    "upload_photo",
    "record_video",
    "upload_video",
    "record_voice",
    "upload_voice",
    "upload_document",
    "choose_sticker",
    "find_location",
    "record_video_note",
    "upload_video_note",
}


def _target(world: TelegramWorld, params: Params, *, sending: bool = True):
    state = world.chat(params.get("chat_id"))
    if sending:
        world.check_not_blocked(state.chat["id"])
    thread_id = check.as_int(params, "message_thread_id")
    world.check_thread(state, thread_id)
    return state, thread_id


def _inline_only(markup: dict[str, Any] | None) -> dict[str, Any] | None:
    return markup if markup and "inline_keyboard" in markup else None


def _record(world: TelegramWorld, method: str, message: dict[str, Any], **fields: Any) -> None:
    world.sent.append(
        SentMessage(
            chat_id=message["chat"]["id"],
            message_id=message["message_id"],
            method=method,
            raw=message,
            thread_id=message.get("message_thread_id"),
            **fields,
        )
    )


def get_me(world: TelegramWorld, params: Params, files: Files) -> Any:
    return {
        **world.bot_user,
        "can_join_groups": True,
        "can_read_all_group_messages": False,
        "supports_inline_queries": False,
    }


def send_message(world: TelegramWorld, params: Params, files: Files) -> Any:
    state, thread_id = _target(world, params)
    text, entities = check.message_text(params)
    markup = check.reply_markup(params.get("reply_markup"))
    paid = check.as_bool(params, "allow_paid_broadcast")
    message = world.new_message(
        state,
        world.bot_user,
        thread_id,
        text=text,
        entities=entities or None,
        reply_markup=_inline_only(markup),
    )
    _record(
        world,
        "sendMessage",
        message,
        text=text,
        entities=entities,
        reply_markup=markup,
        parse_mode=params.get("parse_mode"),
        paid_broadcast=paid,
    )
    return message


def send_photo(world: TelegramWorld, params: Params, files: Files) -> Any:
    state, thread_id = _target(world, params)
    caption, entities = check.caption(params)
    markup = check.reply_markup(params.get("reply_markup"))
    paid = check.as_bool(params, "allow_paid_broadcast")
    stored = _photo(world, params.get("photo"), files)
    message = world.new_message(
        state,
        world.bot_user,
        thread_id,
        photo=world.photo_sizes(stored),
        caption=caption,
        caption_entities=entities or None,
        reply_markup=_inline_only(markup),
    )
    _record(
        world,
        "sendPhoto",
        message,
        caption=caption,
        entities=entities,
        reply_markup=markup,
        photo=[stored.file_id],
        parse_mode=params.get("parse_mode"),
        paid_broadcast=paid,
    )
    return message


def _photo(world: TelegramWorld, ref: Any, files: Files):
    if isinstance(ref, str) and ref.startswith("attach://"):
        ref = ref[len("attach://") :]
        if ref not in files:
            raise bad_request("wrong file identifier/HTTP URL specified")
    if isinstance(ref, str) and ref in files:
        return world.photo_from_upload(files[ref])
    if ref is None and "photo" in files:
        return world.photo_from_upload(files["photo"])
    if not ref:
        raise bad_request("there is no photo in the request")
    return world.photo_by_reference(str(ref))


def send_media_group(world: TelegramWorld, params: Params, files: Files) -> Any:
    state, thread_id = _target(world, params)
    media = check.as_json(params.get("media"), "media")
    if not isinstance(media, list) or not 2 <= len(media) <= 10:
        raise bad_request("wrong number of media in the album: must be 2-10")
    group_id = f"1{state.allocate_id():017d}"
    prepared = []
    for item in media:
        if not isinstance(item, dict) or item.get("type") != "photo":
            raise bad_request("fake supports only photo albums")
        caption, entities = check.caption(item)
        prepared.append((_photo(world, item.get("media"), files), caption, entities))
    messages = []
    for stored, caption, entities in prepared:
        message = world.new_message(
            state,
            world.bot_user,
            thread_id,
            media_group_id=group_id,
            photo=world.photo_sizes(stored),
            caption=caption,
            caption_entities=entities or None,
        )
        _record(
            world,
            "sendMediaGroup",
            message,
            caption=caption,
            entities=entities,
            photo=[stored.file_id],
            media_group_id=group_id,
        )
        messages.append(message)
    return messages


def get_file(world: TelegramWorld, params: Params, files: Files) -> Any:
    stored = world.files.get(str(params.get("file_id", "")))
    if stored is None:
        raise bad_request("invalid file_id")
    return {
        "file_id": stored.file_id,
        "file_unique_id": stored.file_unique_id,
        "file_size": len(stored.data),
        "file_path": stored.file_path,
    }


def _own_message(world: TelegramWorld, params: Params, what: str) -> SentMessage:
    if params.get("inline_message_id"):
        raise bad_request(f"message to {what} not found")
    chat_id = world.chat(params.get("chat_id")).chat["id"]
    mid = check.as_int(params, "message_id", required=True)
    for sent in world.sent:
        if sent.chat_id == chat_id and sent.message_id == mid and not sent.deleted:
            return sent
    raise bad_request(f"message to {what} not found")


def edit_message_text(world: TelegramWorld, params: Params, files: Files) -> Any:
    sent = _own_message(world, params, "edit")
    if sent.text is None:
        raise bad_request("there is no text in the message to edit")
    text, entities = check.message_text(params)
    markup = check.reply_markup(params.get("reply_markup"))
    if text == sent.text and entities == sent.entities and markup == sent.reply_markup:
        raise bad_request(
            "message is not modified: specified new message content and reply markup are "
            "exactly the same as a current content and reply markup of the message"
        )
    sent.edits.append(sent.text)
    sent.text, sent.entities, sent.reply_markup = text, entities, markup
    sent.raw.update(text=text, edit_date=sent.raw["date"] + 1)
    sent.raw.pop("reply_markup", None)
    if _inline_only(markup):
        sent.raw["reply_markup"] = markup
    return sent.raw


def edit_message_reply_markup(world: TelegramWorld, params: Params, files: Files) -> Any:
    sent = _own_message(world, params, "edit")
    markup = check.reply_markup(params.get("reply_markup"))
    if markup is not None and "inline_keyboard" not in markup:
        raise bad_request("inline keyboard expected")
    if markup == sent.reply_markup or (not markup and not sent.reply_markup):
        raise bad_request(
            "message is not modified: specified new message content and reply markup are "
            "exactly the same as a current content and reply markup of the message"
        )
    sent.reply_markup = markup
    sent.raw.pop("reply_markup", None)
    if markup:
        sent.raw["reply_markup"] = markup
    return sent.raw


def answer_callback_query(world: TelegramWorld, params: Params, files: Files) -> Any:
    query_id = str(params.get("callback_query_id", ""))
    if query_id not in world.callback_queries or query_id in world.callback_answers:
        raise bad_request("query is too old and response timeout expired or query ID is invalid")
    if len(str(params.get("text") or "")) > 200:
        raise bad_request("MESSAGE_TOO_LONG")
    world.callback_answers[query_id] = dict(params)
    return True


def send_chat_action(world: TelegramWorld, params: Params, files: Files) -> Any:
    _target(world, params)
    if params.get("action") not in _CHAT_ACTIONS:
        raise bad_request("wrong parameter action in request")
    return True


def delete_message(world: TelegramWorld, params: Params, files: Files) -> Any:
    state = world.chat(params.get("chat_id"))
    mid = check.as_int(params, "message_id", required=True)
    if mid not in state.messages:
        raise bad_request("message to delete not found")
    del state.messages[mid]
    for sent in world.sent:
        if sent.chat_id == state.chat["id"] and sent.message_id == mid:
            sent.deleted = True
    return True


def copy_message(world: TelegramWorld, params: Params, files: Files) -> Any:
    state, thread_id = _target(world, params)
    source_chat = world.chat(params.get("from_chat_id"))
    source = source_chat.messages.get(check.as_int(params, "message_id", required=True) or 0)
    if source is None:
        raise bad_request("message to copy not found")
    markup = check.reply_markup(params.get("reply_markup"))
    caption, entities = (
        check.caption(params)
        if "caption" in params
        else (source.get("caption"), source.get("caption_entities") or [])
    )
    content = {k: source.get(k) for k in ("text", "entities", "photo", "location")}
    if "photo" in source:
        content.update(caption=caption, caption_entities=entities or None)
    message = world.new_message(
        state, world.bot_user, thread_id, reply_markup=_inline_only(markup), **content
    )
    photo = [source["photo"][-1]["file_id"]] if "photo" in source else []
    _record(
        world,
        "copyMessage",
        message,
        text=source.get("text"),
        caption=caption if photo else None,
        reply_markup=markup,
        photo=photo,
    )
    return {"message_id": message["message_id"]}


METHODS: dict[str, Method] = {
    **ADMIN_METHODS,
    "getme": get_me,
    "sendmessage": send_message,
    "sendphoto": send_photo,
    "sendmediagroup": send_media_group,
    "getfile": get_file,
    "editmessagetext": edit_message_text,
    "editmessagereplymarkup": edit_message_reply_markup,
    "answercallbackquery": answer_callback_query,
    "sendchataction": send_chat_action,
    "deletemessage": delete_message,
    "copymessage": copy_message,
}
__all__ = ["METHODS", "ApiError"]
