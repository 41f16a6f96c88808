"""Ratings, reports, downloads and Open311 end to end: a real server over SQLite, headless
Chromium for the pages and downloads, a plain HTTP client for roles and the public API."""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import ClientSession, CookieJar
from openpyxl import load_workbook

from domain.complaint import Status
from domain.services import answer_complaint, change_status
from tests.e2e.browser import needs_chromium
from tests.e2e.portal_fixtures import PortalServer, Seed, start_portal
from tests.e2e.test_portal import browser_login, http_login

PHONE, EMAIL, NAME = "+7 928 123-45-67", "ivanov@example.ru", "Иванов Иван Иванович"
SEEDS = [
    Seed(f"Нет воды, звоните {PHONE}, {NAME}", days_ago=3, address="ул. Ленина, 5, кв. 12",
         location=(42.983456, 47.504321), photos=("web:abc123",)),
    Seed(f"=HYPERLINK(\"http://evil\") {EMAIL}", days_ago=2, municipality="derbent"),
    Seed("Яма на дороге", "roads", "potholes", days_ago=5, municipality="kaspiysk"),
    Seed("Шумят соседи по ночам", "other", "public_order", days_ago=1),
    Seed("Соседи шумят всю ночь", "other", "public_order", days_ago=1),
]


@pytest.fixture
async def portal(tmp_path: Path) -> AsyncIterator[PortalServer]:
    server, test_server = await start_portal(tmp_path, SEEDS)
    water = server.complaints[0]
    async with server.database.uow() as uow:
        await answer_complaint(uow, water.id or 0, "Бригада выехала", actor="op",
                               now=server.clock())
        await change_status(uow, water.id or 0, Status.CLOSED, actor="op", now=server.clock())
        await uow.commit()
    yield server
    await test_server.close()
    await server.database.dispose()


@pytest.fixture
async def http() -> AsyncIterator[ClientSession]:
    async with ClientSession(cookie_jar=CookieJar(unsafe=True)) as session:
        yield session


@needs_chromium
async def test_supervisor_opens_ratings_and_downloads_csv_and_xlsx(portal, browser_page,
                                                                    tmp_path):
    page = browser_page
    await browser_login(page, portal.url, "sergey")
    await page.wait_for_selector("nav.main-nav")
    await page.click('nav.main-nav a[href="/portal/ratings"]')
    await page.wait_for_selector("#by-agency table")
    assert "Рейтинг" in await page.inner_text("h1")
    town_rows = await page.inner_text("#by-municipality tbody")
    assert "Махачкала" in town_rows and "Дербент" in town_rows
    assert await page.locator("svg.chart").count() == 0  # nobody has 10 complaints yet
    await page.fill("input[name=min]", "1")
    await page.click("#period-form button[type=submit]")
    await page.wait_for_url(re.compile(r"min=1"))
    assert await page.locator("svg.chart").count() == 2  # one per table
    assert await page.locator("svg.chart rect.bar").count() == 3 + 3  # agencies, towns

    async with page.expect_download() as info:
        await page.click('#by-municipality a[data-download="csv"]')
    download = await info.value
    assert download.suggested_filename.endswith("-by-municipality.csv")
    raw = Path(await download.path()).read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")  # a BOM, so Excel reads the Cyrillic
    rows = list(csv.reader(io.StringIO(raw.decode("utf-8-sig"))))
    assert rows[0][:3] == ["Место", "Муниципалитет", "Обращения"]
    counts = {r[1]: int(r[2]) for r in rows[1:]}
    assert counts == {"Махачкала": 3, "Дербент": 1, "Каспийск": 1}

    async with page.expect_download() as info:
        await page.click('#by-agency a[data-download="xlsx"]')
    book = load_workbook(io.BytesIO(Path(await (await info.value).path()).read_bytes()))
    assert len(book.sheetnames) == 2
    sheet = book[book.sheetnames[1]]
    values = {r[1]: r[2] for r in sheet.iter_rows(min_row=2, values_only=True)}
    assert values == counts

    await page.goto(portal.url + "/portal/reports")
    await page.wait_for_selector("#categories table")
    assert "Отсутствие водоснабжения" in await page.inner_text("#categories")
    assert "шуметь" in await page.inner_text("#other-words")  # lemmas of both "other" texts
    async with page.expect_download() as info:
        await page.click('#period-form a[data-download="xlsx"]')
    book = load_workbook(io.BytesIO(Path(await (await info.value).path()).read_bytes()))
    assert len(book.sheetnames) == 5


