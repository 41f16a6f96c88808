"""Delivering messages to web citizens over their open WebSockets."""

from __future__ import annotations

import logging
from collections.abc import Iterator

from aiohttp import WSCloseCode, web

from dialogue.messages import Address, Channel, OutgoingMessage

from .protocol import render_message

log = logging.getLogger(__name__)


class WebMessenger:
    """The web chat's ``Messenger``: knows every open socket of every client.

    A citizen may have several tabs open; a message goes to all of them. Web citizens
    are reachable only while a page is open, so :meth:`send` returning ``False`` means
    "try later" to the outbox worker, not "this citizen is gone".
    """

    def __init__(self, uploads_url: str = "/chat/uploads") -> None:
        self._sockets: dict[str, set[web.WebSocketResponse]] = {}
        self.uploads_url = uploads_url

    def register(self, client_id: str, ws: web.WebSocketResponse) -> None:
        """Remember an open socket of ``client_id`` (called after its ``hello``)."""
        self._sockets.setdefault(client_id, set()).add(ws)

    def unregister(self, client_id: str, ws: web.WebSocketResponse) -> None:
        """Forget a socket; safe to call twice."""
        sockets = self._sockets.get(client_id)
        if sockets is None:
            return
        sockets.discard(ws)
        if not sockets:
            del self._sockets[client_id]

    def is_online(self, client_id: str) -> bool:
        """True if the client has at least one open socket."""
        return any(not ws.closed for ws in self._sockets.get(client_id, ()))

    def online_clients(self) -> Iterator[str]:
        return iter(list(self._sockets))

    async def send(self, to: Address, msg: OutgoingMessage) -> bool:
        """Deliver ``msg`` to every open socket of ``to.chat_id``.

        :returns: ``True`` if at least one socket got it; ``False`` if the address is not
            a web address or the client has no open socket.
        """
        if to.channel is not Channel.WEB:
            return False
        return await self.send_frame(to.chat_id, render_message(msg, self.uploads_url))

    async def send_frame(self, client_id: str, frame: dict[str, object]) -> bool:
        """Send a raw protocol frame to all open sockets of a client."""
        delivered = False
        for ws in list(self._sockets.get(client_id, ())):
            if ws.closed:
                self.unregister(client_id, ws)
                continue
            try:
                await ws.send_json(frame)
            except (ConnectionError, RuntimeError) as exc:
                log.info("web chat: dropping a dead socket of %s: %s", client_id, exc)
                self.unregister(client_id, ws)
                continue
            delivered = True
        return delivered

    async def close_all(self) -> None:
        """Close every socket (on shutdown, so the server does not wait for browsers)."""
        for client_id in list(self._sockets):
            for ws in list(self._sockets.get(client_id, ())):
                await ws.close(code=WSCloseCode.GOING_AWAY, message=b"server shutdown")
                self.unregister(client_id, ws)
