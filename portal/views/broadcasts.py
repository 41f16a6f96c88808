"""The broadcasts pages: the list, the compose form (audience count and preview, save as a
draft, schedule, send now) and a broadcast's progress with pause, resume and cancel.

The forms act through :class:`notifications.broadcasts.BroadcastService`, as the CLI does,
with ``created_by`` = ``portal:<login>``. Each change writes an audit row right after the
service has committed it (the service owns its transactions).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import timedelta

from aiohttp import web

from domain.broadcast import CHANNELS, LANGUAGES, MAX_LINKS, BroadcastState, InvalidTransition
from domain.storage.portal_orm import PortalAuditRow
from notifications.broadcast_message import moscow
from notifications.broadcasts import BroadcastService, Progress
from portal.access import Permission
from portal.app import Portal
from portal.labels import N_
from portal.sessions import LoggedIn
from portal.views.broadcast_form import (
    Compose,
    Problem,
    check_audience,
    check_message,
    check_time,
    preview,
    read_compose,
)

BASE = "/portal/broadcasts"
STATE_LABELS = {"draft": N_("Draft"), "scheduled": N_("Scheduled"), "sending": N_("Sending"),
                "paused": N_("Paused"), "cancelled": N_("Cancelled"), "done": N_("Done")}
LANGUAGE_LABELS = {"ru": N_("Russian"), "en": N_("English")}
NOTICES = {"draft": N_("The broadcast is saved as a draft."),
           "schedule": N_("The broadcast is scheduled."),
           "send": N_("The broadcast is being sent."),
           "pause": N_("The broadcast is paused."),
           "resume": N_("The broadcast is resumed."),
           "cancel": N_("The broadcast is cancelled.")}
CONTROLS = ("pause", "resume", "cancel", "schedule", "send")
Handler = Callable[[web.Request, LoggedIn], Awaitable[web.StreamResponse]]


def eta_text(eta: timedelta | None) -> str:
    if eta is None:
        return "—"
    seconds = int(eta.total_seconds())
    return f"{seconds // 3600}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"


def bar(p: Progress) -> tuple[int, int]:
    """(done, total) for the progress bar: everything written or still to write."""
    done = p.sent + p.failed + p.unreachable + p.cancelled
    return done, done + p.remaining


def add_routes(router: web.UrlDispatcher, portal: Portal) -> None:
    service = BroadcastService(portal.database, catalogue=portal.catalogue, clock=portal.clock)

    def render(request: web.Request, template: str, user: LoggedIn, *, status: int = 200,
               **context: object) -> web.Response:
        return portal.render(request, template, user, status=status, state_label=STATE_LABELS.get,
                             language_label=LANGUAGE_LABELS.get, moscow=moscow, bar=bar,
                             eta_text=eta_text, **context)

    async def audit(user: LoggedIn, action: str, broadcast_id: int | None, old: str, new: str,
                    detail: str = "") -> None:
        async with portal.database.uow() as uow:
            uow.session.add(PortalAuditRow(at=portal.clock(), actor=user.login,
                                           action=f"broadcast_{action}", old=old, new=new,
                                           detail=f"broadcast {broadcast_id}"
                                           + (f": {detail}" if detail else "")))
            await uow.commit()

    async def listing(request: web.Request, user: LoggedIn) -> web.StreamResponse:
        rows = [await service.progress(b.id) for b in await service.list(50) if b.id]
        return render(request, "broadcasts.html", user, rows=rows)

    def compose_page(request: web.Request, user: LoggedIn, c: Compose, *, status: int = 200,
                     count: int | None = None) -> web.Response:
        return render(request, "broadcasts_new.html", user, status=status, c=c, count=count,
                      previews=preview(c, portal.clock()) if count is not None else [],
                      municipalities=portal.catalogue.municipalities,
                      sectors=portal.catalogue.sectors, channels=CHANNELS,
                      languages=LANGUAGES, max_links=MAX_LINKS)

    async def compose(request: web.Request, user: LoggedIn) -> web.StreamResponse:
        return compose_page(request, user, Compose())

    async def submit(request: web.Request, user: LoggedIn) -> web.StreamResponse:
        form = await request.post()
        action = form.get("action", "count")
        if action not in ("count", "draft", "schedule", "now"):
            action = "count"
        c = read_compose(form, portal.catalogue)
        check_audience(c)
        check_message(c, need_text=action != "count")
        if action == "schedule":
            check_time(c, portal.clock())
        if c.problems or c.audience is None:
            return compose_page(request, user, c, status=400)
        if action == "count":
            return compose_page(request, user, c, count=await service.audience(c.audience))
        b = await service.create(c.text, created_by=f"portal:{user.login}",
                                 audience=c.audience, photo=c.photo or None,
                                 links=c.parsed_links, send_at=c.send_at)
        assert b.id is not None
        await audit(user, "create", b.id, "", str(b.state), c.text[:200])
        if action == "now":
            b = await service.send_now(b.id)
            await audit(user, "send", b.id, str(BroadcastState.DRAFT), str(b.state))
        done = {"draft": "draft", "schedule": "schedule", "now": "send"}[action]
        raise web.HTTPSeeOther(f"{BASE}/{b.id}?done={done}")

    async def details(request: web.Request, user: LoggedIn, *, status: int = 200,
                      problems: list[Problem] | None = None, at: str = ""
                      ) -> web.StreamResponse:
        try:
            p = await service.progress(int(request.match_info["id"]))
        except LookupError:
            return portal.error(request, user, 404, N_("No such broadcast."))
        return render(request, "broadcasts_detail.html", user, status=status, p=p,
                      b=p.broadcast, problems=problems or [], at=at,
                      notice=NOTICES.get(request.query.get("done", ""), ""),
                      refresh=p.broadcast.state is BroadcastState.SENDING)

    def control(action: str) -> Handler:
        async def handle(request: web.Request, user: LoggedIn) -> web.StreamResponse:
            broadcast_id = int(request.match_info["id"])
            try:
                old = await service.get(broadcast_id)
            except LookupError:
                return portal.error(request, user, 404, N_("No such broadcast."))
            c = Compose()
            if action == "schedule":
                form = await request.post()
                raw = form.get("at", "")
                c.at = raw.strip()[:40] if isinstance(raw, str) else ""
                check_time(c, portal.clock())
                if c.problems or c.send_at is None:
                    return await details(request, user, status=400, problems=c.problems,
                                         at=c.at)
            try:
                if action == "schedule" and c.send_at is not None:
                    b = await service.schedule(broadcast_id, c.send_at)
                elif action == "send":
                    if old.state is not BroadcastState.DRAFT:
                        raise InvalidTransition(f"broadcast {broadcast_id} is {old.state}")
                    b = await service.send_now(broadcast_id)
                else:
                    b = await getattr(service, action)(broadcast_id)
            except InvalidTransition:
                msg = N_("The broadcast cannot do that in its current state.")
                return await details(request, user, status=409, problems=[Problem(msg)])
            await audit(user, action, broadcast_id, str(old.state), str(b.state),
                        moscow(b.send_at) if action == "schedule" else "")
            raise web.HTTPSeeOther(f"{BASE}/{broadcast_id}?done={action}")
        return handle

    guard = portal.guard
    router.add_get(BASE, guard(Permission.MANAGE_BROADCASTS, listing))
    router.add_get(BASE + "/new", guard(Permission.MANAGE_BROADCASTS, compose))
    router.add_post(BASE + "/new", guard(Permission.MANAGE_BROADCASTS, submit))
    router.add_get(BASE + r"/{id:\d{1,9}}", guard(Permission.MANAGE_BROADCASTS, details))
    for action in CONTROLS:
        router.add_post(BASE + r"/{id:\d{1,9}}/" + action,
                        guard(Permission.MANAGE_BROADCASTS, control(action)))
