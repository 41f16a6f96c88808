"""The staff portal end to end: a real server over a migrated SQLite file, driven from
headless Chromium and, for forged requests, from a plain HTTP client."""

from __future__ import annotations

import re
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import ClientSession, CookieJar, web
from aiohttp.test_utils import TestServer

from domain.events import ComplaintAnswered
from portal import setup_portal
from portal.users import disable_user, list_users
from tests.e2e.browser import needs_chromium
from tests.e2e.portal_fixtures import PASSWORD, PortalServer, Seed, start_portal
from tests.fakes.dialogue import catalogue

XSS = "<script>alert(1)</script> Во дворе нет воды"
SEEDS = [
    Seed(XSS, days_ago=1, address="ул. Ленина, 5", photos=("web:abc123", "telegram:AgAD"),
         location=(42.98, 47.5)),
    Seed("Яма на дороге у школы", "roads", "potholes", days_ago=30, municipality="kaspiysk",
         channel="vk"),
    Seed("Свалка у реки", "waste", "illegal_dump", days_ago=2, municipality="derbent",
         channel="web"),
]


@pytest.fixture
async def portal(tmp_path: Path) -> AsyncIterator[PortalServer]:
    server, test_server = await start_portal(tmp_path, SEEDS)
    yield server
    await test_server.close()
    await server.database.dispose()


def db_file(portal: PortalServer) -> str:
    return str(portal.database.engine.url.database)


def audit_rows(portal: PortalServer) -> list[tuple[str, str, str | None, str, str]]:
    with sqlite3.connect(db_file(portal)) as conn:
        return list(conn.execute("SELECT actor, action, complaint_number, old, new "
                                 "FROM portal_audit WHERE action NOT IN ('user_add', 'login') "
                                 "ORDER BY id"))


def status_of(portal: PortalServer, number: str) -> str:
    with sqlite3.connect(db_file(portal)) as conn:
        return conn.execute("SELECT status FROM complaints WHERE number = ?",
                            (number,)).fetchone()[0]


# --- a plain HTTP client ------------------------------------------------------------------
async def http_login(http: ClientSession, url: str, login: str,
                     password: str = PASSWORD) -> int:
    async with http.get(url + "/login") as resp:
        token = re.search(r'name="csrf" value="([^"]+)"', await resp.text())
    assert token is not None
    async with http.post(url + "/login", data={"login": login, "password": password,
                                                "csrf": token.group(1)}) as resp:
        return resp.status


async def csrf_of(http: ClientSession, page_url: str) -> str:
    async with http.get(page_url) as resp:
        assert resp.status == 200
        found = re.search(r'name="csrf" value="([^"]+)"', await resp.text())
    assert found is not None
    return found.group(1)


@pytest.fixture
async def http() -> AsyncIterator[ClientSession]:
    # The default jar ignores cookies of bare IP addresses such as 127.0.0.1.
    async with ClientSession(cookie_jar=CookieJar(unsafe=True)) as session:
        yield session


# --- in the browser -----------------------------------------------------------------------
async def browser_login(page, url: str, login: str, password: str = PASSWORD) -> None:
    await page.goto(url + "/login")
    await page.fill("input[name=login]", login)
    await page.fill("input[name=password]", password)
    await page.click("button[type=submit]")


