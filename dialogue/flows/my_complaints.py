"""My complaints: the citizen's latest complaints and adding details to an open one."""

from __future__ import annotations

from dialogue.flows.base import Context, Payload, State
from dialogue.flows.details import photo_refs
from dialogue.flows.menu import back_to_menu, main_menu
from dialogue.i18n import format_date, format_number
from dialogue.messages import Button
from dialogue.text import MAX_LENGTH
from domain.complaint import Complaint, Photo, Status
from domain.services import Forbidden, NotFound, add_details

LIST_LIMIT = 10


def status_name(ctx: Context, status: Status) -> str:
    _ = ctx._
    names = {
        Status.NEW: _("Registered"),
        Status.IN_PROGRESS: _("In progress"),
        Status.ANSWERED: _("Answered"),
        Status.CLOSED: _("Closed"),
        Status.REJECTED: _("Rejected"),
        Status.DUPLICATE: _("Duplicate"),
        Status.REOPENED: _("Reopened"),
    }
    return names[status]


async def show(ctx: Context) -> None:
    """List the latest complaints with an "Add details" button on each open one."""
    ctx.reset()
    assert ctx.citizen.id is not None
    complaints = await ctx.uow.complaints.for_citizen(ctx.citizen.id, limit=LIST_LIMIT)
    if not complaints:
        ctx.say(ctx._("You have no complaints yet. To file one, just write what the problem "
                      "is."), main_menu(ctx))
        return
    ctx.go(State.MY_LIST)
    lines = [ctx._("Your latest complaints:"), ""]
    buttons = []
    for complaint in complaints:
        lines.append(_line(ctx, complaint))
        if complaint.is_open and complaint.id is not None:
            buttons.append([Button(ctx._("➕ Add details to №{number}",
                                         number=complaint.number), f"add:{complaint.id}")])
    buttons.append(back_to_menu(ctx))
    ctx.say("\n".join(lines), buttons)


def _line(ctx: Context, complaint: Complaint) -> str:
    catalogue = ctx.deps.catalogue
    try:
        sector = catalogue.sector(complaint.sector).name(ctx.lang)
    except KeyError:
        sector = complaint.sector
    return (f"№{complaint.number} · {sector} · {status_name(ctx, complaint.status)} · "
            f"{format_date(complaint.created_at, ctx.lang)}")


async def on_list(ctx: Context, payload: Payload) -> bool:
    if payload.kind != "add" or not payload.arg.isdigit():
        return False
    assert ctx.citizen.id is not None
    complaint = await ctx.uow.complaints.get(int(payload.arg))
    if complaint is None or complaint.citizen_id != ctx.citizen.id:
        ctx.say(ctx._("This complaint was not found among yours."))
        await show(ctx)
    elif not complaint.is_open:
        ctx.say(ctx._("Complaint №{number} is closed; details can no longer be added.",
                      number=complaint.number))
        await show(ctx)
    else:
        ctx.data["add_id"] = complaint.id
        ctx.data["add_number"] = complaint.number
        ctx.go(State.MY_ADD)
        await ctx.prompt()
    return True


async def add_prompt(ctx: Context) -> None:
    ctx.say(ctx._("Write the details or send photos for complaint №{number}. Press Done when "
                  "you have finished.", number=ctx.data.get("add_number", "")),
            [[Button(ctx._("✅ Done"), "add:done")]])


async def on_add_payload(ctx: Context, payload: Payload) -> bool:
    if (payload.kind, payload.arg) != ("add", "done"):
        return False
    ctx.reset()
    ctx.say(ctx._("Thank you! What would you like to do next?"), main_menu(ctx))
    return True


async def on_add_message(ctx: Context) -> None:
    text = ctx.text
    photos, other = photo_refs(ctx)
    if other:
        ctx.say(ctx._("Only photos are accepted; other files were not added."))
    if len(text) > MAX_LENGTH:
        ctx.say(ctx._("The message is too long. Please keep it under {limit} characters.",
                      limit=format_number(MAX_LENGTH, ctx.lang)))
        return
    if not text and not photos:
        await ctx.prompt()
        return
    assert ctx.citizen.id is not None
    try:
        complaint = await add_details(
            ctx.uow, int(ctx.data["add_id"]), ctx.citizen.id, text, now=ctx.now,
            photos=[Photo(p["ref"], p["mime"]) for p in photos])
    except (Forbidden, NotFound):
        ctx.reset()
        ctx.say(ctx._("Details can no longer be added to this complaint."), main_menu(ctx))
        return
    ctx.say(ctx._("Added to complaint №{number}. Send more or press Done.",
                  number=complaint.number), [[Button(ctx._("✅ Done"), "add:done")]])
