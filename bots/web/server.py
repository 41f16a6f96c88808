"""aiohttp routes of the web chat: the page, its WebSocket, photo uploads.

Mount it on any :class:`aiohttp.web.Application` with :func:`setup_web_chat`, or get a
stand-alone app from :func:`create_web_app`. The WebSocket protocol is documented in
:mod:`bots.web.protocol`.
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from aiohttp import BodyPartReader, WSMsgType, web

from bots.web.labels import labels_json
from dialogue.i18n import LANGUAGES, normalize_language
from dialogue.messages import (
    Address,
    Attachment,
    AttachmentKind,
    Channel,
    IncomingMessage,
    Location,
    OutgoingMessage,
)

from .messenger import WebMessenger
from .protocol import (
    MAX_CLOCK_SKEW,
    MAX_FRAME_BYTES,
    FrameError,
    Hello,
    error_frame,
    frame_id_of,
    parse_frame,
    render_message,
)
from .uploads import SNIFF_BYTES, UploadStore, sniff_image_mime

log = logging.getLogger(__name__)

STATIC_DIR = Path(__file__).parent / "static"
DEFAULT_MAX_UPLOAD = 10 * 1024 * 1024
WEB_MESSENGER = web.AppKey("web_messenger", WebMessenger)
# The page loads nothing from elsewhere; keep it that way.
_CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' blob: data:; "
        "connect-src 'self'; base-uri 'none'; form-action 'none'")


class DialogueEngine(Protocol):
    """What the web chat needs from the dialogue core."""

    async def handle(self, msg: IncomingMessage) -> list[OutgoingMessage]:
        """Handle one citizen action and return the replies, in order."""
        ...


class _Session:
    """State of one socket: who it is (after ``hello``) and which language it speaks."""

    __slots__ = ("client_id", "lang")

    def __init__(self) -> None:
        self.client_id: str | None = None
        self.lang: str = "ru"


class WebChat:
    """The handlers; one instance per mounted chat."""

    def __init__(self, engine: DialogueEngine, store: UploadStore, messenger: WebMessenger,
                 *, prefix: str, max_upload_bytes: int,
                 clock: Callable[[], datetime]) -> None:
        self.engine = engine
        self.store = store
        self.messenger = messenger
        self.prefix = prefix
        self.max_upload_bytes = max_upload_bytes
        self.clock = clock
        # One lock per client keeps a citizen's messages in order across tabs; a lock
        # disappears by itself once nobody holds or waits for it.
        self._locks: weakref.WeakValueDictionary[str, asyncio.Lock] = (
            weakref.WeakValueDictionary())
        page = (STATIC_DIR / "chat.html").read_text(encoding="utf-8")
        self._pages = {lang: page.replace("{{prefix}}", prefix).replace(
            "{{labels}}", labels_json(lang)) for lang in LANGUAGES}

    # --- the page -------------------------------------------------------------------
    async def page(self, request: web.Request) -> web.Response:
        page = self._pages[normalize_language(request.query.get("lang"))]
        return web.Response(text=page, content_type="text/html", charset="utf-8",
                            headers={"Content-Security-Policy": _CSP,
                                     "Cache-Control": "no-cache"})

    # --- uploads --------------------------------------------------------------------
    async def upload(self, request: web.Request) -> web.Response:
        """``POST {prefix}/upload``: one multipart image → ``{"id", "mime", "url"}``."""
        lang = request.query.get("lang", "ru")
        limit = self.max_upload_bytes
        mb = f"{limit / 1024 / 1024:g}"
        if request.content_length and request.content_length > limit + 64 * 1024:
            return _json_error(413, "too_large", lang, mb)
        try:
            reader = await request.multipart()
            part = await reader.next()
            if not isinstance(part, BodyPartReader):  # nothing, or nested multipart
                return _json_error(400, "bad_upload", lang)
            data = bytearray()
            while chunk := await part.read_chunk(64 * 1024):
                data += chunk
                if len(data) > limit:
                    return _json_error(413, "too_large", lang, mb)
        except (ValueError, AssertionError, KeyError):
            return _json_error(400, "bad_upload", lang)
        if sniff_image_mime(bytes(data[:SNIFF_BYTES])) is None:
            return _json_error(415, "not_image", lang)
        stored = await self.store.save(bytes(data))
        return web.json_response({"id": stored.id, "mime": stored.mime,
                                  "url": f"{self.messenger.uploads_url}/{stored.id}"})

    async def uploaded(self, request: web.Request) -> web.StreamResponse:
        """``GET {prefix}/uploads/{id}``: an uploaded photo, only by a well-formed id."""
        stored = await self.store.get(request.match_info["upload_id"])
        if stored is None:
            raise web.HTTPNotFound()
        return web.FileResponse(stored.path, headers={
            "Content-Type": stored.mime, "X-Content-Type-Options": "nosniff",
            "Cache-Control": "private, max-age=86400"})

    # --- the socket -----------------------------------------------------------------
    async def websocket(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(max_msg_size=MAX_FRAME_BYTES, heartbeat=30)
        await ws.prepare(request)
        session = _Session()
        try:
            async for msg in ws:
                if msg.type is WSMsgType.TEXT:
                    await self._on_frame(ws, session, msg.data)
                elif msg.type is WSMsgType.BINARY:
                    await _send(ws, error_frame("binary", session.lang))
        finally:
            if session.client_id is not None:
                self.messenger.unregister(session.client_id, ws)
        return ws

    async def _on_frame(self, ws: web.WebSocketResponse, session: _Session, raw: str) -> None:
        try:
            frame = parse_frame(raw)
        except FrameError as exc:
            await _send(ws, error_frame(exc.code, session.lang, exc.value))
            await _ack(ws, frame_id_of(raw))  # it would fail again: the page may forget it
            return
        if isinstance(frame, Hello):
            if session.client_id not in (None, frame.client_id):
                await _send(ws, error_frame("client_changed", session.lang))
                return
            session.client_id = frame.client_id
            session.lang = frame.lang or session.lang
            self.messenger.register(frame.client_id, ws)
            return
        client_id = session.client_id
        if client_id is None:
            await _send(ws, error_frame("no_hello", session.lang))
            return
        attachments: tuple[Attachment, ...] = ()
        if frame.upload_id is not None:
            stored = await self.store.get(frame.upload_id)
            if stored is None:
                await _send(ws, error_frame("unknown_upload", session.lang))
                await _ack(ws, frame.id)  # done with it: sending it again would not help
                return
            attachments = (Attachment(AttachmentKind.PHOTO, stored.id, stored.mime),)
        location = None
        if frame.latitude is not None and frame.longitude is not None:
            location = Location(frame.latitude, frame.longitude)
        incoming = IncomingMessage(
            address=Address(Channel.WEB, client_id), user_id=client_id, text=frame.text,
            payload=frame.payload, attachments=attachments, location=location,
            received_at=self._received_at(frame.sent_at), language_hint=session.lang)
        lock = self._locks.get(client_id)
        if lock is None:
            lock = self._locks[client_id] = asyncio.Lock()
        async with lock:
            try:
                replies = await self.engine.handle(incoming)
            except Exception:
                log.exception("web chat: the engine failed on a message from %s", client_id)
                await _send(ws, error_frame("internal", session.lang))
                await _ack(ws, frame.id)
                return
            for reply in replies:
                await _send(ws, self._render(reply))
            # persisted and answered: the page may forget the frame (a kill before this
            # point makes it send the frame again, and the engine answers it once more
            # without recording it twice)
            await _ack(ws, frame.id)

    def _received_at(self, sent_at: float | None) -> datetime:
        """The frame's time stamp: when the browser sent it (so a frame sent again after
        a reconnect is recognised by the engine), unless the browser's clock is off."""
        now = self.clock()
        if sent_at is None or abs(sent_at - now.timestamp()) > MAX_CLOCK_SKEW:
            return now
        return datetime.fromtimestamp(sent_at, UTC)

    def _render(self, reply: OutgoingMessage) -> dict[str, Any]:
        return render_message(reply, self.messenger.uploads_url)


