"""Read-side queries for the staff portal: the complaint register and the deadline board.

They read rows directly (no aggregates are built) and never write. Filters are plain
values; the caller turns "overdue", "due today" and periods into datetimes, so these
queries know nothing of calendars or time zones.

Full-text search is a substring match over the complaint's text, number and address with
``%``, ``_`` and ``\\`` escaped: ``ILIKE`` on PostgreSQL, ``LIKE`` on SQLite. Both fold
case for ASCII only (PostgreSQL under the C locale), so the term is also tried lower-cased,
capitalised and upper-cased: "вода" finds "Вода" and "ВОДА" (not "вОДа"). On SQLite a term
without ASCII letters is matched with ``instr()`` (the same result, less work per row).

A term of at least :data:`INDEXED_SEARCH` characters first narrows the rows with the
trigram index of migration 0009 (SQLite: the FTS5 table ``complaints_fts``; PostgreSQL: the
``pg_trgm`` index on :func:`search_key`); the index folds case more widely than the
variants, so it finds a superset and the substring condition above, kept on top, decides.
Shorter terms have no trigram to look up and are matched by reading the rows.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any

from sqlalchemy import Select, and_, case, func, literal_column, or_, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from domain.complaint import OPEN_STATUSES
from domain.storage.orm import ComplaintRow
from domain.storage.reports import complaints_by

PER_PAGE = 50
#: A search counts its matches up to this many: past it the total is shown as "more than"
#: (a frequent word would otherwise have every complaint read to count it).
SEARCH_COUNT_CAP = 10_000
#: Terms at least this long are looked up in the trigram index first.
INDEXED_SEARCH = 3
#: PostgreSQL's ``tsur_search_fold`` (migration 0009, frozen there): each Cyrillic letter,
#: either case, to one ASCII character, so that pg_trgm under the C locale indexes it.
_CYRILLIC = "абвгдеёжзийклмнопрстуфхцчшщъыьэюя"
FOLD = str.maketrans(_CYRILLIC + _CYRILLIC.upper(), "abvgde0jzi1klmnoprstufhc2w34y567q" * 2)
#: SQLite: a search with more matches than this reads its page in the sort's order
#: instead of through the index (the count still uses the index).
SCAN_PAGE_AFTER = 2_000
NO_MUNICIPALITY = "-"  # filter value: complaints whose municipality is unknown
SORT_COLUMNS: dict[str, Any] = {
    "number": ComplaintRow.number,
    "created_at": ComplaintRow.created_at,
    "resolution_due": ComplaintRow.resolution_due,
    "status": ComplaintRow.status,
    "sector": ComplaintRow.sector,
    "agency": ComplaintRow.agency,
    "municipality": ComplaintRow.municipality,
    "channel": ComplaintRow.channel,
}
_OPEN = tuple(str(s) for s in OPEN_STATUSES)


@dataclass(frozen=True, slots=True)
class ComplaintFilter:
    """What the register shows. Empty values do not filter.

    ``category`` is ``(sector, category)``; ``municipality`` may be :data:`NO_MUNICIPALITY`.
    ``open_only`` with ``due_from``/``due_before`` select by resolution deadline (half-open
    interval); ``created_from``/``created_before`` select by filing time.
    """

    statuses: tuple[str, ...] = ()
    sector: str | None = None
    category: tuple[str, str] | None = None
    agency: str | None = None
    municipality: str | None = None
    channel: str | None = None
    open_only: bool = False
    due_from: datetime | None = None
    due_before: datetime | None = None
    created_from: datetime | None = None
    created_before: datetime | None = None
    search: str = ""


@dataclass(frozen=True, slots=True)
class Sort:
    """A sort column from :data:`SORT_COLUMNS`; anything else raises ``ValueError``."""

    column: str = "created_at"
    descending: bool = True

    def __post_init__(self) -> None:
        if self.column not in SORT_COLUMNS:
            raise ValueError(f"cannot sort by {self.column!r}")


@dataclass(frozen=True, slots=True)
class RegisterRow:
    id: int
    number: str
    created_at: datetime
    status: str
    channel: str
    sector: str
    category: str
    agency: str
    municipality: str | None
    text: str
    address: str | None
    resolution_due: datetime
    first_answer_due: datetime
    first_answered_at: datetime | None


@dataclass(frozen=True, slots=True)
class RegisterPage:
    rows: list[RegisterRow]
    total: int
    overdue: int  # of ``total``, open and past the resolution deadline at ``now``
    page: int
    per_page: int
    capped: bool = False  # a search with more than ``total`` matches (overdue: of those)

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.per_page))


def escape_like(term: str) -> str:
    """``term`` with the LIKE wildcards and the escape character itself escaped by ``\\``."""
    return term.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def search_key() -> Any:
    """PostgreSQL: the indexed expression of ``ix_complaints_search`` (migration 0009),
    spelled exactly as there so the planner matches it."""
    return literal_column(
        "tsur_search_fold(coalesce(complaints.text, '') || chr(10) || "
        "coalesce(complaints.number, '') || chr(10) || coalesce(complaints.address, ''))")


def fts_query(variants: Sequence[str]) -> str:
    """An FTS5 query for any of ``variants`` as a substring: each a quoted string (quotes
    doubled), which the trigram tokenizer matches as consecutive trigrams."""
    return " OR ".join('"' + v.replace('"', '""') + '"' for v in variants)


def _candidates(variants: Sequence[str], dialect: str) -> Any:
    """The trigram index's superset of the rows holding any of ``variants``."""
    if dialect == "postgresql":
        folded = dict.fromkeys(f"%{escape_like(v.translate(FOLD))}%" for v in variants)
        return or_(*(search_key().ilike(p, escape="\\") for p in folded))
    match = text("complaints_fts MATCH :fts_terms").bindparams(fts_terms=fts_query(variants))
    found: Select[Any] = (select(literal_column("rowid")).select_from(text("complaints_fts"))
                          .where(match))
    return ComplaintRow.id.in_(found)


