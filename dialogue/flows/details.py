"""A new complaint, middle part: photos, location or address, municipality."""

from __future__ import annotations

import math

from dialogue.flows.base import Context, Payload, State, page_of, pager, rows
from dialogue.flows.finish import after_municipality
from dialogue.messages import AttachmentKind, Button, Location
from dialogue.text import clean, meaningful
from domain.catalogue import Municipality

MAX_PHOTOS = 10
MAX_ADDRESS = 500
MAX_REF, MAX_MIME = 512, 100
MUNI_PAGE = 8


def photo_refs(ctx: Context) -> tuple[list[dict[str, str]], bool]:
    """The message's photos as ``{"ref": "<channel>:<ref>", "mime": ...}`` and whether it
    also carried something that is not a photo."""
    photos, other = [], False
    for att in ctx.msg.attachments:
        ref = f"{ctx.msg.address.channel.value}:{att.ref}"
        # what the photo columns can hold (PostgreSQL refuses NUL and over-long values)
        if att.kind is AttachmentKind.PHOTO and att.ref and len(ref) <= MAX_REF \
                and "\x00" not in ref:
            photos.append({"ref": ref, "mime": clean(att.mime)[:MAX_MIME]})
        else:
            other = True
    return photos, other


def take_photos(ctx: Context) -> None:
    """Add the message's photos to the draft (at most :data:`MAX_PHOTOS`), saying why any
    attachment was not taken."""
    photos, other = photo_refs(ctx)
    stored = ctx.draft.setdefault("photos", [])
    room = MAX_PHOTOS - len(stored)
    stored.extend(photos[:max(room, 0)])
    if other:
        ctx.say(ctx._("Only photos are accepted; other files were not added."))
    if len(photos) > room:
        ctx.say(ctx._("At most {limit} photos can be attached; the extra ones were not added.",
                      limit=MAX_PHOTOS))


# --- photos ----------------------------------------------------------------------------------

async def photos_prompt(ctx: Context) -> None:
    _ = ctx._
    count = len(ctx.draft.get("photos") or [])
    if count == 0:
        ctx.say(_("Send photos of the problem if you have any (up to {limit}), or press Skip.",
                  limit=MAX_PHOTOS), [[Button(_("⏭ Skip"), "photo:done")]])
    else:
        ctx.say(ctx.ngettext("{n} photo attached. Send more or press Done.",
                             "{n} photos attached. Send more or press Done.", count),
                [[Button(_("✅ Done"), "photo:done")]])


async def on_photos_payload(ctx: Context, payload: Payload) -> bool:
    if (payload.kind, payload.arg) != ("photo", "done"):
        return False
    ctx.go(State.CMP_LOCATION)
    await ctx.prompt()
    return True


async def on_photos_message(ctx: Context) -> None:
    take_photos(ctx)
    await ctx.prompt()


# --- location --------------------------------------------------------------------------------

async def location_prompt(ctx: Context) -> None:
    ctx.say(ctx._("Where is the problem? Send the location with the button below or type "
                  "the address (settlement, street, house)."),
            [[Button(ctx._("⏭ Skip"), "loc:skip")]], request_location=True)


async def on_location_payload(ctx: Context, payload: Payload) -> bool:
    if (payload.kind, payload.arg) != ("loc", "skip"):
        return False
    await _after_location(ctx)
    return True


def usable(location: Location) -> bool:
    """Finite coordinates on the Earth; a forged or broken client may send anything (NaN
    is not even valid JSON for PostgreSQL)."""
    lat, lon = location.latitude, location.longitude
    return (math.isfinite(lat) and math.isfinite(lon) and abs(lat) <= 90
            and abs(lon) <= 180)


