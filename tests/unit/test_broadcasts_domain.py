"""The broadcast aggregate, its audience and links, the message citizens get, Moscow time."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from dialogue.messages import AttachmentKind
from domain.broadcast import Audience, Broadcast, BroadcastState, InvalidTransition, Link
from notifications.broadcast_message import broadcast_message, moscow, parse_moscow

T0 = datetime(2026, 12, 1, 7, 0, tzinfo=UTC)


def draft(**kwargs: object) -> Broadcast:
    return Broadcast("Новость", "staff", T0, id=12, **kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize("url", ["http://example.ru", "https://", "javascript:alert(1)",
                                 "https://exa mple.ru", "ftp://example.ru", "example.ru",
                                 "https://" + "a" * 2050 + ".ru"])
def test_link_buttons_need_an_https_url(url: str) -> None:
    with pytest.raises(ValueError, match="https"):
        Link("Сайт", url)


def test_link_labels_are_checked() -> None:
    assert Link("Подробнее", "https://rcr.example/a?b=1").url.startswith("https://")
    for label in ("", "  ", "x" * 65):
        with pytest.raises(ValueError, match="label"):
            Link(label, "https://rcr.example")


def test_audience_validates_normalises_and_round_trips() -> None:
    audience = Audience(municipalities=["derbent", "derbent", " kaspiysk "],  # type: ignore[arg-type]
                        channels=("vk",), complained_sectors=("roads",), complained_days=7)
    assert audience.municipalities == ("derbent", "kaspiysk")
    assert Audience.from_json(audience.to_json()) == audience
    assert audience.effective_channels == ("vk",) and audience.by_complaints
    assert Audience().effective_channels == ("telegram", "vk")  # web only when asked for
    assert not Audience().by_complaints
    assert Audience(complained_days=30).by_complaints
    with pytest.raises(ValueError, match="channel"):
        Audience(channels=("sms",))
    with pytest.raises(ValueError, match="language"):
        Audience(languages=("de",))
    with pytest.raises(ValueError, match="days"):
        Audience(complained_days=0)


def test_text_and_links_are_bounded() -> None:
    with pytest.raises(ValueError, match="text"):
        Broadcast("   ", "staff", T0)
    with pytest.raises(ValueError, match="text"):
        Broadcast("x" * 3501, "staff", T0)
    with pytest.raises(ValueError, match="link"):
        Broadcast("x", "staff", T0, links=tuple(Link(str(i), "https://e.ru")
                                                for i in range(6)))


def test_the_life_of_a_broadcast() -> None:
    b = draft()
    with pytest.raises(InvalidTransition):
        b.pause()  # a draft is not going anywhere
    with pytest.raises(ValueError, match="aware"):
        b.schedule(datetime(2026, 12, 1, 10, 0))
    b.schedule(T0)
    b.schedule(T0 + timedelta(hours=1))  # rescheduling is fine
    b.pause()
    b.resume()
    assert b.state is BroadcastState.SCHEDULED  # not started yet: back to waiting
    b.start(T0 + timedelta(hours=1))
    b.pause()
    b.resume()
    assert b.state is BroadcastState.SENDING
    with pytest.raises(InvalidTransition, match="still being written"):
        b.finish(T0)
    b.materialized = True
    b.finish(T0 + timedelta(hours=2))
    assert (b.state, b.finished_at) == (BroadcastState.DONE, T0 + timedelta(hours=2))
    for action in (b.pause, b.resume, lambda: b.cancel(T0), lambda: b.schedule(T0)):
        with pytest.raises(InvalidTransition):
            action()


def test_cancel_is_final() -> None:
    b = draft()
    b.cancel(T0)
    assert b.state is BroadcastState.CANCELLED
    with pytest.raises(InvalidTransition):
        b.resume()
    with pytest.raises(InvalidTransition):
        b.schedule(T0)


def test_the_message_carries_links_photo_and_an_unsubscribe_button() -> None:
    b = draft(photo="AgACAgIAAx", links=(Link("Подробнее", "https://rcr.example/n/1"),
                                         Link("Карта", "https://rcr.example/map")))
    ru = broadcast_message(b, "ru")
    assert ru.text == ("Новость\n\n🔗 Подробнее: https://rcr.example/n/1\n"
                       "🔗 Карта: https://rcr.example/map")
    assert [(a.kind, a.ref) for a in ru.attachments] == [(AttachmentKind.PHOTO, "AgACAgIAAx")]
    assert [(x.label, x.payload) for x in ru.all_buttons()] == [
        ("🔕 Отписаться от рассылки", "unsub:12")]
    en = broadcast_message(b, "en")
    assert en.all_buttons()[0].label == "🔕 Unsubscribe from news" and en.language == "en"
    assert broadcast_message(draft(), "xx").language == "ru"  # unknown: the default
    assert broadcast_message(draft(), "ru").attachments == ()


def test_moscow_time_in_and_out() -> None:
    assert parse_moscow("2026-12-01 10:00") == T0
    assert parse_moscow("2026-12-01T10:00") == T0
    assert parse_moscow("2026-12-01 09:00+02:00") == T0  # an explicit offset wins
    assert moscow(T0) == "2026-12-01 10:00" and moscow(None) == "—"
    for bad in ("tomorrow", "01.12.2026 10:00", ""):
        with pytest.raises(ValueError, match="YYYY-MM-DD"):
            parse_moscow(bad)