def _search(term: str, dialect: str, indexed: bool) -> Any:
    columns = (ComplaintRow.text, ComplaintRow.number, ComplaintRow.address)
    # Case variants: neither SQLite's LIKE nor PostgreSQL's ILIKE under the C locale fold
    # Cyrillic case, and a server's locale is not ours to choose.
    variants = list(dict.fromkeys((term, term.lower(), term.capitalize(), term.upper())))
    patterns = [f"%{escape_like(v)}%" for v in variants]
    if dialect == "postgresql":
        exact = or_(*(c.ilike(p, escape="\\") for p in patterns for c in columns))
    elif not any("a" <= ch.lower() <= "z" for ch in term):
        # LIKE folds ASCII letters only: without any, instr() finds the same, twice as fast
        exact = or_(*(func.instr(c, v) > 0 for v in variants for c in columns))
    else:
        exact = or_(*(c.like(p, escape="\\") for p in patterns for c in columns))
    if not indexed or min(len(v) for v in variants) < INDEXED_SEARCH:
        return exact
    return and_(_candidates(variants, dialect), exact)


def conditions(flt: ComplaintFilter, dialect: str, *, indexed: bool = True) -> list[Any]:
    """The WHERE conditions of ``flt`` (exposed for tests of the builder); ``indexed``
    False: the search reads rows without the trigram index."""
    c = ComplaintRow
    where: list[Any] = []
    if flt.statuses:
        where.append(c.status.in_(flt.statuses))
    if flt.sector:
        where.append(c.sector == flt.sector)
    if flt.category:
        where.extend((c.sector == flt.category[0], c.category == flt.category[1]))
    if flt.agency:
        where.append(c.agency == flt.agency)
    if flt.municipality == NO_MUNICIPALITY:
        where.append(c.municipality.is_(None))
    elif flt.municipality:
        where.append(c.municipality == flt.municipality)
    if flt.channel:
        where.append(c.channel == flt.channel)
    if flt.open_only:
        where.append(c.status.in_(_OPEN))
    if flt.due_from is not None:
        where.append(c.resolution_due >= flt.due_from)
    if flt.due_before is not None:
        where.append(c.resolution_due < flt.due_before)
    if flt.created_from is not None:
        where.append(c.created_at >= flt.created_from)
    if flt.created_before is not None:
        where.append(c.created_at < flt.created_before)
    if flt.search.strip():
        where.append(_search(flt.search.strip(), dialect, indexed))
    return where


def _overdue(now: datetime) -> Any:
    return and_(ComplaintRow.status.in_(_OPEN), ComplaintRow.resolution_due < now)


