"""Remembering recently seen update ids, so a platform's redelivery is handled once."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Hashable


class RecentIds:
    """The last ``size`` ids seen, forgetting the oldest first (one process only: with
    several web processes the database or Redis would have to remember them)."""

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