async def _send(ws: web.WebSocketResponse, frame: dict[str, Any]) -> None:
    """Send a frame unless the browser has already gone."""
    if ws.closed:
        return
    try:
        await ws.send_json(frame)
    except (ConnectionError, RuntimeError):
        log.debug("web chat: socket closed while sending")


async def _ack(ws: web.WebSocketResponse, frame_id: str | None) -> None:
    if frame_id is not None:
        await _send(ws, {"type": "ack", "id": frame_id})


def _json_error(status: int, code: str, lang: str, value: str = "") -> web.Response:
    return web.json_response(error_frame(code, lang, value), status=status)


def _utcnow() -> datetime:
    return datetime.now(UTC)


def setup_web_chat(app: web.Application, engine: DialogueEngine, *, uploads_dir: Path,
                   messenger: WebMessenger | None = None,
                   max_upload_bytes: int = DEFAULT_MAX_UPLOAD, prefix: str = "/chat",
                   clock: Callable[[], datetime] = _utcnow) -> WebMessenger:
    """Add the web chat's routes under ``prefix`` to ``app`` and return its messenger.

    The messenger is also stored as ``app[WEB_MESSENGER]``; its sockets are closed when
    the app shuts down.
    """
    prefix = prefix.rstrip("/")
    messenger = messenger or WebMessenger()
    messenger.uploads_url = f"{prefix}/uploads"
    chat = WebChat(engine, UploadStore(uploads_dir), messenger, prefix=prefix,
                   max_upload_bytes=max_upload_bytes, clock=clock)
    app.router.add_get(prefix, chat.page)
    app.router.add_get(f"{prefix}/", chat.page)
    app.router.add_get(f"{prefix}/ws", chat.websocket)
    app.router.add_post(f"{prefix}/upload", chat.upload)
    app.router.add_get(f"{prefix}/uploads/{{upload_id}}", chat.uploaded)
    app.router.add_static(f"{prefix}/static", STATIC_DIR)
    app[WEB_MESSENGER] = messenger

    async def close_sockets(_app: web.Application) -> None:
        await messenger.close_all()

    app.on_shutdown.append(close_sockets)
    return messenger


def create_web_app(engine: DialogueEngine, *, uploads_dir: Path,
                   messenger: WebMessenger | None = None,
                   max_upload_bytes: int = DEFAULT_MAX_UPLOAD) -> web.Application:
    """A stand-alone app: the chat under ``/chat`` and ``/`` redirecting to it."""
    app = web.Application(client_max_size=max_upload_bytes + 1024 * 1024)
    setup_web_chat(app, engine, uploads_dir=uploads_dir, messenger=messenger,
                   max_upload_bytes=max_upload_bytes)

    async def index(_request: web.Request) -> web.Response:
        raise web.HTTPFound("/chat")

    app.router.add_get("/", index)
    return app
