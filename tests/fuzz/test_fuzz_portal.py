"""Fuzzing the portal: arbitrary query strings, paths and form fields against the real
server over a migrated SQLite file, logged in (as an admin, who may use every route) and
with a valid CSRF token. Anything but a 5xx is fine: 4xx for what makes no sense.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from urllib.parse import quote

import pytest
import pytest_asyncio
from aiohttp import ClientSession, CookieJar
from hypothesis import given, settings
from hypothesis import strategies as st
from yarl import URL

from tests.e2e.portal_fixtures import PASSWORD, PortalServer, Seed, start_portal
from tests.fuzz import SPECIAL_TEXTS, any_text, examples

pytestmark = pytest.mark.asyncio(loop_scope="module")
SEEDS = [Seed("Во дворе нет воды <script>alert(1)</script>", address="ул. Ленина, 5"),
         Seed("Яма на дороге 100% _опасно_", "roads", "potholes", days_ago=30,
              municipality="kaspiysk", channel="vk")]


@dataclass(repr=False)
class Logged:
    portal: PortalServer
    http: ClientSession
    csrf: str
    numbers: list[str]

    def __repr__(self) -> str:  # keeps hypothesis' reports short
        return "Logged(admin)"


async def login(http: ClientSession, url: str, user: str) -> str:
    async with http.get(url + "/login") as resp:
        token = re.search(r'name="csrf" value="([^"]+)"', await resp.text())
    assert token is not None
    async with http.post(url + "/login", data={"login": user, "password": PASSWORD,
                                               "csrf": token.group(1)}) as resp:
        assert resp.status == 200, resp.status
        page = re.search(r'name="csrf" value="([^"]+)"', await resp.text())
    assert page is not None
    return page.group(1)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def admin(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Logged]:
    portal, server = await start_portal(tmp_path_factory.mktemp("portal"), SEEDS)
    async with ClientSession(cookie_jar=CookieJar(unsafe=True)) as http:
        csrf = await login(http, portal.url, "admin")
        yield Logged(portal, http, csrf, [c.number for c in portal.complaints])
    await server.close()
    await portal.database.dispose()


values = st.one_of(st.sampled_from(SPECIAL_TEXTS), any_text, st.sampled_from([
    "new", "closed", "housing", "roads", "housing/no_water", "roads/potholes", "makhachkala",
    "-", "none", "telegram", "vk", "web", "overdue", "today", "soon", "created_at",
    "resolution_due", "number", "asc", "desc", "2026-11-01", "2026-13-45", "9999-12-31",
    "0001-01-01", "1", "0", "-5", "99999999999999999999", "1e9", "csv", "xlsx", "json",
    "' OR 1=1 --", "%", "_", "\\", "a" * 5000]))
KEYS = ["status", "sector", "category", "agency", "municipality", "channel", "due", "from",
        "to", "q", "sort", "dir", "page", "days", "format", "complaint", "actor", "done",
        "next", "period", "group", "year", "month", "start", "end", "lang", "x"]
queries = st.lists(st.tuples(st.one_of(st.sampled_from(KEYS), any_text), values), max_size=8)
PAGES = ["/portal/complaints", "/portal/deadlines", "/portal/audit", "/portal/ratings",
         "/portal/reports", "/portal", "/portal/lang/en", "/portal/lang/ru", "/login"]


def check(status: int, what: str) -> None:
    assert status < 500, f"{status} for {what[:300]}"


@settings(max_examples=examples(50))
@given(page=st.sampled_from(PAGES + ["{complaint}"]), query=queries)
async def test_any_query_string_on_any_page_is_no_server_error(
        admin: Logged, page: str, query: list[tuple[str, str]]) -> None:
    path = f"/portal/complaints/{admin.numbers[0]}" if page == "{complaint}" else page
    async with admin.http.get(admin.portal.url + path, params=query,
                              allow_redirects=False) as resp:
        check(resp.status, f"{path} {query!r}")
        await resp.read()


segments = st.one_of(any_text, st.sampled_from([
    "..", ".", "%2e%2e", "%2F", "%00", "%ff", "%ED%A0%80", "2026-000001", "complaints",
    "reply", "static", "portal.css", "lang", "en", "uploads", "..%2F..%2Fetc%2Fpasswd"]))


@settings(max_examples=examples(40))
@given(parts=st.lists(segments, min_size=1, max_size=5), raw=st.booleans())
async def test_any_path_is_no_server_error(admin: Logged, parts: list[str], raw: bool) -> None:
    path = "/portal/" + "/".join(p if raw else quote(p, safe="") for p in parts)
    url = URL(admin.portal.url + path, encoded=True) if raw and path.isascii() \
        else URL(admin.portal.url + "/portal/" + "/".join(quote(p, safe="") for p in parts),
                 encoded=True)
    async with admin.http.get(url, allow_redirects=False) as resp:
        check(resp.status, path)
        await resp.read()


# field names an HTTP client can send (aiohttp refuses control characters in them itself)
names = st.text(st.characters(min_codepoint=32, exclude_categories=("Cs", "Cc")), max_size=30)
forms = st.dictionaries(st.one_of(st.sampled_from(
    ["text", "status", "reason", "original", "category", "csrf", "next", "login",
     "password"]), names), values, max_size=6)


@settings(max_examples=examples(50))
@given(action=st.sampled_from(["reply", "status", "reclassify"]), which=st.integers(0, 2),
       form=forms, keep_csrf=st.booleans())
async def test_any_complaint_form_is_no_server_error(admin: Logged, action: str, which: int,
                                                     form: dict[str, str],
                                                     keep_csrf: bool) -> None:
    number = admin.numbers[which] if which < len(admin.numbers) else "2026-999999"
    data = {**form, "csrf": admin.csrf} if keep_csrf else form
    async with admin.http.post(f"{admin.portal.url}/portal/complaints/{number}/{action}",
                               data=data, allow_redirects=False) as resp:
        check(resp.status, f"{action} {form!r}")
        await resp.read()


@settings(max_examples=examples(15))
@given(form=forms)
async def test_any_login_form_is_no_server_error(admin: Logged, form: dict[str, str]) -> None:
    async with ClientSession(cookie_jar=CookieJar(unsafe=True)) as http:
        async with http.get(admin.portal.url + "/login") as resp:
            token = re.search(r'name="csrf" value="([^"]+)"', await resp.text())
        assert token is not None
        data = {"csrf": token.group(1), **form} if "csrf" not in form else form
        async with http.post(admin.portal.url + "/login", data=data,
                             allow_redirects=False) as resp:
            check(resp.status, f"login {form!r}")
            location = resp.headers.get("Location", "/portal")
            assert location.startswith("/portal") and not location.startswith("//"), location
