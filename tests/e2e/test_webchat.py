"""The web chat end to end: a real aiohttp server on 127.0.0.1, a real aiohttp client."""

from __future__ import annotations

import asyncio
import json
import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from aiohttp import ClientSession, ClientWebSocketResponse, FormData, WSMsgType

from bots.web import sniff_image_mime
from dialogue.messages import (
    Address,
    Attachment,
    AttachmentKind,
    Channel,
    Location,
    OutgoingMessage,
)
from tests.e2e.browser import needs_chromium
from tests.fakes.engine import FakeEngine
from tests.fakes.images import png_bytes

CLIENT = "3f1c2a9e-5b7d-4c1e-9a0b-6d2e8f4a7c11"


async def connect(http: ClientSession, chat: Any, client_id: str = CLIENT,
                  lang: str = "ru") -> ClientWebSocketResponse:
    ws = await http.ws_connect(chat.ws_url())
    await ws.send_json({"type": "hello", "client_id": client_id, "lang": lang})
    return ws


async def recv(ws: ClientWebSocketResponse) -> dict[str, Any]:
    frame = await ws.receive_json(timeout=5)
    assert isinstance(frame, dict)
    return frame


async def upload(http: ClientSession, chat: Any, data: bytes, name: str = "photo.png",
                 content_type: str = "image/png") -> tuple[int, dict[str, Any]]:
    form = FormData()
    form.add_field("file", data, filename=name, content_type=content_type)
    async with http.post(f"{chat.url}/chat/upload", data=form) as resp:
        return resp.status, await resp.json()


# --- text, buttons, location ----------------------------------------------------------
async def test_text_reaches_engine_as_web_message_and_reply_comes_back(webchat, webchat_http):
    ws = await connect(webchat_http, webchat)
    await ws.send_json({"type": "text", "text": "Яма на дороге\nул. Ленина, 5"})
    assert await recv(ws) == {"type": "message", "text": "echo: Яма на дороге\nул. Ленина, 5",
                              "buttons": [], "request_location": False,
                              "remove_keyboard": False, "attachments": []}
    [msg] = webchat.engine.received
    assert msg.address == Address(Channel.WEB, CLIENT)
    assert msg.user_id == CLIENT
    assert msg.text == "Яма на дороге\nул. Ленина, 5"
    assert msg.payload is None and msg.location is None and msg.attachments == ()
    assert msg.language_hint == "ru"
    assert msg.received_at is not None and msg.received_at.tzinfo is not None
    assert abs(datetime.now(UTC) - msg.received_at) < timedelta(seconds=5)


async def test_buttons_are_rendered_in_rows(webchat, webchat_http):
    ws = await connect(webchat_http, webchat)
    await ws.send_json({"type": "text", "text": "menu"})
    frame = await recv(ws)
    assert frame["text"] == "Choose a sector"
    assert frame["buttons"] == [
        [{"label": "Дороги", "payload": "sector:roads"},
         {"label": "Мусор", "payload": "sector:waste"}],
        [{"label": "Back", "payload": "menu:back"}],
    ]


async def test_button_press_reaches_engine_as_payload(webchat, webchat_http):
    ws = await connect(webchat_http, webchat)
    await ws.send_json({"type": "button", "payload": "sector:roads"})
    assert (await recv(ws))["text"] == "payload: sector:roads"
    [msg] = webchat.engine.received
    assert msg.payload == "sector:roads" and msg.text == ""


async def test_location_reaches_engine(webchat, webchat_http):
    ws = await connect(webchat_http, webchat)
    await ws.send_json({"type": "text", "text": "where"})
    assert (await recv(ws))["request_location"] is True
    await ws.send_json({"type": "location", "latitude": 42.9849, "longitude": 47.5047})
    assert (await recv(ws))["text"] == "location: 42.9849, 47.5047"
    assert webchat.engine.received[-1].location == Location(42.9849, 47.5047)


async def test_several_replies_arrive_in_order(webchat, webchat_http):
    ws = await connect(webchat_http, webchat)
    await ws.send_json({"type": "text", "text": "two"})
    assert [(await recv(ws))["text"], (await recv(ws))["text"]] == ["first", "second"]


