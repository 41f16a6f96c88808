"""What a broadcast looks like to a citizen, and the Moscow time staff schedule it in.

Every broadcast carries an unsubscribe button (``unsub:<broadcast id>``, far under
Telegram's 64 bytes) that the dialogue answers (``dialogue/flows/broadcast.py``). Link
buttons are written as lines under the text: the boundary ``Button`` has a payload, not a
URL, so every channel shows them the same way until adapters learn URL buttons.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from dialogue.i18n import normalize_language
from dialogue.messages import Attachment, AttachmentKind, Button, OutgoingMessage
from domain.broadcast import Broadcast
from notifications.texts import N_, translate

MOSCOW = ZoneInfo("Europe/Moscow")
UNSUBSCRIBE = N_("🔕 Unsubscribe from news")
UNSUBSCRIBE_PREFIX = "unsub"


def unsubscribe_payload(broadcast_id: int) -> str:
    return f"{UNSUBSCRIBE_PREFIX}:{broadcast_id}"


def is_broadcast_key(key: str | None) -> bool:
    """Whether an outbox ``dedup_key`` is a broadcast row's
    (:func:`domain.storage.broadcasts.dedup_key`, ``bc:<broadcast>:<citizen>``)."""
    return key is not None and key.startswith("bc:")


def broadcast_message(broadcast: Broadcast, language: str) -> OutgoingMessage:
    """The message as ``language``'s citizens get it."""
    assert broadcast.id is not None
    lang = normalize_language(language)
    text = broadcast.text
    if broadcast.links:
        text += "\n\n" + "\n".join(f"🔗 {link.label}: {link.url}" for link in broadcast.links)
    attachments = ((Attachment(AttachmentKind.PHOTO, broadcast.photo),)
                   if broadcast.photo else ())
    button = Button(translate(lang, UNSUBSCRIBE), unsubscribe_payload(broadcast.id))
    return OutgoingMessage(text, buttons=((button,),), attachments=attachments,
                           language=lang)


def broadcast_payload(broadcast: Broadcast, language: str) -> dict[str, Any]:
    """The outbox payload (see :meth:`OutgoingMessage.to_json`)."""
    msg = broadcast_message(broadcast, language)
    return {**msg.to_json(), "language": msg.language}


def parse_moscow(text: str) -> datetime:
    """``"2026-12-01 10:00"`` read as Moscow time (an explicit offset is honoured),
    returned in UTC."""
    try:
        value = datetime.fromisoformat(text.strip().replace("T", " "))
    except ValueError:
        raise ValueError(f"not a date and time (YYYY-MM-DD HH:MM): {text!r}") from None
    if value.tzinfo is None:
        value = value.replace(tzinfo=MOSCOW)
    return value.astimezone(UTC)


def moscow(at: datetime | None) -> str:
    """``at`` as Moscow time for people, ``"—"`` for none."""
    return at.astimezone(MOSCOW).strftime("%Y-%m-%d %H:%M") if at else "—"
