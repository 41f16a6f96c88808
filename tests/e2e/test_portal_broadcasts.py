"""The broadcasts pages end to end: a real server over SQLite with seeded citizens, headless
Chromium for composing and watching a broadcast, a plain HTTP client for the controls and
for forged or forbidden requests."""

from __future__ import annotations

import re
import sqlite3
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest
from aiohttp import ClientSession, CookieJar

from domain.broadcast import Audience
from domain.citizen import Citizen, Identity
from notifications.broadcasts import BroadcastService
from notifications.delivery import DeliveryWorker
from tests.e2e.browser import needs_chromium
from tests.e2e.portal_fixtures import PortalServer, Seed, start_portal
from tests.e2e.test_portal import browser_login, csrf_of, http_login
from tests.fakes.dialogue import catalogue
from tests.fakes.messenger import FakeMessenger

HOSTILE = "<script>alert(1)</script> Плановое отключение воды в Махачкале"
SEEDS = [Seed("Нет воды", days_ago=2),
         Seed("Яма на дороге", "roads", "potholes", municipality="kaspiysk", channel="vk")]
# (channel, chat, language, subscribed municipality, opted out)
CITIZENS = [("telegram", "t1", "ru", "makhachkala", False),
            ("telegram", "t2", "en", "makhachkala", False),
            ("telegram", "t3", "ru", "derbent", False),
            ("vk", "v1", "ru", "makhachkala", False),
            ("vk", "v2", "ru", "makhachkala", False),  # has blocked the community
            ("telegram", "t4", "ru", "makhachkala", True)]  # pressed "unsubscribe"


@pytest.fixture
async def portal(tmp_path: Path) -> AsyncIterator[PortalServer]:
    server, test_server = await start_portal(tmp_path, SEEDS)
    async with server.database.uow() as uow:
        for channel, chat, lang, muni, opted_out in CITIZENS:
            await uow.citizens.add(Citizen([Identity(channel, chat, chat)], language=lang,
                                           subscribed_municipality=muni,
                                           broadcast_opt_out=opted_out,
                                           created_at=server.clock() - timedelta(days=9)))
        await uow.commit()
    yield server
    await test_server.close()
    await server.database.dispose()


@pytest.fixture
async def http() -> AsyncIterator[ClientSession]:
    async with ClientSession(cookie_jar=CookieJar(unsafe=True)) as session:
        yield session


def service(portal: PortalServer) -> BroadcastService:
    return BroadcastService(portal.database, catalogue=catalogue(), clock=portal.clock)


def audit_rows(portal: PortalServer) -> list[tuple[str, str, str, str]]:
    with sqlite3.connect(str(portal.database.engine.url.database)) as conn:
        return list(conn.execute("SELECT actor, action, old, new FROM portal_audit "
                                 "WHERE action LIKE 'broadcast_%' ORDER BY id"))


async def deliver(portal: PortalServer, messengers: dict[str, FakeMessenger]) -> None:
    async def no_wait(_seconds: float) -> None:
        return None

    for channel, messenger in messengers.items():
        worker = DeliveryWorker(portal.database.uow, channel, messenger, clock=portal.clock,
                                sleep=no_wait)
        while await worker.run_once():
            pass


