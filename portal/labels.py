"""Human names for slugs shown in the portal: catalogue entries and enum values."""

from __future__ import annotations

from collections.abc import Callable

from domain.catalogue import Catalogue


def N_(msgid: str) -> str:
    """Marks a msgid for the catalogues; translated where it is shown."""
    return msgid


STATUS_LABELS = {
    "new": N_("New"),
    "in_progress": N_("In progress"),
    "answered": N_("Answered"),
    "closed": N_("Closed"),
    "rejected": N_("Rejected"),
    "duplicate": N_("Duplicate"),
    "reopened": N_("Reopened"),
}
CHANNEL_LABELS = {"telegram": N_("Telegram"), "vk": N_("VK"), "web": N_("Web chat")}
EVENT_LABELS = {
    "registered": N_("Filed"),
    "status": N_("Status changed"),
    "citizen_message": N_("Citizen wrote"),
    "operator_message": N_("Answer"),
    "reclassified": N_("Reclassified"),
    "attachment": N_("Photo"),
}
ROLE_LABELS = {"operator": N_("Operator"), "communications": N_("Communications"),
               "supervisor": N_("Supervisor"), "admin": N_("Administrator")}
CLASSIFIED_BY_LABELS = {"nlu": N_("classifier, confirmed by the citizen"),
                        "citizen": N_("chosen by the citizen"),
                        "operator": N_("set by an operator")}


class Names:
    """Translated names of slugs in one language; unknown slugs show as themselves."""

    def __init__(self, catalogue: Catalogue, lang: str, gettext: Callable[[str], str]) -> None:
        self.catalogue = catalogue
        self.lang = lang
        self._ = gettext

    def sector(self, slug: str) -> str:
        try:
            return self.catalogue.sector(slug).name(self.lang)
        except KeyError:
            return slug

    def category(self, sector: str, slug: str) -> str:
        try:
            return self.catalogue.category(sector, slug).name(self.lang)
        except KeyError:
            return slug

    def agency(self, slug: str | None) -> str:
        if slug is None:
            return ""
        agency = self.catalogue.agencies.get(slug)
        return agency.short_name if agency else slug

    def agency_full(self, slug: str) -> str:
        agency = self.catalogue.agencies.get(slug)
        return agency.name if agency else slug

    def municipality(self, slug: str | None) -> str:
        if slug is None:
            return self._("not known")
        try:
            return self.catalogue.municipality(slug).name(self.lang)
        except KeyError:
            return slug

    def status(self, value: str) -> str:
        return self._(STATUS_LABELS.get(value, value))

    def channel(self, value: str) -> str:
        return self._(CHANNEL_LABELS.get(value, value))

    def event(self, value: str) -> str:
        return self._(EVENT_LABELS.get(value, value))

    def role(self, value: str) -> str:
        return self._(ROLE_LABELS.get(value, value))

    def classified_by(self, value: str) -> str:
        return self._(CLASSIFIED_BY_LABELS.get(value, value))

    def classification(self, pair: str) -> str:
        """``"sector/category"`` as "Sector: Category"."""
        sector, _, category = pair.partition("/")
        return f"{self.sector(sector)}: {self.category(sector, category)}"
