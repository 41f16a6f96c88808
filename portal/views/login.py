"""``/login``, ``/logout``, the portal's home and the language switch.

The login form has no session yet, so its CSRF token is a double-submit cookie: a random
value in a SameSite cookie that the form must repeat.
"""

from __future__ import annotations

from aiohttp import web

from domain.storage.portal_orm import PortalAuditRow
from portal.access import Permission, allowed
from portal.app import LANG_COOKIE, NAVIGATION, SESSION_COOKIE, Portal
from portal.i18n import LANGUAGES
from portal.labels import N_
from portal.security import new_token, same_token
from portal.sessions import LoggedIn
from portal.users import authenticate

LOGIN_CSRF_COOKIE = "tsur_portal_login"


def safe_next(raw: str | None) -> str:
    """Only a path inside the portal: never another site (``//evil``, ``/\\evil``), nor a
    control character (CR/LF would be a header injection; aiohttp refuses it with a 500)."""
    if raw and raw.startswith("/portal") and "\\" not in raw and "//" not in raw \
            and raw.isprintable():
        return raw
    return "/portal"


def see_other(location: str) -> web.Response:
    """A 303 redirect that cookies can still be set on."""
    return web.Response(status=303, headers={"Location": location})


def _client(request: web.Request) -> str:
    return request.remote or "unknown"


def add_routes(router: web.UrlDispatcher, portal: Portal) -> None:
    async def login_form(request: web.Request, *, status: int = 200, error: str = "",
                         login: str = "") -> web.Response:
        token = new_token()
        response = portal.render(request, "login.html", None, status=status, login_csrf=token,
                                 error=error, login=login,
                                 next=safe_next(request.query.get("next")))
        response.set_cookie(LOGIN_CSRF_COOKIE, token, httponly=True, samesite="Strict",
                            secure=portal.secure_cookies, path="/login")
        return response

    async def show_login(request: web.Request) -> web.Response:
        return await login_form(request)

    async def do_login(request: web.Request) -> web.StreamResponse:
        form = await request.post()
        login, password = str(form.get("login", "")), str(form.get("password", ""))
        if not same_token(request.cookies.get(LOGIN_CSRF_COOKIE), str(form.get("csrf", ""))):
            return await login_form(request, status=403, login=login,
                                    error=N_("The form has expired. Try again."))
        key = portal.limiter.key(login, _client(request))
        if portal.limiter.blocked(key):
            return portal.error(request, None, 429,
                                N_("Too many failed attempts. Try again in 15 minutes."))
        now = portal.clock()
        user = await authenticate(portal.database, login, password, now)
        if user is None:
            portal.limiter.failed(key)
            return await login_form(request, status=401, login=login,
                                    error=N_("Wrong login or password."))
        portal.limiter.succeeded(key)
        token = await portal.sessions.create(user.id, now)
        async with portal.database.session_factory() as session:
            session.add(PortalAuditRow(at=now, actor=user.login, action="login",
                                       detail=_client(request)))
            await session.commit()
        response = see_other(safe_next(str(form.get("next", ""))))
        response.set_cookie(SESSION_COOKIE, token, httponly=True, samesite="Lax",
                            secure=portal.secure_cookies, path="/",
                            max_age=int(portal.sessions.lifetime.total_seconds()))
        response.del_cookie(LOGIN_CSRF_COOKIE, path="/login")
        return response

    async def logout(request: web.Request, user: LoggedIn) -> web.StreamResponse:
        await portal.sessions.end(user.token_hash)
        response = see_other("/login")
        response.del_cookie(SESSION_COOKIE, path="/")
        return response

    async def home(request: web.Request, user: LoggedIn) -> web.StreamResponse:
        for permission, href, _label in NAVIGATION:
            if allowed(user.role, permission):
                raise web.HTTPSeeOther(href)
        return portal.error(request, user, 403, N_("Your role does not give access here."))

    async def language(request: web.Request) -> web.StreamResponse:
        lang = request.match_info["lang"]
        if lang not in LANGUAGES:
            raise web.HTTPNotFound()
        response = see_other(safe_next(request.query.get("next")))
        response.set_cookie(LANG_COOKIE, lang, samesite="Lax", secure=portal.secure_cookies,
                            path="/", max_age=365 * 86400)
        return response

    router.add_get("/login", show_login)
    router.add_post("/login", do_login)
    router.add_post("/logout", portal.guard(Permission.VIEW_REGISTER, logout))
    router.add_get("/portal", portal.guard(Permission.VIEW_REGISTER, home))
    router.add_get("/portal/", portal.guard(Permission.VIEW_REGISTER, home))
    router.add_get("/portal/lang/{lang}", language)
