"""The outbox delivered to Telegram and VK: real DeliveryWorkers over a real SQLite file,
sending with the real aiogram ``Bot`` and vkbottle ``API`` to the fake servers.

The workers run on a fake clock (``run_once`` driven by the test, ``sleep`` advancing the
clock), so flood waits and backoff are stepped through, never waited for.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from domain.calendar import WorkingCalendar
from domain.complaint import Status
from domain.ports import OutboxMessage, OutboxStatus
from domain.services import (
    ComplaintDraft,
    answer_complaint,
    change_status,
    get_or_create_citizen,
    register_complaint,
)
from domain.storage import Database, sqlite_url, upgrade_async
from notifications.delivery import Backoff, DeliveryWorker
from notifications.handlers import StatusNotifier
from notifications.ratelimit import DEFAULT_LIMITS, RateLimiter
from tests.e2e.browser import needs_chromium
from tests.e2e.portal_fixtures import PASSWORD
from tests.fakes.dialogue import catalogue
from tests.fakes.messenger import FakeClock
from tests.fakes.telegram import FakeTelegram
from tests.fakes.vk import FakeVK

TG_USER = 5005101
VK_USER = 7007101
GROUP_ID = 218000002
TAKEN = "взято в работу"  # the Russian "taken into work" notice
ANSWERED_RU = "Ответ на ваше обращение"


@dataclass
class Env:
    database: Database
    clock: FakeClock
    tg: FakeTelegram
    vk: FakeVK
    telegram: DeliveryWorker
    vk_worker: DeliveryWorker

    async def file(self, channel: str, user: int, text: str = "Нет воды в доме") -> int:
        """A consenting citizen of ``channel`` files a complaint; returns its id."""
        cat, now = catalogue(), self.clock.now()
        async with self.database.uow() as uow:
            citizen = await get_or_create_citizen(uow, channel, str(user), str(user),
                                                  language="ru", now=now, name="Патимат")
            citizen.give_consent(now, cat.consent_version)
            await uow.citizens.save(citizen)
            complaint = await register_complaint(
                uow, cat, WorkingCalendar(), citizen, channel,
                ComplaintDraft(text, "housing", "no_water", municipality="makhachkala"), now)
            await uow.commit()
        assert complaint.id is not None
        return complaint.id

    async def status(self, complaint_id: int, new: Status) -> None:
        async with self.database.uow() as uow:
            await change_status(uow, complaint_id, new, actor="operator:1",
                                now=self.clock.now())
            await uow.commit()
        self.clock.advance(1)  # each notice its own time stamp (and dedup key)

    async def answer(self, complaint_id: int, text: str) -> None:
        async with self.database.uow() as uow:
            await answer_complaint(uow, complaint_id, text, actor="operator:1",
                                   now=self.clock.now())
            await uow.commit()
        self.clock.advance(1)

    async def rows(self, channel: str) -> list[OutboxMessage]:
        async with self.database.uow() as uow:
            return list(await uow.outbox.find(channel=channel))

    async def reachable(self, channel: str, user: int) -> bool:
        async with self.database.uow() as uow:
            citizen = await uow.citizens.by_identity(channel, str(user))
        assert citizen is not None
        return citizen.reachable


def worker(database: Database, channel: str, messenger: Any, clock: FakeClock) -> DeliveryWorker:
    return DeliveryWorker(database.uow, channel, messenger,
                          limiter=RateLimiter(DEFAULT_LIMITS[channel], clock.monotonic),
                          clock=clock.now, sleep=clock.sleep, jitter=lambda: 0.5,
                          backoff=Backoff(base=10, factor=2, cap=100))


@pytest.fixture
async def env(tmp_path: Path) -> AsyncIterator[Env]:
    from bots.telegram import make_bot
    from bots.telegram.outbox import TelegramOutboxMessenger
    from bots.vk import make_api
    from bots.vk.outbox import VkOutboxMessenger

    url = sqlite_url(tmp_path / "tsur.db")
    await upgrade_async(url)
    clock = FakeClock()
    database = Database.from_url(url, clock=clock.now,
                                 event_handler=StatusNotifier(catalogue()))
    async with FakeTelegram() as tg, FakeVK(group_id=GROUP_ID) as vk:
        tg.add_user(TG_USER, "Патимат", language_code="ru")
        vk.add_user(VK_USER, "Патимат", "Алиева")
        bot = make_bot(tg.token, tg.base_url)
        api = make_api(vk.token, vk.api_url)
        yield Env(database, clock, tg, vk,
                  worker(database, "telegram", TelegramOutboxMessenger(bot), clock),
                  worker(database, "vk", VkOutboxMessenger(api), clock))
        await bot.session.close()
        await api.http_client.close()
    await database.dispose()


async def drain(w: DeliveryWorker) -> None:
    while await w.run_once():
        pass


# --- delivered -----------------------------------------------------------------------------

async def test_a_status_notice_reaches_a_telegram_and_a_vk_citizen(env: Env) -> None:
    tg_complaint = await env.file("telegram", TG_USER)
    vk_complaint = await env.file("vk", VK_USER)
    await env.status(tg_complaint, Status.IN_PROGRESS)
    await env.status(vk_complaint, Status.IN_PROGRESS)
    await drain(env.telegram)
    await drain(env.vk_worker)

    [tg_msg] = env.tg.sent_to(TG_USER)
    assert TAKEN in (tg_msg.text or "") and tg_msg.parse_mode == "HTML"
    assert [b["callback_data"] for row in tg_msg.buttons for b in row] == ["menu:my"]
    [vk_msg] = env.vk.sent_to(VK_USER)
    assert TAKEN in vk_msg.text
    assert vk_msg.text == (tg_msg.text or "").replace("000001", "000002")  # the same notice
    assert vk_msg.keyboard is not None and vk_msg.keyboard["inline"] is True
    for channel in ("telegram", "vk"):
        [row] = await env.rows(channel)
        assert row.status is OutboxStatus.SENT and row.attempts == 1


# --- the citizen is gone -------------------------------------------------------------------

async def test_a_blocked_telegram_citizen_is_marked_and_gets_nothing_more(env: Env) -> None:
    complaint = await env.file("telegram", TG_USER)
    await env.status(complaint, Status.IN_PROGRESS)
    await env.answer(complaint, "Бригада выехала")
    env.tg.block(TG_USER)
    await drain(env.telegram)

    assert [c.status for c in env.tg.calls_of("sendMessage")] == [403]  # one try, no more
    assert not await env.reachable("telegram", TG_USER)
    assert {r.status for r in await env.rows("telegram")} == {OutboxStatus.UNREACHABLE}
    await env.status(complaint, Status.CLOSED)  # nothing is even written for them now
    assert len(await env.rows("telegram")) == 2
    await drain(env.telegram)
    assert len(env.tg.calls_of("sendMessage")) == 1 and env.tg.sent_to(TG_USER) == []


async def test_a_telegram_chat_that_no_longer_exists_is_unreachable(env: Env) -> None:
    gone = TG_USER + 1  # wrote once; the account has been deleted since
    complaint = await env.file("telegram", gone)
    await env.status(complaint, Status.IN_PROGRESS)
    await drain(env.telegram)
    [call] = env.tg.calls_of("sendMessage")
    assert call.status == 400
    assert not await env.reachable("telegram", gone)
    [row] = await env.rows("telegram")
    assert row.status is OutboxStatus.UNREACHABLE


async def test_a_vk_citizen_who_denied_messages_is_marked_and_gets_nothing_more(
        env: Env) -> None:
    complaint = await env.file("vk", VK_USER)
    await env.status(complaint, Status.IN_PROGRESS)
    await env.answer(complaint, "Бригада выехала")
    env.vk.deny(VK_USER)
    await drain(env.vk_worker)
    assert [c.error_code for c in env.vk.calls_of("messages.send")] == [901]
    assert not await env.reachable("vk", VK_USER)
    assert [r.status for r in await env.rows("vk")] == [OutboxStatus.UNREACHABLE] * 2
    env.vk.allow(VK_USER)  # even if VK would take it now, the outbox no longer writes
    await env.status(complaint, Status.CLOSED)
    await drain(env.vk_worker)
    assert env.vk.sent_to(VK_USER) == [] and len(env.vk.calls_of("messages.send")) == 1


# --- riding out flood control and failures ------------------------------------------------

async def test_a_telegram_429_is_honoured_then_delivered(env: Env) -> None:
    complaint = await env.file("telegram", TG_USER)
    await env.status(complaint, Status.IN_PROGRESS)
    env.tg.fail_next("sendMessage", 429, retry_after=7)
    start = env.clock.now()
    assert await env.telegram.run_once() == 1
    [row] = await env.rows("telegram")
    assert row.status is OutboxStatus.PENDING
    assert (row.not_before - start).total_seconds() == pytest.approx(7)
    env.clock.advance(6)
    assert await env.telegram.run_once() == 0  # not yet: nothing sent before retry_after
    env.clock.advance(1)
    assert await env.telegram.run_once() == 1
    assert [c.status for c in env.tg.calls_of("sendMessage")] == [429, 200]
    [sent] = env.tg.sent_to(TG_USER)
    assert TAKEN in (sent.text or "")
    [row] = await env.rows("telegram")
    assert row.status is OutboxStatus.SENT


@pytest.mark.parametrize("fault", [{"status": 502}, {"drop": True}])
async def test_a_telegram_5xx_or_lost_connection_is_retried_and_delivered(
        env: Env, fault: dict[str, Any]) -> None:
    complaint = await env.file("telegram", TG_USER)
    await env.status(complaint, Status.IN_PROGRESS)
    env.tg.fail_next("sendMessage", **fault)
    await env.telegram.run_once()
    [row] = await env.rows("telegram")
    assert row.status is OutboxStatus.PENDING and row.last_error.startswith("TransientError")
    env.clock.advance(100)  # past the backoff
    await drain(env.telegram)
    assert [c.status for c in env.tg.calls_of("sendMessage")] == [fault.get("status", 0), 200]
    assert len(env.tg.sent_to(TG_USER)) == 1
    [row] = await env.rows("telegram")
    assert row.status is OutboxStatus.SENT and row.attempts == 2


@pytest.mark.parametrize("code", [6, 9])
async def test_vk_flood_errors_hold_the_channel_briefly_then_deliver(env: Env,
                                                                     code: int) -> None:
    complaint = await env.file("vk", VK_USER)
    await env.status(complaint, Status.IN_PROGRESS)
    env.vk.fail_next("messages.send", code)
    await env.vk_worker.run_once()
    [row] = await env.rows("vk")
    assert row.status is OutboxStatus.PENDING and f"vk: error {code}" in row.last_error
    assert row.not_before == env.clock.now() + timedelta(seconds=1)  # held back briefly
    env.clock.advance(1)
    await drain(env.vk_worker)
    assert [c.error_code for c in env.vk.calls_of("messages.send")] == [code, None]
    assert len(env.vk.sent_to(VK_USER)) == 1


@pytest.mark.parametrize("code", [10, 502])
async def test_vk_internal_errors_and_5xx_pages_are_retried(env: Env, code: int) -> None:
    complaint = await env.file("vk", VK_USER)
    await env.status(complaint, Status.IN_PROGRESS)
    env.vk.fail_next("messages.send", code)
    await env.vk_worker.run_once()
    [row] = await env.rows("vk")
    assert row.status is OutboxStatus.PENDING and row.last_error.startswith("TransientError")
    env.clock.advance(100)
    await drain(env.vk_worker)
    assert len(env.vk.sent_to(VK_USER)) == 1
    [row] = await env.rows("vk")
    assert row.status is OutboxStatus.SENT and row.attempts == 2


async def test_a_vk_resend_after_a_lost_reply_is_deduplicated_by_vk(env: Env) -> None:
    complaint = await env.file("vk", VK_USER)
    await env.status(complaint, Status.IN_PROGRESS)
    # VK applies the send, then the connection drops: the worker cannot know it went out
    env.vk.fail_next("messages.send", "drop", after_apply=True)
    await env.vk_worker.run_once()
    [row] = await env.rows("vk")
    assert row.status is OutboxStatus.PENDING
    env.clock.advance(100)
    await drain(env.vk_worker)
    first, second = env.vk.calls_of("messages.send")
    assert (first.status, second.status) == (0, 200)
    assert first.params["random_id"] == second.params["random_id"]  # the same logical message
    [sent] = env.vk.sent_to(VK_USER)  # exactly one at VK
    assert TAKEN in sent.text
    [row] = await env.rows("vk")
    assert row.status is OutboxStatus.SENT


# --- requests that can never succeed ---------------------------------------------------------

async def test_a_telegram_bad_request_fails_the_row_without_retrying(env: Env) -> None:
    complaint = await env.file("telegram", TG_USER)
    await env.status(complaint, Status.IN_PROGRESS)
    await env.answer(complaint, "Бригада выехала")
    env.tg.fail_next("sendMessage", 400,
                     description="Bad Request: can't parse entities: unsupported start tag")
    await drain(env.telegram)
    env.clock.advance(10_000)
    await drain(env.telegram)
    first, second = await env.rows("telegram")
    assert first.status is OutboxStatus.FAILED and first.attempts == 1
    assert "rejected" in first.last_error
    assert second.status is OutboxStatus.SENT  # the citizen is still reachable
    assert await env.reachable("telegram", TG_USER)
    assert [c.status for c in env.tg.calls_of("sendMessage")] == [400, 200]
    [sent] = env.tg.sent_to(TG_USER)
    assert ANSWERED_RU in (sent.text or "")


async def test_a_vk_bad_request_fails_the_row_without_retrying(env: Env) -> None:
    complaint = await env.file("vk", VK_USER)
    await env.status(complaint, Status.IN_PROGRESS)
    env.vk.fail_next("messages.send", 100)  # one of the parameters specified was invalid
    await drain(env.vk_worker)
    env.clock.advance(10_000)
    await drain(env.vk_worker)
    [row] = await env.rows("vk")
    assert row.status is OutboxStatus.FAILED and row.attempts == 1
    assert [c.error_code for c in env.vk.calls_of("messages.send")] == [100]
    assert await env.reachable("vk", VK_USER)


# --- the portal (issue 6): an operator's reply in the browser reaches Telegram ---------------

@needs_chromium
async def test_a_portal_reply_reaches_the_telegram_citizen(env: Env, browser_page) -> None:
    from portal import setup_portal
    from portal.users import add_user

    complaint_id = await env.file("telegram", TG_USER, "Во дворе третий день нет воды")
    async with env.database.uow() as uow:
        complaint = await uow.complaints.get(complaint_id)
    assert complaint is not None
    await add_user(env.database, "olga", PASSWORD, "operator", now=env.clock.now())
    app = web.Application()
    setup_portal(app, database=env.database, catalogue=catalogue(), clock=env.clock.now)
    server = TestServer(app, host="127.0.0.1", port=0)
    await server.start_server()
    try:
        page = browser_page
        base = str(server.make_url("")).rstrip("/")
        await page.goto(f"{base}/login")
        await page.fill("input[name=login]", "olga")
        await page.fill("input[name=password]", PASSWORD)
        await page.click("button[type=submit]")
        await page.wait_for_selector("#register")
        await page.click(f"text={complaint.number}")
        await page.fill("#reply-form textarea", "Бригада выехала, воду дадут к вечеру.")
        await page.click("#reply-form button")
        await page.wait_for_selector("#notice")
    finally:
        await server.close()

    [row] = await env.rows("telegram")  # written with the answer, in its transaction
    assert row.kind == "answer" and row.status is OutboxStatus.PENDING
    await drain(env.telegram)
    [sent] = env.tg.sent_to(TG_USER)
    assert sent.text == (f"{ANSWERED_RU} №{complaint.number}:\n\n"
                         "Бригада выехала, воду дадут к вечеру.")
    [row] = await env.rows("telegram")
    assert row.status is OutboxStatus.SENT


# --- `tsur run` starts a worker per configured channel and stops it on Ctrl-C --------------

async def test_tsur_run_delivers_notices_to_telegram_and_vk_and_stops_cleanly(
        tmp_path: Path) -> None:
    import os
    import signal
    import socket
    import sys
    from datetime import UTC, datetime

    root = Path(__file__).resolve().parents[2]
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    async with FakeTelegram() as tg, FakeVK(group_id=GROUP_ID) as vk:
        tg.add_user(TG_USER, "Патимат", language_code="ru")
        vk.add_user(VK_USER, "Патимат", "Алиева")
        env = {**os.environ, "TSUR_DATA_DIR": str(tmp_path / "var"), "TSUR_PORT": str(port),
               "TSUR_LOG_LEVEL": "WARNING", "TSUR_NLU": "keyword",
               "TSUR_TELEGRAM_TOKEN": tg.token, "TSUR_TELEGRAM_API_URL": tg.base_url,
               "TSUR_VK_TOKEN": vk.token, "TSUR_VK_GROUP_ID": str(GROUP_ID),
               "TSUR_VK_API_URL": vk.api_url}
        env.pop("TSUR_DATABASE_URL", None)
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "config.cli", "run", cwd=root, env=env,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
        assert proc.stdout is not None
        output: list[str] = []
        try:
            while not any("Press Ctrl-C" in line for line in output):
                line = await asyncio.wait_for(proc.stdout.readline(), 60)
                assert line, "tsur exited before serving:\n" + "\n".join(output)
                output.append(line.decode().rstrip())
            assert any("Telegram" in line and "VK" in line for line in output), output

            # a status change committed by another process (the portal, say)
            clock = FakeClock(datetime.now(UTC))
            database = Database.from_url(sqlite_url(tmp_path / "var" / "tsur.db"),
                                         event_handler=StatusNotifier(catalogue()))
            other = Env(database, clock, tg, vk, None, None)  # type: ignore[arg-type]
            for channel, user in (("telegram", TG_USER), ("vk", VK_USER)):
                await other.status(await other.file(channel, user), Status.IN_PROGRESS)
            await tg.wait_for_message(TG_USER, TAKEN, timeout=20)
            await vk.wait_for_message(VK_USER, TAKEN, timeout=20)

            async def statuses() -> set[OutboxStatus]:
                return {r.status for c in ("telegram", "vk") for r in await other.rows(c)}

            for _ in range(200):  # the mark is committed just after the send
                if await statuses() == {OutboxStatus.SENT}:
                    break
                await asyncio.sleep(0.1)
            assert await statuses() == {OutboxStatus.SENT}
            await database.dispose()

            proc.send_signal(signal.SIGINT)
            rest, _ = await asyncio.wait_for(proc.communicate(), 30)
            output.extend(rest.decode().splitlines())
            assert proc.returncode == 0, output
            assert "tsur stopped." in output
            assert not any("did not stop" in line or "Traceback" in line for line in output)
        finally:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
    assert len(tg.sent_to(TG_USER)) == 1 and len(vk.sent_to(VK_USER)) == 1


# --- a hung request -------------------------------------------------------------------------

async def test_an_outbox_client_gives_up_on_a_hung_request_within_the_leases_margin() -> None:
    """A worker starts no send in the last quarter of its claim's lease, so a send started
    just before must end within that quarter; otherwise another claim could send the same
    message meanwhile. The outbox's clients wait at most ``send_timeout`` for a request, and a
    request that hangs is a transient failure (tried again later by this claim's worker)."""
    from bots.telegram import make_bot
    from bots.telegram.outbox import TelegramOutboxMessenger
    from bots.vk import make_api
    from bots.vk.outbox import VkOutboxMessenger
    from config.channels import _send_timeout
    from config.settings import Settings
    from dialogue.messages import Address, Channel, OutgoingMessage
    from notifications.delivery import send_timeout
    from notifications.messenger import TransientError

    assert send_timeout(timedelta(minutes=2)) == pytest.approx(24.0)  # within the last 30 s
    assert _send_timeout(Settings(outbox_lease_seconds=5.0)) == pytest.approx(1.0)

    release = asyncio.Event()

    async def hang(request: web.Request) -> web.Response:
        await release.wait()  # the request arrived; no answer comes
        return web.json_response({"ok": True, "result": True})

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", hang)
    server = TestServer(app, host="127.0.0.1", port=0)
    await server.start_server()
    base = str(server.make_url("")).rstrip("/")
    bot = make_bot("123:fake", base, timeout=0.2)
    api = make_api("fake", base + "/method/", timeout=0.2)
    try:
        with pytest.raises(TransientError):
            await TelegramOutboxMessenger(bot).send(Address(Channel.TELEGRAM, "1"),
                                                    OutgoingMessage("Статус"), key="k1")
        with pytest.raises(TransientError):
            await VkOutboxMessenger(api).send(Address(Channel.VK, "1"),
                                              OutgoingMessage("Статус"), key="k2")
    finally:
        release.set()
        await bot.session.close()
        await api.http_client.close()
        await server.close()
