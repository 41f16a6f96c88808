"""The portal under attack: CSRF on every POST route, stored XSS on every page, open
redirects, header injection, path traversal, over-long inputs and the session cookie."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio
from aiohttp import ClientSession, CookieJar, web
from yarl import URL

from domain.services import answer_complaint
from portal import setup_portal
from tests.e2e.portal_fixtures import PASSWORD, PortalServer, Seed, start_portal
from tests.fakes.dialogue import catalogue

SCRIPT = "<script>alert(1)</script>"
ATTR = '"onmouseover=alert(2) x="'
JS_URL = "javascript:alert(3)"
EVIL = f"{SCRIPT} {ATTR} {JS_URL} Во дворе нет воды"
SEEDS = [Seed(EVIL, address=f"ул. {SCRIPT}{ATTR}", photos=(f"web:{ATTR}", f"telegram:{JS_URL}")),
         Seed("Яма на дороге", "roads", "potholes", days_ago=30, municipality="kaspiysk",
              channel="vk")]


pytestmark = pytest.mark.asyncio(loop_scope="module")


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def portal(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[PortalServer]:
    server, test_server = await start_portal(tmp_path_factory.mktemp("portal"), SEEDS)
    yield server
    await test_server.close()
    await server.database.dispose()


@pytest_asyncio.fixture(loop_scope="module")
async def http() -> AsyncIterator[ClientSession]:
    async with ClientSession(cookie_jar=CookieJar(unsafe=True)) as session:
        yield session


async def login_token(http: ClientSession, url: str) -> str:
    async with http.get(url + "/login") as resp:
        found = re.search(r'name="csrf" value="([^"]+)"', await resp.text())
    assert found is not None
    return found.group(1)


async def login(http: ClientSession, url: str, user: str = "admin", *,
                next_: str = "") -> str:
    """Log in; returns the session's CSRF token (from the page after login)."""
    token = await login_token(http, url)
    async with http.post(url + "/login", data={"login": user, "password": PASSWORD,
                                               "csrf": token, "next": next_}) as resp:
        assert resp.status == 200
        found = re.search(r'name="csrf" value="([^"]+)"', await resp.text())
    assert found is not None
    return found.group(1)


def post_routes(portal_url: str, number: str) -> list[str]:
    """Every POST route of a portal app, its placeholders filled in."""
    app = web.Application()
    setup_portal(app, database=None, catalogue=catalogue(), clock=lambda: None)  # type: ignore[arg-type]
    paths = []
    for route in app.router.routes():
        if route.method != "POST":
            continue
        info = route.resource.get_info() if route.resource else {}
        path = info.get("path") or info.get("formatter", "")
        paths.append(portal_url + path.replace("{number}", number).replace("{id}", "1"))
    return sorted(set(paths))


# --- CSRF ---------------------------------------------------------------------------------

async def test_every_post_route_refuses_a_missing_or_forged_csrf_token(portal, http):
    number = portal.complaints[1].number
    routes = post_routes(portal.url, number)
    assert any(r.endswith("/reply") for r in routes) and portal.url + "/login" in routes
    await login(http, portal.url)
    forms = {"text": "Ответ", "status": "in_progress", "reason": "x",
             "category": "roads/potholes", "login": "admin", "password": PASSWORD}
    for url in routes:
        for csrf in (None, "", "forged-token", "x" * 10_000):
            data = dict(forms) if csrf is None else {**forms, "csrf": csrf}
            async with http.post(url, data=data, allow_redirects=False) as resp:
                assert resp.status == 403, f"{url} with csrf={csrf!r:.20}: {resp.status}"
    async with portal.database.uow() as uow:
        complaint = await uow.complaints.by_number(number)
    assert complaint is not None and str(complaint.status) == "new"
    assert [h.kind for h in complaint.history] == ["registered"]