async def test_over_long_text_is_still_passed_to_the_engine(webchat, webchat_http):
    ws = await connect(webchat_http, webchat)
    # as a browser sends it: JSON.stringify does not escape Cyrillic (24 KB, not 72 KB)
    await ws.send_str(json.dumps({"type": "text", "text": "я" * 12_000}, ensure_ascii=False))
    assert (await recv(ws))["text"] == "too long: 12000"
    assert len(webchat.engine.received[0].text) == 12_000


async def test_english_hello_sets_language_hint_and_error_language(webchat, webchat_http):
    ws = await connect(webchat_http, webchat, lang="en")
    await ws.send_str("{oops")
    assert (await recv(ws))["text"] == "The frame is not a JSON object."
    await ws.send_json({"type": "text", "text": "hi"})
    await recv(ws)
    assert webchat.engine.received[0].language_hint == "en"


# --- photos -------------------------------------------------------------------------
async def test_photo_upload_then_photo_frame_reaches_engine(webchat, webchat_http):
    png = png_bytes()
    status, body = await upload(webchat_http, webchat, png)
    assert status == 200
    upload_id = body["id"]
    assert re.fullmatch(r"[0-9a-f]{32}", upload_id) and body["mime"] == "image/png"
    assert (webchat.uploads_dir / upload_id).read_bytes() == png

    ws = await connect(webchat_http, webchat)
    await ws.send_json({"type": "photo", "upload_id": upload_id, "text": "вот яма"})
    frame = await recv(ws)
    assert frame["text"] == f"attachments: {upload_id} (image/png)\ncaption: вот яма"
    assert frame["attachments"] == [{"kind": "photo", "ref": f"web:{upload_id}",
                                     "mime": "image/png", "name": "",
                                     "url": f"/chat/uploads/{upload_id}"}]
    [msg] = webchat.engine.received
    assert msg.attachments == (Attachment(AttachmentKind.PHOTO, upload_id, "image/png"),)
    assert msg.text == "вот яма"

    async with webchat_http.get(webchat.url + frame["attachments"][0]["url"]) as resp:
        assert resp.status == 200
        assert resp.headers["Content-Type"] == "image/png"
        assert resp.headers["X-Content-Type-Options"] == "nosniff"
        assert await resp.read() == png


async def test_mime_is_sniffed_not_taken_from_the_client(webchat, webchat_http):
    jpeg = b"\xff\xd8\xff\xe0" + b"\x00" * 100
    status, body = await upload(webchat_http, webchat, jpeg, name="x.png",
                                content_type="image/png")
    assert status == 200 and body["mime"] == "image/jpeg"


@pytest.mark.parametrize("content_type", ["text/plain", "image/png"])
async def test_text_file_is_refused_with_415(webchat, webchat_http, content_type):
    status, body = await upload(webchat_http, webchat, b"just some text\n" * 10,
                                name="notes.txt", content_type=content_type)
    assert status == 415
    assert body["type"] == "error" and body["code"] == "not_image"
    assert "JPEG, PNG" in body["text"]
    assert list(webchat.uploads_dir.glob("*")) == []


@pytest.mark.parametrize("size", [4096, 200_000])  # streamed count; Content-Length check
async def test_oversize_upload_is_refused_with_413(start_webchat, webchat_http, size):
    chat = await start_webchat(max_upload_bytes=1024)
    data = png_bytes() + b"\x00" * size
    status, body = await upload(webchat_http, chat, data)
    assert status == 413
    assert body["code"] == "too_large"
    assert not chat.uploads_dir.exists() or list(chat.uploads_dir.iterdir()) == []


async def test_upload_without_multipart_body_is_a_400(webchat, webchat_http):
    async with webchat_http.post(f"{webchat.url}/chat/upload", data=b"raw") as resp:
        assert resp.status == 400
        assert (await resp.json())["code"] == "bad_upload"


@pytest.mark.parametrize("name", ["secret", "..%2F..%2Fsecret", "0" * 32, "0" * 31 + "G"])
async def test_only_existing_upload_ids_are_served(webchat, webchat_http, name):
    webchat.uploads_dir.mkdir(parents=True, exist_ok=True)
    (webchat.uploads_dir / "secret").write_bytes(png_bytes())
    (webchat.uploads_dir.parent / "secret").write_bytes(png_bytes())
    async with webchat_http.get(f"{webchat.url}/chat/uploads/{name}") as resp:
        assert resp.status == 404


