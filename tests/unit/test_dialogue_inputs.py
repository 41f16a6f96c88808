"""Bad inputs, forged and stale buttons, interruptions and failures never lose the draft."""

from __future__ import annotations

import asyncio
import copy
from datetime import UTC, datetime

import pytest

from dialogue.messages import (
    Address,
    Attachment,
    AttachmentKind,
    Channel,
    IncomingMessage,
    Location,
)
from dialogue.nlu import Suggestion
from domain.ports import Conversation
from tests.fakes.dialogue import Chat, ScriptedClassifier, make_engine, photo
from tests.fakes.memory import MemoryStore

TEXT = "В Махачкале на улице Ленина нет воды уже три дня, кран сухой"
INVALID = "Эта кнопка больше не действует."


def conversation(store: MemoryStore, user: str = "1001"):
    return store.conversations[("telegram", user)]


async def at_photos(store: MemoryStore) -> Chat:
    chat = Chat(make_engine(store))
    await chat.send(TEXT)
    await chat.press("cls:yes")
    await chat.send(attachments=(photo("p1"),))
    return chat


@pytest.mark.parametrize("text", ["", "   \n\t  ", "😡😡😡🔥", "!!! ??? ...", "нет воды",
                                  "\x00\x07\x1b"])
async def test_empty_or_meaningless_text_asks_for_a_description(text):
    store = MemoryStore()
    chat = Chat(make_engine(store))
    await chat.press("menu:new")
    await chat.send(text)
    assert ("Пожалуйста, опишите проблему" in chat.text
            or "Опишите проблему" in chat.text)
    assert conversation(store).state == "cmp.text"
    assert not (conversation(store).data or {}).get("draft")


async def test_control_characters_are_stripped_but_newlines_kept():
    store = MemoryStore()
    chat = Chat(make_engine(store))
    await chat.send("Нет\x00 воды\u200b в доме\r\nна улице\x1b Ленина\tв Махачкале")
    draft = conversation(store).data["draft"]
    assert draft["text"] == "Нет воды в доме\nна улице Ленина в Махачкале"


async def test_long_text_is_kept_whole_up_to_ten_thousand_characters():
    store = MemoryStore()
    chat = Chat(make_engine(store))
    text = ("Нет воды в доме. " * 600)[:9_990].strip()
    await chat.send(text)
    assert conversation(store).data["draft"]["text"] == text


async def test_text_over_ten_thousand_characters_asks_to_shorten_and_changes_nothing():
    store = MemoryStore()
    chat = await at_photos(store)
    await chat.send("/start")
    await chat.press("draft:discard")
    before = copy.deepcopy(conversation(store))
    await chat.send("а" * 10_001)
    assert "слишком длинное (10\xa0001 символов)" in chat.text
    assert "до 10\xa0000 символов" in chat.text
    assert conversation(store).state == before.state
    assert conversation(store).data == before.data


async def test_unsupported_file_is_refused_and_state_kept():
    store = MemoryStore()
    chat = await at_photos(store)
    await chat.send(attachments=(Attachment(AttachmentKind.DOCUMENT, "doc1",
                                            "application/pdf", "act.pdf"),))
    assert "Принимаются только фотографии" in chat.text
    assert conversation(store).state == "cmp.photos"
    assert conversation(store).data["draft"]["photos"] == [
        {"ref": "telegram:p1", "mime": "image/jpeg"}]


async def test_at_most_ten_photos():
    store = MemoryStore()
    chat = await at_photos(store)
    await chat.send(attachments=tuple(photo(f"x{i}") for i in range(12)))
    assert "не больше 10 фотографий" in chat.text
    assert len(conversation(store).data["draft"]["photos"]) == 10


async def test_start_mid_flow_keeps_the_draft_and_offers_continue_or_discard():
    store = MemoryStore()
    chat = await at_photos(store)
    draft = copy.deepcopy(conversation(store).data["draft"])
    await chat.send("/start")
    assert "незаконченное обращение" in chat.text
    assert chat.payloads == ["draft:continue", "draft:discard"]
    await chat.send("меню")
    assert chat.payloads == ["draft:continue", "draft:discard"]
    assert conversation(store).data["draft"] == draft
    await chat.press("menu:my")  # an old main-menu button must not abandon the draft
    assert INVALID in chat.text and "Прикреплена 1 фотография" in chat.text
    await chat.press("draft:continue")
    assert "Прикреплена 1 фотография" in chat.text
    assert conversation(store).state == "cmp.photos"
    await chat.press("draft:discard")
    assert "Черновик удалён" in chat.text
    assert conversation(store).state == "idle" and not conversation(store).data
    await chat.press("draft:continue")  # nothing to continue any more
    assert INVALID in chat.text