@needs_chromium
async def test_compose_count_preview_schedule_and_watch_it_complete(portal, browser_page):
    page = browser_page
    dialogs: list[str] = []
    page.on("dialog", lambda d: dialogs.append(d.message))
    await browser_login(page, portal.url, "kamila")
    await page.click('nav.main-nav a[href="/portal/broadcasts"]')
    await page.wait_for_selector("#broadcasts td.empty")
    await page.click("#new-broadcast")
    await page.fill("textarea[name=text]", HOSTILE)
    await page.fill("input[name=link_label_0]", "Подробнее")
    await page.fill("input[name=link_url_0]", "https://rcr.example/news/1")
    await page.select_option("select[name=municipality]", ["makhachkala"])
    await page.click("#count")
    await page.wait_for_selector("#audience-count")
    expected = await service(portal).audience(Audience(municipalities=("makhachkala",)))
    assert expected == 4  # t1, t2, v1, v2: not Derbent, not the one who unsubscribed
    assert await page.inner_text("#audience-count") == str(expected)
    ru = page.locator('#preview .phone[data-lang="ru"]')
    assert HOSTILE in await ru.locator(".bubble").inner_text()  # shown as text ...
    assert "🔗 Подробнее: https://rcr.example/news/1" in await ru.inner_text()
    assert "🔕 Отписаться от рассылки" in await ru.locator(".msg-button").inner_text()
    assert "Unsubscribe from news" in await page.inner_text('#preview .phone[data-lang="en"]')
    assert await page.locator("#preview script").count() == 0 and dialogs == []  # never run
    # the form keeps what was typed
    assert await page.input_value("textarea[name=text]") == HOSTILE

    await page.fill("input[name=at]", "2026-11-27 18:00")  # the clock says 17:00 Moscow
    await page.click("#schedule")
    await page.wait_for_selector("#notice")
    assert await page.get_attribute("#state", "data-state") == "scheduled"
    assert await page.inner_text("#send-at") == "2026-11-27 18:00"
    assert await page.inner_text("#audience-size") == "4"
    assert await page.locator('meta[http-equiv="refresh"]').count() == 0
    broadcast_id = int(page.url.rsplit("/", 1)[1].split("?")[0])

    portal.clock.now += timedelta(minutes=61)
    assert await service(portal).run_due() == 4
    await page.reload()
    assert await page.get_attribute("#state", "data-state") == "sending"
    assert await page.locator('meta[http-equiv="refresh"]').count() == 1
    assert await page.inner_text('[data-count="remaining"]') == "4"

    telegram, vk = FakeMessenger(), FakeMessenger()
    vk.blocked_by("v2")
    await deliver(portal, {"telegram": telegram, "vk": vk})
    await service(portal).run_due()  # marks it done
    # the page refreshes itself every 5 seconds while sending
    await page.wait_for_selector('#state[data-state="done"]', timeout=12_000)
    counts = {k: await page.inner_text(f'[data-count="{k}"]')
              for k in ("sent", "failed", "unreachable", "remaining")}
    assert counts == {"sent": "3", "failed": "0", "unreachable": "1", "remaining": "0"}
    assert await page.get_attribute("#progress", "value") == "4"
    assert await page.locator('meta[http-equiv="refresh"]').count() == 0
    assert sorted(a.chat_id for a, _m in telegram.sent + vk.sent) == ["t1", "t2", "v1"]
    assert all(HOSTILE in m.text for _a, m in telegram.sent)

    b = await service(portal).get(broadcast_id)
    assert b.created_by == "portal:kamila"
    await page.click('a[href="/portal/broadcasts"]')
    row = page.locator(f'#broadcasts tr[data-id="{broadcast_id}"]')
    assert await row.get_attribute("data-state") == "done"
    assert audit_rows(portal) == [("kamila", "broadcast_create", "", "scheduled")]


async def post_form(http: ClientSession, url: str, data: dict[str, str]) -> tuple[int, str, str]:
    async with http.post(url, data=data) as resp:
        return resp.status, str(resp.url), await resp.text()


async def test_send_now_pause_resume_cancel(portal, http):
    assert await http_login(http, portal.url, "kamila") == 200
    token = await csrf_of(http, portal.url + "/portal/broadcasts/new")
    status, url, text = await post_form(http, portal.url + "/portal/broadcasts/new", {
        "csrf": token, "text": "Всем жителям", "action": "now", "channel": "telegram"})
    assert status == 200 and re.search(r"/portal/broadcasts/\d+\?done=send$", url), url
    assert 'data-state="sending"' in text and 'http-equiv="refresh"' in text
    detail = url.split("?")[0]
    # t1, t2, t3 and the complaint's citizen on Telegram; t4 unsubscribed
    assert '<td class="n" data-count="remaining">4</td>' in text

    status, _url, text = await post_form(http, detail + "/pause", {"csrf": token})
    assert status == 200 and 'data-state="paused"' in text and "задержано: 4" in text
    status, _url, text = await post_form(http, detail + "/pause", {"csrf": token})
    assert status == 409 and "В текущем состоянии" in text
    status, _url, text = await post_form(http, detail + "/resume", {"csrf": token})
    assert 'data-state="sending"' in text
    status, _url, text = await post_form(http, detail + "/cancel", {"csrf": token})
    assert 'data-state="cancelled"' in text
    assert '<td class="n" data-count="cancelled">4</td>' in text
    assert '<td class="n" data-count="remaining">0</td>' in text
    assert [row[1:] for row in audit_rows(portal)] == [
        ("broadcast_create", "", "draft"), ("broadcast_send", "draft", "sending"),
        ("broadcast_pause", "sending", "paused"), ("broadcast_resume", "paused", "sending"),
        ("broadcast_cancel", "sending", "cancelled")]

    # a draft, scheduled later from its page
    status, url, text = await post_form(http, portal.url + "/portal/broadcasts/new", {
        "csrf": token, "text": "Черновик", "action": "draft", "complained_sector": "roads",
        "days": "30"})
    assert 'data-state="draft"' in text and "Обращались недавно" in text
    detail = url.split("?")[0]
    status, _url, text = await post_form(http, detail + "/schedule", {"csrf": token,
                                                                       "at": "2020-01-01 10:00"})
    assert status == 400 and "Время отправки уже прошло" in text
    status, _url, text = await post_form(http, detail + "/schedule", {"csrf": token,
                                                                       "at": "2026-12-01 10:00"})
    assert 'data-state="scheduled"' in text and "2026-12-01 10:00" in text
    async with http.get(portal.url + "/portal/broadcasts/999") as resp:
        assert resp.status == 404