def test_sniffing_recognises_the_four_formats_only():
    assert sniff_image_mime(png_bytes()[:16]) == "image/png"
    assert sniff_image_mime(b"\xff\xd8\xff\xdb" + b"\x00" * 12) == "image/jpeg"
    assert sniff_image_mime(b"GIF89a" + b"\x00" * 10) == "image/gif"
    assert sniff_image_mime(b"RIFF\x10\x00\x00\x00WEBPVP8 ") == "image/webp"
    assert sniff_image_mime(b"RIFF\x10\x00\x00\x00WAVEfmt ") is None
    assert sniff_image_mime(b"%PDF-1.7") is None
    assert sniff_image_mime(b"") is None


# --- bad frames -----------------------------------------------------------------------
@pytest.mark.parametrize(("frame", "code"), [
    ("not json at all", "bad_json"),
    ("[1, 2, 3]", "bad_json"),
    ('{"type": "dance"}', "unknown_type"),
    ('{"text": "no type"}', "unknown_type"),
    ('{"type": "text"}', "bad_field"),
    ('{"type": "text", "text": 42}', "bad_field"),
    ('{"type": "text", "text": "   "}', "empty_text"),
    ('{"type": "button"}', "bad_field"),
    ('{"type": "button", "payload": ""}', "bad_field"),
    ('{"type": "location", "latitude": "42", "longitude": 47}', "bad_field"),
    ('{"type": "location", "latitude": 100, "longitude": 47}', "bad_field"),
    ('{"type": "location", "latitude": true, "longitude": 47}', "bad_field"),
    ('{"type": "location", "latitude": 42}', "bad_field"),
    ('{"type": "photo"}', "bad_field"),
    ('{"type": "photo", "upload_id": "' + "ab" * 16 + '"}', "unknown_upload"),
    ('{"type": "photo", "upload_id": "../../etc/passwd"}', "unknown_upload"),
])
async def test_bad_frame_gets_an_error_and_the_socket_keeps_working(
        webchat, webchat_http, frame, code):
    ws = await connect(webchat_http, webchat)
    await ws.send_str(frame)
    error = await recv(ws)
    assert error["type"] == "error" and error["code"] == code
    assert error["text"]  # a human-readable explanation, in Russian by default
    await ws.send_json({"type": "text", "text": "still there?"})
    assert (await recv(ws))["text"] == "echo: still there?"
    assert [m.text for m in webchat.engine.received] == ["still there?"]


async def test_frames_before_hello_are_refused_until_hello(webchat, webchat_http):
    ws = await webchat_http.ws_connect(webchat.ws_url())
    await ws.send_json({"type": "text", "text": "hi"})
    assert (await recv(ws))["code"] == "no_hello"
    await ws.send_json({"type": "hello", "client_id": CLIENT, "lang": "ru"})
    await ws.send_json({"type": "text", "text": "hi"})
    assert (await recv(ws))["text"] == "echo: hi"
    assert len(webchat.engine.received) == 1


@pytest.mark.parametrize("client_id", ["x" * 65, "short", "has space in it", "../../etc", 42,
                                       None])
async def test_hello_with_a_bad_client_id_is_rejected(webchat, webchat_http, client_id):
    ws = await webchat_http.ws_connect(webchat.ws_url())
    await ws.send_json({"type": "hello", "client_id": client_id})
    assert (await recv(ws))["code"] == "bad_client_id"
    await ws.send_json({"type": "text", "text": "hi"})
    assert (await recv(ws))["code"] == "no_hello"
    assert webchat.engine.received == []


async def test_client_id_cannot_change_within_a_connection(webchat, webchat_http):
    ws = await connect(webchat_http, webchat)
    await ws.send_json({"type": "hello", "client_id": CLIENT})  # repeating is fine
    await ws.send_json({"type": "hello", "client_id": "another-client-1234"})
    assert (await recv(ws))["code"] == "client_changed"
    await ws.send_json({"type": "text", "text": "who am I"})
    await recv(ws)
    assert webchat.engine.received[0].user_id == CLIENT


async def test_binary_frame_gets_an_error(webchat, webchat_http):
    ws = await connect(webchat_http, webchat)
    await ws.send_bytes(b"\x00\x01")
    assert (await recv(ws))["code"] == "binary"