async def test_old_button_after_the_flow_moved_on():
    store = MemoryStore()
    chat = await at_photos(store)
    await chat.press("photo:done")
    before = copy.deepcopy(conversation(store))
    for old in ("cls:yes", "photo:done", "sec:roads", "cmp:submit"):
        await chat.press(old)
        assert chat.replies[0].text == INVALID
        assert "Где находится проблема?" in chat.replies[-1].text
        assert chat.replies[-1].request_location
    assert conversation(store).data == before.data and conversation(store).state == "cmp.location"


async def test_a_button_press_handed_out_again_is_not_taken_twice():
    """A platform repeats a press it did not hear was handled (a crash before the
    confirmation): same callback id, so the citizen is asked the current question again,
    not told the button is stale, and nothing is recorded twice."""
    store = MemoryStore()
    chat = await at_photos(store)
    address = Address(Channel.TELEGRAM, chat.user_id)
    done = IncomingMessage(address, chat.user_id, payload="photo:done", callback_id="q-77")
    first = await chat.engine.handle(done)
    assert "Где находится проблема?" in first[-1].text
    before = copy.deepcopy(conversation(store))
    again = await chat.engine.handle(done)
    assert INVALID not in "\n".join(r.text for r in again)
    assert [r.text for r in again] == [r.text for r in first]
    after = conversation(store)
    assert (after.state, after.data) == (before.state, before.data)
    # a new press of the same old button (another id) is checked against the step
    stale = await chat.engine.handle(IncomingMessage(address, chat.user_id,
                                                     payload="photo:done", callback_id="q-78"))
    assert stale[0].text == INVALID


@pytest.mark.parametrize("payload", [
    "cat:nope:x", "sec:../../", "sec:nope", "mun:atlantis", "munp:99", "add:1", "add:abc",
    "lang:fr", "\x00\xff\x13garbage", "menu:" + "x" * 80, "cat:housing:no_water:extra", "",
    "cat:roads:potholes",  # real, but not of the sector being picked
])
async def test_forged_payloads_are_refused_politely(payload):
    store = MemoryStore()
    chat = Chat(make_engine(store))
    await chat.send(TEXT)
    await chat.press("cls:pick")
    await chat.press("sec:housing")
    before = copy.deepcopy(conversation(store))
    await chat.press(payload)
    assert chat.replies[0].text == INVALID
    assert "ЖКХ: выберите категорию" in chat.replies[-1].text
    assert conversation(store).data == before.data
    assert conversation(store).state == before.state
    assert store.complaints == {}


async def test_random_bytes_in_idle_show_the_menu():
    chat = Chat(make_engine(MemoryStore()))
    await chat.press("ÿ\udcff\x00cmp")
    assert chat.replies[0].text == INVALID and "menu:new" in chat.payloads


async def test_photo_or_location_in_idle_gets_an_explanation_and_the_menu():
    store = MemoryStore()
    chat = Chat(make_engine(store))
    await chat.send(attachments=(photo("p"),))
    assert "сначала опишите проблему словами" in chat.text and "menu:new" in chat.payloads
    await chat.send(location=Location(42.0, 47.0))
    assert "сначала опишите проблему словами" in chat.text
    assert store.complaints == {}


async def test_unknown_command():
    chat = Chat(make_engine(MemoryStore()))
    await chat.send("/frobnicate")
    assert "Я не знаю такой команды." in chat.text and "menu:new" in chat.payloads


async def test_a_failing_step_rolls_back_apologises_and_keeps_what_was_stored():
    store = MemoryStore()
    classifier = ScriptedClassifier(fail=RuntimeError("model server down"))
    chat = Chat(make_engine(store, classifier))
    await chat.send("/start")
    before = copy.deepcopy(store.conversations)
    commits = store.commits
    await chat.send(TEXT)
    assert len(chat.replies) == 1
    assert "что-то пошло не так" in chat.text
    assert store.conversations == before  # nothing from the failed step was written
    assert store.rollbacks == 1 and store.commits == commits
    await chat.send(TEXT)  # the classifier works again
    assert conversation(store).data["draft"]["text"] == TEXT


async def test_failure_on_submit_keeps_the_draft_for_a_retry(monkeypatch):
    store = MemoryStore()
    chat = Chat(make_engine(store))
    await chat.send(TEXT)
    await chat.press("cls:yes")
    await chat.press("photo:done")
    await chat.press("loc:skip")
    await chat.press("mun:yes")
    await chat.press("consent:yes")

    async def broken(self, year):
        raise ConnectionError("database went away")

    monkeypatch.setattr("tests.fakes.memory.FakeComplaintRepository.next_number", broken)
    await chat.press("cmp:submit")
    assert "что-то пошло не так" in chat.text
    assert store.complaints == {} and conversation(store).state == "cmp.summary"
    monkeypatch.undo()
    await chat.press("cmp:submit")
    assert "зарегистрировано" in chat.text and len(store.complaints) == 1


