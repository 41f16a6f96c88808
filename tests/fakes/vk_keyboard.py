"""VK API errors and the keyboard limits of the fake VK, worded like the real API."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

MAX_MESSAGE = 4096
MAX_LABEL = 40
MAX_PAYLOAD = 255
_LIMITS = {True: (6, 5, 10), False: (10, 5, 40)}  # inline: rows, per row, total
_LABELLED = {"text", "callback", "open_link", "open_app"}
_ACTIONS = _LABELLED | {"location", "vkpay", "intent_subscribe", "intent_unsubscribe"}
_COLORS = {"primary", "secondary", "negative", "positive"}
ERROR_TEXT = {
    1: "Unknown error occurred",
    3: "Unknown method passed",
    5: "User authorization failed: invalid access_token (4).",
    6: "Too many requests per second",
    8: "Invalid request: v (version) is required",
    9: "Flood control",
    10: "Internal server error",
    15: "Access denied",
    100: "One of the parameters specified was missing or invalid",
    901: "Can't send messages for users without permission",
    911: "Keyboard format is invalid",
    914: "Message is too long",
    917: "You don't have access to this chat",
}


@dataclass
class VkError(Exception):
    """``{"error": {"error_code": code, "error_msg": ..., "request_params": [...]}}``."""

    code: int
    detail: str = ""

    @property
    def message(self) -> str:
        base = ERROR_TEXT.get(self.code, "Unknown error occurred")
        return f"{base}: {self.detail}" if self.detail else base


def invalid(detail: str) -> VkError:
    return VkError(100, detail)


def parse_keyboard(raw: Any) -> dict[str, Any] | None:
    """Validate a ``keyboard`` parameter against VK's limits; return it parsed."""
    if raw in (None, ""):
        return None
    try:
        keyboard = json.loads(raw) if isinstance(raw, str) else raw
    except ValueError:
        raise VkError(911, "keyboard is not a valid JSON") from None
    if not isinstance(keyboard, dict):
        raise VkError(911, "keyboard must be an object")
    rows = keyboard.get("buttons")
    if not isinstance(rows, list) or not all(isinstance(r, list) for r in rows):
        raise VkError(911, "buttons must be an array of arrays")
    inline = bool(keyboard.get("inline"))
    max_rows, max_row, max_total = _LIMITS[inline]
    if len(rows) > max_rows:
        raise VkError(911, f"too many rows: maximum is {max_rows}")
    if any(len(r) > max_row for r in rows):
        raise VkError(911, f"too many buttons in a row: maximum is {max_row}")
    if sum(len(r) for r in rows) > max_total:
        raise VkError(911, f"too many buttons: maximum is {max_total}")
    for row in rows:
        for button in row:
            _check_button(button)
    return keyboard


def _check_button(button: Any) -> None:
    action = button.get("action") if isinstance(button, dict) else None
    if not isinstance(action, dict) or action.get("type") not in _ACTIONS:
        raise VkError(911, "button action type is invalid")
    kind = action["type"]
    if kind in _LABELLED:
        label = action.get("label")
        if not isinstance(label, str) or not label:
            raise VkError(911, "button label is required")
        if len(label) > MAX_LABEL:
            raise VkError(911, f"button label is too long: maximum is {MAX_LABEL}")
    if kind == "open_link" and not action.get("link"):
        raise VkError(911, "open_link button requires link")
    if "color" in button and (kind not in ("text", "callback") or button["color"] not in _COLORS):
        raise VkError(911, "button color is invalid")
    payload = action.get("payload")
    if payload is not None:
        if not isinstance(payload, str):
            payload = json.dumps(payload, ensure_ascii=False)
        if len(payload) > MAX_PAYLOAD:
            raise VkError(911, f"button payload is too long: maximum is {MAX_PAYLOAD}")
        try:
            json.loads(payload)
        except ValueError:
            raise VkError(911, "button payload must be a valid JSON") from None


def callback_payloads(keyboard: dict[str, Any] | None) -> list[Any]:
    """The payloads of the callback buttons (what a user can press)."""
    found = []
    for row in (keyboard or {}).get("buttons", []):
        for button in row:
            action = button["action"]
            if action["type"] == "callback":
                payload = action.get("payload")
                found.append(json.loads(payload) if isinstance(payload, str) else payload)
    return found
