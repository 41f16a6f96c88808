"""``GET /portal/deadlines``: open complaints overdue, due today and due soon, per agency
and per municipality, each number linking into the filtered register; CSV and XLSX
downloads of both tables (served by :mod:`portal.views.export`)."""

from __future__ import annotations

from functools import partial
from urllib.parse import urlencode

from aiohttp import web

from domain.storage.queries import NO_MUNICIPALITY, BoardLine, deadline_board
from portal.access import Permission
from portal.app import Portal
from portal.sessions import LoggedIn
from portal.views.filters import link, soon_days, windows


def register_link(group_by: str, key: str | None, due: str, days: int) -> str:
    """The register filtered to one cell of the board."""
    params = {group_by: key if key is not None else NO_MUNICIPALITY, "due": due,
              "sort": "resolution_due", "dir": "asc"}
    if due == "soon":
        params["days"] = str(days)
    return f"/portal/complaints?{urlencode(params)}"


def totals(lines: list[BoardLine]) -> BoardLine:
    return BoardLine(None, sum(x.overdue for x in lines), sum(x.due_today for x in lines),
                     sum(x.due_soon for x in lines))


def add_routes(router: web.UrlDispatcher, portal: Portal) -> None:
    async def board(request: web.Request, user: LoggedIn) -> web.StreamResponse:
        win = windows(portal.clock(), portal.calendar, soon_days(request.query.get("days")))
        async with portal.database.session_factory() as session:
            agencies = list(await deadline_board(session, "agency", win.now, win.today_end,
                                                 win.soon_end))
            municipalities = list(await deadline_board(session, "municipality", win.now,
                                                       win.today_end, win.soon_end))
        return portal.render(request, "deadlines.html", user, win=win, agencies=agencies,
                             municipalities=municipalities, total=totals(agencies),
                             link=register_link,
                             export_link=partial(link, "/portal/deadlines", request.query))

    router.add_get("/portal/deadlines", portal.guard(Permission.VIEW_DEADLINES, board))
