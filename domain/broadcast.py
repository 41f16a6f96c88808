"""A broadcast: news the center sends to a targeted audience of citizens.

Who may receive one (the *eligible* citizens) is fixed here, whatever the filters say:

- the citizen is reachable (did not block the bot) and has not opted out of broadcasts
  (the unsubscribe button under every broadcast);
- they have an identity on one of the broadcast's channels, i.e. they wrote to the bot or
  to the community first — the only way a VK community may write to someone, and for
  Telegram the only way a bot can. Without a channel filter, Telegram and VK are used;
  the web chat only when asked for (its visitors are online for minutes, not days);
- one message per citizen: a citizen known on several channels gets it on the first one
  they used (their oldest identity among the broadcast's channels).

Filters narrow that set; values inside one filter are alternatives (OR), filters combine
with AND. ``municipalities`` and ``sectors`` match the citizen's subscription; the
``complained_*`` filters and ``complained_days`` match their complaints.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any
from urllib.parse import urlsplit

CHANNELS = ("telegram", "vk", "web")
DEFAULT_CHANNELS = ("telegram", "vk")
LANGUAGES = ("ru", "en")
MAX_TEXT = 3500  # Telegram allows 4096 characters; leave room for the link lines
MAX_LINKS = 5
MAX_LABEL = 64
MAX_URL = 2048


class BroadcastState(StrEnum):
    DRAFT = "draft"
    SCHEDULED = "scheduled"
    SENDING = "sending"
    PAUSED = "paused"
    CANCELLED = "cancelled"
    DONE = "done"


class InvalidTransition(ValueError):
    """The broadcast cannot do that in its current state."""


@dataclass(frozen=True, slots=True)
class Link:
    """A link button: a label and an https URL."""

    label: str
    url: str

    def __post_init__(self) -> None:
        if not self.label.strip() or len(self.label) > MAX_LABEL:
            raise ValueError(f"a link label needs 1 to {MAX_LABEL} characters: {self.label!r}")
        parts = urlsplit(self.url)
        if (parts.scheme != "https" or not parts.hostname or len(self.url) > MAX_URL
                or any(c.isspace() for c in self.url)):
            raise ValueError(f"not an https URL: {self.url!r}")


def _tuple(values: Any) -> tuple[str, ...]:
    return tuple(dict.fromkeys(str(v).strip() for v in values or () if str(v).strip()))


@dataclass(frozen=True, slots=True)
class Audience:
    """Who a broadcast is for (see the module docstring); empty filters match everyone
    eligible."""

    municipalities: tuple[str, ...] = ()
    sectors: tuple[str, ...] = ()
    channels: tuple[str, ...] = ()
    languages: tuple[str, ...] = ()
    complained_sectors: tuple[str, ...] = ()
    complained_municipalities: tuple[str, ...] = ()
    complained_days: int | None = None

    def __post_init__(self) -> None:
        for name in ("municipalities", "sectors", "channels", "languages",
                     "complained_sectors", "complained_municipalities"):
            object.__setattr__(self, name, _tuple(getattr(self, name)))
        unknown = set(self.channels) - set(CHANNELS)
        if unknown:
            raise ValueError(f"unknown channel(s): {', '.join(sorted(unknown))}")
        unknown = set(self.languages) - set(LANGUAGES)
        if unknown:
            raise ValueError(f"unknown language(s): {', '.join(sorted(unknown))}")
        if self.complained_days is not None and self.complained_days < 1:
            raise ValueError("the number of days must be positive")

    @property
    def effective_channels(self) -> tuple[str, ...]:
        return self.channels or DEFAULT_CHANNELS

    @property
    def by_complaints(self) -> bool:
        """True if only citizens with a (recent, matching) complaint are wanted."""
        return bool(self.complained_sectors or self.complained_municipalities
                    or self.complained_days)

    def to_json(self) -> dict[str, Any]:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Audience:
        known = {k: v for k, v in (data or {}).items() if k in cls.__dataclass_fields__}
        return cls(**known)


@dataclass(slots=True)
class Broadcast:
    """The aggregate. ``cursor`` is the last citizen id written to the outbox: the
    materialization resumes after it, so a crash or a second process never writes a
    recipient twice (the outbox's dedup key guards that too)."""

    text: str
    created_by: str
    created_at: datetime
    audience: Audience = field(default_factory=Audience)
    photo: str | None = None
    links: tuple[Link, ...] = ()
    state: BroadcastState = BroadcastState.DRAFT
    send_at: datetime | None = None
    audience_size: int = 0  # counted when created or scheduled, for the staff to see
    recipients: int = 0  # outbox rows written so far
    cursor: int = 0
    materialized: bool = False
    started_at: datetime | None = None
    finished_at: datetime | None = None
    id: int | None = None

    def __post_init__(self) -> None:
        self.text = self.text.strip()
        if not self.text or len(self.text) > MAX_TEXT:
            raise ValueError(f"the text needs 1 to {MAX_TEXT} characters")
        if len(self.links) > MAX_LINKS:
            raise ValueError(f"at most {MAX_LINKS} link buttons")
        if self.photo is not None and not self.photo.strip():
            self.photo = None

    # --- transitions ------------------------------------------------------------------------
    def schedule(self, at: datetime) -> None:
        if at.tzinfo is None:
            raise ValueError("the send time must be timezone-aware")
        self._require(BroadcastState.DRAFT, BroadcastState.SCHEDULED)
        self.state, self.send_at = BroadcastState.SCHEDULED, at

    def start(self, now: datetime) -> None:
        """Due: from now on its messages are written to the outbox."""
        self._require(BroadcastState.SCHEDULED)
        self.state, self.started_at = BroadcastState.SENDING, now

    def pause(self) -> None:
        self._require(BroadcastState.SCHEDULED, BroadcastState.SENDING)
        self.state = BroadcastState.PAUSED

    def resume(self) -> None:
        self._require(BroadcastState.PAUSED)
        self.state = (BroadcastState.SENDING if self.started_at is not None
                      else BroadcastState.SCHEDULED)

    def cancel(self, now: datetime) -> None:
        self._require(BroadcastState.DRAFT, BroadcastState.SCHEDULED, BroadcastState.SENDING,
                      BroadcastState.PAUSED)
        self.state, self.finished_at = BroadcastState.CANCELLED, now

    def finish(self, now: datetime) -> None:
        """Everything written was delivered or given up on."""
        self._require(BroadcastState.SENDING)
        if not self.materialized:
            raise InvalidTransition("recipients are still being written")
        self.state, self.finished_at = BroadcastState.DONE, now

    def _require(self, *states: BroadcastState) -> None:
        if self.state not in states:
            raise InvalidTransition(f"broadcast {self.id} is {self.state}")
