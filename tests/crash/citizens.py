"""Citizens who file a complaint step by step in Telegram, VK or the web chat, and keep
going across ``kill -9``: each looks at what the bot said last and does what it asks.

A step is *acknowledged* when the bot answers it. A step that got no answer because the
process died is sent again once the bot is back — what a person does — unless the bot's
last words show it was taken already.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from aiohttp import ClientError, ClientSession, FormData, WSMsgType

from tests.crash.harness import Trials
from tests.crash.system import rows
from tests.fakes.images import png_bytes

KASPIYSK = (42.8816, 47.6389)
REGISTERED = re.compile(r"№(\S+) зарегистрировано")
APOLOGY = "что-то пошло не так"
GRACE = 3.0  # seconds a restarted bot gets to answer a step sent before the kill
SILENCE = 30.0  # no answer for this long with no kill in between is a failure
SETTLE = 0.3  # a reply may be several messages: wait this long for more


@dataclass(frozen=True)
class Shown:
    """A bot message as the citizen sees it."""

    text: str
    payloads: tuple[str, ...] = ()
    location: bool = False


class Driver(Protocol):
    channel: str
    user: str

    def shown(self) -> list[Shown]: ...

    async def connect(self) -> None: ...

    async def text(self, text: str) -> Any: ...

    async def press(self, payload: str) -> Any: ...

    async def photo(self) -> Any: ...

    async def location(self, lat: float, lon: float) -> Any: ...


# --- Telegram ------------------------------------------------------------------------------

class TelegramCitizen:
    channel = "telegram"

    def __init__(self, tg: Any, user: int) -> None:
        self.tg, self.id, self.user = tg, user, str(user)
        tg.add_user(user, f"Житель {user}", language_code="ru")

    def shown(self) -> list[Shown]:
        out = []
        for m in self.tg.sent_to(self.id):
            keyboard = (m.reply_markup or {}).get("keyboard") or []
            out.append(Shown(m.text or m.caption or "",
                             tuple(b["callback_data"] for row in m.buttons for b in row
                                   if "callback_data" in b),
                             any(b.get("request_location") for row in keyboard for b in row)))
        return out

    async def connect(self) -> None:
        pass

    async def text(self, text: str) -> Any:
        return self.tg.send_text(self.id, text)

    async def press(self, payload: str) -> Any:
        message = next(m for m in reversed(self.tg.sent_to(self.id))
                       if any(b.get("callback_data") == payload
                              for row in m.buttons for b in row))
        return self.tg.press(self.id, message, payload)

    async def photo(self) -> Any:
        return self.tg.send_photo(self.id)

    async def location(self, lat: float, lon: float) -> Any:
        return self.tg.send_location(self.id, lat, lon)


# --- VK ------------------------------------------------------------------------------------

def _vk_payload(button: dict[str, Any]) -> str | None:
    raw = button.get("action", {}).get("payload")
    return json.loads(raw).get("p") if raw else None


class VkCitizen:
    channel = "vk"

    def __init__(self, vk: Any, user: int) -> None:
        self.vk, self.id, self.user = vk, user, str(user)
        vk.add_user(user, "Житель", str(user))

    def shown(self) -> list[Shown]:
        out = []
        for m in self.vk.sent_to(self.id):
            buttons = [b for row in m.buttons for b in row]
            out.append(Shown(m.text, tuple(p for b in buttons if (p := _vk_payload(b))),
                             any(b["action"].get("type") == "location" for b in buttons)))
        return out

    async def connect(self) -> None:
        pass

    async def text(self, text: str) -> Any:
        return self.vk.send_text(self.id, text)

    async def press(self, payload: str) -> Any:
        for m in reversed(self.vk.sent_to(self.id)):
            for b in (b for row in m.buttons for b in row):
                if _vk_payload(b) != payload:
                    continue
                if b["action"]["type"] == "callback":
                    return self.vk.press(self.id, {"p": payload}, m.conversation_message_id)
                return self.vk.send_text(self.id, b["action"].get("label", ""),
                                         payload={"p": payload})
        raise AssertionError(f"no button {payload} shown to {self.id}")

    async def photo(self) -> Any:
        return self.vk.send_photo(self.id)

    async def location(self, lat: float, lon: float) -> Any:
        return self.vk.send_text(self.id, "", geo=(lat, lon))


# --- the web chat --------------------------------------------------------------------------

class WebCitizen:
    """A browser tab: reconnects (same client id) after the server died."""

    channel = "web"

    def __init__(self, base_url: str, client_id: str, http: ClientSession) -> None:
        self.url, self.user, self.http = base_url, client_id, http
        self.frames: list[dict[str, Any]] = []
        self.ws: Any = None
        self._reader: asyncio.Task[None] | None = None

    def shown(self) -> list[Shown]:
        return [Shown(f.get("text", ""), tuple(b["payload"] for row in f.get("buttons", [])
                                               for b in row),
                      bool(f.get("request_location"))) for f in self.frames]

    async def connect(self) -> None:
        if self.ws is not None and not self.ws.closed:
            return
        self.ws = await self.http.ws_connect(self.url.replace("http", "ws", 1) + "/chat/ws")
        await self.ws.send_json({"type": "hello", "client_id": self.user, "lang": "ru"})
        self._reader = asyncio.create_task(self._read(self.ws))

    async def _read(self, ws: Any) -> None:
        async for msg in ws:
            if msg.type is WSMsgType.TEXT:
                frame = json.loads(msg.data)
                if frame.get("type") == "message":
                    self.frames.append(frame)

    async def _send(self, frame: dict[str, Any]) -> None:
        await self.connect()
        await self.ws.send_json(frame)

    async def text(self, text: str) -> Any:
        await self._send({"type": "text", "text": text})

    async def press(self, payload: str) -> Any:
        await self._send({"type": "button", "payload": payload})

    async def photo(self) -> Any:
        form = FormData()
        form.add_field("file", png_bytes(), filename="pit.png", content_type="image/png")
        async with self.http.post(self.url + "/chat/upload", data=form) as resp:
            upload_id = (await resp.json())["id"]
        await self._send({"type": "photo", "upload_id": upload_id})

    async def location(self, lat: float, lon: float) -> Any:
        await self._send({"type": "location", "latitude": lat, "longitude": lon})

    async def close(self) -> None:
        if self.ws is not None:
            await self.ws.close()
        if self._reader is not None:
            await asyncio.gather(self._reader, return_exceptions=True)


# --- the citizen ---------------------------------------------------------------------------

@dataclass
class Step:
    action: str  # text | press | photo | location
    value: str = ""
    token: Any = None  # what the fake returned (a Telegram update, a VK event)
    acked: bool = False
    life: int = 0  # the life during which it was sent


@dataclass
class Citizen:
    """Files one complaint through ``driver``; records every step and its fate."""

    driver: Driver
    trials: Trials
    problem: str
    steps: list[Step] = field(default_factory=list)
    number: str | None = None
    submit_unanswered: bool = False  # pressed submit, then was shown the main menu
    silent: list[Step] = field(default_factory=list)  # no answer, and no kill to blame
    apologies: int = 0
    patience: float = SILENCE  # seconds to wait for an answer when no kill intervened

    @property
    def acked(self) -> list[Step]:
        return [s for s in self.steps if s.acked]

    def photos(self, acked: bool | None = None) -> int:
        return sum(1 for s in self.steps if s.action == "photo"
                   and (acked is None or s.acked == acked))

    def decide(self, burst: list[Shown]) -> Step | None:
        payloads = {p for m in burst for p in m.payloads}
        for m in burst:
            found = REGISTERED.search(m.text)
            if found:
                self.number = found.group(1)
                return None
        pressed_submit = any(s.value == "cmp:submit" for s in self.steps)
        if pressed_submit and "menu:new" in payloads:
            self.submit_unanswered = True  # the first press went through, its answer did not
            return None
        if "cls:yes" in payloads:
            return Step("press", "cls:yes")
        if "photo:done" in payloads:
            return Step("photo") if self.photos(acked=True) == 0 else Step("press", "photo:done")
        if any(m.location for m in burst) or "loc:skip" in payloads:
            return Step("location")
        for payload in ("mun:yes", "consent:yes", "cmp:submit"):
            if payload in payloads:
                return Step("press", payload)
        if not burst or "menu:new" in payloads:
            return Step("text", self.problem)
        return Step("wait")  # the rest of the answer is still on its way

    async def run(self) -> None:
        burst: list[Shown] = []
        start = 0
        last: Step | None = None
        waiting_since: float | None = None
        while (step := self.decide(burst)) is not None:
            if step.action == "wait":  # a partial answer: the rest should follow
                waiting_since = waiting_since or time.monotonic()
                assert last is not None
                if not self._gave_up(last, waiting_since):
                    await asyncio.sleep(0.1)
                    burst = self.driver.shown()[start:]
                    continue
                step = Step(last.action, last.value)  # the rest is lost: send it again
            waiting_since = None
            await self.trials.when_up()
            before = len(self.driver.shown())
            step.life = len(self.trials.starts) - 1
            try:
                await self.driver.connect()
                step.token = await self._do(step)
            except (ClientError, ConnectionError, RuntimeError):
                await asyncio.sleep(0.05)  # the web chat's server died under us: try again
                continue
            self.steps.append(step)
            last = step
            reply = await self._reply(before, step)
            if reply is not None:
                step.acked = True
                burst, start = reply, before
                self.apologies += sum(APOLOGY in m.text for m in reply)

    def _gave_up(self, step: Step, since: float) -> bool:
        """Whether the rest of a partial answer to ``step`` will not come: the bot was
        killed after the first part and, restarted, said nothing more; or (no kill) the
        citizen's patience ran out, which counts as a silent step."""
        now = time.monotonic()
        if len(self.trials.starts) - 1 > step.life:
            return (self.trials.up.is_set() and len(self.trials.ready_at) > step.life + 1
                    and now - max(self.trials.ready_at[-1], since) > GRACE)
        if now - since > self.patience:
            self.silent.append(step)
            return True
        return False

    async def _do(self, step: Step) -> Any:
        d = self.driver
        if step.action == "text":
            return await d.text(step.value)
        if step.action == "press":
            return await d.press(step.value)
        if step.action == "photo":
            return await d.photo()
        return await d.location(*KASPIYSK)

    async def _reply(self, before: int, step: Step) -> list[Shown] | None:
        """The bot's answer to ``step``, or None if the bot was killed and, restarted, has
        not answered within :data:`GRACE` seconds."""
        sent_at = time.monotonic()
        life = len(self.trials.starts)
        while len(self.driver.shown()) <= before:
            now = time.monotonic()
            if len(self.trials.starts) > life or self.trials.current is None:
                ready = self.trials.ready_at[-1] if self.trials.ready_at else now
                if (self.trials.up.is_set() and len(self.trials.ready_at) > life
                        and now - ready > GRACE):
                    return None
            elif now - sent_at > self.patience:
                self.silent.append(step)
                return None
            await asyncio.sleep(0.03)
        count = len(self.driver.shown())
        quiet_since = time.monotonic()
        while time.monotonic() - quiet_since < SETTLE:
            await asyncio.sleep(0.05)
            if len(self.driver.shown()) != count:
                count, quiet_since = len(self.driver.shown()), time.monotonic()
        return self.driver.shown()[before:]


