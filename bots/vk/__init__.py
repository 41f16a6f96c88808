"""The citizens' VK community channel (vkbottle): Bots Long Poll or the Callback API,
rendering, delivery.

Import it lazily (vkbottle takes seconds to import): ``config`` wires :func:`serve_vk`
next to the web chat when ``TSUR_VK_TOKEN`` is set, and the outbox uses
:class:`VkMessenger`.
"""

from .callback import VkCallback, setup_vk_callback, setup_vk_callback_mode
from .channel import VkChannel, build_bot, make_api, serve_vk
from .messenger import VkMessenger, VkUnavailableError
from .polling import DataDirPolling, SettledPolling
from .render import Rendered, render, split_text
from .translate import incoming_from_event, incoming_from_message

__all__ = [
    "DataDirPolling",
    "Rendered",
    "SettledPolling",
    "VkCallback",
    "VkChannel",
    "VkMessenger",
    "VkUnavailableError",
    "build_bot",
    "incoming_from_event",
    "incoming_from_message",
    "make_api",
    "render",
    "serve_vk",
    "setup_vk_callback",
    "setup_vk_callback_mode",
    "split_text",
]
