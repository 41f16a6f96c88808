"""Fuzzing the web chat: arbitrary WebSocket frames and uploads against the real server.

The server runs once per module on 127.0.0.1 with the real dialogue engine over the
in-memory store. Every frame must be answered by ``error`` frames or ``message`` frames
with text (a valid ``hello`` by nothing), and the socket must stay open. To know where
the answer to one frame ends, each is followed by a barrier: a frame of an unknown type,
which the server answers with an ``unknown_type`` error naming it (frames of one socket
are handled in order).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from itertools import count
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from aiohttp import ClientSession, FormData, WSMsgType
from aiohttp.test_utils import TestServer
from hypothesis import given, settings
from hypothesis import strategies as st

from bots.web import create_web_app
from bots.web.protocol import MAX_FRAME_BYTES
from tests.fakes.dialogue import make_engine
from tests.fakes.images import png_bytes
from tests.fakes.memory import MemoryStore
from tests.fuzz import any_text, examples, forged_payloads, texts

pytestmark = pytest.mark.asyncio(loop_scope="module")
_ids = count(1)


@dataclass
class Chat:
    url: str
    http: ClientSession
    store: MemoryStore

    @property
    def ws_url(self) -> str:
        return self.url.replace("http://", "ws://", 1) + "/chat/ws"


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def chat(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Chat]:
    store = MemoryStore()
    app = create_web_app(make_engine(store), uploads_dir=tmp_path_factory.mktemp("uploads"),
                         max_upload_bytes=256 * 1024)
    server = TestServer(app, host="127.0.0.1", port=0)
    await server.start_server()
    async with ClientSession() as http:
        yield Chat(str(server.make_url("")).rstrip("/"), http, store)
    await server.close()


json_values = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), any_text),
    lambda inner: st.one_of(st.lists(inner, max_size=4),
                            st.dictionaries(any_text, inner, max_size=4)),
    max_leaves=12)
field_values = st.one_of(json_values, texts, forged_payloads,
                         st.floats(allow_nan=True, allow_infinity=True))
frame_types = st.sampled_from(["hello", "text", "button", "location", "photo", "HELLO", "",
                               "message", "error"])
frames = st.one_of(
    # well-shaped frames with odd values
    st.fixed_dictionaries({"type": frame_types}, optional={
        "text": field_values, "payload": st.one_of(forged_payloads, field_values),
        "latitude": field_values, "longitude": field_values, "upload_id": field_values,
        "client_id": st.one_of(st.just("fuzz-client-0001"), field_values),
        "lang": field_values}).map(json.dumps),
    st.fixed_dictionaries({"type": st.just("text"), "text": texts}).map(
        lambda f: json.dumps(f, ensure_ascii=False)),
    st.fixed_dictionaries({"type": st.just("button"), "payload": forged_payloads}).map(
        json.dumps),
    json_values.map(json.dumps),
    any_text,
    st.sampled_from(["", "{", "null", "[]", "{\"type\": NaN}", "{\"type\":\"text\",\"text\":"
                     "\"\\ud800\"}", "\ufeff{}", "{\"type\":\"location\",\"latitude\":NaN,"
                     "\"longitude\":Infinity}", "1e999999"]),
).filter(lambda raw: len(raw.encode("utf-8", "surrogatepass")) < MAX_FRAME_BYTES)
# (a frame over the limit closes the socket with 1009 by design: tested on its own below)


async def answers(ws: Any, barrier: str) -> list[dict[str, Any]]:
    """Frames until the barrier's error comes back."""
    got = []
    while True:
        msg = await ws.receive(timeout=10)
        assert msg.type is WSMsgType.TEXT, f"the socket ended: {msg!r}"
        frame = json.loads(msg.data)
        if frame.get("code") == "unknown_type" and barrier in frame.get("text", ""):
            return got
        got.append(frame)


def check_frame(frame: dict[str, Any]) -> None:
    assert frame.get("type") in ("message", "error"), frame
    assert isinstance(frame.get("text"), str) and frame["text"].strip(), frame
    if frame["type"] == "message":
        for row in frame["buttons"]:
            for button in row:
                assert len(button["payload"].encode()) <= 64 and button["label"], button


@settings(max_examples=examples(60))
@given(hello=st.booleans(), sequence=st.lists(frames, min_size=1, max_size=8))
async def test_any_frame_gets_an_error_or_a_message_and_the_socket_stays(
        chat: Chat, hello: bool, sequence: list[str]) -> None:
    client = f"fuzz-client-{next(_ids):04d}"
    async with chat.http.ws_connect(chat.ws_url) as ws:
        if hello:
            await ws.send_json({"type": "hello", "client_id": client, "lang": "ru"})
        for i, raw in enumerate(sequence):
            await ws.send_str(raw)
            barrier = f"barrier{i}"
            await ws.send_json({"type": barrier})
            got = await answers(ws, barrier)
            is_hello = '"hello"' in raw and not got
            assert got or is_hello, f"no answer to {raw[:200]!r}"
            for frame in got:
                check_frame(frame)
        assert not ws.closed


