"""CSV and XLSX downloads of the portal's tables (``?format=csv|xlsx``).

A page builds its tables as :class:`Table` values and hands them to :func:`respond`, which
returns a download when the query asks for one. CSV holds one table (``?table=<id>``, the
first by default), UTF-8 with a BOM so that Excel reads the Cyrillic; XLSX holds every
table of the page, one sheet each.

Formula injection: a text cell that starts with ``=``, ``+``, ``-``, ``@``, a tab or a
carriage return is prefixed with ``'`` in both formats (a spreadsheet would otherwise run
it as a formula), and in XLSX it is also stored with the string type. Numbers stay numbers.

The register and the deadline board get their downloads through :func:`export_middleware`
(``GET /portal/complaints?…&format=csv``), with the same filters and role as the page; the
register's file holds every page of the filter and sort, up to :data:`EXPORT_LIMIT` rows,
its CSV streamed and its XLSX written by openpyxl's write-only workbook.
"""

from __future__ import annotations

import asyncio
import csv
import io
import re
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from aiohttp import web

if TYPE_CHECKING:
    from portal.app import Portal
    from portal.sessions import LoggedIn

FORMATS = ("csv", "xlsx")
DANGEROUS = ("=", "+", "-", "@", "\t", "\r")
XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
DOWNLOAD_HEADERS = {"X-Content-Type-Options": "nosniff", "Cache-Control": "no-store"}


@dataclass(frozen=True, slots=True)
class Table:
    """One exportable table: ``id`` names it in ``?table=`` and in file and sheet names."""

    id: str
    title: str
    headers: Sequence[str]
    rows: Sequence[Sequence[Any]]


def safe_cell(value: Any) -> Any:
    """``value`` fit for a spreadsheet cell: text that could start a formula is quoted,
    timestamps lose their time zone (the portal shows local times), None becomes empty."""
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.replace(tzinfo=None)
    if isinstance(value, bool | int | float):
        return value
    text = str(value)
    return "'" + text if text.startswith(DANGEROUS) else text


def to_csv(table: Table) -> bytes:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\r\n")
    writer.writerow([safe_cell(h) for h in table.headers])
    for row in table.rows:
        writer.writerow([_csv_text(safe_cell(v)) for v in row])
    return buf.getvalue().encode("utf-8-sig")


