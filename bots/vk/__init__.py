"""The citizens' VK community channel (vkbottle): Bots Long Poll, rendering, delivery.

Import it lazily (vkbottle takes seconds to import): ``config`` wires :func:`serve_vk`
next to the web chat when ``TSUR_VK_TOKEN`` is set, and the outbox uses
:class:`VkMessenger`.
"""

from .channel import DataDirPolling, VkChannel, build_bot, make_api, serve_vk
from .messenger import VkMessenger, VkUnavailableError
from .render import Rendered, render, split_text
from .translate import incoming_from_event, incoming_from_message

__all__ = [
    "DataDirPolling",
    "Rendered",
    "VkChannel",
    "VkMessenger",
    "VkUnavailableError",
    "build_bot",
    "incoming_from_event",
    "incoming_from_message",
    "make_api",
    "render",
    "serve_vk",
    "split_text",
]
