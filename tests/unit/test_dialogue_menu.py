"""My complaints, adding details, subscriptions, language and help."""

from __future__ import annotations

from dialogue.messages import Attachment, AttachmentKind
from domain.complaint import EventKind, Status
from tests.fakes.dialogue import FRIDAY_EVENING, Chat, make_engine, photo
from tests.fakes.memory import MemoryStore

TEXT = "В Махачкале на улице Ленина нет воды уже три дня, кран сухой"
INVALID = "Эта кнопка больше не действует."


async def file(chat: Chat, text: str = TEXT) -> None:
    await chat.send(text)
    await chat.press("cls:yes")
    await chat.press("photo:done")
    await chat.press("loc:skip")
    await chat.press("mun:yes")
    if "consent:yes" in chat.payloads:
        await chat.press("consent:yes")
    await chat.press("cmp:submit")
    assert "зарегистрировано" in chat.text or "registered" in chat.text


async def test_my_complaints_empty():
    chat = Chat(make_engine(MemoryStore()))
    await chat.press("menu:my")
    assert "У вас пока нет обращений" in chat.text and "menu:new" in chat.payloads


async def test_my_complaints_lists_and_adds_details():
    store = MemoryStore()
    chat = Chat(make_engine(store))
    await file(chat)
    await file(chat, TEXT + ", и напор слабый")
    store.complaints[1].status = Status.CLOSED  # the first one was closed meanwhile

    await chat.press("menu:my")
    lines = chat.text.splitlines()
    assert lines[0] == "Ваши последние обращения:"
    assert lines[2] == "№2026-000002 · ЖКХ · Зарегистрировано · 27 ноября 2026\u202fг."
    assert lines[3] == "№2026-000001 · ЖКХ · Закрыто · 27 ноября 2026\u202fг."
    assert chat.payloads == ["add:2", "menu:main"]  # only the open one can be added to

    await chat.press("add:1")  # closed: a forged or stale button
    assert "закрыто; дополнить его уже нельзя" in chat.text

    await chat.press("add:2")
    assert "обращению №2026-000002" in chat.text and chat.payloads == ["add:done"]
    await chat.send("Сегодня воды тоже нет", attachments=(photo("d1"),))
    assert "Добавлено к обращению №2026-000002" in chat.text
    await chat.send(attachments=(Attachment(AttachmentKind.OTHER, "sticker"),))
    assert "Принимаются только фотографии" in chat.text
    await chat.press("add:done")
    assert "Спасибо!" in chat.text and "menu:new" in chat.payloads

    complaint = store.complaints[2]
    assert [p.ref for p in complaint.photos] == ["telegram:d1"]
    kinds = [h.kind for h in complaint.history]
    assert kinds == [EventKind.REGISTERED, EventKind.CITIZEN_MESSAGE, EventKind.ATTACHMENT]
    assert complaint.history[1].text == "Сегодня воды тоже нет"
    assert complaint.updated_at == FRIDAY_EVENING
    assert type(store.events[-1]).__name__ == "CitizenMessageAdded"


async def test_cannot_add_details_to_another_citizens_complaint():
    store = MemoryStore()
    engine = make_engine(store)
    owner, intruder = Chat(engine, "owner"), Chat(engine, "intruder")
    await file(owner)
    await file(intruder)
    await intruder.press("menu:my")
    await intruder.press("add:1")  # owner's complaint
    assert "не найдено" in intruder.text
    assert "add:2" in intruder.payloads and "add:1" not in intruder.payloads
    await intruder.send("Это тоже моё")
    assert len(store.complaints[1].history) == 1


async def test_complaint_closed_while_adding_details_is_refused_politely():
    store = MemoryStore()
    chat = Chat(make_engine(store))
    await file(chat)
    await chat.press("menu:my")
    await chat.press("add:1")
    store.complaints[1].status = Status.CLOSED
    await chat.send("Ещё одна деталь")
    assert "больше нельзя дополнить" in chat.text
    assert len(store.complaints[1].history) == 1
    assert store.conversations[("telegram", "1001")].state == "idle"


async def test_subscriptions():
    store = MemoryStore()
    chat = Chat(make_engine(store))
    await chat.press("menu:subs")
    assert "Выберите ваш муниципалитет" in chat.text
    assert len([p for p in chat.payloads if p.startswith("smun:")]) == 8
    await chat.press("smunp:1")
    assert "smunp:0" in chat.payloads
    await chat.press("smun:atlantis")
    assert chat.replies[0].text == INVALID
    await chat.send("Дербентский район")
    assert "Отметьте темы" in chat.text
    await chat.press("ssec:roads")
    await chat.press("ssec:waste")
    await chat.press("ssec:roads")  # toggled off again
    assert chat.label("ssec:waste").startswith("✅ ")
    assert not chat.label("ssec:roads").startswith("✅")
    await chat.press("ssec:../etc")
    assert chat.replies[0].text == INVALID
    await chat.press("subs:done")
    assert "Подписки сохранены. Муниципалитет: Дербентский район. Темы: ТКО." in chat.text

    citizen = next(iter(store.citizens.values()))
    assert citizen.subscribed_municipality == "derbentsky"
    assert citizen.subscribed_sectors == ["waste"]

    await chat.press("menu:subs")  # the current choice can be kept
    assert "сейчас: Дербентский район" in chat.text
    await chat.press("subs:sectors")
    assert chat.label("ssec:waste").startswith("✅ ")


async def test_language_switch_changes_everything_after():
    store = MemoryStore()
    chat = Chat(make_engine(store))
    await chat.press("menu:lang")
    assert chat.payloads == ["lang:ru", "lang:en"]
    assert {r.language for r in chat.replies} == {"ru"}
    await chat.press("lang:en")
    assert chat.text == "Language set: English."
    assert {r.language for r in chat.replies} == {"en"}  # adapters word their extras in it
    assert chat.label("menu:new") == "📝 New complaint"
    assert next(iter(store.citizens.values())).language == "en"
    await file(chat)
    assert "Expected answer by December 2, 2026" in chat.text
    await chat.press("menu:my")
    assert "· Housing and utilities · Registered · November 27, 2026" in chat.text
    await chat.press("menu:lang")
    await chat.press("lang:ru")
    assert chat.text == "Язык: русский." and chat.label("menu:new") == "📝 Новое обращение"
    await chat.press("lang:en")  # the language list is gone: a stale button
    assert chat.replies[0].text == INVALID


async def test_help():
    chat = Chat(make_engine(MemoryStore()), language_hint="en")
    await chat.press("menu:help")
    assert "How to file" in chat.text and "152-FZ" in chat.text
    assert "menu:new" in chat.payloads
    await chat.send("помощь")
    assert "What happens next" in chat.text


async def test_help_mid_flow_returns_to_the_step():
    store = MemoryStore()
    chat = Chat(make_engine(store))
    await chat.send(TEXT)
    await chat.press("cls:yes")
    await chat.send("/help")
    assert "Как подать" in chat.text
    assert "Пришлите фотографии" in chat.replies[-1].text
    assert store.conversations[("telegram", "1001")].state == "cmp.photos"