@settings(max_examples=examples(15))
@given(data=st.binary(max_size=2048))
async def test_binary_frames_get_an_error(chat: Chat, data: bytes) -> None:
    async with chat.http.ws_connect(chat.ws_url) as ws:
        await ws.send_bytes(data)
        frame = await ws.receive_json(timeout=5)
        assert frame["type"] == "error" and frame["code"] == "binary"


async def test_an_oversized_frame_closes_that_socket_only(chat: Chat) -> None:
    async with chat.http.ws_connect(chat.ws_url, max_msg_size=0) as ws:
        await ws.send_json({"type": "hello", "client_id": "fuzz-oversized-1", "lang": "ru"})
        await ws.send_str(json.dumps({"type": "text", "text": "x" * MAX_FRAME_BYTES}))
        msg = await ws.receive(timeout=5)
        assert msg.type in (WSMsgType.CLOSE, WSMsgType.CLOSED, WSMsgType.CLOSING)
        assert ws.close_code == 1009
    async with chat.http.ws_connect(chat.ws_url) as ws:  # the server is still there
        await ws.send_json({"type": "hello", "client_id": "fuzz-oversized-2", "lang": "ru"})
        await ws.send_json({"type": "text", "text": "/start"})
        assert (await ws.receive_json(timeout=5))["type"] == "message"


uploads = st.one_of(
    st.binary(max_size=4096),
    st.builds(lambda head, tail: head + tail,
              st.sampled_from([b"\xff\xd8\xff", b"\x89PNG\r\n\x1a\n", b"GIF89a",
                               b"RIFF\x00\x00\x00\x00WEBP", b"<svg onload=alert(1)>",
                               b"<html><script>"]),
              st.binary(max_size=512)),
)
OVERSIZED = b"\xff\xd8\xff" + b"\x00" * (300 * 1024)  # over this server's limit
# what an HTTP client can put in a header (aiohttp refuses control characters itself)
header_text = st.text(st.characters(min_codepoint=32, exclude_categories=("Cs", "Cc")),
                      max_size=80)


@settings(max_examples=examples(30))
@given(body=uploads, big=st.booleans(), name=header_text, content_type=st.sampled_from(
    ["image/png", "image/jpeg", "text/html", "application/octet-stream", "image/svg+xml"]),
       field=st.sampled_from(["file", "photo", ""]), lang=st.one_of(any_text, st.just("en")))
async def test_uploads_are_stored_or_refused_never_a_server_error(
        chat: Chat, body: bytes, big: bool, name: str, content_type: str, field: str,
        lang: str) -> None:
    body = OVERSIZED if big else body
    form = FormData()
    form.add_field(field or "x", body, filename=name or "f", content_type=content_type)
    async with chat.http.post(f"{chat.url}/chat/upload", data=form,
                              params={"lang": lang}) as resp:
        assert resp.status in (200, 400, 413, 415), resp.status
        reply = await resp.json()
    if resp.status == 200:
        async with chat.http.get(chat.url + reply["url"]) as got:
            assert got.status == 200
            assert got.headers["Content-Type"] in ("image/png", "image/jpeg", "image/gif",
                                                   "image/webp")
            assert got.headers["X-Content-Type-Options"] == "nosniff"
    else:
        assert reply["type"] == "error" and reply["text"]


@settings(max_examples=examples(15))
@given(body=st.one_of(st.binary(max_size=1024), any_text.map(str.encode)),
       content_type=st.sampled_from(["multipart/form-data", "multipart/form-data; boundary=x",
                                     "application/json", "text/plain", ""]))
async def test_malformed_upload_requests_are_refused(chat: Chat, body: bytes,
                                                     content_type: str) -> None:
    headers = {"Content-Type": content_type} if content_type else {}
    async with chat.http.post(f"{chat.url}/chat/upload", data=body, headers=headers) as resp:
        assert resp.status in (400, 413, 415), resp.status


async def test_a_real_photo_still_goes_through(chat: Chat, tmp_path: Path) -> None:
    form = FormData()
    form.add_field("file", png_bytes(), filename="p.png", content_type="image/png")
    async with chat.http.post(f"{chat.url}/chat/upload", data=form) as resp:
        assert resp.status == 200
