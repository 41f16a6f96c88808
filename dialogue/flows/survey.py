"""Satisfaction survey answers: ``sv:`` buttons pressed from any state, and the comment.

Payloads: ``sv:<id>:y`` / ``sv:<id>:n`` (was it solved?), ``sv:<id>:r:<1-5>`` (rating),
``sv:<id>:skip`` (no comment), ``sv:<id>:fy`` / ``sv:<id>:fn`` (follow-up: still solved?).
Each press is re-checked: the survey must exist, be this citizen's and wait for exactly
this answer; anything else gets the usual "button no longer valid" and the current step
again. The conversation's state is never changed here, so a complaint draft in progress
survives a survey answer; the comment is the next text message, remembered under
:data:`COMMENT_KEY` in the conversation data until any other message arrives.

The question builders are shared with ``notifications.surveys`` (invitation, reminder,
follow-up), which passes a translator for the citizen's language.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection

from dialogue.flows.base import Context, State
from dialogue.flows.menu import main_menu
from dialogue.i18n import format_number
from dialogue.messages import Button, OutgoingMessage
from dialogue.text import MAX_LENGTH
from domain import survey as surveys
from domain.services import Forbidden, NotFound
from domain.survey import ReopenReason, Survey, WrongSurveyState

Gettext = Callable[..., str]  # (msgid, **format_args) -> translated, formatted text
COMMENT_KEY = "survey_comment"
_PAYLOAD = re.compile(r"sv:(\d{1,12}):(y|n|skip|fy|fn|r:[1-5])")


def N_(msgid: str) -> str:  # noqa: N802 - the conventional marker for extraction
    return msgid


INVITATION = N_("Complaint №{number} has been closed. Was the problem solved?")
REMINDER = N_("A reminder: was the problem in complaint №{number} solved? Your answer helps "
              "us check the agencies' work.")
FOLLOWUP = N_("Some time ago complaint №{number} was closed as solved. Is the problem still "
              "solved?")


def solved_question(_: Gettext, survey_id: int, number: str, *,
                    reminder: bool = False) -> OutgoingMessage:
    return OutgoingMessage(_(REMINDER if reminder else INVITATION, number=number), ((
        Button(_("✅ Yes"), f"sv:{survey_id}:y"), Button(_("❌ No"), f"sv:{survey_id}:n")),))


def rating_question(_: Gettext, survey_id: int, number: str) -> OutgoingMessage:
    return OutgoingMessage(
        _("How do you rate the answer to complaint №{number}, from 1 (very bad) to 5 "
          "(excellent)?", number=number),
        (tuple(Button(str(n), f"sv:{survey_id}:r:{n}") for n in range(1, 6)),))


def comment_question(_: Gettext, survey_id: int) -> OutgoingMessage:
    return OutgoingMessage(
        _("Thank you! Would you like to add a comment? Write it in one message, or press "
          "Skip."), ((Button(_("Skip"), f"sv:{survey_id}:skip"),),))


def followup_question(_: Gettext, survey_id: int, number: str) -> OutgoingMessage:
    return OutgoingMessage(_(FOLLOWUP, number=number), ((
        Button(_("✅ Yes, still solved"), f"sv:{survey_id}:fy"),
        Button(_("❌ No, it is back"), f"sv:{survey_id}:fn")),))


async def intercept(ctx: Context, commands: Collection[str] = ()) -> bool:
    """Handle an ``sv:`` payload or the awaited comment; ``False`` leaves the message to
    the current step (and forgets an awaited comment: the citizen moved on)."""
    raw = ctx.msg.payload
    if raw is not None and raw.startswith("sv:"):
        ctx.data.pop(COMMENT_KEY, None)
        await _on_payload(ctx, raw)
        return True
    if not ctx.conversation.data or COMMENT_KEY not in ctx.conversation.data:
        return False
    survey_id = ctx.data.pop(COMMENT_KEY)
    text = ctx.text
    if raw is not None or not text or text.startswith("/") or text.lower() in commands:
        return False
    if len(text) > MAX_LENGTH:
        ctx.data[COMMENT_KEY] = survey_id
        ctx.say(ctx._("The message is too long. Please keep it under {limit} characters.",
                      limit=format_number(MAX_LENGTH, ctx.lang)))
        return True
    await _finish_comment(ctx, int(survey_id), text)
    return True


async def _on_payload(ctx: Context, raw: str) -> None:
    match = _PAYLOAD.fullmatch(raw)
    if match is None:
        await ctx.stale()
        return
    survey_id, action = int(match[1]), match[2]
    citizen_id = ctx.citizen.id
    assert citizen_id is not None
    uow, now = ctx.uow, ctx.now
    try:
        if action in ("y", "n"):
            survey = await surveys.answer_solved(uow, survey_id, citizen_id, action == "y",
                                                 now=now)
            await _after_solved(ctx, survey)
        elif action.startswith("r:"):
            survey = await surveys.rate(uow, survey_id, citizen_id, int(action[2:]), now=now)
            if survey.reopened_at == now and survey.reopen_reason == ReopenReason.LOW_RATING:
                ctx.say(_reopened_text(ctx, await _number(ctx, survey)))
            ctx.data[COMMENT_KEY] = survey_id
            ctx.replies.append(comment_question(ctx._, survey_id))
        elif action == "skip":
            await _finish_comment(ctx, survey_id, None)
        else:
            survey = await surveys.answer_followup(uow, survey_id, citizen_id, action == "fy",
                                                   now=now)
            await _after_followup(ctx, survey)
    except (NotFound, Forbidden, WrongSurveyState):
        await ctx.stale()


async def _after_solved(ctx: Context, survey: Survey) -> None:
    number = await _number(ctx, survey)
    if survey.solved:
        ctx.say(ctx._("We are glad the problem was solved!"))
    elif survey.reopened_at is not None:
        ctx.say(_reopened_text(ctx, number))
    else:
        ctx.say(ctx._("We are sorry. Thank you for telling us; the operators will see your "
                      "answer."))
    assert survey.id is not None
    ctx.replies.append(rating_question(ctx._, survey.id, number))


async def _after_followup(ctx: Context, survey: Survey) -> None:
    if survey.still_solved:
        await _done(ctx, ctx._("Thank you! We are glad the problem stays solved."))
    elif survey.reopened_at is not None:
        await _done(ctx, _reopened_text(ctx, await _number(ctx, survey)))
    else:
        await _done(ctx, ctx._("Thank you for telling us. To have the problem looked at "
                               "again, please file a new complaint."))


async def _finish_comment(ctx: Context, survey_id: int, text: str | None) -> None:
    assert ctx.citizen.id is not None
    try:
        await surveys.comment(ctx.uow, survey_id, ctx.citizen.id, text)
    except (NotFound, Forbidden, WrongSurveyState):
        await ctx.stale()
        return
    await _done(ctx, ctx._("Thank you for your feedback!"))


async def _done(ctx: Context, text: str) -> None:
    """The last survey reply; then the citizen's own step again (a draft is kept)."""
    if ctx.state is State.IDLE:
        ctx.say(text, main_menu(ctx))
    else:
        ctx.say(text)
        await ctx.prompt()


def _reopened_text(ctx: Context, number: str) -> str:
    return ctx._("We are sorry. Complaint №{number} has been reopened and the operators "
                 "have been alerted.", number=number)


async def _number(ctx: Context, survey: Survey) -> str:
    complaint = await ctx.uow.complaints.get(survey.complaint_id)
    return complaint.number if complaint is not None else "?"
