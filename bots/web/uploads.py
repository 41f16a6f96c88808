"""Photo uploads of the web chat: sniffing, storing and finding them again.

A photo is uploaded over HTTP first (``POST /chat/upload``) and then referred to by id in
a ``photo`` frame. Files live as ``<uploads_dir>/<id>``, where ``id`` is 32 random hex
digits; the id is checked against that pattern before it touches the file system, so a
request can never name a path outside ``uploads_dir``. The mime type is never taken from
the client: it is detected from the file's first bytes.
"""

from __future__ import annotations

import asyncio
import re
import secrets
from dataclasses import dataclass
from pathlib import Path

_ID_RE = re.compile(r"[0-9a-f]{32}")
#: Enough bytes to recognise every supported format.
SNIFF_BYTES = 16


def sniff_image_mime(head: bytes) -> str | None:
    """Return the mime type of a JPEG, PNG, WebP or GIF image from its first bytes.

    Returns ``None`` for anything else, whatever the client claimed the file was.
    """
    if head.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if head.startswith((b"GIF87a", b"GIF89a")):
        return "image/gif"
    if len(head) >= 12 and head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image/webp"
    return None


def is_upload_id(text: str) -> bool:
    """True if ``text`` has the shape of an id this store hands out."""
    return bool(_ID_RE.fullmatch(text))


@dataclass(frozen=True, slots=True)
class StoredUpload:
    """A photo on disk: its id, where it is and what it is."""

    id: str
    path: Path
    mime: str


class UploadStore:
    """Saves uploaded images under one directory and finds them by id."""

    def __init__(self, directory: Path) -> None:
        self._dir = Path(directory)

    @property
    def directory(self) -> Path:
        return self._dir

    async def save(self, data: bytes) -> StoredUpload:
        """Store an image and return its new id.

        :raises ValueError: if ``data`` is not a supported image.
        """
        mime = sniff_image_mime(data[:SNIFF_BYTES])
        if mime is None:
            raise ValueError("not a JPEG, PNG, WebP or GIF image")
        upload_id = secrets.token_hex(16)
        path = self._dir / upload_id
        await asyncio.to_thread(self._write, path, data)
        return StoredUpload(upload_id, path, mime)

    def _write(self, path: Path, data: bytes) -> None:
        self._dir.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".part")
        tmp.write_bytes(data)
        tmp.replace(path)  # a half-written file never has a valid id

    async def get(self, upload_id: str) -> StoredUpload | None:
        """Return the stored upload with this id, or ``None`` if there is none."""
        if not is_upload_id(upload_id):
            return None
        path = self._dir / upload_id
        head = await asyncio.to_thread(self._read_head, path)
        if head is None:
            return None
        mime = sniff_image_mime(head)
        return StoredUpload(upload_id, path, mime) if mime else None

    @staticmethod
    def _read_head(path: Path) -> bytes | None:
        try:
            with path.open("rb") as f:
                return f.read(SNIFF_BYTES)
        except (FileNotFoundError, IsADirectoryError):
            return None
