"""Turning an :class:`OutgoingMessage` into ``messages.send`` parameters (no network here).

:func:`render` returns a :class:`Rendered`: the parameter dicts to send in order and the
numbered choices the citizen may type instead of pressing a button. The rules:

* Text is plain (VK has no markup to escape) and is sent exactly as the core wrote it,
  split below VK's 4096-character limit on line breaks where possible (then on spaces,
  then anywhere); the one newline or space at a cut is the only character dropped.
* ``random_id`` — VK's idempotency key — is derived from a hash of (peer, ``key``, part).
  With a ``key`` that names the logical message (an outbox row id, say), a retry after a
  crash or a lost reply never duplicates it; without one a random key is drawn per
  :func:`render` call, so the retries of *that* call are still de-duplicated while two
  equal replies to two questions both arrive.
* ``buttons`` become **callback** buttons (``{"p": payload}`` JSON, at most 255 characters;
  longer payloads are dropped and logged) in an inline keyboard within VK's limits (6 rows,
  5 per row, 10 in all). Labels are cut to 40 characters with "…". A layout over the
  limits keeps the buttons that fit — the first rows and the last one (navigation such as
  "Back" or "More »" usually lives there) — and every option is also listed, numbered, at
  the end of the text; :attr:`Rendered.choices` maps the numbers to payloads.
* ``request_location`` makes the keyboard a regular one-time keyboard (under the input
  field) with a ``location`` button on its own row above the message's buttons (limits
  10 rows, 5 per row, 40 in all). There the buttons are **text** buttons (the same
  ``{"p": payload}``): ``one_time`` hides the keyboard only after a text or location
  button, and a callback "Skip" would leave a stale location keyboard behind.
  ``remove_keyboard`` sends ``{"buttons": [], "one_time": true}`` unless the message has
  buttons of its own (one keyboard per message).
* Photo attachments of VK origin (``vk:photo<owner>_<id>[_<key>]`` or bare
  ``photo…``) ride on the first part as ``attachment``; other channels' files cannot be
  sent by reference and are skipped with a log line. The keyboard rides on the last part.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import secrets
from dataclasses import dataclass, field
from typing import Any

from bots.texts import N_, translate
from dialogue.messages import Attachment, AttachmentKind, Button, OutgoingMessage

log = logging.getLogger(__name__)

MAX_TEXT = 4096
MAX_LABEL = 40
MAX_PAYLOAD = 255
MAX_ATTACHMENTS = 10
INLINE_LIMITS = (6, 5, 10)  # rows, buttons per row, buttons in all
REGULAR_LIMITS = (10, 5, 40)
EMPTY_TEXT = "…"
CHOOSE_HINT = N_("Press a button or send the number of an option.")
_PHOTO_REF = re.compile(r"photo-?\d+_\d+(?:_[0-9a-zA-Z]+)?")

Rows = list[list[Button]]


@dataclass(frozen=True)
class Rendered:
    """What :func:`render` decided: ``sends`` (``messages.send`` parameters, in order) and
    ``choices`` (typed number → payload; empty unless the buttons did not all fit)."""

    sends: list[dict[str, Any]]
    choices: dict[str, str] = field(default_factory=dict)


def _units(text: str) -> int:
    """UTF-16 code units: never fewer than the characters VK counts."""
    return len(text.encode("utf-16-le")) // 2


def split_text(text: str, limit: int = MAX_TEXT) -> list[str]:
    """Pieces of at most ``limit`` units, cut at line breaks, else spaces, else anywhere."""
    pieces: list[str] = []
    rest = text
    while _units(rest) > limit:
        head = _prefix(rest, limit)
        cut = head.rfind("\n")
        if cut <= 0:
            cut = head.rfind(" ")
        if cut <= 0:
            pieces.append(head)
            rest = rest[len(head):]
        else:
            pieces.append(rest[:cut])
            rest = rest[cut + 1:]  # the separator at the cut is the one thing dropped
    pieces.append(rest)
    return [p for p in pieces if p.strip()]


def _prefix(text: str, limit: int) -> str:
    units = 0
    for i, ch in enumerate(text):
        units += 2 if ord(ch) > 0xFFFF else 1
        if units > limit:
            return text[:i]
    return text


def random_id(peer_id: int, key: str, part: int) -> int:
    """A positive 31-bit ``random_id`` that depends only on (peer, key, part)."""
    digest = hashlib.sha256(f"{peer_id}:{key}:{part}".encode()).digest()
    return int.from_bytes(digest[:4], "big") % (2**31 - 1) + 1


def label(text: str) -> str:
    """A button label within VK's 40 characters."""
    text = " ".join(text.split())
    return text if len(text) <= MAX_LABEL else text[:MAX_LABEL - 1].rstrip() + "…"


def callback_payload(payload: str) -> str | None:
    """``{"p": payload}`` as JSON, or ``None`` if VK would refuse it (over 255 characters)."""
    raw = json.dumps({"p": payload})
    return raw if len(raw) <= MAX_PAYLOAD else None


