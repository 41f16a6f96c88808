"""The main menu, /start, help, language choice and what to do with the unexpected."""

from __future__ import annotations

from dialogue.flows.base import Context, Payload, State
from dialogue.i18n import LANGUAGES, get_translator
from dialogue.messages import Button

LANGUAGE_NAMES = {"ru": "Русский", "en": "English"}  # shown in their own language


def main_menu(ctx: Context) -> list[list[Button]]:
    """The main menu keyboard in the citizen's language."""
    _ = ctx._
    return [
        [Button(_("📝 New complaint"), "menu:new")],
        [Button(_("📋 My complaints"), "menu:my"), Button(_("🔔 Subscriptions"), "menu:subs")],
        [Button(_("🌐 Language"), "menu:lang"), Button(_("❓ Help"), "menu:help")],
    ]


def back_to_menu(ctx: Context) -> list[Button]:
    return [Button(ctx._("🏠 Main menu"), "menu:main")]


async def idle_prompt(ctx: Context) -> None:
    ctx.say(ctx._("Write what the problem is, or choose an action:"), main_menu(ctx))


async def start(ctx: Context) -> None:
    """``/start``, "menu" or the main-menu button: greet, unless a draft would be lost."""
    if ctx.state.has_draft:
        _ = ctx._
        ctx.say(_("You have an unfinished complaint; it is kept. Continue it or discard it?"),
                [[Button(_("▶️ Continue"), "draft:continue"),
                  Button(_("🗑 Discard"), "draft:discard")]])
        return
    ctx.reset()
    ctx.say(ctx._("Hello! I am the assistant of the Regional Management Center of the "
                  "Republic of Dagestan. Describe a problem in your own words and I will "
                  "pass it to the agency responsible and keep you informed."),
            main_menu(ctx))


async def on_draft(ctx: Context, payload: Payload) -> None:
    if not ctx.state.has_draft or payload.arg not in ("continue", "discard"):
        await ctx.stale()
        return
    if payload.arg == "continue":
        await ctx.prompt()
        return
    ctx.reset()
    ctx.say(ctx._("The draft has been discarded."), main_menu(ctx))


async def show_help(ctx: Context) -> None:
    ctx.say(ctx._(
        "I accept complaints and requests of residents of the Republic of Dagestan.\n\n"
        "How to file: write what happened and where, add photos and the address or "
        "location. I will suggest a category; you confirm it.\n\n"
        "What happens next: the complaint gets a number and goes to the responsible agency, "
        "which has to answer by the deadline. I will tell you about every change of status; "
        "you can add details under \"My complaints\".\n\n"
        "Privacy: your data is processed only to handle your complaints, in accordance with "
        "Federal Law No. 152-FZ \"On Personal Data\"."))
    if ctx.state.has_draft:
        await ctx.prompt()
    else:
        ctx.reset()
        ctx.say(ctx._("What would you like to do?"), main_menu(ctx))


async def unknown_command(ctx: Context) -> None:
    ctx.say(ctx._("I do not know this command."))
    if ctx.state.has_draft:
        await ctx.prompt()
    else:
        ctx.reset()
        await idle_prompt(ctx)


async def unexpected(ctx: Context) -> None:
    """A photo, file or location with no complaint to attach it to."""
    ctx.say(ctx._("To file a complaint, first describe the problem in words; you can add "
                  "photos and the location after that."), main_menu(ctx))


# --- language --------------------------------------------------------------------------------

async def language_prompt(ctx: Context) -> None:
    ctx.say(ctx._("Choose the language:"),
            [[Button(LANGUAGE_NAMES[lang], f"lang:{lang}") for lang in LANGUAGES]])


async def choose_language(ctx: Context) -> None:
    ctx.go(State.LANGUAGE)
    await language_prompt(ctx)


async def on_language(ctx: Context, payload: Payload) -> bool:
    """Handle ``lang:<code>``; False if the payload is not for this step."""
    if payload.kind != "lang" or payload.arg not in LANGUAGES:
        return False
    ctx.citizen.language = payload.arg
    await ctx.uow.citizens.save(ctx.citizen)
    ctx.translator = get_translator(payload.arg)
    ctx.reset()
    ctx.say(ctx._("Language set: English."), main_menu(ctx))
    return True
