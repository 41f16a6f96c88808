"""Open311 GeoReport v2, read only: ``services.json``, ``requests.json`` and
``requests/{service_request_id}.json``, public, without login.

No personal data leaves through here. A request carries its number, category, status,
responsible agency, municipality, times and coordinates rounded to 3 decimals (about 100 m,
so a pin no longer points at one house). Left out on purpose:

- ``description``: a citizen's own text names people, phones, flats, illnesses; masking
  phones and e-mails with patterns would still let names and flat numbers through, so the
  text is not published at all (``service_name`` says what the problem is);
- ``address``: a street address with a flat is a home address;
- ``media_url``: photos show faces and number plates; citizen ids and channels are never
  published either.

Errors follow the spec: a JSON list of ``{"code", "description"}`` with that HTTP status.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from aiohttp import web
from sqlalchemy import and_, or_, select

from domain.catalogue import Catalogue
from domain.complaint import OPEN_STATUSES
from domain.storage.orm import ComplaintRow
from domain.storage.uow import Database

PREFIX = "/open311/v2"
DEFAULT_DAYS = 90
PAGE_SIZE = 100
MAX_PAGE_SIZE = 500
COORD_DIGITS = 3
LANG = "ru"
_OPEN = tuple(str(s) for s in OPEN_STATUSES)
HEADERS = {"Access-Control-Allow-Origin": "*", "X-Content-Type-Options": "nosniff",
           "Cache-Control": "public, max-age=60"}
COLUMNS = (ComplaintRow.number, ComplaintRow.status, ComplaintRow.sector,
           ComplaintRow.category, ComplaintRow.agency, ComplaintRow.municipality,
           ComplaintRow.created_at, ComplaintRow.updated_at, ComplaintRow.resolution_due,
           ComplaintRow.latitude, ComplaintRow.longitude)


def service_code(sector: str, category: str) -> str:
    return f"{sector}.{category}"


def _json(data: Any, status: int = 200) -> web.Response:
    return web.json_response(data, status=status, headers=HEADERS)


def _error(status: int, description: str) -> web.Response:
    return _json([{"code": status, "description": description}], status)


def services(catalogue: Catalogue) -> list[dict[str, Any]]:
    return [{"service_code": service_code(s.slug, c.slug), "service_name": c.name(LANG),
             "description": f"{s.name(LANG)}: {c.name(LANG)}", "metadata": False,
             "type": "realtime", "keywords": "", "group": s.name(LANG)}
            for s in catalogue.sectors for c in s.categories]


def public_request(row: Any, catalogue: Catalogue) -> dict[str, Any]:
    """The public view of one complaint row (see the module's docstring for what is left
    out and why)."""
    (number, status, sector, category, agency, municipality, created, updated, due, lat,
     lon) = row
    try:
        name = catalogue.category(sector, category).name(LANG)
    except KeyError:
        name = category
    try:
        place = catalogue.municipality(municipality).name(LANG) if municipality else None
    except KeyError:
        place = None
    known = catalogue.agencies.get(agency)
    return {
        "service_request_id": number,
        "status": "open" if status in _OPEN else "closed",
        "service_name": name,
        "service_code": service_code(sector, category),
        "agency_responsible": known.name if known else agency,
        "municipality": place,
        "requested_datetime": created.isoformat(),
        "updated_datetime": (updated or created).isoformat(),
        "expected_datetime": due.isoformat() if status in _OPEN else None,
        "lat": round(lat, COORD_DIGITS) if lat is not None else None,
        "long": round(lon, COORD_DIGITS) if lon is not None else None,
    }


def _when(raw: str, tz: Any) -> datetime:
    value = datetime.fromisoformat(raw.strip().replace(" ", "+"))  # "+" arrives as a space
    return value if value.tzinfo else value.replace(tzinfo=tz)


def _int(raw: str | None, default: int, low: int, high: int) -> int:
    value = int(raw) if raw else default
    if not low <= value <= high:
        raise ValueError(f"must be between {low} and {high}")
    return value


def setup_open311(app: web.Application, *, database: Database, catalogue: Catalogue,
                  clock: Any, tz: Any) -> None:
    """Add the read-only Open311 endpoints under :data:`PREFIX`."""

    async def list_services(_request: web.Request) -> web.Response:
        return _json(services(catalogue))

    async def list_requests(request: web.Request) -> web.Response:
        q = request.query
        try:
            end = _when(q["end_date"], tz) if q.get("end_date") else clock()
            start = (_when(q["start_date"], tz) if q.get("start_date")
                     else end - timedelta(days=DEFAULT_DAYS))
            page = _int(q.get("page"), 1, 1, 100_000)
            size = _int(q.get("page_size"), PAGE_SIZE, 1, MAX_PAGE_SIZE)
        except ValueError as exc:
            return _error(400, f"bad parameter: {exc}")
        c = ComplaintRow
        query = select(*COLUMNS).where(c.created_at >= start, c.created_at <= end)
        codes = [x for x in q.get("service_code", "").split(",") if x]
        if codes:
            pairs = [tuple(x.split(".", 1)) for x in codes if "." in x]
            if not pairs:
                return _json([])
            query = query.where(or_(*(and_(c.sector == a, c.category == b)
                                      for a, b in pairs)))
        wanted = {x for x in q.get("status", "").split(",") if x}
        if wanted - {"open", "closed"}:
            return _error(400, "status must be open, closed or both")
        if wanted == {"open"}:
            query = query.where(c.status.in_(_OPEN))
        elif wanted == {"closed"}:
            query = query.where(c.status.not_in(_OPEN))
        ids = [x for x in q.get("service_request_id", "").split(",") if x][:MAX_PAGE_SIZE]
        if ids:
            query = query.where(c.number.in_(ids))
        query = query.order_by(c.created_at.desc(), c.id.desc()).limit(size).offset(
            (page - 1) * size)
        async with database.session_factory() as session:
            rows = (await session.execute(query)).all()
        return _json([public_request(r, catalogue) for r in rows])

    async def one_request(request: web.Request) -> web.Response:
        number = request.match_info["id"][:32]
        async with database.session_factory() as session:
            row = (await session.execute(select(*COLUMNS).where(
                ComplaintRow.number == number))).first()
        if row is None:
            return _error(404, f"no service request {number}")
        return _json([public_request(row, catalogue)])

    app.router.add_get(f"{PREFIX}/services.json", list_services)
    app.router.add_get(f"{PREFIX}/requests.json", list_requests)
    app.router.add_get(PREFIX + "/requests/{id}.json", one_request)