# --- what the database holds ---------------------------------------------------------------

def complaints_of(db: Path, channel: str, user: str) -> list[dict[str, Any]]:
    found = rows(db, "SELECT c.* FROM complaints c JOIN identities i ON i.citizen_id = "
                     "c.citizen_id WHERE i.channel = ? AND i.external_id = ?", channel, user)
    out = []
    for row in found:
        complaint = dict(row)
        complaint["photos"] = [r["ref"] for r in rows(
            db, "SELECT ref FROM complaint_photos WHERE complaint_id = ? ORDER BY position",
            complaint["id"])]
        out.append(complaint)
    return out


def check_citizen(db: Path, c: Citizen, *, replies_may_fail: bool = False) -> list[str]:
    """What is wrong with what the database holds for citizen ``c``. With
    ``replies_may_fail`` (the fault suite), a step left unanswered is no failure: the
    bot's reply may have failed for good and the citizen sent the step again."""
    who = f"{c.driver.channel}:{c.driver.user}"
    found = complaints_of(db, c.driver.channel, c.driver.user)
    problems = []
    if len(found) > 1:
        problems.append(f"{who} filed once but has {len(found)} complaints")
    if c.number is not None and c.number not in [f["number"] for f in found]:
        problems.append(f"{who} was told №{c.number} but it is not in the database")
    if (c.number or c.submit_unanswered) and not found:
        problems.append(f"{who}: the submit was taken (a later press was stale), "
                        "yet there is no complaint")
    for f in found:
        if f["text"] != c.problem or f["municipality"] != "kaspiysk" or f["latitude"] is None:
            problems.append(f"{who}: complaint {f['number']} lost a step: "
                            f"{f['text']!r} {f['municipality']} {f['latitude']}")
        refs = f["photos"]
        if len(set(refs)) != len(refs):
            problems.append(f"{who}: the same photo recorded twice: {refs}")
        if not c.photos(acked=True) <= len(refs) <= c.photos():
            problems.append(f"{who}: {len(refs)} photos stored, {c.photos()} sent, "
                            f"{c.photos(acked=True)} acknowledged")
    if c.silent and not replies_may_fail:
        problems.append(f"{who}: unanswered with no kill to blame: {c.silent}")
    if c.apologies:
        problems.append(f"{who}: the bot apologised {c.apologies} times")
    return problems