@needs_chromium
async def test_operator_filters_opens_answers_and_closes_a_complaint(portal, browser_page):
    page = browser_page
    dialogs: list[str] = []
    page.on("dialog", lambda d: dialogs.append(d.message))
    water, pit, _dump = portal.complaints
    await page.goto(portal.url + "/portal/complaints")
    assert "/login" in page.url  # not logged in yet
    await browser_login(page, portal.url, "olga")
    await page.wait_for_selector("#register")
    assert await page.locator("#register tbody tr[data-number]").count() == 3
    assert "Найдено: 3" in await page.inner_text("#counts")
    assert await page.locator(f'tr.overdue[data-number="{pit.number}"]').count() == 1

    await page.select_option("select[name=sector]", "roads")
    await page.click("#filters button[type=submit]")
    await page.wait_for_url(re.compile(r"sector=roads"))
    rows = page.locator("#register tbody tr[data-number]")
    assert await rows.count() == 1 and await rows.first.get_attribute("data-number") == pit.number
    await page.fill("input[name=q]", "нет такого")
    await page.click("#filters button[type=submit]")
    await page.wait_for_selector("td.empty")
    await page.goto(portal.url + "/portal/complaints?q=воды")
    await page.click(f"text={water.number}")

    await page.wait_for_selector("#history")
    assert XSS in await page.inner_text("#history")  # shown as text ...
    assert dialogs == []  # ... and never run
    assert await page.locator("#history script").count() == 0
    assert "Отсутствие водоснабжения" in await page.inner_text("#classification")
    assert "87%" in await page.inner_text("#classification")
    assert await page.get_attribute('a[href="/chat/uploads/abc123"]', "href")
    assert "telegram:AgAD" in await page.inner_text(".photos")
    osm = page.locator('a[href^="https://www.openstreetmap.org/"]')
    assert "mlat=42.98" in (await osm.get_attribute("href") or "")

    await page.fill("#reply-form textarea", "Бригада выехала, воду дадут к вечеру.")
    await page.click("#reply-form button")
    await page.wait_for_selector("#notice")
    assert await page.inner_text("#status") == "Дан ответ"
    answer = page.locator("#history .entry-operator_message")
    assert "Бригада выехала" in await answer.inner_text()
    assert "portal:olga" in await answer.inner_text()
    [event] = [e for e in portal.events if isinstance(e, ComplaintAnswered)]
    assert (event.complaint_id, event.actor) == (water.id, "portal:olga")
    assert event.text == "Бригада выехала, воду дадут к вечеру."

    await page.select_option("#status-form select[name=status]", "closed")
    await page.fill("#status-form input[name=reason]", "Вода есть, заявитель подтвердил")
    await page.click("#status-form button")
    await page.wait_for_selector("#notice")
    assert await page.inner_text("#status") == "Закрыто"
    assert "Вода есть" in await page.inner_text("#history")
    assert status_of(portal, water.number) == "closed"
    assert audit_rows(portal) == [
        ("olga", "reply", water.number, "new", "answered"),
        ("olga", "status", water.number, "answered", "closed"),
    ]


@needs_chromium
async def test_operator_reclassifies_and_links_a_duplicate(portal, browser_page):
    page = browser_page
    water, pit, dump = portal.complaints
    await browser_login(page, portal.url, "olga")
    await page.goto(f"{portal.url}/portal/complaints/{dump.number}")
    await page.select_option("#reclassify-form select", "roads/potholes")
    await page.click("#reclassify-form button")
    await page.wait_for_selector("#notice")
    assert "Ямы на дороге" in await page.inner_text("#classification")
    assert "задано оператором" in await page.inner_text("#classification")
    assert "Переклассификация" in await page.inner_text("#history")
    # Kaspiysk's pothole is a municipal category: Derbent's administration answers now.
    expected = catalogue().responsible_agency("roads", "potholes", "derbent")
    assert await page.inner_text("#agency") == expected.name

    await page.select_option("#status-form select[name=status]", "duplicate")
    await page.fill("#status-form input[name=reason]", "Та же яма")
    await page.fill("#status-form input[name=original]", "2026-999999")
    await page.click("#status-form button")
    await page.wait_for_selector("#error-message")
    assert "номер исходного" in await page.inner_text("#error-message")
    await page.select_option("#status-form select[name=status]", "duplicate")
    await page.fill("#status-form input[name=reason]", "Та же яма")
    await page.fill("#status-form input[name=original]", pit.number)
    await page.click("#status-form button")
    await page.wait_for_selector("#notice")
    assert await page.inner_text("#status") == "Дубликат"
    await page.click(f'a[href="/portal/complaints/{pit.number}"]')
    await page.wait_for_selector(f"text=Обращение {pit.number}")
    assert [row[1:] for row in audit_rows(portal)] == [
        ("reclassify", dump.number, "waste/illegal_dump", "roads/potholes"),
        ("status", dump.number, "new", "duplicate"),
    ]
    assert water.number not in {row[2] for row in audit_rows(portal)}


@needs_chromium
async def test_five_wrong_passwords_lock_the_login(portal, browser_page):
    page = browser_page
    for _ in range(5):
        await browser_login(page, portal.url, "olga", "wrong password")
        assert "Неверный логин или пароль" in await page.inner_text("#error-message")
    await browser_login(page, portal.url, "olga")  # even the right password, for now
    assert "Слишком много неудачных попыток" in await page.inner_text("#error-message")
    await browser_login(page, portal.url, "sergey")  # another login is not locked
    await page.wait_for_selector("#register")


