"""The citizens' Telegram channel (aiogram 3): long polling or a webhook, rendering, delivery.

Import it lazily (aiogram takes seconds to import): ``config`` wires
:func:`serve_telegram` next to the web chat when ``TSUR_TELEGRAM_TOKEN`` is set, and the
outbox uses :class:`TelegramMessenger`.
"""

from .channel import ALLOWED_UPDATES, TelegramChannel, build_dispatcher, make_bot, serve_telegram
from .messenger import TelegramMessenger
from .render import render, split_text
from .translate import incoming_from_callback, incoming_from_message
from .webhook import (
    TelegramWebhook,
    TelegramWebhookMode,
    setup_telegram_webhook,
    setup_telegram_webhook_mode,
)

__all__ = [
    "ALLOWED_UPDATES",
    "TelegramChannel",
    "TelegramMessenger",
    "TelegramWebhook",
    "TelegramWebhookMode",
    "build_dispatcher",
    "incoming_from_callback",
    "incoming_from_message",
    "make_bot",
    "render",
    "serve_telegram",
    "setup_telegram_webhook",
    "setup_telegram_webhook_mode",
    "split_text",
]
