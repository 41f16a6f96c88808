"""Forum topics, commands and webhook methods of the fake Telegram Bot API."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from tests.fakes import telegram_checks as check
from tests.fakes.telegram_checks import bad_request
from tests.fakes.telegram_state import TelegramWorld, Topic

Params = dict[str, Any]
Files = dict[str, bytes]
Method = Callable[[TelegramWorld, Params, Files], Any]
_COMMAND = re.compile(r"^[a-z0-9_]{1,32}$")


def _forum(world: TelegramWorld, params: Params):
    state = world.chat(params.get("chat_id"))
    if not state.forum:
        raise bad_request("the chat is not a forum")
    return state


def _topic(world: TelegramWorld, params: Params) -> Topic:
    state = _forum(world, params)
    topic = state.topics.get(check.as_int(params, "message_thread_id", required=True) or 0)
    if topic is None or topic.deleted:
        raise bad_request("message thread not found")
    return topic


def create_forum_topic(world: TelegramWorld, params: Params, files: Files) -> Any:
    state = _forum(world, params)
    name = str(params.get("name") or "")
    if not 1 <= len(name) <= 128:
        raise bad_request("TOPIC_TITLE_EMPTY" if not name else "TOPIC_TITLE_TOO_LONG")
    topic = Topic(state.next_message_id, name, int(params.get("icon_color") or 0x6FB9F0))
    world.new_message(
        state,
        world.bot_user,
        topic.thread_id,
        forum_topic_created={"name": name, "icon_color": topic.icon_color},
    )
    state.topics[topic.thread_id] = topic
    return {"message_thread_id": topic.thread_id, "name": name, "icon_color": topic.icon_color}


def edit_forum_topic(world: TelegramWorld, params: Params, files: Files) -> Any:
    topic = _topic(world, params)
    name = params.get("name")
    if name is not None and not 1 <= len(str(name)) <= 128:
        raise bad_request("TOPIC_TITLE_EMPTY")
    if name is None or name == topic.name:
        raise bad_request("TOPIC_NOT_MODIFIED")
    topic.name = str(name)
    return True


def _set_closed(closed: bool) -> Method:
    def method(world: TelegramWorld, params: Params, files: Files) -> Any:
        topic = _topic(world, params)
        if topic.closed == closed:
            raise bad_request("TOPIC_NOT_MODIFIED")
        topic.closed = closed
        return True

    return method


def set_my_commands(world: TelegramWorld, params: Params, files: Files) -> Any:
    commands = check.as_json(params.get("commands"), "commands")
    if not isinstance(commands, list) or len(commands) > 100:
        raise bad_request("BOT_COMMANDS_TOO_MUCH")
    for item in commands:
        if not _COMMAND.match(str(item.get("command", ""))):
            raise bad_request("BOT_COMMAND_INVALID")
        if not 1 <= len(str(item.get("description", ""))) <= 256:
            raise bad_request("BOT_COMMAND_DESCRIPTION_INVALID")
    world.commands = commands
    return True


def set_webhook(world: TelegramWorld, params: Params, files: Files) -> Any:
    url = str(params.get("url") or "")
    if url and not url.startswith("https://"):
        raise bad_request("bad webhook: An HTTPS URL must be provided for webhook")
    world.webhook_url = url
    return True


def delete_webhook(world: TelegramWorld, params: Params, files: Files) -> Any:
    world.webhook_url = ""
    if params.get("drop_pending_updates") in (True, "true", "True", "1"):
        world.updates.clear()
    return True


def get_webhook_info(world: TelegramWorld, params: Params, files: Files) -> Any:
    return {
        "url": world.webhook_url,
        "has_custom_certificate": False,
        "pending_update_count": len(world.updates),
    }


ADMIN_METHODS: dict[str, Method] = {
    "createforumtopic": create_forum_topic,
    "editforumtopic": edit_forum_topic,
    "closeforumtopic": _set_closed(True),
    "reopenforumtopic": _set_closed(False),
    "setmycommands": set_my_commands,
    "setwebhook": set_webhook,
    "deletewebhook": delete_webhook,
    "getwebhookinfo": get_webhook_info,
}
