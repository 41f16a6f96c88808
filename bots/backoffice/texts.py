"""The back office's words, in the operators' language (Russian) through the dialogue's
``messages`` catalogues; msgids are English like everywhere else."""

from __future__ import annotations

from dialogue.i18n import get_translator
from domain.complaint import Status

LANGUAGE = "ru"


def _(msgid: str, **kwargs: object) -> str:
    text = get_translator(LANGUAGE).gettext(msgid)
    return text.format(**kwargs) if kwargs else text


def status_name(status: Status | str) -> str:
    names = {
        Status.NEW: _("Registered"),
        Status.IN_PROGRESS: _("In progress"),
        Status.ANSWERED: _("Answered"),
        Status.CLOSED: _("Closed"),
        Status.REJECTED: _("Rejected"),
        Status.DUPLICATE: _("Duplicate"),
        Status.REOPENED: _("Reopened"),
    }
    return names[Status(status)]


def refused() -> str:
    return _("⛔ Only the center's operators can act here.")


def help_text() -> str:
    return _("ЦУР back office. Every complaint has its own topic with a card and buttons. "
             "Whatever an operator writes in a complaint's topic is sent to the citizen in "
             "their channel and recorded in the history; the citizen's additions appear in "
             "the topic. Messages outside complaint topics are not sent anywhere.")