@needs_chromium
async def test_register_and_deadline_board_download_what_they_show(portal, browser_page):
    page = browser_page
    await browser_login(page, portal.url, "sergey")
    await page.wait_for_selector("nav.main-nav")
    await page.goto(portal.url + "/portal/complaints?municipality=makhachkala&sort=number"
                    "&dir=asc")
    await page.wait_for_selector("#register tbody tr[data-number]")
    shown = [await row.get_attribute("data-number")
             for row in await page.locator("#register tbody tr[data-number]").all()]
    assert len(shown) == 3
    async with page.expect_download() as info:
        await page.click('#counts a[data-download="csv"]')
    download = await info.value
    assert download.suggested_filename.endswith(".csv")
    raw = Path(await download.path()).read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf") and raw.count(b"\xef\xbb\xbf") == 1
    rows = list(csv.reader(io.StringIO(raw.decode("utf-8-sig"))))
    assert rows[0][:3] == ["Номер", "Подано", "Статус"]
    assert [r[0] for r in rows[1:]] == shown  # the filter and the sort of the page
    assert {r[7] for r in rows[1:]} == {"Махачкала"}
    async with page.expect_download() as info:
        await page.click('#counts a[data-download="xlsx"]')
    book = load_workbook(io.BytesIO(Path(await (await info.value).path()).read_bytes()))
    assert [r[0] for r in book.active.iter_rows(min_row=2, values_only=True)] == shown

    await page.click('nav.main-nav a[href="/portal/deadlines"]')
    await page.wait_for_selector("#by-agency")
    on_page = await page.inner_text("#by-municipality tbody")
    async with page.expect_download() as info:
        await page.click('#by-municipality-card a[data-download="csv"]')
    raw = Path(await (await info.value).path()).read_bytes()
    rows = list(csv.reader(io.StringIO(raw.decode("utf-8-sig"))))
    assert rows[0] == ["Муниципалитет", "Просрочено", "Срок сегодня", "Срок скоро", "Всего"]
    assert len(rows) > 1 and all(r[0] in on_page for r in rows[1:])
    async with page.expect_download() as info:
        await page.click('#by-agency-card a[data-download="xlsx"]')
    book = load_workbook(io.BytesIO(Path(await (await info.value).path()).read_bytes()))
    assert len(book.sheetnames) == 2


async def test_register_csv_is_streamed_in_chunks_as_one_file(portal, http, monkeypatch):
    import portal.views.export as export

    monkeypatch.setattr(export, "CSV_CHUNK", 2)  # 5 complaints: three writes
    assert await http_login(http, portal.url, "olga") == 200
    async with http.get(portal.url + "/portal/complaints?format=csv&sort=number&dir=asc"
                        ) as resp:
        assert resp.status == 200 and resp.headers["Content-Type"].startswith("text/csv")
        raw = await resp.read()
    assert raw.count(b"\xef\xbb\xbf") == 1
    rows = list(csv.reader(io.StringIO(raw.decode("utf-8-sig"))))
    assert [r[0] for r in rows[1:]] == sorted(c.number for c in portal.complaints)


async def test_exports_quote_formulas_and_need_the_role(portal, http):
    assert await http_login(http, portal.url, "sergey") == 200
    async with http.get(portal.url + "/portal/complaints?format=csv") as resp:
        assert resp.status == 200
        assert "attachment" in resp.headers["Content-Disposition"]
        text = (await resp.read()).decode("utf-8-sig")
    texts = [r[9] for r in csv.reader(io.StringIO(text))][1:]
    assert f"'=HYPERLINK(\"http://evil\") {EMAIL}" in texts  # quoted, not a formula
    async with http.get(portal.url + "/portal/complaints?format=xlsx&sector=housing") as resp:
        book = load_workbook(io.BytesIO(await resp.read()))
    cells = [c for row in book.active.iter_rows() for c in row if isinstance(c.value, str)]
    evil = [c for c in cells if "HYPERLINK" in c.value]
    assert [c.value[:2] for c in evil] == ["'="] and evil[0].data_type == "s"
    assert not any(c.data_type == "f" for c in cells)
    async with http.get(portal.url + "/portal/deadlines?format=csv&table=by-agency") as resp:
        assert resp.status == 200 and "Просрочено" in (await resp.read()).decode("utf-8-sig")

    async with ClientSession(cookie_jar=CookieJar(unsafe=True)) as operator:
        assert await http_login(operator, portal.url, "olga") == 200
        for path in ("/portal/ratings", "/portal/reports", "/portal/ratings?format=csv",
                     "/portal/reports?format=xlsx", "/portal/deadlines?format=csv"):
            async with operator.get(portal.url + path) as resp:
                assert resp.status == 403, path
                assert "attachment" not in resp.headers.get("Content-Disposition", "")
        async with operator.get(portal.url + "/portal/complaints?format=csv") as resp:
            assert resp.status == 200  # operators see the register, so they may export it
    async with ClientSession() as anonymous, anonymous.get(
            portal.url + "/portal/ratings?format=csv", allow_redirects=False) as resp:
        assert resp.status == 303 and "/login" in resp.headers["Location"]