@needs_chromium
async def test_supervisor_follows_the_deadline_board_into_the_register(portal, browser_page):
    page = browser_page
    _water, pit, _dump = portal.complaints
    await browser_login(page, portal.url, "sergey")
    await page.click("nav.main-nav >> text=Сроки")
    await page.wait_for_selector("#by-agency")
    assert "Просрочено: 1" in (await page.inner_text("#summary")).replace("\n", " ")
    kaspiysk = page.locator('#by-municipality tr[data-key="kaspiysk"]')
    assert "Каспийск" in await kaspiysk.inner_text()
    await kaspiysk.locator('a[data-cell="overdue"]').click()
    await page.wait_for_url(re.compile(r"municipality=kaspiysk.*due=overdue"))
    rows = page.locator("#register tbody tr[data-number]")
    assert await rows.count() == 1
    assert await rows.first.get_attribute("data-number") == pit.number
    assert await rows.first.get_attribute("class") == "overdue"
    await page.goto(f"{portal.url}/portal/complaints/{pit.number}")
    assert await page.locator("#reply-form").count() == 0  # read-only for a supervisor
    await page.click("nav.main-nav >> text=Журнал изменений")
    await page.wait_for_selector("#audit")


# --- forged and forbidden requests --------------------------------------------------------
async def test_a_supervisor_cannot_post_a_reply_even_with_a_valid_token(portal, http):
    water = portal.complaints[0]
    page_url = f"{portal.url}/portal/complaints/{water.number}"
    assert await http_login(http, portal.url, "sergey") == 200
    token = await csrf_of(http, page_url)
    for action, data in (("reply", {"text": "Ответ"}), ("status", {"status": "in_progress",
                                                                    "reason": "x"}),
                         ("reclassify", {"category": "roads/potholes"})):
        async with http.post(f"{page_url}/{action}", data={**data, "csrf": token}) as resp:
            assert resp.status == 403
            assert "не даёт доступа" in await resp.text()
    assert status_of(portal, water.number) == "new" and audit_rows(portal) == []


async def test_pages_are_refused_to_roles_without_them(portal, http):
    assert await http_login(http, portal.url, "olga") == 200
    async with http.get(portal.url + "/portal/deadlines") as resp:
        assert resp.status == 403  # operators work the register, supervisors the board
    async with http.get(portal.url + "/portal/audit") as resp:
        assert resp.status == 403
    http.cookie_jar.clear()
    assert await http_login(http, portal.url, "kamila") == 200  # communications
    async with http.get(portal.url + "/portal/complaints") as resp:
        assert resp.status == 200
        assert "reply-form" not in await resp.text()
    token = await csrf_of(http, f"{portal.url}/portal/complaints/{portal.complaints[0].number}")
    async with http.post(f"{portal.url}/portal/complaints/{portal.complaints[0].number}/reply",
                         data={"text": "x", "csrf": token}) as resp:
        assert resp.status == 403
    async with http.get(portal.url + "/portal/deadlines") as resp:
        assert resp.status == 403


async def test_forms_without_the_session_token_are_refused(portal, http):
    water = portal.complaints[0]
    url = f"{portal.url}/portal/complaints/{water.number}/reply"
    assert await http_login(http, portal.url, "olga") == 200
    for data in ({"text": "Ответ"}, {"text": "Ответ", "csrf": ""},
                 {"text": "Ответ", "csrf": "forged-token"}):
        async with http.post(url, data=data) as resp:
            assert resp.status == 403
            assert "Форма устарела" in await resp.text()
    async with http.post(portal.url + "/login", data={"login": "olga", "password": PASSWORD},
                         allow_redirects=False) as resp:
        assert resp.status == 403  # the login form has its own token
    assert status_of(portal, water.number) == "new" and audit_rows(portal) == []


async def test_anonymous_requests_go_to_the_login_page_or_are_refused(portal, http):
    async with http.get(portal.url + "/portal/complaints?sector=roads&channel=vk",
                        allow_redirects=False) as resp:
        assert resp.status == 303 and resp.headers["Location"].startswith("/login?next=")
    async with http.get(portal.url + "/portal/complaints?sector=roads&channel=vk") as resp:
        assert resp.url.path == "/login"  # ... which returns there afterwards
        assert 'name="next" value="/portal/complaints?sector=roads&amp;channel=vk"' in (
            await resp.text())
    async with http.post(f"{portal.url}/portal/complaints/{portal.complaints[0].number}/reply",
                         data={"text": "x"}) as resp:
        assert resp.status == 403


