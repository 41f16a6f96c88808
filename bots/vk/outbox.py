"""The VK ``Messenger`` of the outbox: one try per message, outcomes for the worker.

:class:`~bots.vk.messenger.VkMessenger` serves the dialogue and retries by itself; the
outbox worker paces and retries itself, so :class:`VkOutboxMessenger` makes each
``messages.send`` once and says what happened:

========================================================  ==================================
VK's answer                                                outcome
========================================================  ==================================
a message id                                               ``SendResult.OK``
900, 901, 902 (blacklisted us, denied messages, privacy),  ``SendResult.UNREACHABLE``
18 (user deleted or banned), 936 (contact not found),
and vkbottle's pydantic ``ValidationError`` on a denied
peer's ``peer_ids`` entry (the known trap)
6 (too many requests per second), 9 (flood control)        ``RetryAfter`` (short)
10 (internal), 1 (unknown), 5/27/28 (token trouble: an     ``TransientError``
admin fixes it), 5xx HTML pages, timeouts, dropped
connections
any other error (100 bad parameter, 911 keyboard, 914      ``SendResult.REJECTED``
too long, ...)
========================================================  ==================================

``random_id`` is derived from (peer, ``key``, part) by :func:`bots.vk.render.render`; the
worker passes the outbox row's ``dedup_key``, so a row sent again after a crash or a lost
reply is dropped by VK itself instead of reaching the citizen twice.

:meth:`VkOutboxMessenger.send_many` sends one message to up to 100 peers in one
``messages.send`` (``peer_ids``) — a broadcast at 100 citizens per request of the 20/s
limit. Its ``random_id`` comes from the worker's key for the group (the same rows, the
same key; a request's key is written to its rows before it is sent, so rows retried after
a request whose outcome is unknown or never marked keep that request's key, however they
are grouped again — :mod:`notifications.delivery_batch` — and VK drops a
repeated ``random_id`` per recipient), and VK answers per peer: an entry with
``message_id`` is delivered, one with an ``error`` (901 and the like) or without
``message_id`` is unreachable or refused.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from aiohttp import ClientError
from pydantic import ValidationError
from vkbottle import VKAPIError

from dialogue.messages import Address, Channel, OutgoingMessage
from notifications.messenger import RetryAfter, SendResult, TransientError

from .messenger import VkUnavailableError
from .render import random_id, render

log = logging.getLogger(__name__)

UNREACHABLE = frozenset({18, 900, 901, 902, 936})
MAX_PEERS = 100  # peer_ids per messages.send
FLOOD = frozenset({6, 9})
TRANSIENT = frozenset({1, 5, 10, 27, 28})


class VkOutboxMessenger:
    """Implements :class:`notifications.messenger.Messenger` for VK; holds a vkbottle
    :class:`~vkbottle.API` (made by :func:`bots.vk.make_api`, so a non-JSON reply raises
    :class:`~bots.vk.VkUnavailableError` instead of blocking) and never subclasses it.

    :param flood_wait: seconds to hold the channel back after error 6 or 9 (VK names no
        time; its limits are per second).
    """

    def __init__(self, api: Any, *, flood_wait: float = 1.0) -> None:
        self.api = api
        self.flood_wait = flood_wait

    async def send(self, to: Address, msg: OutgoingMessage, *,
                   key: str | None = None) -> SendResult:
        if to.channel is not Channel.VK:
            log.error("vk outbox: %s is not a VK address", to)
            return SendResult.REJECTED
        try:
            peer_id = int(to.chat_id)
        except ValueError:
            log.error("vk outbox: not a peer id: %r", to.chat_id)
            return SendResult.REJECTED
        if key is None:
            log.warning("vk outbox: a message to %s without a key cannot be de-duplicated",
                        peer_id)
        for params in render(peer_id, msg, key=key).sends:
            result = await self._send_part(peer_id, params)
            if result is not SendResult.OK:
                return result
        return SendResult.OK

    async def send_many(self, to: Sequence[Address], msg: OutgoingMessage, *,
                        key: str) -> list[SendResult]:
        """The same ``msg`` to every address of ``to`` (at most 100) in one request per
        part; returns one outcome per address, or raises for the whole request."""
        if len(to) > MAX_PEERS:
            raise ValueError(f"at most {MAX_PEERS} peers per messages.send")
        results: dict[int, SendResult] = {}
        peers: list[int] = []
        for address in to:
            try:
                peer = int(address.chat_id)
            except ValueError:
                peer = 0
            if address.channel is not Channel.VK or peer == 0:
                log.error("vk outbox: not a VK peer: %s", address)
                results[id(address)] = SendResult.REJECTED
            else:
                peers.append(peer)
        live = list(dict.fromkeys(peers))
        outcome = dict.fromkeys(live, SendResult.OK)
        for part, params in enumerate(render(live[0], msg, key=key).sends if live else ()):
            if not live:
                break
            params = {k: v for k, v in params.items() if k != "peer_id"}
            params["peer_ids"] = ",".join(map(str, live))
            params["random_id"] = random_id(0, key, part)
            for peer, result in (await self._send_many_part(params)).items():
                if peer in outcome and result is not SendResult.OK:
                    outcome[peer] = result
            live = [peer for peer in live if outcome[peer] is SendResult.OK]
        return [results.get(id(address)) or outcome[int(address.chat_id)] for address in to]

    async def _send_many_part(self, params: dict[str, Any]) -> dict[int, SendResult]:
        try:
            answer = await self.api.request("messages.send", params)
        except VKAPIError as exc:
            if exc.code in FLOOD:
                raise RetryAfter(self.flood_wait,
                                 f"vk: error {exc.code}: {exc.error_msg}") from exc
            if exc.code in TRANSIENT:
                raise TransientError(f"vk: error {exc.code}: {exc.error_msg}") from exc
            log.error("vk outbox: messages.send to many refused (%s): %s", exc.code,
                      exc.error_msg)
            return {int(p): SendResult.REJECTED for p in params["peer_ids"].split(",")}
        except (TimeoutError, ClientError, VkUnavailableError) as exc:
            raise TransientError(f"vk: {type(exc).__name__}: {exc}") from exc
        entries = answer.get("response") if isinstance(answer, dict) else None
        if not isinstance(entries, list):
            raise TransientError(f"vk: unexpected answer to peer_ids: {answer!r:.200}")
        results = {}
        for entry in entries:
            peer = int(entry.get("peer_id", 0))
            error = entry.get("error")
            if "message_id" in entry and not error:
                results[peer] = SendResult.OK
            elif isinstance(error, dict) and error.get("code") not in UNREACHABLE:
                log.error("vk outbox: message to %s refused (%s): %s", peer,
                          error.get("code"), error.get("description"))
                results[peer] = SendResult.REJECTED
            else:  # denied messages (901...), or no message_id at all (the known trap)
                results[peer] = SendResult.UNREACHABLE
        for peer in map(int, params["peer_ids"].split(",")):
            if peer not in results:  # a retry would get the same answer (random_id)
                log.error("vk outbox: no answer for peer %s in a peer_ids send", peer)
                results[peer] = SendResult.REJECTED
        return results

    async def _send_part(self, peer_id: int, params: dict[str, Any]) -> SendResult:
        try:
            await self.api.request("messages.send", params)
        except VKAPIError as exc:
            code = exc.code
            if code in UNREACHABLE:
                log.info("vk outbox: peer %s is unreachable (%s): %s", peer_id, code,
                         exc.error_msg)
                return SendResult.UNREACHABLE
            if code in FLOOD:
                raise RetryAfter(self.flood_wait, f"vk: error {code}: {exc.error_msg}") from exc
            if code in TRANSIENT:
                raise TransientError(f"vk: error {code}: {exc.error_msg}") from exc
            log.error("vk outbox: message to %s refused (%s): %s", peer_id, code,
                      exc.error_msg)
            return SendResult.REJECTED
        except ValidationError as exc:
            # a peer_ids send answers an entry without message_id for a user who denied
            # messages, and vkbottle fails to parse it instead of raising 901
            log.info("vk outbox: peer %s is unreachable (unparsable answer): %s", peer_id,
                     exc)
            return SendResult.UNREACHABLE
        except (TimeoutError, ClientError, VkUnavailableError) as exc:
            raise TransientError(f"vk: {type(exc).__name__}: {exc}") from exc
        return SendResult.OK