def register_select(flt: ComplaintFilter, sort: Sort, dialect: str, *,
                    indexed: bool = True) -> Select[Any]:
    """The register's row query, sorted (id breaks ties), without paging."""
    column = SORT_COLUMNS[sort.column]
    order = column.desc() if sort.descending else column.asc()
    tie = ComplaintRow.id.desc() if sort.descending else ComplaintRow.id.asc()
    columns = [getattr(ComplaintRow, f.name) for f in fields(RegisterRow)]
    return (select(*columns).where(*conditions(flt, dialect, indexed=indexed))
            .order_by(order, tie))


async def register_page(session: AsyncSession, flt: ComplaintFilter, now: datetime, *,
                        sort: Sort | None = None, page: int = 1,
                        per_page: int = PER_PAGE) -> RegisterPage:
    """One page of the register (1-based; a page past the end is empty) with the total
    and overdue counts of everything ``flt`` matches."""
    dialect = session.get_bind().dialect.name
    page = max(1, page)
    where = conditions(flt, dialect)
    if flt.search.strip():  # count at most SEARCH_COUNT_CAP + 1 matches
        c = ComplaintRow
        found = (select(c.status, c.resolution_due).where(*where)
                 .limit(SEARCH_COUNT_CAP + 1).subquery())
        late = and_(found.c.status.in_(_OPEN), found.c.resolution_due < now)
        counts = select(func.count(), func.coalesce(func.sum(case((late, 1), else_=0)), 0)
                        ).select_from(found)
    else:
        counts = select(func.count(), func.coalesce(func.sum(case((_overdue(now), 1),
                                                                  else_=0)), 0)
                        ).select_from(ComplaintRow).where(*where)
    total, overdue = (await session.execute(counts)).one()
    capped = total > SEARCH_COUNT_CAP
    rows: list[RegisterRow] = []
    if capped or (page - 1) * per_page < total:  # else the page is empty: no second scan
        # SQLite looks every candidate of the index up and sorts them; with many matches,
        # reading rows in the sort's order finds a page's worth sooner (PostgreSQL's
        # planner weighs the two itself).
        indexed = dialect != "sqlite" or total <= SCAN_PAGE_AFTER
        query = register_select(flt, sort or Sort(), dialect, indexed=indexed)
        result = await session.execute(query.limit(per_page).offset((page - 1) * per_page))
        rows = [RegisterRow(*r) for r in result]
    return RegisterPage(rows, min(int(total), SEARCH_COUNT_CAP), int(overdue), page, per_page,
                        capped)


@dataclass(frozen=True, slots=True)
class BoardLine:
    """Open complaints of one agency or municipality (``key`` None: not known)."""

    key: str | None
    overdue: int
    due_today: int
    due_soon: int

    @property
    def total(self) -> int:
        return self.overdue + self.due_today + self.due_soon


async def deadline_board(session: AsyncSession, group_by: str, now: datetime,
                         today_end: datetime, soon_end: datetime) -> Sequence[BoardLine]:
    """Open complaints per ``group_by`` ("agency" or "municipality"): overdue (deadline
    before ``now``), due today (``now`` … ``today_end``) and due soon (``today_end`` …
    ``soon_end``). Worst first: most overdue, then most due today."""
    if group_by not in ("agency", "municipality"):
        raise ValueError(f"cannot group by {group_by!r}")
    # the covering index of migration 0009 (SQLite's planner would take the narrower
    # ix_complaints_status_due and read every open complaint's row)
    c = complaints_by("ix_complaints_board", session.get_bind().dialect.name).c
    key = getattr(c, group_by)
    due = c.resolution_due

    def count(condition: Any) -> Any:
        return func.coalesce(func.sum(case((condition, 1), else_=0)), 0)

    overdue = count(due < now).label("overdue")
    today = count(and_(due >= now, due < today_end)).label("today")
    soon = count(and_(due >= today_end, due < soon_end)).label("soon")
    query = (select(key, overdue, today, soon)
             .where(c.status.in_(_OPEN), due < max(soon_end, today_end))
             .group_by(key)
             .order_by(overdue.desc(), today.desc(), soon.desc(), key.is_(None), key))
    return [BoardLine(k, int(o), int(t), int(s)) for k, o, t, s in await session.execute(query)]