async def test_another_sessions_token_is_refused(portal, http):
    other = await login(http, portal.url, "olga")
    async with ClientSession(cookie_jar=CookieJar(unsafe=True)) as mine:
        await login(mine, portal.url, "admin")
        url = f"{portal.url}/portal/complaints/{portal.complaints[1].number}/reply"
        async with mine.post(url, data={"text": "x", "csrf": other}) as resp:
            assert resp.status == 403


# --- stored XSS ---------------------------------------------------------------------------

async def test_hostile_text_is_escaped_on_every_page(portal, http):
    water = portal.complaints[0]
    async with portal.database.uow() as uow:  # an operator named like an attack (back office)
        await answer_complaint(uow, water.id, f"Ответ {SCRIPT}", actor=f"{SCRIPT}{ATTR} (tg:1)",
                               now=portal.clock())
        await uow.commit()
    await login(http, portal.url)
    pages = ["/portal/complaints", f"/portal/complaints?q={SCRIPT}",
             f"/portal/complaints/{water.number}", "/portal/deadlines", "/portal/audit",
             f"/portal/audit?actor={SCRIPT}", "/portal/ratings", "/portal/reports",
             f"/login?next={ATTR}", f"/portal/complaints/{SCRIPT}"]
    for page in pages:
        async with http.get(portal.url + page) as resp:
            assert resp.status < 500, page
            body = await resp.text()
        assert "<script>alert" not in body, page
        assert 'onmouseover=alert' not in body.replace("&#34;onmouseover", ""), page
        assert not re.search(r"""(href|src|action)\s*=\s*["']?\s*javascript:""", body, re.I), page
        if resp.content_type == "text/html" and resp.status == 200:
            assert "script-src 'self'" in resp.headers.get("Content-Security-Policy", "") or \
                "default-src 'none'" in resp.headers.get("Content-Security-Policy", ""), page


async def test_the_web_chat_page_renders_messages_as_text_only() -> None:
    static = Path(__file__).resolve().parents[2] / "bots" / "web" / "static"
    script = (static / "chat.js").read_text(encoding="utf-8")
    assert "innerHTML" not in script and "insertAdjacentHTML" not in script
    assert "document.write" not in script and "eval(" not in script


# --- redirects and headers ----------------------------------------------------------------

REDIRECTS = [
    "//evil.example", "//evil.example/portal", "https://evil.example/", "/\\evil.example",
    "/portal//evil.example", "/portal\\..\\evil", "http:/evil.example", "\t//evil.example",
    "/portal\r\nSet-Cookie: owned=1", "/portal\nLocation: //evil.example", "/%2F%2Fevil.example",
    "javascript:alert(1)", "/portal@evil.example"]


async def test_no_open_redirect_or_header_injection_after_login(portal, http):
    for target in REDIRECTS:
        await redirected_safely(portal, http, target)


async def redirected_safely(portal: PortalServer, http: ClientSession, target: str) -> None:
    token = await login_token(http, portal.url)
    async with http.post(portal.url + "/login", allow_redirects=False,
                         data={"login": "olga", "password": PASSWORD, "csrf": token,
                               "next": target}) as resp:
        assert resp.status == 303, resp.status
        location = resp.headers["Location"]
    assert location.startswith("/portal") and not location.startswith("//"), location
    assert "\r" not in location and "\n" not in location and "owned" not in str(resp.cookies)
    async with http.get(portal.url + "/portal/lang/en", params={"next": target},
                        allow_redirects=False) as resp:
        assert resp.status == 303, resp.status
        assert resp.headers["Location"].startswith("/portal")
        assert not resp.headers["Location"].startswith("//")


async def test_session_cookie_flags(portal, http):
    token = await login_token(http, portal.url)
    async with http.post(portal.url + "/login", allow_redirects=False,
                         data={"login": "olga", "password": PASSWORD, "csrf": token}) as resp:
        cookie = resp.cookies["tsur_portal"]
    assert cookie["httponly"] and cookie["samesite"] == "Lax" and cookie["path"] == "/"
    assert 40 <= len(cookie.value) <= 128  # 256 random bits, never the stored hash


