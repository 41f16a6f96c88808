"""The batch side of the delivery worker: outcomes marked many at a time, a batch's
chats taken in turn (:func:`round_robin`), and grouping a broadcast's rows into requests
to many chats.

Marking: a worker collects :class:`Outcome` s and :func:`flush_outcomes` writes them in one
transaction — one ``UPDATE`` per (claim, outcome) for the common outcomes (sent,
unreachable), one per row only for the rare ones that carry their own error or time.

Grouping: rows of the same kind and identical payload (a broadcast's rows in one language)
are sent as one request to up to ``max_peers`` chats. The request's idempotency key (VK's
``random_id``) is derived from the sorted ``dedup_key`` s of its rows, so a group claimed
again after a crash — the same rows, in the same order, because claims are ordered and
groups are cut in claim order — is the same request and the platform drops the repeat.

A request pins its key to its rows before it is sent: ``last_error`` starting
``[request <key>]`` (:func:`pinned`), written by the claim itself — the worker groups the
rows it claims (:func:`request_pins`) and the claim's one ``UPDATE`` writes the keys with
the lease, so no row is written twice for it. Later
claims may cut those rows into other groups (claims are limited; rows come due at
different times; a chat held back by an earlier message is left out), whether the first
request's outcome was unknown (a timeout, a dropped connection) or never marked (the
worker died after sending), so a pinned row only goes with rows pinned to the same key,
alone too, and the request carries that key: a peer that may have the message never gets
it under a second ``random_id``. (VK drops a repeated ``random_id`` per recipient, so a
smaller retry with the key still reaches the peers the first request did not.) A request
the platform refused (flood control) leaves its rows unpinned again, unless they were
pinned before it.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from domain.ports import OutboxMessage, OutboxStatus, UnitOfWork

log = logging.getLogger(__name__)
_PINNED = re.compile(r"^\[request (many:[0-9a-f]{32})\] ")


@dataclass(slots=True)
class Outcome:
    """What became of one claimed message. ``status`` ``None``: give it back — due again
    at ``not_before`` (a retry), or at once with the attempt uncounted (never sent)."""

    message: OutboxMessage
    token: str
    status: OutboxStatus | None = None
    not_before: datetime | None = None
    error: str = ""


def group_units(batch: Sequence[OutboxMessage], kinds: Iterable[str],
                max_peers: int) -> list[list[OutboxMessage]]:
    """The batch as units of sending, in order: one message each, except that messages
    of ``kinds`` with equal payloads go together, up to ``max_peers`` (one chat each)."""
    kinds = frozenset(kinds)
    units: list[list[OutboxMessage]] = []
    open_groups: dict[str, tuple[list[OutboxMessage], set[str]]] = {}
    for message in batch:
        if message.kind not in kinds or max_peers < 2:
            units.append([message])
            continue
        fingerprint = (f"{message.kind}{pinned_key(message) or ''}"
                       + json.dumps(message.payload, sort_keys=True))
        group, chats = open_groups.get(fingerprint) or ([], set())
        if not group or len(group) >= max_peers or message.chat_id in chats:
            group, chats = [], set()
            open_groups[fingerprint] = (group, chats)
            units.append(group)
        group.append(message)
        chats.add(message.chat_id)
    return units


def as_request(unit: Sequence[OutboxMessage], kinds: Iterable[str], max_peers: int) -> bool:
    """Whether ``unit`` (of :func:`group_units`) goes as one request to many chats — alone
    too, so that its key is the same however a retry groups its rows."""
    return unit[0].kind in kinds and (max_peers >= 2 or pinned_key(unit[0]) is not None)


def request_pins(units: Sequence[Sequence[OutboxMessage]], kinds: Iterable[str],
                 max_peers: int) -> list[tuple[list[int], str]]:
    """``(ids, note)`` for the claim to write before the rows' ``last_error``: each
    request's key, pinned to its rows before it is sent, so a crash between the send and
    the mark leaves them pinned. Rows already pinned keep their key (:func:`group_units`
    grouped them by it)."""
    kinds = frozenset(kinds)
    return [([m.id for m in unit if m.id is not None], pinned("", batch_key(unit)))
            for unit in units
            if as_request(unit, kinds, max_peers) and pinned_key(unit[0]) is None]


def batch_key(unit: Sequence[OutboxMessage]) -> str:
    """The idempotency key of a request to many chats: the key its rows are pinned to (all
    of them, as :func:`group_units` groups them); else the same rows, the same key."""
    pinned = pinned_key(unit[0]) if unit else None
    if pinned is not None and all(pinned_key(m) == pinned for m in unit):
        return pinned
    keys = "\n".join(sorted(m.dedup_key for m in unit))
    return "many:" + hashlib.sha256(keys.encode()).hexdigest()[:32]


def pinned_key(message: OutboxMessage) -> str | None:
    """The key of the request to many chats that ``message`` was last tried in without a
    known outcome, or ``None``."""
    found = _PINNED.match(message.last_error)
    return found.group(1) if found else None


def pinned(error: str, key: str) -> str:
    """``error`` as the ``last_error`` of a row pinned to the request ``key``."""
    return f"[request {key}] {_PINNED.sub('', error, count=1)}"


async def flush_outcomes(uow: UnitOfWork, outcomes: Sequence[Outcome], now: datetime,
                         channel: str) -> None:
    """Write ``outcomes`` in ``uow`` (the caller commits)."""
    bulk: dict[tuple[str, OutboxStatus], list[int]] = defaultdict(list)
    released: dict[str, list[int]] = defaultdict(list)
    gone: set[int] = set()
    for o in outcomes:
        message_id = o.message.id
        assert message_id is not None
        if o.status is None and o.not_before is None:
            released[o.token].append(message_id)
        elif o.status is None:
            assert o.not_before is not None
            await uow.outbox.reschedule(message_id, o.token, not_before=o.not_before,
                                        error=o.error)
        elif o.error:
            if not await uow.outbox.finish(message_id, o.token, o.status, now=now,
                                           error=o.error):
                log.warning("%s: lost the claim on message %s", channel, message_id)
        else:
            bulk[o.token, o.status].append(message_id)
            if o.status is OutboxStatus.UNREACHABLE and o.message.citizen_id is not None:
                gone.add(o.message.citizen_id)
    for (token, status), ids in bulk.items():
        done = await uow.outbox.finish_many(ids, token, status, now=now)
        if done < len(ids):
            log.warning("%s: lost the claim on %d of %d messages", channel,
                        len(ids) - done, len(ids))
    for token, ids in released.items():
        await uow.outbox.release(ids, token)
    for citizen_id in sorted(gone):
        # the citizen blocked the bot: mark them, and drop what else waits for them
        citizen = await uow.citizens.get(citizen_id)
        if citizen is not None and citizen.reachable:
            citizen.reachable = False
            await uow.citizens.save(citizen)
        await uow.outbox.drop_pending_for(citizen_id, OutboxStatus.UNREACHABLE, now=now)


def round_robin(batch: list[OutboxMessage]) -> list[OutboxMessage]:
    """The batch with each chat's messages spread out: within a priority, every chat's
    first message, then every chat's second, and so on. Each chat keeps its own order, but
    a chat waiting out its per-chat pace no longer holds the other chats back."""
    nth: dict[str, int] = {}
    keyed = []
    for index, message in enumerate(batch):
        keyed.append((-message.priority, nth.get(message.chat_id, 0), index, message))
        nth[message.chat_id] = nth.get(message.chat_id, 0) + 1
    return [message for *_, message in sorted(keyed, key=lambda k: k[:3])]