async def test_open311_publishes_no_personal_data(portal, http):
    base = portal.url + "/open311/v2"
    async with http.get(base + "/services.json") as resp:
        services = await resp.json()
    assert {"service_code": "roads.potholes", "group": "Дороги"}.items() <= {
        k: v for k, v in next(s for s in services if s["service_code"] == "roads.potholes"
                              ).items()}.items()
    async with http.get(base + "/requests.json") as resp:
        assert resp.status == 200 and resp.headers["Access-Control-Allow-Origin"] == "*"
        body = await resp.text()
    requests = json.loads(body)
    assert len(requests) == 5
    for secret in (PHONE, EMAIL, NAME, "Иванов", "Ленина", "кв. 12", "abc123", "HYPERLINK",
                   "Нет воды", "telegram", "citizen", "47.504321", "42.983456"):
        assert secret not in body, secret
    water = next(r for r in requests if r["service_request_id"] == portal.complaints[0].number)
    assert (water["status"], water["lat"], water["long"]) == ("closed", 42.983, 47.504)
    assert "description" not in water and "address" not in water and "media_url" not in water
    assert water["service_code"] == "housing.no_water"

    async with http.get(base + "/requests.json?status=open&service_code=roads.potholes"
                        ) as resp:
        assert [r["service_code"] for r in await resp.json()] == ["roads.potholes"]
    async with http.get(base + "/requests.json?page_size=2&page=3") as resp:
        assert len(await resp.json()) == 1
    async with http.get(base + "/requests.json?start_date=bad") as resp:
        assert resp.status == 400 and (await resp.json())[0]["code"] == 400
    async with http.get(f"{base}/requests/{portal.complaints[2].number}.json") as resp:
        [one] = await resp.json()
    assert one["service_request_id"] == portal.complaints[2].number
    assert one["status"] == "open" and one["expected_datetime"]
    async with http.get(base + "/requests/2026-999999.json") as resp:
        assert resp.status == 404


async def test_ratings_leave_a_long_catch_up_to_the_scheduler_and_say_so(
        portal, http, monkeypatch: pytest.MonkeyPatch):
    import portal.views.ratings as ratings_page
    from domain.calendar import WorkingCalendar
    from domain.storage.report_refresh import refresh

    def complaints(page: str) -> int:
        return int(re.search(r'id="summary">[^<]*<strong>(\d+)</strong>', page)[1])

    assert await http_login(http, portal.url, "sergey") == 200
    async with http.get(portal.url + "/portal/ratings") as resp:
        page = await resp.text()
    assert complaints(page) == 5 and 'id="behind"' not in page  # built by the page itself
    monkeypatch.setattr(ratings_page, "PAGE_REFRESH_DAYS", 1)
    for days_ago in (2, 4):  # changes on two local days: more than the page waits for
        await portal_seed(portal, days_ago)
    async with http.get(portal.url + "/portal/ratings") as resp:
        page = await resp.text()
    assert complaints(page) == 5 and 'id="behind"' in page  # the figures before the changes
    await refresh(portal.database.session_factory, portal.clock().astimezone(
        WorkingCalendar().tz).utcoffset())  # the scheduler's job
    async with http.get(portal.url + "/portal/ratings") as resp:
        page = await resp.text()
    assert complaints(page) == 7 and 'id="behind"' not in page


async def portal_seed(server: PortalServer, days_ago: float) -> None:
    from tests.e2e.portal_fixtures import seed_complaints

    await seed_complaints(server.database, [Seed("Ещё одна жалоба", days_ago=days_ago)],
                          server.clock())
