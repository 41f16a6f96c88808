"""Remembering recently seen update ids, so a platform's redelivery is handled once."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Hashable


class RecentIds:
    """The last ``size`` ids seen, forgetting the oldest first. One process only, and
    only to save work: with several web processes a repeat may reach another one, where
    the engine's fingerprints (stored with the conversation, in the database) keep it
    from being recorded twice."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._seen: OrderedDict[Hashable, None] = OrderedDict()

    def add(self, key: Hashable) -> bool:
        """Remember ``key``; ``False`` if it was already remembered."""
        if key in self._seen:
            return False
        self._seen[key] = None
        if len(self._seen) > self.size:
            self._seen.popitem(last=False)
        return True

    def discard(self, key: Hashable) -> None:
        """Forget ``key`` (its handling was abandoned: a repeat must be handled)."""
        self._seen.pop(key, None)
