"""A new complaint, last part: consent, summary, submit or cancel."""

from __future__ import annotations

from dialogue.flows.base import Context, Payload, State
from dialogue.flows.menu import main_menu
from dialogue.i18n import format_date
from dialogue.messages import Button
from domain.complaint import ClassifiedBy, Photo
from domain.services import ComplaintDraft, register_complaint

PREVIEW_CHARS = 1_000


async def after_municipality(ctx: Context) -> None:
    consent_version = ctx.deps.catalogue.consent_version
    ctx.go(State.CMP_SUMMARY if ctx.citizen.has_consent(consent_version)
           else State.CMP_CONSENT)
    await ctx.prompt()


# --- consent ---------------------------------------------------------------------------------

async def consent_prompt(ctx: Context) -> None:
    _ = ctx._
    ctx.say(_("Consent to the processing of personal data.\n\n"
              "To handle your complaint, the Regional Management Center of the Republic of "
              "Dagestan and the agencies responsible will process your data (name, contact "
              "on this messenger, the text, photos and location of the complaint) in "
              "accordance with Federal Law No. 152-FZ \"On Personal Data\". You can withdraw "
              "the consent at any time by writing to the center.\n\n"
              "Do you agree?"),
            [[Button(_("✅ I agree"), "consent:yes"), Button(_("❌ Decline"), "consent:no")]])


async def on_consent(ctx: Context, payload: Payload) -> bool:
    _ = ctx._
    if (payload.kind, payload.arg) == ("consent", "yes"):
        ctx.citizen.give_consent(ctx.now, ctx.deps.catalogue.consent_version)
        await ctx.uow.citizens.save(ctx.citizen)
        ctx.say(_("Thank you, your consent has been recorded."))
        ctx.go(State.CMP_SUMMARY)
        await ctx.prompt()
    elif (payload.kind, payload.arg) == ("consent", "no"):
        ctx.say(_("Without consent to the processing of personal data the complaint cannot be "
                  "filed. Your draft is kept: press \"I agree\" when you are ready, or cancel "
                  "the complaint."),
                [[Button(_("✅ I agree"), "consent:yes"), Button(_("🗑 Cancel"), "cmp:cancel")]])
    elif (payload.kind, payload.arg) == ("cmp", "cancel"):
        await _cancel(ctx)
    else:
        return False
    return True


# --- summary and submit ----------------------------------------------------------------------

async def summary_prompt(ctx: Context) -> None:
    _ = ctx._
    draft = ctx.draft
    catalogue = ctx.deps.catalogue
    text = draft["text"]
    if len(text) > PREVIEW_CHARS:
        text = text[:PREVIEW_CHARS].rstrip() + "…"
    lines = [_("Please check your complaint:"), "", text, "",
             _("Category: {what}.", what=(
                 f"{catalogue.sector(draft['sector']).name(ctx.lang)} → "
                 f"{catalogue.category(draft['sector'], draft['category']).name(ctx.lang)}"))]
    if draft.get("municipality"):
        lines.append(_("Municipality: {name}.",
                       name=catalogue.municipality(draft["municipality"]).name(ctx.lang)))
    if draft.get("address"):
        lines.append(_("Address: {address}", address=draft["address"]))
    if draft.get("latitude") is not None:
        lines.append(_("Location: {lat:.5f}, {lon:.5f}", lat=draft["latitude"],
                       lon=draft["longitude"]))
    count = len(draft.get("photos") or [])
    if count:
        lines.append(ctx.ngettext("{n} photo", "{n} photos", count))
    ctx.say("\n".join(lines),
            [[Button(_("📨 Submit"), "cmp:submit"), Button(_("🗑 Cancel"), "cmp:cancel")]])


async def on_summary(ctx: Context, payload: Payload) -> bool:
    if (payload.kind, payload.arg) == ("cmp", "submit"):
        await _submit(ctx)
    elif (payload.kind, payload.arg) == ("cmp", "cancel"):
        await _cancel(ctx)
    else:
        return False
    return True


async def _submit(ctx: Context) -> None:
    draft = ctx.draft
    complaint_draft = ComplaintDraft(
        text=draft["text"],
        sector=draft["sector"],
        category=draft["category"],
        classified_by=ClassifiedBy(draft.get("classified_by", ClassifiedBy.CITIZEN.value)),
        confidence=draft.get("confidence"),
        municipality=draft.get("municipality"),
        address=draft.get("address"),
        latitude=draft.get("latitude"),
        longitude=draft.get("longitude"),
        photos=[Photo(p["ref"], p.get("mime", "")) for p in draft.get("photos") or []],
    )
    complaint = await register_complaint(
        ctx.uow, ctx.deps.catalogue, ctx.deps.calendar, ctx.citizen,
        ctx.msg.address.channel.value, complaint_draft, ctx.now)
    agency = ctx.deps.catalogue.agency(complaint.agency)
    ctx.reset()
    ctx.say(ctx._("Complaint №{number} has been registered.\nResponsible: {agency}.\n"
                  "Expected answer by {date}\nI will let you know when the status changes.",
                  number=complaint.number, agency=agency.short_name,
                  date=format_date(complaint.resolution_due, ctx.lang)),
            main_menu(ctx))


async def _cancel(ctx: Context) -> None:
    ctx.reset()
    ctx.say(ctx._("The complaint has been cancelled."), main_menu(ctx))