# --- path traversal -----------------------------------------------------------------------

TRAVERSALS = ["../app.py", "..%2Fapp.py", "%2e%2e/app.py", "%2e%2e%2fapp.py",
              "..%5capp.py", "....//app.py", "%252e%252e%252fapp.py", "/etc/passwd",
              "..%2F..%2F..%2F..%2Fetc%2Fpasswd", "%00", "portal.css%00.py"]


async def test_no_path_traversal_under_portal_static(portal, http):
    for evil in TRAVERSALS:
        url = URL(f"{portal.url}/portal/static/{evil}", encoded=True)
        async with http.get(url, allow_redirects=False) as resp:
            body = await resp.read()
            assert resp.status in (400, 403, 404), (evil, resp.status)
            assert b"setup_portal" not in body and b"root:" not in body, evil
    async with http.get(portal.url + "/portal/static/portal.css") as resp:
        assert resp.status == 200


# --- over-long inputs ---------------------------------------------------------------------

async def test_over_long_inputs_are_refused_politely(portal, http):
    token = await login_token(http, portal.url)
    for login_, password in (("a" * 100_000, PASSWORD), ("olga", "p" * 200_000),
                             ("o" * 300_000, "p" * 300_000)):
        async with http.post(portal.url + "/login", allow_redirects=False,
                             data={"login": login_, "password": password,
                                   "csrf": token}) as resp:
            assert 400 <= resp.status < 500, resp.status
    csrf = await login(http, portal.url)
    number = portal.complaints[0].number
    async with http.get(portal.url + "/portal/complaints", params={"q": "я" * 100_000}) as resp:
        assert resp.status < 500
    async with http.get(portal.url + "/portal/audit", params={"actor": "x" * 50_000,
                                                              "complaint": "9" * 50_000}) as resp:
        assert resp.status < 500
    async with http.get(f"{portal.url}/portal/complaints/{'9' * 5000}") as resp:
        assert resp.status == 404
    base = f"{portal.url}/portal/complaints/{number}"
    for action, data in (("reply", {"text": "я" * 100_000}),
                         ("status", {"status": "in_progress", "reason": "я" * 100_000}),
                         ("status", {"status": "duplicate", "reason": "x",
                                     "original": "9" * 100_000}),
                         ("reclassify", {"category": "roads/" + "x" * 100_000})):
        async with http.post(f"{base}/{action}", data={**data, "csrf": csrf},
                             allow_redirects=False) as resp:
            assert resp.status < 500, (action, resp.status)
    async with http.post(f"{base}/reply", data={"text": "я" * 3_000_000, "csrf": csrf},
                         allow_redirects=False) as resp:
        assert resp.status == 413  # over the request size limit


async def test_nul_characters_are_refused_with_400(portal, http):
    """PostgreSQL refuses NUL in text; the portal answers 400 before any query runs."""
    token = await login_token(http, portal.url)
    async with http.post(portal.url + "/login", allow_redirects=False,
                         data={"login": "adm\x00in", "password": PASSWORD,
                               "csrf": token}) as resp:
        assert resp.status == 400
    csrf = await login(http, portal.url)
    for params in ({"q": "вода\x00"}, {"actor": "a\x00"}):
        async with http.get(portal.url + "/portal/complaints", params=params) as resp:
            assert resp.status == 400
    async with http.get(portal.url + "/portal/complaints/2026-000001%00") as resp:
        assert resp.status == 400
    number = portal.complaints[0].number
    async with http.post(f"{portal.url}/portal/complaints/{number}/reply",
                         data={"text": "ответ\x00", "csrf": csrf},
                         allow_redirects=False) as resp:
        assert resp.status == 400
    async with http.get(portal.url + "/portal/complaints", params={"q": "%00 и _"}) as resp:
        assert resp.status == 200  # the characters "%00" typed as text are fine
