"""``GET /portal/audit``: the newest changes made through the portal, optionally of one
complaint or by one user."""

from __future__ import annotations

from aiohttp import web
from sqlalchemy import select

from domain.storage.portal_orm import PortalAuditRow
from portal.access import Permission
from portal.app import Portal
from portal.sessions import LoggedIn

LIMIT = 200


def add_routes(router: web.UrlDispatcher, portal: Portal) -> None:
    async def audit(request: web.Request, user: LoggedIn) -> web.StreamResponse:
        number = request.query.get("complaint", "").strip()[:32]
        actor = request.query.get("actor", "").strip()[:64]
        query = select(PortalAuditRow).order_by(PortalAuditRow.id.desc()).limit(LIMIT)
        if number:
            query = query.where(PortalAuditRow.complaint_number == number)
        if actor:
            query = query.where(PortalAuditRow.actor == actor)
        async with portal.database.session_factory() as session:
            rows = list(await session.scalars(query))
        return portal.render(request, "audit.html", user, rows=rows, number=number,
                             actor=actor, limit=LIMIT)

    router.add_get("/portal/audit", portal.guard(Permission.VIEW_AUDIT, audit))