async def test_apology_is_in_the_citizens_language():
    store = MemoryStore()
    chat = Chat(make_engine(store, ScriptedClassifier(fail=RuntimeError("x"))),
                language_hint="en")
    await chat.send(TEXT)
    assert chat.text.startswith("Sorry, something went wrong.")


async def test_users_are_isolated_and_locks_are_released():
    store = MemoryStore()
    engine = make_engine(store)
    alice, bob = Chat(engine, "a"), Chat(engine, "b")
    await alice.send(TEXT)
    await bob.press("menu:lang")
    assert conversation(store, "a").state == "cmp.classify"
    assert conversation(store, "b").state == "lang"
    assert len(engine.locks) == 0


async def test_messages_of_one_user_are_handled_one_at_a_time():
    class SlowClassifier(ScriptedClassifier):
        async def classify(self, text):
            await asyncio.sleep(0.01)
            return await super().classify(text)

    store = MemoryStore()
    classifier = SlowClassifier(Suggestion("housing", "no_water", 0.9))
    engine = make_engine(store, classifier)
    first, second = Chat(engine), Chat(engine)
    await asyncio.gather(first.send(TEXT), second.send(TEXT + "!"))
    # the second message saw the first one's state instead of starting a parallel draft
    assert classifier.calls == [TEXT]
    assert conversation(store).data["draft"]["text"] == TEXT
    assert "Похоже, это" in second.text
    assert len(engine.locks) == 0


async def test_photo_with_caption_starts_a_complaint_with_the_photo():
    store = MemoryStore()
    chat = Chat(make_engine(store))
    await chat.send(TEXT, attachments=(photo("cap1"),))
    assert conversation(store).data["draft"]["photos"] == [
        {"ref": "telegram:cap1", "mime": "image/jpeg"}]
    await chat.press("cls:yes")
    assert "Прикреплена 1 фотография" in chat.text


async def test_rows_a_channel_keeps_with_a_step_are_committed_with_it_or_not_at_all():
    store = MemoryStore()
    classifier = ScriptedClassifier(fail=RuntimeError("model server down"))
    engine = make_engine(store, classifier)
    seen: list[list[str]] = []

    def also_save(replies):
        seen.append([r.text for r in replies])
        return [Conversation("tg-keyboard", "1001", "keyboard", {"n": len(seen)})]

    def msg(text):
        return IncomingMessage(Address(Channel.TELEGRAM, "1001"), "1001", text=text)

    replies = await engine.handle(msg("/start"), also_save=also_save)
    assert seen == [[r.text for r in replies]]  # given the step's own replies
    assert store.conversations[("tg-keyboard", "1001")].data == {"n": 1}
    commits = store.commits
    replies = await engine.handle(msg(TEXT), also_save=also_save)  # the step fails
    assert "что-то пошло не так" in replies[0].text
    assert store.conversations[("tg-keyboard", "1001")].data == {"n": 1}  # rolled back
    assert store.commits == commits


async def test_a_submit_handed_out_again_gets_its_number_again_and_is_filed_once():
    """The platform repeats the last message (the process died after the engine stored
    it, before the citizen saw the answer): the same answer again — for a submit, the
    complaint's number — and nothing recorded twice. A repeat of an older message gets the
    question of the step the dialogue is at."""
    store = MemoryStore()
    chat = Chat(make_engine(store))
    address = Address(Channel.WEB, chat.user_id)
    chat.channel = Channel.WEB
    for payload in (None, "cls:yes", "photo:done", "loc:skip", "mun:yes", "consent:yes"):
        await chat.send(TEXT) if payload is None else await chat.press(payload)
    at = datetime(2026, 11, 28, 9, 0, tzinfo=UTC)
    submit = IncomingMessage(address, chat.user_id, payload="cmp:submit", received_at=at)
    first = await chat.engine.handle(submit)
    assert "зарегистрировано" in first[0].text and len(store.complaints) == 1
    again = await chat.engine.handle(submit)
    assert again == first and len(store.complaints) == 1
    # the citizen goes on; the submit handed out again now is an older message: the
    # question of the step the dialogue is at, not its old answer
    later = IncomingMessage(address, chat.user_id, text="/start", received_at=at)
    menu = await chat.engine.handle(later)
    assert await chat.engine.handle(later) == menu
    [question] = await chat.engine.handle(submit)
    assert "зарегистрировано" not in question.text
    assert "menu:new" in [b.payload for b in question.all_buttons()]
    assert len(store.complaints) == 1
