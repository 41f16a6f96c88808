"""The compose form of a broadcast: reading and checking it as ``tsur broadcast create`` does,
and the preview of the message as citizens will see it."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from multidict import MultiDictProxy

from dialogue.messages import OutgoingMessage
from domain.broadcast import (
    CHANNELS,
    LANGUAGES,
    MAX_LABEL,
    MAX_LINKS,
    MAX_TEXT,
    MAX_URL,
    Audience,
    Broadcast,
    Link,
)
from domain.catalogue import Catalogue
from notifications.broadcast_message import broadcast_message, parse_moscow
from portal.labels import N_

MAX_PHOTO = 512
MAX_DAYS = 3650
Form = MultiDictProxy[Any]


@dataclass(frozen=True, slots=True)
class Problem:
    """A refusal to show next to the form: a msgid and its placeholders."""

    msgid: str
    params: dict[str, Any] = field(default_factory=dict)


@dataclass
class Compose:
    """What the staff member typed, kept as typed so the form can be shown again."""

    text: str = ""
    photo: str = ""
    links: list[tuple[str, str]] = field(default_factory=list)
    municipalities: list[str] = field(default_factory=list)
    sectors: list[str] = field(default_factory=list)
    channels: list[str] = field(default_factory=list)
    languages: list[str] = field(default_factory=list)
    complained_sectors: list[str] = field(default_factory=list)
    complained_municipalities: list[str] = field(default_factory=list)
    days: str = ""
    at: str = ""
    problems: list[Problem] = field(default_factory=list)
    audience: Audience | None = None
    parsed_links: list[Link] = field(default_factory=list)
    send_at: datetime | None = None

    def link_rows(self) -> list[tuple[str, str]]:
        """The filled rows and empty ones up to the maximum."""
        return self.links + [("", "")] * (MAX_LINKS - len(self.links))


def _one(form: Form, name: str, limit: int) -> str:
    value = form.get(name, "")
    return value.strip()[:limit] if isinstance(value, str) else ""


def _many(form: Form, name: str, allowed: set[str]) -> list[str]:
    values = [v.strip() for v in form.getall(name, []) if isinstance(v, str)]
    return list(dict.fromkeys(v for v in values if v in allowed))


def read_compose(form: Form, catalogue: Catalogue) -> Compose:
    """The form's values; unknown choices are dropped (a forged form gains nothing)."""
    munis = {m.slug for m in catalogue.municipalities}
    sectors = {s.slug for s in catalogue.sectors}
    raw_text = form.get("text", "")
    c = Compose(text=raw_text.strip() if isinstance(raw_text, str) else "",
                photo=_one(form, "photo", MAX_PHOTO + 1),
                municipalities=_many(form, "municipality", munis),
                sectors=_many(form, "sector", sectors),
                channels=_many(form, "channel", set(CHANNELS)),
                languages=_many(form, "language", set(LANGUAGES)),
                complained_sectors=_many(form, "complained_sector", sectors),
                complained_municipalities=_many(form, "complained_municipality", munis),
                days=_one(form, "days", 10), at=_one(form, "at", 40))
    for i in range(MAX_LINKS):
        label = _one(form, f"link_label_{i}", MAX_LABEL + 1)
        url = _one(form, f"link_url_{i}", MAX_URL + 1)
        if label or url:
            c.links.append((label, url))
    return c


def check_audience(c: Compose) -> None:
    """Set ``c.audience``, or add a problem."""
    days: int | None = None
    if c.days:
        try:
            days = int(c.days)
        except ValueError:
            days = 0
        if not 1 <= days <= MAX_DAYS:
            msg = N_("The number of days must be from 1 to %(max)s.")
            c.problems.append(Problem(msg, {"max": MAX_DAYS}))
            return
    c.audience = Audience(municipalities=tuple(c.municipalities), sectors=tuple(c.sectors),
                          channels=tuple(c.channels), languages=tuple(c.languages),
                          complained_sectors=tuple(c.complained_sectors),
                          complained_municipalities=tuple(c.complained_municipalities),
                          complained_days=days)


def check_message(c: Compose, *, need_text: bool) -> None:
    """Check the text, photo and link buttons; fill ``c.parsed_links``."""
    if not c.text:
        if need_text:
            c.problems.append(Problem(N_("Write the text of the broadcast.")))
    elif len(c.text) > MAX_TEXT:
        c.problems.append(Problem(N_("The text is too long: at most %(max)s characters."),
                                  {"max": MAX_TEXT}))
    if len(c.photo) > MAX_PHOTO:
        c.problems.append(Problem(N_("The photo reference is too long.")))
    c.parsed_links = []
    for label, url in c.links:
        if not label or not url:
            c.problems.append(Problem(N_("A link button needs both a label and an address.")))
        elif len(label) > MAX_LABEL:
            c.problems.append(Problem(N_("A link label may have at most %(max)s characters."),
                                      {"max": MAX_LABEL}))
        else:
            try:
                c.parsed_links.append(Link(label, url))
            except ValueError:
                msg = N_("A link button needs an https:// address, not %(url)s")
                c.problems.append(Problem(msg, {"url": url}))


def check_time(c: Compose, now: datetime) -> None:
    """Read ``c.at`` (Moscow time) into ``c.send_at``; it must not be in the past."""
    if not c.at:
        c.problems.append(Problem(N_("Give the date and time to send at (Moscow time).")))
        return
    try:
        at = parse_moscow(c.at)
    except ValueError:
        c.problems.append(Problem(N_("Write the time as YYYY-MM-DD HH:MM (Moscow time).")))
        return
    if at < now - timedelta(minutes=1):
        c.problems.append(Problem(N_("The send time is in the past.")))
        return
    c.send_at = at


def preview(c: Compose, now: datetime) -> list[tuple[str, OutgoingMessage]]:
    """The message per language of the audience, as :func:`broadcast_message` builds it."""
    if not c.text or c.problems:
        return []
    draft = Broadcast(c.text, "preview", now, c.audience or Audience(), c.photo or None,
                      tuple(c.parsed_links), id=0)
    langs = c.audience.languages if c.audience and c.audience.languages else LANGUAGES
    return [(lang, broadcast_message(draft, lang)) for lang in langs]
