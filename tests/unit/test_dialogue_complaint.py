"""Transcripts of filing a complaint, through the real engine, catalogue and calendar."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from dialogue.messages import Location
from dialogue.nlu import Suggestion
from domain.complaint import ClassifiedBy, Photo, Status
from tests.fakes.dialogue import Chat, ScriptedClassifier, make_engine, photo
from tests.fakes.memory import MemoryStore

NO_WATER_RU = "Во дворе дома на улице Ленина в Махачкале нет воды уже три дня, кран сухой"


def only_complaint(store: MemoryStore):
    assert len(store.complaints) == 1
    return next(iter(store.complaints.values()))


async def file_no_water(chat: Chat, *, consent: bool = True) -> None:
    await chat.send(NO_WATER_RU)
    await chat.press("cls:yes")
    await chat.send(attachments=(photo("AgAD-1"), photo("AgAD-2", "image/png")))
    await chat.press("photo:done")
    await chat.send(location=Location(42.9849, 47.5047))
    await chat.press("mun:yes")
    if consent:
        await chat.press("consent:yes")
    await chat.press("cmp:submit")


async def test_full_flow_in_russian():
    store = MemoryStore()
    chat = Chat(make_engine(store))

    await chat.send("/start")
    assert "Здравствуйте" in chat.text
    assert chat.payloads == ["menu:new", "menu:my", "menu:subs", "menu:lang", "menu:help"]

    await chat.send(NO_WATER_RU)
    assert "Похоже, это: ЖКХ → Отсутствие водоснабжения. Верно?" in chat.text
    assert chat.payloads == ["cls:yes", "cls:pick"]

    await chat.press("cls:yes")
    assert "Категория: ЖКХ → Отсутствие водоснабжения." in chat.text
    assert "Пришлите фотографии" in chat.text and chat.payloads == ["photo:done"]

    await chat.send(attachments=(photo("AgAD-1"), photo("AgAD-2", "image/png")))
    assert "Прикреплены 2 фотографии" in chat.text

    await chat.press("photo:done")
    assert chat.replies[-1].request_location
    assert "loc:skip" in chat.payloads

    await chat.send(location=Location(42.9849, 47.5047))
    assert "Муниципалитет: Махачкала. Верно?" in chat.text  # found in the complaint text
    assert chat.payloads == ["mun:yes", "mun:pick"]

    await chat.press("mun:yes")
    assert "152-ФЗ" in chat.text
    assert chat.payloads == ["consent:yes", "consent:no"]

    await chat.press("consent:yes")
    assert "Проверьте ваше обращение" in chat.text
    assert NO_WATER_RU in chat.text and "2 фотографии" in chat.text
    assert chat.payloads == ["cmp:submit", "cmp:cancel"]

    await chat.press("cmp:submit")
    # Friday 17:00 + 3 working days (no_water) = Wednesday 2 December
    assert "Обращение №2026-000001 зарегистрировано." in chat.text
    assert "Ответственный: Минэнерго и ЖКХ РД." in chat.text
    assert "Ожидаемый срок ответа: 2 декабря 2026\u202fг." in chat.text
    assert "menu:new" in chat.payloads

    complaint = only_complaint(store)
    assert (complaint.sector, complaint.category) == ("housing", "no_water")
    assert complaint.agency == "minenergo" and complaint.municipality == "makhachkala"
    assert complaint.text == NO_WATER_RU and complaint.channel == "telegram"
    assert (complaint.latitude, complaint.longitude) == (42.9849, 47.5047)
    assert complaint.photos == [Photo("telegram:AgAD-1", "image/jpeg"),
                                Photo("telegram:AgAD-2", "image/png")]
    assert complaint.classified_by is ClassifiedBy.NLU
    assert complaint.confidence is not None and complaint.confidence >= 0.6
    assert complaint.status is Status.NEW
    assert complaint.first_answer_due == datetime(2026, 11, 30, 7, 0, tzinfo=UTC)
    assert complaint.resolution_due == datetime(2026, 12, 2, 15, 0, tzinfo=UTC)

    citizen = store.citizens[complaint.citizen_id]
    assert citizen.has_consent("2026-11") and citizen.consent is not None
    assert citizen.consent.given_at.isoformat() == "2026-11-27T17:00:00+03:00"
    assert [type(e).__name__ for e in store.events] == ["ComplaintRegistered"]
    conversation = store.conversations[("telegram", "1001")]
    assert conversation.state == "idle" and not conversation.data


async def test_full_flow_in_english_with_typed_address():
    store = MemoryStore()
    chat = Chat(make_engine(store), user_id="en-1", language_hint="en-GB")

    await chat.send("Огромная яма на дороге, асфальт разбит, машины объезжают по встречке")
    assert chat.text.startswith("Looks like: Roads → ")
    await chat.press("cls:yes")
    assert "Send photos of the problem if you have any (up to 10)" in chat.text
    assert chat.label("photo:done") == "⏭ Skip"
    await chat.press("photo:done")
    await chat.send("Дербент, улица Гагарина 5")
    assert "Municipality: Derbent. Correct?" in chat.text
    await chat.press("mun:yes")
    assert "152-FZ" in chat.text
    await chat.press("consent:yes")
    assert "Address: Дербент, улица Гагарина 5" in chat.text
    await chat.press("cmp:submit")
    assert "Complaint №2026-000001 has been registered." in chat.text
    assert "Expected answer by December" in chat.text

    complaint = only_complaint(store)
    assert complaint.sector == "roads" and complaint.municipality == "derbent"
    assert complaint.address == "Дербент, улица Гагарина 5" and complaint.latitude is None
    assert complaint.photos == []
    assert store.citizens[complaint.citizen_id].language == "en"


async def test_second_complaint_skips_consent():
    store = MemoryStore()
    chat = Chat(make_engine(store))
    await file_no_water(chat)
    await chat.send(NO_WATER_RU + " снова")
    await chat.press("cls:yes")
    await chat.press("photo:done")
    await chat.press("loc:skip")
    assert "mun:yes" in chat.payloads
    await chat.press("mun:yes")
    assert "Проверьте ваше обращение" in chat.text
    assert "consent:yes" not in chat.payloads
    await chat.press("cmp:submit")
    assert "№2026-000002" in chat.text
    assert len(store.complaints) == 2
    assert all(c.address is None for c in store.complaints.values())


async def test_picking_sector_and_category_by_hand_is_classified_by_citizen():
    store = MemoryStore()
    chat = Chat(make_engine(store))
    await chat.send(NO_WATER_RU)
    await chat.press("cls:pick")
    assert "Выберите сферу" in chat.text
    assert {"sec:housing", "sec:roads", "sec:other", "nav:back"} <= set(chat.payloads)
    await chat.press("sec:roads")
    assert chat.text.startswith("Дороги: выберите категорию")
    assert all(p.startswith("cat:roads:") for p in chat.payloads[:-1])
    await chat.press("nav:back")  # back to the sectors
    assert "sec:education" in chat.payloads
    await chat.press("sec:education")
    category = chat.payloads[0]
    await chat.press(category)
    assert "Категория: Образование → " in chat.text
    await chat.press("photo:done")
    await chat.press("loc:skip")
    await chat.press("mun:pick")
    assert len([p for p in chat.payloads if p.startswith("mun:")]) == 8
    assert "munp:1" in chat.payloads
    await chat.press("munp:1")
    assert "munp:0" in chat.payloads and "munp:2" in chat.payloads
    muni = next(p for p in chat.payloads if p.startswith("mun:"))
    await chat.press(muni)
    await chat.press("consent:yes")
    await chat.press("cmp:submit")
    complaint = only_complaint(store)
    assert complaint.sector == "education"
    assert complaint.category == category.split(":")[2]
    assert complaint.municipality == muni.split(":")[1]
    assert complaint.classified_by is ClassifiedBy.CITIZEN and complaint.confidence is None


async def test_low_confidence_shows_top_three_and_keeps_the_chosen_confidence():
    classifier = ScriptedClassifier(Suggestion("roads", "potholes", 0.4),
                                    Suggestion("housing", "no_water", 0.3),
                                    Suggestion("waste", "illegal_dump", 0.2),
                                    Suggestion("gone", "sector", 0.05))
    store = MemoryStore()
    chat = Chat(make_engine(store, classifier))
    await chat.send("Непонятная проблема у нашего дома, помогите разобраться")
    assert "Что из этого подходит лучше всего?" in chat.text
    assert chat.payloads == ["cat:roads:potholes", "cat:housing:no_water",
                             "cat:waste:illegal_dump", "cls:pick"]
    assert "cls:yes" not in chat.payloads
    await chat.press("cls:yes")  # forged: there is nothing confident to accept
    assert "больше не действует" in chat.text
    await chat.press("cat:housing:no_water")
    assert "Категория: ЖКХ → Отсутствие водоснабжения." in chat.text
    await chat.press("photo:done")
    await chat.send("Каспийск, ул. Ленина 3")
    await chat.press("mun:yes")
    await chat.press("consent:yes")
    await chat.press("cmp:submit")
    complaint = only_complaint(store)
    assert complaint.classified_by is ClassifiedBy.NLU and complaint.confidence == 0.3
    assert complaint.municipality == "kaspiysk"


async def test_nothing_recognised_goes_straight_to_the_sector_list():
    store = MemoryStore()
    chat = Chat(make_engine(store, ScriptedClassifier()))
    await chat.send("Просто хочу сказать спасибо и кое-что спросить")
    assert "Не удалось определить" in chat.text
    assert chat.payloads[:2] == ["sec:housing", "sec:waste"]
    assert "nav:back" not in chat.payloads


async def test_a_new_engine_over_the_same_store_continues_the_flow():
    store = MemoryStore()
    chat = Chat(make_engine(store))
    await chat.send(NO_WATER_RU)
    await chat.press("cls:yes")
    await chat.send(attachments=(photo("p1"),))

    chat.engine = make_engine(store)  # the process restarted
    await chat.send(attachments=(photo("p2"),))
    assert "Прикреплены 2 фотографии" in chat.text
    await chat.press("photo:done")
    await chat.press("loc:skip")
    await chat.press("mun:yes")
    await chat.press("consent:yes")
    await chat.press("cmp:submit")
    assert [p.ref for p in only_complaint(store).photos] == ["telegram:p1", "telegram:p2"]


async def test_declining_consent_keeps_the_draft():
    store = MemoryStore()
    chat = Chat(make_engine(store))
    await chat.send(NO_WATER_RU)
    await chat.press("cls:yes")
    await chat.press("photo:done")
    await chat.press("loc:skip")
    await chat.press("mun:yes")
    await chat.press("consent:no")
    assert "не может быть подано" in chat.text
    assert chat.payloads == ["consent:yes", "cmp:cancel"]
    assert store.complaints == {}
    citizen = next(iter(store.citizens.values()))
    assert not citizen.has_consent()
    await chat.press("consent:yes")
    await chat.press("cmp:submit")
    assert only_complaint(store).text == NO_WATER_RU


async def test_cancel_on_summary_forgets_the_draft():
    store = MemoryStore()
    chat = Chat(make_engine(store))
    await file_no_water(chat)
    await chat.send(NO_WATER_RU)
    await chat.press("cls:yes")
    await chat.press("photo:done")
    await chat.press("loc:skip")
    await chat.press("mun:yes")
    await chat.press("cmp:cancel")
    assert "Обращение отменено" in chat.text
    assert len(store.complaints) == 1
    assert store.conversations[("telegram", "1001")].state == "idle"


@pytest.mark.parametrize("lang", ["ru", "en"])
async def test_every_button_payload_fits_telegram(lang):
    store = MemoryStore()
    chat = Chat(make_engine(store), language_hint=lang)
    seen: list[str] = []
    for step in ("/start", NO_WATER_RU, "cls:pick", "sec:housing", "cat:housing:management_company",
                 "photo:done", "loc:skip", "mun:pick", "munp:6", "mun:yes"):
        if ":" in step and " " not in step:
            await chat.press(step)
        else:
            await chat.send(step)
        seen.extend(chat.payloads)
    assert seen and all(len(p.encode()) <= 64 for p in seen)
