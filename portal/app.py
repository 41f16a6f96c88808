"""The portal's shared state, the access guard, and :func:`setup_portal`.

Every portal page goes through :meth:`Portal.guard`: no session → the login page (GET) or
403 (POST); a POST without the session's CSRF token → 403; a role without the route's
permission → 403, for GET and POST alike.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from functools import partial
from pathlib import Path
from typing import Any
from urllib.parse import quote

from aiohttp import web

from domain.calendar import WorkingCalendar
from domain.catalogue import Catalogue
from domain.storage.uow import Database
from portal.access import Permission, allowed
from portal.i18n import local_time, pick_language, translations
from portal.labels import N_, Names
from portal.render import Renderer
from portal.security import LoginRateLimiter, same_token
from portal.sessions import LoggedIn, SessionStore

SESSION_COOKIE = "tsur_portal"
LANG_COOKIE = "tsur_portal_lang"
STATIC_DIR = Path(__file__).resolve().parent / "static"
Handler = Callable[[web.Request, LoggedIn], Awaitable[web.StreamResponse]]

# The navigation, in order; later parts (ratings, broadcasts, Open311) add their entries.
NAVIGATION: list[tuple[Permission, str, str]] = [
    (Permission.VIEW_REGISTER, "/portal/complaints", N_("Complaints")),
    (Permission.VIEW_DEADLINES, "/portal/deadlines", N_("Deadlines")),
    (Permission.VIEW_AUDIT, "/portal/audit", N_("Audit log")),
    (Permission.VIEW_RATINGS, "/portal/ratings", N_("Ratings")),
    (Permission.VIEW_RATINGS, "/portal/reports", N_("Reports")),
    (Permission.MANAGE_BROADCASTS, "/portal/broadcasts", N_("Broadcasts")),
]


@dataclass
class Portal:
    """Everything the handlers share; one per mounted portal."""

    database: Database
    catalogue: Catalogue
    clock: Callable[[], datetime]
    calendar: WorkingCalendar
    secure_cookies: bool = False
    renderer: Renderer = field(default_factory=Renderer)
    sessions: SessionStore = field(init=False)
    limiter: LoginRateLimiter = field(init=False)

    def __post_init__(self) -> None:
        self.sessions = SessionStore(self.database)
        self.limiter = LoginRateLimiter(self.clock)

    def language(self, request: web.Request) -> str:
        return pick_language(request.cookies.get(LANG_COOKIE))

    def render(self, request: web.Request, template: str, user: LoggedIn | None, *,
               status: int = 200, **context: Any) -> web.Response:
        """A page with the layout's context: user, navigation, CSRF token, names."""
        lang = self.language(request)
        nav = [(href, label) for perm, href, label in NAVIGATION
               if user is not None and allowed(user.role, perm)]
        names = Names(self.catalogue, lang, translations(lang).gettext)
        return self.renderer.page(template, lang, status, user=user, nav=nav, names=names,
                                  path=request.path, csrf=user.csrf if user else "",
                                  when=partial(local_time, tz=self.calendar.tz), **context)

    def error(self, request: web.Request, user: LoggedIn | None, status: int,
              message: str) -> web.Response:
        return self.render(request, "error.html", user, status=status, code=status,
                           message=message)

    def guard(self, permission: Permission, handler: Handler) -> Callable[
            [web.Request], Awaitable[web.StreamResponse]]:
        """Wrap ``handler`` with the session, CSRF and role checks."""

        async def guarded(request: web.Request) -> web.StreamResponse:
            user = await self.sessions.lookup(request.cookies.get(SESSION_COOKIE), self.clock())
            if user is None:
                if request.method == "GET":
                    raise web.HTTPSeeOther(f"/login?next={quote(request.path_qs)}")
                return self.error(request, None, 403, N_("Your session has ended. Log in again."))
            if request.method == "POST":
                form = await request.post()
                token = form.get("csrf")
                if not same_token(user.csrf, token if isinstance(token, str) else None):
                    return self.error(request, user, 403,
                                      N_("The form has expired. Reload the page and try again."))
            if not allowed(user.role, permission):
                return self.error(request, user, 403, N_("Your role does not give access here."))
            return await handler(request, user)

        return guarded


PORTAL = web.AppKey("portal", Portal)
_STAFF_PATHS = ("/portal", "/login", "/logout", "/open311")


@web.middleware
async def refuse_nul(request: web.Request, handler: Any) -> web.StreamResponse:
    """A NUL character in a staff request's path, query or form is never meaningful and
    PostgreSQL refuses it in text: answer 400 instead of failing deep in a query."""
    if request.path.startswith(_STAFF_PATHS):
        parts = [request.path, *request.query.keys(), *request.query.values()]
        if request.method == "POST" and request.content_type in (
                "application/x-www-form-urlencoded", "multipart/form-data"):
            form = await request.post()
            parts += [f"{k}={v}" for k, v in form.items() if isinstance(v, str)]
        if any("\x00" in part for part in parts):
            raise web.HTTPBadRequest(text="NUL characters are not accepted")
    return await handler(request)


def setup_portal(app: web.Application, *, database: Database, catalogue: Catalogue,
                 clock: Callable[[], datetime], secure_cookies: bool = False,
                 calendar: WorkingCalendar | None = None) -> Portal:
    """Add the portal to ``app``: ``/login``, ``/logout``, everything under ``/portal``, and
    the public, read-only Open311 GeoReport v2 endpoints under ``/open311/v2``.

    ``database`` must be migrated (the portal's tables come with revision 0003).
    ``secure_cookies`` marks cookies Secure (set it behind HTTPS). ``calendar`` counts the
    working days of the deadline board (default: Moscow office hours).
    """
    from portal.open311 import setup_open311
    from portal.views import (
        audit,
        broadcasts,
        complaint,
        deadlines,
        export,
        login,
        ratings,
        register,
        reports,
    )

    portal = Portal(database, catalogue, clock, calendar or WorkingCalendar(), secure_cookies)
    app[PORTAL] = portal
    app.middlewares.append(refuse_nul)
    login.add_routes(app.router, portal)
    register.add_routes(app.router, portal)
    complaint.add_routes(app.router, portal)
    deadlines.add_routes(app.router, portal)
    audit.add_routes(app.router, portal)
    ratings.add_routes(app.router, portal)
    reports.add_routes(app.router, portal)
    broadcasts.add_routes(app.router, portal)
    # ?format=csv|xlsx on the register and the deadline board, with their own guards
    app.middlewares.append(export.export_middleware(export.page_exporters(portal)))
    setup_open311(app, database=database, catalogue=catalogue, clock=clock,
                  tz=portal.calendar.tz)
    app.router.add_static("/portal/static", STATIC_DIR)
    return portal