async def test_bad_input_is_refused_with_a_clear_message(portal, http):
    assert await http_login(http, portal.url, "kamila") == 200
    token = await csrf_of(http, portal.url + "/portal/broadcasts/new")
    new = portal.url + "/portal/broadcasts/new"
    for data, message in (
            ({"text": "x", "link_label_0": "Сайт", "link_url_0": "http://insecure.example"},
             "Кнопке-ссылке нужен адрес https://, а не http://insecure.example"),
            ({"text": "x", "link_label_0": "Сайт"}, "нужны и надпись, и адрес"),
            ({"text": "   "}, "Напишите текст рассылки"),
            ({"text": "x", "action": "schedule", "at": "tomorrow"}, "ГГГГ-ММ-ДД ЧЧ:ММ"),
            ({"text": "x", "action": "schedule", "at": "2020-01-01 10:00"}, "уже прошло"),
            ({"text": "x", "days": "0"}, "Число дней"),
            ({"text": "x" * 3501}, "Текст слишком длинный")):
        status, _url, text = await post_form(http, new, {"action": "draft", "csrf": token,
                                                          **data})
        assert status == 400 and message in text, (data, text[-2000:])
    # counting shows the problem too, and keeps the form
    status, _url, text = await post_form(http, new, {
        "csrf": token, "action": "count", "text": "<b>x</b>", "link_label_0": "Сайт",
        "link_url_0": "http://insecure.example"})
    assert status == 400 and "http://insecure.example" in text and "&lt;b&gt;x&lt;/b&gt;" in text
    # an unknown municipality in a forged form is dropped, not trusted
    status, _url, text = await post_form(http, new, {"csrf": token, "action": "count",
                                                     "municipality": "atlantis"})
    assert status == 200 and '<strong id="audience-count">' in text
    assert await service(portal).list() == [] and audit_rows(portal) == []


async def test_roles_and_tokens_are_checked(portal, http):
    new = portal.url + "/portal/broadcasts/new"
    assert await http_login(http, portal.url, "kamila") == 200
    for data in ({"text": "x", "action": "draft"}, {"text": "x", "action": "draft",
                                                     "csrf": "forged"}):
        status, _url, text = await post_form(http, new, data)
        assert status == 403 and "Форма устарела" in text
    http.cookie_jar.clear()

    assert await http_login(http, portal.url, "olga") == 200  # an operator
    token = await csrf_of(http, portal.url + "/portal/complaints")
    async with http.get(portal.url + "/portal/complaints") as resp:
        assert "/portal/broadcasts" not in await resp.text()  # not in the navigation
    for path in ("/portal/broadcasts", "/portal/broadcasts/new"):
        async with http.get(portal.url + path) as resp:
            assert resp.status == 403, path
    status, _url, text = await post_form(http, new, {"csrf": token, "text": "x",
                                                     "action": "now"})
    assert status == 403 and "не даёт доступа" in text
    b = await service(portal).create("Чужая", created_by="cli:test")
    for action in ("pause", "cancel", "send", "schedule"):
        status, _url, _text = await post_form(
            http, f"{portal.url}/portal/broadcasts/{b.id}/{action}",
            {"csrf": token, "at": "2026-12-01 10:00"})
        assert status == 403, action
    assert [x.state for x in await service(portal).list()] == ["draft"]
    http.cookie_jar.clear()

    assert await http_login(http, portal.url, "admin") == 200
    async with http.get(portal.url + "/portal/broadcasts") as resp:
        assert resp.status == 200 and "Чужая" in await resp.text()
    async with ClientSession() as anonymous, anonymous.get(
            portal.url + "/portal/broadcasts", allow_redirects=False) as resp:
        assert resp.status == 303 and "/login" in resp.headers["Location"]
    assert audit_rows(portal) == []

