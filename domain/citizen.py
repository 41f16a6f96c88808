"""The citizen: identities on channels, language, consent, subscriptions, reachability."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime


@dataclass(slots=True)
class Identity:
    channel: str  # "telegram" | "vk" | "web"
    external_id: str  # the user's id on that channel
    chat_id: str  # where replies go


@dataclass(slots=True)
class Consent:
    """Consent to personal-data processing, with the version of the text agreed to."""

    given_at: datetime
    text_version: str


@dataclass(slots=True)
class Citizen:
    identities: list[Identity]
    language: str = "ru"
    name: str = ""
    phone: str = ""
    consent: Consent | None = None
    subscribed_municipality: str | None = None
    subscribed_sectors: list[str] = field(default_factory=list)
    reachable: bool = True
    broadcast_opt_out: bool = False  # pressed "unsubscribe" under a broadcast
    created_at: datetime | None = None
    id: int | None = None

    def give_consent(self, at: datetime, text_version: str) -> None:
        self.consent = Consent(at, text_version)

    def has_consent(self, text_version: str | None = None) -> bool:
        if self.consent is None:
            return False
        return text_version is None or self.consent.text_version == text_version

    def identity_on(self, channel: str) -> Identity | None:
        return next((i for i in self.identities if i.channel == channel), None)
