"""The pickers an operator's button opens in a complaint's topic: new status, sector,
category. Each returns the prompt and the rows of buttons; the router posts them."""

from __future__ import annotations

from dialogue.messages import Button
from domain.catalogue import Catalogue
from domain.complaint import TRANSITIONS, Complaint, Status

from .card import data
from .operators import may_change
from .texts import _, status_name

Rows = tuple[tuple[Button, ...], ...]


class NoLongerValid(Exception):
    """The button names something the catalogue no longer has, or nothing can be picked."""


def status_picker(complaint: Complaint, role: str) -> tuple[str, Rows]:
    assert complaint.id is not None
    buttons = [Button(status_name(new), data(complaint.id, "to", new.value))
               for new in Status if new in TRANSITIONS[complaint.status]
               and may_change(role, complaint.status, new)]
    if not buttons:
        raise NoLongerValid(_("No status change is possible now."))
    return _("Choose the new status:"), tuple((b,) for b in buttons)


def sector_picker(catalogue: Catalogue, complaint_id: int) -> tuple[str, Rows]:
    buttons = [Button(s.name("ru"), data(complaint_id, "s", s.slug))
               for s in catalogue.sectors]
    return _("Choose a sector:"), tuple(tuple(buttons[i:i + 2])
                                        for i in range(0, len(buttons), 2))


def category_picker(catalogue: Catalogue, complaint_id: int,
                    sector_slug: str) -> tuple[str, Rows]:
    try:
        sector = catalogue.sector(sector_slug)
    except KeyError:
        raise NoLongerValid(_("This button is no longer valid.")) from None
    rows = tuple((Button(c.name("ru"), data(complaint_id, "c", sector.slug, c.slug)),)
                 for c in sector.categories)
    return _("Choose a category ({sector}):", sector=sector.name("ru")), rows