async def on_location_message(ctx: Context) -> None:
    if ctx.msg.location is not None and not usable(ctx.msg.location):
        ctx.say(ctx._("Please type the address in one line, for example: "
                      "Makhachkala, Lenina street 1."))
        await ctx.prompt()
        return
    if ctx.msg.location is not None:
        ctx.draft["latitude"] = ctx.msg.location.latitude
        ctx.draft["longitude"] = ctx.msg.location.longitude
        await _after_location(ctx)
        return
    address = ctx.text
    if meaningful(address) < 3 or len(address) > MAX_ADDRESS:
        ctx.say(ctx._("Please type the address in one line, for example: "
                      "Makhachkala, Lenina street 1."))
        await ctx.prompt()
        return
    ctx.draft["address"] = address
    await _after_location(ctx)


async def _after_location(ctx: Context) -> None:
    catalogue = ctx.deps.catalogue
    guess = (catalogue.find_municipality(ctx.draft.get("address") or "")
             or catalogue.find_municipality(ctx.draft.get("text") or ""))
    _propose(ctx, guess)
    await ctx.prompt()


def _propose(ctx: Context, guess: Municipality | None) -> None:
    if guess is None:
        ctx.data["muni_page"] = 0
        ctx.go(State.CMP_MUNI_PICK)
    else:
        ctx.draft["muni_guess"] = guess.slug
        ctx.go(State.CMP_MUNI)


# --- municipality ----------------------------------------------------------------------------

async def muni_prompt(ctx: Context) -> None:
    _ = ctx._
    muni = ctx.deps.catalogue.municipality(ctx.draft["muni_guess"])
    ctx.say(_("Municipality: {name}. Correct?", name=muni.name(ctx.lang)),
            [[Button(_("✅ Yes"), "mun:yes"), Button(_("✏️ Choose another"), "mun:pick")]])


async def on_muni_payload(ctx: Context, payload: Payload) -> bool:
    if payload.kind != "mun":
        return False
    if payload.arg == "yes":
        await _set_municipality(ctx, ctx.draft["muni_guess"])
    elif payload.arg == "pick":
        ctx.data["muni_page"] = 0
        ctx.go(State.CMP_MUNI_PICK)
        await ctx.prompt()
    else:
        return False
    return True


async def muni_pick_prompt(ctx: Context) -> None:
    _ = ctx._
    items, pages = page_of(ctx.deps.catalogue.municipalities, ctx.data.get("muni_page", 0),
                           MUNI_PAGE)
    page = min(ctx.data.get("muni_page", 0), pages - 1)
    layout = rows([Button(m.name(ctx.lang), f"mun:{m.slug}") for m in items])
    layout.append(pager(page, pages, "munp", _("« Back"), _("More »")))
    ctx.say(_("Choose the municipality or type its name (page {page} of {pages}):",
              page=page + 1, pages=pages), layout)


async def on_muni_pick_payload(ctx: Context, payload: Payload) -> bool:
    catalogue = ctx.deps.catalogue
    if payload.kind == "munp" and payload.arg.isdigit():
        _items, pages = page_of(catalogue.municipalities, 0, MUNI_PAGE)
        if int(payload.arg) >= pages:
            return False
        ctx.data["muni_page"] = int(payload.arg)
        await ctx.prompt()
        return True
    if payload.kind != "mun" or len(payload.args) != 1:
        return False
    try:
        catalogue.municipality(payload.arg)
    except KeyError:
        return False
    await _set_municipality(ctx, payload.arg)
    return True


async def on_muni_text(ctx: Context) -> None:
    """A typed municipality name, in either municipality step."""
    found = ctx.deps.catalogue.find_municipality(ctx.text) if ctx.text else None
    if found is None:
        ctx.say(ctx._("I could not find such a municipality."))
    else:
        _propose(ctx, found)
    await ctx.prompt()


async def _set_municipality(ctx: Context, slug: str) -> None:
    ctx.deps.catalogue.municipality(slug)  # re-checked: the catalogue may have changed
    ctx.draft["municipality"] = slug
    ctx.draft.pop("muni_guess", None)
    ctx.data.pop("muni_page", None)
    await after_municipality(ctx)