async def test_frame_over_64_kib_closes_the_socket_but_not_the_server(webchat, webchat_http):
    ws = await connect(webchat_http, webchat)
    await ws.send_str(json.dumps({"type": "text", "text": "a" * 70_000}))
    msg = await ws.receive(timeout=5)
    assert msg.type is WSMsgType.CLOSE and msg.data == 1009
    assert webchat.engine.received == []
    ws2 = await connect(webchat_http, webchat)
    await ws2.send_json({"type": "text", "text": "hi again"})
    assert (await recv(ws2))["text"] == "echo: hi again"


async def test_engine_failure_gets_an_error_and_the_socket_keeps_working(webchat,
                                                                         webchat_http):
    ws = await connect(webchat_http, webchat)
    await ws.send_json({"type": "text", "text": "boom"})
    assert (await recv(ws))["code"] == "internal"
    await ws.send_json({"type": "text", "text": "ok"})
    assert (await recv(ws))["text"] == "echo: ok"


# --- ordering -------------------------------------------------------------------------
async def test_messages_of_one_client_are_handled_one_at_a_time_in_order(start_webchat,
                                                                         webchat_http):
    chat = await start_webchat(FakeEngine(delay=0.02))
    tab1 = await connect(webchat_http, chat)
    tab2 = await connect(webchat_http, chat)
    for i in range(5):
        await tab1.send_json({"type": "text", "text": f"a{i}"})
        await tab2.send_json({"type": "text", "text": f"b{i}"})
    got1 = [(await recv(tab1))["text"] for _ in range(5)]
    got2 = [(await recv(tab2))["text"] for _ in range(5)]
    assert got1 == [f"echo: a{i}" for i in range(5)]
    assert got2 == [f"echo: b{i}" for i in range(5)]
    assert chat.engine.max_concurrent == 1


async def test_different_clients_are_not_serialised(start_webchat, webchat_http):
    chat = await start_webchat(FakeEngine(delay=0.1))
    one = await connect(webchat_http, chat, "client-one-0001")
    two = await connect(webchat_http, chat, "client-two-0002")
    await one.send_json({"type": "text", "text": "1"})
    await two.send_json({"type": "text", "text": "2"})
    await asyncio.gather(recv(one), recv(two))
    assert chat.engine.max_concurrent == 2


# --- the messenger --------------------------------------------------------------------
async def test_messenger_reaches_every_open_tab_of_a_client(webchat, webchat_http):
    tab1 = await connect(webchat_http, webchat)
    tab2 = await connect(webchat_http, webchat)
    await tab1.send_json({"type": "text", "text": "sync"})  # hellos are processed in order
    await recv(tab1)
    await tab2.send_json({"type": "text", "text": "sync"})
    await recv(tab2)
    answer = OutgoingMessage("Ответ оператора: яму засыпали.")
    assert await webchat.messenger.send(Address(Channel.WEB, CLIENT), answer) is True
    for tab in (tab1, tab2):
        frame = await recv(tab)
        assert frame["type"] == "message" and frame["text"] == answer.text


async def test_messenger_returns_false_when_nobody_is_there(webchat, webchat_http):
    msg = OutgoingMessage("hello?")
    assert await webchat.messenger.send(Address(Channel.WEB, "nobody-here-123"), msg) is False
    assert await webchat.messenger.send(Address(Channel.TELEGRAM, CLIENT), msg) is False
    ws = await connect(webchat_http, webchat)
    await ws.send_json({"type": "text", "text": "sync"})
    await recv(ws)
    await ws.close()
    for _ in range(50):  # the server notices the close asynchronously
        if not webchat.messenger.is_online(CLIENT):
            break
        await asyncio.sleep(0.01)
    assert await webchat.messenger.send(Address(Channel.WEB, CLIENT), msg) is False


# --- the page -------------------------------------------------------------------------
async def test_root_redirects_to_the_chat(webchat, webchat_http):
    async with webchat_http.get(webchat.url + "/", allow_redirects=False) as resp:
        assert resp.status == 302 and resp.headers["Location"] == "/chat"


