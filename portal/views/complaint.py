"""The complaint page and its forms: reply, status change, reclassification.

The forms act only through the use cases of :mod:`domain.services`, as
``portal:<login>``; each change writes an audit row in the same transaction.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any, cast

from aiohttp import web
from multidict import MultiDictProxy

from domain.complaint import TRANSITIONS, Complaint, IllegalTransition, Status
from domain.ports import UnitOfWork
from domain.services import answer_complaint, change_status, reclassify
from domain.storage.portal_orm import PortalAuditRow
from portal.access import Permission, allowed
from portal.app import Portal
from portal.labels import N_
from portal.sessions import LoggedIn
from portal.views.filters import windows

MAX_TEXT = 4000
NOTICES = {"reply": N_("The answer is saved and will be sent to the citizen."),
           "status": N_("The status is changed."),
           "reclassify": N_("The classification is changed.")}
ANSWERABLE = frozenset({Status.NEW, Status.IN_PROGRESS, Status.REOPENED})


Form = MultiDictProxy[Any]


def _field(form: Form, name: str) -> str:
    value = form.get(name, "")
    return value.strip() if isinstance(value, str) else ""


def add_routes(router: web.UrlDispatcher, portal: Portal) -> None:
    async def page(request: web.Request, user: LoggedIn, *, status: int = 200,
                   error: str = "") -> web.StreamResponse:
        number = request.match_info["number"]
        async with portal.database.uow() as uow:
            complaint = await uow.complaints.by_number(number)
            if complaint is None:
                return portal.error(request, user, 404, N_("No such complaint."))
            citizen = await uow.citizens.get(complaint.citizen_id)
            original = (await uow.complaints.get(complaint.duplicate_of)
                        if complaint.duplicate_of else None)
        now = portal.clock()
        return portal.render(
            request, "complaint.html", user, status=status, c=complaint, citizen=citizen,
            original=original, now=now, overdue=complaint.is_overdue(now),
            windows=windows(now, portal.calendar, 1), error=error,
            notice=NOTICES.get(request.query.get("done", ""), ""),
            can_act=allowed(user.role, Permission.HANDLE_COMPLAINTS),
            can_answer=complaint.status in ANSWERABLE,
            transitions=[s for s in Status if s in TRANSITIONS[complaint.status]],
            sectors=portal.catalogue.sectors)

    async def act(request: web.Request, user: LoggedIn, action: str) -> web.StreamResponse:
        number = request.match_info["number"]
        form = await request.post()
        now = portal.clock()
        actor = f"portal:{user.login}"
        refused: _Refused | None = None
        async with portal.database.uow() as uow:
            complaint = await uow.complaints.by_number(number)
            if complaint is None or complaint.id is None:
                return portal.error(request, user, 404, N_("No such complaint."))
            try:
                # SqlUnitOfWork satisfies the protocol at run time; its attributes are the
                # concrete repositories, which mypy's invariance check does not accept.
                old, new, detail = await _apply(cast(UnitOfWork, uow), portal, complaint,
                                                action, form, actor, now)
            except _Refused as exc:
                refused = exc
            else:
                uow.session.add(PortalAuditRow(at=now, actor=user.login, action=action,
                                               complaint_number=number, old=old, new=new,
                                               detail=detail))
                await uow.commit()
        if refused is not None:  # rendered after the unit has let go of the database
            return await page(request, user, status=refused.status, error=refused.message)
        raise web.HTTPSeeOther(f"/portal/complaints/{number}?done={action}")

    def handler(action: str) -> Callable[[web.Request, LoggedIn],
                                         Awaitable[web.StreamResponse]]:
        async def handle(request: web.Request, user: LoggedIn) -> web.StreamResponse:
            return await act(request, user, action)
        return handle

    base = "/portal/complaints/{number}"
    router.add_get(base, portal.guard(Permission.VIEW_REGISTER, page))
    for action in ("reply", "status", "reclassify"):
        router.add_post(f"{base}/{action}",
                        portal.guard(Permission.HANDLE_COMPLAINTS, handler(action)))


class _Refused(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status, self.message = status, message


async def _apply(uow: UnitOfWork, portal: Portal, complaint: Complaint, action: str,
                 form: Form, actor: str, now: datetime) -> tuple[str, str, str]:
    """Run the use case behind ``action``; returns the audit's (old, new, detail)."""
    assert complaint.id is not None
    old_status = str(complaint.status)
    try:
        if action == "reply":
            text = _field(form, "text")
            if not text:
                raise _Refused(400, N_("Write the answer first."))
            if len(text) > MAX_TEXT:
                raise _Refused(400, N_("The answer is too long."))
            await answer_complaint(uow, complaint.id, text, actor=actor, now=now)
            return old_status, str(Status.ANSWERED), text
        if action == "status":
            return await _status(uow, complaint, form, actor, now)
        pair = _field(form, "category")
        sector, _, category = pair.partition("/")
        old = f"{complaint.sector}/{complaint.category}"
        try:
            portal.catalogue.category(sector, category)
        except KeyError:
            raise _Refused(400, N_("Choose a category from the list.")) from None
        await reclassify(uow, portal.catalogue, complaint.id, sector, category, actor=actor,
                         now=now)
        return old, pair, ""
    except IllegalTransition:
        raise _Refused(409, N_("This status change is not allowed now.")) from None


async def _status(uow: UnitOfWork, complaint: Complaint, form: Form, actor: str,
                  now: datetime) -> tuple[str, str, str]:
    assert complaint.id is not None
    try:
        new = Status(_field(form, "status"))
    except ValueError:
        raise _Refused(400, N_("Choose a status from the list.")) from None
    reason = _field(form, "reason")[:MAX_TEXT]
    if not reason:
        raise _Refused(400, N_("Give a reason for the status change."))
    duplicate_of = None
    if new is Status.DUPLICATE:
        original = await uow.complaints.by_number(_field(form, "original"))
        if original is None:
            raise _Refused(400, N_("Give the number of the original complaint."))
        if original.id == complaint.id:
            raise _Refused(400, N_("A complaint cannot duplicate itself."))
        duplicate_of = original.id
    await change_status(uow, complaint.id, new, actor=actor, now=now,
                        reason=reason, duplicate_of=duplicate_of)
    return str(complaint.status), str(new), reason