async def test_illegal_transitions_and_empty_answers_are_refused(portal, http):
    water = portal.complaints[0]
    page_url = f"{portal.url}/portal/complaints/{water.number}"
    assert await http_login(http, portal.url, "olga") == 200
    token = await csrf_of(http, page_url)
    async with http.post(page_url + "/status", data={"status": "closed", "reason": "x",
                                                     "csrf": token}) as resp:
        assert resp.status == 409  # new → closed is not a transition
    async with http.post(page_url + "/status", data={"status": "in_progress", "reason": "",
                                                     "csrf": token}) as resp:
        assert resp.status == 400
    async with http.post(page_url + "/reply", data={"text": "   ", "csrf": token}) as resp:
        assert resp.status == 400
    async with http.post(page_url + "/reclassify", data={"category": "roads/no_water",
                                                         "csrf": token}) as resp:
        assert resp.status == 400
    async with http.get(f"{portal.url}/portal/complaints/2026-999999") as resp:
        assert resp.status == 404
    assert status_of(portal, water.number) == "new" and audit_rows(portal) == []


async def test_session_cookie_flags_logout_and_disabled_users(portal, http):
    async with http.get(portal.url + "/login") as resp:
        token = re.search(r'name="csrf" value="([^"]+)"', await resp.text())
    assert token is not None
    async with http.post(portal.url + "/login", allow_redirects=False,
                         data={"login": "OLGA", "password": PASSWORD,
                               "csrf": token.group(1)}) as resp:
        assert resp.status == 303 and resp.headers["Location"] == "/portal"
        cookie = resp.cookies["tsur_portal"]
    assert cookie["httponly"] and cookie["samesite"] == "Lax" and not cookie["secure"]
    async with http.get(portal.url + "/portal/complaints") as resp:
        assert resp.status == 200
        assert resp.headers["Content-Security-Policy"].startswith("default-src 'none'")
    logout_token = await csrf_of(http, portal.url + "/portal/complaints")
    async with http.post(portal.url + "/logout", data={"csrf": logout_token}) as resp:
        assert resp.url.path == "/login"
    http.cookie_jar.update_cookies({"tsur_portal": cookie.value})  # replay the old cookie
    async with http.get(portal.url + "/portal/complaints", allow_redirects=False) as resp:
        assert resp.status == 303

    assert await http_login(http, portal.url, "sergey") == 200
    await disable_user(portal.database, "sergey")
    async with http.get(portal.url + "/portal/complaints", allow_redirects=False) as resp:
        assert resp.status == 303  # the session ended with the account
    assert await http_login(http, portal.url, "sergey") == 401
    users = {u.login: (u.role, u.active) for u in await list_users(portal.database)}
    assert users["sergey"] == ("supervisor", False) and users["olga"] == ("operator", True)


async def test_cookies_are_secure_when_configured(portal, http):
    app = web.Application()
    setup_portal(app, database=portal.database, catalogue=catalogue(), clock=portal.clock,
                 secure_cookies=True)
    server = TestServer(app, host="127.0.0.1", port=0)
    await server.start_server()
    try:
        url = str(server.make_url("")).rstrip("/")
        async with http.get(url + "/login") as resp:
            assert resp.cookies["tsur_portal_login"]["secure"]
            token = re.search(r'name="csrf" value="([^"]+)"', await resp.text())
        assert token is not None
        # A Secure cookie is not sent back over plain HTTP: post it by hand.
        async with http.post(url + "/login", allow_redirects=False,
                             headers={"Cookie": f"tsur_portal_login={token.group(1)}"},
                             data={"login": "olga", "password": PASSWORD,
                                   "csrf": token.group(1)}) as resp:
            assert resp.status == 303
            assert resp.cookies["tsur_portal"]["secure"]
    finally:
        await server.close()


async def test_the_interface_speaks_english_on_request(portal, http):
    assert await http_login(http, portal.url, "olga") == 200
    async with http.get(portal.url + "/portal/lang/en?next=/portal/complaints") as resp:
        text = await resp.text()
    assert "Found: 3" in text and "Найдено" not in text
    async with http.get(portal.url + "/portal/lang/en?next=https://evil.example/",
                        allow_redirects=False) as resp:
        assert resp.headers["Location"] == "/portal"
