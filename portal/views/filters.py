"""Reading the register's GET form into a query, and writing links back.

Unknown or malformed values are dropped rather than refused: a bookmarked link keeps
working after the catalogue changes.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from urllib.parse import urlencode

from multidict import MultiMapping

from domain.calendar import WorkingCalendar
from domain.catalogue import Catalogue
from domain.complaint import Status
from domain.storage.queries import NO_MUNICIPALITY, ComplaintFilter, Sort

CHANNELS = ("telegram", "vk", "web")
DUE_CHOICES = ("overdue", "today", "soon")
DEFAULT_SOON_DAYS = 3
MAX_SOON_DAYS = 20


@dataclass(frozen=True, slots=True)
class Windows:
    """Deadline windows at ``now``: today ends at local midnight; "soon" ends at the close
    of the ``days``-th working day."""

    now: datetime
    today_end: datetime
    soon_end: datetime
    days: int


def windows(now: datetime, calendar: WorkingCalendar, days: int) -> Windows:
    local = now.astimezone(calendar.tz)
    tomorrow = datetime.combine(local.date() + timedelta(days=1), time(), tzinfo=calendar.tz)
    return Windows(now, tomorrow, max(calendar.add_working_days(now, days), tomorrow), days)


def soon_days(raw: str | None) -> int:
    try:
        return min(MAX_SOON_DAYS, max(1, int(raw or DEFAULT_SOON_DAYS)))
    except ValueError:
        return DEFAULT_SOON_DAYS


def _date(raw: str | None) -> date | None:
    try:
        return date.fromisoformat(raw) if raw else None
    except ValueError:
        return None


def parse_filter(query: MultiMapping[str], catalogue: Catalogue, calendar: WorkingCalendar,
                 win: Windows) -> ComplaintFilter:
    """The register's filter from the query string (see ``complaints.html`` for names)."""
    statuses = tuple(s for s in query.getall("status", []) if s in set(Status))
    sector = query.get("sector") or None
    if sector is not None and sector not in {s.slug for s in catalogue.sectors}:
        sector = None
    category = None
    sector_slug, _, category_slug = (query.get("category") or "").partition("/")
    try:
        catalogue.category(sector_slug, category_slug)
        category = (sector_slug, category_slug)
    except KeyError:
        pass
    agency = query.get("agency") or None
    if agency not in catalogue.agencies:
        agency = None
    municipality = query.get("municipality") or None
    if municipality not in {m.slug for m in catalogue.municipalities} | {NO_MUNICIPALITY}:
        municipality = None
    channel = query.get("channel") if query.get("channel") in CHANNELS else None
    due = query.get("due")
    due_from = due_before = None
    if due == "overdue":
        due_before = win.now
    elif due == "today":
        due_from, due_before = win.now, win.today_end
    elif due == "soon":
        due_from, due_before = win.today_end, win.soon_end
    start, end = _date(query.get("from")), _date(query.get("to"))
    return ComplaintFilter(
        statuses=statuses, sector=sector, category=category, agency=agency,
        municipality=municipality, channel=channel, open_only=due in DUE_CHOICES,
        due_from=due_from, due_before=due_before,
        created_from=datetime.combine(start, time(), tzinfo=calendar.tz) if start else None,
        created_before=(datetime.combine(end + timedelta(days=1), time(), tzinfo=calendar.tz)
                        if end else None),
        search=(query.get("q") or "").replace("\x00", "")[:200])  # PostgreSQL refuses NUL


def parse_sort(query: MultiMapping[str]) -> Sort:
    try:
        return Sort(query.get("sort", "created_at"), query.get("dir", "desc") != "asc")
    except ValueError:
        return Sort()


def parse_page(query: MultiMapping[str]) -> int:
    try:
        return max(1, int(query.get("page", "1")))
    except ValueError:
        return 1


def link(path: str, query: MultiMapping[str], **changes: str | None) -> str:
    """``path`` with the current query, ``changes`` applied (None removes a key)."""
    items = [(k, v) for k, v in query.items() if k not in changes and v != ""]
    items += [(k, v) for k, v in changes.items() if v is not None]
    return f"{path}?{urlencode(items)}" if items else path
