"""The dialogue's steps and the router that sends each message to the current one.

Every state has a prompt (ask for what the step needs), a payload handler (returns False
for a button that does not belong here, which the router answers as stale) and a message
handler (text, photos, location).
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from dialogue.flows import (
    broadcast,
    complaint,
    details,
    finish,
    menu,
    my_complaints,
    subscriptions,
    survey,
)
from dialogue.flows.base import Context, Payload, State

START_WORDS = frozenset({"/start", "/menu", "menu", "меню", "главное меню", "start", "начать"})
HELP_WORDS = frozenset({"/help", "help", "помощь", "справка"})
_COMMAND = re.compile(r"/[a-z0-9_]+(@\w+)?")


async def _no_payload(ctx: Context, payload: Payload) -> bool:
    return False


async def _reprompt(ctx: Context) -> None:
    await ctx.prompt()


async def _idle_message(ctx: Context) -> None:
    if ctx.text:
        await complaint.describe(ctx)
    elif ctx.msg.attachments or ctx.msg.location is not None:
        await menu.unexpected(ctx)
    else:
        await ctx.prompt()


@dataclass(frozen=True, slots=True)
class Step:
    prompt: Callable[[Context], Awaitable[None]]
    on_payload: Callable[[Context, Payload], Awaitable[bool]] = _no_payload
    on_message: Callable[[Context], Awaitable[None]] = _reprompt


STEPS: dict[State, Step] = {
    State.IDLE: Step(menu.idle_prompt, on_message=_idle_message),
    State.CMP_TEXT: Step(complaint.text_prompt, on_message=_idle_message),
    State.CMP_CLASSIFY: Step(complaint.classify_prompt, complaint.on_classify),
    State.CMP_SECTOR: Step(complaint.sector_prompt, complaint.on_sector),
    State.CMP_CATEGORY: Step(complaint.category_prompt, complaint.on_category),
    State.CMP_PHOTOS: Step(details.photos_prompt, details.on_photos_payload,
                           details.on_photos_message),
    State.CMP_LOCATION: Step(details.location_prompt, details.on_location_payload,
                             details.on_location_message),
    State.CMP_MUNI: Step(details.muni_prompt, details.on_muni_payload, details.on_muni_text),
    State.CMP_MUNI_PICK: Step(details.muni_pick_prompt, details.on_muni_pick_payload,
                              details.on_muni_text),
    State.CMP_CONSENT: Step(finish.consent_prompt, finish.on_consent),
    State.CMP_SUMMARY: Step(finish.summary_prompt, finish.on_summary),
    State.MY_LIST: Step(my_complaints.show, my_complaints.on_list, _idle_message),
    State.MY_ADD: Step(my_complaints.add_prompt, my_complaints.on_add_payload,
                       my_complaints.on_add_message),
    State.SUBS_MUNI: Step(subscriptions.muni_prompt, subscriptions.on_muni,
                          subscriptions.on_muni_text),
    State.SUBS_SECTORS: Step(subscriptions.sectors_prompt, subscriptions.on_sectors),
    State.LANGUAGE: Step(menu.language_prompt, menu.on_language, _idle_message),
}
PROMPTS = {state: step.prompt for state, step in STEPS.items()}

_MENU: dict[str, Callable[[Context], Awaitable[None]]] = {
    "new": complaint.begin,
    "my": my_complaints.show,
    "subs": subscriptions.start,
    "lang": menu.choose_language,
    "help": menu.show_help,
}


async def dispatch(ctx: Context) -> None:
    """Route one message: global commands first, then the current step."""
    if await survey.intercept(ctx, START_WORDS | HELP_WORDS):  # sv: buttons, from any state
        return
    step = STEPS[ctx.state]
    if ctx.msg.payload is not None:
        payload = Payload.parse(ctx.msg.payload)
        if payload is None:
            await ctx.stale()
        elif payload.kind == "menu":
            await _on_menu(ctx, payload)
        elif payload.kind == "draft":
            await menu.on_draft(ctx, payload)
        elif payload.kind in broadcast.KINDS:
            await broadcast.on_payload(ctx, payload)
        elif not await step.on_payload(ctx, payload):
            await ctx.stale()
        return
    command = ctx.text.lower()
    if command in START_WORDS:
        await menu.start(ctx)
    elif command in HELP_WORDS:
        await menu.show_help(ctx)
    elif _COMMAND.fullmatch(command):
        await menu.unknown_command(ctx)
    else:
        await step.on_message(ctx)


async def _on_menu(ctx: Context, payload: Payload) -> None:
    if payload.args == ("main",):
        await menu.start(ctx)
    elif ctx.state.has_draft or len(payload.args) != 1 or payload.arg not in _MENU:
        await ctx.stale()  # a draft is never left behind by an old menu button
    else:
        await _MENU[payload.arg](ctx)