def _sendable(rows: tuple[tuple[Button, ...], ...]) -> Rows:
    out: Rows = []
    for row in rows:
        kept = []
        for button in row:
            if callback_payload(button.payload) is None or not button.payload:
                log.warning("vk: dropping button %r: payload %r does not fit %d characters",
                            button.label, button.payload, MAX_PAYLOAD)
            elif not button.label.strip():
                log.warning("vk: dropping a button without a label (%r)", button.payload)
            else:
                kept.append(button)
        if kept:
            out.append(kept)
    return out


def _fits(rows: Rows, limits: tuple[int, int, int]) -> bool:
    max_rows, max_row, max_total = limits
    return (len(rows) <= max_rows and all(len(r) <= max_row for r in rows)
            and sum(map(len, rows)) <= max_total)


def _fit(rows: Rows, limits: tuple[int, int, int]) -> Rows:
    """The buttons that fit: the first rows, and the last row kept whole if it can be."""
    max_rows, max_row, max_total = limits
    rows = [r[:max_row] for r in rows]
    last = rows.pop() if len(rows) > 1 and len(rows[-1]) < max_total else None
    if last is not None:
        max_rows, max_total = max_rows - 1, max_total - len(last)
    kept: Rows = []
    count = 0
    for row in rows:
        take = row[:max_total - count]
        if len(kept) == max_rows or not take:
            break
        kept.append(take)
        count += len(take)
    return [*kept, last] if last is not None else kept


def _button(button: Button, kind: str = "callback") -> dict[str, Any]:
    return {"action": {"type": kind, "label": label(button.label),
                       "payload": callback_payload(button.payload)}}


def _numbered(rows: Rows, language: str) -> tuple[str, dict[str, str]]:
    buttons = [b for row in rows for b in row]
    lines = [f"{i}. {' '.join(b.label.split())}" for i, b in enumerate(buttons, 1)]
    lines.append(translate(CHOOSE_HINT, language))
    return "\n".join(lines), {str(i): b.payload for i, b in enumerate(buttons, 1)}


def vk_attachment(attachment: Attachment) -> str | None:
    """The ``photo<owner>_<id>[_<key>]`` string of a VK photo, or ``None``."""
    if attachment.kind is not AttachmentKind.PHOTO:
        return None
    channel, sep, rest = attachment.ref.partition(":")
    ref = rest if sep and channel == "vk" else attachment.ref if not sep else ""
    return ref if _PHOTO_REF.fullmatch(ref) else None


def keyboard_of(msg: OutgoingMessage, language: str = "ru") -> tuple[str | None, str,
                                                                   dict[str, str]]:
    """The ``keyboard`` JSON (or ``None``), a numbered list to append to the text (or
    ``""``) and the numbered choices."""
    rows = _sendable(msg.buttons)
    limits = REGULAR_LIMITS if msg.request_location else INLINE_LIMITS
    if msg.request_location:
        limits = (limits[0] - 1, limits[1], limits[2] - 1)  # the location row
    listing, choices = "", {}
    if rows and not _fits(rows, limits):
        listing, choices = _numbered(rows, language)
        rows = _fit(rows, limits)
    kind = "text" if msg.request_location else "callback"
    buttons = [[_button(b, kind) for b in row] for row in rows]
    if msg.request_location:
        keyboard: dict[str, Any] = {"one_time": True,
                                    "buttons": [[{"action": {"type": "location"}}], *buttons]}
    elif buttons:
        keyboard = {"inline": True, "buttons": buttons}
    elif msg.remove_keyboard:
        keyboard = {"buttons": [], "one_time": True}
    else:
        return None, listing, choices
    return json.dumps(keyboard, ensure_ascii=False), listing, choices


def render(peer_id: int, msg: OutgoingMessage, *, key: str | None = None,
           language: str | None = None) -> Rendered:
    """The ``messages.send`` calls that show ``msg`` to ``peer_id``.

    :param key: names the logical message for de-duplication (see the module docstring).
    :param language: of the few words the adapter adds (the hint under a numbered list);
        by default the message's.
    """
    key = key if key is not None else secrets.token_hex(8)
    refs = []
    for attachment in msg.attachments:
        ref = vk_attachment(attachment)
        if ref is None:
            log.info("vk: cannot send attachment %r by reference; skipped", attachment.ref)
        else:
            refs.append(ref)
    if len(refs) > MAX_ATTACHMENTS:
        log.warning("vk: %d photos in one message; only %d sent", len(refs), MAX_ATTACHMENTS)
        refs = refs[:MAX_ATTACHMENTS]
    keyboard, listing, choices = keyboard_of(msg, language or msg.language)
    text = f"{msg.text}\n\n{listing}" if listing and msg.text else listing or msg.text
    pieces = split_text(text)
    if not pieces and (keyboard or not refs):
        pieces = [EMPTY_TEXT]  # a keyboard needs a message to hang on
    sends: list[dict[str, Any]] = []
    for part, piece in enumerate(pieces or [""]):
        params: dict[str, Any] = {"peer_id": peer_id,
                                  "random_id": random_id(peer_id, key, part)}
        if piece:
            params["message"] = piece
        if part == 0 and refs:
            params["attachment"] = ",".join(refs)
        if part == len(pieces) - 1 and keyboard is not None:
            params["keyboard"] = keyboard
        sends.append(params)
    return Rendered(sends, choices)
