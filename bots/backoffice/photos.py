"""An operator's photo in a complaint's topic, made something the citizen's channel shows.

A Telegram citizen gets it by its ``file_id``. Other channels cannot use a Telegram file:
the photo is downloaded from Telegram once, then uploaded to VK through VK's photo upload
flow (``photos.getMessagesUploadServer`` → POST → ``photos.saveMessagesPhoto``) and sent
as ``vk:photo<owner>_<id>_<key>``, or stored with the web chat's uploads and sent as
``web:<id>`` (the page shows it from ``/chat/uploads/<id>``). This happens when the
operator sends the photo, before anything is written: the outbox row then holds a
reference the channel's worker sends as it is, and nothing is uploaded inside a
transaction or twice when a row is retried.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from aiogram import Bot

from bots.web.uploads import UploadStore
from dialogue.messages import Address, Attachment, AttachmentKind, Channel

log = logging.getLogger(__name__)


class RelayFailed(Exception):
    """The photo could not be made ready for the citizen's channel."""


class PhotoRelay:
    """Holds what the conversion needs: the web chat's uploads directory and a VK API
    (made on first use, closed by :meth:`close`)."""

    def __init__(self, *, uploads_dir: Path | None = None, vk_token: str = "",
                 vk_api_url: str | None = None) -> None:
        self.uploads_dir = uploads_dir
        self.vk_token = vk_token
        self.vk_api_url = vk_api_url
        self._vk_api: Any = None

    async def attachment(self, bot: Bot, file_id: str, to: Address) -> Attachment:
        """The photo as ``to``'s channel can send it; :class:`RelayFailed` if it cannot."""
        if to.channel is Channel.TELEGRAM:
            return Attachment(AttachmentKind.PHOTO, f"telegram:{file_id}", "image/jpeg")
        data = await self._download(bot, file_id)
        if to.channel is Channel.WEB and self.uploads_dir is not None:
            try:
                stored = await UploadStore(self.uploads_dir).save(data)
            except (OSError, ValueError) as exc:
                raise RelayFailed(f"cannot store the photo: {exc}") from exc
            return Attachment(AttachmentKind.PHOTO, f"web:{stored.id}", stored.mime)
        if to.channel is Channel.VK and self.vk_token:
            return Attachment(AttachmentKind.PHOTO, f"vk:{await self._to_vk(data, to)}",
                              "image/jpeg")
        raise RelayFailed(f"photos cannot be relayed to {to.channel.value}")

    async def _download(self, bot: Bot, file_id: str) -> bytes:
        try:
            found = await bot.download(file_id)
        except Exception as exc:  # Telegram refused or is unreachable
            raise RelayFailed(f"cannot download the photo: {exc!r}") from exc
        if found is None:
            raise RelayFailed("cannot download the photo")
        return found.getvalue()

    async def _to_vk(self, data: bytes, to: Address) -> str:
        from vkbottle import PhotoMessageUploader  # slow to import: only when VK is used

        from bots.vk.channel import make_api

        if self._vk_api is None:
            self._vk_api = make_api(self.vk_token, self.vk_api_url)
        try:
            ref = await PhotoMessageUploader(self._vk_api).upload(data, peer_id=int(to.chat_id))
        except Exception as exc:  # VK refused, is unreachable, or answered garbage
            raise RelayFailed(f"cannot upload the photo to VK: {exc!r}") from exc
        return str(ref)

    async def close(self) -> None:
        if self._vk_api is not None:
            await self._vk_api.http_client.close()
            self._vk_api = None