async def test_page_is_self_contained_and_renders_text_safely(webchat, webchat_http):
    async with webchat_http.get(webchat.url + "/chat") as resp:
        assert resp.status == 200
        assert resp.content_type == "text/html"
        assert "default-src 'none'" in resp.headers["Content-Security-Policy"]
        html = await resp.text()
    assert '<script src="/chat/static/chat.js"' in html
    assert 'href="/chat/static/chat.css"' in html
    assert 'lang="ru"' in html and "Отправить" in html
    texts = {"html": html}
    for name, ctype in [("chat.js", "javascript"), ("chat.css", "text/css")]:
        async with webchat_http.get(f"{webchat.url}/chat/static/{name}") as resp:
            assert resp.status == 200 and ctype in resp.content_type
            texts[name] = await resp.text()
    for name, text in texts.items():
        assert not re.search(r"https?://", text), f"{name} refers to an external URL"
    js = texts["chat.js"]
    assert "textContent" in js and "innerHTML" not in js and "insertAdjacentHTML" not in js
    assert "localStorage" in js and "geolocation" in js and '"hello"' in js
    assert "white-space: pre-wrap" in texts["chat.css"]


async def test_static_route_does_not_escape_its_directory(webchat, webchat_http):
    url = f"{webchat.url}/chat/static/..%2F..%2F__init__.py"
    async with webchat_http.get(url) as resp:
        assert resp.status in (403, 404)


# --- the page in a real browser -------------------------------------------------------
async def send_text(page: Any, text: str) -> None:
    await page.fill("#input", text)
    await page.press("#input", "Enter")


@needs_chromium
async def test_browser_text_buttons_and_safe_rendering(webchat, browser_page):
    page = browser_page
    await page.goto(webchat.url + "/chat?lang=en")
    await page.wait_for_selector('#status[data-state="online"]')
    assert await page.text_content("#send") == "Send"
    # the page asks for the greeting once, without showing it as the citizen's words
    await page.wait_for_selector(".bubble.bot >> text=echo: /start")

    await send_text(page, "menu")
    await page.wait_for_selector(".bubble.bot .keyboard button")
    await page.click("text=Дороги")
    await page.wait_for_selector("text=payload: sector:roads")
    users = await page.locator(".bubble.user").all_text_contents()
    assert users == ["menu", "Дороги"]
    assert webchat.engine.received[-1].payload == "sector:roads"
    assert webchat.engine.received[0].language_hint == "en"

    hostile = '<img src=x onerror="document.title=\'pwned\'">\nline two'
    await send_text(page, hostile)
    await page.wait_for_selector(".bubble.bot >> text=line two")
    echo = page.locator(".bubble.bot p").last
    assert await echo.text_content() == "echo: " + hostile
    assert await page.locator(".bubble img").count() == 0
    assert await page.title() != "pwned"
    assert (await echo.bounding_box())["height"] > 30  # the line break is kept (pre-wrap)


@needs_chromium
async def test_browser_location_photo_identity_and_reconnect(webchat, browser_page, tmp_path):
    page = browser_page
    await page.goto(webchat.url + "/chat")
    await page.wait_for_selector('#status[data-state="online"]')
    await send_text(page, "where")
    await page.wait_for_selector("#share-location", state="visible")
    await page.click("#share-location")
    await page.wait_for_selector("text=location: 42.9849, 47.5047")
    assert webchat.engine.received[-1].location == Location(42.9849, 47.5047)

    photo = tmp_path / "pit.png"
    photo.write_bytes(png_bytes())
    await page.fill("#input", "яма")
    await page.set_input_files("#photo-input", str(photo))
    await page.wait_for_selector(".bubble.bot img")
    msg = webchat.engine.received[-1]
    assert msg.text == "яма" and msg.attachments[0].mime == "image/png"
    src = await page.get_attribute(".bubble.bot img", "src")
    assert src == "/chat/uploads/" + msg.attachments[0].ref

    client_id = await page.evaluate("localStorage.getItem('tsur.webchat.client_id')")
    assert msg.user_id == client_id
    await page.reload()
    await page.wait_for_selector('#status[data-state="online"]')
    await send_text(page, "again")
    await page.wait_for_selector("text=echo: again")
    assert webchat.engine.received[-1].user_id == client_id

    await webchat.messenger.close_all()  # the server drops the socket; the page comes back
    await page.wait_for_selector('#status[data-state="offline"]')
    await page.wait_for_selector('#status[data-state="online"]', timeout=10_000)
    await send_text(page, "back")
    await page.wait_for_selector("text=echo: back")