def _csv_text(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M")
    if isinstance(value, float):
        return f"{value:.4g}" if abs(value) < 1e4 else f"{value:.0f}"
    return value


def to_xlsx(tables: Sequence[Table]) -> bytes:
    from openpyxl import Workbook  # imported on first download only
    from openpyxl.utils import get_column_letter

    book = Workbook()
    book.remove(book.active)
    used: set[str] = set()
    for table in tables:
        sheet = book.create_sheet(_sheet_name(table.title or table.id, used))
        sheet.append([safe_cell(h) for h in table.headers])
        for cell in sheet[1]:
            cell.data_type = "s"
        for r, row in enumerate(table.rows, start=2):
            for c, value in enumerate(row, start=1):
                cell = sheet.cell(row=r, column=c, value=safe_cell(value))
                if isinstance(cell.value, str):
                    cell.data_type = "s"  # never "f", whatever the text looks like
                elif isinstance(cell.value, datetime):
                    cell.number_format = "DD.MM.YYYY HH:MM"
        for c, header in enumerate(table.headers, start=1):
            sheet.column_dimensions[get_column_letter(c)].width = max(10, min(40,
                                                                              len(header) + 2))
        sheet.freeze_panes = "A2"
    buf = io.BytesIO()
    book.save(buf)
    return buf.getvalue()


def _sheet_name(title: str, used: set[str]) -> str:
    # Excel: at most 31 characters, none of []:*?/\ and unique in the book.
    base = re.sub(r"[\[\]:*?/\\]", " ", title).strip()[:28] or "Sheet"
    name, n = base, 1
    while name.lower() in used:
        n += 1
        name = f"{base[:26]} {n}"
    used.add(name.lower())
    return name


def slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-") or "export"


def requested(request: web.Request) -> str | None:
    fmt = request.query.get("format")
    return fmt if fmt in FORMATS else None


def download(tables: Sequence[Table], fmt: str, basename: str,
             table_id: str | None = None) -> web.Response:
    """The file of ``tables`` in ``fmt``; 404 when ``table_id`` names none of them."""
    if fmt == "csv":
        chosen = next((t for t in tables if t.id == table_id), None) if table_id else (
            tables[0] if tables else None)
        if chosen is None:
            raise web.HTTPNotFound(text="no such table")
        body, ctype = to_csv(chosen), "text/csv"
        name = f"{slug(basename)}-{slug(chosen.id)}.csv"
    else:
        body, ctype, name = to_xlsx(tables), XLSX_TYPE, f"{slug(basename)}.xlsx"
    headers = {**DOWNLOAD_HEADERS, "Content-Disposition": f'attachment; filename="{name}"'}
    return web.Response(body=body, content_type=ctype,
                        charset="utf-8" if fmt == "csv" else None, headers=headers)


def respond(request: web.Request, tables: Sequence[Table], basename: str
            ) -> web.Response | None:
    """A download when the query asks for one (``format``, ``table``), else None."""
    fmt = requested(request)
    if fmt is None:
        return None
    return download(tables, fmt, basename, request.query.get("table"))


Exporter = Callable[[web.Request], Awaitable[web.StreamResponse]]


def export_middleware(exporters: dict[str, Exporter]) -> Any:
    """Route ``GET <path>?format=csv|xlsx`` to ``exporters[path]`` (already guarded)."""

    @web.middleware
    async def middleware(request: web.Request, handler: Any) -> web.StreamResponse:
        if request.method == "GET" and requested(request) and request.path in exporters:
            return await exporters[request.path](request)
        return await handler(request)

    return middleware


EXPORT_LIMIT = 100_000  # rows of one register download
CSV_CHUNK = 1000  # rows per write of a streamed CSV


async def stream_csv(request: web.Request, table: Table, rows: Iterable[Sequence[Any]],
                     filename: str) -> web.StreamResponse:
    """``table``'s headers and ``rows`` as a CSV written out :data:`CSV_CHUNK` rows at a
    time (the file is never held whole in memory); the same cells as :func:`to_csv`."""
    response = web.StreamResponse(headers={
        **DOWNLOAD_HEADERS, "Content-Type": "text/csv; charset=utf-8",
        "Content-Disposition": f'attachment; filename="{filename}"'})
    await response.prepare(request)
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\r\n")
    writer.writerow([safe_cell(h) for h in table.headers])
    first = True
    for i, row in enumerate(rows, start=1):
        writer.writerow([_csv_text(safe_cell(v)) for v in row])
        if i % CSV_CHUNK == 0:
            await response.write(buf.getvalue().encode("utf-8-sig" if first else "utf-8"))
            buf.seek(0)
            buf.truncate()
            first = False
    await response.write(buf.getvalue().encode("utf-8-sig" if first else "utf-8"))
    await response.write_eof()
    return response


def xlsx_write_only(table: Table, rows: Iterable[Sequence[Any]]) -> bytes:
    """One sheet with openpyxl's write-only workbook (rows go to a temporary file, not to
    a tree of cell objects); the same cells as :func:`to_xlsx`. Text never becomes a
    formula: :func:`safe_cell` quotes whatever starts like one."""
    from openpyxl import Workbook
    from openpyxl.cell import WriteOnlyCell
    from openpyxl.utils import get_column_letter

    book = Workbook(write_only=True)
    sheet = book.create_sheet(_sheet_name(table.title or table.id, set()))
    for c, header in enumerate(table.headers, start=1):
        sheet.column_dimensions[get_column_letter(c)].width = max(10, min(40, len(header) + 2))
    sheet.freeze_panes = "A2"
    sheet.append([safe_cell(h) for h in table.headers])
    for row in rows:
        cells: list[Any] = []
        for value in map(safe_cell, row):
            if isinstance(value, datetime):
                cell = WriteOnlyCell(sheet, value=value)
                cell.number_format = "DD.MM.YYYY HH:MM"
                cells.append(cell)
            else:
                cells.append(value)
        sheet.append(cells)
    buf = io.BytesIO()
    book.save(buf)
    return buf.getvalue()


def page_exporters(portal: Portal) -> dict[str, Exporter]:
    """Downloads of the register (every page of the current filter and sort, up to
    :data:`EXPORT_LIMIT` rows) and of the deadline board, guarded like their pages."""
    from domain.storage.queries import RegisterRow, deadline_board, register_select
    from portal.access import Permission
    from portal.i18n import translations
    from portal.labels import Names
    from portal.views.filters import parse_filter, parse_sort, soon_days, windows

    def names_of(request: web.Request) -> tuple[Callable[[str], str], Names]:
        lang = portal.language(request)
        gettext = translations(lang).gettext
        return gettext, Names(portal.catalogue, lang, gettext)

    def local(value: datetime | None) -> datetime | None:
        return value.astimezone(portal.calendar.tz) if value else None

    async def register(request: web.Request, _user: LoggedIn) -> web.StreamResponse:
        _, names = names_of(request)
        win = windows(portal.clock(), portal.calendar, soon_days(request.query.get("days")))
        flt = parse_filter(request.query, portal.catalogue, portal.calendar, win)
        # Read at once, then write: on SQLite every session holds the write lock, so a
        # slow client must not keep one open while the file goes out.
        async with portal.database.session_factory() as session:
            dialect = session.get_bind().dialect.name
            result = await session.execute(
                register_select(flt, parse_sort(request.query), dialect).limit(EXPORT_LIMIT))
            rows = [RegisterRow(*r) for r in result]
        headers = [_("Number"), _("Filed"), _("Status"), _("Channel"), _("Sector"),
                   _("Category"), _("Agency"), _("Municipality"), _("Address"), _("Text"),
                   _("First answer due"), _("First answer"), _("Resolution due")]

        def line(r: RegisterRow) -> list[Any]:
            return [r.number, local(r.created_at), names.status(r.status),
                    names.channel(r.channel), names.sector(r.sector),
                    names.category(r.sector, r.category), names.agency(r.agency),
                    names.municipality(r.municipality), r.address, r.text,
                    local(r.first_answer_due), local(r.first_answered_at),
                    local(r.resolution_due)]

        table = Table("complaints", _("Complaints"), headers, [])
        if requested(request) == "xlsx":
            body = await asyncio.to_thread(xlsx_write_only, table, map(line, rows))
            return web.Response(body=body, content_type=XLSX_TYPE, headers={
                **DOWNLOAD_HEADERS,
                "Content-Disposition": 'attachment; filename="complaints.xlsx"'})
        return await stream_csv(request, table, map(line, rows), "complaints-complaints.csv")

    async def board(request: web.Request, _user: LoggedIn) -> web.StreamResponse:
        _, names = names_of(request)
        win = windows(portal.clock(), portal.calendar, soon_days(request.query.get("days")))
        tables = []
        async with portal.database.session_factory() as session:
            for group_by, title, label, name in (
                    ("agency", _("By agency"), _("Agency"), names.agency),
                    ("municipality", _("By municipality"), _("Municipality"),
                     names.municipality)):
                lines = await deadline_board(session, group_by, win.now, win.today_end,
                                             win.soon_end)
                tables.append(Table(f"by-{group_by}", title, [
                    label, _("Overdue"), _("Due today"), _("Due soon"), _("Total")],
                    [[name(x.key), x.overdue, x.due_today, x.due_soon, x.total]
                     for x in lines]))
        return download(tables, requested(request) or "csv", "deadlines",
                        request.query.get("table"))

    return {
        "/portal/complaints": portal.guard(Permission.VIEW_REGISTER, register),
        "/portal/deadlines": portal.guard(Permission.VIEW_DEADLINES, board),
    }
