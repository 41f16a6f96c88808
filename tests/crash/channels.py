"""The channels as a citizen of the crash and fault suites uses them: Telegram and VK through
their fakes, the web chat as its page does (:class:`WebCitizen`). Each is a
:class:`Driver` for :class:`tests.crash.citizens.Citizen`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import time
from dataclasses import dataclass
from typing import Any, Protocol

from aiohttp import ClientError, ClientSession, FormData, WSMsgType

from tests.fakes.images import png_bytes


@dataclass(frozen=True)
class Shown:
    """A bot message as the citizen sees it."""

    text: str
    payloads: tuple[str, ...] = ()
    location: bool = False


class Driver(Protocol):
    channel: str
    user: str
    acks: bool  # the channel acknowledges a step itself, and sends it again until then

    def is_acked(self, token: Any) -> bool: ...

    def shown(self) -> list[Shown]: ...

    async def connect(self) -> None: ...

    async def text(self, text: str) -> Any: ...

    async def press(self, payload: str) -> Any: ...

    async def photo(self) -> Any: ...

    async def location(self, lat: float, lon: float) -> Any: ...


class _Unacknowledged:
    """A platform that tells the citizen nothing but its answers (Telegram, VK): the fake
    redelivers a step the bot did not confirm, the citizen never sends it again."""

    acks = False

    def is_acked(self, token: Any) -> bool:
        return False  # answered is all a citizen can tell

    async def connect(self) -> None:
        pass


# --- Telegram ------------------------------------------------------------------------------

class TelegramCitizen(_Unacknowledged):
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


class VkCitizen(_Unacknowledged):
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

RECONNECT = (0.1, 1.0)  # first and longest wait before reconnecting, seconds


def _base36(n: int) -> str:
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"
    out = ""
    while True:
        n, d = divmod(n, 36)
        out = digits[d] + out
        if not n:
            return out


class WebCitizen:
    """A browser tab with the web chat page open, doing what its script
    (``bots/web/static/chat.js``) does: ``hello`` on every connect; every action frame gets
    an ``id`` and ``sent_at`` and is kept until the server's ``ack``; after a reconnect the
    unacknowledged frames are sent again unchanged; the socket reconnects by itself, with a
    doubling wait (the page's 1–30 s scaled down to :data:`RECONNECT`, so the tab is back
    soon after a restart). The page's id-less ``/start`` on opening is left out: the citizen
    writes the problem straight away.

    A step is acknowledged (:meth:`is_acked`) when its frame's ``ack`` arrives, i.e. once
    the server has persisted it and sent its replies. Connections are numbered from 1; the
    record of which frame was sent, answered and acknowledged on which connection is what
    :func:`tests.crash.checks.check_web` checks.
    """

    channel = "web"
    acks = True

    def __init__(self, base_url: str, client_id: str, http: ClientSession) -> None:
        self.url, self.user, self.http = base_url, client_id, http
        self.frames: list[dict[str, Any]] = []  # message frames, as shown
        self.errors: list[dict[str, Any]] = []  # error frames
        self.pending: dict[str, str] = {}  # frame id → the frame as sent, until its ack
        self.sent: dict[str, list[int]] = {}  # frame id → connections it was sent on
        self.answered: dict[str, set[int]] = {}  # frame id → connections its replies came on
        self.acks_of: dict[str, list[int]] = {}  # frame id → connections its acks came on
        self.uploads: dict[str, str] = {}  # photo frame id → upload id
        # frame id → (the connection it was last sent on, whether the engine had persisted
        # it) for frames sent and not acknowledged when the server was killed
        self.at_kill: dict[str, tuple[int, bool]] = {}
        self.tags: dict[str, str] = {}  # frame type → id prefix (a test picks frames out)
        self.connections = 0
        self.ws: Any = None
        self.online = asyncio.Event()
        self._seq = 0
        self._loop: asyncio.Task[None] | None = None

    def shown(self) -> list[Shown]:
        return [Shown(f.get("text", ""), tuple(b["payload"] for row in f.get("buttons", [])
                                               for b in row),
                      bool(f.get("request_location"))) for f in self.frames]

    def is_acked(self, frame_id: str) -> bool:
        return frame_id in self.acks_of

    async def connect(self) -> None:
        """Open the page (once) and wait until its socket is online."""
        if self._loop is None:
            self._loop = asyncio.create_task(self._keep_connected())
        await self.online.wait()

    async def _keep_connected(self) -> None:
        delay = RECONNECT[0]
        while True:
            try:
                ws = await self.http.ws_connect(self.url.replace("http", "ws", 1) + "/chat/ws")
            except (ClientError, OSError):
                ws = None
            if ws is not None:
                self.connections += 1
                delay = RECONNECT[0]
                await self._connected(ws, self.connections)
            await asyncio.sleep(delay + random.random() * delay / 2)
            delay = min(delay * 2, RECONNECT[1])

    async def _connected(self, ws: Any, number: int) -> None:
        try:
            await ws.send_json({"type": "hello", "client_id": self.user, "lang": "ru"})
            again = list(self.pending.items())  # before going online: none sent twice
            self.ws = ws
            self.online.set()
            for frame_id, data in again:
                self.sent[frame_id].append(number)
                await ws.send_str(data)
            async for msg in ws:
                if msg.type is WSMsgType.TEXT:
                    self._received(json.loads(msg.data), number)
        except (ClientError, ConnectionError, RuntimeError):
            pass  # the server died: reconnect
        finally:
            self.online.clear()
            self.ws = None
            await ws.close()

    def _received(self, frame: dict[str, Any], number: int) -> None:
        kind = frame.get("type")
        if kind == "message":
            self.frames.append(frame)
            # the server handles a connection's frames in order, so a reply belongs to the
            # oldest frame still waiting for its ack
            waiting = next((i for i in self.pending if number in self.sent[i]), None)
            if waiting is not None:
                self.answered.setdefault(waiting, set()).add(number)
        elif kind == "ack":
            self.acks_of.setdefault(frame["id"], []).append(number)
            self.pending.pop(frame["id"], None)
        elif kind == "error":
            self.errors.append(frame)

    async def _send(self, frame: dict[str, Any]) -> str:
        self._seq += 1
        now = int(time.time() * 1000)
        frame_id = f"{self.tags.get(frame['type'], '')}{_base36(now)}-{self._seq}"
        data = json.dumps(frame | {"id": frame_id, "sent_at": now})
        self.pending[frame_id] = data
        self.sent[frame_id] = []
        ws = self.ws
        if self.online.is_set() and ws is not None and not ws.closed:
            self.sent[frame_id].append(self.connections)
            # a failed send keeps it pending: it goes again after the reconnect
            with contextlib.suppress(ClientError, ConnectionError, RuntimeError):
                await ws.send_str(data)
        return frame_id

    async def text(self, text: str) -> Any:
        return await self._send({"type": "text", "text": text})

    async def press(self, payload: str) -> Any:
        return await self._send({"type": "button", "payload": payload})

    async def photo(self) -> Any:
        """Upload a photo (a failed upload raises, as the page shows it failed), then send
        its frame."""
        form = FormData()
        form.add_field("file", png_bytes(), filename="pit.png", content_type="image/png")
        async with self.http.post(self.url + "/chat/upload", data=form) as resp:
            upload_id = (await resp.json())["id"]
        frame_id = await self._send({"type": "photo", "upload_id": upload_id, "text": ""})
        self.uploads[frame_id] = upload_id
        return frame_id

    async def location(self, lat: float, lon: float) -> Any:
        return await self._send({"type": "location", "latitude": lat, "longitude": lon})

    async def close(self) -> None:
        if self._loop is not None:
            self._loop.cancel()
            await asyncio.gather(self._loop, return_exceptions=True)
        if self.ws is not None:
            await self.ws.close()
