"""``GET /portal/complaints``: the complaint register with filters, sorting and pages."""

from __future__ import annotations

from functools import partial

from aiohttp import web

from domain.complaint import OPEN_STATUSES, Status
from domain.storage.queries import NO_MUNICIPALITY, PER_PAGE, SORT_COLUMNS, register_page
from portal.access import Permission
from portal.app import Portal
from portal.sessions import LoggedIn
from portal.views.export import EXPORT_LIMIT
from portal.views.filters import (
    CHANNELS,
    link,
    parse_filter,
    parse_page,
    parse_sort,
    soon_days,
    windows,
)

PATH = "/portal/complaints"


def add_routes(router: web.UrlDispatcher, portal: Portal) -> None:
    async def register(request: web.Request, user: LoggedIn) -> web.StreamResponse:
        query = request.query
        win = windows(portal.clock(), portal.calendar, soon_days(query.get("days")))
        flt = parse_filter(query, portal.catalogue, portal.calendar, win)
        sort = parse_sort(query)
        async with portal.database.session_factory() as session:
            page = await register_page(session, flt, win.now, sort=sort,
                                       page=parse_page(query), per_page=PER_PAGE)
        return portal.render(
            request, "complaints.html", user, page=page, flt=flt, sort=sort, q=query,
            now=win.now, open_statuses=OPEN_STATUSES, statuses=list(Status),
            sectors=portal.catalogue.sectors, agencies=sorted(
                portal.catalogue.agencies.values(), key=lambda a: a.short_name),
            municipalities=portal.catalogue.municipalities, channels=CHANNELS,
            no_municipality=NO_MUNICIPALITY, sortable=SORT_COLUMNS,
            export_limit=f"{EXPORT_LIMIT:,}".replace(",", "\u202f"),
            link=partial(link, PATH, query))

    router.add_get(PATH, portal.guard(Permission.VIEW_REGISTER, register))
