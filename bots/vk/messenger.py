"""Delivering messages to VK citizens (replies and, later, the outbox)."""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import ClientError
from pydantic import ValidationError
from vkbottle import API, VKAPIError

from dialogue.messages import Address, Channel, OutgoingMessage

from .render import render

log = logging.getLogger(__name__)

UNREACHABLE = frozenset({900, 901, 902})  # blacklisted us / denied messages / privacy
RETRIED = frozenset({6, 9, 10})  # too many requests per second, flood control, internal
MAX_PEERS_REMEMBERED = 10_000


class VkUnavailableError(Exception):
    """VK answered with something that is not JSON (an HTML 5xx page)."""


class VkMessenger:
    """The VK ``Messenger``: holds a vkbottle :class:`~vkbottle.API`, never subclasses it.

    Errors 6, 9 and 10 and network failures are retried after a short, growing delay; a
    retry reuses the part's ``random_id``, so VK drops it if the first try went through.
    After ``attempts`` tries the message counts as not delivered.

    It also remembers, per peer, the numbered options of the last message whose buttons
    did not all fit (see :mod:`bots.vk.render`); :meth:`take_choices` hands them to the
    channel for the citizen's next message.
    """

    def __init__(self, api: API, *, attempts: int = 4, base_delay: float = 0.5,
                 sleep: Callable[[float], Awaitable[None]] = asyncio.sleep) -> None:
        self.api = api
        self.attempts = attempts
        self.base_delay = base_delay
        self._sleep = sleep
        self._choices: OrderedDict[int, dict[str, str]] = OrderedDict()

    async def send(self, to: Address, msg: OutgoingMessage, *, key: str | None = None,
                   language: str | None = None) -> bool:
        """Show ``msg`` to ``to``.

        :param key: names the logical message (an outbox row id): sending the same key
            again never duplicates it. Without a key only this call's retries are safe.
        :param language: for the few words the adapter adds itself.
        :returns: ``True`` if every part was delivered; ``False`` if ``to`` is not a VK
            address, the user denied messages from the community (900–902), VK refused
            the message, or retries ran out.
        """
        if to.channel is not Channel.VK:
            return False
        try:
            peer_id = int(to.chat_id)
        except ValueError:
            log.warning("vk: not a peer id: %r", to.chat_id)
            return False
        rendered = render(peer_id, msg, key=key, language=language)
        if any("keyboard" in p for p in rendered.sends):
            self._remember(peer_id, rendered.choices)
        for params in rendered.sends:
            try:
                await self.call("messages.send", params)
            except VKAPIError as exc:
                if exc.code in UNREACHABLE:
                    log.info("vk: peer %s is unreachable (%s): %s", peer_id, exc.code,
                             exc.error_msg)
                elif exc.code in RETRIED:
                    log.warning("vk: giving up on peer %s for now after %d tries (%s): %s",
                                peer_id, self.attempts, exc.code, exc.error_msg)
                else:
                    log.error("vk: message to %s refused (%s): %s", peer_id, exc.code,
                              exc.error_msg)
                return False
            except ValidationError as exc:
                # messages.send with peer_ids answers an entry without message_id for a
                # user who denied messages, and vkbottle fails to parse it (not a 901)
                log.info("vk: peer %s is unreachable (unparsable answer): %s", peer_id, exc)
                return False
            except (TimeoutError, ClientError, VkUnavailableError) as exc:
                log.warning("vk: giving up on peer %s for now: %r", peer_id, exc)
                return False
        return True

    async def call(self, method: str, params: dict[str, Any]) -> Any:
        """Make one API call (raw: ``{"response": …}``), retrying 6, 9, 10 and network
        failures."""
        for attempt in range(1, self.attempts + 1):
            try:
                return await self.api.request(method, params)
            except VKAPIError as exc:
                if exc.code not in RETRIED or attempt == self.attempts:
                    raise
                reason: object = f"error {exc.code}"
            except (TimeoutError, ClientError, VkUnavailableError) as exc:
                if attempt == self.attempts:
                    raise
                reason = exc
            delay = self.base_delay * 2 ** (attempt - 1)
            log.info("vk: %s failed (%s); retrying in %.1fs", method, reason, delay)
            await self._sleep(delay)
        raise AssertionError("unreachable")

    def _remember(self, peer_id: int, choices: dict[str, str]) -> None:
        self._choices.pop(peer_id, None)
        if choices:
            self._choices[peer_id] = choices
            while len(self._choices) > MAX_PEERS_REMEMBERED:
                self._choices.popitem(last=False)

    def take_choices(self, peer_id: int) -> dict[str, str]:
        """The numbered options last shown to ``peer_id``, forgotten once taken: they
        answer the citizen's very next message only."""
        return self._choices.pop(peer_id, {})
