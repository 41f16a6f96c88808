"""A new complaint, first half: the description and its sector/category."""

from __future__ import annotations

from dialogue.flows import details
from dialogue.flows.base import Context, Payload, State, rows
from dialogue.flows.menu import back_to_menu
from dialogue.i18n import format_number
from dialogue.messages import Button
from dialogue.text import MAX_LENGTH, TextProblem, check_description
from domain.complaint import ClassifiedBy

MAX_SUGGESTIONS = 3


async def begin(ctx: Context) -> None:
    """"New complaint" pressed: wait for the description."""
    ctx.reset()
    ctx.go(State.CMP_TEXT)
    await text_prompt(ctx)


async def text_prompt(ctx: Context) -> None:
    ctx.say(ctx._("Describe the problem: what happened and where. Photos and the address "
                  "can be added in the next steps."), [back_to_menu(ctx)])


async def describe(ctx: Context) -> None:
    """Start a complaint from the text of the message (photos in it are kept too)."""
    text = ctx.text
    problem = check_description(text)
    if problem is TextProblem.TOO_LONG:
        ctx.say(ctx._("The description is too long ({length} characters). Please shorten it "
                      "to {limit} characters and send it again.",
                      length=format_number(len(text), ctx.lang),
                      limit=format_number(MAX_LENGTH, ctx.lang)))
        return
    if problem is not None:
        ctx.say(ctx._("Please describe the problem in a few words: what happened and where."))
        return
    ctx.reset()
    ctx.draft["text"] = text
    ctx.draft["photos"] = []
    details.take_photos(ctx)
    known = []
    for s in await ctx.deps.classifier.classify(text):
        try:
            ctx.deps.catalogue.category(s.sector, s.category)
        except KeyError:
            continue  # a model trained on an older catalogue: ignore what no longer exists
        known.append([s.sector, s.category, float(s.confidence)])
    ctx.draft["suggestions"] = known[:MAX_SUGGESTIONS]
    if not known:
        ctx.go(State.CMP_SECTOR)
        ctx.say(ctx._("I could not tell what the complaint is about."))
    else:
        ctx.go(State.CMP_CLASSIFY)
    await ctx.prompt()


def _confident(ctx: Context) -> bool:
    suggestions = ctx.draft.get("suggestions") or []
    return bool(suggestions) and suggestions[0][2] >= ctx.deps.confidence_threshold


def _label(ctx: Context, sector: str, category: str) -> str:
    cat = ctx.deps.catalogue
    return (f"{cat.sector(sector).name(ctx.lang)} → "
            f"{cat.category(sector, category).name(ctx.lang)}")


async def classify_prompt(ctx: Context) -> None:
    suggestions = ctx.draft.get("suggestions") or []
    _ = ctx._
    if _confident(ctx):
        sector, category, _conf = suggestions[0]
        ctx.say(_("Looks like: {what}. Correct?", what=_label(ctx, sector, category)),
                [[Button(_("✅ Yes"), "cls:yes"), Button(_("✏️ Choose another"), "cls:pick")]])
        return
    buttons = [[Button(_label(ctx, s, c), f"cat:{s}:{c}")] for s, c, _conf in suggestions]
    buttons.append([Button(_("Other sector…"), "cls:pick")])
    ctx.say(_("Which of these fits best?"), buttons)


async def on_classify(ctx: Context, payload: Payload) -> bool:
    suggestions = ctx.draft.get("suggestions") or []
    if payload.kind == "cls" and payload.arg == "yes" and _confident(ctx):
        sector, category, confidence = suggestions[0]
        await _chosen(ctx, sector, category, ClassifiedBy.NLU, confidence)
    elif payload.kind == "cls" and payload.arg == "pick":
        ctx.go(State.CMP_SECTOR)
        await ctx.prompt()
    elif payload.kind == "cat":
        return await _pick_category(ctx, payload, from_suggestions=True)
    else:
        return False
    return True


async def sector_prompt(ctx: Context) -> None:
    _ = ctx._
    buttons = [Button(s.name(ctx.lang), f"sec:{s.slug}") for s in ctx.deps.catalogue.sectors]
    layout = rows(buttons)
    if ctx.draft.get("suggestions"):
        layout.append([Button(_("⬅️ Back"), "nav:back")])
    ctx.say(_("Choose the sector:"), layout)


async def on_sector(ctx: Context, payload: Payload) -> bool:
    if payload.kind == "nav" and payload.arg == "back" and ctx.draft.get("suggestions"):
        ctx.go(State.CMP_CLASSIFY)
    elif payload.kind == "sec" and len(payload.args) == 1:
        try:
            ctx.deps.catalogue.sector(payload.arg)
        except KeyError:
            return False
        ctx.draft["pick_sector"] = payload.arg
        ctx.go(State.CMP_CATEGORY)
    else:
        return False
    await ctx.prompt()
    return True


async def category_prompt(ctx: Context) -> None:
    _ = ctx._
    sector = ctx.deps.catalogue.sector(ctx.draft["pick_sector"])
    buttons = [[Button(c.name(ctx.lang), f"cat:{sector.slug}:{c.slug}")]
               for c in sector.categories]
    buttons.append([Button(_("⬅️ Back"), "nav:back")])
    ctx.say(_("{sector}: choose the category:", sector=sector.name(ctx.lang)), buttons)


async def on_category(ctx: Context, payload: Payload) -> bool:
    if payload.kind == "nav" and payload.arg == "back":
        ctx.go(State.CMP_SECTOR)
        await ctx.prompt()
        return True
    if payload.kind != "cat" or payload.args[:1] != (ctx.draft.get("pick_sector"),):
        return False
    return await _pick_category(ctx, payload, from_suggestions=False)


async def _pick_category(ctx: Context, payload: Payload, *, from_suggestions: bool) -> bool:
    if len(payload.args) != 2:
        return False
    sector, category = payload.args
    try:
        ctx.deps.catalogue.category(sector, category)
    except KeyError:
        return False
    suggested = {(s, c): conf for s, c, conf in ctx.draft.get("suggestions") or []}
    if from_suggestions and (sector, category) in suggested:  # a classifier guess accepted
        await _chosen(ctx, sector, category, ClassifiedBy.NLU, suggested[(sector, category)])
    else:
        await _chosen(ctx, sector, category, ClassifiedBy.CITIZEN, None)
    return True


async def _chosen(ctx: Context, sector: str, category: str, by: ClassifiedBy,
                  confidence: float | None) -> None:
    ctx.draft.update(sector=sector, category=category, classified_by=by.value,
                     confidence=confidence)
    ctx.draft.pop("pick_sector", None)
    ctx.say(ctx._("Category: {what}.", what=_label(ctx, sector, category)))
    ctx.go(State.CMP_PHOTOS)
    await ctx.prompt()
