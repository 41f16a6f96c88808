"""Status notices in the citizen's language. Msgids are English; catalogues are shared
with the dialogue (``dialogue/locales``), so ``make i18n-extract`` scans this package too."""

from __future__ import annotations

from dialogue.i18n import get_translator, normalize_language
from dialogue.messages import Button, OutgoingMessage


def N_(msgid: str) -> str:  # noqa: N802 - the conventional marker for extraction
    """Mark a string for extraction; it is translated later, per citizen."""
    return msgid


REGISTERED = N_("Your complaint №{number} has been registered.\nResponsible: {agency}.\n"
                "Expected answer by {date}.")
IN_PROGRESS = N_("Your complaint №{number} has been taken into work.\nResponsible: "
                 "{agency}.")
ANSWER = N_("Answer to your complaint №{number}:\n\n{answer}")
ANSWERED = N_("Your complaint №{number} has been answered.")
CLOSED = N_("Your complaint №{number} has been closed. Thank you for helping to make the "
            "republic better.")
REOPENED = N_("Your complaint №{number} has been reopened and will be worked on again.")
REJECTED = N_("Your complaint №{number} has been rejected.")
DUPLICATE = N_("Your complaint №{number} has been merged with complaint №{original} about "
               "the same problem.")
REASON = N_("Reason: {reason}")
MY_COMPLAINTS = N_("📋 My complaints")


def translate(lang: str, msgid: str, **kwargs: object) -> str:
    text = get_translator(normalize_language(lang)).gettext(msgid)
    return text.format(**kwargs) if kwargs else text


def notice(lang: str, msgid: str, *, reason: str = "", **kwargs: object) -> OutgoingMessage:
    """A status notice with an optional reason line and a "My complaints" button."""
    text = translate(lang, msgid, **kwargs)
    if reason.strip():
        text += "\n" + translate(lang, REASON, reason=reason.strip())
    return OutgoingMessage(text, buttons=((Button(translate(lang, MY_COMPLAINTS),
                                                  "menu:my"),),))
