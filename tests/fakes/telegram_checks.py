"""Parameter checks of the fake Telegram Bot API, worded like the real server."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from tests.fakes.telegram_html import EntityParseError, parse_html

MAX_TEXT = 4096
MAX_CAPTION = 1024
MAX_CALLBACK_DATA = 64
MAX_INLINE_BUTTONS = 100
_INLINE_ACTIONS = (
    "url",
    "callback_data",
    "web_app",
    "login_url",
    "switch_inline_query",
    "switch_inline_query_current_chat",
    "switch_inline_query_chosen_chat",
    "copy_text",
    "callback_game",
    "pay",
)


@dataclass
class ApiError(Exception):
    """An error reply: ``{"ok": false, "error_code": code, "description": ...}``."""

    code: int
    description: str
    parameters: dict[str, Any] = field(default_factory=dict)

    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "ok": False,
            "error_code": self.code,
            "description": self.description,
        }
        if self.parameters:
            body["parameters"] = self.parameters
        return body


def bad_request(detail: str) -> ApiError:
    return ApiError(400, f"Bad Request: {detail}")


def as_json(value: Any, what: str) -> Any:
    """Nested objects arrive as JSON strings in forms and as objects in JSON bodies."""
    if not isinstance(value, str):
        return value
    try:
        return json.loads(value)
    except ValueError:
        raise bad_request(f"can't parse {what} JSON object") from None


def as_int(params: dict[str, Any], name: str, *, required: bool = False) -> int | None:
    value = params.get(name)
    if value in (None, ""):
        if required:
            raise bad_request(f"{name} is empty" if name != "chat_id" else "chat_id is empty")
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        raise bad_request(f"invalid {name} specified") from None


def as_bool(params: dict[str, Any], name: str) -> bool:
    """A Boolean parameter: JSON ``true``/``false`` in a JSON body, text in a form."""
    value = params.get(name)
    if value in (None, "", False, "false", "False", "0", 0):
        return False
    if value in (True, "true", "True", "1", 1):
        return True
    raise bad_request(f"can't parse {name}: not a Boolean")


def formatted(
    text: Any, parse_mode: Any, *, limit: int, empty: str, too_long: str
) -> tuple[str, list[dict[str, Any]]]:
    """Check a text or caption; return the plain text and entities the server stores."""
    text = "" if text is None else str(text)
    entities: list[dict[str, Any]] = []
    if parse_mode in (None, ""):
        plain = text
    elif str(parse_mode).lower() == "html":
        try:
            plain, parsed = parse_html(text)
        except EntityParseError as e:
            raise bad_request(str(e)) from None
        entities = [{k: v for k, v in vars(e).items() if v is not None} for e in parsed]
    elif str(parse_mode) in ("MarkdownV2", "Markdown"):
        plain = text  # not parsed by the fake; the project renders HTML
    else:
        raise bad_request("unsupported parse_mode")
    plain = plain.strip()
    if not plain and empty:
        raise bad_request(empty)
    if len(plain) > limit:
        raise bad_request(too_long)
    return plain, entities


def message_text(params: dict[str, Any]) -> tuple[str, list[dict[str, Any]]]:
    return formatted(
        params.get("text"),
        params.get("parse_mode"),
        limit=MAX_TEXT,
        empty="message text is empty",
        too_long="message is too long",
    )


def caption(params: dict[str, Any]) -> tuple[str | None, list[dict[str, Any]]]:
    if params.get("caption") in (None, ""):
        return None, []
    return formatted(
        params.get("caption"),
        params.get("parse_mode"),
        limit=MAX_CAPTION,
        empty="",
        too_long="message caption is too long",
    )


def reply_markup(raw: Any) -> dict[str, Any] | None:
    """Validate any of the four markup kinds; return it as a dict."""
    if raw in (None, ""):
        return None
    markup = as_json(raw, "reply keyboard markup")
    if not isinstance(markup, dict):
        raise bad_request("can't parse reply keyboard markup JSON object")
    if "inline_keyboard" in markup:
        _inline_keyboard(markup["inline_keyboard"])
    elif "keyboard" in markup:
        rows = markup["keyboard"]
        if not isinstance(rows, list) or not all(isinstance(r, list) for r in rows):
            raise bad_request(
                'field "keyboard" of the ReplyKeyboardMarkup should be an Array of Arrays'
            )
        for row in rows:
            for button in row:
                label = button if isinstance(button, str) else (button or {}).get("text")
                if not isinstance(label, str) or not label:
                    raise bad_request("can't parse keyboard button: Text must be non-empty")
    elif not (markup.get("remove_keyboard") or markup.get("force_reply")):
        raise bad_request('can\'t find field "inline_keyboard"')
    return markup


def _inline_keyboard(rows: Any) -> None:
    if not isinstance(rows, list) or not all(isinstance(r, list) for r in rows):
        raise bad_request(
            'field "inline_keyboard" of the InlineKeyboardMarkup should be an Array of Arrays'
        )
    if sum(len(r) for r in rows) > MAX_INLINE_BUTTONS:
        raise bad_request("reply markup is too long")
    for row in rows:
        for button in row:
            if not isinstance(button, dict):
                raise bad_request(
                    "can't parse inline keyboard button: InlineKeyboardButton should be an Object"
                )
            if not isinstance(button.get("text"), str) or not button["text"].strip():
                raise bad_request("can't parse inline keyboard button: Text must be non-empty")
            actions = [a for a in _INLINE_ACTIONS if a in button]
            if not actions:
                raise bad_request(
                    "can't parse inline keyboard button: "
                    "Text buttons are unallowed in the inline keyboard"
                )
            if "callback_data" in button:
                data = button["callback_data"]
                if not isinstance(data, str) or not 1 <= len(data.encode()) <= MAX_CALLBACK_DATA:
                    raise bad_request("BUTTON_DATA_INVALID")
            if "url" in button and not str(button["url"]).strip():
                raise bad_request("BUTTON_URL_INVALID")


def callback_datas(markup: dict[str, Any] | None) -> set[str]:
    """The callback_data values of an inline keyboard (what a user can press)."""
    if not markup or "inline_keyboard" not in markup:
        return set()
    return {
        b["callback_data"] for row in markup["inline_keyboard"] for b in row if "callback_data" in b
    }
