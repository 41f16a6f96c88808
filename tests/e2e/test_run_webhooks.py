"""`tsur run` in production inbound modes: Telegram webhook (with the back office) and the
VK Callback API, configured only through TSUR_* settings, against the fake platforms."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import sys
from pathlib import Path
from typing import Any

from aiohttp import ClientSession

from bots.telegram.webhook import webhook_secret
from tests.fakes.telegram import FakeTelegram
from tests.fakes.vk import FakeVK

ROOT = Path(__file__).resolve().parents[2]
TG_USER, VK_USER, GROUP_ID, BACKOFFICE = 5101, 7101, 77, -1009900
OPERATOR = 9001
VK_SECRET, VK_CONFIRMATION = "cb-secret-1", "a1b2c3d4"
PROBLEM = "В Каспийске на улице Ленина 5 третий день нет воды в доме"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def start_tsur(env: dict[str, str]) -> tuple[asyncio.subprocess.Process, list[str]]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "config.cli", "run", cwd=ROOT, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    assert proc.stdout is not None
    output: list[str] = []
    while not any("Press Ctrl-C" in line for line in output):
        line = await asyncio.wait_for(proc.stdout.readline(), 120)
        assert line, "tsur exited before serving:\n" + "\n".join(output)
        output.append(line.decode().rstrip())
    return proc, output


async def stop_tsur(proc: asyncio.subprocess.Process, output: list[str]) -> None:
    proc.send_signal(signal.SIGINT)
    rest, _ = await asyncio.wait_for(proc.communicate(), 60)
    output.extend(rest.decode().splitlines())
    assert proc.returncode == 0, "\n".join(output)
    assert not any("Traceback" in line for line in output), "\n".join(output)


async def test_webhook_and_callback_modes_with_the_back_office(tmp_path: Path) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    async with FakeTelegram() as tg, FakeVK(group_id=GROUP_ID) as vk, ClientSession() as http:
        tg.add_user(TG_USER, "Патимат", language_code="ru")
        tg.add_group(BACKOFFICE, forum=True)
        vk.add_user(VK_USER, "Магомед", "Алиев")
        env = {**os.environ, "TSUR_DATA_DIR": str(tmp_path / "var"), "TSUR_PORT": str(port),
               "TSUR_LOG_LEVEL": "WARNING", "TSUR_NLU": "keyword",
               "TSUR_TELEGRAM_TOKEN": tg.token, "TSUR_TELEGRAM_API_URL": tg.base_url,
               # Telegram delivers to the public HTTPS address; a proxy forwards it here
               "TSUR_TELEGRAM_WEBHOOK_URL": "https://tsur.example.org/telegram/hook",
               "TSUR_TELEGRAM_BACKOFFICE_CHAT_ID": str(BACKOFFICE),
               "TSUR_OPERATORS": f"{OPERATOR}:operator",
               "TSUR_VK_TOKEN": vk.token, "TSUR_VK_GROUP_ID": str(GROUP_ID),
               "TSUR_VK_API_URL": vk.api_url, "TSUR_VK_CALLBACK_SECRET": VK_SECRET,
               "TSUR_VK_CONFIRMATION": VK_CONFIRMATION}
        env.pop("TSUR_DATABASE_URL", None)
        proc, output = await start_tsur(env)
        try:
            banner = "\n".join(output)
            assert "Telegram (webhook)" in banner and "VK (Callback API)" in banner
            assert "Telegram back office" in banner
            await tg.wait_for(lambda: tg.calls_of("setWebhook"), timeout=30)  # once it listens
            [hook] = tg.calls_of("setWebhook")
            assert hook.params["url"] == "https://tsur.example.org/telegram/hook"
            secret = webhook_secret(tg.token)
            assert hook.params["secret_token"] == secret

            async def telegram(update: dict[str, Any], token: str = secret) -> int:
                async with http.post(f"{base}/telegram/hook", json=update, headers={
                        "X-Telegram-Bot-Api-Secret-Token": token}) as resp:
                    tg.webhook_answered(resp.status, await resp.text(), resp.content_type)
                    return resp.status

            async def vk_event(event: dict[str, Any], secret: str = VK_SECRET) -> str:
                body = json.dumps({**event, "secret": secret}, ensure_ascii=False)
                async with http.post(f"{base}/vk/callback", data=body) as resp:
                    return f"{resp.status} {await resp.text()}"

            # a forged webhook call is refused and does nothing
            assert await telegram(tg.send_text(TG_USER, "/start"), token="forged") == 403
            assert await vk_event({"type": "confirmation", "group_id": GROUP_ID}) == (
                f"200 {VK_CONFIRMATION}")
            assert (await vk_event(vk.send_text(VK_USER, "/start"), secret="no")).startswith(
                "403")
            await asyncio.sleep(0.3)
            assert tg.sent_to(TG_USER) == [] and vk.sent_to(VK_USER) == []

            # a Telegram citizen files a complaint through the webhook
            assert await telegram(tg.send_text(TG_USER, PROBLEM)) == 200
            asking = await tg.wait_for_message(TG_USER, "Верно?", timeout=30)
            for data, next_prompt in (("cls:yes", "Пришлите фотографии"),
                                      ("photo:done", "Где находится проблема"),
                                      ("⏭ Пропустить", "Муниципалитет: Каспийск"),
                                      ("mun:yes", "152-ФЗ"),
                                      ("consent:yes", "Проверьте ваше обращение"),
                                      ("cmp:submit", "зарегистрировано")):
                # "Skip" is a text button of the location keyboard: its label is sent
                update = (tg.send_text(TG_USER, data) if data.startswith("⏭")
                          else tg.press(TG_USER, asking, data))
                assert await telegram(update) == 200
                asking = await tg.wait_for_message(TG_USER, next_prompt, timeout=30)
            number = asking.text.split("№", 1)[1].split()[0]

            # the back office opens a topic with the card; the operator's words reach her
            card = await tg.wait_for_message(BACKOFFICE, number, timeout=30)
            assert card.thread_id is not None
            assert await telegram(tg.send_text(OPERATOR, "Бригада выехала", chat_id=BACKOFFICE,
                                               thread_id=card.thread_id)) == 200
            await tg.wait_for_message(TG_USER, "Бригада выехала", timeout=30)

            # a VK citizen files one through the Callback API, with a geo location
            async def vk_press(payload: str, next_prompt: str) -> Any:
                [shown] = [m for m in vk.sent_to(VK_USER)[::-1]
                           if payload in json.dumps(m.keyboard or {})][:1]
                press = vk.press(VK_USER, {"p": payload}, shown.conversation_message_id)
                assert await vk_event(press) == "200 ok"
                return await vk.wait_for_message(VK_USER, next_prompt, timeout=30)

            assert await vk_event(vk.send_text(VK_USER, PROBLEM)) == "200 ok"
            await vk.wait_for_message(VK_USER, "Верно?", timeout=30)
            await vk_press("cls:yes", "Пришлите фотографии")
            await vk_press("photo:done", "Где находится проблема")
            assert await vk_event(vk.send_text(VK_USER, "", geo=(42.8816, 47.6389))) == "200 ok"
            await vk.wait_for_message(VK_USER, "Муниципалитет:", timeout=30)
            await vk_press("mun:yes", "152-ФЗ")
            await vk_press("consent:yes", "Проверьте ваше обращение")
            done = await vk_press("cmp:submit", "зарегистрировано")
            vk_number = done.text.split("№", 1)[1].split()[0]
            assert vk_number != number

            # its topic opens too, and the operator's words reach the citizen in VK
            vk_card = await tg.wait_for_message(BACKOFFICE, vk_number, timeout=30)
            assert vk_card.thread_id not in (None, card.thread_id)
            assert await telegram(tg.send_text(OPERATOR, "Проверим насосную станцию",
                                               chat_id=BACKOFFICE,
                                               thread_id=vk_card.thread_id)) == 200
            await vk.wait_for_message(VK_USER, "Проверим насосную станцию", timeout=30)
        finally:
            if proc.returncode is None:
                await stop_tsur(proc, output)
