"""A strict parser of Telegram's ``parse_mode=HTML`` for the fake Bot API.

It accepts the tags the Bot API documents and nothing else, and reports errors
with the wording of the real server (``can't parse entities: ...``). It is a little
stricter than the real parser about ``&``: a bare ampersand that does not start an
entity is an error here, because the API documentation requires escaping it and a
bot that forgets is one input away from a real failure.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

ALLOWED_TAGS = {
    "b": "bold",
    "strong": "bold",
    "i": "italic",
    "em": "italic",
    "u": "underline",
    "ins": "underline",
    "s": "strikethrough",
    "strike": "strikethrough",
    "del": "strikethrough",
    "a": "text_link",
    "code": "code",
    "pre": "pre",
    "tg-spoiler": "spoiler",
    "span": "spoiler",
    "blockquote": "blockquote",
}
_NAMED_ENTITIES = {"lt": "<", "gt": ">", "amp": "&", "quot": '"'}
_ENTITY = re.compile(r"&(#[0-9]{1,7}|#x[0-9a-fA-F]{1,6}|[a-zA-Z]+);")
_START = re.compile(
    r"<([a-zA-Z][a-zA-Z0-9-]*)((?:\s+[a-zA-Z-]+(?:\s*=\s*(?:\"[^\"]*\"|'[^']*'|[^\s>\"']+))?)*)\s*>"
)
_END = re.compile(r"</([a-zA-Z][a-zA-Z0-9-]*)\s*>")
_ATTR = re.compile(r"([a-zA-Z-]+)(?:\s*=\s*(\"[^\"]*\"|'[^']*'|[^\s>\"']+))?")


class EntityParseError(ValueError):
    """The text is not valid Telegram HTML; ``str(e)`` is the server's wording."""


@dataclass(frozen=True)
class Entity:
    type: str
    offset: int
    length: int
    url: str | None = None


def _byte_offset(text: str, index: int) -> int:
    return len(text[:index].encode("utf-8"))


def _utf16_len(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def _decode_entity(match: re.Match[str]) -> str | None:
    body = match.group(1)
    if body.startswith("#x"):
        code = int(body[2:], 16)
    elif body.startswith("#"):
        code = int(body[1:])
    else:
        return _NAMED_ENTITIES.get(body)
    return chr(code) if 0 < code <= 0x10FFFF else None


def _attrs(raw: str) -> dict[str, str]:
    result = {}
    for name, value in _ATTR.findall(raw):
        value = value[1:-1] if value[:1] in "\"'" else value
        result[name.lower()] = _ENTITY.sub(lambda m: _decode_entity(m) or m.group(0), value)
    return result


def parse_html(text: str) -> tuple[str, list[Entity]]:
    """Return the plain text and its entities, or raise :class:`EntityParseError`."""
    out: list[str] = []
    entities: list[Entity] = []
    stack: list[tuple[str, int, dict[str, str]]] = []  # tag, utf-16 offset, attrs
    i = 0
    while i < len(text):
        ch = text[i]
        if ch == "&":
            m = _ENTITY.match(text, i)
            decoded = _decode_entity(m) if m else None
            if decoded is None:
                raise EntityParseError(
                    'can\'t parse entities: Unsupported HTML entity or bare "&" '
                    f"at byte offset {_byte_offset(text, i)}"
                )
            out.append(decoded)
            i = m.end()  # type: ignore[union-attr]
            continue
        if ch != "<":
            out.append(ch)
            i += 1
            continue
        offset = _byte_offset(text, i)
        if text.startswith("</", i):
            m = _END.match(text, i)
            if not m:
                raise EntityParseError(
                    f"can't parse entities: Unexpected end tag at byte offset {offset}"
                )
            name = m.group(1).lower()
            if not stack:
                raise EntityParseError(
                    f"can't parse entities: Unexpected end tag at byte offset {offset}"
                )
            open_name, start, attrs = stack.pop()
            if name != open_name:
                raise EntityParseError(
                    f"can't parse entities: Unmatched end tag at byte offset {offset}, "
                    f'expected "</{open_name}>", found "</{name}>"'
                )
            length = _utf16_len("".join(out)) - start
            if length:
                entities.append(Entity(ALLOWED_TAGS[name], start, length, attrs.get("href")))
            i = m.end()
            continue
        m = _START.match(text, i)
        name = m.group(1).lower() if m else ""
        if not m or name not in ALLOWED_TAGS:
            raise EntityParseError(
                f'can\'t parse entities: Unsupported start tag "{name}" at byte offset {offset}'
            )
        attrs = _attrs(m.group(2))
        if name == "a" and "href" not in attrs:
            raise EntityParseError(
                f'can\'t parse entities: Tag "a" must have attribute "href" at byte offset {offset}'
            )
        if name == "span" and attrs.get("class") != "tg-spoiler":
            raise EntityParseError(
                'can\'t parse entities: Tag "span" must have class "tg-spoiler" '
                f"at byte offset {offset}"
            )
        stack.append((name, _utf16_len("".join(out)), attrs))
        i = m.end()
    if stack:
        raise EntityParseError(
            "can't parse entities: Can't find end tag corresponding to start tag "
            f'"{stack[-1][0]}"'
        )
    return "".join(out), entities
