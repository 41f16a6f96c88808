"""A complaint's card in its topic, the topic's name, and the buttons' callback data.

Callback data is ``bo:<complaint id>:<action>[:<arg>...]`` (at most 64 bytes); it is only
a request: the router re-checks the complaint, the topic it was pressed in and the rules.
"""

from __future__ import annotations

from dataclasses import dataclass

from dialogue.i18n import format_datetime
from dialogue.messages import Attachment, AttachmentKind, Button, OutgoingMessage
from domain.catalogue import Catalogue
from domain.complaint import ClassifiedBy, Complaint

from .texts import _, status_name

PREFIX = "bo"
MAX_DATA = 64
MAX_TOPIC_NAME = 128
LANG = "ru"


@dataclass(frozen=True, slots=True)
class Action:
    complaint_id: int
    name: str
    args: tuple[str, ...] = ()


def data(complaint_id: int, name: str, *args: str) -> str:
    value = ":".join((PREFIX, str(complaint_id), name, *args))
    if len(value.encode()) > MAX_DATA:
        raise ValueError(f"callback data over {MAX_DATA} bytes: {value!r}")
    return value


def parse(value: str | None) -> Action | None:
    """The action a button asks for, or ``None`` if ``value`` is not ours or malformed."""
    if not value or len(value.encode()) > MAX_DATA:
        return None
    prefix, _sep, rest = value.partition(":")
    parts = rest.split(":")
    if prefix != PREFIX or len(parts) < 2 or not parts[0].isdigit() or not parts[1]:
        return None
    return Action(int(parts[0]), parts[1], tuple(parts[2:]))


def sector_label(catalogue: Catalogue, complaint: Complaint) -> tuple[str, str]:
    try:
        sector = catalogue.sector(complaint.sector).name(LANG)
    except KeyError:
        sector = complaint.sector
    try:
        category = catalogue.category(complaint.sector, complaint.category).name(LANG)
    except KeyError:
        category = complaint.category
    return sector, category


def municipality_name(catalogue: Catalogue, complaint: Complaint) -> str:
    if complaint.municipality is None:
        return "—"
    try:
        return catalogue.municipality(complaint.municipality).name(LANG)
    except KeyError:
        return complaint.municipality


def agency_name(catalogue: Catalogue, slug: str) -> str:
    try:
        return catalogue.agency(slug).name
    except KeyError:
        return slug


def topic_name(catalogue: Catalogue, complaint: Complaint) -> str:
    """``№2026-000042 · ЖКХ · Каспийск``, cut to Telegram's 128 characters."""
    sector, _category = sector_label(catalogue, complaint)
    name = f"№{complaint.number} · {sector} · {municipality_name(catalogue, complaint)}"
    return name if len(name) <= MAX_TOPIC_NAME else name[:MAX_TOPIC_NAME - 1] + "…"


def _classified(complaint: Complaint) -> str:
    if complaint.classified_by is ClassifiedBy.NLU:
        confidence = round((complaint.confidence or 0) * 100)
        return _("the classifier, confidence {confidence}%", confidence=confidence)
    if complaint.classified_by is ClassifiedBy.OPERATOR:
        return _("an operator")
    return _("the citizen")


def telegram_photos(complaint: Complaint) -> tuple[Attachment, ...]:
    return tuple(Attachment(AttachmentKind.PHOTO, p.ref, p.mime) for p in complaint.photos
                 if p.ref.startswith("telegram:"))


def card_text(catalogue: Catalogue, complaint: Complaint) -> str:
    sector, category = sector_label(catalogue, complaint)
    lines = [
        _("📋 Complaint №{number}", number=complaint.number),
        _("Status: {status}", status=status_name(complaint.status)),
        _("Sector: {sector} / {category}", sector=sector, category=category),
        _("Classified by: {who}", who=_classified(complaint)),
        _("Responsible: {agency}", agency=agency_name(catalogue, complaint.agency)),
        _("Municipality: {municipality}",
          municipality=municipality_name(catalogue, complaint)),
    ]
    if complaint.address:
        lines.append(_("Address: {address}", address=complaint.address))
    if complaint.latitude is not None and complaint.longitude is not None:
        lat = f"{complaint.latitude:.6f}"
        lon = f"{complaint.longitude:.6f}"
        link = f"https://yandex.ru/maps/?pt={lon},{lat}&z=17"
        lines.append(_("📍 Location: {latitude}, {longitude} — {link}",
                       latitude=lat, longitude=lon, link=link))
    lines += [
        _("First answer due: {date}",
          date=format_datetime(complaint.first_answer_due, LANG)),
        _("Resolution due: {date}", date=format_datetime(complaint.resolution_due, LANG)),
        _("Channel: {channel}", channel=complaint.channel),
    ]
    elsewhere = len(complaint.photos) - len(telegram_photos(complaint))
    if elsewhere:
        lines.append(_("📎 Photos sent in {channel}: {count} (see the portal)",
                       channel=complaint.channel, count=elsewhere))
    lines += ["", complaint.text]
    return "\n".join(lines)


def card_buttons(complaint_id: int) -> tuple[tuple[Button, ...], ...]:
    cid = complaint_id
    return (
        (Button(_("✋ Take"), data(cid, "take")), Button(_("🔀 Status"), data(cid, "st"))),
        (Button(_("🏷 Sector/category"), data(cid, "sec")),),
        (Button(_("✅ Answer and close"), data(cid, "ans")),),
        (Button(_("⛔ Reject"), data(cid, "rej")), Button(_("🔁 Duplicate"), data(cid, "dup"))),
    )


def render_card(catalogue: Catalogue, complaint: Complaint) -> OutgoingMessage:
    """The card: Telegram photos first (sent by file id), then the text with the buttons."""
    assert complaint.id is not None
    return OutgoingMessage(card_text(catalogue, complaint), buttons=card_buttons(complaint.id),
                           attachments=telegram_photos(complaint))
