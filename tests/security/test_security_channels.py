"""Forged webhook secrets, a stranger in the back-office group, SQL injection in the
register's search and filters (SQLite and PostgreSQL)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest
from aiohttp import ClientSession, web
from aiohttp.test_utils import TestServer

from domain.calendar import WorkingCalendar
from domain.storage import Database, sqlite_url, upgrade_async
from domain.storage.queries import ComplaintFilter, register_page
from tests.e2e.portal_fixtures import Seed, seed_complaints
from tests.fakes.dialogue import FRIDAY_EVENING, catalogue
from tests.fakes.engine import FakeEngine
from tests.fakes.telegram import FakeTelegram


async def serve(app: web.Application) -> tuple[TestServer, str]:
    server = TestServer(app, host="127.0.0.1", port=0)
    await server.start_server()
    return server, str(server.make_url("")).rstrip("/")


UPDATE = {"update_id": 1, "message": {
    "message_id": 1, "date": 1_700_000_000, "chat": {"id": 1001, "type": "private"},
    "from": {"id": 1001, "is_bot": False, "first_name": "A"}, "text": "Привет"}}


# --- webhook secrets ----------------------------------------------------------------------

async def test_a_forged_telegram_webhook_secret_is_refused() -> None:
    from bots.telegram import build_dispatcher, make_bot
    from bots.telegram.webhook import SECRET_HEADER, setup_telegram_webhook

    engine = FakeEngine()
    async with FakeTelegram() as tg:
        tg.add_user(1001)
        bot = make_bot(tg.token, tg.base_url)
        app = web.Application()
        setup_telegram_webhook(app, build_dispatcher(engine), bot, path="/tg/hook",
                               secret="right-secret_0123", background=False)
        server, url = await serve(app)
        try:
            async with ClientSession() as http:
                for headers in ({}, {SECRET_HEADER: ""}, {SECRET_HEADER: "wrong"},
                                {SECRET_HEADER: "right-secret_012"},
                                {SECRET_HEADER: "right-secret_01234"},
                                {SECRET_HEADER: "RIGHT-SECRET_0123"},
                                {SECRET_HEADER: "x" * 10_000}):
                    async with http.post(url + "/tg/hook", json=UPDATE,
                                         headers=headers) as resp:
                        # aiohttp itself refuses a header over 8 KiB (400)
                        assert resp.status in (400, 403), headers
                assert engine.received == []
                async with http.post(url + "/tg/hook", json=UPDATE,
                                     headers={SECRET_HEADER: "right-secret_0123"}) as resp:
                    assert resp.status == 200
                assert [m.text for m in engine.received] == ["Привет"]
        finally:
            await server.close()
            await bot.session.close()


async def test_a_forged_vk_callback_secret_is_refused() -> None:
    from bots.vk.callback import setup_vk_callback
    from bots.vk.channel import VkChannel, make_api
    from bots.vk.messenger import VkMessenger

    engine = FakeEngine()
    api = make_api("vk1.a.token", "http://127.0.0.1:9/method/")  # never called: refused first
    app = web.Application()
    setup_vk_callback(app, VkChannel(engine, VkMessenger(api)), path="/vk/hook",
                      secret="right-secret", confirmation="abc123", group_id=1)
    server, url = await serve(app)
    event: dict[str, Any] = {"type": "confirmation", "group_id": 1}
    try:
        async with ClientSession() as http:
            for secret in (None, "", "wrong", "right-secre", "right-secret ", 12345,
                           ["right-secret"], {"s": 1}, "x" * 10_000):
                body = dict(event) if secret is None else {**event, "secret": secret}
                async with http.post(url + "/vk/hook", data=json.dumps(body)) as resp:
                    assert resp.status == 403, secret
                    assert "abc123" not in await resp.text()
            # the right secret for another community is refused too
            async with http.post(url + "/vk/hook", data=json.dumps(
                    {**event, "group_id": 2, "secret": "right-secret"})) as resp:
                assert resp.status == 403
            async with http.post(url + "/vk/hook", data=json.dumps(
                    {**event, "secret": "right-secret"})) as resp:
                assert resp.status == 200 and await resp.text() == "abc123"
        assert engine.received == []
    finally:
        await server.close()
        await api.http_client.close()


# --- a stranger in the back-office group ---------------------------------------------------

async def test_a_stranger_in_the_back_office_group_changes_nothing(tmp_path) -> None:
    from bots.backoffice.card import data
    from bots.backoffice.router import build_backoffice_router
    from bots.telegram import build_dispatcher, make_bot

    group, operator, stranger = -100777, 7007001, 7007003
    url = sqlite_url(tmp_path / "bo.db")
    await upgrade_async(url)
    database = Database.from_url(url)
    [complaint] = await seed_complaints(database, [Seed("Яма у школы", "roads", "potholes")],
                                        FRIDAY_EVENING)
    async with FakeTelegram() as tg:
        tg.add_group(group, forum=True)
        for user in (operator, stranger):
            tg.add_user(user)
        dp = build_dispatcher(FakeEngine())
        dp.include_router(build_backoffice_router(database, catalogue(),
                                                  lambda: datetime.now(UTC), group,
                                                  {operator: "operator"}))
        bot = make_bot(tg.token, tg.base_url)
        cid = complaint.id
        assert cid is not None
        presses = [data(cid, name, *args) for name, args in (
            ("take", ()), ("ans", ()), ("rej", ()), ("dup", ()), ("to", ("closed",)),
            ("to", ("rejected",)), ("to", ("in_progress",)))]
        try:
            for i, payload in enumerate(presses):
                query = {"id": f"q{i}", "from": tg.world.users[stranger], "chat_instance": "1",
                         "data": payload, "message": {
                             "message_id": 10 + i, "date": 1_700_000_000,
                             "chat": {"id": group, "type": "supergroup", "is_forum": True}}}
                await dp.feed_raw_update(bot, {"update_id": 100 + i, "callback_query": query})
            await dp.feed_raw_update(bot, {"update_id": 200, "message": {
                "message_id": 99, "date": 1_700_000_000, "text": "Я тоже хочу ответить",
                "chat": {"id": group, "type": "supergroup", "is_forum": True},
                "from": tg.world.users[stranger]}})
        finally:
            await bot.session.close()
    async with database.uow() as uow:
        after = await uow.complaints.get(cid)
    await database.dispose()
    assert after is not None and str(after.status) == "new"
    assert [str(h.kind) for h in after.history] == ["registered"]
    answers = [c.params.get("text", "") for c in tg.calls
               if c.method.lower() == "answercallbackquery"]
    assert len(answers) == len(presses)


# --- SQL injection in the register ---------------------------------------------------------

INJECTIONS = ["' OR 1=1 --", "'; DROP TABLE complaints; --", "\" OR \"\"=\"", "%", "_", "\\",
              "%%", "\\%", "'||'", "1) OR (1=1", "') UNION SELECT * FROM portal_users --",
              "*", "[a-z]", "я" * 200]


async def test_search_and_filters_treat_injection_as_text(db: Database) -> None:
    await seed_complaints(db, [
        Seed("Нет воды во дворе"), Seed("Яма 100% опасна", "roads", "potholes"),
        Seed("Свалка a_b у реки", "waste", "illegal_dump"),
        Seed("Путь C:\\temp в тексте", "waste", "illegal_dump")], FRIDAY_EVENING)
    expected = {"%": 1, "_": 1, "\\": 1, "100%": 1, "a_b": 1, "a_": 1, "C:\\temp": 1}
    async with db.session_factory() as session:
        everything = (await register_page(session, ComplaintFilter(), FRIDAY_EVENING)).total
        assert everything == 4
        for term in INJECTIONS + list(expected):
            flt = ComplaintFilter(search=term)
            page = await register_page(session, flt, FRIDAY_EVENING)
            assert page.total == expected.get(term, 0), term
        for flt in (ComplaintFilter(sector="' OR 1=1 --"), ComplaintFilter(agency="%"),
                    ComplaintFilter(municipality="_"), ComplaintFilter(channel="' OR ''='"),
                    ComplaintFilter(category=("roads' --", "%"))):
            assert (await register_page(session, flt, FRIDAY_EVENING)).total == 0, flt
    async with db.session_factory() as session:  # still there
        assert (await register_page(session, ComplaintFilter(), FRIDAY_EVENING)).total == 4


def test_the_register_search_drops_nul_which_postgresql_refuses() -> None:
    from multidict import MultiDict

    from portal.views.filters import parse_filter, windows

    calendar = WorkingCalendar()
    flt = parse_filter(MultiDict(q="во\x00ды\x00"), catalogue(), calendar,
                       windows(FRIDAY_EVENING, calendar, 3))
    assert flt.search == "воды"


@pytest.mark.parametrize("term", [*INJECTIONS, "\x00"])
def test_the_portal_drops_unknown_filter_values(term: str) -> None:
    from multidict import MultiDict

    from portal.views.filters import parse_filter, windows

    calendar = WorkingCalendar()
    query = MultiDict([(k, term) for k in ("status", "sector", "category", "agency",
                                           "municipality", "channel", "due", "from", "to")])
    flt = parse_filter(query, catalogue(), calendar, windows(FRIDAY_EVENING, calendar, 3))
    assert flt == ComplaintFilter(search="")
