"""News subscriptions: a municipality and the sectors the citizen cares about."""

from __future__ import annotations

from dialogue.flows.base import Context, Payload, State, page_of, pager, rows
from dialogue.flows.menu import main_menu
from dialogue.messages import Button

PAGE = 8


async def start(ctx: Context) -> None:
    ctx.reset()
    ctx.data["subs_page"] = 0
    ctx.go(State.SUBS_MUNI)
    await ctx.prompt()


def _muni_name(ctx: Context, slug: str | None) -> str | None:
    if slug is None:
        return None
    try:
        return ctx.deps.catalogue.municipality(slug).name(ctx.lang)
    except KeyError:
        return None


async def muni_prompt(ctx: Context) -> None:
    _ = ctx._
    items, pages = page_of(ctx.deps.catalogue.municipalities, ctx.data.get("subs_page", 0),
                           PAGE)
    page = min(ctx.data.get("subs_page", 0), pages - 1)
    layout = rows([Button(m.name(ctx.lang), f"smun:{m.slug}") for m in items])
    layout.append(pager(page, pages, "smunp", _("« Back"), _("More »")))
    current = _muni_name(ctx, ctx.citizen.subscribed_municipality)
    if current:
        text = _("News subscription. Your municipality now: {name}. Choose another one, type "
                 "its name, or keep it:", name=current)
        layout.append([Button(_("Keep {name}", name=current), "subs:sectors")])
    else:
        text = _("News subscription. Choose your municipality or type its name:")
    ctx.say(text, layout)


async def on_muni(ctx: Context, payload: Payload) -> bool:
    catalogue = ctx.deps.catalogue
    if payload.kind == "smunp" and payload.arg.isdigit():
        _items, pages = page_of(catalogue.municipalities, 0, PAGE)
        if int(payload.arg) >= pages:
            return False
        ctx.data["subs_page"] = int(payload.arg)
        await ctx.prompt()
        return True
    if (payload.kind, payload.arg) == ("subs", "sectors"):
        if _muni_name(ctx, ctx.citizen.subscribed_municipality) is None:
            return False
        ctx.go(State.SUBS_SECTORS)
        await ctx.prompt()
        return True
    if payload.kind != "smun" or len(payload.args) != 1:
        return False
    try:
        catalogue.municipality(payload.arg)
    except KeyError:
        return False
    await _set_municipality(ctx, payload.arg)
    return True


async def on_muni_text(ctx: Context) -> None:
    found = ctx.deps.catalogue.find_municipality(ctx.text) if ctx.text else None
    if found is None:
        ctx.say(ctx._("I could not find such a municipality."))
        await ctx.prompt()
        return
    await _set_municipality(ctx, found.slug)


async def _set_municipality(ctx: Context, slug: str) -> None:
    ctx.citizen.subscribed_municipality = slug
    await ctx.uow.citizens.save(ctx.citizen)
    ctx.go(State.SUBS_SECTORS)
    await ctx.prompt()


async def sectors_prompt(ctx: Context) -> None:
    _ = ctx._
    chosen = set(ctx.citizen.subscribed_sectors)
    buttons = [Button(("✅ " if s.slug in chosen else "") + s.name(ctx.lang), f"ssec:{s.slug}")
               for s in ctx.deps.catalogue.sectors]
    layout = rows(buttons)
    layout.append([Button(_("💾 Done"), "subs:done")])
    ctx.say(_("Tap the topics you want news about (tap again to unsubscribe):"), layout)


async def on_sectors(ctx: Context, payload: Payload) -> bool:
    catalogue = ctx.deps.catalogue
    if (payload.kind, payload.arg) == ("subs", "done"):
        ctx.reset()
        names = [catalogue.sector(s).name(ctx.lang) for s in ctx.citizen.subscribed_sectors
                 if s in {x.slug for x in catalogue.sectors}]
        ctx.say(ctx._("Subscriptions saved. Municipality: {name}. Topics: {topics}.",
                      name=_muni_name(ctx, ctx.citizen.subscribed_municipality) or "—",
                      topics=", ".join(names) or ctx._("none")), main_menu(ctx))
        return True
    if payload.kind != "ssec" or len(payload.args) != 1:
        return False
    try:
        catalogue.sector(payload.arg)
    except KeyError:
        return False
    sectors = ctx.citizen.subscribed_sectors
    if payload.arg in sectors:
        sectors.remove(payload.arg)
    else:
        sectors.append(payload.arg)
    await ctx.uow.citizens.save(ctx.citizen)
    await ctx.prompt()
    return True
